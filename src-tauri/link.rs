//! Which node the app shows: one already running for this data dir (started as a service, or by
//! `aienv serve`), or else its own, started in-process with the same API router a headless node
//! serves. Either way the app reaches it the same way, over its loopback HTTP API, so nothing is
//! done differently from the browser or the CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aienv_core::config::{Config, Settings};
use aienv_node::Node;
use anyhow::Context;
use tokio::sync::oneshot;

/// The node the app is attached to.
#[derive(Debug)]
pub struct Link {
    pub url: String,
    /// The API key the node wants, when it has one (from its config).
    pub key: Option<String>,
    /// Set when the node runs in this process: quitting the app stops it.
    own: Option<OwnNode>,
}

#[derive(Debug)]
struct OwnNode {
    node: Node,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Link {
    pub fn owns_node(&self) -> bool {
        self.own.is_some()
    }

    /// Stops the in-process node (saying goodbye to peers); an attached node keeps running.
    pub async fn shutdown(self) {
        if let Some(own) = self.own {
            let _ = own.stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), own.served).await;
            own.node.shutdown().await;
        }
    }
}

pub fn data_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("AIENV_DATA_DIR")
        .map(Into::into)
        .or_else(aienv_core::dirs::default_data_dir)
        .context("no data dir: set AIENV_DATA_DIR")
}

/// Attaches to the node running for `data_dir`, or starts one here.
pub async fn connect(data_dir: &Path) -> anyhow::Result<Link> {
    let file = Settings::from_file(data_dir)?;
    let key = std::env::var("AIENV_API_KEY").ok().or(file.api_key.clone());
    if let Some(record) = aienv_node::read_record(data_dir)
        && pid_alive(record.pid)
        && answers(&record.url).await
    {
        eprintln!("aienv-desktop: attached to the node at {}", record.url);
        return Ok(Link {
            url: record.url,
            key,
            own: None,
        });
    }
    // Loopback on any free port unless config.toml says where to listen (e.g. on the LAN).
    let settings = Settings {
        listen: file.listen.or(Some(SocketAddr::from(([127, 0, 0, 1], 0)))),
        ..Settings::default()
    };
    let config = Config::load(data_dir, settings)?;
    let node = Node::start(config)?;
    let listener = tokio::net::TcpListener::bind(node.config().listen)
        .await
        .with_context(|| format!("cannot listen on {}", node.config().listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{}", loopback_view(addr));
    node.publish_address(&url)?;
    node.go_online(addr.port()).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn({
        let node = node.clone();
        async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = aienv_api::serve(listener, node, shutdown).await {
                tracing::error!("the node's API stopped: {e}");
            }
        }
    });
    Ok(Link {
        url,
        key: node.config().api_key.clone(),
        own: Some(OwnNode { node, stop, served }),
    })
}

/// A node bound to every interface is reached by the window on loopback.
fn loopback_view(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || cfg!(not(target_os = "linux"))
}

async fn answers(url: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build();
    match client {
        Ok(c) => c
            .get(format!("{url}/api/v1/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}
