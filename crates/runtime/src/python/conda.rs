//! Conda environments (`python.conda = "environment.yml"`) and pixi projects (`python.pixi`).
//!
//! A conda environment is created as a prefix at `.aienv/conda/ENV` with the first of
//! micromamba, mamba or conda that is installed (micromamba first: one static binary, fastest).
//! pixi keeps its environment beside its manifest (`.pixi/envs/default`), so `pixi install` is all
//! it takes; pixi itself skips what is up to date. Either way the environment's `bin` goes first
//! on PATH and `CONDA_PREFIX` names it, as `conda activate` would.

use std::path::{Path, PathBuf};

use super::{Build, Source, Step, find_in, search_dirs};
use crate::error::RunError;

/// The conda tools, in order of preference.
pub const CONDA_TOOLS: [&str; 3] = ["micromamba", "mamba", "conda"];

/// Where installers of conda tools put them, relative to the home folder.
const CONDA_HOMES: [&str; 6] = [
    ".local/bin",
    "micromamba/bin",
    "miniforge3/bin",
    "mambaforge/bin",
    "miniconda3/bin",
    "anaconda3/bin",
];

/// Where an environment's conda prefix lives.
pub fn conda_dir(workspace: &Path, env: &str) -> PathBuf {
    workspace.join(".aienv").join("conda").join(env)
}

/// micromamba, mamba or conda (`AIENV_CONDA` overrides the search).
pub fn find_conda() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIENV_CONDA") {
        return Some(PathBuf::from(p));
    }
    find_in(&CONDA_TOOLS, &search_dirs(&CONDA_HOMES))
}

/// pixi (`AIENV_PIXI` overrides the search).
pub fn find_pixi() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AIENV_PIXI") {
        return Some(PathBuf::from(p));
    }
    find_in(&["pixi"], &search_dirs(&[".pixi/bin", ".local/bin"]))
}

/// How to build the prefix from `file` with `tool` (`None`: none is installed).
pub(crate) fn conda_build(
    workspace: &Path,
    env: &str,
    file: &str,
    tool: Option<&Path>,
) -> Result<Build, RunError> {
    let Some(tool) = tool else {
        return Err(RunError::Setup(format!(
            "environment {env:?} is built from the conda file {file}, but none of micromamba, \
             mamba or conda is installed on this machine; install micromamba \
             (https://mamba.readthedocs.io) and start it again"
        )));
    };
    let prefix = conda_dir(workspace, env);
    let path = workspace.join(file);
    let s = |p: &Path| p.display().to_string();
    let name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // micromamba has no `env` subcommand; mamba and conda create from a file with `env create`.
    let mut argv = vec![s(tool)];
    if name.starts_with("micromamba") {
        argv.extend(["create".into(), "--yes".into()]);
    } else {
        argv.extend(["env".into(), "create".into()]);
    }
    argv.extend(["--prefix".into(), s(&prefix), "--file".into(), s(&path)]);
    Ok(Build {
        sources: vec![Source {
            what: "conda environment",
            path,
            optional: false,
        }],
        fresh: Some(prefix.clone()),
        built: prefix.join("conda-meta"),
        stamp: prefix.join(".aienv-built-from"),
        files: Vec::new(),
        steps: vec![Step::new(format!("{name} create"), argv)],
        activate: super::activate("CONDA_PREFIX", &prefix),
    })
}

