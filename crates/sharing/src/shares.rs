//! What a node shares: the environments of its workspaces whose `[sharing] enabled = true`.

use aienv_core::{Access, EnvKind, Fallback, Requirements, Workspace};
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::SizeCache;

/// `GET /api/v1/shares`: what a node offers its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShareList {
    pub node: ShareOwner,
    /// Changes whenever anything peers show changes; announced over discovery.
    pub revision: String,
    pub workspaces: Vec<SharedWorkspace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShareOwner {
    /// The node's instance id.
    pub id: String,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedWorkspace {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub access: Access,
    /// Bytes on disk in the workspace folder (measured at most once a minute).
    pub size_bytes: u64,
    pub environments: Vec<SharedEnvironment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SharedEnvironment {
    pub name: String,
    pub kind: EnvKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub requires: Requirements,
    /// What changes when a machine lacks a GPU it asks for (so a peer can tell it still fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Names of its tools.
    #[serde(default)]
    pub tools: Vec<String>,
}

impl ShareList {
    /// The share list of `workspaces` (only shared ones with a valid manifest count).
    pub fn of(owner: ShareOwner, workspaces: &[Workspace], sizes: &SizeCache) -> ShareList {
        let mut shared: Vec<SharedWorkspace> = workspaces
            .iter()
            .filter_map(|w| {
                let m = w.manifest.as_ref().filter(|m| m.sharing.enabled)?;
                Some(SharedWorkspace {
                    id: w.id.clone(),
                    name: w.name.clone(),
                    description: m.workspace.description.clone(),
                    access: m.sharing.access,
                    size_bytes: match m.shared_paths() {
                        None => sizes.size_of(&w.path),
                        // Some environments only: what they use, each place counted once.
                        Some(paths) => paths
                            .iter()
                            .filter(|p| {
                                !paths.iter().any(|q| q != *p && Path::new(p).starts_with(q))
                            })
                            .map(|p| sizes.size_of(&w.path.join(p)))
                            .sum(),
                    },
                    environments: m
                        .shared_environments()
                        .map(|e| SharedEnvironment {
                            name: e.name.clone(),
                            kind: e.kind,
                            description: e.description.clone(),
                            requires: e.requires.clone(),
                            fallback: e.fallback.clone(),
                            tools: e.tools.iter().map(|t| t.name.clone()).collect(),
                        })
                        .collect(),
                })
            })
            .collect();
        shared.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        let revision = revision(&owner, &shared);
        ShareList {
            node: owner,
            revision,
            workspaces: shared,
        }
    }

    /// How many environments are shared.
    pub fn environment_count(&self) -> u32 {
        self.workspaces
            .iter()
            .map(|w| w.environments.len() as u32)
            .sum()
    }
}

/// A fingerprint of what peers would show. Sizes are left out: they drift with every file
/// written and would make peers refetch for nothing.
fn revision(owner: &ShareOwner, shared: &[SharedWorkspace]) -> String {
    let without_sizes: Vec<SharedWorkspace> = shared
        .iter()
        .map(|w| SharedWorkspace {
            size_bytes: 0,
            ..w.clone()
        })
        .collect();
    let bytes = serde_json::to_vec(&(owner, without_sizes)).expect("share lists serialise");
    // FNV-1a, 64 bits: stable across processes and versions, which std's hasher does not promise.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}
