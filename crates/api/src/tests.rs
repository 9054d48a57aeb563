//! The router, driven in-process with `oneshot`: every answer a client sees, errors included.

use std::net::SocketAddr;

use aienv_core::config::{Config, Settings};
use aienv_node::Node;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    node: Node,
    _data: tempfile::TempDir,
    root: tempfile::TempDir,
}

fn fixture_with(key: Option<&str>) -> Fixture {
    let data = tempfile::tempdir().unwrap();
    let settings = Settings {
        name: Some("test-node".into()),
        api_key: key.map(str::to_string),
        ..Default::default()
    };
    let node = Node::start(Config::load(data.path(), settings).unwrap()).unwrap();
    Fixture {
        node,
        _data: data,
        root: tempfile::tempdir().unwrap(),
    }
}

fn fixture() -> Fixture {
    fixture_with(None)
}

impl Fixture {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = crate::router(self.node.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn create(&self, name: &str) -> Value {
        let path = self.root.path().join(name);
        let (status, ws) = self
            .call(
                Method::POST,
                "/api/v1/workspaces",
                Some(json!({"path": path, "create": true})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ws}");
        ws
    }
}

/// The error message of an error answer.
fn message(got: &(StatusCode, Value)) -> &str {
    got.1["error"]["message"].as_str().unwrap_or_default()
}

fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.len() > 10),
        "a message a person can read: {}",
        got.1
    );
}

