//! Virtual environments (`.aienv/venv/ENV`) from a requirements file, a `pyproject.toml` or a uv
//! lock: with `uv` when it is installed, else `python -m venv` and pip.
//!
//! pip cannot install from a `pyproject.toml` (`-r` wants a requirements file), so on that path
//! the dependencies are read from it ([`super::pyproject`]) and written to a requirements file
//! inside the venv first.

use std::path::{Path, PathBuf};

use aienv_core::PythonSetup;

use super::{Build, Source, Step, find_in, pyproject, search_dirs};
use crate::error::RunError;

/// What pip installs from when the requirements are a `pyproject.toml`.
const FROM_PYPROJECT: &str = "aienv-requirements.txt";

/// Where an environment's venv lives.
pub fn venv_dir(workspace: &Path, env: &str) -> PathBuf {
    workspace.join(".aienv").join("venv").join(env)
}

/// The `uv` binary, if installed (on PATH, or where its installer puts it).
pub fn find_uv() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIENV_UV") {
        return Some(PathBuf::from(p));
    }
    find_in(&["uv"], &search_dirs(&[".local/bin", ".cargo/bin"]))
}

/// Whether a requirements file is a project file rather than a list of requirements.
pub fn is_pyproject(file: &str) -> bool {
    file.ends_with("pyproject.toml")
}

/// How to build the venv: with `uv` (when given) or with the standard library's venv and pip.
/// `lan_index`: the installers use the node's package index, which a uv lock's file URLs would
/// bypass, so a uv lock is installed from its export instead (same pins, same hashes).
pub(crate) fn build(
    workspace: &Path,
    env: &str,
    py: &PythonSetup,
    uv: Option<&Path>,
    lan_index: bool,
) -> Result<Build, RunError> {
    let venv = venv_dir(workspace, env);
    let mut files = Vec::new();
    // Checked on both paths, so that a wrong extra says the same whatever is installed.
    let from_pyproject = pyproject_requirements(workspace, env, py)?;
    let steps = match uv {
        Some(uv) => uv_steps(workspace, py, &venv, uv, lan_index),
        None => {
            if let Some(reqs) = from_pyproject {
                files.push((venv.join(FROM_PYPROJECT), reqs.join("\n") + "\n"));
            }
            pip_steps(workspace, py, &venv)
        }
    };
    let source = py.lock.as_ref().or(py.requirements.as_ref());
    Ok(Build {
        sources: source
            .map(|file| Source {
                what: if py.lock.is_some() {
                    "lock"
                } else {
                    "requirements"
                },
                path: workspace.join(file),
                optional: false,
            })
            .into_iter()
            .collect(),
        built: venv.join("bin").join("python"),
        stamp: venv.join(".aienv-built-from"),
        fresh: Some(venv.clone()),
        files,
        steps,
        activate: super::activate("VIRTUAL_ENV", &venv),
    })
}

/// With `requirements = "pyproject.toml"`: its dependencies and those of the wanted extras.
/// `None` for other requirements; an error for extras that nothing can install.
fn pyproject_requirements(
    workspace: &Path,
    env: &str,
    py: &PythonSetup,
) -> Result<Option<Vec<String>>, RunError> {
    match &py.requirements {
        Some(file) if py.lock.is_none() && is_pyproject(file) => {
            let project = pyproject::read(&workspace.join(file)).map_err(RunError::Setup)?;
            project
                .requirements(&py.extras)
                .map(Some)
                .map_err(|e| RunError::Setup(format!("environment {env:?}: {e}")))
        }
        // `uv sync` takes extras from the lock's project.
        _ if py.extras.is_empty() || py.lock.is_some() => Ok(None),
        file => Err(RunError::Setup(format!(
            "environment {env:?} lists extras {:?}, but extras are optional dependencies of a \
             pyproject.toml and its requirements are {}; set `requirements = \
             \"pyproject.toml\"` or remove `extras`",
            py.extras,
            file.as_deref()
                .map_or("not set".into(), |f| format!("{f:?}"))
        ))),
    }
}

