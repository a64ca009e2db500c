//! The container environment, one file per variable, for `with-contenv` (`s6-envdir -Lfn`):
//! what s6-overlay's stage 1 does. Taken from the process environment as bytes, never by
//! parsing `env` text, so any value (newlines, quotes, `=`, shell syntax) arrives byte for
//! byte. The directory is root's and private: the values are often secrets.
//!
//! What envdirs cannot carry: a name starting with `.` or holding `/` or `=` (reported and
//! skipped), and an empty value (an empty file means "unset" to `s6-envdir`, as it does in
//! s6-overlay).

use crate::fs::{remove_tree, Dir, Fs};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// What a dump did: the variables written and those whose name cannot be a file name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dumped {
    pub written: usize,
    pub skipped: Vec<String>,
}

/// A variable name that can be an envdir entry: not empty, not hidden (s6-envdir skips dot
/// files), no `/`, no `=`.
fn usable(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b[0] != b'.' && !b.contains(&b'/') && !b.contains(&b'=')
}

/// Replace `parent/name` with a fresh directory holding one file per variable.
pub fn dump(fs: &dyn Fs, parent: &Dir, name: &OsStr, vars: impl IntoIterator<Item = (OsString, OsString)>) -> io::Result<Dumped> {
    remove_tree(fs, parent, name)?;
    fs.mkdir(parent, name, DIR_MODE)?;
    let dir = fs.open_dir(parent, name)?;
    let mut out = Dumped::default();
    for (k, v) in vars {
        if !usable(&k) {
            out.skipped.push(k.to_string_lossy().into_owned());
            continue;
        }
        match fs.create_file(&dir, &k, v.as_bytes(), FILE_MODE) {
            // A name seen twice keeps its first value, as the environment itself does.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            other => other?,
        }
        out.written += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn any_value_survives_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = RealFs.open_root(tmp.path()).unwrap();
        let tricky = "a\nB=c\n'\"$(id)`x`\\\n";
        let vars = vec![
            (OsString::from("ZZ"), OsString::from(tricky)),
            (OsString::from("EMPTY"), OsString::new()),
            (OsString::from("a/b"), OsString::from("x")),
            (OsString::from(".."), OsString::from("x")),
        ];
        let d = dump(&RealFs, &parent, OsStr::new("env"), vars).unwrap();
        assert_eq!(d, Dumped { written: 2, skipped: vec!["a/b".into(), "..".into()] });
        assert_eq!(std::fs::read_to_string(tmp.path().join("env/ZZ")).unwrap(), tricky);
        assert_eq!(std::fs::read(tmp.path().join("env/EMPTY")).unwrap(), b"");
        // A second dump starts from nothing.
        dump(&RealFs, &parent, OsStr::new("env"), vec![(OsString::from("ONLY"), OsString::from("1"))]).unwrap();
        assert_eq!(std::fs::read_dir(tmp.path().join("env")).unwrap().count(), 1);
    }
}
