//! Hygiene of everything under docker/: each shell script passes shellcheck, and no file has
//! CRLF line ends or a byte-order mark (either breaks a `#!` line inside the image).

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker")
}

#[test]
fn no_crlf_or_bom_under_docker() {
    let mut all = Vec::new();
    files(&docker_dir(), &mut all);
    assert!(all.len() >= 10, "expected the image's files, found {}", all.len());
    for f in all {
        let b = std::fs::read(&f).unwrap();
        assert!(!b.starts_with(b"\xEF\xBB\xBF"), "{} starts with a BOM", f.display());
        assert!(!b.windows(2).any(|w| w == b"\r\n"), "{} has CRLF line ends", f.display());
    }
}

#[test]
#[ignore = "needs shellcheck"]
fn shell_scripts_pass_shellcheck() {
    if let Err(e) = Command::new("shellcheck").arg("--version").output() {
        panic!("this test needs shellcheck, which could not be run ({e}): install it (scripts/install-deps does), or run without --include-ignored to list it as ignored");
    }
    let mut all = Vec::new();
    files(&docker_dir(), &mut all);
    let scripts: Vec<_> = all.into_iter().filter(|f| std::fs::read(f).map(|b| b.starts_with(b"#!")).unwrap_or(false)).collect();
    assert!(scripts.len() >= 9, "found {} scripts", scripts.len());
    let o = Command::new("shellcheck").arg("-s").arg("sh").args(&scripts).output().unwrap();
    assert!(o.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&o.stdout));
}
