//! An environment's `setup` commands: run in order each time it starts, once its Python (process)
//! or container is up and before its command and tools start; the first that fails ends the
//! start, with the command, its exit code and the log's last lines in the message.
//!
//! Here are the process environments' (`sh -c` in the workspace); a container's run inside the
//! container ([`crate::container`]) and fail with the same message ([`failed`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aienv_core::Environment;

use crate::error::RunError;
use crate::logs;
use crate::process;

/// How many lines of the log a failure quotes.
const QUOTED_LINES: usize = 12;

/// Runs the setup commands one after the other in `cwd`, with `vars` on top of the node's
/// environment, their output appended to `log`.
pub async fn run_local(
    env: &Environment,
    cwd: &Path,
    vars: &BTreeMap<String, String>,
    log: &Path,
) -> Result<(), RunError> {
    for (i, cmd) in env.setup.iter().enumerate() {
        announce(log, cmd)?;
        let code = run_one(cmd, cwd, vars, log).await?;
        if code != Some(0) {
            return Err(failed(&env.name, i, cmd, code, log));
        }
    }
    Ok(())
}

/// Writes the `[aienv] setup: CMD` line that precedes a command's output in the log.
pub fn announce(log: &Path, cmd: &str) -> Result<(), RunError> {
    let mut out = logs::open_append(log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
    let _ = writeln!(out, "[aienv] setup: {cmd}");
    Ok(())
}

/// One command to its end. Its exit code; `None` when a signal ended it.
async fn run_one(
    cmd: &str,
    cwd: &Path,
    vars: &BTreeMap<String, String>,
    log: &Path,
) -> Result<Option<i32>, RunError> {
    let out = logs::open_append(log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| RunError::io("cannot share the log file", e))?;
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .envs(vars)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        // A start given up half-way (the node stopped waiting) must not leave it running.
        .kill_on_drop(true);
    #[cfg(unix)]
    c.process_group(0);
    let mut child = c.spawn().map_err(|e| {
        RunError::Setup(format!(
            "the setup command {cmd:?} could not run: `sh` did not start ({e})"
        ))
    })?;
    let pgid = child.id();
    let status = child
        .wait()
        .await
        .map_err(|e| RunError::io(format!("waiting for the setup command {cmd:?}"), e))?;
    // What it left in the background is in no run's process group, so nothing would ever stop
    // it: end it now. (Something meant to keep running belongs in `command` or a tool.)
    if let Some(pgid) = pgid.filter(|&p| process::group_alive(p)) {
        process::stop_group(pgid, Duration::from_secs(2)).await;
    }
    Ok(process::exit_code(&status))
}

/// The error for a setup command that failed: which, how, and what the log says last.
pub fn failed(env: &str, index: usize, cmd: &str, code: Option<i32>, log: &Path) -> RunError {
    let how = match code {
        Some(127) => "exited with code 127 (command not found)".to_string(),
        Some(c) => format!("exited with code {c}"),
        None => "was killed by a signal".to_string(),
    };
    RunError::Setup(format!(
        "environment {env:?} did not start: setup command {} ({cmd:?}) {how}. The last lines \
         of its log:\n{}\nFix the command (`setup` in aienv.toml) and start it again",
        index + 1,
        logs::quote_tail(log, QUOTED_LINES)
    ))
}

/// The error for a setup command that could not even run (the container had exited).
pub fn not_run(env: &str, index: usize, cmd: &str, why: &str, log: &Path) -> RunError {
    RunError::Setup(format!(
        "environment {env:?} did not start: setup command {} ({cmd:?}) could not run: {why}. \
         The last lines of its log:\n{}",
        index + 1,
        logs::quote_tail(log, QUOTED_LINES)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aienv_core::EnvKind;

    fn env(setup: &[&str]) -> Environment {
        Environment {
            setup: setup.iter().map(|s| s.to_string()).collect(),
            ..Environment::new("train", EnvKind::Process)
        }
    }

    #[tokio::test]
    async fn commands_run_in_order_with_the_vars_in_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        let log = ws.path().join("run.log");
        let vars = BTreeMap::from([("GREETING".to_string(), "hi".to_string())]);
        let e = env(&[
            "echo one > order",
            "echo \"$GREETING\" >> order; echo to-log",
        ]);
        run_local(&e, ws.path(), &vars, &log).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(ws.path().join("order")).unwrap(),
            "one\nhi\n"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("[aienv] setup: echo one > order\n"), "{text}");
        assert!(text.contains("to-log"), "{text}");
    }

    #[tokio::test]
    async fn the_first_failure_stops_and_says_which_how_and_what_it_printed() {
        let ws = tempfile::tempdir().unwrap();
        let log = ws.path().join("run.log");
        let e = env(&["echo fine", "echo 'disk full' >&2; exit 3", "touch never"]);
        let err = run_local(&e, ws.path(), &BTreeMap::new(), &log)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "setup_failed");
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "environment \"train\" did not start: setup command 2 (\"echo 'disk full' >&2; \
                 exit 3\") exited with code 3. The last lines of its log:\n"
            ),
            "{msg}"
        );
        assert!(msg.contains("  disk full\n"), "{msg}");
        assert!(msg.ends_with("Fix the command (`setup` in aienv.toml) and start it again"));
        assert!(!ws.path().join("never").exists());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_missing_program_says_so_and_background_leftovers_are_ended() {
        let ws = tempfile::tempdir().unwrap();
        let log = ws.path().join("run.log");
        let e = env(&["sleep 300 & echo $! > bg"]);
        run_local(&e, ws.path(), &BTreeMap::new(), &log)
            .await
            .unwrap();
        let pid = std::fs::read_to_string(ws.path().join("bg")).unwrap();
        let pid: u32 = pid.trim().parse().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "the background sleep {pid} outlived its setup command"
        );
        let e = env(&["no-such-setup-tool --init"]);
        let msg = run_local(&e, ws.path(), &BTreeMap::new(), &log)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("exited with code 127 (command not found)"),
            "{msg}"
        );
    }
}
