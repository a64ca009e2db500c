//! Profile multiplexing: one root gateway serves every profile, so named slots stay down at
//! boot however their state reads. Set by `multiplex_profiles` in `$HERMES_HOME/config.yaml`
//! (top level or under `gateway:`); `GATEWAY_MULTIPLEX_PROFILES` with a recognised token wins
//! (upstream's gateway reads it so; 0.19.0's own boot pass reads only the variable: README.md,
//! "Where we differ from upstream").

use crate::config::parse_bool;
use crate::fs::{Capped, Dir, Fs};
use std::ffi::OsStr;
use std::io;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::Yaml;

pub const CONFIG_FILE: &str = "config.yaml";
pub(crate) const CONFIG_CAP: u64 = 1024 * 1024;

fn yaml_flag(v: &Yaml) -> Option<bool> {
    match v {
        Yaml::Boolean(b) => Some(*b),
        Yaml::String(s) => parse_bool(s),
        Yaml::Integer(i) => Some(*i != 0),
        _ => None,
    }
}

/// The flag from config.yaml: `Ok(None)` when the file or key is absent; `Err` says why the
/// file could not be used.
///
/// The file is the user's, and root reads it: it is read as a stream of parser events, keeping
/// only the two keys that matter, so no tree is built and nothing recurses however deep the
/// user nests it (a tree 200,000 levels deep overflowed the stack while it was dropped).
pub fn read_config_flag(fs: &dyn Fs, home: &Dir) -> Result<Option<bool>, String> {
    let (top, nested) = read_config_key(fs, home, "multiplex_profiles")?;
    Ok(top.as_ref().and_then(yaml_flag).or_else(|| nested.as_ref().and_then(yaml_flag)))
}

/// `key` at the top of `dir`'s config.yaml and under its `gateway:` mapping, read the same
/// careful way (`Ok((None, None))` when the file or key is absent).
pub fn read_config_key(fs: &dyn Fs, dir: &Dir, key: &str) -> Result<(Option<Yaml>, Option<Yaml>), String> {
    let path = dir.child(OsStr::new(CONFIG_FILE));
    let home = dir;
    let data = match fs.read_capped(home, OsStr::new(CONFIG_FILE), CONFIG_CAP) {
        Ok(Capped::Data(d)) => d,
        Ok(Capped::NotRegular(k)) => return Err(format!("{} is a {}", path.display(), k.describe())),
        Ok(Capped::TooLarge(n)) => return Err(format!("{} is {n} bytes, over the cap", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = std::str::from_utf8(&data).map_err(|_| format!("{} is not UTF-8", path.display()))?;
    scan_key(text, key).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))
}

/// Where the parser stands: in a mapping (waiting for a key, or for the value of `key`) or in
/// a sequence. `role` says whether this mapping is the document's root or its `gateway:`.
enum Frame {
    Map { key: Option<Option<String>>, role: Role },
    Seq,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Gateway,
    Other,
}

/// A scalar as the loader would type it (quoted: a string; plain: by its form or its tag).
fn scalar(v: String, style: TScalarStyle, tag: Option<&Tag>) -> Yaml {
    if style != TScalarStyle::Plain {
        return Yaml::String(v);
    }
    match tag {
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "bool" => match v.as_str() {
            "true" | "True" | "TRUE" => Yaml::Boolean(true),
            "false" | "False" | "FALSE" => Yaml::Boolean(false),
            _ => Yaml::BadValue,
        },
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "int" => v.parse().map_or(Yaml::BadValue, Yaml::Integer),
        Some(_) => Yaml::String(v),
        None => Yaml::from_str(&v),
    }
}

/// `multiplex_profiles` at the top of the first document and under its `gateway:` mapping.
#[cfg(test)]
fn scan_flags(text: &str) -> Result<(Option<Yaml>, Option<Yaml>), yaml_rust2::ScanError> {
    scan_key(text, "multiplex_profiles")
}

/// `wanted` at the top of the first document and under its `gateway:` mapping (a repeated key:
/// the last one wins), as scalars. Later documents are parsed only to be checked.
pub(crate) fn scan_key(text: &str, wanted: &str) -> Result<(Option<Yaml>, Option<Yaml>), yaml_rust2::ScanError> {
    let mut parser = Parser::new_from_str(text);
    let (mut top, mut nested) = (None, None);
    let mut stack: Vec<Frame> = Vec::new();
    // Scalars given an anchor, for an alias used as the value (anchor ids start at 1); by id,
    // so 80,000 aliases in a 1 MiB file cost as many look-ups, not their square.
    let mut anchors: std::collections::HashMap<usize, Yaml> = std::collections::HashMap::new();
    let mut documents = 0usize;
    loop {
        let (event, _) = parser.next_token()?;
        // What a node completes: a key, a value of a key, an item; `None` for structure.
        let node: Option<Option<Yaml>> = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                None
            }
            Event::Scalar(v, style, anchor, tag) => {
                let y = scalar(v, style, tag.as_ref());
                if anchor > 0 && documents == 1 {
                    anchors.insert(anchor, y.clone());
                }
                Some(Some(y))
            }
            Event::Alias(id) => Some(anchors.get(&id).cloned()),
            Event::MappingStart(..) => {
                let role = match stack.last() {
                    None if documents == 1 => Role::Root,
                    Some(Frame::Map { key: Some(Some(k)), role: Role::Root }) if k == "gateway" => Role::Gateway,
                    _ => Role::Other,
                };
                stack.push(Frame::Map { key: None, role });
                continue;
            }
            Event::SequenceStart(..) => {
                stack.push(Frame::Seq);
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                Some(None)
            }
            _ => None,
        };
        let Some(node) = node else { continue };
        if let Some(Frame::Map { key, role }) = stack.last_mut() {
            match key.take() {
                // This node was a key: remember it if it is a string.
                None => {
                    *key = Some(match node {
                        Some(Yaml::String(s)) => Some(s),
                        _ => None,
                    })
                }
                Some(Some(k)) if k == wanted && *role == Role::Root => top = node,
                Some(Some(k)) if k == wanted && *role == Role::Gateway => nested = node,
                Some(_) => {}
            }
        }
    }
    Ok((top, nested))
}

