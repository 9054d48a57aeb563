//! The manifest as serde reads it, with the position of each value that validation may complain
//! about. Unknown keys are refused here (`deny_unknown_fields`), with toml's own position.
//!
//! Leaf tables with no rules beyond their types (requirements, git, readiness...) reuse the model
//! types directly.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{
    Access, EnvKind, Fallback, GitRef, ImageBuild, PythonSetup, Readiness, Requirements,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub workspace: Option<Spanned<RawWorkspace>>,
    pub sharing: Option<RawSharing>,
    #[serde(default)]
    pub project: Vec<Spanned<RawProject>>,
    #[serde(default)]
    pub environment: BTreeMap<String, Spanned<RawEnvironment>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkspace {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSharing {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    #[serde(default)]
    pub environments: Vec<Spanned<String>>,
    #[serde(default)]
    pub python_envs: crate::model::PythonEnvs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub name: Spanned<String>,
    pub path: Option<Spanned<String>>,
    pub description: Option<String>,
    pub git: Option<GitRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnvironment {
    pub kind: EnvKind,
    pub from: Option<Spanned<String>>,
    pub description: Option<String>,
    #[serde(default)]
    pub projects: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub requires: Option<Spanned<Requirements>>,
    pub fallback: Option<Fallback>,
    pub python: Option<Spanned<PythonSetup>>,
    pub setup: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
    pub command: Option<String>,
    pub image: Option<Spanned<String>>,
    pub build: Option<Spanned<ImageBuild>>,
    pub ports: Option<Spanned<Vec<u16>>>,
    pub gpus: Option<Spanned<String>>,
    pub disk: Option<Spanned<String>>,
    pub kernel: Option<Spanned<String>>,
    pub initrd: Option<Spanned<String>>,
    pub kernel_args: Option<Spanned<String>>,
    pub memory_gb: Option<Spanned<f64>>,
    pub cpus: Option<Spanned<u32>>,
    #[serde(default)]
    pub tool: Vec<Spanned<RawTool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTool {
    pub name: Spanned<String>,
    pub command: Option<Spanned<String>>,
    pub port: Option<u16>,
    pub url: Option<Spanned<String>>,
    pub ready: Option<Readiness>,
}
