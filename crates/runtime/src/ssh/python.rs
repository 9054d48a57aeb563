//! An SSH run's Python: a venv in the workspace copy on the other machine
//! (`.aienv/venv/ENV`, as here), made with `uv` when it is installed there and with `python3 -m
//! venv` + pip otherwise, and made again only when what it is built from changed (a stamp
//! beside it, as here).
//!
//! What is supported over SSH: `requirements` (a requirements file, or a `pyproject.toml` with
//! its `extras` when uv is there) and `lock` (a hashed requirements lock, or `uv.lock` with uv).
//! Conda, pixi and GPU variants are refused before anything is copied.

use std::path::Path;

use aienv_core::{Environment, PythonSetup};

use super::connect;
use super::probe::{Found, fnv1a};
use super::script::{quote, sh_c};
use super::target::SshTarget;
use crate::error::RunError;
use crate::logs;
use crate::python::venv::is_uv_lock;

/// The venv's folder in the copy, relative to it; `None` without a `python` table.
pub fn venv(env: &Environment) -> Option<String> {
    env.python
        .as_ref()
        .map(|_| format!(".aienv/venv/{}", env.name))
}

/// Says before anything is copied what the SSH backend cannot build.
pub fn check(env: &Environment) -> Result<(), RunError> {
    let Some(py) = &env.python else {
        return Ok(());
    };
    let what = if py.conda.is_some() {
        Some("a conda environment (`python.conda`)")
    } else if py.pixi.is_some() {
        Some("a pixi environment (`python.pixi`)")
    } else if !py.variants.is_empty() {
        Some("GPU variants (`python.variant`)")
    } else if py.requirements.is_none() && py.lock.is_none() {
        Some("a `python` table without `requirements` or `lock`")
    } else {
        None
    };
    match what {
        Some(what) => Err(RunError::Setup(format!(
            "environment {:?} uses {what}, which runs over SSH do not set up yet; use \
             `requirements` (or a `lock`), or start it on a machine that runs aienv",
            env.name
        ))),
        None => Ok(()),
    }
}

/// Builds the venv there unless its stamp says it is up to date; its output goes to `log`.
pub async fn ensure(
    target: &SshTarget,
    env: &Environment,
    workspace: &Path,
    found: &Found,
    log: &Path,
) -> Result<(), RunError> {
    let (Some(py), Some(venv)) = (&env.python, venv(env)) else {
        return Ok(());
    };
    let Some(file) = py.lock.as_ref().or(py.requirements.as_ref()) else {
        return Ok(());
    };
    let needs_uv = is_uv_lock(file) || is_pyproject(file);
    if found.uv.is_none() && (needs_uv || !found.python3) {
        return Err(RunError::Setup(format!(
            "{target} has {}: install {} there (e.g. `{}`) and start the run again",
            if needs_uv {
                format!("no uv, which installing {file} needs")
            } else {
                "no python3 (and no uv)".into()
            },
            if needs_uv { "uv" } else { "Python 3" },
            if needs_uv {
                "curl -LsSf https://astral.sh/uv/install.sh | sh"
            } else {
                "apt install python3 python3-venv"
            }
        )));
    }
    let contents = std::fs::read(workspace.join(file)).map_err(|e| {
        RunError::Setup(format!(
            "the Python requirements file {} cannot be read ({e}); fix `python` in aienv.toml",
            workspace.join(file).display()
        ))
    })?;
    let stamp = format!(
        "{:016x}",
        fnv1a(
            format!(
                "{:?}\n{:?}\n{:?}\n",
                py.version,
                py.extras,
                found.uv.is_some()
            )
            .as_bytes()
        ) ^ fnv1a(&contents)
    );
    let script = build_script(&found.dir, &venv, py, file, found.uv.as_deref(), &stamp);
    let mut c = connect::command(&connect::argv(target, &[], &sh_c(&script)));
    c.stdin(std::process::Stdio::null());
    match connect::to_log(c, log).await? {
        Some(0) => Ok(()),
        Some(connect::SSH_FAILED) => Err(connect::lost(target, log)),
        code => Err(RunError::Setup(format!(
            "setting up Python on {target} failed ({}); its last lines:\n{}",
            code.map_or("killed by a signal".into(), |c| format!("exit code {c}")),
            logs::quote_tail(log, 10)
        ))),
    }
}

