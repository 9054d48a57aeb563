//! One `ssh` to the other machine: its command line, running it to the end (its output captured,
//! or appended to the run's log), and what a failure to connect means, in words that say what
//! to do.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::target::SshTarget;
use crate::error::RunError;
use crate::logs;

/// ssh's own exit code when it could not connect or log in (the remote command's otherwise).
pub const SSH_FAILED: i32 = 255;

/// The system's ssh, with `extra` options, the run's options, the destination and the remote
/// command (one word: ssh hands it to the login shell as it is). `extra` comes first because
/// for an option given twice ssh keeps the first.
pub fn argv(target: &SshTarget, extra: &[String], remote: &str) -> Vec<String> {
    let mut a = vec!["ssh".to_string()];
    a.extend(extra.iter().cloned());
    a.extend(target.options());
    a.extend([
        "--".to_string(),
        target.destination.clone(),
        remote.to_string(),
    ]);
    a
}

/// A step's command: its own process group, killed when the start is given up half-way.
pub fn command(argv: &[String]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]).kill_on_drop(true);
    #[cfg(unix)]
    c.process_group(0);
    c
}

/// Runs `remote` there and returns what it printed. Failing to connect or log in is said as
/// [`failure`] says it; a remote command that fails is an error with its output.
pub async fn capture(
    target: &SshTarget,
    remote: &str,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<String, RunError> {
    let mut c = command(&argv(target, &[], remote));
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| not_installed(&e))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A remote that does not read all of it fails below with its own message.
        let _ = pipe.write_all(bytes).await;
    }
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| {
            RunError::Ssh(format!(
                "{target} did not answer over SSH within {} s; check that it is up and \
                 reachable (`{}`)",
                limit.as_secs(),
                target.command_line()
            ))
        })?
        .map_err(|e| RunError::io("cannot wait for ssh", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        code => Err(failure(target, code, &stderr)),
    }
}

/// Runs `c` (an ssh; the caller sets its stdin) with its output appended to `log`; its exit
/// code, `None` when a signal ended it.
pub async fn to_log(mut c: Command, log: &Path) -> Result<Option<i32>, RunError> {
    let out = logs::open_append(log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| RunError::io("cannot share the log file", e))?;
    c.stdout(out).stderr(err);
    let status = c.status().await.map_err(|e| not_installed(&e))?;
    Ok(crate::process::exit_code(&status))
}

/// Writes `[aienv] TEXT` to the run's log, so that the log says what each step is.
pub fn say(log: &Path, text: &str) {
    if let Ok(mut out) = logs::open_append(log) {
        let _ = writeln!(out, "[aienv] {text}");
    }
}

/// What an ssh that could not connect or log in means for the user. `stderr` is what ssh
/// printed (for a step whose output went to the log: the log's last lines).
pub fn failure(target: &SshTarget, code: Option<i32>, stderr: &str) -> RunError {
    let said = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("nothing")
        .to_string();
    let has = |s: &str| stderr.contains(s);
    let msg = if has("Permission denied") || has("Too many authentication failures") {
        format!(
            "ssh could not log in to {target}: add your key to the agent (ssh-add) or \
             ~/.ssh/config, and check that `{}` logs in without a password (ssh said: {said})",
            target.command_line()
        )
    } else if has("Host key verification failed") || has("HOST IDENTIFICATION HAS CHANGED") {
        format!(
            "ssh does not know the host key of {target} (or it changed): log in once with `{}` \
             to check and accept it, then start the run again",
            target.command_line()
        )
    } else if [
        "Could not resolve hostname",
        "Connection refused",
        "timed out",
        "No route to host",
        "Network is unreachable",
        "Connection reset",
        "Connection closed by",
    ]
    .iter()
    .any(|s| has(s))
    {
        format!(
            "cannot reach {target} over SSH ({said}): check the address and port, and that \
             sshd runs there"
        )
    } else if code == Some(SSH_FAILED) {
        format!("ssh to {target} failed: {said}")
    } else {
        format!(
            "a command on {target} failed ({}): {said}",
            code.map_or("killed by a signal".into(), |c| format!("exit code {c}"))
        )
    };
    RunError::Ssh(msg)
}

/// An ssh that failed to connect half-way through a run's steps (the probe had logged in): its
/// messages are the last lines of the log.
pub fn lost(target: &SshTarget, log: &Path) -> RunError {
    failure(
        target,
        Some(SSH_FAILED),
        &logs::tail(log, 4).unwrap_or_default().join("\n"),
    )
}

fn not_installed(e: &std::io::Error) -> RunError {
    RunError::Ssh(format!(
        "`ssh` could not be started on this machine ({e}): install OpenSSH's client (e.g. \
         `apt install openssh-client`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget::parse("ann@gpu-box:2222").unwrap()
    }

    #[test]
    fn the_destination_comes_after_the_options_and_a_double_dash() {
        let a = argv(&target(), &["-tt".into()], "sh -c 'true'");
        let dash = a.iter().position(|x| x == "--").unwrap();
        assert_eq!(&a[dash + 1..], ["ann@gpu-box", "sh -c 'true'"]);
        assert!(a[..dash].contains(&"-tt".to_string()));
        assert!(a[..dash].contains(&"BatchMode=yes".to_string()));
    }

    #[test]
    fn each_way_of_failing_says_what_to_do() {
        let t = target();
        let cases = [
            (
                "ann@gpu-box: Permission denied (publickey).",
                "ssh could not log in to ann@gpu-box:2222: add your key to the agent (ssh-add)",
            ),
            (
                "Host key verification failed.",
                "log in once with `ssh -p 2222 ann@gpu-box`",
            ),
            (
                "ssh: connect to host gpu-box port 2222: Connection refused",
                "cannot reach ann@gpu-box:2222 over SSH (ssh: connect to host gpu-box port \
                 2222: Connection refused)",
            ),
            (
                "ssh: Could not resolve hostname gpu-box: Name",
                "check the address and port",
            ),
            (
                "something new",
                "ssh to ann@gpu-box:2222 failed: something new",
            ),
        ];
        for (stderr, want) in cases {
            let e = failure(&t, Some(SSH_FAILED), stderr).to_string();
            assert!(e.contains(want), "{stderr:?}: {e}");
        }
        let e = failure(&t, Some(2), "tar: oops").to_string();
        assert!(e.contains("failed (exit code 2): tar: oops"), "{e}");
    }
}
