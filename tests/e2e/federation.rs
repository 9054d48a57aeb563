//! Runs across nodes, with three real nodes on 127.0.0.1: placement by the resources each node
//! announces, a run on the peer with the GPUs (its link works from here, its log shows here, it
//! holds the GPUs it got), reservations when runs race for the last GPU, refusals, a peer that
//! disappears, and a batch job whose outputs come back.
//!
//! The GPUs are simulated: the binary the tests start is built with the `test-hooks` feature
//! (scripts/test.sh does), which lets `AIENV_TEST_RESOURCES` replace what the probe finds. This
//! machine has no GPU; nothing else is simulated.

use std::path::Path;
use std::time::Duration;

use aienv_e2e::{TestNode, http_status, private_group, text, wait_for};
use serde_json::Value;

const TWO_H100: &str = r#"{"gpus":[{"name":"H100","memory_gb":80,"free_gb":79},{"name":"H100","memory_gb":80,"free_gb":79}]}"#;
const ONE_SMALL: &str = r#"{"gpus":[{"name":"RTX 4090","memory_gb":24,"free_gb":24}]}"#;
const NO_GPU: &str = r#"{"gpus":[]}"#;

const WORKSPACE: &str = r#"[workspace]
name = "trainer"

[sharing]
enabled = true

[environment.train]
kind = "process"
command = "echo training with GPU $CUDA_VISIBLE_DEVICES; exec sleep 600"
requires = { gpus = 1, vram_gb = 40 }

[[environment.train.tool]]
name = "files"
command = "exec python3 -m http.server {port} --bind {host}"
url = "http://{host}:{port}/"

[environment.job]
kind = "process"
command = "mkdir -p out && echo \"accuracy 0.93 on GPU $CUDA_VISIBLE_DEVICES\" > out/metrics.txt && echo done"
requires = { gpus = 1 }
outputs = ["out/"]
"#;

/// A node with a simulated machine that takes runs from the nodes it knows.
fn node(name: &str, group: &str, machine: &str, remote: &str) -> TestNode {
    TestNode::start_with_env(
        name,
        &["--discovery-group", group, "--remote-runs", remote],
        &[("AIENV_TEST_RESOURCES", machine)],
    )
    .unwrap()
}

/// Fails with what to do when the binary was built without the test hook.
fn assert_simulated(n: &TestNode, gpus: usize) {
    let r = n.json(&["resources"]);
    assert_eq!(
        r["gpus"].as_array().map_or(0, Vec::len),
        gpus,
        "{:?} shows the machine the probe found, not the simulated one: build the binary with \
         `cargo build -p aienv-cli --features test-hooks` (scripts/test.sh does)",
        n.name
    );
}

fn workspace(n: &TestNode, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("aienv.toml"), WORKSPACE).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "hello from the laptop's workspace\n",
    )
    .unwrap();
    n.json(&["workspace", "add", dir.to_str().unwrap()]);
}

fn wait_peers(n: &TestNode, count: usize, with_resources: bool) {
    wait_for(
        "the peers and what they have",
        Duration::from_secs(15),
        || {
            let peers = n.json(&["peers"]);
            let list = peers.as_array()?;
            (list.len() == count
                && list
                    .iter()
                    .all(|p| !with_resources || p["resources"].is_object()))
            .then_some(())
        },
    );
}

