//! A page from elsewhere cannot drive the node: a foreign `Origin` (a drive-by page posting to
//! 127.0.0.1) or a `Host` that is not this machine (DNS rebinding) is refused on every route,
//! while the node's own page, the desktop app and programs that send no `Origin` pass.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use super::fixture;

fn req(method: Method, path: &str, host: &str, origin: Option<&str>) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host);
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    if path == "/api/v1/runs" {
        r = r.header(header::CONTENT_TYPE, "application/json");
        return r
            .body(Body::from(r#"{"workspace":"w","environment":"e"}"#))
            .unwrap();
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn foreign_pages_and_rebound_hosts_are_refused() {
    let f = fixture();
    let (status, body) = f
        .send(req(
            Method::POST,
            "/api/v1/runs",
            "127.0.0.1:47478",
            Some("https://evil.example"),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "foreign_origin");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example")
    );

    let (status, body) = f
        .send(req(
            Method::GET,
            "/api/v1/workspaces",
            "evil.example:47478",
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not name this machine")
    );

    // Another page on this machine (a dev server on another port) is another origin.
    let (status, _) = f
        .send(req(
            Method::GET,
            "/api/v1/workspaces",
            "127.0.0.1:47478",
            Some("http://127.0.0.1:3000"),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_nodes_own_page_the_desktop_app_and_programs_pass() {
    let f = fixture();
    for (host, origin) in [
        ("127.0.0.1:47478", Some("http://127.0.0.1:47478")),
        ("localhost:47478", Some("http://localhost:47478")),
        ("127.0.0.1:5123", Some("tauri://localhost")),
        ("192.168.1.20:47478", None),
        ("[::1]:47478", None),
    ] {
        let (status, body) = f
            .send(req(Method::GET, "/api/v1/workspaces", host, origin))
            .await;
        assert_eq!(status, StatusCode::OK, "{host} {origin:?}: {body}");
    }
}
