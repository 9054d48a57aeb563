//! Python set-up for process environments, from whichever source the manifest's `python` names:
//!
//! - a requirements file, a `pyproject.toml` (with its `extras`) or a uv lock: a virtual
//!   environment at `.aienv/venv/ENV`, built with `uv` when it is installed (many times faster)
//!   and `python -m venv` + pip otherwise ([`venv`], [`pyproject`]);
//! - a conda `environment.yml`: a prefix at `.aienv/conda/ENV`, built with micromamba, mamba or
//!   conda; a pixi manifest: `pixi install`, whose environment pixi keeps beside the manifest
//!   ([`conda`]).
//!
//! With `python.variant` (CUDA, ROCm and CPU builds), the variant that fits this machine's GPUs
//! stands in for `requirements`/`lock`, and the run is told which and why ([`variant`]).
//!
//! `.aienv/` is never shared. Each is rebuilt only when what it was built from changed: a stamp
//! (the Python version, the extras, the variant, the source files' contents) is kept beside it
//! and compared.

pub mod conda;
mod index;
pub mod lock;
pub mod pyproject;
pub mod variant;
pub mod venv;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aienv_core::{Environment, PythonSetup};

use crate::error::RunError;
use crate::logs;
use crate::process::{Cmd, Group};

pub use venv::{find_uv, venv_dir};

/// The installers found on this machine; looked up once per start.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub uv: Option<PathBuf>,
    pub conda: Option<PathBuf>,
    pub pixi: Option<PathBuf>,
}

impl Tools {
    /// Looks on PATH and where the installers put them (`AIENV_UV`, `AIENV_CONDA`, `AIENV_PIXI`
    /// override the search).
    pub fn find() -> Tools {
        Tools {
            uv: find_uv(),
            conda: conda::find_conda(),
            pixi: conda::find_pixi(),
        }
    }
}

/// One command of a build.
#[derive(Debug)]
pub(crate) struct Step {
    /// What the command is called in messages ("uv pip install").
    pub label: String,
    pub cmd: Cmd,
    /// Variables on top of the node's own.
    pub vars: BTreeMap<String, String>,
}

impl Step {
    pub fn new(label: impl Into<String>, argv: Vec<String>) -> Step {
        Step {
            label: label.into(),
            cmd: Cmd::Argv(argv),
            vars: BTreeMap::new(),
        }
    }
}

/// A source file of a build, read into its stamp.
#[derive(Debug)]
pub(crate) struct Source {
    /// What it is called in messages ("requirements", "conda environment").
    pub what: &'static str,
    pub path: PathBuf,
    /// A file that may be missing (pixi's lock before the first install).
    pub optional: bool,
}

/// How to build one environment's Python, and how to use it once built.
#[derive(Debug)]
pub(crate) struct Build {
    pub sources: Vec<Source>,
    /// Removed before building again; `None` when the tool updates its environment in place.
    pub fresh: Option<PathBuf>,
    /// Exists once built (the interpreter, the prefix's `conda-meta`).
    pub built: PathBuf,
    /// Where the stamp is kept.
    pub stamp: PathBuf,
    /// Files to write before the steps run (the requirements pip reads from a pyproject).
    pub files: Vec<(PathBuf, String)>,
    pub steps: Vec<Step>,
    /// The variables that put the environment first.
    pub activate: BTreeMap<String, String>,
}

/// What the node gives a Python build beyond the manifest.
#[derive(Clone, Default)]
pub struct Context {
    /// The package index the installers use in place of their default (the node's LAN cache,
    /// which asks peers before the internet); `None` leaves the installers' own settings.
    pub index: Option<String>,
    /// Told how the build goes (steps, packages resolved and installed).
    pub progress: Option<Progress>,
    /// This machine's GPUs, which pick the `python.variant` to build ([`variant`]); none: the
    /// CPU build.
    pub gpus: Vec<aienv_core::resources::Gpu>,
}

/// Where a build reports its progress.
pub type Progress = std::sync::Arc<dyn Fn(SetupProgress) + Send + Sync>;

pub use aienv_core::run::SetupProgress;

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("index", &self.index)
            .field("progress", &self.progress.is_some())
            .field("gpus", &self.gpus.len())
            .finish()
    }
}

/// What a set-up Python gives the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// The variables that put it first (`PATH`, and `VIRTUAL_ENV` or `CONDA_PREFIX`).
    pub vars: BTreeMap<String, String>,
    /// For the user: which `python.variant` was picked, and why.
    pub notes: Vec<String>,
}

/// Makes sure the environment's Python is set up, writing what the tools print to `log`.
/// Returns nothing when the environment has no `python` table.
pub async fn ensure(
    workspace: &Path,
    env: &Environment,
    log: &Path,
    cx: &Context,
) -> Result<Prepared, RunError> {
    ensure_with(workspace, env, log, &Tools::find(), cx).await
}

