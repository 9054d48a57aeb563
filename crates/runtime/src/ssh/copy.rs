//! Copying the workspace to the other machine: `tar` here piped through `ssh` into `tar` there,
//! over the copy of an earlier run (files deleted here stay there; nothing the run wrote there
//! is removed). What is rebuilt rather than copied is left out: aienv's own `.aienv/` (the venv
//! there is built there), `.git`, Python caches and Python environments (folders with a
//! `pyvenv.cfg` or `conda-meta`), whose binaries belong to this machine.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::connect;
use super::script::{quote, sh_c};
use super::target::SshTarget;
use crate::error::RunError;
use crate::logs;

/// Left out wherever they are.
const NAMES: &[&str] = &[
    ".aienv",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".ipynb_checkpoints",
];

/// How deep to look for Python environments (`ws/.venv`, `ws/project/.venv`, one more).
const ENV_DEPTH: usize = 3;

/// Copies `workspace` into `dir` there, `tar`'s and `ssh`'s messages going to `log`.
pub async fn workspace(
    target: &SshTarget,
    workspace: &Path,
    dir: &str,
    log: &Path,
) -> Result<(), RunError> {
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(workspace).args(["-cf", "-"]);
    tar.args(tar_excludes(workspace)).arg(".");
    let err = logs::open_append(log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
    tar.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .kill_on_drop(true);
    let mut packing = tar.spawn().map_err(|e| {
        RunError::Ssh(format!(
            "`tar` could not be started on this machine ({e}); it packs the workspace for \
             the copy: install it (e.g. `apt install tar`)"
        ))
    })?;
    let pipe: Stdio = packing
        .stdout
        .take()
        .ok_or_else(|| RunError::Ssh("tar's output could not be read".into()))?
        .try_into()
        .map_err(|e| RunError::io("cannot hand tar's output to ssh", e))?;
    // `-o`: the files belong to whoever logs in there, not to this machine's user ids.
    let remote = sh_c(&format!(
        "mkdir -p {d} && exec tar -C {d} -xof -",
        d = quote(dir)
    ));
    let mut ssh = connect::command(&connect::argv(target, &[], &remote));
    ssh.stdin(pipe);
    let code = connect::to_log(ssh, log).await?;
    let packed = packing
        .wait()
        .await
        .map_err(|e| RunError::io("cannot wait for tar", e))?;
    match (code, crate::process::exit_code(&packed)) {
        (Some(connect::SSH_FAILED), _) => Err(connect::lost(target, log)),
        (Some(0), Some(0 | 1)) => Ok(()),
        // GNU tar exits with 1 when a file changed while it was read: the copy is still whole.
        (Some(0), packed) => Err(RunError::Ssh(format!(
            "the workspace {} could not be packed for the copy to {target} (tar exited with \
             {}); the last lines of the log:\n{}",
            workspace.display(),
            packed.map_or("a signal".into(), |c| format!("code {c}")),
            logs::quote_tail(log, 8)
        ))),
        (code, _) => Err(RunError::Ssh(format!(
            "copying the workspace to {target} failed (tar there exited with {}): is there \
             room on its disk? The last lines of the log:\n{}",
            code.map_or("a signal".into(), |c| format!("code {c}")),
            logs::quote_tail(log, 8)
        ))),
    }
}

/// `--exclude` options for `tar -C workspace ... .`: the names anywhere, the Python
/// environments by their path (`./` anchors them: tar matches the member name as a whole).
fn tar_excludes(workspace: &Path) -> Vec<String> {
    let mut out: Vec<String> = NAMES.iter().map(|n| format!("--exclude={n}")).collect();
    out.extend(
        python_envs(workspace)
            .into_iter()
            .map(|rel| format!("--exclude=./{rel}")),
    );
    out
}

/// Folders under `workspace` that are Python environments, relative to it, `/`-separated.
fn python_envs(workspace: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![(workspace.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Not followed: a link's target is copied as a link, not walked.
            if !e.file_type().is_ok_and(|t| t.is_dir()) || NAMES.contains(&name.as_str()) {
                continue;
            }
            let path = e.path();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if path.join("pyvenv.cfg").is_file() || path.join("conda-meta").is_dir() {
                found.push(rel);
            } else if depth + 1 < ENV_DEPTH {
                todo.push((path, rel, depth + 1));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_environments_and_caches_stay_here() {
        let ws = tempfile::tempdir().unwrap();
        let mk = |p: &str| std::fs::create_dir_all(ws.path().join(p)).unwrap();
        let touch = |p: &str| std::fs::write(ws.path().join(p), "x").unwrap();
        mk(".venv/lib");
        touch(".venv/pyvenv.cfg");
        mk("trainer/env/conda-meta");
        mk("trainer/src/__pycache__");
        touch("trainer/src/train.py");
        mk("a/b/c/deep-venv");
        touch("a/b/c/deep-venv/pyvenv.cfg");
        assert_eq!(python_envs(ws.path()), [".venv", "trainer/env"]);

        // What tar really leaves out.
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(ws.path())
            .arg("-cf")
            .arg("-")
            .args(tar_excludes(ws.path()))
            .arg(".")
            .output()
            .unwrap();
        let list = std::process::Command::new("sh")
            .arg("-c")
            .arg("tar -tf -")
            .stdin({
                let f = ws.path().with_extension("tar");
                std::fs::write(&f, &out.stdout).unwrap();
                std::fs::File::open(&f).unwrap()
            })
            .output()
            .unwrap();
        let _ = std::fs::remove_file(ws.path().with_extension("tar"));
        let names = String::from_utf8_lossy(&list.stdout);
        assert!(names.contains("./trainer/src/train.py"), "{names}");
        for gone in [".venv", "conda-meta", "__pycache__"] {
            assert!(!names.contains(gone), "{gone} was packed: {names}");
        }
    }
}
