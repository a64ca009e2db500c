//! `$HERMES_HOME/logs/container-boot.log`: one line per profile per boot, rotated to `.1` at
//! 256 KiB. Upstream's docker harness waits for the `profile=default` line, so the format is a
//! contract. The directory and the file belong to the unprivileged user; root opens both
//! without following links and never lets a logging problem fail the pass.

use crate::safe_fs::{chown_best_effort, Dir, Fs, Kind, RenameMode};
use std::ffi::OsStr;
use std::io;

pub const LOG_DIR: &str = "logs";
pub const LOG_FILE: &str = "container-boot.log";
pub const ROTATED: &str = "container-boot.log.1";
pub const ROTATE_BYTES: u64 = 256 * 1024;
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// The pass's timestamp, shared by every line of one pass (local time, like upstream).
pub fn timestamp_now() -> String {
    chrono::Local::now().format(TIMESTAMP_FORMAT).to_string()
}

/// Append `text` (whole lines) to the boot log under `home`, rotating first when the log has
/// reached `rotate_bytes`. Newly created directories and files are given to `owner`.
pub fn append(fs: &dyn Fs, home: &Dir, text: &str, owner: (u32, u32), rotate_bytes: u64) -> Result<(), String> {
    let logs = open_logs_dir(fs, home, owner)?;
    let log_path = logs.child(OsStr::new(LOG_FILE));
    match fs.lstat(&logs, OsStr::new(LOG_FILE)) {
        Ok(m) if m.kind == Kind::File && m.size >= rotate_bytes => {
            fs.rename(&logs, OsStr::new(LOG_FILE), &logs, OsStr::new(ROTATED), RenameMode::Replace)
                .map_err(|e| format!("could not rotate {}: {e}", log_path.display()))?;
        }
        Ok(m) if m.kind != Kind::File => {
            return Err(format!(
                "{} is a {}; not writing the boot log (remove it so a regular file can be created)",
                log_path.display(),
                m.kind.describe()
            ))
        }
        _ => {}
    }
    fs.append_file(&logs, OsStr::new(LOG_FILE), text.as_bytes(), 0o644, Some(owner))
        .map_err(|e| format!("could not append to {}: {e}", log_path.display()))
}

fn open_logs_dir(fs: &dyn Fs, home: &Dir, owner: (u32, u32)) -> Result<Dir, String> {
    let name = OsStr::new(LOG_DIR);
    let path = home.child(name);
    match fs.lstat(home, name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs.mkdir(home, name, 0o755).map_err(|e| format!("could not create {}: {e}", path.display()))?;
            chown_best_effort(fs, home, name, owner.0, owner.1)
                .and_then(|_| fs.chmod(home, name, 0o755))
                .map_err(|e| format!("could not give {} to uid {}: {e}", path.display(), owner.0))?;
        }
        Err(e) => return Err(format!("could not inspect {}: {e}", path.display())),
        Ok(m) if m.kind != Kind::Dir => {
            return Err(format!(
                "{} is a {}, not a directory; not writing the boot log (replace it with a directory)",
                path.display(),
                m.kind.describe()
            ))
        }
        Ok(_) => {}
    }
    fs.open_dir(home, name).map_err(|e| format!("could not open {}: {e}", path.display()))
}
