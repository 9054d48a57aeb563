//! `aienv serve`: a headless node.

use std::net::SocketAddr;
use std::path::PathBuf;

use aienv_core::config::{
    CacheAccess, CacheSettings, Config, RemoteAccess, RemoteRunsConfig, Settings,
};
use aienv_node::Node;
use anyhow::{Context, anyhow};
use clap::Args;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port of the API and web UI; port 0 picks a free one (written to DIR/node.json).
    #[arg(long, env = "AIENV_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Interface (name or address) that discovery announces on; repeatable. Default: every up,
    /// multicast-capable interface with a private address.
    #[arg(
        long = "discovery-interface",
        env = "AIENV_DISCOVERY_INTERFACE",
        value_name = "ADDR_OR_NAME",
        value_delimiter = ','
    )]
    discovery_interfaces: Vec<String>,
    /// Name shown to peers and in the UI (default: the host name).
    #[arg(long, env = "AIENV_NAME")]
    name: Option<String>,
    /// Discovery multicast group and port (all nodes of a LAN must agree).
    #[arg(long, env = "AIENV_DISCOVERY_GROUP", value_name = "GROUP:PORT")]
    discovery_group: Option<std::net::SocketAddrV4>,
    /// Talk to peers and serve them over plain HTTP, without TLS or pinned certificates. Only on
    /// a network you trust (both nodes need it).
    #[arg(long, env = "AIENV_PLAIN_PEERS")]
    plain_peers: bool,
    /// Seconds an access request to a share with `access = "approve"` waits for your answer.
    #[arg(long, env = "AIENV_APPROVE_TIMEOUT", value_name = "SECONDS")]
    approve_timeout: Option<u64>,
    /// The package index asked when no peer has a package (PEP 503); `none`: the LAN only.
    /// Default: PyPI (`[cache] upstream` in config.toml).
    #[arg(long, env = "AIENV_PACKAGE_UPSTREAM", value_name = "URL|none")]
    package_upstream: Option<String>,
    /// A folder of wheel files to serve to peers beside the node's own store; repeatable.
    #[arg(
        long = "wheel-dir",
        env = "AIENV_WHEEL_DIRS",
        value_name = "DIR",
        value_delimiter = ','
    )]
    wheel_dirs: Vec<PathBuf>,
    /// Which peers may read this node's LAN cache (packages and models): `peers` (nodes it
    /// knows, the default), `token` (those holding one of its share tokens) or `open`.
    #[arg(long, env = "AIENV_CACHE_ACCESS", value_name = "peers|token|open", value_parser = |s: &str| parse_plain::<CacheAccess>(s, "peers, token or open"))]
    cache_access: Option<CacheAccess>,
    /// Neither serve nor use the LAN cache (packages and models); builds use the installers' own
    /// index settings.
    #[arg(long, env = "AIENV_NO_LAN_CACHE")]
    no_lan_cache: bool,
    /// Who may start runs on this node from another: `off`, `approve` (you say yes to each, the
    /// default), `peers` (nodes it knows), `token` (those holding one of its share tokens), `open`.
    #[arg(long, env = "AIENV_REMOTE_RUNS", value_name = "off|approve|peers|token|open", value_parser = |s: &str| parse_plain::<RemoteAccess>(s, "off, approve, peers, token or open"))]
    remote_runs: Option<RemoteAccess>,
}

/// A setting's value as config.toml spells it (`peers`, `approve`...), with the choices in the
/// error.
fn parse_plain<T: serde::de::DeserializeOwned>(s: &str, choices: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("{s:?}: expected {choices}"))
}

/// `--api-key generate`: make a key, save it in config.toml, and show it once.
const GENERATE: &str = "generate";

/// A random key (two v4 UUIDs: 244 random bits), saved as `api_key` in `DATA_DIR/config.toml`
/// (which keeps comments) so restarts keep it, and printed once on stdout for the user to copy.
fn generate_api_key(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    aienv_core::config_edit::apply(
        data_dir,
        &aienv_core::config_edit::ConfigChange {
            api_key: Some(key.clone()),
            ..Default::default()
        },
    )
    .context("cannot save the generated API key")?;
    println!(
        "API key (shown once; saved as api_key in {}): {key}\nClients send it with --api-key or AIENV_API_KEY; the web UI asks for it.",
        data_dir.join(aienv_core::config::CONFIG_FILE).display()
    );
    Ok(key)
}

pub async fn run(
    args: ServeArgs,
    data_dir: Option<PathBuf>,
    api_key: Option<String>,
) -> anyhow::Result<()> {
    init_logging();
    let data_dir = data_dir
        .or_else(aienv_core::dirs::default_data_dir)
        .ok_or_else(|| {
            anyhow!("this system has no home folder to keep data in; pass --data-dir DIR")
        })?;
    let settings = Settings {
        name: args.name,
        listen: args.listen,
        discovery_interfaces: (!args.discovery_interfaces.is_empty())
            .then_some(args.discovery_interfaces),
        api_key,
        discovery_group: args.discovery_group,
        static_peers: None,
        plain_peers: args.plain_peers.then_some(true),
        approve_timeout_s: args.approve_timeout,
        cache: Some(CacheSettings {
            packages: args.no_lan_cache.then_some(false),
            models: args.no_lan_cache.then_some(false),
            access: args.cache_access,
            upstream: args
                .package_upstream
                .map(|u| if u == "none" { String::new() } else { u }),
            wheel_dirs: (!args.wheel_dirs.is_empty()).then_some(args.wheel_dirs),
        }),
        remote_runs: args.remote_runs.map(|access| RemoteRunsConfig { access }),
    };
    // Before reading config.toml from it: an unusable data dir gets its own clear message.
    aienv_node::create_data_dir(&data_dir)?;
    let settings = match settings.api_key.as_deref() {
        Some(GENERATE) => Settings {
            api_key: Some(generate_api_key(&data_dir)?),
            ..settings
        },
        _ => settings,
    };
    let config = Config::load(&data_dir, settings)?;
    let listen = config.listen;
    let node = Node::start(config)?;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            node.shutdown().await;
            return Err(anyhow!(
                "cannot listen on {listen}: the port is already in use (another aienv node?); \
                 pick another with --listen HOST:PORT (port 0 picks a free one)"
            ));
        }
        Err(e) => {
            node.shutdown().await;
            return Err(e).with_context(|| format!("cannot listen on {listen}"));
        }
    };
    let local = listener.local_addr()?;
    if let Err(e) = node.go_online(local.port()).await {
        node.shutdown().await;
        return Err(e.into());
    }
    let url = local_url(local);
    node.publish_address(&url)?;
    tracing::info!(
        "aienv node {:?} listening on {url} (bound to {local}; data dir {}; {} workspaces; instance {})",
        node.config().name,
        data_dir.display(),
        node.info().workspaces,
        node.instance_id()
    );
    let served = aienv_api::serve(listener, node.clone(), shutdown_signal()).await;
    node.shutdown().await;
    tracing::info!("aienv node stopped");
    served.context("the API server failed")
}

/// The URL a client on this machine uses: a wildcard bind is reached through loopback.
fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    format!("http://{ip}:{}", addr.port())
}

fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("AIENV_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
