//! The harness for real-container tests: one [`HermesContainer`] per test (a container of the
//! hermes-s6 image on its own named volume), driven only the way a user would: `docker exec`
//! as the hermes user or root, `docker restart`/`stop`/`start`/`kill`, reading results from
//! inside.
//!
//! testcontainers creates and starts each container (a [`GenericImage`] of the local tag) and
//! removes it when the [`HermesContainer`] drops; the harness removes the named volume right
//! after. What testcontainers does not offer (exec as a given user, restart, kill, volumes,
//! logs, waiting for an exit) goes through the bollard client testcontainers itself uses.
//!
//! Every test that calls [`HermesContainer::start`] needs Docker and is marked
//! `#[ignore = "needs Docker"]`; run with `--include-ignored`, it fails (never skips) when no
//! engine answers. The image is brought up to date with `scripts/build-image` once per test
//! process, unless `HERMES_S6_IMAGE` names an image that already exists. Nothing is ever
//! pulled: the image is checked to be in the local engine before testcontainers is asked to
//! create a container from it (testcontainers pulls only when the engine reports the image
//! missing).

use futures_util::StreamExt;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use testcontainers::bollard::errors::Error as DockerError;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use testcontainers::bollard::models::VolumeCreateRequest;
use testcontainers::bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptions, RestartContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;
use testcontainers::core::client::docker_client_instance;
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// Label on every container and volume the harness makes: the test's tag.
const LABEL_TEST: &str = "org.hermes-s6.itest";
/// Label naming the process that made it: `<hostname>/<pid>`, so leftovers of a run that was
/// killed before its destructors ran can be told from the resources of a run still going.
const LABEL_OWNER: &str = "org.hermes-s6.itest.owner";
/// Seconds `docker stop`/`docker restart` wait after SIGTERM before SIGKILL.
const STOP_TIMEOUT_SECS: i32 = 20;

/// The image under test: `HERMES_S6_IMAGE`, default `hermes-s6:dev`.
pub fn image() -> String {
    std::env::var("HERMES_S6_IMAGE").unwrap_or_else(|_| "hermes-s6:dev".into())
}

/// `repo[:tag]` split the way Docker reads it (a `:` before the last `/` is a registry port).
fn name_and_tag(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name.into(), tag.into()),
        _ => (image.into(), "latest".into()),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// Every Docker call runs on the one runtime of the test process (bollard's connections and
/// testcontainers' drop both need a runtime that outlives each test).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

fn not_found(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 404, .. })
}

/// The Docker engine: testcontainers' own bollard client, so both talk to the same engine
/// (`DOCKER_HOST`, or the local socket). Panics with what to do when none answers.
pub fn engine() -> Docker {
    let no_engine = |e: &dyn std::fmt::Display| -> ! {
        panic!(
            "this test needs Docker, and no engine answers ({e}): start dockerd (/var/run/docker.sock, \
             or set DOCKER_HOST), or run without --include-ignored to list the Docker tests as ignored"
        )
    };
    let d = block(docker_client_instance()).unwrap_or_else(|e| no_engine(&e));
    if let Err(e) = block(d.ping()) {
        no_engine(&e);
    }
    d
}

/// The engine, with the image built or refreshed (once per test process).
pub fn docker() -> Docker {
    let d = engine();
    ensure_image(&d);
    d
}

