//! Readiness: when does a tool answer? A TCP connect, an HTTP path that answers 2xx, or a line in
//! the run's log; polled quickly at first (most tools are up in well under a second) and then
//! every 100 ms, until the tool answers, the run's processes are gone, or the time is up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aienv_core::Readiness;

use crate::logs::Follower;

/// How long a tool may take to answer when the manifest does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// A connection to the port. `forwarded`: the port is a forwarder's (a container's published
    /// port, a VM's forwarded one), which accepts even while nothing listens behind it.
    Tcp {
        port: u16,
        forwarded: bool,
    },
    Http {
        port: u16,
        path: String,
    },
    Log(String),
    /// Nothing to wait for (no port, no check): ready once started.
    Started,
}

impl Check {
    /// The check for a tool: what the manifest says, else a TCP connect to its port.
    pub fn for_tool(ready: Option<&Readiness>, port: Option<u16>, forwarded: bool) -> Check {
        match (ready, port) {
            (
                Some(Readiness {
                    log: Some(line), ..
                }),
                _,
            ) => Check::Log(line.clone()),
            (
                Some(Readiness {
                    http: Some(path), ..
                }),
                Some(port),
            ) => Check::Http {
                port,
                path: if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                },
            },
            (_, Some(port)) => Check::Tcp { port, forwarded },
            _ => Check::Started,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Check::Tcp { port, .. } => format!("port {port} to accept connections"),
            Check::Http { port, path } => format!("http://127.0.0.1:{port}{path} to answer 2xx"),
            Check::Log(l) => format!("the log line {l:?}"),
            Check::Started => "the start".into(),
        }
    }
}

/// Waits until `check` passes. `gone` is asked between polls and returns why the run cannot get
/// ready any more (its processes exited); then waiting stops at once with that reason.
pub async fn wait(
    check: &Check,
    log: PathBuf,
    timeout: Duration,
    gone: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    wait_at(check, IpAddr::from(Ipv4Addr::LOCALHOST), log, timeout, gone).await
}

/// [`wait`] for tools that listen on `host` (a run a peer started listens where that peer can
/// reach it).
pub async fn wait_at(
    check: &Check,
    host: IpAddr,
    log: PathBuf,
    timeout: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let start = Instant::now();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let mut follower = Follower::new(log, true);
    let mut pause = Duration::from_millis(5);
    loop {
        // A run that is already gone cannot become ready, whatever a port says.
        if let Some(why) = gone() {
            return Err(why);
        }
        let ok = match check {
            Check::Started => true,
            Check::Tcp { port, forwarded } => tcp_answers(host, *port, *forwarded).await,
            Check::Http { port, path } => http
                .get(format!("http://{}{path}", SocketAddr::new(host, *port)))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            Check::Log(line) => follower
                .read_new()
                .is_ok_and(|lines| lines.iter().any(|l| l.contains(line.as_str()))),
        };
        if ok {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "waited {} s for {}",
                timeout.as_secs(),
                check.describe()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A connection that is accepted and stays open. A port forwarder (Docker's proxy, QEMU's user
/// network) accepts on the tool's behalf and closes at once while nothing listens behind it:
/// that early end of stream counts as not ready. A server that speaks first is ready too.
async fn tcp_answers(host: IpAddr, port: u16, forwarded: bool) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = tokio::net::TcpStream::connect(SocketAddr::new(host, port)).await else {
        return false;
    };
    if !forwarded {
        return true;
    }
    let mut byte = [0u8; 1];
    match tokio::time::timeout(FORWARDER_GRACE, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(_)) | Err(_) => true,
    }
}

/// How long a connection must stay open to count (a forwarder closes within a millisecond).
const FORWARDER_GRACE: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn tcp_log_and_gone() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Duration::from_secs(5);
        let tcp = Check::Tcp {
            port,
            forwarded: true,
        };
        // A listener that never accepts keeps the connection open: that counts as answering.
        wait(&tcp, log.clone(), t, || None).await.unwrap();
        drop(l);
        let e = wait(&tcp, log.clone(), Duration::from_millis(200), || None)
            .await
            .unwrap_err();
        assert!(
            e.contains("waited 0 s") && e.contains(&port.to_string()),
            "{e}"
        );
        let mut f = crate::logs::open_append(&log).unwrap();
        writeln!(f, "Server is running at ...").unwrap();
        wait(&Check::Log("is running".into()), log.clone(), t, || None)
            .await
            .unwrap();
        let e = wait(&Check::Log("never".into()), log, t, || {
            Some("exited with 3".into())
        })
        .await
        .unwrap_err();
        assert_eq!(e, "exited with 3");
    }
}
