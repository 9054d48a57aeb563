//! `ui/openapi.json`, which the web UI generates its typed client from, must be this router's
//! OpenAPI document. `AIENV_UPDATE_OPENAPI=1 cargo test -p aienv-api openapi` rewrites it.

use std::path::PathBuf;

fn committed_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/openapi.json")
}

fn rendered() -> String {
    let doc = serde_json::to_string_pretty(&crate::openapi()).expect("the document serialises");
    format!("{doc}\n")
}

#[test]
fn ui_openapi_json_is_the_routers_openapi_document() {
    let file = committed_file();
    let want = rendered();
    if std::env::var_os("AIENV_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&file, &want)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
        return;
    }
    let got = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        got == want,
        "ui/openapi.json is out of date: run `AIENV_UPDATE_OPENAPI=1 cargo test -p aienv-api \
         openapi` and rebuild the UI"
    );
}

#[test]
fn the_openapi_document_describes_what_the_ui_shows() {
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Event",
        "ErrorBody",
        "Workspace",
        "WorkspaceSummary",
        "CatalogEntry",
        "Peer",
        "CloneJob",
        "Run",
        "Resources",
        "ManifestError",
        "WorkspaceProposal",
        "NodeSettings",
        "ConfigFileSettings",
        "SettingsPatch",
        "SettingsUpdate",
    ] {
        assert!(
            schemas.get(name).is_some(),
            "the UI's typed client needs the {name} schema"
        );
    }
    for path in ["/api/v1/settings", "/api/v1/events", "/api/v1/catalog"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[test]
fn every_operation_has_its_own_id() {
    // Client generators name functions and types after operation ids: a repeated one collides.
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op["operationId"].as_str() else {
                continue;
            };
            if let Some(other) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!(
                    "operation id {id:?} is used by {other} and {method} {path}: give one an \
                     `operation_id = \"...\"` in its #[utoipa::path]"
                );
            }
        }
    }
}

#[test]
fn the_document_renders_the_same_every_time() {
    // A document whose key order varied would make the committed file churn.
    assert_eq!(rendered(), rendered());
}

#[test]
fn operations_document_the_refusals_of_their_body_and_query() {
    // Every operation that reads a JSON body or query parameters can refuse them before its
    // handler runs; clients (and Schemathesis) must find those answers in the document.
    let doc = serde_json::to_value(crate::openapi()).unwrap();
    let mut json_bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut want = Vec::new();
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                want.extend(["400", "413", "415", "422"]);
                json_bodies += 1;
            } else if op.get("requestBody").is_some() {
                want.extend(["400", "413"]);
            }
            let query = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            if query {
                want.push("400");
            }
            for status in want {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} does not document {status}"
                );
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status} answers with the error shape"
                    );
                }
            }
        }
    }
    assert!(
        json_bodies >= 10,
        "the JSON bodies were found ({json_bodies})"
    );
}
