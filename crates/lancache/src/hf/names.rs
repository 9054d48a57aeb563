//! The names of the hub cache, checked: repo ids and their folders, blob hashes, commits, refs
//! and snapshot paths. Whatever a peer sends passes through here before it names a file, so a
//! listing with `..`, an absolute path or a hash that is not hex cannot reach outside the repo.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::HfError;

/// What a repo holds; the cache keeps each kind under its own folder prefix.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RepoKind {
    #[default]
    Model,
    Dataset,
}

impl RepoKind {
    /// The folder prefix (`models--ORG--NAME`).
    fn prefix(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

/// A repo on the hub: its kind and its id (`ORG/NAME`, or `NAME` for the few without an org).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoId {
    kind: RepoKind,
    name: String,
}

impl RepoId {
    /// Checks `name` as the hub does: one or two parts of letters, digits, `-`, `_` and `.`,
    /// without `--` or `..` (the cache folder's name uses `--` as the separator).
    pub fn new(kind: RepoKind, name: &str) -> Result<RepoId, HfError> {
        let bad = |why: &str| {
            HfError::Invalid(format!(
                "{name:?} is not a Hugging Face repo id ({why}); write it as ORG/NAME, e.g. \
                 \"sentence-transformers/all-MiniLM-L6-v2\""
            ))
        };
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() > 2 {
            return Err(bad("more than one `/`"));
        }
        for part in &parts {
            if part.is_empty() || part.len() > 96 {
                return Err(bad("an empty or overlong part"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(bad("only letters, digits, `-`, `_` and `.` are allowed"));
            }
            if part.contains("--") || part.contains("..") {
                return Err(bad("`--` and `..` are not allowed"));
            }
            if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
                return Err(bad("a part may not start or end with `-` or `.`"));
            }
        }
        Ok(RepoId {
            kind,
            name: name.to_string(),
        })
    }

    /// The repo a cache folder holds (`models--ORG--NAME`), or `None` for any other folder.
    pub fn from_folder(folder: &str) -> Option<RepoId> {
        let (prefix, rest) = folder.split_once("--")?;
        let kind = [RepoKind::Model, RepoKind::Dataset]
            .into_iter()
            .find(|k| k.prefix() == prefix)?;
        RepoId::new(kind, &rest.replace("--", "/")).ok()
    }

    /// The cache folder's name: `models--ORG--NAME`.
    pub fn folder(&self) -> String {
        format!("{}--{}", self.kind.prefix(), self.name.replace('/', "--"))
    }

    pub fn kind(&self) -> RepoKind {
        self.kind
    }

    /// `ORG/NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RepoKind::Model => write!(f, "{}", self.name),
            RepoKind::Dataset => write!(f, "dataset {}", self.name),
        }
    }
}

/// How a blob's name was made from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// An LFS file: the SHA-256 of the bytes (64 hex digits).
    Sha256,
    /// A plain git file: SHA-1 of `blob LEN\0` and the bytes (40 hex digits).
    GitSha1,
}

impl BlobKind {
    /// The kind of hash `name` is, or `None` if it is no blob name (not lowercase hex of 40 or 64
    /// digits: `.incomplete` files, hostile names).
    pub fn of(name: &str) -> Option<BlobKind> {
        if !is_lower_hex(name) {
            return None;
        }
        match name.len() {
            64 => Some(BlobKind::Sha256),
            40 => Some(BlobKind::GitSha1),
            _ => None,
        }
    }
}

/// Whether `s` is a commit hash as the cache names snapshots (40 lowercase hex digits).
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && is_lower_hex(s)
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The parts of a snapshot path (`onnx/model.onnx`), refused when it could leave the snapshot:
/// empty, absolute, with `.` or `..` parts, backslashes or NUL.
pub fn check_path(path: &str) -> Result<Vec<&str>, HfError> {
    let bad = |why: &str| {
        HfError::Invalid(format!(
            "{path:?} is not a file path inside a snapshot ({why}); the listing that named it \
             cannot be used"
        ))
    };
    if path.is_empty() || path.len() > 4096 {
        return Err(bad("empty or overlong"));
    }
    if path.contains(['\\', '\0']) {
        return Err(bad("backslash or NUL"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad("absolute, or with an empty, `.` or `..` part"));
    }
    Ok(parts)
}

/// Checks a ref's name (`main`, `refs/pr/1`): parts of letters, digits, `-`, `_`, `.`, none of
/// them `.` or `..`.
pub fn check_ref(name: &str) -> Result<(), HfError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|p| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(HfError::Invalid(format!(
            "{name:?} is not a revision: give a branch or tag (`main`) or a commit hash"
        )))
    }
}
