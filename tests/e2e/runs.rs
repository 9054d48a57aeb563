//! Process runs through real nodes: a cloned JupyterLab environment set up from PyPI and opened
//! with its token; every failure a user can meet (missing command, crash, a tool that never
//! answers, a taken port, a machine that lacks a GPU, stopping twice); logs over the WebSocket;
//! and runs that outlive a killed node and are found again.

use std::path::Path;
use std::time::Duration;

use aienv_e2e::{TestNode, group_members, http_status, private_group, text, wait_for};
use serde_json::{Value, json};

fn workspace(node: &TestNode, dir: &Path, manifest: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("aienv.toml"), manifest).unwrap();
    let ws = node.json(&["workspace", "add", dir.to_str().unwrap()]);
    ws["name"].as_str().unwrap().to_string()
}

fn pgid(run: &Value) -> u64 {
    run["handle"]["pgid"]
        .as_u64()
        .expect("a process run has a process group")
}

fn run_state(node: &TestNode, id: &str) -> Value {
    let runs = node.json(&["runs"]);
    runs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .expect("the run is listed")
}

fn http_json(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut req = c.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

const NOTEBOOK: &str = r#"[workspace]
name = "nb"

[sharing]
enabled = true
access = "open"

[environment.lab]
kind = "process"
python = { requirements = "requirements.txt" }

[[environment.lab.tool]]
name = "JupyterLab"
command = "jupyter lab --allow-root --no-browser --ip {host} --port {port} --IdentityProvider.token={token} --ServerApp.root_dir={workspace}"
url = "http://{host}:{port}/lab?token={token}"
ready = { http = "/api", timeout_s = 120 }
"#;

#[test]
fn a_cloned_jupyterlab_environment_starts_from_the_cli_and_the_api_and_its_link_works() {
    let tmp = tempfile::tempdir().unwrap();
    let group = private_group();
    let a = TestNode::start_with("owner", &["--discovery-group", &group]).unwrap();
    let src = tmp.path().join("nb");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("requirements.txt"), "jupyterlab\n").unwrap();
    std::fs::write(src.join("hello.ipynb"), "{}").unwrap();
    workspace(&a, &src, NOTEBOOK);
    let b = TestNode::start_with("user", &["--discovery-group", &group]).unwrap();
    b.wait_for_catalog("nb");
    let target = tmp.path().join("clone");
    let out = b.cli(&["clone", "owner/nb", "--to", target.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));

    // From the CLI: the venv is made from requirements.txt (uv or pip), then the link printed.
    let out = b.cli(&["run", "nb", "lab"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", b.log());
    let link = stdout
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.contains("/lab?token="))
        .unwrap_or_else(|| panic!("no JupyterLab link in {stdout}"))
        .to_string();
    assert_eq!(
        http_status(&link),
        200,
        "the link with its token opens JupyterLab"
    );
    let (base, token) = link.split_once("/lab?token=").unwrap();
    assert_eq!(
        http_status(&format!("{base}/api/contents?token={token}")),
        200
    );
    assert_eq!(
        http_status(&format!("{base}/api/contents")),
        403,
        "no token, no access"
    );
    assert!(target.join(".aienv/venv/lab/bin/jupyter").exists());
    let runs = b.json(&["runs"]);
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let group = pgid(&runs[0]);
    let out = b.cli(&["stop", &id]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        group_members(group).is_empty(),
        "nothing of the run is left"
    );
    assert_eq!(http_status(&link), 0);

    // From the API: the venv is reused, a new token and port are chosen.
    let (status, run) = http_json(
        reqwest::Method::POST,
        &format!("{}/api/v1/runs", b.url),
        Some(json!({"workspace": "nb", "environment": "lab"})),
    );
    assert_eq!(status, 202, "{run}");
    let id2 = run["id"].as_str().unwrap().to_string();
    let run = wait_for("the API run to get ready", Duration::from_secs(120), || {
        let r = run_state(&b, &id2);
        (r["state"] != "starting" && r["state"] != "waiting_ready").then_some(r)
    });
    assert_eq!(run["state"], "running", "{run}");
    let link2 = run["tools"][0]["url"].as_str().unwrap();
    assert_ne!(link2, link, "each run gets its own token");
    assert_eq!(http_status(link2), 200);
    let (status, _) = http_json(
        reqwest::Method::DELETE,
        &format!("{}/api/v1/runs/{id2}", b.url),
        None,
    );
    assert_eq!(status, 200);
    assert!(group_members(pgid(&run)).is_empty());
}

const FAILURES: &str = r#"[workspace]
name = "bad"

[environment.missing]
kind = "process"
[[environment.missing.tool]]
name = "server"
command = "no-such-program-aienv --serve --port {port}"
url = "http://{host}:{port}/"

[environment.crash]
kind = "process"
[[environment.crash.tool]]
name = "api"
command = "echo loading model; echo 'CUDA out of memory' >&2; exit 3"
url = "http://{host}:{port}/"

[environment.silent]
kind = "process"
[[environment.silent.tool]]
name = "api"
command = "echo warming up; sleep 300"
url = "http://{host}:{port}/"
ready = { timeout_s = 1 }

[environment.gpu]
kind = "process"
command = "sleep 300"
requires = { gpus = 1, vram_gb = 16 }

[environment.gpu-or-cpu]
kind = "process"
command = "echo device=$DEVICE; sleep 300"
requires = { gpus = 1 }
fallback = { when = "no-gpu", env = { DEVICE = "cpu" } }
"#;

#[test]
fn failures_are_clear_and_leave_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start("runner").unwrap();
    workspace(&node, &tmp.path().join("bad"), FAILURES);

    let fail = |env: &str, extra: &[&str]| -> (String, Value) {
        let mut args = vec!["run", "bad", env];
        args.extend_from_slice(extra);
        let out = node.cli(&args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{env} should fail: {stdout}");
        let runs = node.json(&["runs"]);
        (stderr, runs[0].clone())
    };

    let (err, run) = fail("missing", &[]);
    assert!(
        err.contains("server failed: command not found (exit 127)"),
        "{err}"
    );
    assert!(
        err.contains("no-such-program-aienv"),
        "the log's last lines are quoted: {err}"
    );
    assert_eq!(run["state"], "failed");

    let (err, run) = fail("crash", &[]);
    assert!(err.contains("api exited with code 3"), "{err}");
    assert!(err.contains("CUDA out of memory"), "{err}");
    assert!(group_members(pgid(&run)).is_empty());

    let (err, run) = fail("silent", &[]);
    assert!(
        err.contains("api did not become ready: waited 1 s for port"),
        "{err}"
    );
    assert!(err.contains("warming up"), "{err}");
    assert!(
        group_members(pgid(&run)).is_empty(),
        "the sleeper was stopped"
    );

    // Not enough machine: said exactly, nothing started; --force starts it anyway.
    let before = node.json(&["runs"]).as_array().unwrap().len();
    let out = node.cli(&["run", "bad", "gpu"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("needs 1 GPU with 16 GB; this machine has none") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        node.json(&["runs"]).as_array().unwrap().len(),
        before,
        "nothing was started"
    );
    let forced = node.json(&["run", "bad", "gpu", "--force"]);
    assert_eq!(forced["state"], "running", "{forced}");
    assert!(
        forced["notes"][0].as_str().unwrap().contains("--force"),
        "{forced}"
    );

    // The fallback runs it without a GPU and says so.
    let fb = node.json(&["run", "bad", "gpu-or-cpu"]);
    assert!(
        fb["notes"][0]
            .as_str()
            .unwrap()
            .contains("using the no-gpu fallback (DEVICE=cpu)"),
        "{fb}"
    );
    let id = fb["id"].as_str().unwrap().to_string();
    wait_for(
        "the fallback's variable in the log",
        Duration::from_secs(10),
        || {
            let out = node.cli(&["logs", &id]);
            String::from_utf8_lossy(&out.stdout)
                .contains("device=cpu")
                .then_some(())
        },
    );

    // Stopping twice, and a run that does not exist.
    for r in [&forced, &fb] {
        let id = r["id"].as_str().unwrap();
        assert!(node.cli(&["stop", id]).status.success());
        assert!(group_members(pgid(r)).is_empty());
    }
    let out = node.cli(&["stop", id.as_str()]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("is not running (it is stopped)"),
        "{:?}",
        text(&out)
    );
    let out = node.cli(&["logs", "feedfacecafe"]);
    assert!(
        text(&out).1.contains("no run \"feedfacecafe\""),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_fixed_port_someone_holds_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start("ports").unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let manifest = format!(
        "[workspace]\nname = \"p\"\n[environment.web]\nkind = \"process\"\n\
         [[environment.web.tool]]\nname = \"web\"\ncommand = \"sleep 300\"\nport = {port}\n"
    );
    workspace(&node, &tmp.path().join("p"), &manifest);
    let (status, body) = http_json(
        reqwest::Method::POST,
        &format!("{}/api/v1/runs", node.url),
        Some(json!({"workspace": "p", "environment": "web"})),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "port_taken");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("port {port}")),
        "{body}"
    );
    assert!(node.json(&["runs"]).as_array().unwrap().is_empty());
}

const SERVER: &str = r#"[workspace]
name = "srv"

[environment.web]
kind = "process"
command = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"

[[environment.web.tool]]
name = "files"
command = "exec python3 -m http.server {port} --bind {host}"
url = "http://{host}:{port}/"

# Ends while the node is down in the restart test: well inside its 3 s of downtime, also on a
# loaded machine where the process starts late.
[environment.short]
kind = "process"
command = "sleep 1"
"#;

#[test]
fn runs_outlive_a_killed_node_and_are_found_again_and_logs_stream() {
    // The event stream is async; the rest (CLI, blocking HTTP) is not.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut node = TestNode::start("keeper").unwrap();
    workspace(&node, &tmp.path().join("srv"), SERVER);
    let mut events = rt.block_on(node.events()).unwrap();
    let run = node.json(&["run", "srv", "web"]);
    let id = run["id"].as_str().unwrap().to_string();
    let link = run["tools"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(http_status(&link), 200);
    // Log lines arrive over the WebSocket as they are written.
    let ticks = |e: &Value| {
        e["log"]["run_id"] == id.as_str()
            && e["log"]["lines"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|l| l.as_str().is_some_and(|l| l.starts_with("tick")))
            })
    };
    let log = rt
        .block_on(events.until_match("run_log", ticks, Duration::from_secs(10)))
        .unwrap();
    assert!(!log["log"]["lines"].as_array().unwrap().is_empty());
    let short = node.json(&["run", "srv", "short"]);

    // kill -9 of the node: its runs go on.
    node.crash();
    assert_eq!(http_status(&link), 200, "the tool outlived the node");
    std::thread::sleep(Duration::from_secs(3));
    node.restart(&[]).unwrap();
    let found = run_state(&node, &id);
    assert_eq!(found["state"], "running", "{found}");
    let ended = wait_for(
        "the short run to be marked ended",
        Duration::from_secs(10),
        || {
            let r = run_state(&node, short["id"].as_str().unwrap());
            (r["state"] == "exited").then_some(r)
        },
    );
    assert!(
        ended["notes"]
            .to_string()
            .contains("ended while the node was not running"),
        "{ended}"
    );
    // The adopted run's log still streams, and it stops as a whole.
    let out = node.cli(&["logs", &id, "-n", "3"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tick"));
    // `aienv logs -f` follows new lines until the run ends, then exits by itself.
    let mut follow = std::process::Command::new(aienv_e2e::aienv_bin())
        .args(["logs", &id, "-f", "-n", "0"])
        .env("AIENV_DATA_DIR", &node.data_dir)
        .env_remove("AIENV_NODE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(node.cli(&["stop", &id]).status.success());
    wait_for(
        "logs -f to end with the run",
        Duration::from_secs(10),
        || follow.try_wait().unwrap().map(|_| ()),
    );
    let mut printed = String::new();
    std::io::Read::read_to_string(follow.stdout.as_mut().unwrap(), &mut printed).unwrap();
    assert!(
        printed.lines().filter(|l| l.starts_with("tick")).count() >= 3,
        "{printed}"
    );
    assert!(group_members(pgid(&run)).is_empty());
    assert_eq!(http_status(&link), 0);
}
