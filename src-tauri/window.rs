//! The app's one window. Closing it destroys it (WebKit's web process goes with it, about
//! 110 MB) while the app stays in the tray; opening it again from the tray builds a new one on
//! the same node.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "main";

/// What a new window needs: the node's UI address and the script that hands the page its key.
pub struct Spec {
    pub url: tauri::Url,
    pub init: String,
}

/// Shows the window (building it when it was closed), optionally on one of the UI's views.
pub fn open(app: &AppHandle, view: Option<&str>) {
    let window = match app.get_webview_window(LABEL) {
        Some(w) => w,
        None => match build(app) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("cannot open the window: {e}");
                return;
            }
        },
    };
    let _ = window.show();
    let _ = window.unminimize();
    let _ = window.set_focus();
    if let Some(v) = view {
        let _ = window.eval(format!("location.hash = '#/{v}'"));
    }
}

pub fn build(app: &AppHandle) -> tauri::Result<tauri::WebviewWindow> {
    let spec = app.state::<Spec>();
    let window = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(spec.url.clone()))
        .title("AI Environment Manager")
        .inner_size(1200.0, 800.0)
        .min_inner_size(720.0, 480.0)
        .initialization_script(&spec.init)
        .build()?;
    crate::webview::tune(&window);
    Ok(window)
}
