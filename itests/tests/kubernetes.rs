//! `deploy/kubernetes/`: the manifests validate (PyPI's `kubernetes-validate --strict`, its
//! schemas bundled, offline), and each mode's pod runs under `podman kube play` (Debian's
//! podman 4.3): it boots, a profile is created and started, the pod stops within its grace
//! with exit 0, and after `podman kube down` and a new play the wanted gateway is back from the
//! claim, with no root-owned file in the volume.
//!
//! What podman does not do, and this therefore does not check: it plays Pods and Deployments
//! only (the StatefulSet is played as a Deployment with its claim template made a
//! PersistentVolumeClaim), it ignores readiness probes, `emptyDir.medium`,
//! `terminationGracePeriodSeconds` and `fsGroup`, and without systemd it cannot run the
//! image's HEALTHCHECK on a timer (it logs that it could not). The probes' command is run by
//! hand instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// `kubernetes-validate` from PATH, else where `scripts/install-deps` puts it.
fn validator() -> PathBuf {
    let installed = PathBuf::from("/opt/kubernetes-validate/bin/kubernetes-validate");
    if installed.exists() {
        return installed;
    }
    let found = Command::new("sh").args(["-c", "command -v kubernetes-validate"]).output().ok().filter(|o| o.status.success());
    found
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| panic!("needs kubernetes-validate: run scripts/install-deps"))
}

#[test]
#[ignore = "needs kubernetes-validate (scripts/install-deps)"]
fn the_manifests_validate_strictly() {
    let files = manifests();
    assert!(files.len() >= 2, "{files:?}");
    let o = Command::new(validator()).arg("--strict").args(&files).output().unwrap();
    let out = text(&o);
    assert!(o.status.success() && !out.contains("ERROR"), "{out}");
    // Each resource of each file was looked at.
    assert_eq!(out.matches(" passed for resource ").count(), 2 * files.len(), "{out}");
}

fn key(k: &str) -> Yaml {
    Yaml::String(k.to_string())
}

fn get<'a>(y: &'a mut Yaml, k: &str) -> &'a mut Yaml {
    match y {
        Yaml::Hash(h) => h.get_mut(&key(k)).unwrap_or_else(|| panic!("no {k}")),
        _ => panic!("{k}: not a mapping"),
    }
}

fn remove(y: &mut Yaml, k: &str) -> Option<Yaml> {
    match y {
        Yaml::Hash(h) => h.remove(&key(k)),
        _ => None,
    }
}

/// The StatefulSet of `manifest` as `podman kube play` takes it: a Deployment named `name`
/// and a PersistentVolumeClaim `<name>-data` for its claim template (left out with
/// `with_claim: false`: podman 4.3 refuses to play a claim whose volume exists, and uses the volume
/// a Deployment names); container ports dropped (podman would publish them on the host, and
/// two tests would collide).
fn for_podman(manifest: &Path, name: &str, with_claim: bool) -> String {
    let docs = YamlLoader::load_from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let mut set = docs.into_iter().find(|d| d["kind"].as_str() == Some("StatefulSet")).expect("a StatefulSet");
    let mut templates = remove(get(&mut set, "spec"), "volumeClaimTemplates").expect("a claim template");
    remove(get(&mut set, "spec"), "serviceName");
    *get(&mut set, "kind") = Yaml::String("Deployment".into());
    *get(get(&mut set, "metadata"), "name") = Yaml::String(name.into());
    let pod = get(get(get(&mut set, "spec"), "template"), "spec");
    if let Yaml::Array(cs) = get(pod, "containers") {
        for c in cs {
            remove(c, "ports");
        }
    }
    let mut out = Vec::new();
    let Yaml::Array(ts) = &mut templates else { panic!("volumeClaimTemplates: not a list") };
    for t in ts {
        let volume = get(get(t, "metadata"), "name").as_str().unwrap().to_string();
        let claim = format!("{name}-{volume}");
        if with_claim {
            let mut pvc = YamlLoader::load_from_str(&format!("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {claim}\n"))
                .unwrap()
                .remove(0);
            if let Yaml::Hash(h) = &mut pvc {
                h.insert(key("spec"), get(t, "spec").clone());
            }
            out.push(pvc);
        }
        let vol = YamlLoader::load_from_str(&format!("name: {volume}\npersistentVolumeClaim:\n  claimName: {claim}\n")).unwrap().remove(0);
        if let Yaml::Array(vs) = get(pod, "volumes") {
            vs.push(vol);
        }
    }
    out.push(set);
    let mut s = String::new();
    for d in &out {
        YamlEmitter::new(&mut s).dump(d).unwrap();
        s.push('\n');
    }
    s
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).output().unwrap_or_else(|e| panic!("needs podman (scripts/install-deps): {e}"))
}

