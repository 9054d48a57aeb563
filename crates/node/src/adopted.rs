//! Manifests with adopted environments, and proposals for folders without a manifest.
//!
//! Every manifest the node puts into effect goes through [`load`] or [`parse`]: the core parses
//! and validates `aienv.toml`, then `aienv-adopt` fills in the environments that say `from =
//! "..."` from their files. The watcher follows those files too, so an edit of a
//! `devcontainer.json` reaches the environment like an edit of `aienv.toml` does.

use std::path::{Path, PathBuf};

use aienv_core::manifest::{self, MANIFEST_FILE};
use aienv_core::{Manifest, ManifestError, Workspace};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{NodeError, Result};
use crate::{Node, lock};

/// Reads `DIR/aienv.toml` and the files its adopted environments come from.
pub(crate) fn load(dir: &Path) -> std::result::Result<Manifest, ManifestError> {
    aienv_adopt::resolve_manifest(dir, manifest::load(dir)?)
}

/// Parses manifest text meant for `DIR/aienv.toml`, adopted environments filled in.
pub(crate) fn parse(text: &str, dir: &Path) -> std::result::Result<Manifest, ManifestError> {
    aienv_adopt::resolve_manifest(dir, manifest::parse(text, &dir.join(MANIFEST_FILE))?)
}

/// What `aienv workspace add` shows for a folder without an `aienv.toml`: the environments it
/// would adopt, and the manifest accepting them writes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceProposal {
    #[schema(value_type = String)]
    pub path: PathBuf,
    #[serde(flatten)]
    pub proposal: aienv_adopt::Proposal,
    /// The `aienv.toml` that accepting writes (it may be edited before).
    pub manifest: String,
}

impl Node {
    /// Proposes environments for the folder at `path` (which has no `aienv.toml` yet).
    pub fn propose_workspace(&self, path: &Path) -> Result<WorkspaceProposal> {
        if !path.is_absolute() {
            return Err(NodeError::InvalidRequest(format!(
                "the path {:?} is relative; the node needs an absolute path",
                path.display()
            )));
        }
        if !path.is_dir() {
            return Err(NodeError::NotFound(format!(
                "{} is not a folder",
                path.display()
            )));
        }
        if path.join(MANIFEST_FILE).exists() {
            return Err(NodeError::Exists(format!(
                "{} already has an aienv.toml; register it with `aienv workspace add {}`",
                path.display(),
                path.display()
            )));
        }
        let proposal = aienv_adopt::propose(path);
        let manifest = aienv_adopt::render(path, &proposal);
        Ok(WorkspaceProposal {
            path: path.to_path_buf(),
            proposal,
            manifest,
        })
    }

    /// Follows the files the workspace's adopted environments are read from.
    pub(crate) fn follow_sources(&self, ws: &Workspace) {
        let files: Vec<PathBuf> = ws
            .manifest
            .as_ref()
            .map(aienv_adopt::followed_files)
            .unwrap_or_default()
            .into_iter()
            .map(|f| ws.path.join(f))
            .collect();
        if let Some(w) = lock(&self.inner.watcher).as_mut()
            && let Err(e) = w.follow(&ws.path, &files)
        {
            tracing::warn!(
                "cannot watch the files adopted by {} ({e}); their edits take effect at the next start",
                ws.name
            );
        }
    }
}
