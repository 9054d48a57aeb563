//! The Hugging Face hub cache (`~/.cache/huggingface/hub`), as this node serves it to peers and
//! fills it from them. The layout is the one `huggingface_hub` writes, so that a model pulled
//! from a peer is found by `from_pretrained` as if it had been downloaded:
//!
//! ```text
//! HUB/models--ORG--NAME/                 (datasets--ORG--NAME for datasets)
//!     blobs/HASH                         the files' bytes, named by their hash
//!     refs/main                          a commit hash (no newline)
//!     snapshots/COMMIT/config.json    -> ../../blobs/HASH
//!     snapshots/COMMIT/sub/model.bin  -> ../../../blobs/HASH
//! ```
//!
//! A blob named by 64 hex digits is an LFS file and the name is the SHA-256 of its bytes; one
//! named by 40 is a plain git file and the name is its git blob id (SHA-1 of `blob LEN\0` and the
//! bytes). Both are checked while the bytes arrive ([`IncomingBlob`]), before anything is kept.
//!
//! - `names.rs`: repo ids, hashes, commits, refs and paths, and the checks that keep a hostile
//!   listing from naming anything outside the repo's folder.
//! - `read.rs`: listing repos and a revision's files, finding a blob to serve.
//! - `write.rs`: blobs written verified, snapshot links, refs.

mod names;
mod read;
mod write;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use names::{BlobKind, RepoId, RepoKind, check_path, check_ref, is_commit};
pub use write::IncomingBlob;

/// A repo of the cache, as the peer listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoSummary {
    /// The cache folder's name (`models--ORG--NAME`): what the peer routes name the repo by.
    pub id: String,
    /// The repo id as the hub writes it (`ORG/NAME`).
    pub repo: String,
    pub kind: RepoKind,
    /// Each ref (`main`, ...) and the commit it points at.
    pub refs: BTreeMap<String, String>,
    /// The commits this cache has a snapshot of.
    pub revisions: Vec<String>,
    /// The bytes of all its blobs.
    pub size: u64,
}

/// One revision of a repo: the files of its snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revision {
    /// The cache folder's name (`models--ORG--NAME`).
    pub id: String,
    /// `ORG/NAME`.
    pub repo: String,
    pub kind: RepoKind,
    /// What was asked for: a ref (`main`) or a commit.
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    pub files: Vec<RepoFile>,
}

/// A file of a snapshot and the blob that holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoFile {
    /// Relative to the snapshot, `/`-separated (`config.json`, `onnx/model.onnx`).
    pub path: String,
    /// The blob's name: SHA-256 (64 hex digits) or git blob SHA-1 (40).
    pub blob: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// No such repo, revision or blob in this cache.
    #[error("{0}")]
    NotFound(String),
    /// A name, hash or path that cannot be right (and may be an attempt to leave the repo).
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{path}: the bytes received do not match the hash its blob is named by (expected \
         {expected}, got {got}); nothing was kept. The sender's copy is damaged or was changed: \
         pull from another peer, or have its owner download the model again"
    )]
    HashMismatch {
        path: String,
        expected: String,
        got: String,
    },
    #[error(
        "{path}: {got} bytes arrived where {expected} were listed; nothing was kept. Pull again \
         (the sender stopped early, or its file changed)"
    )]
    SizeMismatch {
        path: String,
        expected: u64,
        got: u64,
    },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// A Hugging Face hub cache folder. Nothing is created until something is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfCache {
    root: PathBuf,
}

impl HfCache {
    /// The cache at `root` (the `hub` folder itself).
    pub fn at(root: impl Into<PathBuf>) -> HfCache {
        HfCache { root: root.into() }
    }

    /// The cache `huggingface_hub` uses for this process's environment, found as it finds it:
    /// `HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. `None` without a home.
    pub fn locate() -> Option<HfCache> {
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(PathBuf::from);
        locate_with(|name| std::env::var_os(name), home).map(HfCache::at)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of `repo` (which may not exist).
    pub fn repo_dir(&self, repo: &RepoId) -> PathBuf {
        self.root.join(repo.folder())
    }

    /// Where the files of `commit` of `repo` are (or will be).
    pub fn snapshot_dir(&self, repo: &RepoId, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }
}

/// [`HfCache::locate`] over given variables and home, for tests.
pub fn locate_with(
    var: impl Fn(&str) -> Option<OsString>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    let set = |name: &str| {
        var(name)
            .filter(|v| !v.is_empty())
            .map(|v| expand_home(PathBuf::from(v), home.as_deref()))
    };
    if let Some(p) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
        return Some(p);
    }
    if let Some(p) = set("HF_HOME") {
        return Some(p.join("hub"));
    }
    let cache = set("XDG_CACHE_HOME").or_else(|| home.as_ref().map(|h| h.join(".cache")))?;
    Some(cache.join("huggingface").join("hub"))
}

/// `~/x` as the shell would read it (`huggingface_hub` expands `~` in these variables too).
fn expand_home(p: PathBuf, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p,
    }
}
