//! Rate limits and header limits: an address that keeps failing is refused with 429 (the API's
//! error shape, `Retry-After`) while others, health checks and in-process callers are not; a
//! request with huge headers gets a clear 431 over a real socket and the node keeps answering.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use super::fixture_with;
use crate::limit::{FAILURE_BURST, MAX_HEADER_BYTES};

struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

/// `GET path` from `from` (None: in-process, no address) with `key` as the bearer key.
async fn get(app: &Router, from: Option<&str>, path: &str, key: Option<&str>) -> Answer {
    let mut req = Request::get(path);
    if let Some(key) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(from) = from {
        req.extensions_mut()
            .insert(ConnectInfo(from.parse::<SocketAddr>().unwrap()));
    }
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

const FLOODER: &str = "192.168.1.50:40000";
const NEIGHBOUR: &str = "192.168.1.51:40000";

#[tokio::test]
async fn a_burst_of_wrong_keys_ends_in_429_for_that_address_only() {
    let f = fixture_with(Some("s3cret"));
    let app = crate::router(f.node.clone());
    for i in 0..FAILURE_BURST {
        let got = get(&app, Some(FLOODER), "/api/v1/workspaces", Some("guess")).await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let got = get(&app, Some(FLOODER), "/api/v1/workspaces", Some("guess")).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS, "{}", got.body);
    assert_eq!(got.body["error"]["code"], "rate_limited");
    let message = got.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("192.168.1.50") && message.contains("retry in 1 s"),
        "says who, what and when: {message}"
    );
    assert_eq!(
        got.retry_after,
        Some(1),
        "one failure's worth of refill, rounded up"
    );

    // Another port of the same host is the same client.
    let got = get(&app, Some("192.168.1.50:40001"), "/api/v1/nope", None).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);

    // Neighbours, health checks and in-process callers are not affected.
    let got = get(&app, Some(NEIGHBOUR), "/api/v1/workspaces", Some("guess")).await;
    assert_eq!(got.status, StatusCode::UNAUTHORIZED);
    let got = get(&app, Some(NEIGHBOUR), "/api/v1/workspaces", Some("s3cret")).await;
    assert_eq!(got.status, StatusCode::OK);
    let got = get(&app, Some(FLOODER), "/api/v1/health", None).await;
    assert_eq!(got.status, StatusCode::OK, "health always answers");
    assert_eq!(got.body["status"], "ok");
    for _ in 0..2 * FAILURE_BURST {
        let got = get(&app, None, "/api/v1/workspaces", Some("guess")).await;
        assert_eq!(got.status, StatusCode::UNAUTHORIZED, "no address, no limit");
    }
}

#[tokio::test]
async fn a_throttled_address_is_refused_even_with_the_right_key_until_it_waits() {
    let f = fixture_with(Some("s3cret"));
    let app = crate::router(f.node.clone());
    for _ in 0..FAILURE_BURST {
        get(&app, Some(FLOODER), "/api/v1/workspaces", Some("guess")).await;
    }
    // The right key is refused too: otherwise the 429 would tell a guesser which key is right,
    // at full speed.
    let got = get(&app, Some(FLOODER), "/api/v1/workspaces", Some("s3cret")).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS, "{}", got.body);
    let wait = got.retry_after.unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // A client that waits as told gets through.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let got = get(&app, Some(FLOODER), "/api/v1/workspaces", Some("s3cret")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
}

#[tokio::test]
async fn successful_requests_are_never_throttled() {
    let f = fixture_with(Some("s3cret"));
    let app = crate::router(f.node.clone());
    // The web UI polling every route, far past the failure budget.
    for _ in 0..(4 * FAILURE_BURST) {
        for path in [
            "/api/v1/workspaces",
            "/api/v1/peers",
            "/api/v1/catalog",
            "/api/v1/runs",
        ] {
            let got = get(&app, Some(NEIGHBOUR), path, Some("s3cret")).await;
            assert_eq!(got.status, StatusCode::OK, "{path}: {}", got.body);
        }
    }
}

