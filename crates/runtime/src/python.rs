//! Python set-up for process environments: a virtual environment built from the manifest's
//! requirements or lock file, with `uv` when it is installed (many times faster) and
//! `python -m venv` + pip otherwise.
//!
//! The venv lives in the workspace at `.aienv/venv/ENV` (never shared: `.aienv/` is excluded),
//! and is rebuilt only when the requirements file changed since it was built: a copy of the file
//! it was built from is kept beside it and compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aienv_core::{Environment, PythonSetup};

use crate::error::RunError;
use crate::logs;
use crate::process::{Cmd, Group};

const STAMP: &str = ".aienv-built-from";

/// Where an environment's venv lives.
pub fn venv_dir(workspace: &Path, env: &str) -> PathBuf {
    workspace.join(".aienv").join("venv").join(env)
}

/// The `uv` binary, if installed (on PATH, or where its installer puts it).
pub fn find_uv() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIENV_UV") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(
            home.iter()
                .flat_map(|h| [h.join(".local/bin"), h.join(".cargo/bin")]),
        )
        .map(|d| d.join("uv"))
        .find(|p| p.is_file())
}

/// Makes sure the environment's Python is set up, writing what the tools print to `log`.
/// Returns the variables that put the venv first (`VIRTUAL_ENV`, `PATH`), or none when the
/// environment has no `python` table.
pub async fn ensure(
    workspace: &Path,
    env: &Environment,
    log: &Path,
) -> Result<BTreeMap<String, String>, RunError> {
    let Some(py) = &env.python else {
        return Ok(BTreeMap::new());
    };
    let venv = venv_dir(workspace, &env.name);
    let source = py.lock.as_ref().or(py.requirements.as_ref());
    let wanted = match source {
        Some(file) => {
            let path = workspace.join(file);
            std::fs::read(&path).map_err(|e| {
                RunError::Setup(format!(
                    "the Python {} file {} cannot be read ({e}); fix `python` in aienv.toml",
                    if py.lock.is_some() {
                        "lock"
                    } else {
                        "requirements"
                    },
                    path.display()
                ))
            })?
        }
        None => Vec::new(),
    };
    let mut stamp = format!("{:?}\n", py.version).into_bytes();
    stamp.extend_from_slice(&wanted);
    let python = venv.join("bin").join("python");
    if python.exists() && std::fs::read(venv.join(STAMP)).is_ok_and(|s| s == stamp) {
        return Ok(activate(&venv));
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| RunError::io(format!("cannot replace {}", venv.display()), e))?;
    }
    std::fs::create_dir_all(venv.parent().unwrap_or(workspace))
        .map_err(|e| RunError::io("cannot create .aienv/venv", e))?;
    for (what, cmd, extra) in steps(workspace, py, &venv) {
        let g = Group::spawn(&[(what.clone(), cmd)], workspace, &extra, log)?;
        g.wait_gone().await;
        if g.exit_code() != Some(0) {
            let tail = logs::tail(log, 8).unwrap_or_default().join("\n");
            return Err(RunError::Setup(format!(
                "setting up Python failed: {what} exited with {}; its last lines:\n{tail}",
                g.exit_code()
                    .map_or("a signal".into(), |c| format!("code {c}"))
            )));
        }
    }
    std::fs::write(venv.join(STAMP), &stamp)
        .map_err(|e| RunError::io("cannot record the venv's source", e))?;
    Ok(activate(&venv))
}

/// The commands that build the venv: (label, command, extra variables).
fn steps(
    workspace: &Path,
    py: &PythonSetup,
    venv: &Path,
) -> Vec<(String, Cmd, BTreeMap<String, String>)> {
    let s = |p: &Path| p.display().to_string();
    let no_vars = BTreeMap::new;
    if let Some(uv) = find_uv() {
        let uv = s(&uv);
        if let Some(lock) = &py.lock {
            let project = workspace.join(lock);
            let dir = project.parent().unwrap_or(workspace);
            let mut vars = BTreeMap::new();
            vars.insert("UV_PROJECT_ENVIRONMENT".to_string(), s(venv));
            return vec![(
                "uv sync".into(),
                Cmd::Argv(vec![
                    uv,
                    "sync".into(),
                    "--frozen".into(),
                    "--project".into(),
                    s(dir),
                ]),
                vars,
            )];
        }
        let mut create = vec![uv.clone(), "venv".into(), "--quiet".into()];
        if let Some(v) = &py.version {
            create.extend(["--python".into(), v.clone()]);
        }
        create.push(s(venv));
        let mut out = vec![("uv venv".into(), Cmd::Argv(create), no_vars())];
        if let Some(req) = &py.requirements {
            out.push((
                "uv pip install".into(),
                Cmd::Argv(vec![
                    uv,
                    "pip".into(),
                    "install".into(),
                    "--python".into(),
                    s(&venv.join("bin/python")),
                    "-r".into(),
                    s(&workspace.join(req)),
                ]),
                no_vars(),
            ));
        }
        return out;
    }
    let interpreter = py
        .version
        .as_ref()
        .map(|v| format!("python{v}"))
        .filter(|p| which(p))
        .unwrap_or_else(|| "python3".into());
    let mut out = vec![(
        format!("{interpreter} -m venv"),
        Cmd::Argv(vec![interpreter, "-m".into(), "venv".into(), s(venv)]),
        no_vars(),
    )];
    if let Some(req) = py.requirements.as_ref().or(py.lock.as_ref()) {
        out.push((
            "pip install".into(),
            Cmd::Argv(vec![
                s(&venv.join("bin/pip")),
                "install".into(),
                "--quiet".into(),
                "-r".into(),
                s(&workspace.join(req)),
            ]),
            no_vars(),
        ));
    }
    out
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn activate(venv: &Path) -> BTreeMap<String, String> {
    let bin = venv.join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    BTreeMap::from([
        ("VIRTUAL_ENV".to_string(), venv.display().to_string()),
        ("PATH".to_string(), joined),
    ])
}
