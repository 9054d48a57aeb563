//! The data model: a workspace holds projects and the environments they run in.
//!
//! These types are what the rest of the program (and the API's JSON) sees. They are built from a
//! validated `aienv.toml` (see [`crate::manifest`]); a `Project` or `Environment` serialises to
//! the same keys it has in the manifest, except that an environment's tools are `tools` in JSON and
//! `[[environment.NAME.tool]]` tables in TOML.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::manifest::ManifestError;

/// Where a container environment's workspace is mounted inside the container.
pub const CONTAINER_WORKSPACE: &str = "/workspace";

/// A registered workspace as the node knows it: where it lives, and its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    /// Stable id given when the workspace was registered on this node.
    pub id: String,
    /// Absolute path of the workspace folder.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// The name from the manifest (or the folder name while no valid manifest was ever read).
    pub name: String,
    /// The last manifest that parsed and validated. An invalid edit leaves this as it was.
    pub manifest: Option<Manifest>,
    /// Why the manifest on disk is not in effect right now (an invalid edit, a deleted file).
    pub problem: Option<ManifestError>,
}

/// One line of `GET /workspaces`: enough to list and pick, without every environment in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceSummary {
    pub id: String,
    #[schema(value_type = String)]
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub shared: bool,
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    /// The current problem with the manifest on disk, if any.
    pub problem: Option<ManifestError>,
}

impl Workspace {
    pub fn summary(&self) -> WorkspaceSummary {
        let m = self.manifest.as_ref();
        WorkspaceSummary {
            id: self.id.clone(),
            path: self.path.clone(),
            name: self.name.clone(),
            description: m.and_then(|m| m.workspace.description.clone()),
            shared: m.is_some_and(|m| m.sharing.enabled),
            projects: m
                .map(|m| m.projects.iter().map(|p| p.name.clone()).collect())
                .unwrap_or_default(),
            environments: m
                .map(|m| m.environments.iter().map(|e| e.name.clone()).collect())
                .unwrap_or_default(),
            problem: self.problem.clone(),
        }
    }
}

/// A validated `aienv.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    pub workspace: WorkspaceInfo,
    pub sharing: Sharing,
    pub projects: Vec<Project>,
    /// Sorted by name.
    pub environments: Vec<Environment>,
}

impl Manifest {
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name == name)
    }
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The environments peers may see: all, or those `[sharing] environments` names.
    pub fn shared_environments(&self) -> impl Iterator<Item = &Environment> {
        let only = &self.sharing.environments;
        self.environments
            .iter()
            .filter(move |e| only.is_empty() || only.contains(&e.name))
    }

    /// When only some environments are shared: the paths (relative to the workspace) their share
    /// is made of: the manifest, the folders of the projects they use, and the files they name
    /// (Python requirements or lock, VM disk, kernel, initrd). `None`: the whole workspace.
    pub fn shared_paths(&self) -> Option<Vec<String>> {
        if self.sharing.environments.is_empty() {
            return None;
        }
        let mut paths = vec![crate::MANIFEST_FILE.to_string()];
        for env in self.shared_environments() {
            for p in env.projects.iter().filter_map(|p| self.project(p)) {
                paths.push(p.dir().to_string());
            }
            if let Some(py) = &env.python {
                // The table's own files and every variant's: a peer's GPU may pick another one.
                let sources = std::iter::once((&py.requirements, &py.lock))
                    .chain(py.variants.iter().map(|v| (&v.requirements, &v.lock)));
                for (requirements, lock) in sources {
                    paths.extend(requirements.iter().cloned());
                    if let Some(lock) = lock {
                        paths.push(lock.clone());
                        // `uv sync` needs the project file beside its lock.
                        let dir = std::path::Path::new(lock)
                            .parent()
                            .unwrap_or(std::path::Path::new(""));
                        paths.push(dir.join("pyproject.toml").to_string_lossy().into_owned());
                    }
                }
            }
            for file in [&env.disk, &env.kernel, &env.initrd].into_iter().flatten() {
                paths.push(file.clone());
            }
            if let Some(py) = &env.python {
                paths.extend(py.conda.iter().chain(&py.pixi).cloned());
            }
            // An adopted environment needs its source file and what its image is built from.
            if let Some(from) = &env.from {
                paths.push(from.split('#').next().unwrap_or(from).to_string());
            }
            if let Some(b) = &env.build {
                paths.push(b.dockerfile.clone());
                match b.context_dir().as_str() {
                    "" | "." => return None,
                    dir => paths.push(dir.to_string()),
                }
            }
        }
        paths.sort();
        paths.dedup();
        Some(paths)
    }
}

