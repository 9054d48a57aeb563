//! A pull the node was applying when it died is finished when the node starts again: the clone
//! is never left half old, half new.

use std::path::Path;

use aienv_core::clone::{CloneJob, CloneProgress, CloneState};
use aienv_core::config::{Config, Settings};
use aienv_sharing::index::{FileManifest, HashCache, index};
use aienv_sharing::transfer::client::staging_for;

use super::{APPLYING, JOBS_FILE, ORIGIN_FILE, Origin, write_origin};
use crate::Node;

fn list(root: &Path) -> FileManifest {
    let filter = aienv_sharing::Filter::new(root, &aienv_core::Sharing::default()).unwrap();
    index(root, "ws", &filter, &HashCache::default()).unwrap()
}

fn origin(manifest: FileManifest) -> Origin {
    Origin {
        peer_id: "p".into(),
        peer_name: "gpu-box".into(),
        workspace_id: "ws".into(),
        workspace_name: "vision".into(),
        manifest,
    }
}

fn cp(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_stopped_while_applying_is_finished_when_the_node_starts() {
    let dir = tempfile::tempdir().unwrap();
    // The clone as its last pull left it.
    let target = dir.path().join("clone");
    std::fs::create_dir_all(target.join("code")).unwrap();
    std::fs::write(target.join("code/train.py"), "v1\n").unwrap();
    std::fs::write(target.join("code/moved.py"), "v1\n").unwrap();
    std::fs::write(target.join("README.md"), "same\n").unwrap();
    let before = list(&target);
    std::fs::create_dir_all(target.join(".aienv")).unwrap();
    write_origin(&target.join(ORIGIN_FILE), &origin(before)).unwrap();

    // The source since: both files changed.
    let source = dir.path().join("source");
    cp(&target, &source);
    std::fs::write(source.join("code/train.py"), "v2\n").unwrap();
    std::fs::write(source.join("code/moved.py"), "v2\n").unwrap();
    let after = list(&source);

    // The pull was verified and had moved one file when the node died.
    let staging = staging_for(&target);
    std::fs::create_dir_all(staging.join("code")).unwrap();
    std::fs::create_dir_all(staging.join(".aienv")).unwrap();
    cp(
        &source.join("code/train.py"),
        &staging.join("code/train.py"),
    );
    cp(&source.join("code/moved.py"), &target.join("code/moved.py"));
    write_origin(&staging.join(ORIGIN_FILE), &origin(after.clone())).unwrap();
    std::fs::write(staging.join(APPLYING), b"").unwrap();
    let data = tempfile::tempdir().unwrap();
    let job = CloneJob {
        id: "j1".into(),
        peer_id: "p".into(),
        peer_name: "gpu-box".into(),
        workspace_id: "ws".into(),
        workspace_name: "vision".into(),
        target: target.clone(),
        pull: true,
        state: CloneState::Running,
        progress: CloneProgress::default(),
        error: None,
        result_workspace_id: None,
        notes: Vec::new(),
        started_ms: 1,
        finished_ms: None,
    };
    std::fs::write(
        data.path().join(JOBS_FILE),
        serde_json::to_vec(&[job]).unwrap(),
    )
    .unwrap();

    let node = Node::start(Config::load(data.path(), Settings::default()).unwrap()).unwrap();

    let job = node.clone_job("j1").unwrap();
    assert_eq!(job.state, CloneState::Done, "{job:?}");
    assert!(
        job.notes
            .iter()
            .any(|n| n.contains("finished when the node started again")),
        "{job:?}"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("code/train.py")).unwrap(),
        "v2\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("code/moved.py")).unwrap(),
        "v2\n"
    );
    assert!(!staging.exists(), "staging is gone");
    assert!(
        job.notes.len() == 1,
        "a file the first attempt moved is not an edit made here: {:?}",
        job.notes
    );
    let recorded: Origin =
        serde_json::from_slice(&std::fs::read(target.join(ORIGIN_FILE)).unwrap()).unwrap();
    assert_eq!(
        recorded.manifest.revision, after.revision,
        "the clone records the new list"
    );
}
