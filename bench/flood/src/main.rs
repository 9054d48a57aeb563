//! Floods a real `aienv serve` on 127.0.0.1 with bad requests (wrong keys, foreign origins,
//! scans), at a target rate, over keep-alive connections and new connections, and measures
//! `GET /api/v1/health` beside it: once with no flood (the baseline), then during the flood.
//!
//! Two probes, each on connections of its own: one keeps a connection open and asks every 10 ms,
//! the other opens a new connection for every probe (what a monitor or a fresh CLI does). The
//! latency of a probe is from its first byte sent to the last byte of the answer.
//!
//! The node is started here (its own data dir in the temp folder, discovery pinned to 127.0.0.1
//! on a group port of its own, an API key) and killed by its process id at the end, on errors
//! and on Ctrl-C too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The key the node requires; the flood never sends it.
const KEY: &str = "flood-bench-right-key";
/// Requests on one keep-alive connection before the flooder opens another.
const PER_CONNECTION: u32 = 200;
/// A flood request or a probe with no answer by then counts as an error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

const USAGE: &str = "\
usage: aienv-bench-flood [--bin PATH] [--rate N] [--secs S] [--baseline-secs S]
                         [--new-conn-share F] [--conns N] [--sources N] [--probe-ms MS]
  --bin PATH          aienv binary (default: target/release/aienv of this repository)
  --rate N            bad requests a second to aim for (default 10000)
  --secs S            flood length, seconds (default 20)
  --baseline-secs S   health probes with no flood first, seconds (default 20)
  --new-conn-share F  share of the flood sent on a new connection each (default 0.2)
  --conns N           keep-alive flood connections at once (default 32)
  --sources N         flood from N loopback addresses 127.0.0.2.. instead of 127.0.0.1
                      (default 1: one address, as one misbehaving client)
  --probe-ms MS       health probe interval (default 10)";

#[derive(Debug, Clone)]
struct Options {
    bin: PathBuf,
    rate: f64,
    secs: f64,
    baseline_secs: f64,
    new_conn_share: f64,
    conns: usize,
    sources: u32,
    probe_every: Duration,
}