/// One podman pod of a manifest, torn down (pod and claim) however the test ends.
struct Pod {
    /// With the claim (the first play), and without (plays on the existing claim).
    file: PathBuf,
    replay: PathBuf,
    name: String,
}

impl Pod {
    fn container(&self) -> String {
        format!("{}-pod-0-hermes", self.name)
    }

    fn exec(&self, user: &str, cmd: &[&str]) -> Output {
        let c = self.container();
        podman(&[&["exec", "-u", user, c.as_str()][..], cmd].concat())
    }

    fn play(&self, first: bool) {
        let file = if first { &self.file } else { &self.replay };
        let o = podman(&["kube", "play", file.to_str().unwrap()]);
        assert!(o.status.success(), "podman kube play: {}", text(&o));
        let booted = wait(Duration::from_secs(60), || {
            self.exec("0", &["hermes-reconcile", "health", "--live"]).status.success()
                || self.exec("10000:10000", &["hermes-reconcile", "health", "--live"]).status.success()
        });
        assert!(booted, "the pod did not come up: {}", text(&podman(&["logs", &self.container()])));
    }

    fn down(&self) {
        let _ = podman(&["kube", "down", self.file.to_str().unwrap()]);
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.down();
        let _ = podman(&["volume", "rm", "-f", &format!("{}-data", self.name)]);
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(&self.replay);
    }
}

fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

/// The image under test, loaded into podman's store from Docker's (no registry here).
fn load_image() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        let image = itests::image();
        itests::require_local_image(&itests::docker(), &image).unwrap_or_else(|e| panic!("{e}"));
        let o = Command::new("sh").args(["-c", &format!("docker save '{image}' | podman load -q")]).output().unwrap();
        assert!(o.status.success(), "docker save | podman load: {}", text(&o));
    });
}

fn run_pod(manifest: &str, admin: &str) {
    // One pod at a time: two `podman kube play` at once on this podman 4.3 (cgroupfs, no
    // systemd) left one pod's container restarting at its first line.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    load_image();
    let name = format!("hermes-it-{}-{}", manifest.trim_end_matches(".yaml"), std::process::id());
    let source = repo().join("deploy/kubernetes").join(manifest);
    let file = std::env::temp_dir().join(format!("{name}.yaml"));
    let replay = std::env::temp_dir().join(format!("{name}.replay.yaml"));
    std::fs::write(&file, for_podman(&source, &name, true)).unwrap();
    std::fs::write(&replay, for_podman(&source, &name, false)).unwrap();
    let pod = Pod { file, replay, name };
    pod.down();
    pod.play(true);
    // What the probes run (podman itself runs neither the readiness probe nor the HEALTHCHECK).
    let ready = pod.exec(admin, &["hermes-reconcile", "health"]);
    assert!(ready.status.success(), "{}", text(&ready));
    let e = pod.exec("10000:10000", &["hermes", "profile", "create", "coder"]);
    assert!(e.status.success(), "{}", text(&e));
    let e = pod.exec("10000:10000", &["hermes", "gateway", "start", "coder"]);
    assert!(e.status.success() && text(&e).contains("still up after"), "{}", text(&e));

    let t = Instant::now();
    let o = podman(&["pod", "stop", "-t", "30", &format!("{}-pod-0", pod.name)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(t.elapsed() < Duration::from_secs(10), "stopped in {:?}: within its grace, not killed at the timeout", t.elapsed());
    let code = podman(&["inspect", "-f", "{{.State.ExitCode}}", &pod.container()]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "0", "{}", text(&podman(&["logs", &pod.container()])));

    // A new pod on the same claim: the wanted gateway comes back.
    pod.down();
    pod.play(false);
    let back = wait(Duration::from_secs(20), || {
        String::from_utf8_lossy(&pod.exec("10000:10000", &["s6-svstat", "-o", "up", "/run/service/gateway-coder"]).stdout).trim() == "true"
    });
    assert!(back, "{}", text(&pod.exec(admin, &["hermes-reconcile", "status"])));
    // As the volume's owner: hermes-agent's gateway makes its profile 0700, and a root
    // without CAP_DAC_READ_SEARCH (root mode's 4 capabilities) cannot look inside.
    let roots = pod.exec("10000:10000", &["find", "/opt/data", "-user", "0"]);
    assert!(roots.status.success() && roots.stdout.is_empty(), "root-owned files in the volume: {}", text(&roots));
}

#[test]
#[ignore = "needs podman, Docker and root (scripts/install-deps)"]
fn the_root_mode_pod_runs_under_podman_kube_play() {
    run_pod("hermes-root.yaml", "0");
}

#[test]
#[ignore = "needs podman, Docker and root (scripts/install-deps)"]
fn the_non_root_pod_runs_under_podman_kube_play() {
    run_pod("hermes-nonroot.yaml", "10000:10000");
}
