//! A process environment's `setup` commands, through the same start path the node uses (plan,
//! then `Backends::start`): they run in order, in the workspace, with the run's variables, before
//! the command; a failing one ends the start before the command runs.

use std::path::Path;
use std::time::Duration;

use aienv_core::{EnvKind, Environment};

mod common;

/// Starts the environment as the node would, under one run id.
async fn start(
    ws: &Path,
    run_dir: &Path,
    env: &Environment,
) -> Result<aienv_runtime::backend::Running, aienv_runtime::RunError> {
    common::start(ws, run_dir, "setup-test", env).await
}

fn env(setup: &[&str], command: &str) -> Environment {
    Environment {
        setup: setup.iter().map(|s| s.to_string()).collect(),
        command: Some(command.into()),
        ..Environment::new("prep", EnvKind::Process)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn setup_commands_run_in_order_before_the_command() {
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let e = env(
        &[
            "echo one >> order",
            "echo two >> order; echo \"$AIENV_RUN_ID\" > run-id",
        ],
        "echo main >> order",
    );
    let run = start(ws.path(), runs.path(), &e).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), run.wait_gone())
        .await
        .expect("the command ends on its own");
    assert_eq!(run.exit_code(), Some(0));
    assert_eq!(read(&ws.path().join("order")), "one\ntwo\nmain\n");
    assert_eq!(read(&ws.path().join("run-id")), "setup-test\n");
    let log = read(&runs.path().join("run.log"));
    assert!(log.contains("[aienv] setup: echo one >> order\n"), "{log}");
}

#[tokio::test]
async fn a_failing_setup_command_stops_the_start() {
    let ws = tempfile::tempdir().unwrap();
    let runs = tempfile::tempdir().unwrap();
    let e = env(
        &[
            "echo first >> order",
            "echo 'cannot reach the mirror' >&2; exit 3",
            "echo never >> order",
        ],
        "echo main >> order",
    );
    let err = start(ws.path(), runs.path(), &e).await.unwrap_err();
    assert_eq!(err.code(), "setup_failed");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "setup command 2 (\"echo 'cannot reach the mirror' >&2; exit 3\") exited with code 3"
        ),
        "{msg}"
    );
    assert!(msg.contains("cannot reach the mirror"), "{msg}");
    // Had the command been started, it would have written by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read(&ws.path().join("order")), "first\n");
}
