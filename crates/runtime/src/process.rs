//! The process backend's mechanics: a run's commands in one process group of their own, writing
//! to the run's log, stopped as a whole.
//!
//! The group outlives the node on purpose (closing the window or restarting the node must not
//! kill a run): the children get no signal from our terminal, hold their own log file, and are
//! found again after a restart by their process group id. Stop is SIGTERM to the group, then
//! SIGKILL after a grace period, then a check that nothing of the group is left.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::RunError;
use crate::logs;

/// One thing to start: a shell command line (`sh -c`) or a program with its arguments.
#[derive(Debug, Clone)]
pub enum Cmd {
    Shell(String),
    Argv(Vec<String>),
}

/// How a process of the group ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub label: String,
    pub code: Option<i32>,
}

/// A running process group: its id, how its direct children ended so far, and whether the
/// whole group is gone.
#[derive(Debug, Clone)]
pub struct Group {
    pub pgid: u32,
    exits: Arc<Mutex<Vec<Exit>>>,
    gone: watch::Receiver<bool>,
}

impl Group {
    /// Starts `cmds` (label, command) in a new process group, in `cwd`, with `vars` added to the
    /// node's environment, stdout and stderr appended to `log`.
    pub fn spawn(
        cmds: &[(String, Cmd)],
        cwd: &Path,
        vars: &BTreeMap<String, String>,
        log: &Path,
    ) -> Result<Group, RunError> {
        let mut pgid: Option<u32> = None;
        let mut children = Vec::new();
        for (label, cmd) in cmds {
            let mut out = logs::open_append(log)
                .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
            let shown = match cmd {
                Cmd::Shell(s) => s.clone(),
                Cmd::Argv(a) => a.join(" "),
            };
            let _ = writeln!(out, "[aienv] starting {label}: {shown}");
            let err = out
                .try_clone()
                .map_err(|e| RunError::io("cannot share the log file", e))?;
            let mut c = match cmd {
                Cmd::Shell(s) => {
                    let mut c = tokio::process::Command::new("sh");
                    c.arg("-c").arg(s);
                    c
                }
                Cmd::Argv(a) => {
                    let mut c = tokio::process::Command::new(&a[0]);
                    c.args(&a[1..]);
                    c
                }
            };
            c.current_dir(cwd)
                .envs(vars)
                .stdin(std::process::Stdio::null())
                .stdout(out)
                .stderr(err)
                .kill_on_drop(false);
            #[cfg(unix)]
            c.process_group(pgid.unwrap_or(0) as i32);
            let child = c.spawn().map_err(|e| {
                if let Some(p) = pgid {
                    kill_group(p, true);
                }
                RunError::Start(format!("{label} could not be started ({shown}): {e}"))
            })?;
            let pid = child.id().unwrap_or(0);
            pgid.get_or_insert(pid);
            children.push((label.clone(), child));
        }
        let pgid = pgid.ok_or_else(|| RunError::Start("nothing to start".into()))?;
        let exits = Arc::new(Mutex::new(Vec::new()));
        let (tx, gone) = watch::channel(false);
        let seen = exits.clone();
        tokio::spawn(async move {
            let waits = children.into_iter().map(|(label, mut child)| {
                let seen = seen.clone();
                async move {
                    let code = child.wait().await.ok().and_then(|s| exit_code(&s));
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Exit { label, code });
                }
            });
            futures_util::future::join_all(waits).await;
            wait_group_gone(pgid, None).await;
            let _ = tx.send(true);
        });
        Ok(Group { pgid, exits, gone })
    }

    /// A group started by an earlier life of the node: only its id is known.
    pub fn adopt(pgid: u32) -> Group {
        let (tx, gone) = watch::channel(!group_alive(pgid));
        tokio::spawn(async move {
            wait_group_gone(pgid, None).await;
            let _ = tx.send(true);
        });
        Group {
            pgid,
            exits: Arc::new(Mutex::new(Vec::new())),
            gone,
        }
    }

    pub fn exits(&self) -> Vec<Exit> {
        self.exits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why the run cannot become ready any more: a process failed, or all are gone.
    pub fn failure(&self) -> Option<String> {
        let exits = self.exits();
        if let Some(e) = exits.iter().find(|e| e.code != Some(0)) {
            return Some(match e.code {
                Some(127) => format!("{} failed: command not found (exit 127)", e.label),
                Some(c) => format!("{} exited with code {c}", e.label),
                None => format!("{} was killed by a signal", e.label),
            });
        }
        self.is_gone()
            .then(|| "every process of the run has exited".into())
    }

    pub fn is_gone(&self) -> bool {
        *self.gone.borrow()
    }

    /// Waits until no process of the group is left.
    pub async fn wait_gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// The exit code to report: the first failure's, else 0 when all ended cleanly.
    pub fn exit_code(&self) -> Option<i32> {
        let exits = self.exits();
        exits
            .iter()
            .find(|e| e.code != Some(0))
            .map_or(if exits.is_empty() { None } else { Some(0) }, |e| e.code)
    }
}

