//! Container and VM runs through a real node: a Docker container (image built here with
//! `docker import`, no registry) and a QEMU VM (a kernel and initramfs built here), each started,
//! opened through its tool link, found again after the node is killed, and stopped with nothing
//! left; plus their failures (an image that is not there, an engine that is not running, a
//! container that dies at start, a corrupt disk image).
//!
//! Without Docker or QEMU these tests skip with the reason; with `CI` set they fail instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aienv_e2e::{TestNode, group_members, http_status, skip_without, text};
use serde_json::Value;

const IMAGE: &str = "aienv-test/busybox:1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn docker(args: &[&str]) -> Option<String> {
    docker_at(None, args)
}

/// `docker ARGS` against the engine at `host` (`DOCKER_HOST`), or the default one: its stdout.
fn docker_at(host: Option<&str>, args: &[&str]) -> Option<String> {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.env("DOCKER_HOST", h);
    }
    let out = cmd.args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why Docker cannot be used here, if it cannot. Builds the test image when missing.
pub(crate) fn docker_missing() -> Option<String> {
    if docker(&["info", "--format", "{{.ServerVersion}}"]).is_none() {
        return Some("no running Docker daemon (scripts/start-docker.sh starts one)".into());
    }
    let script = repo().join("tests/fixtures/runtime/make-image.sh");
    let out = Command::new("bash").arg(&script).arg(IMAGE).output().ok()?;
    (!out.status.success()).then(|| format!("cannot build {IMAGE}: {:?}", text(&out)))
}

fn add(node: &TestNode, dir: &Path, manifest: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("aienv.toml"), manifest).unwrap();
    node.json(&["workspace", "add", dir.to_str().unwrap()]);
}

fn run_fails(node: &TestNode, ws: &str, env: &str) -> String {
    let out = node.cli(&["run", ws, env]);
    assert!(!out.status.success(), "{env} should fail: {:?}", text(&out));
    text(&out).1
}

fn by_label(run_id: &str) -> String {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=aienv.run={run_id}"),
    ])
    .unwrap_or_default()
}

const CONTAINERS: &str = r#"[workspace]
name = "box"

[environment.web]
kind = "container"
image = "aienv-test/busybox:1"
command = "echo serving the workspace; exec httpd -f -p 80 -h /workspace/site"
memory_gb = 0.25
[[environment.web.tool]]
name = "site"
port = 80
url = "http://{host}:{port}/"
ready = { http = "/" }

[environment.missing-image]
kind = "container"
image = "aienv-test/not-built-anywhere:0"

[environment.dies]
kind = "container"
image = "aienv-test/busybox:1"
command = "echo cannot find weights >&2; exit 4"
ports = [80]
[[environment.dies.tool]]
name = "api"
url = "http://{host}:{port}/"
"#;

#[test]
fn a_container_environment_starts_serves_survives_a_node_crash_and_stops_cleanly() {
    if skip_without("container test", docker_missing()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("box");
    std::fs::create_dir_all(ws.join("site")).unwrap();
    std::fs::write(ws.join("site/index.html"), "hello from the workspace\n").unwrap();
    let mut node = TestNode::start("docker-host").unwrap();
    add(&node, &ws, CONTAINERS);

    let run = node.json(&["run", "box", "web"]);
    assert_eq!(run["state"], "running", "{run}\n{}", node.log());
    let id = run["id"].as_str().unwrap().to_string();
    let link = run["tools"][0]["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with("http://127.0.0.1:"),
        "published on loopback only: {link}"
    );
    let body = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&link)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        body, "hello from the workspace\n",
        "the workspace is mounted"
    );
    assert!(
        !by_label(&id).trim().is_empty(),
        "labelled so the node finds it again"
    );
    let logs = node.cli(&["logs", &id]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("serving the workspace"));

    node.restart(&[]).unwrap();
    let found = node.json(&["runs"]);
    assert_eq!(found[0]["state"], "running", "{found}");
    assert_eq!(http_status(&link), 200);
    let out = node.cli(&["stop", &id]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(by_label(&id).trim().is_empty(), "the container is removed");
    assert_eq!(http_status(&link), 0);

    let err = run_fails(&node, "box", "missing-image");
    assert!(
        err.contains("\"aienv-test/not-built-anywhere:0\" is not on this machine's docker")
            && err.contains("docker pull"),
        "{err}"
    );
    let err = run_fails(&node, "box", "dies");
    assert!(err.contains("the container exited with code 4"), "{err}");
    assert!(
        err.contains("cannot find weights"),
        "its log is quoted: {err}"
    );
    let runs = node.json(&["runs"]);
    for r in runs.as_array().unwrap() {
        assert!(by_label(r["id"].as_str().unwrap()).trim().is_empty(), "{r}");
    }
}

