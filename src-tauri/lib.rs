//! The desktop app: a Tauri v2 window on the node's web UI, and a tray icon for quick launch.
//!
//! Thin by design: the node is the one already running for this data dir, or one started
//! in-process with the API a headless node serves (`link.rs`); the window shows its web UI; the
//! tray (`tray.rs`, its menu as data in `menu.rs`) and the native commands (`commands.rs`) call
//! the same HTTP API as every other client (`api.rs`), kept current by its event stream
//! (`watch.rs`). No operation lives here. Closing the window keeps the app in the tray; runs go
//! on; Quit (or SIGTERM) stops the in-process node and leaves nothing behind.

mod api;
mod commands;
mod link;
mod menu;
mod tray;
mod watch;
mod webview;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tauri_plugin_notification::NotificationExt;

use crate::api::Api;
use crate::link::Link;
use crate::menu::Snapshot;

/// The link to the node, taken out when quitting.
struct NodeLink(Mutex<Option<Link>>);

/// Starts the app; returns when it quits.
pub fn run() {
    let started = Instant::now();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("AIENV_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .manage(commands::Started(started, Default::default()))
        .invoke_handler(tauri::generate_handler![
            commands::pick_folder,
            commands::reveal,
            commands::open_url,
            commands::ui_ready
        ])
        .setup(|app| {
            let data_dir = link::data_dir()?;
            let link = tauri::async_runtime::block_on(link::connect(&data_dir))?;
            let url = link.url.clone();
            tracing::info!(
                "desktop window on {url} ({})",
                if link.owns_node() {
                    "its own node"
                } else {
                    "an attached node"
                }
            );
            let api = Api::new(&url, link.key.clone());
            app.manage(api.clone());
            app.manage(NodeLink(Mutex::new(Some(link))));
            let key = api_key_script(api.key());
            let window = WebviewWindowBuilder::new(app, "main", WebviewUrl::External(url.parse()?))
                .title("AI Environment Manager")
                .inner_size(1200.0, 800.0)
                .min_inner_size(720.0, 480.0)
                .initialization_script(&key)
                .build()?;
            webview::tune(&window);
            // Closing the window keeps the app (and its node, and the runs) in the tray.
            let w = window.clone();
            window.on_window_event(move |e| {
                if let WindowEvent::CloseRequested { api, .. } = e {
                    api.prevent_close();
                    let _ = w.hide();
                }
            });
            if let Err(e) = tray::create(app.handle()) {
                tracing::warn!("no tray icon ({e}); closing the window quits the app");
            }
            watch::spawn(api, Watcher(app.handle().clone()));
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the desktop app failed to start");
    app.run(|_, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
        {
            // The last window hid: stay in the tray. Quit exits with a code.
            api.prevent_exit();
        }
    });
}

/// The page sends the node's API key (when it has one) the way it keeps one a user typed.
fn api_key_script(key: Option<&str>) -> String {
    match key {
        Some(k) => format!(
            "try {{ localStorage.setItem('aienv.api-key', {}); }} catch (e) {{}}",
            serde_json::Value::String(k.to_string())
        ),
        None => String::new(),
    }
}

struct Watcher(AppHandle);

impl watch::Sink for Watcher {
    fn changed(&self, snapshot: Snapshot) {
        let app = self.0.clone();
        let _ = self
            .0
            .run_on_main_thread(move || tray::refresh(&app, &snapshot));
    }
    fn notify(&self, title: String, body: String) {
        notify(&self.0, title, body);
    }
}

/// A desktop notification; where no notification service runs, only the log has it.
pub(crate) fn notify(app: &AppHandle, title: String, body: String) {
    tracing::info!("{title}: {body}");
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("no desktop notification: {e}");
    }
}

/// Stops the in-process node (peers hear goodbye), then exits.
pub(crate) fn quit(app: AppHandle) {
    let link = app.state::<NodeLink>().0.lock().ok().and_then(|mut l| l.take());
    tauri::async_runtime::spawn(async move {
        if let Some(link) = link {
            let _ = tokio::time::timeout(Duration::from_secs(8), link.shutdown()).await;
        }
        app.exit(0);
    });
}

/// SIGTERM and SIGINT quit like the tray's Quit.
fn quit_on_signals(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        quit(app);
    });
}
