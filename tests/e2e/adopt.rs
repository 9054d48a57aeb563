//! Adopting existing projects through a real node and the real CLI: a folder without an
//! `aienv.toml` gets a proposal (nothing written until accepted), the accepted manifest points
//! at the original files, the environments run for real (a requirements.txt with JupyterLab
//! through uv or pip; a devcontainer built with Docker, its lifecycle commands run), and an edit
//! of the adopted file reaches the environment without touching `aienv.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aienv_e2e::{TestNode, http_status, skip_without, text, wait_for};
use serde_json::Value;

use crate::backends::{docker, docker_missing};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/adopt")
        .join(name)
}

/// Copies a fixture folder (the runs write into their workspace; the repo's copy stays clean).
fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn get(url: &str) -> String {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url)
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

#[test]
fn a_requirements_folder_is_proposed_accepted_and_its_jupyterlab_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("analysis");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("requirements.txt"), "# notebooks\njupyterlab\n").unwrap();
    std::fs::write(dir.join("explore.ipynb"), "{}").unwrap();
    let node = TestNode::start("adopter").unwrap();
    let path = dir.to_str().unwrap();

    // Shown, not written.
    let out = node.cli(&["workspace", "add", path, "--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("has no aienv.toml"), "{stdout}");
    assert!(
        stdout.contains("python  (process, from requirements.txt)"),
        "{stdout}"
    );
    assert!(stdout.contains("tools: JupyterLab"), "{stdout}");
    assert!(
        stdout.contains("from = \"requirements.txt\""),
        "the manifest is shown: {stdout}"
    );
    assert!(!dir.join("aienv.toml").exists(), "a dry run writes nothing");
    // Without a terminal to ask on, nothing is written either, and the user learns how to accept.
    let out = node.cli(&["workspace", "add", path]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("--yes"), "{:?}", text(&out));
    assert!(!dir.join("aienv.toml").exists());

    let out = node.cli(&["workspace", "add", path, "--yes"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", node.log());
    assert!(stdout.contains("with environments: python"), "{stdout}");
    let written = std::fs::read_to_string(dir.join("aienv.toml")).unwrap();
    assert!(written.contains("from = \"requirements.txt\""), "{written}");
    assert!(
        written.contains("# From requirements.txt"),
        "commented: {written}"
    );

    let run = node.json(&["run", "analysis", "python"]);
    assert_eq!(run["state"], "running", "{run}\n{}", node.log());
    let link = run["tools"][0]["url"].as_str().unwrap().to_string();
    assert!(link.contains("/lab?token="), "{link}");
    assert_eq!(http_status(&link), 200, "JupyterLab answers with its token");
    let out = node.cli(&["stop", run["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));

    // Asking again for a folder that now has a manifest is refused with what to do.
    let (status, body) = post(
        &node,
        "/workspaces/proposal",
        &serde_json::json!({ "path": path }),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already has an aienv.toml"),
        "{body}"
    );
    let (status, body) = post(
        &node,
        "/workspaces/proposal",
        &serde_json::json!({ "path": "relative/dir" }),
    );
    assert_eq!(status, 400, "{body}");
}

fn post(node: &TestNode, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/v1{path}", node.url))
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// The devcontainer fixture: built from its Dockerfile with a build arg, its postCreate and
/// postStart commands run, its forwarded port opened through the tool link. Then its file is
/// edited: the environment follows; a broken edit is reported at its line and the last good
/// environment stays.
#[test]
fn a_devcontainer_is_built_run_and_followed_when_its_file_changes() {
    if skip_without("devcontainer test", docker_missing()) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("webdev");
    copy(&fixture("devcontainer"), &dir);
    let node = TestNode::start("devhost").unwrap();
    let out = node.cli(&["workspace", "add", dir.to_str().unwrap(), "--yes"]);
    assert!(out.status.success(), "{:?}\n{}", text(&out), node.log());

    let run = node.json(&["run", "webdev", "devcontainer"]);
    assert_eq!(run["state"], "running", "{run}\n{}", node.log());
    let id = run["id"].as_str().unwrap().to_string();
    let tool = &run["tools"][0];
    assert_eq!(tool["name"], "Web");
    let link = tool["url"].as_str().unwrap().to_string();
    let page = wait_for("the devcontainer's httpd", Duration::from_secs(10), || {
        Some(get(&link)).filter(|b| b.contains("adopted devcontainer"))
    });
    assert!(page.contains("<h1>"), "{page}");
    assert_eq!(
        get(&format!("{link}greeting.txt")).trim(),
        "hello from the build",
        "postCreateCommand copied what the build wrote with its build arg"
    );
    let out = node.cli(&["stop", &id]);
    assert!(out.status.success(), "{:?}", text(&out));
    let left = docker(&["ps", "-aq", "--filter", &format!("label=aienv.run={id}")]).unwrap();
    assert!(left.trim().is_empty(), "nothing left: {left}");

    // Edit the original: the tool's label changes, aienv.toml stays as it was.
    let manifest_before = std::fs::read_to_string(dir.join("aienv.toml")).unwrap();
    let file = dir.join(".devcontainer/devcontainer.json");
    let json = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        json.replace("\"label\": \"Web\"", "\"label\": \"Site\""),
    )
    .unwrap();
    wait_for(
        "the edit of devcontainer.json to reach the environment",
        Duration::from_secs(10),
        || {
            let ws = node.json(&["workspace", "show", "webdev"]);
            (ws["manifest"]["environments"][0]["tools"][0]["name"] == "Site").then_some(())
        },
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("aienv.toml")).unwrap(),
        manifest_before
    );

    // A broken edit: reported with the file and line; the last good environment stays.
    std::fs::write(
        &file,
        json.replace("\"name\": \"Web dev\",", "\"name\": \"Web dev\" \"oops\","),
    )
    .unwrap();
    let problem = wait_for(
        "the broken devcontainer.json to be reported",
        Duration::from_secs(10),
        || {
            let ws = node.json(&["workspace", "show", "webdev"]);
            (!ws["problem"].is_null()).then_some(ws)
        },
    );
    let p = &problem["problem"];
    assert!(
        p["file"]
            .as_str()
            .unwrap()
            .ends_with(".devcontainer/devcontainer.json"),
        "{p}"
    );
    assert_eq!(p["line"], 3, "{p}");
    assert_eq!(
        problem["manifest"]["environments"][0]["tools"][0]["name"],
        "Site"
    );
    let image =
        docker(&["images", "-q", "--filter", "reference=aienv-build/*"]).unwrap_or_default();
    for i in image.split_whitespace() {
        let _ = docker(&["rmi", "-f", i]);
    }
}
