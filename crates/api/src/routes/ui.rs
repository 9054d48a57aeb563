//! The web UI, embedded in the binary so a node needs no files beside it.
//!
//! `build.rs` stages the built UI (`ui/dist/`) into `OUT_DIR/ui`, or a placeholder page when it
//! was not built, and [`UI`] embeds that folder. `/` is `index.html`, `/assets/...` are Vite's
//! content-hashed bundles (cached for good: a new build has new names), and other top-level files
//! (`/favicon.svg`) are served as they are. None needs the API key: the page asks for it.
//! Answers are gzipped for clients that accept it; the API's routes are not compressed here (its
//! transfer streams carry their own compression).

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};
use tower_http::compression::CompressionLayer;

use crate::error::ApiError;

/// The built UI, or a placeholder page when it was not built (see `build.rs`).
static UI: Dir<'static> = include_dir!("$OUT_DIR/ui");

/// Vite puts a content hash in every name under `assets/`, so such a file never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` and the unhashed top-level files change with each build: always revalidate.
const NO_CACHE: &str = "no-cache";
/// The page may load only its own files and talk only to its own node (HTTP and WebSocket on the
/// same host and port); no other page may frame it. WebKit does not count `ws:` as `'self'`, so
/// the WebSocket schemes are listed (they reach only hosts the Host/Origin checks allow anyway).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The routes of the embedded UI.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router_for(&UI)
}

/// The routes serving the files of `dir` (tests pass a fixture).
pub(crate) fn router_for<S: Clone + Send + Sync + 'static>(
    dir: &'static Dir<'static>,
) -> Router<S> {
    Router::new()
        .route("/", get(move || async move { serve(dir, "index.html") }))
        .route(
            "/assets/{*path}",
            get(move |Path(path): Path<String>| async move { serve(dir, &format!("assets/{path}")) }),
        )
        .route(
            "/{file}",
            get(move |Path(file): Path<String>| async move { serve(dir, &file) }),
        )
        .layer(CompressionLayer::new())
}

/// The file at `path` (relative, `/`-separated) in `dir` with its type and caching, or 404.
pub(crate) fn serve(dir: &'static Dir<'static>, path: &str) -> Response {
    let Some(file) = dir.get_file(path) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no such path /{path}; the web UI is at / and the API is described at \
                 /api/v1/openapi.json"
            ),
        )
        .into_response();
    };
    let cache = if path.starts_with("assets/") {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, cache),
        ],
        file.contents(),
    )
        .into_response();
    if path.ends_with(".html") {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(CSP),
        );
    }
    res
}

/// The media type of a file of a Vite build, by its extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn the_types_a_vite_build_has_are_known() {
        for (path, want) in [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/index-1a2b.js", "text/javascript; charset=utf-8"),
            ("assets/index-1a2b.css", "text/css; charset=utf-8"),
            ("assets/index-1a2b.js.map", "application/json"),
            ("favicon.svg", "image/svg+xml"),
            ("assets/font-9z.WOFF2", "font/woff2"),
            ("assets/logo.png", "image/png"),
            ("LICENSE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(path), want, "{path}");
        }
    }
}
