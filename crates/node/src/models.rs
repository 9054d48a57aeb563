//! Hugging Face models in the LAN cache: what this node serves its peers from the machine's hub
//! cache (`~/.cache/huggingface/hub`, or `HF_HUB_CACHE`), and what it pulls from them into the
//! same cache, so that a multi-GB download happens once per LAN and the hub client then finds the
//! model as if it had downloaded it.
//!
//! The peer-facing side ([`Node::served_models`], [`Node::served_model_revision`],
//! [`Node::served_model_blob`]) answers only who [`Node::authorize_cache`] lets in. The pulling
//! side is in `models/pull.rs`: it asks the peers, then fetches each missing file as a job whose
//! progress the API shows.

mod pull;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use aienv_lancache::hf::{HfCache, HfError, RepoId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use aienv_lancache::hf::{RepoFile, RepoKind, RepoSummary, Revision};

use crate::access::Requester;
use crate::lan_cache::Part;
use crate::{Node, NodeError, Result, lock};

/// What `GET /models` shows: this machine's models and what each peer offers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelsOverview {
    /// The hub cache this node reads and fills.
    #[schema(value_type = String)]
    pub cache: PathBuf,
    /// Whether this node serves its models to peers and pulls from them (`[cache] models`).
    pub enabled: bool,
    pub local: Vec<RepoSummary>,
    /// One entry per peer asked (none when `enabled` is false).
    pub peers: Vec<PeerModels>,
}

/// The models one peer offers, or why it offers none to this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeerModels {
    pub peer_id: String,
    pub peer_name: String,
    pub models: Vec<RepoSummary>,
    /// Why the list is empty when the peer did not answer with one (it refused, or is away).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What to pull (`POST /models/pull`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPullRequest {
    /// The repo id, `ORG/NAME`.
    pub repo: String,
    /// A branch, tag or commit (default `main`).
    #[serde(default)]
    pub revision: Option<String>,
    /// Pull from this peer (id or name) only; by default the first peer that has it.
    #[serde(default)]
    pub from: Option<String>,
    /// `model` (the default) or `dataset`.
    #[serde(default)]
    pub kind: Option<RepoKind>,
}

/// A pull of one revision of a repo from a peer into this machine's hub cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelPull {
    pub id: String,
    /// `ORG/NAME`.
    pub repo: String,
    pub kind: RepoKind,
    /// What was asked for (`main`).
    pub revision: String,
    /// The commit it is on the peer.
    pub commit: String,
    pub peer_id: String,
    pub peer_name: String,
    pub state: PullState,
    /// The files of the revision.
    pub files: usize,
    /// Of those, fetched from the peer, and found here already.
    pub files_fetched: usize,
    pub files_present: usize,
    /// The bytes of the files to fetch, and how many of them arrived (verified or on the way).
    pub bytes_total: u64,
    pub bytes_fetched: u64,
    /// The snapshot folder the files appear in (`HUB/models--ORG--NAME/snapshots/COMMIT`).
    #[schema(value_type = String)]
    pub snapshot: PathBuf,
    /// Why it failed, in a sentence that says what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A stable code for `error`: `hash_mismatch`, `peer_refused`, `peer_unreachable`, `io_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullState {
    Running,
    /// Every file is here, verified, and the snapshot and ref point at them.
    Done,
    Failed,
}

/// The model pulls of this node's lifetime, by id.
#[derive(Debug, Default)]
pub(crate) struct Pulls(Mutex<HashMap<String, ModelPull>>);

impl Node {
    /// The hub cache of this machine, as the hub client would find it from the node's
    /// environment.
    pub fn hf_cache(&self) -> Result<HfCache> {
        HfCache::locate().ok_or_else(|| {
            NodeError::NotFound(
                "cannot tell where the Hugging Face cache is (no home folder); set HF_HUB_CACHE \
                 for the node"
                    .into(),
            )
        })
    }

    /// The models this node has (for its own user; peers use [`Node::served_models`]).
    pub fn local_models(&self) -> Result<Vec<RepoSummary>> {
        self.hf_cache()?.repos().map_err(from_hf)
    }

    /// The models this node offers `who`, if the cache lets it in.
    pub fn served_models(&self, who: &Requester) -> Result<Vec<RepoSummary>> {
        self.authorize_cache(Part::Models, who, "model list")?;
        self.local_models()
    }

    /// The files of `revision` of the repo in cache folder `id` (`models--ORG--NAME`), for
    /// `who`.
    pub fn served_model_revision(
        &self,
        who: &Requester,
        id: &str,
        revision: &str,
    ) -> Result<Revision> {
        self.authorize_cache(Part::Models, who, "model files")?;
        let repo = repo_of_folder(id)?;
        self.hf_cache()?.revision(&repo, revision).map_err(from_hf)
    }

    /// Where blob `hash` of the repo in cache folder `id` is, and its size, for `who`.
    pub fn served_model_blob(
        &self,
        who: &Requester,
        id: &str,
        hash: &str,
    ) -> Result<(PathBuf, u64)> {
        self.authorize_cache(Part::Models, who, "model blob")?;
        let repo = repo_of_folder(id)?;
        self.hf_cache()?.blob(&repo, hash).map_err(from_hf)
    }

    /// This node's models, and what each peer offers (asked all at once).
    pub async fn models_overview(&self) -> Result<ModelsOverview> {
        let cache = self.hf_cache()?;
        let enabled = self.inner.config.cache.models;
        let local = {
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || cache.repos())
                .await
                .map_err(|e| {
                    NodeError::io("listing the Hugging Face cache", std::io::Error::other(e))
                })?
                .map_err(from_hf)?
        };
        let peers = if enabled {
            let asks = self.peers().into_iter().map(|peer| async move {
                let (models, error) = match self.peer_models(&peer).await {
                    Ok(m) => (m, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                PeerModels {
                    peer_id: peer.id,
                    peer_name: peer.name,
                    models,
                    error,
                }
            });
            futures_util::future::join_all(asks).await
        } else {
            Vec::new()
        };
        Ok(ModelsOverview {
            cache: cache.root().to_path_buf(),
            enabled,
            local,
            peers,
        })
    }

    /// The pulls of this node's lifetime, newest first.
    pub fn model_pulls(&self) -> Vec<ModelPull> {
        let mut all: Vec<ModelPull> = lock(&self.inner.model_pulls.0).values().cloned().collect();
        all.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then(b.id.cmp(&a.id)));
        all
    }

    pub fn model_pull(&self, id: &str) -> Result<ModelPull> {
        lock(&self.inner.model_pulls.0)
            .get(id)
            .cloned()
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "no model pull {id:?} (pulls are kept while the node runs); see `aienv model pulls`"
                ))
            })
    }

    /// Changes pull `id` in place.
    fn update_pull(&self, id: &str, change: impl FnOnce(&mut ModelPull)) {
        if let Some(p) = lock(&self.inner.model_pulls.0).get_mut(id) {
            change(p);
        }
    }
}

/// The repo a peer route names by its cache folder.
fn repo_of_folder(id: &str) -> Result<RepoId> {
    RepoId::from_folder(id).ok_or_else(|| {
        NodeError::InvalidRequest(format!(
            "{id:?} is not a repo's cache folder name (`models--ORG--NAME` or \
             `datasets--ORG--NAME`)"
        ))
    })
}

fn from_hf(e: HfError) -> NodeError {
    match e {
        HfError::NotFound(m) => NodeError::NotFound(m),
        HfError::Invalid(m) => NodeError::InvalidRequest(m),
        HfError::Io(context, source) => NodeError::Io { context, source },
        other => NodeError::Changed(other.to_string()),
    }
}
