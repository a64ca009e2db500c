//! `$HERMES_HOME/logs/container-boot.log`: one line per profile per boot, rotated to `.1` at
//! 256 KiB. Upstream's docker harness waits for the `profile=default` line, so the format is a
//! contract. The home is entered as the volume's owner, so the directory and the file are the
//! user's without any chown, and a link planted at either name is refused, not followed.

use crate::ctx::Ctx;
use crate::fs::{Dir, Kind, RenameMode};
use crate::problem::Problem;
use std::ffi::OsStr;
use std::io;
use std::time::SystemTime;

pub const LOG_DIR: &str = "logs";
pub const LOG_FILE: &str = "container-boot.log";
pub const ROTATED: &str = "container-boot.log.1";
pub const ROTATE_BYTES: u64 = 256 * 1024;
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// A pass's timestamp, shared by every line of one pass (local time, like upstream).
pub fn timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t).format(TIMESTAMP_FORMAT).to_string()
}

/// Append `text` (whole lines) to the boot log under `home` (a volume directory), rotating
/// first when the log has reached `rotate_bytes`. A rotation that fails (`.1` is a directory)
/// is only a warning, returned: the lines are appended to the log as it is, as upstream does.
pub fn append(ctx: &Ctx, home: &Dir, text: &str, rotate_bytes: u64) -> Result<Option<String>, Problem> {
    let logs = open_logs_dir(ctx, home)?;
    let log_path = logs.child(OsStr::new(LOG_FILE));
    let refuse = |kind: Kind| Problem::Unusable {
        path: log_path.clone(),
        why: format!("is a {}; not writing the boot log (remove it so a regular file can be created)", kind.describe()),
    };
    let mut warning = None;
    match ctx.fs.lstat(&logs, OsStr::new(LOG_FILE)) {
        Ok(m) if m.kind == Kind::File && m.size >= rotate_bytes => {
            if let Err(e) = ctx.fs.rename(&logs, OsStr::new(LOG_FILE), &logs, OsStr::new(ROTATED), RenameMode::Replace) {
                warning = Some(format!(
                    "could not rotate {} to {ROTATED}: {e}; appending to it as it is (remove {} so it can rotate)",
                    log_path.display(),
                    logs.child(OsStr::new(ROTATED)).display()
                ));
            }
        }
        Ok(m) if m.kind != Kind::File => return Err(refuse(m.kind)),
        _ => {}
    }
    ctx.fs.append_file(&logs, OsStr::new(LOG_FILE), text.as_bytes(), 0o644).map_err(|e| ctx.problem(&log_path, "append to", e))?;
    Ok(warning)
}

fn open_logs_dir(ctx: &Ctx, home: &Dir) -> Result<Dir, Problem> {
    let name = OsStr::new(LOG_DIR);
    let path = home.child(name);
    match ctx.fs.lstat(home, name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match ctx.fs.mkdir(home, name, 0o755) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(ctx.problem(&path, "create", e)),
            _ => {}
        },
        Err(e) => return Err(ctx.problem(&path, "inspect", e)),
        Ok(m) if m.kind != Kind::Dir => {
            return Err(Problem::Unusable {
                path,
                why: format!("is a {}, not a directory; not writing the boot log (replace it with a directory)", m.kind.describe()),
            })
        }
        Ok(_) => {}
    }
    ctx.fs.open_dir(home, name).map_err(|e| ctx.problem(&path, "open", e))
}