#[test]
fn an_engine_that_is_not_running_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("docker.sock");
    let host = format!("unix://{}", sock.display());
    let node = TestNode::start_with_env("no-engine", &[], &[("DOCKER_HOST", &host)]).unwrap();
    add(&node, &tmp.path().join("box"), CONTAINERS);
    let err = run_fails(&node, "box", "web");
    assert!(
        err.contains("the container engine does not answer") && err.contains("no such socket"),
        "{err}"
    );
    let res = node.json(&["resources"]);
    assert!(res["container_engine"].is_null());
    assert!(
        res["container_note"].as_str().unwrap().contains("start it"),
        "{res}"
    );
}

/// The kernel, initramfs and base disk of the test VM, built once into the target dir.
fn vm_files() -> Result<PathBuf, String> {
    let out_dir = repo().join("target/test-fixtures/vm");
    let out = Command::new("bash")
        .arg(repo().join("tests/fixtures/runtime/make-vm.sh"))
        .arg(&out_dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("cannot build the test VM: {:?}", text(&out)));
    }
    Ok(out_dir)
}

fn qemu_missing() -> Option<String> {
    let qemu = format!("qemu-system-{}", std::env::consts::ARCH);
    if Command::new(&qemu).arg("--version").output().is_err() {
        return Some(format!(
            "{qemu} is not installed (scripts/install-deps.sh installs it)"
        ));
    }
    vm_files().err()
}

const VMS: &str = r#"[workspace]
name = "vms"

[environment.tiny]
kind = "vm"
kernel = "vm/vmlinuz"
initrd = "vm/initrd.gz"
disk = "vm/disk.qcow2"
memory_gb = 0.25
[[environment.tiny.tool]]
name = "web"
port = 80
url = "http://{host}:{port}/"
ready = { http = "/", timeout_s = 240 }

[environment.corrupt]
kind = "vm"
disk = "vm/corrupt.qcow2"
"#;

#[test]
fn a_vm_environment_boots_serves_and_stops_and_its_base_disk_stays_untouched() {
    if skip_without("VM test", qemu_missing()) {
        return;
    }
    let files = vm_files().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("vms");
    std::fs::create_dir_all(ws.join("vm")).unwrap();
    for f in ["vmlinuz", "initrd.gz", "disk.qcow2"] {
        std::fs::copy(files.join(f), ws.join("vm").join(f)).unwrap();
    }
    let mut corrupt = b"QFI\xfb".to_vec();
    corrupt.extend(std::iter::repeat_n(0x5a, 4096));
    std::fs::write(ws.join("vm/corrupt.qcow2"), corrupt).unwrap();
    let base_before = std::fs::read(ws.join("vm/disk.qcow2")).unwrap();
    let node = TestNode::start("vm-host").unwrap();
    add(&node, &ws, VMS);

    let run = node.json(&["run", "vms", "tiny"]);
    assert_eq!(run["state"], "running", "{run}\n{}", node.log());
    let link = run["tools"][0]["url"].as_str().unwrap().to_string();
    let body = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(&link)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("aienv-vm-ok"), "{body}");
    let notes = run["notes"].to_string();
    assert!(
        notes.contains("KVM") || notes.contains("TCG"),
        "says how it is accelerated: {notes}"
    );
    assert!(ws.join(".aienv/vm/tiny/overlay.qcow2").exists());
    let id = run["id"].as_str().unwrap();
    let logs = node.cli(&["logs", id, "-n", "1000"]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("AIENV-VM-READY"),
        "the serial console is the log"
    );
    let group = run["handle"]["pgid"].as_u64().unwrap();
    assert!(node.cli(&["stop", id]).status.success());
    assert!(group_members(group).is_empty(), "no QEMU left");
    assert_eq!(http_status(&link), 0);
    assert_eq!(
        std::fs::read(ws.join("vm/disk.qcow2")).unwrap(),
        base_before
    );

    let err = run_fails(&node, "vms", "corrupt");
    assert!(
        err.contains("corrupt.qcow2 is not a usable disk image"),
        "{err}"
    );
    let runs: Value = node.json(&["runs"]);
    assert_eq!(runs[0]["state"], "failed");
}