#[tokio::test]
async fn failures_of_requests_with_the_right_key_cost_nothing_and_others_do() {
    let f = fixture_with(Some("s3cret"));
    let app = crate::router(f.node.clone());
    // A client with the key asking for things that are not there (a tester's made-up ids, a
    // workspace removed meanwhile), on any route: its own business.
    for i in 0..(2 * FAILURE_BURST) {
        for path in [
            format!("/api/v1/workspaces/gone-{i}"),
            format!("/api/v1/shares/gone-{i}/files"),
            format!("/api/v1/no/such/route/{i}"),
        ] {
            let got = get(&app, Some(NEIGHBOUR), &path, Some("s3cret")).await;
            assert_eq!(got.status, StatusCode::NOT_FOUND, "{path}: {}", got.body);
        }
    }
    // The same without the key: a scan.
    for i in 0..FAILURE_BURST {
        let path = format!("/api/v1/shares/guess-{i}/files");
        let got = get(&app, Some(FLOODER), &path, None).await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND].contains(&got.status),
            "{}",
            got.body
        );
    }
    let got = get(&app, Some(FLOODER), "/api/v1/shares/guess/files", None).await;
    assert_eq!(got.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_node_without_a_key_charges_refused_origins_but_not_unknown_paths() {
    let f = fixture_with(None);
    let app = crate::router(f.node.clone());
    for i in 0..(2 * FAILURE_BURST) {
        let path = format!("/api/v1/workspaces/gone-{i}");
        let got = get(&app, Some(NEIGHBOUR), &path, None).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{}", got.body);
    }
    let from_page = || {
        let mut req = Request::get("/api/v1/workspaces")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(FLOODER.parse::<SocketAddr>().unwrap()));
        req
    };
    for _ in 0..FAILURE_BURST {
        let res = app.clone().oneshot(from_page()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let res = app.clone().oneshot(from_page()).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Sends raw bytes over a fresh connection and returns what came back (empty when the node
/// closed the connection first).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The node may answer and close before it read everything: a failed write is fine.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn big_header_request(bytes: usize) -> Vec<u8> {
    format!(
        "GET /api/v1/workspaces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    )
    .into_bytes()
}

/// The node served on a real socket on 127.0.0.1, as `aienv serve` serves it.
struct Served {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(node: &aienv_node::Node) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, node.clone(), async {
        let _ = stopped.await;
    }));
    Served { addr, stop, server }
}

impl Served {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

const HEALTH: &[u8] =
    b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn the_limit_applies_to_real_connections() {
    // Through `serve`, the address comes from the socket: a check that the limiter sees it.
    let f = fixture_with(Some("s3cret"));
    let node = serve(&f.node).await;
    let wrong = b"GET /api/v1/workspaces HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer guess\r\nConnection: close\r\n\r\n";
    for i in 0..FAILURE_BURST {
        let answer = raw(node.addr, wrong).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "failure {i}: {answer}");
    }
    let answer = raw(node.addr, wrong).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(raw(node.addr, HEALTH).await.starts_with("HTTP/1.1 200"));
    node.stop().await;
}

#[tokio::test]
async fn huge_headers_get_431_over_a_real_socket_and_the_node_keeps_answering() {
    let f = fixture_with(None);
    let node = serve(&f.node).await;
    let (addr, health) = (node.addr, HEALTH);
    assert!(raw(addr, health).await.starts_with("HTTP/1.1 200"));

    // Past our limit, within hyper's: our 431, in the API's error shape.
    let answer = raw(addr, &big_header_request(100 << 10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&MAX_HEADER_BYTES.to_string())
    );
    // Just under the limit passes.
    let answer = raw(addr, &big_header_request(MAX_HEADER_BYTES - 200)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Past hyper's own buffer (about 400 KB): hyper answers 431 (no body) and closes, or closes
    // before it answers.
    let started = std::time::Instant::now();
    let answer = raw(addr, &big_header_request(4 << 20)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without delay"
    );

    // And the node still answers, at once.
    let started = std::time::Instant::now();
    assert!(raw(addr, health).await.starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(1));

    node.stop().await;
}