/// The `[workspace]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The `[sharing]` table: whether and how peers may see and clone this workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub access: Access,
    /// Patterns (gitignore style, relative to the workspace) that never leave this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Patterns that are shared even though a default exclusion (secrets, caches) matches them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Share only these environments, with the projects and files they use (empty: the whole
    /// workspace). Peers then see only these, and a clone's `aienv.toml` names only these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// What happens to Python environments in the workspace (venvs, conda prefixes).
    #[serde(default, skip_serializing_if = "PythonEnvs::is_default")]
    pub python_envs: PythonEnvs,
}

impl Default for Sharing {
    fn default() -> Self {
        Sharing {
            enabled: false,
            access: Access::Token,
            exclude: Vec::new(),
            include: Vec::new(),
            environments: Vec::new(),
            python_envs: PythonEnvs::Rebuild,
        }
    }
}

/// How a share treats the Python environments inside a workspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PythonEnvs {
    /// Left out: the clone rebuilds each environment from its `python` requirements or lock,
    /// fetching packages from the LAN. Paths, Python patch version and GPU may differ.
    #[default]
    Rebuild,
    /// Copied byte for byte; only works where the OS, architecture and interpreter path match.
    Copy,
}

impl PythonEnvs {
    fn is_default(&self) -> bool {
        *self == PythonEnvs::Rebuild
    }
}

/// Who may clone a shared workspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Any peer on the LAN.
    Open,
    /// Peers that present a token the owner created.
    #[default]
    Token,
    /// The owner approves each request.
    Approve,
}

/// A folder of the workspace (a `[[project]]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    /// Folder relative to the workspace root; defaults to the project's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRef>,
}

impl Project {
    /// The folder relative to the workspace root.
    pub fn dir(&self) -> &str {
        self.path.as_deref().unwrap_or(&self.name)
    }
}

/// The git remote and revision a project tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitRef {
    pub remote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
}

/// How an environment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    /// A command tree on this machine.
    Process,
    /// A container (Docker Engine API or Podman).
    Container,
    /// A virtual machine (QEMU).
    Vm,
}

impl EnvKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvKind::Process => "process",
            EnvKind::Container => "container",
            EnvKind::Vm => "vm",
        }
    }
}

/// An `[environment.NAME]` table: how projects run, what that needs, and the tools it offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The table's key in the manifest.
    pub name: String,
    pub kind: EnvKind,
    /// The file this environment is adopted from (a `devcontainer.json`, `compose.yaml#SERVICE`,
    /// `Dockerfile`, `environment.yml`, `pixi.toml`, `pyproject.toml`, `requirements.txt`),
    /// relative to the workspace. That file stays the source of truth: the node reads it again
    /// whenever it changes, and keys written in the manifest override what it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of the projects this environment uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// Environment variables set for everything the environment starts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Requirements::is_empty")]
    pub requires: Requirements,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// process: the Python environment to set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonSetup>,
    /// Commands run in order each time the environment starts, after its Python or container is
    /// up and before its command's tools; a failing one fails the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// Hugging Face models it uses (`ORG/NAME`, or `ORG/NAME@REVISION`): before it starts, the node
    /// brings each one missing here from a peer's cache (verified), so the tool finds it without
    /// a download from the hub.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// What a batch run produces (files or folders, relative to the workspace): `aienv submit`
    /// copies them back to the node that submitted it when the run ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// process: the main command; container: overrides the image's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// container: the image to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// container, vm: ports to publish (on 127.0.0.1 unless shared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// container: build the image from a Dockerfile (tagged `image` when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<ImageBuild>,
    /// container: which GPUs to pass through: "all" or a count such as "1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<String>,
    /// vm: the disk image, relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
    /// vm: a kernel to boot directly (relative to the workspace), with or without a disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// vm: the initial ramdisk for `kernel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<String>,
    /// vm: the kernel command line for `kernel` (default `console=ttyS0 panic=-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<String>,
    /// container, vm: memory limit or size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_gb: Option<f64>,
    /// container, vm: CPU limit or count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// The tools the environment offers (`[[environment.NAME.tool]]` in the manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