/// [`ensure`] with the installers given (tests pass stand-ins).
pub(crate) async fn ensure_with(
    workspace: &Path,
    env: &Environment,
    log: &Path,
    tools: &Tools,
    cx: &Context,
) -> Result<Prepared, RunError> {
    let Some(py) = &env.python else {
        return Ok(Prepared::default());
    };
    // From here on the variant for this machine's GPUs stands in for the table.
    let chosen = variant::choose(&env.name, py, &cx.gpus)?;
    let (py, picked) = (&chosen.setup, chosen.variant.as_deref());
    let done = |vars| Prepared {
        vars,
        notes: chosen.note.iter().cloned().collect(),
    };
    let mut build = plan(workspace, env, py, tools, cx.index.is_some())?;
    if let Some(index) = &cx.index {
        for step in &mut build.steps {
            step.vars.extend(index::vars(index));
        }
    }
    let wanted = stamp(py, picked, &build.sources)?;
    if build.built.exists() && std::fs::read(&build.stamp).is_ok_and(|s| s == wanted) {
        return Ok(done(build.activate));
    }
    if let Some(dir) = build.fresh.as_ref().filter(|d| d.exists()) {
        std::fs::remove_dir_all(dir)
            .map_err(|e| RunError::io(format!("cannot replace {}", dir.display()), e))?;
    }
    for (path, text) in &build.files {
        write_file(path, text)?;
    }
    for step in &build.steps {
        if let Some(progress) = &cx.progress {
            progress(SetupProgress {
                step: step.label.clone(),
                ..Default::default()
            });
        }
        run_step(step, workspace, log).await?;
    }
    // Read again: a tool may have written its lock (pixi does), which must not count as a change.
    write_file(&build.stamp, stamp(py, picked, &build.sources)?)?;
    Ok(done(build.activate))
}

/// Which build the `python` table asks for.
fn plan(
    workspace: &Path,
    env: &Environment,
    py: &PythonSetup,
    tools: &Tools,
    lan_index: bool,
) -> Result<Build, RunError> {
    if let Some(file) = &py.conda {
        conda::conda_build(workspace, &env.name, file, tools.conda.as_deref())
    } else if let Some(file) = &py.pixi {
        conda::pixi_build(workspace, &env.name, file, tools.pixi.as_deref())
    } else {
        venv::build(workspace, &env.name, py, tools.uv.as_deref(), lan_index)
    }
}

/// What a build is made from: the wanted version, extras and variant, then each source file's
/// contents. (Without extras and variant this is what earlier versions wrote, so their venvs
/// stay valid.)
fn stamp(py: &PythonSetup, variant: Option<&str>, sources: &[Source]) -> Result<Vec<u8>, RunError> {
    let mut stamp = format!("{:?}\n", py.version).into_bytes();
    if !py.extras.is_empty() {
        stamp.extend(format!("extras {:?}\n", py.extras).into_bytes());
    }
    if let Some(v) = variant {
        stamp.extend(format!("variant {v:?}\n").into_bytes());
    }
    for s in sources {
        match std::fs::read(&s.path) {
            Ok(bytes) => stamp.extend(bytes),
            Err(e) if s.optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RunError::Setup(format!(
                    "the Python {} file {} cannot be read ({e}); fix `python` in aienv.toml",
                    s.what,
                    s.path.display()
                )));
            }
        }
    }
    Ok(stamp)
}

pub(crate) async fn run_step(step: &Step, workspace: &Path, log: &Path) -> Result<(), RunError> {
    let g = Group::spawn(
        &[(step.label.clone(), step.cmd.clone())],
        workspace,
        &step.vars,
        log,
    )?;
    g.wait_gone().await;
    match g.exit_code() {
        Some(0) => Ok(()),
        code => Err(RunError::Setup(format!(
            "setting up Python failed: {} exited with {}; its last lines:\n{}",
            step.label,
            code.map_or("a signal".into(), |c| format!("code {c}")),
            logs::quote_tail(log, 8)
        ))),
    }
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), RunError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::io(format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::write(path, contents)
        .map_err(|e| RunError::io(format!("cannot write {}", path.display()), e))
}

/// `PATH` with `bin` first, and `var` (`VIRTUAL_ENV`, `CONDA_PREFIX`) naming `prefix`.
pub(crate) fn activate(var: &str, prefix: &Path) -> BTreeMap<String, String> {
    let bin = prefix.join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    BTreeMap::from([
        (var.to_string(), prefix.display().to_string()),
        ("PATH".to_string(), joined),
    ])
}

/// The folders to look for an installer in: PATH, then `extra` (where installers put it).
pub(crate) fn search_dirs(extra: &[&str]) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home.iter().flat_map(|h| extra.iter().map(|e| h.join(e))))
        .collect()
}

/// The first of `names` (in that order of preference) found in `dirs`.
pub(crate) fn find_in(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}
