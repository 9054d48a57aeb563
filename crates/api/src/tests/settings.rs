//! `GET`, `PATCH /api/v1/settings`: what is in effect, what the file says, and safe edits of it.

use aienv_core::config::{CONFIG_FILE, Config, Settings};
use aienv_node::Node;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use super::{Fixture, assert_error, fixture_with, message};

const HAND_WRITTEN: &str = "# written by hand: keep me\nname = \"from-file\"   # shown to peers\n";

/// A node whose `config.toml` is [`HAND_WRITTEN`], started with `--name test-node`.
fn fixture_with_file() -> Fixture {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join(CONFIG_FILE), HAND_WRITTEN).unwrap();
    let flags = Settings {
        name: Some("test-node".into()),
        ..Default::default()
    };
    let node = Node::start(Config::load(data.path(), flags).unwrap()).unwrap();
    Fixture {
        node,
        _data: data,
        root: tempfile::tempdir().unwrap(),
    }
}

fn config_text(f: &Fixture) -> String {
    std::fs::read_to_string(f.node.config().data_dir.join(CONFIG_FILE)).unwrap()
}

#[tokio::test]
async fn settings_show_what_is_in_effect_and_what_the_file_says() {
    let f = fixture_with_file();
    let (status, s) = f.call(Method::GET, "/api/v1/settings", None).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["name"], "test-node", "the flag wins over the file");
    assert_eq!(s["file"]["name"], "from-file");
    assert_eq!(s["file"]["listen"], serde_json::Value::Null);
    assert_eq!(s["listen"], "0.0.0.0:47478");
    assert_eq!(s["discovery_group"], "239.255.77.77:47477");
    assert_eq!(s["discovery_interfaces"], json!([]));
    assert_eq!(s["static_peers"], json!([]));
    assert_eq!(s["api_key_set"], false);
    assert_eq!(s["file"]["api_key_set"], false);
    assert!(s["config_file"].as_str().unwrap().ends_with(CONFIG_FILE));
    assert!(s["data_dir"].as_str().is_some());
}

#[tokio::test]
async fn a_valid_change_is_saved_for_the_next_start_keeping_comments() {
    let f = fixture_with_file();
    let patch = json!({"name": "renamed", "discovery_interfaces": ["eth0"], "api_key": "n3w-key"});
    let (status, s) = f.call(Method::PATCH, "/api/v1/settings", Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["restart_needed"], true);
    assert!(s["message"].as_str().unwrap().contains("restarts"), "{s}");
    assert_eq!(s["file"]["name"], "renamed");
    assert_eq!(s["file"]["discovery_interfaces"], json!(["eth0"]));
    assert_eq!(s["file"]["api_key_set"], true);
    assert_eq!(s["name"], "test-node", "the running node is unchanged");
    assert_eq!(s["api_key_set"], false, "the running node is unchanged");
    assert!(!s.to_string().contains("n3w-key"), "never the key: {s}");

    let text = config_text(&f);
    assert!(text.starts_with("# written by hand: keep me\n"), "{text}");
    assert!(
        text.contains("name = \"renamed\"   # shown to peers"),
        "{text}"
    );
    assert!(text.contains("api_key = \"n3w-key\""), "{text}");
    let reloaded = Config::load(&f.node.config().data_dir, Settings::default()).unwrap();
    assert_eq!(reloaded.name, "renamed", "the next start reads the change");
    assert_eq!(reloaded.api_key.as_deref(), Some("n3w-key"));

    let (status, s) = f
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(json!({"api_key": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["file"]["api_key_set"], false, "an empty key removes it");
    assert!(!config_text(&f).contains("api_key"));
}

#[tokio::test]
async fn an_invalid_change_is_refused_and_nothing_is_written() {
    let f = fixture_with_file();
    for (patch, mentions) in [
        (json!({"name": "-dash"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (
            json!({"name": "ok", "discovery_interfaces": ["eth0", " "]}),
            "interface",
        ),
        (json!({"api_key": "has space"}), "API key"),
    ] {
        let got = f
            .call(Method::PATCH, "/api/v1/settings", Some(patch.clone()))
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(message(&got).contains(mentions), "{patch}: {}", got.1);
        assert_eq!(config_text(&f), HAND_WRITTEN, "{patch} wrote nothing");
    }
    let unknown = f
        .call(
            Method::PATCH,
            "/api/v1/settings",
            Some(json!({"listen": "0.0.0.0:1"})),
        )
        .await;
    assert_error(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    assert_eq!(config_text(&f), HAND_WRITTEN);
}

#[tokio::test]
async fn the_settings_never_contain_the_api_key() {
    let f = fixture_with(Some("s3cret"));
    let (status, _) = f.call(Method::GET, "/api/v1/settings", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "settings need the key");
    let req = Request::get("/api/v1/settings")
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::empty())
        .unwrap();
    let (status, s) = f.send(req).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["api_key_set"], true);
    assert!(!s.to_string().contains("s3cret"), "{s}");
}