fn parse_args() -> Result<Options, String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut o = Options {
        bin: repo.join("target/release/aienv"),
        rate: 10_000.0,
        secs: 20.0,
        baseline_secs: 20.0,
        new_conn_share: 0.2,
        conns: 32,
        sources: 1,
        probe_every: Duration::from_millis(10),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--bin" => o.bin = PathBuf::from(value),
            "--rate" => o.rate = num(&value)?,
            "--secs" => o.secs = num(&value)?,
            "--baseline-secs" => o.baseline_secs = num(&value)?,
            "--new-conn-share" => o.new_conn_share = num(&value)?.clamp(0.0, 1.0),
            "--conns" => o.conns = num(&value)?.max(1.0) as usize,
            "--sources" => o.sources = num(&value)?.clamp(1.0, 250.0) as u32,
            "--probe-ms" => o.probe_every = Duration::from_secs_f64(num(&value)?.max(1.0) / 1e3),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let node = match NodeProcess::start(&opts.bin) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = run(&node, &opts) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    // Kill the node before the probe threads of an interrupted run are left behind.
    drop(node);
    rt.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(node: &NodeProcess, opts: &Options) -> Result<(), String> {
    println!(
        "node pid {} at {} ({}); {} cores; load average {}",
        node.child.id(),
        node.addr,
        opts.bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    // Warm up: connections, allocator, page cache.
    let warm = Probes::start(node.addr, opts.probe_every);
    tokio::time::sleep(Duration::from_secs(1)).await;
    warm.stop().await;

    println!(
        "baseline: health probes every {:?} for {} s, no flood",
        opts.probe_every, opts.baseline_secs
    );
    let probes = Probes::start(node.addr, opts.probe_every);
    tokio::time::sleep(Duration::from_secs_f64(opts.baseline_secs)).await;
    let baseline = probes.stop().await;
    let rss_before = node.rss_kb();

    println!(
        "flood: {} bad requests/s for {} s ({:.0}% on new connections, {} keep-alive connections, {} source address(es)), health probes beside it",
        opts.rate,
        opts.secs,
        opts.new_conn_share * 100.0,
        opts.conns,
        opts.sources
    );
    let cpu_before = node.cpu_ticks();
    let probes = Probes::start(node.addr, opts.probe_every);
    let flood = flood(node.addr, opts).await;
    let during = probes.stop().await;
    let cpu_used = node.cpu_ticks().zip(cpu_before).map(|(a, b)| a - b);

    // After the flood: the node answers at once.
    let after = Probes::start(node.addr, opts.probe_every);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = after.stop().await;

    println!();
    let answered: u64 = flood.statuses.values().sum();
    println!(
        "flood: {} requests sent, {} answered in {:.2} s = {:.0} answered/s (target {}), {} errors",
        flood.sent,
        answered,
        flood.elapsed.as_secs_f64(),
        answered as f64 / flood.elapsed.as_secs_f64(),
        opts.rate,
        flood.errors
    );
    let statuses: Vec<String> = flood
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    println!("  statuses: {}", statuses.join(", "));
    if let Some(ticks) = cpu_used {
        // Linux reports CPU time in USER_HZ ticks, 100 a second.
        println!(
            "  node CPU during the flood: {:.0}% of one core; resident memory {} -> {} KB",
            ticks as f64 / 100.0 / flood.elapsed.as_secs_f64() * 100.0,
            rss_before.unwrap_or(0),
            node.rss_kb().unwrap_or(0)
        );
    }
    println!(
        "  node log: {} lines over the whole run",
        node.log().lines().count()
    );
    println!();
    println!("| health probe | phase | probes | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, b, d, a) in [
        ("keep-alive", &baseline.kept, &during.kept, &after.kept),
        (
            "new connection",
            &baseline.fresh,
            &during.fresh,
            &after.fresh,
        ),
    ] {
        for (phase, s) in [("no flood", b), ("flood", d), ("after the flood (1 s)", a)] {
            println!(
                "| {name} | {phase} | {} | {} | {} | {} | {} |",
                s.samples.len(),
                s.failed,
                ms(s.quantile(0.50)),
                ms(s.quantile(0.99)),
                ms(s.quantile(1.0))
            );
        }
    }
    let p99 = during.kept.quantile(0.99).max(during.fresh.quantile(0.99));
    println!();
    println!("load average at the end: {}", load_average());
    println!(
        "health p99 during the flood: {} ms ({} the 50 ms target)",
        ms(p99),
        if p99 < Duration::from_millis(50) && during.kept.failed + during.fresh.failed == 0 {
            "meets"
        } else {
            "MISSES"
        }
    );
    Ok(())
}

/// The 1, 5 and 15 minute load averages (Linux): how busy the machine was besides us.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------------
// The node

struct NodeProcess {
    child: Child,
    data_dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Our own child, by its process id.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

impl NodeProcess {
    fn start(bin: &Path) -> Result<NodeProcess, String> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p aienv-cli`, or pass --bin",
                bin.display()
            ));
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let data_dir =
            std::env::temp_dir().join(format!("aienv-flood-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        // A discovery group port of our own, so no other node on this machine hears this one.
        let group_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| format!("no free UDP port: {e}"))?
            .port();
        let log = std::fs::File::create(data_dir.join("node.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--discovery-interface", "127.0.0.1"])
            .arg("--discovery-group")
            .arg(format!("239.255.77.77:{group_port}"))
            .args(["--name", "flood-bench", "--data-dir"])
            .arg(&data_dir)
            .env("AIENV_API_KEY", KEY)
            .env_remove("AIENV_NODE")
            .env("AIENV_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut node = NodeProcess {
            child,
            data_dir,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        node.addr = node.wait_ready()?;
        Ok(node)
    }

    fn wait_ready(&mut self) -> Result<SocketAddr, String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the node exited with {status}:\n{}", self.log()));
            }
            if let Ok(text) = std::fs::read_to_string(self.data_dir.join("node.json"))
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && v["pid"].as_u64() == Some(u64::from(self.child.id()))
                && let Some(addr) = v["url"]
                    .as_str()
                    .and_then(|u| u.strip_prefix("http://"))
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                && probe_once(addr, true).is_ok()
            {
                return Ok(addr);
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err(format!("the node was not ready in 15 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node.log")).unwrap_or_default()
    }

    /// User + system CPU time of the node so far, in ticks (Linux only).
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Health probes: plain threads with blocking sockets, so the flood's runtime cannot delay them.

#[derive(Debug, Default)]
struct Series {
    samples: Vec<Duration>,
    failed: u64,
}

impl Series {
    fn quantile(&self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.samples.clone();
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
}

struct Probes {
    stop: Arc<AtomicBool>,
    kept: std::thread::JoinHandle<Series>,
    fresh: std::thread::JoinHandle<Series>,
}

struct ProbeResults {
    kept: Series,
    fresh: Series,
}

impl Probes {
    fn start(addr: SocketAddr, every: Duration) -> Probes {
        let stop = Arc::new(AtomicBool::new(false));
        let spawn = |fresh: bool| {
            let stop = stop.clone();
            std::thread::spawn(move || probe_loop(addr, every, fresh, &stop))
        };
        Probes {
            kept: spawn(false),
            fresh: spawn(true),
            stop,
        }
    }

    async fn stop(self) -> ProbeResults {
        self.stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || ProbeResults {
            kept: self.kept.join().unwrap_or_default(),
            fresh: self.fresh.join().unwrap_or_default(),
        })
        .await
        .unwrap_or(ProbeResults {
            kept: Series::default(),
            fresh: Series::default(),
        })
    }
}

type SyncConn = BufReader<std::net::TcpStream>;

fn connect_sync(addr: SocketAddr) -> std::io::Result<SyncConn> {
    let s = std::net::TcpStream::connect_timeout(&addr, ANSWER_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    s.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    Ok(BufReader::new(s))
}

fn health_request(addr: SocketAddr, close: bool) -> Vec<u8> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    format!("GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\n{conn}\r\n").into_bytes()
}

/// One health request over a new connection; its status must be 200.
fn probe_once(addr: SocketAddr, close: bool) -> std::io::Result<()> {
    let mut c = connect_sync(addr)?;
    ask_sync(&mut c, &health_request(addr, close)).map(|_| ())
}

fn ask_sync(c: &mut SyncConn, req: &[u8]) -> std::io::Result<bool> {
    c.get_mut().write_all(req)?;
    let mut line = Vec::new();
    let (status, close) = read_head_sync(c, &mut line)?;
    if status != 200 {
        return Err(std::io::Error::other(format!("health answered {status}")));
    }
    Ok(close)
}

fn probe_loop(addr: SocketAddr, every: Duration, fresh: bool, stop: &AtomicBool) -> Series {
    let mut series = Series::default();
    let req = health_request(addr, fresh);
    let mut conn: Option<SyncConn> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        next += every;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
        let started = Instant::now();
        let result = (|| {
            if fresh || conn.is_none() {
                conn = Some(connect_sync(addr)?);
            }
            let c = conn
                .as_mut()
                .ok_or_else(|| std::io::Error::other("no connection"))?;
            ask_sync(c, &req)
        })();
        match result {
            Ok(close) => {
                series.samples.push(started.elapsed());
                if close || fresh {
                    conn = None;
                }
            }
            Err(_) => {
                series.failed += 1;
                conn = None;
            }
        }
    }
    series
}

/// Reads a response head and body; returns the status and whether the server closes.
fn read_head_sync(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(u16, bool)> {
    let mut head = Head::default();
    loop {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if head.line(line)? {
            break;
        }
    }
    std::io::copy(
        &mut std::io::Read::take(r, head.length),
        &mut std::io::sink(),
    )?;
    Ok((head.status, head.close))
}

#[derive(Default)]
struct Head {
    status: u16,
    length: u64,
    close: bool,
}

impl Head {
    /// Takes one line of the head; true at the blank line that ends it.
    fn line(&mut self, line: &[u8]) -> std::io::Result<bool> {
        let text = std::str::from_utf8(line)
            .map_err(|_| std::io::Error::other("not UTF-8"))?
            .trim_end();
        if self.status == 0 {
            self.status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad status line {text:?}")))?;
            return Ok(false);
        }
        if text.is_empty() {
            return Ok(true);
        }
        if let Some((name, value)) = text.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                self.length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") {
                self.close = value.eq_ignore_ascii_case("close");
            }
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------------
// The flood

#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

struct FloodResult {
    sent: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    elapsed: Duration,
}

/// The bad requests, taken in turn: a wrong key in the header, a wrong key in the query, a scan
/// for a file that is not there (no key), and a post from a foreign page.
fn bad_requests(addr: SocketAddr, close: bool) -> Vec<Vec<u8>> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    [
        "GET /api/v1/workspaces HTTP/1.1\r\nAuthorization: Bearer wrong-key\r\n".to_string(),
        "GET /api/v1/workspaces?access_token=wrong-key HTTP/1.1\r\n".to_string(),
        "GET /api/v1/.env HTTP/1.1\r\n".to_string(),
        "POST /api/v1/runs HTTP/1.1\r\nOrigin: https://evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\n".to_string(),
    ]
    .into_iter()
    .map(|start| {
        let body = if start.starts_with("POST") { "{}" } else { "" };
        format!("{start}Host: {addr}\r\nUser-Agent: flood\r\n{conn}\r\n{body}").into_bytes()
    })
    .collect()
}

async fn flood(addr: SocketAddr, opts: &Options) -> FloodResult {
    let start = Instant::now() + Duration::from_millis(20);
    let until = start + Duration::from_secs_f64(opts.secs);
    let kept_rate = opts.rate * (1.0 - opts.new_conn_share);
    let fresh_rate = opts.rate * opts.new_conn_share;
    // New connections take longer each (connect, accept, close): more of them at once.
    let fresh_workers = if fresh_rate > 0.0 {
        (opts.conns / 2).max(1)
    } else {
        0
    };
    let kept_workers = if kept_rate > 0.0 { opts.conns } else { 0 };
    let sources = Arc::new(Sources::new(opts.sources));
    let mut tasks = Vec::new();
    for (workers, rate, keep_alive) in [
        (kept_workers, kept_rate, true),
        (fresh_workers, fresh_rate, false),
    ] {
        for id in 0..workers {
            let per_worker = rate / workers as f64;
            let sources = sources.clone();
            tasks.push(tokio::spawn(worker(
                addr, id, per_worker, keep_alive, sources, start, until,
            )));
        }
    }
    let mut total = Tally::default();
    for t in tasks {
        if let Ok(t) = t.await {
            total.sent += t.sent;
            total.errors += t.errors;
            for (s, n) in t.statuses {
                *total.statuses.entry(s).or_default() += n;
            }
        }
    }
    FloodResult {
        sent: total.sent,
        statuses: total.statuses,
        errors: total.errors,
        elapsed: start.elapsed(),
    }
}

/// Source addresses for the flood's connections, in turn.
struct Sources {
    count: u32,
    next: AtomicUsize,
}

impl Sources {
    fn new(count: u32) -> Sources {
        Sources {
            count,
            next: AtomicUsize::new(0),
        }
    }

    fn next(&self) -> Option<Ipv4Addr> {
        if self.count <= 1 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) as u32 % self.count;
        Some(Ipv4Addr::new(127, 0, 0, 2 + i as u8))
    }
}

async fn connect(
    addr: SocketAddr,
    from: Option<Ipv4Addr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let stream = match from {
        None => tokio::net::TcpStream::connect(addr).await?,
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((ip, 0)))?;
            socket.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

type AsyncConn = (
    tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
);

async fn worker(
    addr: SocketAddr,
    id: usize,
    per_s: f64,
    keep_alive: bool,
    sources: Arc<Sources>,
    start: Instant,
    until: Instant,
) -> Tally {
    let requests = bad_requests(addr, !keep_alive);
    let period = Duration::from_secs_f64(1.0 / per_s);
    let mut tally = Tally::default();
    let mut conn: Option<(AsyncConn, u32)> = None;
    let mut line = Vec::new();
    // Workers start spread over one period, not all at once.
    let offset = period.mul_f64(id as f64 / 64.0 % 1.0);
    loop {
        let due = start + offset + period.mul_f64(tally.sent as f64);
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let req = &requests[(id + tally.sent as usize) % requests.len()];
        tally.sent += 1;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            if conn.is_none() {
                let (r, w) = connect(addr, sources.next()).await?.into_split();
                conn = Some(((tokio::io::BufReader::new(r), w), 0));
            }
            let Some(((r, w), used)) = conn.as_mut() else {
                return Err(std::io::Error::other("no connection"));
            };
            *used += 1;
            w.write_all(req).await?;
            let (status, close) = read_head(r, &mut line).await?;
            if close || !keep_alive || *used >= PER_CONNECTION {
                conn = None;
            }
            Ok(status)
        })
        .await;
        match answer {
            Ok(Ok(status)) => *tally.statuses.entry(status).or_default() += 1,
            _ => {
                tally.errors += 1;
                conn = None;
            }
        }
    }
    tally
}

async fn read_head(
    r: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    let mut head = Head::default();
    loop {
        line.clear();
        if r.read_until(b'\n', line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if head.line(line)? {
            break;
        }
    }
    tokio::io::copy(&mut r.take(head.length), &mut tokio::io::sink()).await?;
    Ok((head.status, head.close))
}