fn run_of(n: &TestNode, id: &str) -> Value {
    n.json(&["runs"])
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn gpu_held(n: &TestNode, peer: &str) -> Vec<bool> {
    let peers = n.json(&["peers"]);
    peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == peer)
        .and_then(|p| p["resources"]["gpus"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|g| g["held"] == true)
        .collect()
}

#[test]
fn a_run_goes_to_the_peer_with_the_gpus_and_its_link_log_and_stop_work_from_here() {
    let tmp = tempfile::tempdir().unwrap();
    let group = private_group();
    let laptop = node("laptop", &group, NO_GPU, "peers");
    let mut gpu_box = node("gpu-box", &group, TWO_H100, "peers");
    let small = node("small-box", &group, ONE_SMALL, "peers");
    assert_simulated(&gpu_box, 2);
    wait_peers(&laptop, 2, true);
    workspace(&laptop, &tmp.path().join("trainer"));

    // Every node judged, best first, each with its reason.
    let out = laptop.cli(&["place", "trainer", "train"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("fits") && lines[0].contains("gpu-box: 2 free GPUs, 79 GB free"),
        "{stdout}"
    );
    assert!(
        stdout.contains("small-box: its free GPUs have 24 GB free, needs 40 GB"),
        "{stdout}"
    );
    assert!(stdout.contains("laptop: no GPU"), "{stdout}");

    // `--on auto` puts it on gpu-box; the link, which points there, works from here.
    let out = laptop.cli(&["run", "trainer", "train", "--on", "auto"]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        gpu_box.log()
    );
    assert!(
        stderr.contains("placed on gpu-box: 2 free GPUs"),
        "{stderr}"
    );
    let link = stdout
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no link in {stdout}"))
        .to_string();
    let body = reqwest::blocking::get(&link).unwrap().text().unwrap();
    assert_eq!(
        body, "hello from the laptop's workspace\n",
        "the workspace went there"
    );
    let runs = laptop.json(&["runs"]);
    let run = &runs[0];
    assert_eq!(run["state"], "running", "{run}");
    assert_eq!(run["peer"]["name"], "gpu-box", "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    // The log shows here (copied from the peer), with the GPU the run holds there.
    let log = wait_for("the peer's log lines", Duration::from_secs(10), || {
        let out = laptop.cli(&["logs", &id]);
        let log = text(&out).0;
        log.contains("training with GPU 0").then_some(log)
    });
    assert!(log.contains("Serving HTTP"), "{log}");
    wait_for(
        "gpu-box announces GPU 0 held",
        Duration::from_secs(5),
        || (gpu_held(&laptop, "gpu-box") == [true, false]).then_some(()),
    );
    // gpu-box itself lists the run, started by the laptop.
    let there = gpu_box.json(&["runs"]);
    assert!(
        there[0]["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("started by peer \"laptop\""),
        "{there}"
    );

    // Reservations: a second run takes the other GPU, a third finds none and says where it
    // looked.
    let second = laptop.json(&["run", "trainer", "train", "--on", "auto"]);
    assert_eq!(second["state"], "running", "{second}");
    let log2 = wait_for("the second run's log", Duration::from_secs(10), || {
        let out = laptop.cli(&["logs", second["id"].as_str().unwrap()]);
        let log = text(&out).0;
        log.contains("training with GPU").then_some(log)
    });
    assert!(log2.contains("training with GPU 1"), "{log2}");
    wait_for("both GPUs announced held", Duration::from_secs(5), || {
        (gpu_held(&laptop, "gpu-box") == [true, true]).then_some(())
    });
    let third = laptop.cli(&["run", "trainer", "train", "--on", "auto"]);
    let (_, err) = text(&third);
    assert!(!third.status.success());
    assert!(
        err.contains("no node can run trainer/train now")
            && err.contains("gpu-box: all 2 GPUs held by runs there")
            && err.contains("laptop: no GPU"),
        "{err}"
    );
    // Asking gpu-box by name gets its own refusal.
    let named = laptop.cli(&["run", "trainer", "train", "--on", "gpu-box"]);
    let (_, err) = text(&named);
    assert!(!named.status.success());
    assert!(
        err.contains("has 0 free GPUs of the 1 this run needs"),
        "{err}"
    );

    // Stopping here stops it there, and its GPU is free again.
    let out = laptop.cli(&["stop", &id]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(http_status(&link), 0, "nothing listens there any more");
    wait_for("gpu-box frees GPU 0", Duration::from_secs(5), || {
        (gpu_held(&laptop, "gpu-box") == [false, true]).then_some(())
    });
    let there = gpu_box.json(&["runs"]);
    assert!(
        there
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "stopped"),
        "{there}"
    );

    // gpu-box disappears: the run still going there is shown as lost, not gone.
    let lost_id = second["id"].as_str().unwrap().to_string();
    gpu_box.crash();
    let lost = wait_for("the run is lost", Duration::from_secs(20), || {
        let r = run_of(&laptop, &lost_id);
        (r["state"] == "lost").then_some(r)
    });
    assert!(
        lost["error"].as_str().unwrap().contains("\"gpu-box\""),
        "{lost}"
    );
    // It comes back: the same data dir, the run adopted there, and here it runs again.
    gpu_box
        .restart_with_env(
            &["--discovery-group", &group, "--remote-runs", "peers"],
            &[("AIENV_TEST_RESOURCES", TWO_H100)],
        )
        .unwrap();
    let back = wait_for("the run is back", Duration::from_secs(20), || {
        let r = run_of(&laptop, &lost_id);
        (r["state"] == "running").then_some(r)
    });
    assert_eq!(back["peer"]["name"], "gpu-box");
    // The restarted node holds the run's GPU again: it is not offered to anyone else.
    wait_for("GPU 1 held again", Duration::from_secs(5), || {
        (gpu_held(&laptop, "gpu-box") == [false, true]).then_some(())
    });
    assert_eq!(back["gpus"], serde_json::json!([1]), "{back}");
    let out = laptop.cli(&["stop", &lost_id]);
    assert!(out.status.success(), "{:?}", text(&out));
    drop(small);
}

/// `aienv run trainer train --on OWNER` from `laptop`, left waiting, and the request it put
/// before `owner`.
fn run_waiting_for(laptop: &TestNode, owner: &TestNode) -> (std::process::Child, Value) {
    let waiting = std::process::Command::new(aienv_e2e::aienv_bin())
        .args(["--node", &laptop.url, "run", "trainer", "train", "--on"])
        .arg(&owner.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request = wait_for("the owner is asked", Duration::from_secs(15), || {
        let list = owner.json(&["access", "list"]);
        list.as_array()?.first().cloned()
    });
    (waiting, request)
}

#[test]
fn refusals_say_why_and_an_approved_run_waits_for_the_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let group = private_group();
    let laptop = node("laptop", &group, NO_GPU, "off");
    let closed = node("closed", &group, TWO_H100, "off");
    wait_peers(&laptop, 1, true);
    workspace(&laptop, &tmp.path().join("trainer"));

    // A node that takes no runs says so, and `auto` does not pick it.
    let out = laptop.cli(&["run", "trainer", "train", "--on", "closed"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("does not take runs from peers"), "{err}");
    let out = laptop.cli(&["place", "trainer", "train"]);
    assert!(
        text(&out).0.contains("closed: takes no runs from peers"),
        "{:?}",
        text(&out)
    );
    drop(closed);

    // `token`: only nodes holding one of its share tokens (the one `aienv clone --token` keeps).
    let strict = node("strict", &group, TWO_H100, "token");
    wait_for("the strict node is seen", Duration::from_secs(15), || {
        laptop
            .json(&["peers"])
            .as_array()?
            .iter()
            .any(|p| p["name"] == "strict" && p["resources"].is_object())
            .then_some(())
    });
    let out = laptop.cli(&["run", "trainer", "train", "--on", "strict"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("only from nodes holding one of its share tokens"),
        "{err}"
    );
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(
        theirs.join("aienv.toml"),
        "[workspace]\nname = \"theirs\"\n\n[sharing]\nenabled = true\n",
    )
    .unwrap();
    strict.json(&["workspace", "add", theirs.to_str().unwrap()]);
    let token = strict.json(&["share", "token", "create", "theirs"]);
    let clone = laptop.cli(&[
        "clone",
        "strict/theirs",
        "--to",
        tmp.path().join("theirs-here").to_str().unwrap(),
        "--token",
        token["secret"].as_str().unwrap(),
    ]);
    assert!(clone.status.success(), "{:?}", text(&clone));
    let ok = laptop.json(&["run", "trainer", "train", "--on", "strict"]);
    assert_eq!(ok["state"], "running", "with the token it runs: {ok}");
    laptop.cli(&["stop", ok["id"].as_str().unwrap()]);
    drop(strict);

    // An unshared workspace cannot reach a peer.
    let owner = node("owner", &group, TWO_H100, "approve");
    wait_for("the owner is seen", Duration::from_secs(15), || {
        laptop
            .json(&["peers"])
            .as_array()?
            .iter()
            .any(|p| p["name"] == "owner" && p["resources"].is_object())
            .then_some(())
    });
    let unshared = tmp.path().join("private");
    std::fs::create_dir_all(&unshared).unwrap();
    std::fs::write(
        unshared.join("aienv.toml"),
        WORKSPACE
            .replace("name = \"trainer\"", "name = \"private\"")
            .replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    laptop.json(&["workspace", "add", unshared.to_str().unwrap()]);
    let out = laptop.cli(&["run", "private", "train", "--on", "owner"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("share it first"), "{err}");

    // `approve`: the run waits until the owner of that node says yes.
    let (waiting, request) = run_waiting_for(&laptop, &owner);
    assert!(
        request["workspace"]
            .as_str()
            .unwrap()
            .contains("run trainer/train here"),
        "{request}"
    );
    assert_eq!(request["peer_name"], "laptop");
    let waiting_run = wait_for("the run says it waits", Duration::from_secs(10), || {
        let runs = laptop.json(&["runs"]);
        let r = runs.as_array()?.first()?.clone();
        r["setup"]["message"]
            .as_str()?
            .contains("on owner: waiting for the owner")
            .then_some(r)
    });
    assert_eq!(waiting_run["state"], "starting", "{waiting_run}");
    let out = owner.cli(&["access", "approve", request["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let done = waiting.wait_with_output().unwrap();
    let (stdout, stderr) = text(&done);
    assert!(done.status.success(), "{stdout}\n{stderr}\n{}", owner.log());
    assert!(stdout.contains("http://127.0.0.1:"), "{stdout}");
    let id = laptop.json(&["runs"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = laptop.cli(&["stop", &id]);
    assert!(out.status.success(), "{:?}", text(&out));
    // A no fails the run here with the owner's answer.
    let (denied, request) = run_waiting_for(&laptop, &owner);
    let out = owner.cli(&["access", "deny", request["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let done = denied.wait_with_output().unwrap();
    let (_, stderr) = text(&done);
    assert!(!done.status.success());
    assert!(
        stderr.contains("the owner of \"owner\" refused to run trainer/train"),
        "{stderr}"
    );
    // The owner's audit log has the request and the yes.
    let audit = std::fs::read_to_string(owner.data_dir.join("audit.jsonl")).unwrap();
    assert!(audit.contains("approved by the owner"), "{audit}");
}

#[test]
fn a_batch_job_runs_on_the_free_peer_waits_in_the_queue_when_none_is_and_its_outputs_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let group = private_group();
    let laptop = node("laptop", &group, NO_GPU, "peers");
    let gpu_box = node(
        "gpu-box",
        &group,
        r#"{"gpus":[{"name":"H100","memory_gb":80,"free_gb":79}]}"#,
        "peers",
    );
    assert_simulated(&gpu_box, 1);
    wait_peers(&laptop, 1, true);
    let ws = tmp.path().join("trainer");
    workspace(&laptop, &ws);

    // The only GPU is busy with a run: the job waits in the queue.
    let busy = laptop.json(&["run", "trainer", "train", "--on", "gpu-box"]);
    assert_eq!(busy["state"], "running", "{busy}");
    let job = laptop.json(&["submit", "trainer", "job"]);
    let job_id = job["id"].as_str().unwrap().to_string();
    let queued = wait_for("the job is queued", Duration::from_secs(10), || {
        let r = run_of(&laptop, &job_id);
        r["setup"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("queued"))
            .then_some(r)
    });
    assert_eq!(queued["state"], "starting", "{queued}");
    assert!(
        queued["setup"]["message"]
            .as_str()
            .unwrap()
            .contains("gpu-box: all 1 GPU held by runs there"),
        "{queued}"
    );
    // The GPU is free again: the job goes there, runs to its end, and its outputs come here.
    let out = laptop.cli(&["stop", busy["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let done = wait_for("the job ends", Duration::from_secs(30), || {
        let r = run_of(&laptop, &job_id);
        (r["state"] == "exited" || r["state"] == "failed").then_some(r)
    });
    assert_eq!(done["state"], "exited", "{done}");
    assert_eq!(done["peer"]["name"], "gpu-box", "{done}");
    assert_eq!(done["outputs"].as_str().unwrap(), ws.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(ws.join("out/metrics.txt")).unwrap(),
        "accuracy 0.93 on GPU 0\n",
        "the job's output, written on gpu-box with the GPU it held"
    );
    // `submit --wait` does it in one command and says where the outputs are.
    std::fs::remove_dir_all(ws.join("out")).unwrap();
    let out = laptop.cli(&["submit", "trainer", "job", "--wait"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("on gpu-box: ended"), "{stdout}");
    assert!(
        stdout.contains(&format!("outputs: {}", ws.display())),
        "{stdout}"
    );
    assert!(ws.join("out/metrics.txt").exists());
}

/// Two hosts in network namespaces: host2 runs host1's workspace on host1 from the catalog; the
/// tool listens on host1's LAN address, and the link works from host2. A cut link makes the run
/// lost on host2; when the link is back, so is the run.
#[test]
fn across_namespaces_a_catalog_environment_runs_on_its_owner_and_survives_a_network_blip() {
    use crate::netns::{Lab, unsupported};
    if aienv_e2e::skip_without(
        "across_namespaces_a_catalog_environment_runs...",
        unsupported(),
    ) {
        return;
    }
    let mut lab = Lab::new(2);
    lab.start_with(0, &["--remote-runs", "peers"], &[]);
    lab.start_with(1, &[], &[]);
    wait_for("the hosts see each other", Duration::from_secs(10), || {
        (lab.peer_names(1) == ["host1"]).then_some(())
    });
    let ws = lab._tmp.path().join("served");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("index.html"), "served by host1\n").unwrap();
    std::fs::write(
        ws.join("aienv.toml"),
        r#"[workspace]
name = "served"

[sharing]
enabled = true
access = "open"

[environment.web]
kind = "process"

[[environment.web.tool]]
name = "files"
command = "exec python3 -m http.server {port} --bind {host}"
url = "http://{host}:{port}/"
"#,
    )
    .unwrap();
    lab.json(0, &["workspace", "add", ws.to_str().unwrap()]);
    wait_for(
        "host1's environment in host2's catalog",
        Duration::from_secs(10),
        || {
            lab.json(1, &["catalog"])
                .as_array()?
                .iter()
                .any(|e| e["name"] == "web" && e["owner"]["name"] == "host1")
                .then_some(())
        },
    );
    let run = lab.json(
        1,
        &["run", "served", "web", "--owner", "host1", "--on", "host1"],
    );
    assert_eq!(run["state"], "running", "{run}");
    let link = run["tools"][0]["url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with("http://10.77.0.1:"),
        "the link points at host1's LAN address: {link}"
    );
    let fetch = |i: usize| {
        let out = lab.exec(
            i,
            "python3",
            &[
                "-c",
                "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')",
                &link,
            ],
        );
        text(&out).0
    };
    assert_eq!(fetch(1), "served by host1\n", "the link works from host2");

    let id = run["id"].as_str().unwrap().to_string();
    let state = |lab: &Lab| {
        lab.json(1, &["runs"])
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .map(|r| r["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    lab.link(0, false);
    wait_for("the run is lost", Duration::from_secs(20), || {
        (state(&lab) == "lost").then_some(())
    });
    lab.link(0, true);
    wait_for("the run is back", Duration::from_secs(20), || {
        (state(&lab) == "running").then_some(())
    });
    let out = lab.json(1, &["stop", &id]);
    assert_eq!(out["state"], "stopped", "{out}");
    assert_eq!(fetch(1), "", "nothing serves there any more");
}