/// A second Docker daemon of the test's own, playing the engine of another machine that lacks
/// the image: its own data root and socket, in a network namespace of its own (`unshare --net`:
/// a daemon started with networking off removes the `docker0` bridge of the namespace it runs
/// in, so it must not run in the host's). Stopped on drop; its namespace ends with it.
struct SecondEngine {
    daemon: std::process::Child,
    dir: tempfile::TempDir,
}

impl SecondEngine {
    fn start() -> SecondEngine {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--storage-driver", "vfs"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd runs");
        let engine = SecondEngine { daemon: child, dir };
        aienv_e2e::wait_for("the second dockerd", Duration::from_secs(30), || {
            engine.docker(&["info"]).map(|_| ())
        });
        engine
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn docker(&self, args: &[&str]) -> Option<String> {
        docker_at(Some(&self.host()), args)
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        // `unshare` execs dockerd, so the child is the daemon: SIGTERM lets it clean up.
        let _ = Command::new("kill")
            .arg(self.daemon.id().to_string())
            .status();
        let _ = self.daemon.wait();
    }
}

/// Why a second engine cannot be started here, if it cannot.
fn second_engine_missing() -> Option<String> {
    if let Some(why) = docker_missing() {
        return Some(why);
    }
    let root = Command::new("id").arg("-u").output().ok()?;
    (!root.stdout.starts_with(b"0"))
        .then(|| "needs root to start a second Docker daemon in a network namespace".to_string())
}

#[test]
fn cloning_a_container_environment_brings_its_image_to_an_engine_that_lacks_it() {
    if skip_without("image transfer test", second_engine_missing()) {
        return;
    }
    let engine = SecondEngine::start();
    assert!(
        engine.docker(&["image", "inspect", IMAGE]).is_none(),
        "a fresh engine lacks it"
    );
    let group = aienv_e2e::private_group();
    let owner = TestNode::start_with("owner", &["--discovery-group", &group]).unwrap();
    let host = engine.host();
    let user = TestNode::start_with_env(
        "user",
        &["--discovery-group", &group],
        &[("DOCKER_HOST", host.as_str())],
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let manifest = CONTAINERS.replace(
        "[workspace]\nname = \"box\"",
        "[workspace]\nname = \"box\"\n[sharing]\nenabled = true\naccess = \"open\"",
    );
    add(&owner, &tmp.path().join("box"), &manifest);
    user.wait_for_catalog("box");
    let target = tmp.path().join("copy");
    let job = user.json(&["clone", "owner/box", "--to", target.to_str().unwrap()]);
    assert_eq!(job["state"], "done", "{job}");
    let notes = job["notes"].to_string();
    assert!(
        notes.contains(&format!("brought the image {IMAGE} from owner")),
        "{notes}"
    );
    assert!(
        notes.contains("could not be loaded") || notes.contains("aienv-test/not-built-anywhere"),
        "an image the owner lacks too is a note, not a failed clone: {notes}"
    );
    assert!(
        engine.docker(&["image", "inspect", IMAGE]).is_some(),
        "the image arrived"
    );

    // The share serves only images its environments name.
    let res = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/api/v1/shares/box/images?name=debian:latest",
            owner.url
        ))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}