/// Combine env override and config. Returns the flag and a warning when config failed.
pub fn resolve(env: Option<&str>, config: Result<Option<bool>, String>) -> (bool, Option<String>) {
    if let Some(b) = env.and_then(parse_bool) {
        return (b, None);
    }
    match config {
        Ok(flag) => (flag.unwrap_or(false), None),
        // As when the file has no such key: off. An unrecognised GATEWAY_MULTIPLEX_PROFILES
        // (`maybe`) means "defer to config.yaml" whatever the file holds, never "on".
        Err(why) => (false, Some(format!("could not load multiplex setting: {why}; multiplexing off"))),
    }
}

/// Whether multiplexing is on for this container: `GATEWAY_MULTIPLEX_PROFILES` (a recognised
/// token), else `multiplex_profiles` in the home's config.yaml, as the boot pass and the
/// registrar read them. For the readers (`status`, `health`), which are not given the
/// container's facts.
pub fn enabled(ctx: &crate::ctx::Ctx) -> bool {
    let flag = ctx.open_home().map(|h| read_config_flag(ctx.fs, &h)).unwrap_or(Ok(None));
    resolve(ctx.cfg.container_env.multiplex.as_deref(), flag).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn env_override_wins_both_ways() {
        assert!(!resolve(Some("false"), Ok(Some(true))).0);
        assert!(resolve(Some("true"), Ok(Some(false))).0);
        assert!(resolve(Some("maybe"), Ok(Some(true))).0);
        assert!(!resolve(None, Ok(None)).0);
    }

    #[test]
    fn config_failure_falls_back_to_env_with_warning() {
        let (flag, warn) = resolve(None, Err("boom".into()));
        assert!(!flag);
        assert!(warn.unwrap().contains("boom"));
        // `maybe` is no token: config.yaml decides, and a broken one means off, not on.
        assert!(!resolve(Some("maybe"), Err("boom".into())).0);
        assert!(!resolve(Some("maybe"), Ok(None)).0);
    }

    #[test]
    fn reads_the_flag_at_top_level_or_under_gateway() {
        let tmp = tempfile::tempdir().unwrap();
        let home = RealFs.open_root(tmp.path()).unwrap();
        let read = |body: &str| {
            std::fs::write(tmp.path().join(CONFIG_FILE), body).unwrap();
            read_config_flag(&RealFs, &home)
        };
        assert_eq!(read("multiplex_profiles: true\n"), Ok(Some(true)));
        assert_eq!(read("gateway:\n  multiplex_profiles: 'off'\n"), Ok(Some(false)));
        assert_eq!(read("gateway:\n  port: 1\n"), Ok(None));
        assert_eq!(read(""), Ok(None));
        assert!(read("a: [unclosed\n").unwrap_err().contains("not valid YAML"));
    }

    /// What the tree-based loader says: the reference for well-formed files.
    fn by_tree(text: &str) -> Option<bool> {
        let docs = yaml_rust2::YamlLoader::load_from_str(text).unwrap();
        let doc = docs.first()?;
        yaml_flag(&doc["multiplex_profiles"]).or_else(|| yaml_flag(&doc["gateway"]["multiplex_profiles"]))
    }

    #[test]
    fn the_stream_reads_what_the_tree_reads() {
        let cases = [
            "multiplex_profiles: true\n",
            "multiplex_profiles: 'yes'\n",
            "multiplex_profiles: 0\n",
            "multiplex_profiles: ~\n",
            "multiplex_profiles: [1]\ngateway: {multiplex_profiles: on}\n",
            "gateway:\n  other: {multiplex_profiles: true}\n  multiplex_profiles: !!bool false\n",
            "x: {gateway: {multiplex_profiles: true}}\n",
            "- multiplex_profiles: true\n",
            "a: &f true\nmultiplex_profiles: *f\n",
            "? [complex, key]\n: 1\nmultiplex_profiles: \"true\"\n",
            "---\nmultiplex_profiles: false\n---\nmultiplex_profiles: true\n",
            "gateway: 3\nmultiplex_profiles: nonsense\n",
            "gateway:\n  - multiplex_profiles: true\n",
            "multiplex_profiles: 1.5\n",
        ];
        for c in cases {
            let (top, nested) = scan_flags(c).unwrap();
            let streamed = top.as_ref().and_then(yaml_flag).or_else(|| nested.as_ref().and_then(yaml_flag));
            assert_eq!(streamed, by_tree(c), "{c:?}");
        }
    }

    /// The measured outage: 200,000 levels of `- ` (400 KB, under the cap) aborted the boot
    /// pass and the registrar ("has overflowed its stack"). Run on a thread with the main
    /// thread's stack, so the test process would abort as root's did.
    #[test]
    fn a_deeply_nested_config_is_read_without_overflowing_the_stack() {
        let tmp = tempfile::tempdir().unwrap();
        let mut body = String::with_capacity(500_000);
        for _ in 0..200_000 {
            body.push_str("- ");
        }
        body.push_str("x\n");
        std::fs::write(tmp.path().join(CONFIG_FILE), &body).unwrap();
        let nested_flow = format!("multiplex_profiles: true\nx: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let path = tmp.path().to_path_buf();
        let got = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || {
                let home = RealFs.open_root(&path).unwrap();
                let deep = read_config_flag(&RealFs, &home);
                std::fs::write(path.join(CONFIG_FILE), nested_flow).unwrap();
                (deep, read_config_flag(&RealFs, &home))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got.0, Ok(None));
        // Deep flow nesting is refused by the parser's own limit: a warning naming the file.
        let flow = got.1.unwrap_err();
        assert!(flow.contains("config.yaml is not valid YAML") && flow.contains("recursion limit"), "{flow}");
    }
}
