//! The node's own behaviour around its watcher: its writes do not echo, hand edits do arrive.

use std::time::Duration;

use aienv_core::config::{Config, Settings};
use aienv_core::event::ChangeCause;
use aienv_core::{EnvKind, Environment, Event};

use crate::{NewWorkspace, Node};

fn env(name: &str) -> Environment {
    serde_json::from_value(serde_json::json!({"name": name, "kind": "process"})).unwrap()
}

async fn next(rx: &mut tokio::sync::broadcast::Receiver<Event>, wait: Duration) -> Option<Event> {
    tokio::time::timeout(wait, rx.recv())
        .await
        .ok()
        .and_then(Result::ok)
}

/// A node on a fresh data dir with one new workspace "w" (and the temp dirs that hold them).
fn node_with_workspace() -> (Node, aienv_core::Workspace, [tempfile::TempDir; 2]) {
    let data = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let node = Node::start(Config::load(data.path(), Settings::default()).unwrap()).unwrap();
    let ws = node
        .create_workspace(NewWorkspace {
            path: root.path().join("w"),
            create: true,
            name: None,
            description: None,
            manifest: None,
        })
        .unwrap();
    (node, ws, [data, root])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_edits_are_announced_once_and_hand_edits_follow() {
    let (node, ws, _dirs) = node_with_workspace();
    let mut rx = node.subscribe();

    node.add_environment(&ws.id, env("a")).unwrap();
    match next(&mut rx, Duration::from_secs(2)).await {
        Some(Event::WorkspaceChanged {
            cause: ChangeCause::Api,
            workspace,
        }) => {
            assert_eq!(
                workspace.manifest.unwrap().environments[0].kind,
                EnvKind::Process
            );
        }
        other => panic!("expected one api change, got {other:?}"),
    }
    // The watcher sees our own write too; it must not be announced a second time.
    assert_eq!(
        next(&mut rx, Duration::from_millis(600)).await,
        None,
        "our own write echoed back"
    );

    let file = ws.path.join("aienv.toml");
    let text = std::fs::read_to_string(&file).unwrap() + "\n[environment.b]\nkind = \"process\"\n";
    std::fs::write(&file, text).unwrap();
    match next(&mut rx, Duration::from_secs(5)).await {
        Some(Event::WorkspaceChanged {
            cause: ChangeCause::File,
            workspace,
        }) => {
            assert_eq!(workspace.manifest.unwrap().environments.len(), 2);
        }
        other => panic!("expected the hand edit, got {other:?}"),
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_whose_folder_a_file_is_in_the_way_of_is_refused_and_nothing_is_written() {
    let (node, ws, _dirs) = node_with_workspace();
    std::fs::write(ws.path.join("notes.md"), "a file\n").unwrap();
    let file = ws.path.join("aienv.toml");
    let before = std::fs::read_to_string(&file).unwrap();
    for path in ["notes.md", "notes.md/deeper"] {
        let project: aienv_core::Project =
            serde_json::from_value(serde_json::json!({"name": "p", "path": path})).unwrap();
        match node.add_project(&ws.id, project) {
            Err(crate::NodeError::Exists(m)) => assert!(m.contains("not a folder"), "{m}"),
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            before,
            "{path}: nothing written"
        );
    }
    // A path that is free still works, folders on the way included.
    let project: aienv_core::Project =
        serde_json::from_value(serde_json::json!({"name": "p", "path": "src/p"})).unwrap();
    node.add_project(&ws.id, project).unwrap();
    assert!(ws.path.join("src/p").is_dir());
    node.shutdown().await;
}