fn is_pyproject(file: &str) -> bool {
    file == "pyproject.toml" || file.ends_with("/pyproject.toml")
}

/// The build: nothing when the stamp matches, else a fresh venv and the packages in it.
fn build_script(
    dir: &str,
    venv: &str,
    py: &PythonSetup,
    file: &str,
    uv: Option<&str>,
    stamp: &str,
) -> String {
    let extras: String = py
        .extras
        .iter()
        .map(|e| format!(" --extra {}", quote(e)))
        .collect();
    let install = match uv {
        Some(uv) if is_uv_lock(file) => {
            let project = Path::new(file)
                .parent()
                .map(|p| p.display().to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| ".".into());
            format!(
                "UV_PROJECT_ENVIRONMENT=\"$PWD/$V\" {uv} sync --frozen --project {}{extras}",
                quote(&project),
                uv = quote(uv)
            )
        }
        Some(uv) => {
            let version = py
                .version
                .as_ref()
                .map(|v| format!(" --python {}", quote(v)))
                .unwrap_or_default();
            format!(
                "{uv} venv --quiet{version} \"$V\" && {uv} pip install --python \"$V/bin/python\" \
                 -r {}{extras}",
                quote(file),
                uv = quote(uv)
            )
        }
        None => {
            // The version asked for, when that interpreter is there; python3 otherwise.
            let pick = py
                .version
                .as_ref()
                .map(|v| {
                    format!(
                        "command -v {p} >/dev/null 2>&1 && PY={p}\n",
                        p = quote(&format!("python{v}"))
                    )
                })
                .unwrap_or_default();
            format!(
                "PY=python3\n{pick}\"$PY\" -m venv \"$V\" || {{ echo \"[aienv] $PY -m venv failed: \
                 on Debian and Ubuntu install python3-venv\"; exit 1; }}\n\
                 \"$V/bin/python\" -m pip install --disable-pip-version-check -r {}",
                quote(file)
            )
        }
    };
    format!(
        "cd {dir} || exit 1\n\
         V={venv}\n\
         if [ -x \"$V/bin/python\" ] && [ \"$(cat \"$V/.aienv-built-from\" 2>/dev/null)\" = {stamp} ]; then\n\
           echo \"[aienv] the Python environment is up to date\"; exit 0\n\
         fi\n\
         rm -rf \"$V\"\n\
         mkdir -p \"$(dirname \"$V\")\"\n\
         {install} || exit $?\n\
         echo {stamp} > \"$V/.aienv-built-from\"\n",
        dir = quote(dir),
        venv = quote(venv),
        stamp = quote(stamp),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(toml: &str) -> Environment {
        let text =
            format!("[workspace]\nname = \"w\"\n[environment.e]\nkind = \"process\"\n{toml}");
        let m = aienv_core::manifest::parse(&text, Path::new("aienv.toml")).unwrap();
        m.environment("e").unwrap().clone()
    }

    #[test]
    fn only_what_can_be_built_there_is_accepted() {
        assert!(check(&env("")).is_ok());
        assert!(check(&env("python = { requirements = \"r.txt\" }")).is_ok());
        let e = check(&env("python = { conda = \"environment.yml\" }")).unwrap_err();
        assert!(
            e.to_string().contains("runs over SSH do not set up yet"),
            "{e}"
        );
    }

    /// The pip path, run here: it builds once, then says it is up to date.
    #[tokio::test]
    async fn the_venv_is_built_once_and_then_reused() {
        if std::process::Command::new("python3")
            .args(["-m", "venv", "--help"])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("SKIPPED: python3 -m venv is not available");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.txt"), "").unwrap();
        let py = PythonSetup {
            requirements: Some("r.txt".into()),
            ..Default::default()
        };
        let d = dir.path().display().to_string();
        let script = build_script(&d, ".aienv/venv/e", &py, "r.txt", None, "abc");
        let run = || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap()
        };
        let first = run();
        assert!(first.status.success(), "{first:?}");
        assert!(dir.path().join(".aienv/venv/e/bin/python").exists());
        let second = run();
        assert!(
            String::from_utf8_lossy(&second.stdout).contains("up to date"),
            "{second:?}"
        );
    }
}