/// How to install the pixi project of `file` with `pixi` (`None`: it is not installed).
pub(crate) fn pixi_build(
    workspace: &Path,
    env: &str,
    file: &str,
    pixi: Option<&Path>,
) -> Result<Build, RunError> {
    let Some(pixi) = pixi else {
        return Err(RunError::Setup(format!(
            "environment {env:?} is built from the pixi manifest {file}, but pixi is not \
             installed on this machine; install pixi (https://pixi.sh) and start it again"
        )));
    };
    let manifest = workspace.join(file);
    let dir = manifest.parent().unwrap_or(workspace).to_path_buf();
    let prefix = dir.join(".pixi").join("envs").join("default");
    let s = |p: &Path| p.display().to_string();
    Ok(Build {
        sources: vec![
            Source {
                what: "pixi manifest",
                path: manifest.clone(),
                optional: false,
            },
            Source {
                what: "pixi lock",
                path: dir.join("pixi.lock"),
                optional: true,
            },
        ],
        fresh: None,
        built: prefix.clone(),
        // pixi's folder is the project's, so the stamp stays in ours.
        stamp: workspace
            .join(".aienv")
            .join("pixi")
            .join(format!("{env}.built-from")),
        files: Vec::new(),
        steps: vec![Step::new(
            "pixi install",
            vec![
                s(pixi),
                "install".into(),
                "--manifest-path".into(),
                s(&manifest),
            ],
        )],
        activate: super::activate("CONDA_PREFIX", &prefix),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::python::{Tools, ensure_with};
    use aienv_core::{EnvKind, Environment, PythonSetup};

    fn env_with(python: PythonSetup) -> Environment {
        Environment {
            python: Some(python),
            ..Environment::new("sci", EnvKind::Process)
        }
    }

    /// A stand-in installer: a shell script named `name` that logs its arguments to `calls` and
    /// runs `body`.
    fn fake_tool(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        let calls = dir.join("calls");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"$@\" >> {}\n{body}\n", calls.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn without_a_conda_tool_it_says_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let tool = find_in(&CONDA_TOOLS, &[empty.path().to_path_buf()]);
        let e =
            conda_build(Path::new("/ws"), "sci", "environment.yml", tool.as_deref()).unwrap_err();
        assert_eq!(e.code(), "setup_failed");
        assert_eq!(
            e.to_string(),
            "environment \"sci\" is built from the conda file environment.yml, but none of \
             micromamba, mamba or conda is installed on this machine; install micromamba \
             (https://mamba.readthedocs.io) and start it again"
        );
    }

    #[test]
    fn without_pixi_it_says_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let pixi = find_in(&["pixi"], &[empty.path().to_path_buf()]);
        let e = pixi_build(Path::new("/ws"), "sci", "pixi.toml", pixi.as_deref()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment \"sci\" is built from the pixi manifest pixi.toml, but pixi is not \
             installed on this machine; install pixi (https://pixi.sh) and start it again"
        );
    }

    #[test]
    fn micromamba_is_preferred_over_conda() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        fake_tool(&a, "conda", "");
        let micromamba = fake_tool(&b, "micromamba", "");
        assert_eq!(find_in(&CONDA_TOOLS, &[a, b]), Some(micromamba));
    }

    #[tokio::test]
    async fn a_conda_prefix_is_built_once_per_file_content() {
        let ws = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        // Like micromamba: `create --yes --prefix P --file F` makes P with conda-meta and bin.
        let micromamba = fake_tool(
            bin.path(),
            "micromamba",
            "mkdir -p \"$4/conda-meta\" \"$4/bin\" && echo created",
        );
        std::fs::write(
            ws.path().join("environment.yml"),
            "dependencies: [python]\n",
        )
        .unwrap();
        let env = env_with(PythonSetup {
            conda: Some("environment.yml".into()),
            ..Default::default()
        });
        let tools = Tools {
            conda: Some(micromamba),
            ..Tools::default()
        };
        let log = ws.path().join("run.log");
        let prefix = conda_dir(ws.path(), "sci");
        for _ in 0..2 {
            let vars = ensure_with(ws.path(), &env, &log, &tools, &Default::default())
                .await
                .unwrap()
                .vars;
            assert_eq!(vars["CONDA_PREFIX"], prefix.display().to_string());
            assert!(vars["PATH"].starts_with(&prefix.join("bin").display().to_string()));
        }
        let file = ws.path().join("environment.yml");
        assert_eq!(
            calls(bin.path()),
            [format!(
                "create --yes --prefix {} --file {}",
                prefix.display(),
                file.display()
            )],
            "built once for two starts"
        );
        std::fs::write(&file, "dependencies: [python, numpy]\n").unwrap();
        ensure_with(ws.path(), &env, &log, &tools, &Default::default())
            .await
            .unwrap();
        assert_eq!(calls(bin.path()).len(), 2, "a changed file builds again");
        assert!(std::fs::read_to_string(&log).unwrap().contains("created"));
    }

    #[tokio::test]
    async fn conda_uses_env_create_and_a_failure_quotes_its_output() {
        let ws = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let conda = fake_tool(
            bin.path(),
            "conda",
            "echo 'PackagesNotFoundError: nosuchpkg' >&2; exit 1",
        );
        std::fs::write(
            ws.path().join("environment.yml"),
            "dependencies: [nosuchpkg]\n",
        )
        .unwrap();
        let env = env_with(PythonSetup {
            conda: Some("environment.yml".into()),
            ..Default::default()
        });
        let tools = Tools {
            conda: Some(conda),
            ..Tools::default()
        };
        let e = ensure_with(
            ws.path(),
            &env,
            &ws.path().join("run.log"),
            &tools,
            &Default::default(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(calls(bin.path())[0].starts_with("env create --prefix"));
        assert!(e.contains("conda create exited with code 1"), "{e}");
        assert!(e.contains("PackagesNotFoundError: nosuchpkg"), "{e}");
    }

    #[tokio::test]
    async fn pixi_installs_beside_its_manifest() {
        let ws = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        // Like pixi: the environment appears in .pixi/envs/default beside the manifest.
        let pixi = fake_tool(
            bin.path(),
            "pixi",
            "mkdir -p \"$(dirname \"$3\")/.pixi/envs/default/bin\"",
        );
        std::fs::create_dir_all(ws.path().join("proj")).unwrap();
        std::fs::write(
            ws.path().join("proj/pixi.toml"),
            "[project]\nname = \"p\"\n",
        )
        .unwrap();
        let env = env_with(PythonSetup {
            pixi: Some("proj/pixi.toml".into()),
            ..Default::default()
        });
        let tools = Tools {
            pixi: Some(pixi),
            ..Tools::default()
        };
        let log = ws.path().join("run.log");
        for _ in 0..2 {
            let vars = ensure_with(ws.path(), &env, &log, &tools, &Default::default())
                .await
                .unwrap()
                .vars;
            let prefix = ws.path().join("proj/.pixi/envs/default");
            assert_eq!(vars["CONDA_PREFIX"], prefix.display().to_string());
        }
        assert_eq!(
            calls(bin.path()),
            [format!(
                "install --manifest-path {}",
                ws.path().join("proj/pixi.toml").display()
            )]
        );
    }
}
