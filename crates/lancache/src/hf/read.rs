//! Reading the cache: its repos, a revision's files, a blob to serve.
//!
//! Only what `huggingface_hub` would make is listed: a snapshot entry counts when it is a link
//! into its own repo's `blobs/` to a file named by a hash. Anything else found there (a regular
//! file, as caches on systems without symlinks hold; a link elsewhere) is left out, so a listing
//! never offers a file outside the repo.

use std::collections::BTreeMap;
use std::path::Path;

use super::names::{BlobKind, RepoId, check_ref, is_commit};
use super::{HfCache, HfError, RepoFile, RepoSummary, Revision};

/// How deep a snapshot's or the refs' folders may go: a guard against link loops and pathology.
const MAX_DEPTH: usize = 32;

impl HfCache {
    /// Every repo with at least one snapshot, by kind and name. A cache that does not exist yet
    /// has none.
    pub fn repos(&self) -> Result<Vec<RepoSummary>, HfError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, "cannot read", e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(repo) = entry.file_name().to_str().and_then(RepoId::from_folder) else {
                continue;
            };
            if let Some(summary) = self.summary(&repo) {
                out.push(summary);
            }
        }
        out.sort_by(|a, b| (a.kind, &a.repo).cmp(&(b.kind, &b.repo)));
        Ok(out)
    }

    fn summary(&self, repo: &RepoId) -> Option<RepoSummary> {
        let dir = self.repo_dir(repo);
        let mut revisions: Vec<String> = read_names(&dir.join("snapshots"))
            .into_iter()
            .filter(|c| is_commit(c))
            .collect();
        if revisions.is_empty() {
            return None;
        }
        revisions.sort();
        let mut refs = BTreeMap::new();
        collect_refs(&dir.join("refs"), "", 0, &mut refs);
        let size = read_names(&dir.join("blobs"))
            .iter()
            .filter(|n| BlobKind::of(n).is_some())
            .filter_map(|n| std::fs::metadata(dir.join("blobs").join(n)).ok())
            .map(|m| m.len())
            .sum();
        Some(RepoSummary {
            id: repo.folder(),
            repo: repo.name().to_string(),
            kind: repo.kind(),
            refs,
            revisions,
            size,
        })
    }

    /// The commit `revision` (a ref such as `main`, or a commit with a snapshot here) is.
    pub fn resolve(&self, repo: &RepoId, revision: &str) -> Result<String, HfError> {
        let dir = self.repo_dir(repo);
        if is_commit(revision) && dir.join("snapshots").join(revision).is_dir() {
            return Ok(revision.to_string());
        }
        check_ref(revision)?;
        let text = std::fs::read_to_string(dir.join("refs").join(revision)).ok();
        match text.map(|t| t.trim().to_string()) {
            Some(commit) if is_commit(&commit) => Ok(commit),
            _ => Err(HfError::NotFound(format!(
                "{repo} has no revision {revision:?} in the Hugging Face cache at {}",
                self.root.display()
            ))),
        }
    }

    /// The files of `revision` of `repo`, by path.
    pub fn revision(&self, repo: &RepoId, revision: &str) -> Result<Revision, HfError> {
        let commit = self.resolve(repo, revision)?;
        let snapshot = self.snapshot_dir(repo, &commit);
        if !snapshot.is_dir() {
            return Err(HfError::NotFound(format!(
                "{repo}: {revision:?} points at commit {commit}, which has no snapshot in {}",
                self.root.display()
            )));
        }
        let blobs = self.repo_dir(repo).join("blobs");
        let mut files = Vec::new();
        if let Ok(blobs) = blobs.canonicalize() {
            walk(&snapshot, "", &blobs, 0, &mut files);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Revision {
            id: repo.folder(),
            repo: repo.name().to_string(),
            kind: repo.kind(),
            revision: revision.to_string(),
            commit,
            files,
        })
    }

    /// The blob `hash` of `repo` and its size, to serve: a regular file named by a hash.
    pub fn blob(&self, repo: &RepoId, hash: &str) -> Result<(std::path::PathBuf, u64), HfError> {
        if BlobKind::of(hash).is_none() {
            return Err(HfError::Invalid(format!(
                "{hash:?} is not a blob name (40 or 64 lowercase hex digits)"
            )));
        }
        let path = self.repo_dir(repo).join("blobs").join(hash);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok((path, m.len())),
            _ => Err(HfError::NotFound(format!(
                "{repo} has no blob {hash} in the Hugging Face cache at {}",
                self.root.display()
            ))),
        }
    }

    /// Whether the blob of `file` is here already, with the listed size. Its bytes are not
    /// hashed again: what is in the cache was checked when it came (here or by the hub client).
    pub fn has_blob(&self, repo: &RepoId, file: &RepoFile) -> bool {
        self.blob(repo, &file.blob)
            .is_ok_and(|(_, size)| size == file.size)
    }
}

/// Adds the files under `dir` (a snapshot, or a folder in one) whose links resolve into `blobs`.
fn walk(dir: &Path, prefix: &str, blobs: &Path, depth: usize, out: &mut Vec<RepoFile>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), &format!("{path}/"), blobs, depth + 1, out);
        } else if kind.is_symlink()
            && let Ok(target) = entry.path().canonicalize()
            && target.parent() == Some(blobs)
            && let Some(blob) = target.file_name().and_then(|n| n.to_str())
            && BlobKind::of(blob).is_some()
            && let Ok(meta) = std::fs::metadata(&target)
            && meta.is_file()
        {
            out.push(RepoFile {
                path,
                blob: blob.to_string(),
                size: meta.len(),
            });
        }
    }
}

/// The refs under `dir` (`main`, `refs/pr/1`...) and the commits they hold.
fn collect_refs(dir: &Path, prefix: &str, depth: usize, out: &mut BTreeMap<String, String>) {
    if depth > MAX_DEPTH {
        return;
    }
    for name in read_names(dir) {
        let path = dir.join(&name);
        let full = format!("{prefix}{name}");
        if path.is_dir() {
            collect_refs(&path, &format!("{full}/"), depth + 1, out);
        } else if let Ok(text) = std::fs::read_to_string(&path)
            && is_commit(text.trim())
        {
            out.insert(full, text.trim().to_string());
        }
    }
}

/// The names (UTF-8 ones) in `dir`; none when it cannot be read.
fn read_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn io(path: &Path, what: &str, e: std::io::Error) -> HfError {
    HfError::Io(format!("{what} {}", path.display()), e)
}
