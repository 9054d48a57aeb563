//! The web UI's files: types, caching, compression, and that they need no API key.

use aienv_node::Node;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use include_dir::{Dir, include_dir};
use tower::ServiceExt;

use super::fixture_with;

/// A tiny stand-in for `ui/dist`, so these tests do not depend on a real UI build.
static FIXTURE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/ui-dist");

const JS: &str = "/assets/index-AbC123.js";

async fn get(node: &Node, path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
    let mut req = Request::get(path);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    let app = crate::router_with_ui(node.clone(), crate::routes::ui::router_for(&FIXTURE));
    app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

fn header_of(res: &Response, name: header::HeaderName) -> &str {
    res.headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or_default())
}

async fn text(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_page_is_html_that_browsers_revalidate() {
    let f = fixture_with(None);
    let res = get(&f.node, "/", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header_of(&res, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(
        header_of(&res, header::CACHE_CONTROL),
        "no-cache",
        "a new build must show up at the next load"
    );
    let csp = header_of(&res, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(text(res).await.contains("fixture UI for the router tests"));
}

#[tokio::test]
async fn hashed_assets_are_cached_for_good_and_other_files_are_not() {
    let f = fixture_with(None);
    for (path, content_type, cache) in [
        (
            JS,
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        (
            "/assets/index-AbC123.css",
            "text/css; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        ("/favicon.svg", "image/svg+xml", "no-cache"),
    ] {
        let res = get(&f.node, path, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&res, header::CONTENT_TYPE),
            content_type,
            "{path}"
        );
        assert_eq!(header_of(&res, header::CACHE_CONTROL), cache, "{path}");
    }
}

#[tokio::test]
async fn unknown_files_are_404_in_the_api_error_shape() {
    let f = fixture_with(None);
    for path in [
        "/assets/gone-123.js",
        "/nope.txt",
        "/assets",
        "/deep/er/path",
        "/api/v1/nope",
    ] {
        let res = get(&f.node, path, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
}

#[tokio::test]
async fn ui_files_are_gzipped_for_clients_that_accept_it_and_the_api_is_not() {
    let f = fixture_with(None);
    let gzip = [(header::ACCEPT_ENCODING, "gzip")];
    let res = get(&f.node, JS, &gzip).await;
    assert_eq!(header_of(&res, header::CONTENT_ENCODING), "gzip");
    assert_eq!(
        header_of(&res, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable",
        "compression keeps the caching"
    );
    let plain = get(&f.node, JS, &[]).await;
    assert_eq!(
        header_of(&plain, header::CONTENT_ENCODING),
        "",
        "a client that did not ask gets plain bytes"
    );
    let api = get(&f.node, "/api/v1/workspaces", &gzip).await;
    assert_eq!(api.status(), StatusCode::OK);
    assert_eq!(
        header_of(&api, header::CONTENT_ENCODING),
        "",
        "the API is not compressed by the UI's layer"
    );
}

#[tokio::test]
async fn the_ui_needs_no_api_key_and_the_api_still_does() {
    let f = fixture_with(Some("s3cret"));
    for path in ["/", JS, "/favicon.svg"] {
        let res = get(&f.node, path, &[]).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{path}: the page must load to ask for the key"
        );
    }
    for path in ["/api/v1/workspaces", "/api/v1/settings"] {
        let res = get(&f.node, path, &[]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn the_embedded_ui_or_its_placeholder_is_served_at_the_root() {
    // The real build when `ui/dist` existed at compile time, else the page saying how to build it.
    let f = fixture_with(None);
    let res = crate::router(f.node.clone())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-cache");
    let page = text(res).await.to_ascii_lowercase();
    assert!(page.starts_with("<!doctype html>"), "{page}");
}
