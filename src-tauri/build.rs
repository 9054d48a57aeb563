fn main() {
    // The app's own commands, so that capabilities/desktop.json can allow exactly these to the
    // web UI (which is loaded from the node's loopback address, a "remote" origin to Tauri).
    let manifest = tauri_build::AppManifest::new().commands(&[
        "pick_folder",
        "reveal",
        "open_url",
        "ui_ready",
    ]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri-build failed");
}