fn uv_steps(
    workspace: &Path,
    py: &PythonSetup,
    venv: &Path,
    uv: &Path,
    lan_index: bool,
) -> Vec<Step> {
    let s = |p: &Path| p.display().to_string();
    let extras = py
        .extras
        .iter()
        .flat_map(|e| ["--extra".to_string(), e.clone()]);
    let uv_lock = py.lock.as_ref().filter(|l| is_uv_lock(l));
    if let (Some(lock), true) = (uv_lock, lan_index) {
        return uv_lock_through_index(workspace, py, venv, uv, lock);
    }
    if let Some(lock) = uv_lock {
        let project = workspace.join(lock);
        let dir = project.parent().unwrap_or(workspace);
        let mut argv = vec![s(uv), "sync".into(), "--frozen".into()];
        argv.extend(["--project".into(), s(dir)]);
        argv.extend(extras);
        let mut step = Step::new("uv sync", argv);
        step.vars
            .insert("UV_PROJECT_ENVIRONMENT".to_string(), s(venv));
        return vec![step];
    }
    let mut out = vec![uv_venv(py, venv, uv)];
    // A hashed requirements lock (`aienv env lock`) pins exactly what the requirements resolved to.
    if let Some(req) = py.lock.as_ref().or(py.requirements.as_ref()) {
        let mut argv = vec![s(uv), "pip".into(), "install".into()];
        argv.extend(["--python".into(), s(&venv.join("bin/python"))]);
        argv.extend(["-r".into(), s(&workspace.join(req))]);
        argv.extend(extras);
        out.push(Step::new("uv pip install", argv));
    }
    out
}

fn uv_venv(py: &PythonSetup, venv: &Path, uv: &Path) -> Step {
    let mut create = vec![uv.display().to_string(), "venv".into(), "--quiet".into()];
    if let Some(v) = &py.version {
        create.extend(["--python".into(), v.clone()]);
    }
    create.push(venv.display().to_string());
    Step::new("uv venv", create)
}

/// Whether a lock file is uv's project lock (rather than a hashed requirements file).
pub fn is_uv_lock(file: &str) -> bool {
    file == "uv.lock" || file.ends_with("/uv.lock")
}

/// A uv project's lock installed through the node's index: its pins and hashes exported as a
/// requirements file, installed, then the project itself (when it is a package) without deps.
fn uv_lock_through_index(
    workspace: &Path,
    py: &PythonSetup,
    venv: &Path,
    uv: &Path,
    lock: &str,
) -> Vec<Step> {
    let s = |p: &Path| p.display().to_string();
    let project = workspace.join(lock);
    let dir = project.parent().unwrap_or(workspace);
    let exported = venv.with_extension("lock.txt");
    let mut export = vec![s(uv), "export".into(), "--frozen".into(), "--quiet".into()];
    export.extend(["--no-emit-project".into(), "--project".into(), s(dir)]);
    export.extend(
        py.extras
            .iter()
            .flat_map(|e| ["--extra".to_string(), e.clone()]),
    );
    export.extend(["--output-file".into(), s(&exported)]);
    let python = s(&venv.join("bin/python"));
    let install = vec![
        s(uv),
        "pip".into(),
        "install".into(),
        "--python".into(),
        python.clone(),
        "-r".into(),
        s(&exported),
    ];
    let mut steps = vec![
        Step::new("uv export", export),
        uv_venv(py, venv, uv),
        Step::new("uv pip install", install),
    ];
    if pyproject::is_package(&dir.join("pyproject.toml")) {
        steps.push(Step::new(
            "uv pip install (the project)",
            vec![
                s(uv),
                "pip".into(),
                "install".into(),
                "--python".into(),
                python,
                "--no-deps".into(),
                "-e".into(),
                s(dir),
            ],
        ));
    }
    steps
}

