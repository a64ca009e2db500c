//! The harness for real-container tests: one [`Box`] per test (a container of the hermes-s6
//! image on its own named volume), driven only the way a user would: `docker exec` as the
//! hermes user, `docker restart`/`stop`/`start`/`kill`, reading results from inside.
//!
//! Under `CI=true` a missing Docker engine is a failure; elsewhere the tests skip loudly.
//! The image is brought up to date with scripts/build-image once per test run (unless
//! HERMES_S6_IMAGE names an image to use as it is). Every container and volume
//! is removed when its `Box` drops, whether the test passed or panicked.

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn image() -> String {
    std::env::var("HERMES_S6_IMAGE").unwrap_or_else(|_| "hermes-s6:dev".into())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// Docker, with the image present; `None` (after a loud message) when the test must skip.
pub fn docker() -> Option<Docker> {
    static READY: Mutex<Option<bool>> = Mutex::new(None);
    let d = Docker::connect_with_local_defaults().ok();
    let up = d.as_ref().is_some_and(|d| block(d.ping()).is_ok());
    if !up {
        if in_ci() {
            panic!("CI=true but no Docker engine answers (is dockerd running? /var/run/docker.sock)");
        }
        eprintln!("\n*** SKIPPED: no Docker engine answers; real-container tests need one ***\n");
        return None;
    }
    let d = d.unwrap();
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if ready.is_none() {
        // Our own image is (re)built so it never lags the code under test (incremental: a
        // no-op rebuild takes seconds). An image named in HERMES_S6_IMAGE is used as given.
        let given = std::env::var("HERMES_S6_IMAGE").is_ok();
        if !given || block(d.inspect_image(&image())).is_err() {
            eprintln!("itests: building {} with scripts/build-image", image());
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let st = std::process::Command::new("scripts/build-image").current_dir(root).status().expect("run scripts/build-image");
            assert!(st.success(), "scripts/build-image failed");
        }
        *ready = Some(true);
    }
    Some(d)
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Result of a `docker exec`.
#[derive(Debug, Clone)]
pub struct Exec {
    pub code: i64,
    pub out: String,
}

impl Exec {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

/// One container of the image on its own named volume; removed (with the volume) on drop.
pub struct Box {
    pub docker: Docker,
    pub name: String,
    pub volume: String,
    /// Boot passes seen before the last stop/kill (the log cannot be read while stopped).
    passes_before_stop: std::cell::Cell<usize>,
}

impl Box {
    /// Create and start a container named `hermes-s6-it-<tag>-<pid>` with `env`.
    pub fn start(docker: Docker, tag: &str, env: &[&str]) -> Box {
        Self::start_with_cmd(docker, tag, env, &[])
    }

    /// The same, with a container command (the image's CMD is empty).
    pub fn start_with_cmd(docker: Docker, tag: &str, env: &[&str], cmd: &[&str]) -> Box {
        let name = format!("hermes-s6-it-{tag}-{}", std::process::id());
        let volume = format!("{name}-data");
        let b = Box { docker, name, volume, passes_before_stop: std::cell::Cell::new(0) };
        // Leftovers of an earlier, killed run of this very test.
        b.remove();
        block(b.docker.create_volume(VolumeCreateRequest { name: Some(b.volume.clone()), ..Default::default() })).unwrap();
        let body = ContainerCreateBody {
            image: Some(image()),
            env: Some(env.iter().map(|s| s.to_string()).collect()),
            cmd: (!cmd.is_empty()).then(|| cmd.iter().map(|s| s.to_string()).collect()),
            host_config: Some(HostConfig { binds: Some(vec![format!("{}:/opt/data", b.volume)]), ..Default::default() }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(&b.name).build();
        block(b.docker.create_container(Some(opts), body)).unwrap();
        block(b.docker.start_container(&b.name, None)).unwrap();
        b.wait_booted(0);
        b
    }

    /// Wait until the boot log has `passes` + 1 `profile=default` lines (one per boot pass).
    pub fn wait_booted(&self, previous_passes: usize) {
        let ok = wait_until(Duration::from_secs(60), || self.boot_passes() > previous_passes && self.registrar_up());
        assert!(ok, "container did not finish booting; logs:\n{}", self.logs());
    }

    fn registrar_up(&self) -> bool {
        self.root(&["s6-svstat", "-o", "up", "/run/service/registrar"]).out.trim() == "true"
    }

    pub fn boot_passes(&self) -> usize {
        let e = self.root(&["cat", "/opt/data/logs/container-boot.log"]);
        if !e.ok() {
            return 0;
        }
        e.out.lines().filter(|l| l.contains(" profile=default ")).count()
    }

    /// The lines of the last boot pass in the boot log.
    pub fn last_pass(&self) -> Vec<String> {
        let log = self.root(&["cat", "/opt/data/logs/container-boot.log"]).out;
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.iter().rposition(|l| l.contains(" profile=default ")).unwrap_or(0);
        lines[start..].iter().map(|s| s.to_string()).collect()
    }

    pub fn exec_as(&self, user: &str, cmd: &[&str]) -> Exec {
        block(async {
            let opts = CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                user: Some(user),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let created = self.docker.create_exec(&self.name, opts).await.expect("create exec");
            let mut out = String::new();
            if let StartExecResults::Attached { output: mut stream, .. } = self.docker.start_exec(&created.id, None).await.expect("start exec") {
                while let Some(Ok(chunk)) = stream.next().await {
                    out.push_str(&chunk.to_string());
                }
            }
            let code = self.docker.inspect_exec(&created.id).await.ok().and_then(|i| i.exit_code).unwrap_or(-1);
            Exec { code, out }
        })
    }

    /// As the unprivileged user (uid 10000).
    pub fn hermes(&self, cmd: &[&str]) -> Exec {
        self.exec_as("hermes", cmd)
    }

    pub fn root(&self, cmd: &[&str]) -> Exec {
        self.exec_as("root", cmd)
    }

    /// `s6-svstat -o up` of a slot: Some(true/false), None when unsupervised.
    pub fn up(&self, slot: &str) -> Option<bool> {
        let e = self.hermes(&["s6-svstat", "-o", "up", &format!("/run/service/{slot}")]);
        e.ok().then(|| e.out.trim() == "true")
    }

    pub fn pid(&self, slot: &str) -> Option<u64> {
        let e = self.hermes(&["s6-svstat", "-o", "pid", &format!("/run/service/{slot}")]);
        e.out.trim().parse::<i64>().ok().filter(|p| *p > 0).map(|p| p as u64)
    }

    pub fn health(&self, profile: &str) -> bool {
        self.hermes(&["hermes-gateway", "--probe-profile", profile]).ok()
    }

    pub fn restart(&self) {
        let passes = self.boot_passes();
        let opts = RestartContainerOptionsBuilder::default().t(20).build();
        block(self.docker.restart_container(&self.name, Some(opts))).unwrap();
        self.wait_booted(passes);
    }

    pub fn stop(&self) {
        self.passes_before_stop.set(self.boot_passes());
        let opts = StopContainerOptionsBuilder::default().t(20).build();
        block(self.docker.stop_container(&self.name, Some(opts))).unwrap();
    }

    pub fn kill(&self) {
        self.passes_before_stop.set(self.boot_passes());
        let opts = KillContainerOptionsBuilder::default().signal("KILL").build();
        block(self.docker.kill_container(&self.name, Some(opts))).unwrap();
    }

    /// `docker start` of a stopped container; waits for the next boot pass.
    pub fn start_again(&self) {
        block(self.docker.start_container(&self.name, None)).unwrap();
        self.wait_booted(self.passes_before_stop.get());
    }

    /// Wait for the container to stop by itself; its exit code.
    pub fn wait_exit(&self, limit: Duration) -> Option<i64> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            let st = block(self.docker.inspect_container(&self.name, None)).ok()?.state?;
            if st.running == Some(false) {
                return st.exit_code;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn exit_code(&self) -> Option<i64> {
        block(self.docker.inspect_container(&self.name, None)).ok()?.state?.exit_code
    }

    pub fn logs(&self) -> String {
        let out = std::process::Command::new("docker").args(["logs", &self.name]).output();
        out.map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))).unwrap_or_default()
    }

    fn remove(&self) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        let _ = block(self.docker.remove_container(&self.name, Some(opts)));
        let _ = block(self.docker.remove_volume(&self.volume, None::<bollard::query_parameters::RemoveVolumeOptions>));
    }
}

impl Drop for Box {
    fn drop(&mut self) {
        self.remove();
    }
}
