//! Helpers for the end-to-end tests: start real `aienv serve` processes on loopback with their
//! own temp data dirs, run the real CLI against them, and read their event streams.
//!
//! The tests use the `aienv` binary that `cargo build` put in the target dir (the test command
//! builds it first); `AIENV_BIN` points elsewhere.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::Value;

/// The `aienv` binary under test.
pub fn aienv_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AIENV_BIN") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/aienv");
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p aienv-cli`",
        bin.display()
    );
    bin
}

/// A running `aienv serve` with its own data dir; killed (and its files removed) when dropped.
#[derive(Debug)]
pub struct TestNode {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub name: String,
    /// Keeps the temp dir alive for the node's lifetime.
    _tmp: Option<tempfile::TempDir>,
    stderr_log: PathBuf,
    /// Set while handing the data dir to a restarted node: its runs must survive.
    keep_runs: bool,
}

impl TestNode {
    /// Starts a node on 127.0.0.1 with a free port and a fresh data dir.
    pub fn start(name: &str) -> anyhow::Result<TestNode> {
        Self::start_with(name, &[])
    }

    /// [`TestNode::start`] with more `serve` flags.
    pub fn start_with(name: &str, extra: &[&str]) -> anyhow::Result<TestNode> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("data");
        let mut node = Self::start_in(&data_dir, name, extra)?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// [`TestNode::start_with`] with environment variables for the node process.
    pub fn start_with_env(
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<TestNode> {
        let tmp = tempfile::tempdir()?;
        let data_dir = tmp.path().join("data");
        let mut node = Self::start_in_env(&data_dir, name, extra, env)?;
        node._tmp = Some(tmp);
        Ok(node)
    }

    /// Starts a node on an existing data dir (to test restarts and prepared registries).
    pub fn start_in(data_dir: &Path, name: &str, extra: &[&str]) -> anyhow::Result<TestNode> {
        Self::start_in_env(data_dir, name, extra, &[])
    }

    fn start_in_env(
        data_dir: &Path,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<TestNode> {
        std::fs::create_dir_all(data_dir)?;
        let stderr_log = data_dir.with_extension(format!("{name}.log"));
        let child = serve_command(data_dir, name, extra)
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(&stderr_log)?)
            .spawn()
            .context("cannot start aienv serve")?;
        let mut node = TestNode {
            child,
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            name: name.to_string(),
            _tmp: None,
            stderr_log,
            keep_runs: false,
        };
        node.url = node.wait_ready(Duration::from_secs(15))?;
        Ok(node)
    }

    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "aienv serve exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            if let Ok(text) = std::fs::read_to_string(self.data_dir.join("node.json"))
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v["pid"].as_u64() == Some(u64::from(self.child.id()))
            {
                let url = v["url"].as_str().unwrap_or_default().to_string();
                if health_ok(&url) {
                    return Ok(url);
                }
            }
            if start.elapsed() > limit {
                bail!("aienv serve was not ready after {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the node wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Runs the CLI against this node (through its data dir's node.json, as a user would).
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_with_env(args, &[("AIENV_DATA_DIR", self.data_dir.as_os_str())])
    }

    /// The failure message of a CLI command that must fail.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {:?}",
            text(&out)
        );
        text(&out).1
    }

    /// `aienv ARGS --json` against this node, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "aienv {args:?} failed: {:?}",
            text(&out)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// Waits (up to 10 s) until this node's catalog lists a workspace named `workspace`.
    pub fn wait_for_catalog(&self, workspace: &str) {
        wait_for(
            &format!("{}'s catalog to list {workspace}", self.name),
            Duration::from_secs(10),
            || {
                self.json(&["catalog"])
                    .as_array()
                    .expect("the catalog is a list")
                    .iter()
                    .any(|e| e["workspace"] == workspace)
                    .then_some(())
            },
        );
    }

    /// The ids of the peers this node lists.
    pub fn peer_ids(&self) -> Vec<String> {
        let peers = self.json(&["peers"]);
        peers
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect()
    }

    /// This node's instance id.
    pub fn instance_id(&self) -> String {
        self.json(&["discovery", "status"])["instance_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Starts the node again on the same data dir (after a crash or a stop), keeping its files.
    pub fn restart(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        self.restart_with_env(extra, &[])
    }

    /// [`TestNode::restart`] with environment variables for the new node process.
    pub fn restart_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
        self.crash();
        let tmp = self._tmp.take();
        let mut fresh = TestNode::start_in_env(&self.data_dir, &self.name, extra, env)?;
        fresh._tmp = tmp;
        self.keep_runs = true;
        *self = fresh;
        Ok(())
    }

    /// Sends SIGKILL (a crash: no goodbye) and waits for it to die.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("the node did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects to the node's event stream and returns it after the hello message.
    pub async fn events(&self) -> anyhow::Result<Events> {
        let url = format!("{}/api/v1/events", self.url.replacen("http", "ws", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let mut events = Events { ws };
        let hello = events.next(Duration::from_secs(5)).await?;
        if hello["type"] != "hello" {
            bail!("the stream did not start with hello: {hello}");
        }
        Ok(events)
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_log);
        // Runs outlive their node by design; a test's must not outlive the test, also when
        // it failed half-way. (`restart` moves the data dir to the new node and skips this.)
        if !self.keep_runs {
            end_runs(&self.data_dir);
        }
    }
}

/// Kills every process group and removes every container that the runs in `DATA_DIR/runs.json`
/// hold, whatever state they are recorded in.
pub fn end_runs(data_dir: &Path) {
    let Ok(bytes) = std::fs::read(data_dir.join("runs.json")) else {
        return;
    };
    let runs: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    for r in runs.as_array().into_iter().flatten() {
        let h = &r["handle"];
        if let Some(pgid) = h["pgid"].as_u64() {
            if !group_members(pgid).is_empty() {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pgid}")])
                    .status();
            }
        } else if let Some(id) = h["id"].as_str() {
            let _ = Command::new("docker")
                .args(["rm", "-f", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `aienv serve` pinned to loopback, as every test run here must be.
pub fn serve_command(data_dir: &Path, name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(aienv_bin());
    cmd.arg("serve");
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    // Discovery pinned to loopback, on a group port of its own unless the test shares one
    // between its nodes: tests running at once must not see each other's nodes.
    if !extra.contains(&"--discovery-group") {
        cmd.args(["--discovery-group", &private_group()]);
    }
    cmd.args(["--discovery-interface", "127.0.0.1", "--name", name])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env_remove("AIENV_NODE")
        .env_remove("AIENV_API_KEY")
        .env("AIENV_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Clone job `id` as `aienv clones` lists it on `n`.
pub fn clone_job(n: &TestNode, id: &str) -> Value {
    n.json(&["clones"])
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .cloned()
        .expect("the job is listed")
}

/// A discovery group address on a free UDP port, for the nodes of one test.
pub fn private_group() -> String {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(47999);
    format!("239.255.77.77:{port}")
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `limit` with `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `aienv ARGS` with the given environment (and none of the caller's AIENV_* settings).
pub fn cli_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(aienv_bin());
    cmd.args(args)
        .env_remove("AIENV_NODE")
        .env_remove("AIENV_DATA_DIR")
        .env_remove("AIENV_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the aienv binary runs")
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain HTTP/1.1 GET of `/api/v1/health`, so readiness checks need no async runtime.
fn health_ok(url: &str) -> bool {
    let Some(addr) = url.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if std::io::Write::write_all(&mut s, req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// A node's event stream.
#[derive(Debug)]
pub struct Events {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Events {
    /// The next event, or an error after `limit`.
    pub async fn next(&mut self, limit: Duration) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout(limit, self.ws.next())
                .await
                .context("no event arrived in time")?
                .context("the event stream closed")??;
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                return Ok(serde_json::from_str(&t)?);
            }
        }
    }

    /// Skips events until one of type `kind` arrives.
    pub async fn until(&mut self, kind: &str, limit: Duration) -> anyhow::Result<Value> {
        self.until_match(kind, |_| true, limit).await
    }

    /// Skips events until one of type `kind` for which `pred` holds arrives.
    pub async fn until_match(
        &mut self,
        kind: &str,
        pred: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self
                .next(left)
                .await
                .with_context(|| format!("waiting for a {kind} event"))?;
            if e["type"] == kind && pred(&e) {
                return Ok(e);
            }
        }
    }
}

/// For tests that need something this machine may lack (Docker, QEMU, root): `Some(why)` means
/// skip, and the caller returns after this printed why. With `CI` set it fails instead: CI runs
/// everything.
pub fn skip_without(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return false };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs everything, but {test} cannot run here: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    true
}

/// The live (not zombie) processes in a process group: the runtime's own check.
pub fn group_members(pgid: u64) -> Vec<u32> {
    aienv_runtime::process::group_members(u32::try_from(pgid).expect("a process group id"))
}

/// A GET that returns the status code (0 when nothing answers), with no proxy in the way.
pub fn http_status(url: &str) -> u16 {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    client.get(url).send().map_or(0, |r| r.status().as_u16())
}