#[tokio::test]
async fn health_answers_with_the_node_name() {
    let f = fixture();
    let (status, body) = f.call(Method::GET, "/api/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["node"]["name"], "test-node");
}

#[tokio::test]
async fn workspaces_projects_and_environments_round_trip() {
    let f = fixture();
    let ws = f.create("alpha").await;
    assert_eq!(ws["name"], "alpha");
    let id = ws["id"].as_str().unwrap();

    let (_, list) = f.call(Method::GET, "/api/v1/workspaces", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);

    let project =
        json!({"name": "trainer", "git": {"remote": "https://example.org/t.git", "rev": "main"}});
    let (status, _) = f
        .call(
            Method::POST,
            &format!("/api/v1/workspaces/{id}/projects"),
            Some(project),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        f.root.path().join("alpha/trainer").is_dir(),
        "adding a project creates its folder"
    );

    let env = json!({
        "name": "notebook", "kind": "process", "projects": ["trainer"],
        "requires": {"gpus": 1, "vram_gb": 16.0},
        "tools": [{"name": "JupyterLab", "command": "jupyter lab --port {port}", "url": "http://{host}:{port}/lab"}]
    });
    let (status, _) = f
        .call(
            Method::POST,
            "/api/v1/workspaces/alpha/environments",
            Some(env),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, got) = f
        .call(
            Method::GET,
            "/api/v1/workspaces/alpha/environments/notebook",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["tools"][0]["name"], "JupyterLab");
    assert_eq!(got["requires"]["gpus"], 1);

    // Rename through PUT, then the manifest on disk says so, comments included.
    let renamed = json!({"name": "lab", "kind": "process", "projects": ["trainer"]});
    let (status, _) = f
        .call(
            Method::PUT,
            "/api/v1/workspaces/alpha/environments/notebook",
            Some(renamed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = std::fs::read_to_string(f.root.path().join("alpha/aienv.toml")).unwrap();
    assert!(
        text.contains("\n[environment.lab]") && !text.contains("\n[environment.notebook]"),
        "{text}"
    );
    assert!(
        text.contains("# open | token | approve"),
        "the starter's comments survive edits"
    );

    let (status, ws) = f
        .call(
            Method::PATCH,
            "/api/v1/workspaces/alpha",
            Some(json!({"description": "d", "sharing": {"enabled": true, "access": "open"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ws}");
    assert_eq!(ws["manifest"]["sharing"]["access"], "open");
    assert_eq!(ws["manifest"]["workspace"]["description"], "d");
    let text = std::fs::read_to_string(f.root.path().join("alpha/aienv.toml")).unwrap();
    assert!(
        text.contains("access = \"open\"   # open | token | approve"),
        "a changed value keeps its comment:\n{text}"
    );

    let (status, _) = f
        .call(
            Method::DELETE,
            "/api/v1/workspaces/alpha/environments/lab",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = f
        .call(
            Method::DELETE,
            "/api/v1/workspaces/alpha/projects/trainer",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        f.root.path().join("alpha/trainer").is_dir(),
        "removing a project keeps its files"
    );

    let (status, _) = f
        .call(Method::DELETE, &format!("/api/v1/workspaces/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        f.root.path().join("alpha/aienv.toml").is_file(),
        "forgetting a workspace keeps its files"
    );
    let (_, list) = f.call(Method::GET, "/api/v1/workspaces", None).await;
    assert!(list.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_get_the_error_shape_with_a_fitting_status() {
    let f = fixture();
    f.create("alpha").await;
    assert_error(
        &f.call(Method::GET, "/api/v1/workspaces/nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &f.call(Method::GET, "/api/v1/no/such/path", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &f.call(Method::DELETE, "/api/v1/health", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );

    let broken = Request::post("/api/v1/workspaces")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"path\":"))
        .unwrap();
    assert_error(
        &f.send(broken).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let no_type = Request::post("/api/v1/workspaces")
        .body(Body::from("{}"))
        .unwrap();
    assert_error(
        &f.send(no_type).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let unknown = f
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"path": "/tmp", "colour": "red"})),
        )
        .await;
    assert_error(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert!(message(&unknown).contains("colour"));

    let huge = json!({"path": "x".repeat(crate::MAX_BODY_BYTES + 1)});
    assert_error(
        &f.call(Method::POST, "/api/v1/workspaces", Some(huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );

    let relative = f
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"path": "rel/dir", "create": true})),
        )
        .await;
    assert_error(&relative, StatusCode::BAD_REQUEST, "invalid_request");

    let again = f
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"path": f.root.path().join("alpha")})),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "already_exists");
    let over = f
        .call(
            Method::POST,
            "/api/v1/workspaces",
            Some(json!({"path": f.root.path().join("alpha"), "create": true})),
        )
        .await;
    assert_error(&over, StatusCode::CONFLICT, "already_exists");

    let dup = json!({"name": "a", "kind": "process"});
    f.call(
        Method::POST,
        "/api/v1/workspaces/alpha/environments",
        Some(dup.clone()),
    )
    .await;
    assert_error(
        &f.call(
            Method::POST,
            "/api/v1/workspaces/alpha/environments",
            Some(dup),
        )
        .await,
        StatusCode::CONFLICT,
        "already_exists",
    );
}

#[tokio::test]
async fn an_edit_that_would_break_the_manifest_is_refused_and_nothing_is_written() {
    let f = fixture();
    f.create("alpha").await;
    let file = f.root.path().join("alpha/aienv.toml");
    let before = std::fs::read_to_string(&file).unwrap();

    let bad_env = json!({"name": "c", "kind": "container"});
    let got = f
        .call(
            Method::POST,
            "/api/v1/workspaces/alpha/environments",
            Some(bad_env),
        )
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest");
    assert!(message(&got).contains("needs `image"));
    assert!(
        got.1["error"]["location"]["line"].as_u64().is_some(),
        "the position comes along: {}",
        got.1
    );

    let req = Request::put("/api/v1/workspaces/alpha/manifest")
        .body(Body::from("[workspace]\nname = \"alpha\"\nbogus = 1\n"))
        .unwrap();
    let got = f.send(req).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest");
    assert_eq!(got.1["error"]["location"]["line"], 3);
    assert_eq!(got.1["error"]["location"]["column"], 1);

    let escaping = json!({"name": "p", "path": "../../etc"});
    let got = f
        .call(
            Method::POST,
            "/api/v1/workspaces/alpha/projects",
            Some(escaping),
        )
        .await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest");
    assert!(message(&got).contains("outside the workspace"));

    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "refused edits leave the file as it was"
    );
}

#[tokio::test]
async fn the_manifest_text_can_be_read_and_replaced() {
    let f = fixture();
    f.create("alpha").await;
    let req = Request::get("/api/v1/workspaces/alpha/manifest")
        .body(Body::empty())
        .unwrap();
    let (status, text) = f.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.as_str().unwrap().contains("name = \"alpha\""));
    let new = "[workspace]\nname = \"beta\"\n";
    let req = Request::put("/api/v1/workspaces/alpha/manifest")
        .body(Body::from(new))
        .unwrap();
    let (status, ws) = f.send(req).await;
    assert_eq!(status, StatusCode::OK, "{ws}");
    assert_eq!(ws["name"], "beta");
    assert_eq!(
        std::fs::read_to_string(f.root.path().join("alpha/aienv.toml")).unwrap(),
        new
    );
}

#[tokio::test]
async fn every_route_but_health_and_the_peer_routes_requires_the_api_key() {
    let f = fixture_with(Some("s3cret"));
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "the document lists the routes: {paths:?}");
    // Every operation of the document, so that a new route cannot be forgotten.
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = concrete_path(path);
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for key in [None, Some("Bearer nope")] {
                let mut req = Request::builder().method(method.clone()).uri(&concrete);
                if let Some(k) = key {
                    req = req.header(header::AUTHORIZATION, k);
                }
                let got = f.send(req.body(Body::empty()).unwrap()).await;
                if path == "/api/v1/health" {
                    assert_eq!(got.0, StatusCode::OK);
                } else if crate::guard::is_peer_path(&concrete) {
                    // Guarded by each share's access mode instead (tested with real nodes).
                    assert_ne!(
                        got.1["error"]["code"], "unauthorized",
                        "{method} {path}: {got:?}"
                    );
                } else {
                    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{method} {path}: {got:?}");
                    assert_eq!(got.1["error"]["code"], "unauthorized", "{method} {path}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "every operation was tried ({checked})");
    let right = Request::get("/api/v1/workspaces")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    assert_eq!(f.send(right).await.0, StatusCode::OK);
    // The peer routes' exemption cannot be stretched to other routes by path tricks.
    for trick in [
        "/api/v1/shares/../workspaces",
        "/api/v1/shares/%2e%2e/workspaces",
        "/api/v1/shares/..%2F..%2Fworkspaces/files",
        "/api/v1/shares//../../settings",
    ] {
        let got = f.call(Method::GET, trick, None).await;
        assert!(
            got.0 == StatusCode::NOT_FOUND || got.0 == StatusCode::UNAUTHORIZED,
            "{trick}: {got:?}"
        );
        assert!(
            got.1.get("error").is_some(),
            "{trick} answers an error: {got:?}"
        );
    }
}

/// A documented path with its parameters filled in.
fn concrete_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(if &rest[start..=end] == "{address}" {
            "127.0.0.1:9"
        } else {
            "alpha"
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn peer_routes_from_other_machines_need_tls() {
    let f = fixture();
    for (addr, tls, ok) in [
        ("192.168.1.5:5000", false, false),
        ("192.168.1.5:5000", true, true),
        ("127.0.0.1:5000", false, true),
    ] {
        let mut req = Request::get("/api/v1/shares").body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(crate::Conn {
            addr: addr.parse().unwrap(),
            tls,
            client_cert: None,
        }));
        let got = f.send(req).await;
        if ok {
            assert_eq!(got.0, StatusCode::OK, "{addr} tls={tls}: {got:?}");
        } else {
            assert_error(&got, StatusCode::FORBIDDEN, "tls_required");
            let msg = got.1["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("https://") && msg.contains("plain_peers"),
                "{msg}"
            );
        }
    }
    // Other routes (the UI from another machine of the LAN) are not concerned.
    let mut req = Request::get("/api/v1/health").body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(crate::Conn {
        addr: "192.168.1.5:5000".parse().unwrap(),
        tls: false,
        client_cert: None,
    }));
    assert_eq!(f.send(req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn requests_from_outside_the_lan_are_refused() {
    let f = fixture();
    for (addr, ok) in [
        ("127.0.0.1:5000", true),
        ("192.168.1.5:5000", true),
        ("203.0.113.9:5000", false),
    ] {
        let mut req = Request::get("/api/v1/health").body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
        let got = f.send(req).await;
        if ok {
            assert_eq!(got.0, StatusCode::OK, "{addr}");
        } else {
            assert_error(&got, StatusCode::FORBIDDEN, "not_lan");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_names_the_contract_paths() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    for path in [
        "/api/v1/health",
        "/api/v1/workspaces",
        "/api/v1/workspaces/{id}",
        "/api/v1/workspaces/{id}/projects",
        "/api/v1/workspaces/{id}/environments",
        "/api/v1/events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"].get("Event").is_some());
}

#[tokio::test]
async fn a_shared_workspace_lists_its_files_with_hashes_and_without_secrets() {
    let f = fixture();
    f.create("alpha").await;
    let root = f.root.path().join("alpha");
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::fs::write(root.join("models/w.bin"), b"weights").unwrap();
    std::fs::write(root.join(".env"), b"HF_TOKEN=secret").unwrap();

    let got = f
        .call(Method::GET, "/api/v1/shares/alpha/files", None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    assert!(message(&got).contains("not shared"), "{}", got.1);

    let share = json!({"sharing": {"enabled": true, "access": "open"}});
    assert_eq!(
        f.call(Method::PATCH, "/api/v1/workspaces/alpha", Some(share))
            .await
            .0,
        StatusCode::OK
    );
    let (status, m) = f
        .call(Method::GET, "/api/v1/shares/alpha/files", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let paths: Vec<&str> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["aienv.toml", "models", "models/w.bin"],
        ".env never appears"
    );
    let w = &m["entries"][2];
    assert_eq!(w["type"], "file");
    assert_eq!(w["size"], 7);
    assert_eq!(w["hash"], blake3_hex(b"weights"));
}

/// BLAKE3 of `bytes` the way the index computes it (through a file).
fn blake3_hex(bytes: &[u8]) -> String {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f"), bytes).unwrap();
    aienv_sharing::index::hash_file(&d.path().join("f"))
        .unwrap()
        .to_hex()
}

mod limit;
mod openapi_file;
mod origin;
mod settings;
mod ui;
