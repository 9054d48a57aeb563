use std::time::Duration;

use aienv_e2e::{TestNode, text};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn ok(out: &std::process::Output) -> String {
    let (stdout, stderr) = text(out);
    assert!(
        out.status.success(),
        "the command failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_cli_and_http_manage_workspaces_and_hand_edits_arrive_live() {
    let node = TestNode::start("alpha").unwrap();
    let root = tempfile::tempdir().unwrap();
    let ws_dir = root.path().join("llm");
    let ws_path = ws_dir.to_str().unwrap();
    let mut events = node.events().await.unwrap();

    // Create through the CLI; the event stream reports it.
    let out = ok(&node.cli(&["workspace", "create", ws_path, "--description", "LoRA runs"]));
    assert!(out.contains("created workspace \"llm\""), "{out}");
    let added = events.until("workspace_added", WAIT).await.unwrap();
    assert_eq!(added["workspace"]["name"], "llm");
    let id = added["workspace"]["id"].as_str().unwrap().to_string();

    ok(&node.cli(&[
        "project",
        "add",
        "llm",
        "trainer",
        "--git",
        "https://example.org/t.git",
        "--rev",
        "main",
    ]));
    ok(&node.cli(&[
        "env",
        "add",
        "llm",
        "serve",
        "--kind",
        "container",
        "--image",
        "vllm/vllm-openai:latest",
    ]));
    let changed = events
        .until_match(
            "workspace_changed",
            |e| e["workspace"]["manifest"]["environments"][0]["name"] == "serve",
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(changed["cause"], "api");

    let list: Value =
        serde_json::from_str(&ok(&node.cli(&["workspace", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["environments"], json!(["serve"]));
    let env: Value =
        serde_json::from_str(&ok(&node.cli(&["env", "show", "llm", "serve", "--json"]))).unwrap();
    assert_eq!(env["image"], "vllm/vllm-openai:latest");
    let human = ok(&node.cli(&["workspace", "show", &id]));
    assert!(
        human.contains("trainer") && human.contains("serve  container"),
        "{human}"
    );

    // HTTP sees the same.
    let http = reqwest::Client::new();
    let got: Value = get_json(
        &http,
        format!("{}/api/v1/workspaces/{id}/environments", node.url),
    )
    .await;
    assert_eq!(got[0]["name"], "serve");

    // A hand edit of aienv.toml: the new environment arrives over the WebSocket.
    let manifest = ws_dir.join("aienv.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[environment.notebook]\nkind = \"process\"\nprojects = [\"trainer\"]\n");
    std::fs::write(&manifest, &text).unwrap();
    let e = events.until("workspace_changed", WAIT).await.unwrap();
    assert_eq!(
        e["cause"], "file",
        "the next change after our API edits is the hand edit: {e}"
    );
    let envs: Vec<&str> = e["workspace"]["manifest"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["notebook", "serve"]);

    // An invalid hand edit: reported with file, line and column; the last good state stays.
    let broken = text.replace("kind = \"process\"", "kind = \"procss\"");
    std::fs::write(&manifest, &broken).unwrap();
    let e = events.until("manifest_invalid", WAIT).await.unwrap();
    let line = broken
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| *l == "kind = \"procss\"")
        .unwrap()
        + 1;
    assert_eq!(e["error"]["line"], line, "{e}");
    assert_eq!(e["error"]["column"], 8, "{e}");
    assert_eq!(e["error"]["file"], manifest.to_str().unwrap());
    assert!(
        e["error"]["message"].as_str().unwrap().contains("procss"),
        "{e}"
    );
    let ws: Value = get_json(&http, format!("{}/api/v1/workspaces/llm", node.url)).await;
    assert_eq!(ws["problem"]["line"], line);
    assert_eq!(
        ws["manifest"]["environments"].as_array().unwrap().len(),
        2,
        "the last good manifest stays in effect"
    );
    let shown = ok(&node.cli(&["workspace", "show", "llm"]));
    assert!(
        shown.contains("problem:") && shown.contains(&format!("aienv.toml:{line}:8")),
        "{shown}"
    );

    // An API edit while the file is broken is refused, and the user's text is not touched.
    let out = node.cli(&["env", "remove", "llm", "serve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out).contains("fix this in the file first"),
        "{}",
        text_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), broken);

    // Fixing the file clears the problem.
    std::fs::write(&manifest, &text).unwrap();
    let e = events.until("workspace_changed", WAIT).await.unwrap();
    assert!(e["workspace"]["problem"].is_null(), "{e}");

    // Forget the workspace: gone from the list, files kept.
    ok(&node.cli(&["workspace", "remove", "llm"]));
    let e = events.until("workspace_removed", WAIT).await.unwrap();
    assert_eq!(e["id"], id);
    assert!(manifest.is_file());
    // Register it again from its folder.
    let out = ok(&node.cli(&["workspace", "add", ws_path]));
    assert!(out.contains("registered workspace \"llm\""), "{out}");
}

#[tokio::test]
async fn registering_a_folder_with_a_bad_manifest_names_the_line() {
    let node = TestNode::start("alpha").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("aienv.toml"),
        "[workspace]\nname = \"x\"\n[[project]]\nname = \"p\"\npath = \"../../etc\"\n",
    )
    .unwrap();
    let out = node.cli(&["workspace", "add", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text_of(&out);
    assert!(
        err.contains("aienv.toml:5:8") && err.contains("outside the workspace"),
        "{err}"
    );
    let list = ok(&node.cli(&["workspace", "list", "--json"]));
    assert_eq!(list.trim(), "[]", "nothing was registered");

    // A folder without a manifest gets a proposal (here: nothing to adopt), written only once
    // accepted; without a terminal to ask on, nothing is.
    let empty = tempfile::tempdir().unwrap();
    let out = node.cli(&["workspace", "add", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = text_of(&out);
    assert!(
        said.contains("nothing to adopt here") && said.contains("--yes"),
        "{said}"
    );
    assert!(!empty.path().join("aienv.toml").exists());
    let list = ok(&node.cli(&["workspace", "list", "--json"]));
    assert_eq!(list.trim(), "[]", "nothing was registered");
}

fn text_of(out: &std::process::Output) -> String {
    let (a, b) = text(out);
    a + &b
}

#[test]
fn projects_and_environments_are_edited_from_the_cli() {
    let node = TestNode::start("alpha").unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("lab");
    ok(&node.cli(&["workspace", "create", dir.to_str().unwrap()]));
    ok(&node.cli(&["project", "add", "lab", "code"]));
    ok(&node.cli(&[
        "project",
        "edit",
        "lab",
        "code",
        "--git",
        "https://example.org/c.git",
        "--rev",
        "v2",
        "--description",
        "the code",
    ]));
    let p: Value =
        serde_json::from_str(&ok(&node.cli(&["project", "show", "lab", "code", "--json"])))
            .unwrap();
    assert_eq!(
        p["git"],
        json!({"remote": "https://example.org/c.git", "rev": "v2"})
    );
    assert_eq!(p["description"], "the code");

    ok(&node.cli(&[
        "env",
        "add",
        "lab",
        "box",
        "--kind",
        "vm",
        "--disk",
        "images/a.qcow2",
        "--project",
        "code",
    ]));
    ok(&node.cli(&[
        "env",
        "edit",
        "lab",
        "box",
        "--rename",
        "sandbox",
        "--disk",
        "images/b.qcow2",
    ]));
    let e: Value =
        serde_json::from_str(&ok(&node.cli(&["env", "show", "lab", "sandbox", "--json"]))).unwrap();
    assert_eq!(e["disk"], "images/b.qcow2");
    assert_eq!(
        e["projects"],
        json!(["code"]),
        "fields not given stay as they were"
    );

    // Renaming a project an environment uses is refused: the manifest would break.
    let out = node.cli(&["project", "edit", "lab", "code", "--rename", "src"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out).contains("unknown project \"code\""),
        "{}",
        text_of(&out)
    );

    ok(&node.cli(&[
        "workspace",
        "edit",
        "lab",
        "--share",
        "true",
        "--access",
        "open",
        "--description",
        "shared lab",
    ]));
    let ws: Value =
        serde_json::from_str(&ok(&node.cli(&["workspace", "show", "lab", "--json"]))).unwrap();
    assert_eq!(ws["manifest"]["sharing"]["enabled"], true);
    assert_eq!(ws["manifest"]["sharing"]["access"], "open");
    let text = std::fs::read_to_string(dir.join("aienv.toml")).unwrap();
    assert!(
        text.contains("[environment.sandbox]") && text.contains("description = \"shared lab\""),
        "{text}"
    );
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}