/// Build or refresh the image once per test process; every later call reuses the outcome.
fn ensure_image(d: &Docker) {
    static READY: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = ready.get_or_insert_with(|| {
        // Our own image is (re)built so it never lags the code under test (incremental: a
        // no-op rebuild takes seconds). An image named in HERMES_S6_IMAGE is used as given.
        let given = std::env::var("HERMES_S6_IMAGE").is_ok();
        if !given || require_local_image(d, &image()).is_err() {
            eprintln!("itests: building {} with scripts/build-image", image());
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let st = std::process::Command::new("scripts/build-image")
                .current_dir(root)
                .env("HERMES_S6_IMAGE", image())
                .status()
                .map_err(|e| format!("could not run scripts/build-image: {e}"))?;
            if !st.success() {
                return Err(format!("scripts/build-image failed ({st}) building {}", image()));
            }
        }
        require_local_image(d, &image())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// `Ok` when `image` is in the local engine. Nothing is pulled: there is no registry, and a
/// missing image is the user's to build.
pub fn require_local_image(d: &Docker, image: &str) -> Result<(), String> {
    match block(d.inspect_image(image)) {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Err(format!(
            "image {image} is not in the local Docker engine, and the tests never pull it: \
             build it with `HERMES_S6_IMAGE={image} scripts/build-image`"
        )),
        Err(e) => Err(format!("could not inspect image {image}: {e}")),
    }
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

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}/{}", host.trim(), std::process::id())
}

/// A resource labelled `owner` may be removed: it was made on this host by a process that is
/// gone (or by this very process, whose pid a killed run once had).
fn owner_is_gone(owner: &str) -> bool {
    let me = self::owner();
    let Some((host, pid)) = owner.rsplit_once('/') else { return false };
    owner == me || (me.rsplit_once('/').is_some_and(|(h, _)| h == host) && !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// How a container is run: the flags Kubernetes (or an operator) applies. The default is a
/// plain `docker run` of the image.
#[derive(Debug, Clone, Default)]
pub struct RunAs {
    /// `KEY=value`.
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    /// `--user uid:gid`.
    pub user: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs path:options`.
    pub tmpfs: Vec<(String, String)>,
    /// `--cap-drop ALL`, then `--cap-add` each of `cap_add`.
    pub cap_drop_all: bool,
    pub cap_add: Vec<String>,
    /// `--init`: tini as PID 1.
    pub init: bool,
    pub pids_limit: Option<i64>,
    /// Bytes.
    pub memory: Option<i64>,
    /// A shell script run as root in a throwaway container of the image on the volume
    /// (mounted at /opt/data) before the first start: a volume populated elsewhere.
    pub prepare_volume: Option<String>,
    /// Run hermes-agent's real gateways (the image's default). Otherwise the slots run the
    /// stand-in (`hermes-gateway`): the fast suites' double, started in milliseconds.
    pub real_gateway: bool,
}

/// The stand-in gateway, as the image installs it.
pub const STAND_IN: &str = "HERMES_S6_GATEWAY_PROGRAM=/usr/local/bin/hermes-gateway";

/// Run `script` as root in a throwaway container of the image with `volume` at /opt/data.
fn one_shot(d: &Docker, volume: &str, script: &str) {
    use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
    use testcontainers::bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
    let name = format!("{volume}-prepare");
    remove_container(d, &name);
    let body = ContainerCreateBody {
        image: Some(image()),
        entrypoint: Some(vec!["/bin/sh".into(), "-euc".into(), script.into()]),
        cmd: Some(vec![]),
        user: Some("0".into()),
        host_config: Some(HostConfig { binds: Some(vec![format!("{volume}:/opt/data")]), ..Default::default() }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    block(d.create_container(Some(opts), body)).unwrap_or_else(|e| panic!("create {name}: {e}"));
    block(d.start_container(&name, None::<StartContainerOptions>)).unwrap_or_else(|e| panic!("start {name}: {e}"));
    let wait = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let code = block(async { d.wait_container(&name, Some(wait)).next().await });
    let failed = matches!(code, Some(Err(_)) | Some(Ok(testcontainers::bollard::models::ContainerWaitResponse { status_code: 1.., .. })));
    let logs = {
        let opts = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        block(async { d.logs(&name, Some(opts)).map(|c| c.map(|c| c.to_string()).unwrap_or_default()).collect::<Vec<_>>().await }).join("")
    };
    remove_container(d, &name);
    assert!(!failed, "preparing the volume failed ({code:?}): {logs}");
}

/// One container of the image on its own named volume; the container and the volume are
/// removed when it drops, whether the test passed or panicked.
pub struct HermesContainer {
    docker: Docker,
    /// `None` only while starting (and if testcontainers failed to start it).
    container: Option<ContainerAsync<GenericImage>>,
    pub name: String,
    pub volume: String,
    /// Boot passes seen before the last stop/kill (the log cannot be read while stopped).
    passes_before_stop: Cell<usize>,
    /// Who the container runs as (`root`, or its `--user`): who can read its supervision tree.
    admin: String,
}

impl HermesContainer {
    /// Create and start a container named `hermes-s6-it-<tag>-<pid>` with `env` (`KEY=value`),
    /// its volume at `/opt/data`; returns once the first boot pass is done. `tag` names one
    /// test: each test uses its own, since starting sweeps what earlier runs left under it.
    pub fn start(tag: &str, env: &[&str]) -> HermesContainer {
        Self::start_with_cmd(tag, env, &[])
    }

    /// The same, with a container command (the image's CMD is empty).
    pub fn start_with_cmd(tag: &str, env: &[&str], cmd: &[&str]) -> HermesContainer {
        let run = RunAs {
            env: env.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..RunAs::default()
        };
        Self::start_as(tag, &run)
    }

    /// Create and start a container run the way `run` says (the flags Kubernetes or an
    /// operator applies); returns once the first boot pass is done.
    pub fn start_as(tag: &str, run: &RunAs) -> HermesContainer {
        let c = Self::create_as(tag, run);
        c.wait_booted(0);
        c
    }

    /// The same, without waiting for a boot (a configuration that must refuse to start).
    pub fn create_as(tag: &str, run: &RunAs) -> HermesContainer {
        let docker = docker();
        let name = format!("hermes-s6-it-{tag}-{}", std::process::id());
        let volume = format!("{name}-data");
        sweep_leftovers(&docker, tag);
        let labels = [(LABEL_TEST.to_string(), tag.to_string()), (LABEL_OWNER.to_string(), owner())];
        let admin = run.user.clone().unwrap_or_else(|| "root".into());
        let mut c = HermesContainer { docker, container: None, name, volume, passes_before_stop: Cell::new(0), admin };
        let create = VolumeCreateRequest { name: Some(c.volume.clone()), labels: Some(labels.clone().into()), ..Default::default() };
        block(c.docker.create_volume(create)).unwrap_or_else(|e| panic!("create volume {}: {e}", c.volume));
        if let Some(script) = &run.prepare_volume {
            one_shot(&c.docker, &c.volume, script);
        }

        let (image_name, image_tag) = name_and_tag(&image());
        let mut req = GenericImage::new(image_name, image_tag)
            .with_container_name(&c.name)
            .with_labels(labels)
            .with_mount(Mount::volume_mount(&c.volume, "/opt/data"));
        let chosen = run.env.iter().any(|kv| kv.starts_with("HERMES_S6_GATEWAY_PROGRAM="));
        let stand_in = (!run.real_gateway && !chosen).then(|| STAND_IN.to_string());
        for kv in run.env.iter().chain(stand_in.as_ref()) {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("env {kv:?} is not KEY=value"));
            req = req.with_env_var(k, v);
        }
        if !run.cmd.is_empty() {
            req = req.with_cmd(run.cmd.iter());
        }
        if let Some(u) = &run.user {
            req = req.with_user(u);
        }
        if run.read_only {
            req = req.with_readonly_rootfs(true);
        }
        if run.cap_drop_all {
            req = req.with_cap_drop("ALL");
        }
        for cap in &run.cap_add {
            req = req.with_cap_add(cap);
        }
        let host = run.clone();
        req = req.with_host_config_modifier(move |h| {
            if !host.tmpfs.is_empty() {
                h.tmpfs = Some(host.tmpfs.iter().cloned().collect());
            }
            if host.init {
                h.init = Some(true);
            }
            if let Some(n) = host.pids_limit {
                h.pids_limit = Some(n);
            }
            if let Some(m) = host.memory {
                h.memory = Some(m);
            }
        });
        // Checked here, just before the create, so a missing image is this error and never a
        // pull attempt against a registry.
        if let Err(e) = require_local_image(&c.docker, &image()) {
            panic!("{e}");
        }
        let started = block(req.start()).unwrap_or_else(|e| panic!("start container {} of {}: {e}", c.name, image()));
        c.container = Some(started);
        c
    }

    fn container(&self) -> &ContainerAsync<GenericImage> {
        self.container.as_ref().expect("started")
    }

    /// Wait until the boot log has more than `previous_passes` `profile=default` lines (one
    /// per boot pass) and the registrar is up.
    pub fn wait_booted(&self, previous_passes: usize) {
        let ok = wait_until(Duration::from_secs(60), || self.boot_passes() > previous_passes && self.registrar_up());
        assert!(ok, "container did not finish booting; logs:\n{}", self.logs());
    }

    fn registrar_up(&self) -> bool {
        self.admin(&["s6-svstat", "-o", "up", "/run/service/registrar"]).out.trim() == "true"
    }

    /// The boot log, read as the container's user, else as the volume's (hermes-agent makes the
    /// home 0700, which a root without CAP_DAC_READ_SEARCH cannot enter).
    fn boot_log(&self) -> Exec {
        let e = self.admin(&["cat", "/opt/data/logs/container-boot.log"]);
        if e.ok() {
            return e;
        }
        self.hermes(&["cat", "/opt/data/logs/container-boot.log"])
    }

    pub fn boot_passes(&self) -> usize {
        let e = self.boot_log();
        if !e.ok() {
            return 0;
        }
        e.out.lines().filter(|l| l.contains(" profile=default ")).count()
    }

    /// The lines of the last boot pass in the boot log.
    pub fn last_pass(&self) -> Vec<String> {
        let log = self.boot_log().out;
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.iter().rposition(|l| l.contains(" profile=default ")).unwrap_or(0);
        lines[start..].iter().map(|s| s.to_string()).collect()
    }

    /// `docker exec --user <user>`: exit code and stdout+stderr as they came.
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
            if let StartExecResults::Attached { output: mut stream, .. } =
                self.docker.start_exec(&created.id, None).await.expect("start exec")
            {
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => out.push_str(&chunk.to_string()),
                        Err(e) => {
                            out.push_str(&format!("\n[itests: exec output broke off: {e}]"));
                            break;
                        }
                    }
                }
            }
            // The output closes as the process ends; its exit code follows a moment later.
            let end = Instant::now() + Duration::from_secs(5);
            let code = loop {
                let inspected = self.docker.inspect_exec(&created.id).await.ok();
                match inspected.as_ref().map(|i| (i.running, i.exit_code)) {
                    Some((Some(true), _)) if Instant::now() < end => tokio::time::sleep(Duration::from_millis(20)).await,
                    Some((_, Some(code))) => break code,
                    _ => break -1,
                }
            };
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

    /// As the container's own user (root, or the uid it was started with): its probes and
    /// its operator's commands run so.
    pub fn admin(&self, cmd: &[&str]) -> Exec {
        self.exec_as(&self.admin, cmd)
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

    /// `docker restart -t 20`; waits for the next boot pass.
    pub fn restart(&self) {
        let passes = self.boot_passes();
        let opts = RestartContainerOptionsBuilder::default().t(STOP_TIMEOUT_SECS).build();
        block(self.docker.restart_container(&self.name, Some(opts))).unwrap_or_else(|e| panic!("restart {}: {e}", self.name));
        self.wait_booted(passes);
    }

    /// `docker stop -t 20`.
    pub fn stop(&self) {
        self.passes_before_stop.set(self.boot_passes());
        block(self.container().stop_with_timeout(Some(STOP_TIMEOUT_SECS))).unwrap_or_else(|e| panic!("stop {}: {e}", self.name));
    }

    /// `docker update --pids-limit n` (-1: no limit).
    pub fn set_pids_limit(&self, n: i64) {
        let body = testcontainers::bollard::models::ContainerUpdateBody { pids_limit: Some(n), ..Default::default() };
        block(self.docker.update_container(&self.name, body)).unwrap_or_else(|e| panic!("update {}: {e}", self.name));
    }

    /// `docker kill` (SIGKILL): the container dies under its processes.
    pub fn kill(&self) {
        self.passes_before_stop.set(self.boot_passes());
        let opts = KillContainerOptionsBuilder::default().signal("KILL").build();
        block(self.docker.kill_container(&self.name, Some(opts))).unwrap_or_else(|e| panic!("kill {}: {e}", self.name));
    }

    /// `docker start` of a stopped container; waits for the next boot pass.
    pub fn start_again(&self) {
        block(self.container().start()).unwrap_or_else(|e| panic!("start {} again: {e}", self.name));
        self.wait_booted(self.passes_before_stop.get());
    }

    /// Wait (at most `limit`) for the container to stop by itself; its exit code.
    pub fn wait_exit(&self, limit: Duration) -> Option<i64> {
        let opts = WaitContainerOptionsBuilder::default().condition("not-running").build();
        // bollard reports a non-zero exit as an error; either way the container has stopped.
        let waited = block(async { tokio::time::timeout(limit, self.docker.wait_container(&self.name, Some(opts)).next()).await });
        waited.ok()?;
        self.exit_code()
    }

    /// The exit code of a stopped container; `None` while it runs.
    pub fn exit_code(&self) -> Option<i64> {
        block(self.container().exit_code()).unwrap_or_else(|e| panic!("inspect {}: {e}", self.name))
    }

    /// `docker logs`: stdout and stderr of every start so far, interleaved as written.
    pub fn logs(&self) -> String {
        let opts = LogsOptionsBuilder::default().stdout(true).stderr(true).tail("all").build();
        block(async {
            let mut stream = self.docker.logs(&self.name, Some(opts));
            let mut out = String::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => out.push_str(&chunk.to_string()),
                    Err(e) => {
                        out.push_str(&format!("\n[itests: could not read the logs of {}: {e}]", self.name));
                        break;
                    }
                }
            }
            out
        })
    }
}

impl Drop for HermesContainer {
    fn drop(&mut self) {
        match self.container.take() {
            // testcontainers removes the container (forced, with its anonymous volumes); its
            // destructor needs to run inside the runtime.
            Some(c) => block(async move { drop(c) }),
            // Created but never handed over (testcontainers failed to start it): by name.
            None => remove_container(&self.docker, &self.name),
        }
        // The named volume is ours: testcontainers leaves named volumes alone.
        remove_volume(&self.docker, &self.volume);
    }
}

fn remove_container(d: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match block(d.remove_container(name, Some(opts))) {
        Ok(()) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => eprintln!("itests: could not remove container {name}: {e}"),
    }
}

fn remove_volume(d: &Docker, name: &str) {
    match block(d.remove_volume(name, None::<RemoveVolumeOptions>)) {
        Ok(()) => {}
        Err(e) if not_found(&e) => {}
        Err(e) => eprintln!("itests: could not remove volume {name}: {e}"),
    }
}

/// Remove what an earlier, killed run of the test `tag` left behind (its process is gone, so
/// its destructors never ran), and nothing that belongs to a run still going.
fn sweep_leftovers(d: &Docker, tag: &str) {
    let filters = HashMap::from([("label", vec![format!("{LABEL_TEST}={tag}")])]);
    let containers = block(d.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build())))
        .unwrap_or_else(|e| panic!("list containers: {e}"));
    for c in containers {
        let owner = c.labels.as_ref().and_then(|l| l.get(LABEL_OWNER)).map(String::as_str).unwrap_or("");
        if let (true, Some(id)) = (owner_is_gone(owner), c.id.as_deref()) {
            eprintln!("itests: removing leftover container {:?} of {owner}", c.names.unwrap_or_default());
            remove_container(d, id);
        }
    }
    let volumes = block(d.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())))
        .unwrap_or_else(|e| panic!("list volumes: {e}"));
    for v in volumes.volumes.unwrap_or_default() {
        if owner_is_gone(v.labels.get(LABEL_OWNER).map(String::as_str).unwrap_or("")) {
            eprintln!("itests: removing leftover volume {}", v.name);
            remove_volume(d, &v.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_like_docker() {
        assert_eq!(name_and_tag("hermes-s6:dev"), ("hermes-s6".into(), "dev".into()));
        assert_eq!(name_and_tag("hermes-s6"), ("hermes-s6".into(), "latest".into()));
        assert_eq!(name_and_tag("localhost:5000/hermes-s6"), ("localhost:5000/hermes-s6".into(), "latest".into()));
        assert_eq!(name_and_tag("localhost:5000/hermes-s6:x"), ("localhost:5000/hermes-s6".into(), "x".into()));
    }

    fn container_exists(d: &Docker, name: &str) -> bool {
        match block(d.inspect_container(name, None)) {
            Ok(_) => true,
            Err(e) if not_found(&e) => false,
            Err(e) => panic!("inspect container {name}: {e}"),
        }
    }

    fn volume_exists(d: &Docker, name: &str) -> bool {
        match block(d.inspect_volume(name)) {
            Ok(_) => true,
            Err(e) if not_found(&e) => false,
            Err(e) => panic!("inspect volume {name}: {e}"),
        }
    }

    #[test]
    #[ignore = "needs Docker"]
    fn a_missing_image_is_an_error_that_says_to_build_it() {
        let e = require_local_image(&engine(), "hermes-s6:itests-no-such-image").unwrap_err();
        assert!(e.contains("never pull") && e.contains("scripts/build-image"), "{e}");
    }

    #[test]
    #[ignore = "needs Docker"]
    fn container_and_volume_are_removed_when_the_test_panics() {
        let d = docker();
        let mut names = None;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = HermesContainer::start("cleanup", &[]);
            assert!(container_exists(&d, &c.name) && volume_exists(&d, &c.volume));
            names = Some((c.name.clone(), c.volume.clone()));
            panic!("a failing test");
        }));
        assert!(outcome.is_err());
        let (name, volume) = names.expect("the container started");
        assert!(!container_exists(&d, &name), "container {name} left behind");
        assert!(!volume_exists(&d, &volume), "volume {volume} left behind");
    }

    /// Removes the fixtures of the sweep test whatever happens.
    struct Fixtures(Docker, Vec<String>);
    impl Drop for Fixtures {
        fn drop(&mut self) {
            for n in &self.1 {
                remove_container(&self.0, n);
                remove_volume(&self.0, &format!("{n}-data"));
            }
        }
    }

    #[test]
    #[ignore = "needs Docker"]
    fn leftovers_of_a_killed_run_are_swept_and_those_of_a_live_run_kept() {
        let d = docker();
        let host = owner().rsplit_once('/').unwrap().0.to_string();
        let tag = format!("sweep-{}", std::process::id());
        let (dead, live) = (format!("hermes-s6-it-{tag}-dead"), format!("hermes-s6-it-{tag}-live"));
        let _fixtures = Fixtures(d.clone(), vec![dead.clone(), live.clone()]);
        // What a killed run leaves: a container and its volume, labelled with a gone owner.
        for (name, owner) in [(&dead, format!("{host}/{}", i32::MAX)), (&live, format!("{host}/1"))] {
            let labels = HashMap::from([(LABEL_TEST.to_string(), tag.clone()), (LABEL_OWNER.to_string(), owner)]);
            let vol = VolumeCreateRequest { name: Some(format!("{name}-data")), labels: Some(labels.clone()), ..Default::default() };
            block(d.create_volume(vol)).unwrap();
            let body =
                testcontainers::bollard::models::ContainerCreateBody { image: Some(image()), labels: Some(labels), ..Default::default() };
            let opts = testcontainers::bollard::query_parameters::CreateContainerOptionsBuilder::new().name(name).build();
            block(d.create_container(Some(opts), body)).unwrap();
        }
        sweep_leftovers(&d, &tag);
        assert!(!container_exists(&d, &dead) && !volume_exists(&d, &format!("{dead}-data")), "the killed run's leftovers are gone");
        assert!(container_exists(&d, &live) && volume_exists(&d, &format!("{live}-data")), "a live run's are kept");
    }

    #[test]
    fn only_leftovers_of_gone_runs_on_this_host_are_swept() {
        let me = owner();
        let host = me.rsplit_once('/').unwrap().0.to_string();
        assert!(owner_is_gone(&me), "a leftover under our own pid is from a killed run");
        assert!(owner_is_gone(&format!("{host}/{}", i32::MAX)), "no such process");
        assert!(!owner_is_gone(&format!("{host}/1")), "a live process");
        assert!(!owner_is_gone(&format!("{host}-elsewhere/{}", i32::MAX)), "another host's run is not ours to judge");
        assert!(!owner_is_gone(""), "unlabelled");
    }
}
