//! The desktop app: a Tauri v2 window on the node's web UI, and a tray icon for quick launch.
//!
//! Thin by design: the node is the one already running for this data dir, or one started
//! in-process with the API a headless node serves (`link.rs`); the window shows its web UI; the
//! tray (`tray.rs`, its menu as data in `menu.rs`) and the native commands (`commands.rs`) call
//! the same HTTP API as every other client (`api.rs`), kept current by its event stream
//! (`watch.rs`). No operation lives here. Closing the window (`window.rs`) keeps the app in the
//! tray; runs go on; Quit (or SIGTERM) stops the in-process node and leaves nothing behind.

mod api;
mod commands;
mod link;
mod menu;
mod tray;
mod watch;
mod webview;
mod window;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_notification::NotificationExt;

use crate::api::Api;
use crate::link::Link;
use crate::menu::Snapshot;

/// Whether a tray icon was made (where there is none, closing the window quits).
struct HasTray(bool);

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
            app.manage(window::Spec {
                url: url.parse()?,
                init: api_key_script(api.key()),
            });
            window::build(app.handle())?;
            // Without a tray to come back from, closing the window quits the app.
            let tray = tray::create(app.handle());
            if let Err(e) = &tray {
                tracing::warn!("no tray icon ({e}); closing the window quits the app");
            }
            app.manage(HasTray(tray.is_ok()));
            watch::spawn(api, Watcher(app.handle().clone()));
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the desktop app failed to start");
    app.run(|app, event| {
        if let RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
        {
            // The window was closed: stay in the tray (Quit exits with a code).
            api.prevent_exit();
            if !app.state::<HasTray>().0 {
                quit(app.clone());
            }
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
    let link = app
        .state::<NodeLink>()
        .0
        .lock()
        .ok()
        .and_then(|mut l| l.take());
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
