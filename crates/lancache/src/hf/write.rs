//! Writing the cache: blobs that are kept only when their bytes match their name, the snapshot
//! links that make a revision's files, and refs.
//!
//! A blob is written to `blobs/HASH.incomplete` (the name `huggingface_hub` uses for its own
//! partial downloads) and renamed into place only after its hash checked out; a failed or
//! dropped write removes the partial file, so the cache never holds bytes it did not verify.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::names::{BlobKind, RepoId, check_path, check_ref, is_commit};
use super::read::io;
use super::{HfCache, HfError, RepoFile};

/// A blob being written; see [`HfCache::incoming`].
#[derive(Debug)]
pub struct IncomingBlob {
    file: File,
    hasher: Hasher,
    written: u64,
    expected_size: u64,
    partial: PathBuf,
    target: PathBuf,
    /// The snapshot path it is for, for messages.
    path: String,
    blob: String,
}

#[derive(Debug)]
enum Hasher {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl HfCache {
    /// Starts writing the blob of `file` (whose name and size a listing gave).
    pub fn incoming(&self, repo: &RepoId, file: &RepoFile) -> Result<IncomingBlob, HfError> {
        check_path(&file.path)?;
        let hasher = match BlobKind::of(&file.blob) {
            Some(BlobKind::Sha256) => Hasher::Sha256(Sha256::new()),
            Some(BlobKind::GitSha1) => {
                // A git blob id covers a header with the length, then the bytes.
                let mut h = Sha1::new();
                h.update(format!("blob {}\0", file.size).as_bytes());
                Hasher::GitSha1(h)
            }
            None => {
                return Err(HfError::Invalid(format!(
                    "{}: {:?} is not a blob name (40 or 64 lowercase hex digits); the listing \
                     that named it cannot be used",
                    file.path, file.blob
                )));
            }
        };
        let dir = self.repo_dir(repo).join("blobs");
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, "cannot create", e))?;
        let target = dir.join(&file.blob);
        let partial = dir.join(format!("{}.incomplete", file.blob));
        let out = File::create(&partial).map_err(|e| io(&partial, "cannot write", e))?;
        Ok(IncomingBlob {
            file: out,
            hasher,
            written: 0,
            expected_size: file.size,
            partial,
            target,
            path: file.path.clone(),
            blob: file.blob.clone(),
        })
    }

    /// Writes the blob of `file` from `bytes`, verified; returns how many bytes it holds.
    pub fn insert(
        &self,
        repo: &RepoId,
        file: &RepoFile,
        mut bytes: impl Read,
    ) -> Result<u64, HfError> {
        let mut incoming = self.incoming(repo, file)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = bytes
                .read(&mut buf)
                .map_err(|e| HfError::Io(format!("{}: the bytes broke off", file.path), e))?;
            if n == 0 {
                break;
            }
            incoming.write(&buf[..n])?;
        }
        incoming.finish()
    }

    /// Makes `snapshots/COMMIT/PATH` a relative link to `blobs/HASH`, as `huggingface_hub`
    /// does (a copy where the system has no symlinks). The blob must be here already.
    pub fn link(&self, repo: &RepoId, commit: &str, file: &RepoFile) -> Result<(), HfError> {
        if !is_commit(commit) {
            return Err(HfError::Invalid(format!(
                "{commit:?} is not a commit hash (40 lowercase hex digits)"
            )));
        }
        let parts = check_path(&file.path)?;
        let (blob, _) = self.blob(repo, &file.blob)?;
        let link = self.snapshot_dir(repo, commit).join(&file.path);
        let dir = link.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io(dir, "cannot create", e))?;
        // From snapshots/COMMIT/a/b: up through a, COMMIT and snapshots to the repo's folder.
        let target = format!("{}blobs/{}", "../".repeat(parts.len() + 1), file.blob);
        place_link(&target, &blob, &link)
    }

    /// Points ref `name` (`main`) at `commit`.
    pub fn set_ref(&self, repo: &RepoId, name: &str, commit: &str) -> Result<(), HfError> {
        check_ref(name)?;
        if !is_commit(commit) {
            return Err(HfError::Invalid(format!(
                "{commit:?} is not a commit hash (40 lowercase hex digits)"
            )));
        }
        let path = self.repo_dir(repo).join("refs").join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, "cannot create", e))?;
        }
        // No newline: the hub client writes the bare hash and compares it as read.
        aienv_core::fsutil::atomic_write(&path, commit.as_bytes())
            .map_err(|e| io(&path, "cannot write", e))
    }
}

impl IncomingBlob {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), HfError> {
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::GitSha1(h) => h.update(chunk),
        }
        self.written += chunk.len() as u64;
        self.file
            .write_all(chunk)
            .map_err(|e| io(&self.partial, "cannot write", e))
    }

    /// Keeps the blob if its size and hash are the listed ones; returns its size. Otherwise the
    /// partial file is removed and the error says which file, what was expected and what came.
    pub fn finish(self) -> Result<u64, HfError> {
        if self.written != self.expected_size {
            return Err(HfError::SizeMismatch {
                path: self.path.clone(),
                expected: self.expected_size,
                got: self.written,
            });
        }
        let got = match &self.hasher {
            Hasher::Sha256(h) => hex(&h.clone().finalize()),
            Hasher::GitSha1(h) => hex(&h.clone().finalize()),
        };
        if got != self.blob {
            return Err(HfError::HashMismatch {
                path: self.path.clone(),
                expected: self.blob.clone(),
                got,
            });
        }
        self.file
            .sync_all()
            .map_err(|e| io(&self.partial, "cannot write", e))?;
        std::fs::rename(&self.partial, &self.target)
            .map_err(|e| io(&self.target, "cannot keep", e))?;
        Ok(self.written)
    }
}

impl Drop for IncomingBlob {
    fn drop(&mut self) {
        // After `finish` renamed it this finds nothing; otherwise the unverified bytes go.
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// Puts a link to `target` at `link`, replacing whatever link was there, in one rename.
#[cfg(unix)]
fn place_link(target: &str, _blob: &Path, link: &Path) -> Result<(), HfError> {
    if std::fs::read_link(link).is_ok_and(|t| t == Path::new(target)) {
        return Ok(());
    }
    let temp = aienv_core::fsutil::temp_path(link);
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp).map_err(|e| io(&temp, "cannot create", e))?;
    std::fs::rename(&temp, link).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io(link, "cannot create", e)
    })
}

/// Without symlinks the hub client copies the blob into the snapshot; so does this.
#[cfg(not(unix))]
fn place_link(_target: &str, blob: &Path, link: &Path) -> Result<(), HfError> {
    let temp = aienv_core::fsutil::temp_path(link);
    std::fs::copy(blob, &temp).map_err(|e| io(&temp, "cannot create", e))?;
    std::fs::rename(&temp, link).map_err(|e| io(link, "cannot create", e))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
