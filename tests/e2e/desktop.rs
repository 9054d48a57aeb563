//! The desktop app (Tauri v2) for real, under an Xvfb display of the test's own: it opens its
//! window on its node's web UI (a screenshot that is not blank, saved in
//! `target/test-screens/`), its node answers on the address in `node.json` (with the per-launch
//! API key when `node.json` has one), it attaches to a node that already runs on its data dir
//! instead of starting a second one, and SIGTERM makes it quit with status 0 and nothing of it
//! left (WebKit's processes included).
//!
//! The app's signal that the page shows the node's data is the stderr line
//! `aienv-desktop: ready in N ms`; a build that does not print it yet is taken as ready when
//! `node.json` is there, its URL answers `/health`, the window exists and the screen is not blank.
//!
//! Needs `target/debug/aienv-desktop` (`cargo build -p aienv-desktop`, which `scripts/test.sh`
//! does), Xvfb, ImageMagick and xdotool; without them these tests skip with the reason, and with
//! `CI` set they fail instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aienv_e2e::{TestNode, aienv_bin, http_status, private_group, skip_without, wait_for};
use serde_json::Value;

/// A cold WebKit start on a busy 2-core machine can take tens of seconds.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// A blank screen has one or two colours; a rendered page with text has hundreds.
const MIN_COLOURS: u64 = 32;
const TITLE: &str = "AI Environment Manager";
const READY_LINE: &str = "aienv-desktop: ready in ";
const ATTACH_LINE: &str = "aienv-desktop: attached to the node at ";

