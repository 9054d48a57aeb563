//! Stages the web UI for embedding: copies the built UI (`ui/dist/`, made by `npm run build` in
//! `ui/`) into `OUT_DIR/ui`, which `src/routes/ui.rs` embeds with `include_dir!`. Without a
//! build, it stages a one-page placeholder that says how to make one, so the engine still builds
//! and tests on a machine without Node.js.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>aienv: web UI not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The web UI was not built</h1>
<p>Run <code>npm ci &amp;&amp; npm run build</code> in <code>ui/</code>
(<code>scripts/test.sh</code> and <code>scripts/run.sh</code> do this), then rebuild <code>aienv</code>.</p>
<p>The API works without it: see <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
</body>
</html>
"#;

fn main() -> io::Result<()> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let ui = manifest_dir.join("../../ui");
    let dist = ui.join("dist");
    let out = PathBuf::from(env("OUT_DIR")).join("ui");

    // A stale copy (a file the new build no longer has) must not linger in the binary.
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(&out)?;

    println!("cargo:rerun-if-changed=build.rs");
    if dist.join("index.html").is_file() {
        // A directory's own mtime changes only when entries are added or removed in it, not when
        // a file in it is rewritten: watch every folder and every file.
        println!("cargo:rerun-if-changed={}", dist.display());
        copy_tree(&dist, &out)?;
    } else {
        // Watch `ui/` (which exists) rather than the missing `ui/dist`: cargo reruns a build
        // script on every build while a watched path is missing, which would rebuild this crate
        // each time. Creating `ui/dist` changes `ui/`'s mtime, which is what we need to notice.
        println!("cargo:rerun-if-changed={}", ui.display());
        if dist.is_dir() {
            // A build in progress (or one that failed) left `ui/dist` without its page: notice
            // when the page appears.
            println!("cargo:rerun-if-changed={}", dist.display());
        }
        fs::write(out.join("index.html"), PLACEHOLDER)?;
        println!(
            "cargo:warning=The web UI was not built: run `npm ci && npm run build` in ui/ \
             (scripts/test.sh and scripts/run.sh do this); embedding a placeholder page"
        );
    }
    Ok(())
}

/// Copies the folder `from` into `to` (which exists), announcing each path to cargo.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        println!("cargo:rerun-if-changed={}", src.display());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else {
            // Follows symlinks, so a linked file is embedded as its content.
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
