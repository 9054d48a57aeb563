//! `aienv env lock`: pins an environment's Python packages so that every rebuild, on any machine
//! of the LAN, installs exactly the same files.
//!
//! - A requirements file: `uv pip compile --generate-hashes`, written beside it as
//!   `NAME.lock.txt`. It is an ordinary requirements file (pins and SHA-256 hashes), so pip can
//!   install it too, and it names no index: a rebuild fetches from wherever the node's index finds
//!   the files, and the hashes make sure they are the same.
//! - A uv project (`pyproject.toml`): `uv lock`, which writes `uv.lock` beside it. uv records the
//!   index it resolved against, so this uses the user's own uv settings, not the node's index.
//! - conda and pixi environments are locked by their own tools (`pixi install` writes
//!   `pixi.lock`; `conda-lock` for conda): said in the error.

use std::path::{Path, PathBuf};

use aienv_core::PythonSetup;

use super::venv::is_pyproject;
use super::{Step, index, run_step};
use crate::error::RunError;

/// What a lock wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The lock file, relative to the workspace (what `python.lock` is set to).
    pub file: String,
    /// How many packages it pins.
    pub packages: usize,
}

/// Writes the lock of environment `env`'s `py`, with `uv`, through `index` (the node's package
/// index) when given. Output of the tools goes to `log`.
pub async fn lock(
    workspace: &Path,
    env: &str,
    py: &PythonSetup,
    uv: Option<&Path>,
    index: Option<&str>,
    log: &Path,
) -> Result<Locked, RunError> {
    if py.conda.is_some() || py.pixi.is_some() {
        return Err(RunError::Setup(format!(
            "environment {env:?} is a conda or pixi environment: pixi writes its own lock \
             (pixi.lock, on `pixi install`), and conda environments are locked with conda-lock; \
             `aienv env lock` locks requirements files and uv projects"
        )));
    }
    let Some(req) = &py.requirements else {
        return Err(RunError::Setup(format!(
            "environment {env:?} names no Python requirements to lock; set `python = {{ \
             requirements = \"requirements.txt\" }}` in aienv.toml"
        )));
    };
    let Some(uv) = uv else {
        return Err(RunError::Setup(
            "locking needs uv, which is not installed; install it (https://docs.astral.sh/uv/, \
             or `pip install uv`) and run `aienv env lock` again"
                .into(),
        ));
    };
    let s = |p: &Path| p.display().to_string();
    let source = workspace.join(req);
    let (step, out, rel) = if is_pyproject(req) {
        let dir = source.parent().unwrap_or(workspace);
        let argv = vec![s(uv), "lock".into(), "--project".into(), s(dir)];
        let rel = sibling(req, "uv.lock");
        (Step::new("uv lock", argv), dir.join("uv.lock"), rel)
    } else {
        let rel = lock_name(req);
        let out = workspace.join(&rel);
        let mut argv = vec![s(uv), "pip".into(), "compile".into(), "--quiet".into()];
        argv.extend(["--generate-hashes".into(), "--no-header".into()]);
        if let Some(v) = &py.version {
            argv.extend(["--python-version".into(), v.clone()]);
        }
        argv.extend([s(&source), "--output-file".into(), s(&out)]);
        let mut step = Step::new("uv pip compile", argv);
        if let Some(index) = index {
            step.vars = index::vars(index);
        }
        (step, out, rel)
    };
    run_step(&step, workspace, log).await?;
    let text = std::fs::read_to_string(&out)
        .map_err(|e| RunError::io(format!("{} wrote no {}", step.label, out.display()), e))?;
    Ok(Locked {
        file: rel,
        packages: count_packages(&out, &text),
    })
}

/// `trainer/requirements.txt` → `trainer/requirements.lock.txt`.
pub fn lock_name(requirements: &str) -> String {
    let path = PathBuf::from(requirements);
    let stem = path
        .file_stem()
        .map_or("requirements".into(), |s| s.to_string_lossy().into_owned());
    sibling(requirements, &format!("{stem}.lock.txt"))
}

fn sibling(file: &str, name: &str) -> String {
    match file.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_string(),
    }
}

/// Pins in a hashed requirements file (`name==version \`), or packages in a uv lock.
fn count_packages(path: &Path, text: &str) -> usize {
    if path.file_name().is_some_and(|n| n == "uv.lock") {
        return text.matches("[[package]]").count();
    }
    text.lines()
        .filter(|l| !l.starts_with([' ', '#', '-']) && l.contains("=="))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_sits_beside_the_requirements() {
        assert_eq!(lock_name("requirements.txt"), "requirements.lock.txt");
        assert_eq!(
            lock_name("trainer/reqs-gpu.txt"),
            "trainer/reqs-gpu.lock.txt"
        );
        assert_eq!(sibling("app/pyproject.toml", "uv.lock"), "app/uv.lock");
    }

    #[test]
    fn counts_pins_not_hashes_or_comments() {
        let text = "numpy==2.1.0 \\\n    --hash=sha256:aa\n    # via scikit-learn\nscipy==1.14.1 \\\n    --hash=sha256:bb\n";
        assert_eq!(count_packages(Path::new("r.lock.txt"), text), 2);
    }

    #[tokio::test]
    async fn says_what_cannot_be_locked_and_why() {
        let ws = tempfile::tempdir().unwrap();
        let log = ws.path().join("log");
        let conda = PythonSetup {
            conda: Some("environment.yml".into()),
            ..Default::default()
        };
        let e = lock(ws.path(), "e", &conda, None, None, &log)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("conda-lock"), "{e}");
        let none = PythonSetup::default();
        let e = lock(ws.path(), "e", &none, None, None, &log)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("names no Python requirements"),
            "{e}"
        );
        let reqs = PythonSetup {
            requirements: Some("requirements.txt".into()),
            ..Default::default()
        };
        let e = lock(ws.path(), "e", &reqs, None, None, &log)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("install it"), "{e}");
    }
}