#[test]
fn window_on_its_own_node_and_clean_quit() {
    let test = "desktop smoke test";
    if skip_without(test, missing()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    write_config(&data_dir, "desktop-smoke");
    let x = Xvfb::start();
    let mut app = App::start(&x, tmp.path(), &data_dir);

    let ready = app.wait_until_shown(&x, &data_dir, "desktop.png");
    eprintln!("{test}: {ready}");
    let record = node_record(&data_dir);
    assert_eq!(
        record["pid"].as_u64(),
        Some(u64::from(app.pid)),
        "node.json should be the app's own in-process node: {record}\n{}",
        app.log()
    );
    let url = record["url"]
        .as_str()
        .expect("node.json has a url")
        .to_string();
    check_api(&url, &data_dir, &record);

    app.quit_cleanly();
    assert_eq!(
        http_status(&format!("{url}/api/v1/health")),
        0,
        "the app's node still answers at {url} after the app quit"
    );
    assert!(
        !data_dir.join("node.json").exists(),
        "node.json is still there after the app quit: its node did not shut down cleanly"
    );
}

#[test]
fn attaches_to_a_running_node() {
    let test = "desktop attach test";
    if skip_without(test, missing()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    write_config(&data_dir, "desktop-attach");
    let node = TestNode::start_in(&data_dir, "desktop-attach", &[]).unwrap();
    let x = Xvfb::start();
    let mut app = App::start(&x, tmp.path(), &data_dir);

    let line = app.wait_for_line(ATTACH_LINE, READY_LIMIT);
    assert_eq!(
        line.trim_end(),
        format!("{ATTACH_LINE}{}", node.url),
        "the app attached to another URL than the running node's"
    );
    let ready = app.wait_until_shown(&x, &data_dir, "desktop-attached.png");
    eprintln!("{test}: {ready}");
    let record = node_record(&data_dir);
    assert_eq!(
        record["pid"].as_u64(),
        Some(u64::from(node.child.id())),
        "node.json should still be the running node's: the app started a second node\n{}",
        app.log()
    );

    app.quit_cleanly();
    // The node was not the app's to stop.
    assert_eq!(http_status(&format!("{}/api/v1/health", node.url)), 200);
    assert_eq!(
        node_record(&data_dir)["pid"].as_u64(),
        Some(u64::from(node.child.id()))
    );
}

/// Why the desktop tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    let bin = desktop_bin();
    if !bin.is_file() {
        return Some(format!(
            "{} is missing (cargo build --locked -p aienv-desktop)",
            bin.display()
        ));
    }
    let tools = ["Xvfb", "import", "convert", "xdotool"];
    let absent: Vec<_> = tools.iter().filter(|t| !on_path(t)).collect();
    (!absent.is_empty()).then(|| {
        format!(
            "{absent:?} not found (scripts/install-deps.sh installs xvfb, imagemagick, xdotool)"
        )
    })
}

/// The desktop binary beside the `aienv` binary under test (same profile).
fn desktop_bin() -> PathBuf {
    aienv_bin().with_file_name("aienv-desktop")
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// A data dir whose config pins discovery to loopback on a group port of the test's own.
fn write_config(data_dir: &Path, name: &str) {
    std::fs::create_dir_all(data_dir).unwrap();
    let config = format!(
        "name = \"{name}\"\ndiscovery_interfaces = [\"127.0.0.1\"]\ndiscovery_group = \"{}\"\n",
        private_group()
    );
    std::fs::write(data_dir.join("config.toml"), config).unwrap();
}

fn node_record(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("node.json")).expect("node.json is there");
    serde_json::from_str(&text).expect("node.json is JSON")
}

/// The node behind the window answers: health with no key, the API with the key from node.json
/// when there is one (and not without it: that key is what keeps other local users out).
fn check_api(url: &str, data_dir: &Path, record: &Value) {
    assert_eq!(http_status(&format!("{url}/api/v1/health")), 200);
    let workspaces = format!("{url}/api/v1/workspaces");
    let Some(key) = record["api_key"].as_str() else {
        eprintln!("node.json has no api_key: the app's node runs without a per-launch key");
        assert_eq!(get(&workspaces, None), 200, "GET {workspaces}");
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data_dir.join("node.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "node.json holds the API key: only its owner may read it"
    );
    assert_eq!(
        get(&workspaces, Some(key)),
        200,
        "GET {workspaces} with the key"
    );
    assert_eq!(
        get(&workspaces, None),
        401,
        "GET {workspaces} without the key"
    );
}

/// A GET with an optional bearer key: the status code, 0 when nothing answers.
fn get(url: &str, key: Option<&str>) -> u16 {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let mut req = client.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().map_or(0, |r| r.status().as_u16())
}

/// An Xvfb server on a display number nobody uses; killed when dropped.
#[derive(Debug)]
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        // Spread parallel tests over the numbers; one that loses a race for a number tries the next.
        let first = 100 + std::process::id() % 400;
        for n in first..first + 50 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            if socket.exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let display = format!(":{n}");
            let mut child = Command::new("Xvfb")
                .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb starts");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if child.try_wait().unwrap().is_some() {
                    break; // another server took this number meanwhile
                }
                if socket.exists() {
                    return Xvfb { child, display };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "no Xvfb display could be started in :{first}..:{}",
            first + 50
        );
    }

    /// A command with this display and nothing else's.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("GDK_BACKEND", "x11");
        cmd
    }

    /// Saves the root window to `path`; returns how many colours it has (0 when that failed).
    fn screenshot(&self, path: &Path) -> u64 {
        let ok = self
            .command("import")
            .args(["-window", "root"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return 0;
        }
        let out = Command::new("convert")
            .arg(path)
            .args(["-format", "%k", "info:"])
            .output()
            .expect("convert runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    fn has_window(&self, title: &str) -> bool {
        self.command("xdotool")
            .args(["search", "--name", &format!("^{title}$")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the app was seen ready.
#[derive(Debug)]
enum Ready {
    /// Its own `ready in N ms` line; the test's clock (process start included) beside it.
    Signal { app_ms: u64, seen: Duration },
    /// No line: node.json, /health, the window and a screen that is not blank.
    Fallback(Duration),
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Signal { app_ms, seen } => write!(
                f,
                "ready in {app_ms} ms by the app's own line (seen by the test after {} ms)",
                seen.as_millis()
            ),
            Ready::Fallback(t) => write!(
                f,
                "no `{READY_LINE}N ms` line (the app does not print it yet); node.json, /health, \
                 the window and a painted screen after {} ms",
                t.as_millis()
            ),
        }
    }
}

/// The desktop app under Xvfb (inside its own session bus when `dbus-run-session` is there).
/// Dropping it kills whatever of it is left, also when a test failed half-way.
#[derive(Debug)]
struct App {
    /// `dbus-run-session`, or the app itself.
    child: Child,
    /// The app's own process.
    pid: u32,
    /// Its stderr (and the session bus's).
    log: PathBuf,
    started: Instant,
    /// Every process seen below `child`: what to kill if the test fails half-way.
    seen: Vec<Proc>,
}

impl App {
    fn start(x: &Xvfb, tmp: &Path, data_dir: &Path) -> App {
        // A session bus of its own: no tray warning, and nothing shared with the user's session.
        let mut cmd = if on_path("dbus-run-session") {
            let mut c = x.command("dbus-run-session");
            c.arg("--").arg(desktop_bin());
            c
        } else {
            x.command(desktop_bin().to_str().unwrap())
        };
        let log = tmp.join("app.log");
        // XDG dirs in the temp dir: WebKit's caches and storage neither come from nor land in
        // the user's home, and every start is a cold one. (The accessibility bus that WebKit asks
        // the session bus for lives outside the app's tree and ends with the session bus.)
        for (var, dir) in [
            ("XDG_DATA_HOME", "xdg-data"),
            ("XDG_CACHE_HOME", "xdg-cache"),
            ("XDG_CONFIG_HOME", "xdg-config"),
        ] {
            cmd.env(var, tmp.join(dir));
        }
        cmd.env("AIENV_DATA_DIR", data_dir)
            .env("AIENV_LOG", "info")
            .env_remove("AIENV_NODE")
            .env_remove("AIENV_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("the desktop app starts");
        let wrapped = child.id();
        let what = format!("the app's process under {wrapped}");
        let pid = wait_for(&what, Duration::from_secs(10), || {
            if let Some(s) = child.try_wait().unwrap() {
                panic!(
                    "the app exited with {s} at once:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            descendants(wrapped)
                .into_iter()
                .map(|p| p.pid)
                .chain([wrapped])
                .find(|pid| comm(*pid) == "aienv-desktop")
        });
        let mut app = App {
            child,
            pid,
            log,
            started,
            seen: Vec::new(),
        };
        app.note_tree();
        app
    }

    /// Adds the processes below `child` now to those seen.
    fn note_tree(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return; // its id may belong to another process by now
        }
        for p in descendants(self.child.id()) {
            if !self.seen.contains(&p) {
                self.seen.push(p);
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn line(&self, prefix: &str) -> Option<String> {
        let log = self.log();
        log.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
    }

    fn assert_running(&mut self) {
        if let Some(s) = self.child.try_wait().unwrap() {
            panic!("the app exited with {s}:\n{}", self.log());
        }
    }

    /// Waits for a stderr line that starts with `prefix`.
    fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> String {
        loop {
            self.assert_running();
            if let Some(l) = self.line(prefix) {
                return l;
            }
            assert!(
                self.started.elapsed() < limit,
                "the app printed no `{prefix}...` line within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the app says (or, before it says so, looks like) its page shows the node's
    /// data, with a screenshot that is not blank saved as `target/test-screens/SHOT`.
    fn wait_until_shown(&mut self, x: &Xvfb, data_dir: &Path, shot: &str) -> Ready {
        let dir = target_dir().join("test-screens");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(shot);
        let mut colours = 0;
        loop {
            self.assert_running();
            self.note_tree();
            let signal = self.line(READY_LINE);
            if signal.is_some() || fallback_holds(x, data_dir) {
                colours = x.screenshot(&path);
                if colours > MIN_COLOURS {
                    // Read again: the line may have come while the screen was being taken.
                    return match self.line(READY_LINE) {
                        Some(l) => Ready::Signal {
                            app_ms: parse_ms(&l),
                            seen: self.started.elapsed(),
                        },
                        None => Ready::Fallback(self.started.elapsed()),
                    };
                }
            }
            assert!(
                self.started.elapsed() < READY_LIMIT,
                "the app was not shown within {READY_LIMIT:?}: ready line {:?}, node.json + \
                 /health + window {}, last screenshot {} with {colours} colours:\n{}",
                self.line(READY_LINE),
                fallback_holds(x, data_dir),
                path.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM: the app exits with 0 and none of its processes is left.
    fn quit_cleanly(&mut self) {
        // Collected before the signal: once the app is gone its children are no longer its.
        self.note_tree();
        let tree = descendants(self.pid);
        assert!(
            tree.iter().any(|p| comm(p.pid).starts_with("WebKit")),
            "the app has no WebKit process: {tree:?}"
        );
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.success(),
            "on SIGTERM the app exited with {status}, not 0 (it should quit cleanly):\n{}",
            self.log()
        );
        let start = Instant::now();
        let mut left: Vec<Proc> = tree.clone();
        while start.elapsed() < Duration::from_secs(5) {
            left.retain(|p| p.alive());
            if left.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let names: Vec<_> = left.iter().map(|p| (p.pid, cmdline(p.pid))).collect();
        panic!("5 s after the app quit, its processes are still there: {names:?}");
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "the app did not exit within {limit:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.note_tree();
        // Only processes still alive with the start time they were seen with: ids get reused.
        for p in self.seen.iter().filter(|p| p.alive()) {
            let _ = Command::new("kill")
                .args(["-KILL", &p.pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fallback while the app does not print its ready line: node.json is there, its URL
/// answers, and the window exists.
fn fallback_holds(x: &Xvfb, data_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data_dir.join("node.json")) else {
        return false;
    };
    let Ok(record) = serde_json::from_str::<Value>(&text) else {
        return false;
    };
    let url = record["url"].as_str().unwrap_or_default();
    http_status(&format!("{url}/api/v1/health")) == 200 && x.has_window(TITLE)
}

fn parse_ms(line: &str) -> u64 {
    line.trim_start_matches(READY_LINE)
        .trim_end()
        .trim_end_matches("ms")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot read the time in {line:?}"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A process by its id and start time, so that a recycled id is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: u32,
    start: u64,
}

impl Proc {
    fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && s.state != 'Z')
    }
}

#[derive(Debug)]
struct Stat {
    state: char,
    ppid: u32,
    start: u64,
}

/// `/proc/PID/stat`: the fields after the command name, which may hold spaces and parentheses.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every live process below `root`, by walking the parent links in /proc.
fn descendants(root: u32) -> Vec<Proc> {
    let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid).filter(|s| s.state != 'Z') {
            children.entry(s.ppid).or_default().push(Proc {
                pid,
                start: s.start,
            });
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for c in children.remove(&p).unwrap_or_default() {
            todo.push(c.pid);
            out.push(c);
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}