impl Environment {
    /// An environment with nothing but its name and kind.
    pub fn new(name: impl Into<String>, kind: EnvKind) -> Self {
        Environment {
            name: name.into(),
            kind,
            from: None,
            description: None,
            projects: Vec::new(),
            env: BTreeMap::new(),
            requires: Requirements::default(),
            fallback: None,
            python: None,
            setup: Vec::new(),
            outputs: Vec::new(),
            models: Vec::new(),
            command: None,
            image: None,
            build: None,
            ports: Vec::new(),
            gpus: None,
            disk: None,
            kernel: None,
            initrd: None,
            kernel_args: None,
            memory_gb: None,
            cpus: None,
            tools: Vec::new(),
        }
    }
}

/// How a container environment's image is built (`docker build`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageBuild {
    /// The Dockerfile, relative to the workspace.
    pub dockerfile: String,
    /// The build context folder, relative to the workspace; defaults to the Dockerfile's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Build arguments (`ARG` values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// The stage to build in a multi-stage Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl ImageBuild {
    /// The context folder relative to the workspace ("" for the workspace itself).
    pub fn context_dir(&self) -> String {
        match &self.context {
            Some(c) => c.trim_end_matches('/').trim_start_matches("./").to_string(),
            None => std::path::Path::new(&self.dockerfile)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

/// What an environment needs from the machine it runs on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Memory per GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_gb: Option<f64>,
    /// Minimum CUDA version, e.g. "12.1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gb: Option<f64>,
}

impl Requirements {
    pub fn is_empty(&self) -> bool {
        *self == Requirements::default()
    }
}

/// What changes when the machine lacks something the environment asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub when: FallbackWhen,
    /// Variables set (or overridden) when the fallback applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackWhen {
    /// The machine has fewer GPUs (or less VRAM) than `requires` asks for.
    NoGpu,
}

/// How a process environment's Python is set up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PythonSetup {
    /// Wanted interpreter version, e.g. "3.11".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A requirements file relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    /// A lock file relative to the workspace (e.g. `uv.lock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// With `requirements = "pyproject.toml"`: the optional dependency groups to install too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<String>,
    /// A conda environment file (`environment.yml`), built with micromamba, mamba or conda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conda: Option<String>,
    /// A pixi manifest (`pixi.toml`), installed with pixi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixi: Option<String>,
    /// CUDA, ROCm and CPU builds of the same set-up (`[[environment.NAME.python.variant]]`):
    /// the node installs the one that fits its GPUs and driver in place of `requirements`/`lock`.
    #[serde(default, rename = "variant", skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<PythonVariant>,
}

impl PythonSetup {
    /// The files the set-up is built from, relative to the workspace: its own, then each
    /// variant's (all of them, since another machine may pick another one).
    pub fn files(&self) -> impl Iterator<Item = &String> {
        [&self.requirements, &self.lock, &self.conda, &self.pixi]
            .into_iter()
            .flatten()
            .chain(self.variants.iter().flat_map(PythonVariant::files))
    }
}

/// One build of a Python set-up for one kind of machine, e.g. torch for CUDA 12.4.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PythonVariant {
    /// What messages call it ("cu124", "cpu").
    pub name: String,
    /// Needs an NVIDIA driver that supports at least this CUDA version, e.g. "12.4".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<String>,
    /// Needs an AMD GPU with ROCm, e.g. "6.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rocm: Option<String>,
    /// A requirements file relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<String>,
    /// A lock file relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl PythonVariant {
    /// The files it is built from, relative to the workspace.
    pub fn files(&self) -> impl Iterator<Item = &String> {
        [&self.requirements, &self.lock].into_iter().flatten()
    }
}

/// Something an environment offers a user: JupyterLab, TensorBoard, an inference endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    /// Command that starts the tool; may use `{port}`, `{token}`, `{host}`, `{workspace}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Fixed port; when absent and the command or URL uses `{port}`, a free one is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Link handed to the user; the same placeholders as `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Readiness>,
}

/// How to tell that a tool is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// An HTTP path that answers 2xx once the tool is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// A line the tool prints when it is ready (substring match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// The run does not wait for this tool (a forwarded port something may listen on later);
    /// its link is marked ready once it answers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}
