//! Root runs this project's programs by absolute path only (docs/security.md, attack 18): the
//! image's HEALTHCHECK, the Kubernetes probes and commands, every script under docker/ and
//! the `docker exec` examples of the docs. A bare `hermes-reconcile` resolves through the
//! container's PATH, and a deployment's PATH may hold a directory the hermes user can write.

use std::path::{Path, PathBuf};

const OURS: [&str; 3] = ["hermes", "hermes-reconcile", "hermes-gateway"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The elements of a JSON-like flow list `["a", "b"]` starting at `s` (which starts at `[`).
fn flow_list(s: &str) -> Option<Vec<String>> {
    let end = s.find(']')?;
    Some(s[1..end].split(',').map(|w| w.trim().trim_matches('"').to_string()).filter(|w| !w.is_empty()).collect())
}

/// Lines with `\`-continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some(l) = line.strip_suffix('\\') {
            cur.push_str(l);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

/// The programs a line of shell runs: the first word of every command (after `exec`, `!`,
/// `if`, variable assignments…), and the program `s6-setuidgid USER`/`s6-applyuidgid …` run.
fn programs(line: &str) -> Vec<String> {
    let code = line.split(" #").next().unwrap_or("");
    if code.trim_start().starts_with('#') {
        return Vec::new();
    }
    let mut spaced = code.to_string();
    for sep in ["&&", "||", ";", "|", "$(", "(", "`", "{"] {
        spaced = spaced.replace(sep, "\n");
    }
    let mut out = Vec::new();
    for seg in spaced.lines() {
        let mut words = seg.split_whitespace().map(|w| w.trim_matches('"')).peekable();
        while let Some(w) = words.peek() {
            if ["exec", "!", "if", "then", "else", "do", "while", "until", "elif"].contains(w) || (w.contains('=') && !w.starts_with('-')) {
                words.next();
            } else {
                break;
            }
        }
        let Some(first) = words.next() else { continue };
        out.push(first.to_string());
        let rest: Vec<&str> = words.collect();
        match first.rsplit('/').next() {
            Some("s6-setuidgid") => out.extend(rest.get(1).map(|s| s.to_string())),
            Some("s6-applyuidgid") => {
                let mut i = 0;
                while i < rest.len() && rest[i].starts_with('-') {
                    i += if rest[i].len() == 2 { 2 } else { 1 };
                }
                out.extend(rest.get(i).map(|s| s.to_string()));
            }
            _ => {}
        }
    }
    out
}

fn bare(program: &str) -> bool {
    OURS.contains(&program)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn the_parser_sees_what_root_would_run() {
    assert_eq!(programs("exec hermes-reconcile watch"), ["hermes-reconcile"]);
    assert_eq!(programs("if ! hermes-reconcile dump-env /x; then"), ["hermes-reconcile"]);
    assert_eq!(programs("[ \"$(id -u)\" = 0 ] || exec hermes dashboard"), ["[", "id", "hermes"]);
    assert_eq!(programs("exec s6-setuidgid hermes hermes dashboard"), ["s6-setuidgid", "hermes"]);
    assert_eq!(programs(" && HERMES_UID=1 hermes generate bash /x"), ["hermes"]);
    assert_eq!(programs("as_user() { s6-applyuidgid -u \"$u\" -g 1 -G 1 \"$@\"; }"), ["as_user", ")", "s6-applyuidgid", "$@", "}"]);
    assert_eq!(programs("# hermes-reconcile in a comment"), Vec::<String>::new());
}

#[test]
fn the_image_runs_our_programs_by_absolute_path_only() {
    let mut bad = Vec::new();
    // The Dockerfile: exec forms (HEALTHCHECK CMD, ENTRYPOINT, CMD) and RUN's shell.
    let dockerfile = repo().join("docker/Dockerfile");
    let mut exec_forms = 0;
    for line in logical_lines(&read(&dockerfile)) {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        if let Some(i) = l.find('[').filter(|_| l.starts_with("HEALTHCHECK") || l.starts_with("ENTRYPOINT") || l.starts_with("CMD")) {
            exec_forms += 1;
            let list = flow_list(&l[i..]).unwrap_or_default();
            if list.first().is_some_and(|p| !p.starts_with('/')) {
                bad.push(format!("docker/Dockerfile: `{l}` runs {:?} through PATH", list[0]));
            }
        } else if l.starts_with("HEALTHCHECK") && l.contains(" CMD ") {
            bad.push(format!("docker/Dockerfile: `{l}` is a shell-form HEALTHCHECK (use the exec form with an absolute path)"));
        }
        if let Some(body) = l.strip_prefix("RUN ") {
            bad.extend(programs(body).into_iter().filter(|p| bare(p)).map(|p| format!("docker/Dockerfile: RUN runs {p:?} through PATH")));
        }
    }
    assert!(exec_forms >= 2, "expected the HEALTHCHECK and ENTRYPOINT exec forms, found {exec_forms}");
    // Every script of the image.
    let mut all = Vec::new();
    files(&repo().join("docker/rootfs"), &mut all);
    let scripts: Vec<_> = all.into_iter().filter(|f| std::fs::read(f).is_ok_and(|b| b.starts_with(b"#!"))).collect();
    assert!(scripts.len() >= 9, "found {} scripts", scripts.len());
    for s in &scripts {
        for (n, line) in read(s).lines().enumerate() {
            for p in programs(line).into_iter().filter(|p| bare(p)) {
                bad.push(format!("{}:{}: runs {p:?} through PATH", s.strip_prefix(repo()).unwrap().display(), n + 1));
            }
        }
    }
    // The manifests' probes and commands (flow lists; any other form is refused here).
    let mut commands = 0;
    for entry in std::fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for (n, line) in read(&p).lines().enumerate() {
            let l = line.trim();
            let Some(v) = l.strip_prefix("command:").or_else(|| l.strip_prefix("- command:")) else { continue };
            commands += 1;
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            match flow_list(v.trim()).filter(|_| v.trim().starts_with('[')) {
                Some(list) if list.first().is_some_and(|c| c.starts_with('/')) => {}
                Some(list) => bad.push(format!("deploy/kubernetes/{name}:{}: runs {:?} through PATH", n + 1, list.first())),
                None => bad.push(format!(
                    "deploy/kubernetes/{name}:{}: a command not in flow form `[\"/abs\", …]`; this check reads only that",
                    n + 1
                )),
            }
        }
    }
    assert!(commands >= 6, "expected the probes of both manifests, found {commands}");
    assert!(bad.is_empty(), "root would run a program found on PATH:\n{}", bad.join("\n"));
}

/// `docker exec C hermes …` runs as root whatever `hermes` the container's PATH finds first.
#[test]
fn the_docs_exec_our_programs_by_absolute_path() {
    let mut docs = vec![repo().join("README.md")];
    docs.extend(
        std::fs::read_dir(repo().join("docs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut bad = Vec::new();
    for d in docs {
        for (n, line) in read(&d).lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().map(|w| w.trim_matches('`')).collect();
            for (i, w) in words.iter().enumerate() {
                if words.get(i + 1) != Some(&"exec") || !["docker", "podman", "kubectl"].contains(w) {
                    continue;
                }
                let program = if *w == "kubectl" {
                    words.iter().skip_while(|x| **x != "--").nth(1)
                } else {
                    let mut j = i + 2;
                    while j < words.len() && words[j].starts_with('-') {
                        let takes_value = ["-e", "-u", "-w", "--env", "--user", "--workdir"].contains(&words[j]);
                        j += if takes_value { 2 } else { 1 };
                    }
                    words.get(j + 1)
                };
                if let Some(p) = program.filter(|p| bare(p)) {
                    bad.push(format!(
                        "{}:{}: `{}` runs {p:?} through the container's PATH",
                        d.file_name().unwrap().to_string_lossy(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
