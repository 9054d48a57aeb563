//! The window's web view, set up for a tool that stays open all day: on Linux, WebKitGTK without
//! accelerated compositing (on machines without a GPU driver it renders through a software GL
//! stack that holds about 100 MB for nothing a page of lists needs) and with the cache model of
//! a single-document viewer (the UI is one page, its files are cached by the browser anyway).

pub fn tune(window: &tauri::WebviewWindow) {
    #[cfg(target_os = "linux")]
    {
        let _ = window.with_webview(|w| {
            use webkit2gtk::{
                CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
            };
            let view = w.inner();
            if let Some(settings) = WebViewExt::settings(&view) {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
                settings.set_enable_page_cache(false);
            }
            if let Some(context) = view.context() {
                context.set_cache_model(CacheModel::DocumentViewer);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}
