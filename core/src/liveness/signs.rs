//! What the gateway's own files say, read for one gateway process: a state file or heartbeat
//! counts only when it names that process (its pid, and its start time when the file has one:
//! a pid is reused, notably by the same gateway after a container restart).

use crate::fs::{Capped, Dir, Fs};
use serde_json::{Map, Value};
use std::ffi::OsStr;

/// A state file or heartbeat is a few hundred bytes.
const CAP: u64 = 64 * 1024;

/// The gateway process a file must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub pid: u64,
    /// Field 22 of `/proc/<pid>/stat`, as hermes-agent records it.
    pub start_time: Option<u64>,
}

/// The bytes of `path` (relative, one component at a time, no link followed), capped.
pub fn read(fs: &dyn Fs, dir: &Dir, path: &[&str]) -> Option<Vec<u8>> {
    let (name, parents) = path.split_last()?;
    let mut sub = None;
    for p in parents {
        sub = Some(fs.open_dir(sub.as_ref().unwrap_or(dir), OsStr::new(p)).ok()?);
    }
    match fs.read_capped(sub.as_ref().unwrap_or(dir), OsStr::new(name), CAP) {
        Ok(Capped::Data(d)) => Some(d),
        _ => None,
    }
}

/// The JSON object in `bytes` when it names `id`.
pub fn naming(bytes: &[u8], id: Identity) -> Option<Map<String, Value>> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(bytes) else { return None };
    let pid_ok = m.get("pid").and_then(Value::as_u64) == Some(id.pid);
    let start_ok = match (m.get("start_time").and_then(Value::as_u64), id.start_time) {
        (Some(recorded), Some(ours)) => recorded == ours,
        _ => true,
    };
    (pid_ok && start_ok).then_some(m)
}

/// `gateway_state` of a state file that names `id`.
pub fn state_of(bytes: &[u8], id: Identity) -> Option<String> {
    naming(bytes, id)?.get("gateway_state").and_then(Value::as_str).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_file_naming_this_very_process_counts() {
        let id = Identity { pid: 57, start_time: Some(1234) };
        assert_eq!(state_of(br#"{"pid":57,"start_time":1234,"gateway_state":"running"}"#, id).as_deref(), Some("running"));
        assert_eq!(state_of(br#"{"pid":57,"gateway_state":"running"}"#, id).as_deref(), Some("running"), "no start time recorded");
        assert_eq!(state_of(br#"{"pid":57,"start_time":999,"gateway_state":"running"}"#, id), None, "the same pid in an earlier boot");
        assert_eq!(state_of(br#"{"pid":58,"gateway_state":"running"}"#, id), None);
        assert_eq!(state_of(br#"{"pid":"57","gateway_state":"running"}"#, id), None);
        assert_eq!(state_of(b"[57]", id), None);
    }
}
