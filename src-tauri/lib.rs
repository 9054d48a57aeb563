//! The desktop shell: a Tauri v2 window on the node's web UI, with the node running in-process.
//!
//! Thin by design: it starts a `Node` and the same API router a headless node serves (on a
//! loopback port of its own), then opens a window on it. No operation lives here; the tray,
//! native dialogs and attaching to an already running node come with the desktop issue.

use std::net::SocketAddr;

use aienv_core::config::{Config, Settings};
use anyhow::Context;
use tauri::{WebviewUrl, WebviewWindowBuilder};

/// Starts the app; returns when the last window closes.
pub fn run() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("AIENV_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    tauri::Builder::default()
        .setup(|app| {
            let url = tauri::async_runtime::block_on(start_node())?;
            tracing::info!("desktop window on {url}");
            WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url.parse()?))
                .title("AI Environment Manager")
                .inner_size(1200.0, 800.0)
                .min_inner_size(720.0, 480.0)
                .build()?;
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the desktop app failed to start");
}

/// Starts the node and its API on a free loopback port; returns the UI's URL.
async fn start_node() -> anyhow::Result<String> {
    let data_dir = std::env::var_os("AIENV_DATA_DIR")
        .map(Into::into)
        .or_else(aienv_core::dirs::default_data_dir)
        .context("no data dir: set AIENV_DATA_DIR")?;
    // The window is the only client: loopback only, any free port.
    let settings = Settings {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Settings::default()
    };
    let config = Config::load(&data_dir, settings)?;
    let node = aienv_node::Node::start(config)?;
    let listener = tokio::net::TcpListener::bind(node.config().listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    node.publish_address(&url)?;
    node.go_online(listener.local_addr()?.port()).await?;
    tauri::async_runtime::spawn(async move {
        let shutdown = std::future::pending::<()>();
        if let Err(e) = aienv_api::serve(listener, node, shutdown).await {
            tracing::error!("the node's API stopped: {e}");
        }
    });
    Ok(url)
}
