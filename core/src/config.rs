//! Where things are and who the unprivileged user is. Resolved once by the binary (flags, then
//! environment, then defaults) and passed down; the library never reads the environment.

use std::path::PathBuf;

pub const DEFAULT_HOME: &str = "/opt/data";
pub const DEFAULT_SCANDIR: &str = "/run/service";
pub const DEFAULT_UID: u32 = 10000;
pub const DEFAULT_USER: &str = "hermes";
/// s6-overlay's interpreter line: the container environment reaches the scripts through it.
pub const DEFAULT_INTERPRETER: &str = "/command/with-contenv sh";
pub const DEFAULT_GATEWAY_PROGRAM: &str = "hermes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `$HERMES_HOME`: the persistent volume, root profile at its top.
    pub home: PathBuf,
    /// The s6-svscan scan directory the slots are published into.
    pub scandir: PathBuf,
    /// The unprivileged user the gateways run as.
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// What follows `#!` in every rendered script.
    pub interpreter: String,
    /// The program that runs a gateway: rendered as `<program> [-p <P>] gateway run --replace`.
    pub gateway_program: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            home: PathBuf::from(DEFAULT_HOME),
            scandir: PathBuf::from(DEFAULT_SCANDIR),
            user: DEFAULT_USER.to_string(),
            uid: DEFAULT_UID,
            gid: DEFAULT_UID,
            interpreter: DEFAULT_INTERPRETER.to_string(),
            gateway_program: DEFAULT_GATEWAY_PROGRAM.to_string(),
        }
    }
}

impl Config {
    /// Reject values that would break the rendered scripts. These come from root's own
    /// configuration, not from the volume, so they are checked for shape, not trust.
    pub fn check(&self) -> Result<(), String> {
        for (what, v) in [
            ("interpreter", &self.interpreter),
            ("gateway program", &self.gateway_program),
            ("user", &self.user),
        ] {
            if v.trim().is_empty() || v.contains(['\n', '\r', '\0']) {
                return Err(format!("{what} must be a non-empty single line, got {v:?}"));
            }
        }
        if self.user.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            return Err(format!("user must be a plain user name, got {:?}", self.user));
        }
        for (what, p) in [("home", &self.home), ("scandir", &self.scandir)] {
            if !p.is_absolute() {
                return Err(format!("{what} must be an absolute path, got {}", p.display()));
            }
        }
        Ok(())
    }
}

/// The uid/gid of `user` from the password database, if it exists.
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
}
