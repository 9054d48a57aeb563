//! What the web UI asks of the desktop, where a browser cannot: a native folder picker, showing
//! a folder in the file manager, opening links in the default browser, and saying it is ready.
//! Only these are reachable from the page (capabilities/desktop.json).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tauri::AppHandle;
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

/// When the process started, for the ready line.
pub struct Started(pub Instant, pub AtomicBool);

#[tauri::command]
pub async fn pick_folder(app: AppHandle, title: Option<String>) -> Option<String> {
    let dialog = app
        .dialog()
        .file()
        .set_title(title.unwrap_or_else(|| "Choose a folder".into()));
    tauri::async_runtime::spawn_blocking(move || dialog.blocking_pick_folder())
        .await
        .ok()
        .flatten()
        .map(|p| p.to_string())
}

#[tauri::command]
pub fn reveal(app: AppHandle, path: String) -> Result<(), String> {
    app.opener()
        .reveal_item_in_dir(&path)
        .map_err(|e| format!("cannot show {path} in the file manager: {e}"))
}

/// Opens a tool link in the default browser. Only web links: the page cannot make the desktop
/// open files or run programs.
#[tauri::command]
pub fn open_url(app: AppHandle, url: String) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("only http(s) links are opened, not {url:?}"));
    }
    app.opener()
        .open_url(&url, None::<&str>)
        .map_err(|e| format!("cannot open {url}: {e}"))
}

/// The page shows the node's data: said once on stderr, with the time since the app started
/// (the cold-start figure in docs/benchmarks.md).
#[tauri::command]
pub fn ui_ready(started: tauri::State<'_, Started>) {
    if !started.1.swap(true, Ordering::Relaxed) {
        eprintln!(
            "aienv-desktop: ready in {} ms",
            started.0.elapsed().as_millis()
        );
    }
}