fn pip_steps(workspace: &Path, py: &PythonSetup, venv: &Path) -> Vec<Step> {
    let s = |p: &Path| p.display().to_string();
    let interpreter = py
        .version
        .as_ref()
        .map(|v| format!("python{v}"))
        .filter(|p| find_in(&[p], &search_dirs(&[])).is_some())
        .unwrap_or_else(|| "python3".into());
    let mut out = vec![Step::new(
        format!("{interpreter} -m venv"),
        vec![interpreter, "-m".into(), "venv".into(), s(venv)],
    )];
    let hashed_lock = py.lock.as_ref().filter(|l| !is_uv_lock(l));
    let file = match hashed_lock
        .or(py.requirements.as_ref())
        .or(py.lock.as_ref())
    {
        Some(req) if is_pyproject(req) => venv.join(FROM_PYPROJECT),
        Some(req) => workspace.join(req),
        None => return out,
    };
    out.push(Step::new(
        "pip install",
        vec![
            s(&venv.join("bin/pip")),
            "install".into(),
            "--quiet".into(),
            "-r".into(),
            s(&file),
        ],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = "[project]\nname = \"t\"\ndependencies = [\"requests\"]\n\n\
                             [project.optional-dependencies]\ngpu = [\"torch\"]\n";

    fn setup(requirements: &str, extras: &[&str]) -> PythonSetup {
        PythonSetup {
            requirements: Some(requirements.into()),
            extras: extras.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        }
    }

    fn argv(step: &Step) -> String {
        match &step.cmd {
            crate::process::Cmd::Argv(a) => a.join(" "),
            crate::process::Cmd::Shell(s) => s.clone(),
        }
    }

    fn workspace() -> tempfile::TempDir {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("app")).unwrap();
        std::fs::write(ws.path().join("app/pyproject.toml"), PYPROJECT).unwrap();
        std::fs::write(ws.path().join("requirements.txt"), "requests\n").unwrap();
        ws
    }

    #[test]
    fn pip_gets_the_pyproject_dependencies_as_a_requirements_file() {
        let ws = workspace();
        let b = build(
            ws.path(),
            "e",
            &setup("app/pyproject.toml", &["gpu"]),
            None,
            false,
        )
        .unwrap();
        let venv = venv_dir(ws.path(), "e");
        let file = venv.join(FROM_PYPROJECT);
        assert_eq!(b.files, [(file.clone(), "requests\ntorch\n".to_string())]);
        assert_eq!(
            argv(&b.steps[1]),
            format!(
                "{} install --quiet -r {}",
                venv.join("bin/pip").display(),
                file.display()
            )
        );
    }

    #[test]
    fn uv_reads_the_pyproject_itself_with_each_extra() {
        let ws = workspace();
        let uv = Path::new("/opt/uv");
        let b = build(
            ws.path(),
            "e",
            &setup("app/pyproject.toml", &["gpu"]),
            Some(uv),
            false,
        )
        .unwrap();
        assert!(b.files.is_empty());
        assert!(
            argv(&b.steps[1]).ends_with(&format!(
                "-r {} --extra gpu",
                ws.path().join("app/pyproject.toml").display()
            )),
            "{}",
            argv(&b.steps[1])
        );
    }

    #[test]
    fn wrong_extras_fail_before_anything_is_built() {
        let ws = workspace();
        for uv in [None, Some(Path::new("/opt/uv"))] {
            let e = build(
                ws.path(),
                "e",
                &setup("app/pyproject.toml", &["cuda"]),
                uv,
                false,
            )
            .unwrap_err()
            .to_string();
            assert_eq!(
                e,
                "environment \"e\": its pyproject.toml has no extra \"cuda\" (it has: gpu); \
                 fix `extras` in aienv.toml"
            );
        }
        let e = build(
            ws.path(),
            "e",
            &setup("requirements.txt", &["gpu"]),
            None,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("set `requirements = \"pyproject.toml\"`"), "{e}");
    }

    /// The whole pip path, offline: a pyproject without dependencies installs nothing.
    #[tokio::test]
    async fn a_venv_from_a_pyproject_with_pip() {
        if find_in(&["python3"], &search_dirs(&[])).is_none() {
            eprintln!("SKIPPED a_venv_from_a_pyproject_with_pip: no python3 on PATH");
            return;
        }
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(
            ws.path().join("pyproject.toml"),
            "[project]\nname = \"t\"\n",
        )
        .unwrap();
        let env = aienv_core::Environment {
            python: Some(setup("pyproject.toml", &[])),
            ..aienv_core::Environment::new("e", aienv_core::EnvKind::Process)
        };
        let log = ws.path().join("run.log");
        let tools = super::super::Tools::default();
        let vars = super::super::ensure_with(ws.path(), &env, &log, &tools, &Default::default())
            .await
            .unwrap()
            .vars;
        let venv = venv_dir(ws.path(), "e");
        assert_eq!(vars["VIRTUAL_ENV"], venv.display().to_string());
        assert!(venv.join("bin/python").exists());
        assert_eq!(
            std::fs::read_to_string(venv.join(FROM_PYPROJECT)).unwrap(),
            "\n"
        );
    }
}