/// A process's exit code, or 128 + the signal that ended it (as a shell reports it).
#[cfg(unix)]
pub(crate) fn exit_code(s: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    s.code().or(s.signal().map(|sig| 128 + sig))
}

#[cfg(not(unix))]
pub(crate) fn exit_code(s: &std::process::ExitStatus) -> Option<i32> {
    s.code()
}

/// Stops a group: TERM, up to `grace` for it to end, then KILL. Returns true when it needed KILL.
pub async fn stop_group(pgid: u32, grace: Duration) -> bool {
    kill_group(pgid, false);
    if wait_group_gone(pgid, Some(grace)).await {
        return false;
    }
    kill_group(pgid, true);
    wait_group_gone(pgid, Some(Duration::from_secs(5))).await;
    true
}

/// Polls until the group is empty (or `limit` passes). Returns whether it is empty.
async fn wait_group_gone(pgid: u32, limit: Option<Duration>) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if limit.is_some_and(|l| start.elapsed() >= l) {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

#[cfg(unix)]
fn kill_group(pgid: u32, hard: bool) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(pid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let sig = if hard { Signal::KILL } else { Signal::TERM };
    let _ = kill_process_group(pid, sig);
}

#[cfg(not(unix))]
fn kill_group(_pgid: u32, _hard: bool) {}

/// Whether any live (not zombie) process is in the group. On Linux this reads `/proc`, because
/// a zombie left for a parent that does not reap would otherwise count as alive forever.
pub fn group_alive(pgid: u32) -> bool {
    !group_members(pgid).is_empty()
}

/// The live processes of a group.
#[cfg(target_os = "linux")]
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: u32 = name.to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let mut f = stat[stat.rfind(')')? + 1..].split_whitespace();
        let state = f.next()?;
        let pgrp: u32 = f.nth(1)?.parse().ok()?;
        (pgrp == pgid && state != "Z" && state != "X").then_some(pid)
    })
    .collect()
}

#[cfg(all(unix, not(target_os = "linux")))]
pub fn group_members(pgid: u32) -> Vec<u32> {
    use rustix::process::{Pid, test_kill_process_group};
    match i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        Some(pid) if test_kill_process_group(pid).is_ok() => vec![pgid],
        _ => Vec::new(),
    }
}

#[cfg(not(unix))]
pub fn group_members(_pgid: u32) -> Vec<u32> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kills the group when a test fails half-way, so no sleeper outlives it.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            kill_group(self.0, true);
        }
    }

    #[tokio::test]
    async fn a_tree_of_fifty_stops_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        // The marker is computed so that the log's "starting" header does not contain it.
        let cmd = "for i in $(seq 50); do sleep 300 & done; echo ready-$((20+22)); wait";
        let g = Group::spawn(
            &[("tree".into(), Cmd::Shell(cmd.into()))],
            dir.path(),
            &BTreeMap::new(),
            &log,
        )
        .unwrap();
        let _cleanup = KillOnDrop(g.pgid);
        crate::ready::wait(
            &crate::ready::Check::Log("ready-42".into()),
            log.clone(),
            Duration::from_secs(10),
            || None,
        )
        .await
        .unwrap();
        assert!(group_members(g.pgid).len() >= 51);
        assert!(
            !stop_group(g.pgid, Duration::from_secs(5)).await,
            "TERM was enough"
        );
        assert!(group_members(g.pgid).is_empty());
        tokio::time::timeout(Duration::from_secs(5), g.wait_gone())
            .await
            .unwrap();
        assert_eq!(g.exit_code(), Some(128 + 15));
    }

    #[tokio::test]
    async fn a_missing_command_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let g = Group::spawn(
            &[(
                "main".into(),
                Cmd::Shell("no-such-command-xyz --flag".into()),
            )],
            dir.path(),
            &BTreeMap::new(),
            &log,
        )
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), g.wait_gone())
            .await
            .unwrap();
        assert_eq!(
            g.failure().unwrap(),
            "main failed: command not found (exit 127)"
        );
        let e = Group::spawn(
            &[("vm".into(), Cmd::Argv(vec!["/no/such/qemu".into()]))],
            dir.path(),
            &BTreeMap::new(),
            &log,
        )
        .unwrap_err();
        assert!(e.to_string().contains("vm could not be started"), "{e}");
    }
}
