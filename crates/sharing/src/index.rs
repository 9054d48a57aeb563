//! The file manifest of a share: every directory, file (with its BLAKE3 hash), symlink and
//! hard link that a clone recreates, in a fixed order.
//!
//! Indexing walks the workspace without following symlinks, leaves out what the [`Filter`]
//! excludes, skips device files, FIFOs and sockets (counted), and hashes files on all cores. A
//! [`HashCache`] keyed by inode, size and modification time lets a re-index hash only what
//! changed; [`reindex`] reads again only the folders a file watcher saw change.

mod content_hash;
mod kept;
mod reuse;

pub use content_hash::ContentHash;
pub use kept::ShareIndex;
pub use reuse::reindex;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::exclude::Filter;

/// One entry of a file manifest. Paths are relative to the workspace root, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    pub path: String,
    #[serde(flatten)]
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    Dir {
        mode: u32,
    },
    File {
        size: u64,
        mode: u32,
        /// Modification time, nanoseconds since the Unix epoch.
        mtime_ns: i64,
        /// BLAKE3 of the content, hex.
        #[schema(value_type = String)]
        hash: ContentHash,
    },
    Symlink {
        target: String,
    },
    /// Another name for the file at `to` (an earlier entry).
    Hardlink {
        to: String,
    },
}

/// `GET /api/v1/shares/{workspace}/files`: what a clone of the workspace consists of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileManifest {
    pub workspace_id: String,
    /// Changes whenever any entry changes.
    pub revision: String,
    pub files: u64,
    pub bytes: u64,
    /// Entries left out because they are not regular files, directories or symlinks (or
    /// names that are not UTF-8), as of the last full walk.
    pub skipped_special: u64,
    pub entries: Vec<FileEntry>,
    /// Files sent with other content than they have on disk (the manifest of a share of some
    /// environments only): path to content. The sender's own; never sent as such.
    #[serde(skip)]
    #[schema(ignore)]
    pub substitutes: HashMap<String, std::sync::Arc<Vec<u8>>>,
}

impl FileManifest {
    /// Sends `content` for the file at `path` instead of what is on disk: its size and hash in
    /// the list become the content's, so the receiver verifies exactly what it gets.
    pub fn substitute(&mut self, path: &str, content: Vec<u8>) {
        let Some(entry) = self.entries.iter_mut().find(|e| e.path == path) else {
            return;
        };
        if let EntryKind::File { size, hash, .. } = &mut entry.kind {
            self.bytes = self.bytes - *size + content.len() as u64;
            *size = content.len() as u64;
            *hash = ContentHash::of(&content);
            // The list's revision with this entry's new content mixed in: it still changes
            // whenever any entry does, without hashing every entry again.
            let mut h = blake3::Hasher::new();
            for part in [self.revision.as_bytes(), path.as_bytes(), hash.as_bytes()] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
            self.revision = h.finalize().to_hex()[..16].to_string();
        }
        self.substitutes
            .insert(path.to_string(), std::sync::Arc::new(content));
    }
}

/// Hashes of files already seen, by (device, inode): a file whose size and modification time
/// did not change is not read again.
#[derive(Debug, Default)]
pub struct HashCache {
    known: Mutex<HashMap<FileId, Known>>,
}

/// (device, inode): a file's identity, whatever its name.
type FileId = (u64, u64);

/// What was hashed: the size and modification time then, and the hash.
type Known = (u64, i64, ContentHash);

/// Builds the file manifest of `root`.
pub fn index(
    root: &Path,
    workspace_id: &str,
    filter: &Filter,
    cache: &HashCache,
) -> io::Result<FileManifest> {
    walk(root, workspace_id, filter, cache, None)
}

/// The walk behind [`index`] and [`reindex`]: folders `reuse` vouches for are not read.
fn walk(
    root: &Path,
    workspace_id: &str,
    filter: &Filter,
    cache: &HashCache,
    reuse: Option<&reuse::Reuse>,
) -> io::Result<FileManifest> {
    let mut walk = Walk {
        root,
        filter,
        reuse,
        entries: Vec::new(),
        pending: Vec::new(),
        links: HashMap::new(),
        skipped: 0,
    };
    walk.folder(root, "")?;
    let Walk {
        mut entries,
        pending,
        skipped,
        ..
    } = walk;
    hash_all(root, &mut entries, &pending, cache)?;
    let (files, bytes) = entries.iter().fold((0, 0), |(n, b), e| match e.kind {
        EntryKind::File { size, .. } => (n + 1, b + size),
        _ => (n, b),
    });
    let revision = revision(&entries);
    Ok(FileManifest {
        workspace_id: workspace_id.to_string(),
        revision,
        files,
        bytes,
        skipped_special: skipped,
        entries,
        substitutes: HashMap::new(),
    })
}

/// A file waiting for its hash: where it is in `entries`, and its identity for the cache.
struct Pending {
    at: usize,
    key: FileId,
}

struct Walk<'a> {
    root: &'a Path,
    filter: &'a Filter,
    reuse: Option<&'a reuse::Reuse<'a>>,
    entries: Vec<FileEntry>,
    pending: Vec<Pending>,
    /// (device, inode) of multiply-linked files already listed, to their path.
    links: HashMap<FileId, String>,
    skipped: u64,
}

impl Walk<'_> {
    /// The entries below a folder: as they were when nothing below it changed; its children as
    /// they were, with only the names a watcher saw change looked at again, when it or folders
    /// below it changed; else read from disk.
    fn folder(&mut self, dir: &Path, rel: &str) -> io::Result<()> {
        let Some(reuse) = self.reuse else {
            return self.dir(dir, rel);
        };
        if let Some(same) = reuse.unchanged_below(rel) {
            self.entries.extend_from_slice(same);
            return Ok(());
        }
        let Some((before, named)) = reuse.children(rel) else {
            return self.dir(dir, rel); // A new folder.
        };
        let mut named = named.into_iter().peekable();
        for child in before {
            let name = child.path.rsplit('/').next().unwrap_or_default();
            while let Some(n) = named.next_if(|n| *n <= name) {
                self.child(rel, n, true)?;
            }
            if reuse.named(rel, name) {
                continue; // Looked at again above.
            }
            self.entries.push(child.clone());
            if let EntryKind::Dir { .. } = child.kind {
                self.folder(&self.root.join(&child.path), &child.path)?;
            }
        }
        for n in named {
            self.child(rel, n, true)?;
        }
        Ok(())
    }

    /// Reads a folder from disk.
    fn dir(&mut self, dir: &Path, rel: &str) -> io::Result<()> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_unstable();
        for name in names {
            let Some(name) = name.to_str() else {
                // Not UTF-8: it could not be named in the manifest; leave it out and count it.
                self.skipped += 1;
                continue;
            };
            self.child(rel, name, false)?;
        }
        Ok(())
    }

    /// Lists the thing called `name` in the folder `parent` (nothing if it is gone or
    /// excluded). `afresh`: a folder is read whole from disk, whatever the previous list says
    /// (one renamed into place brings its content without an event for each file).
    fn child(&mut self, parent: &str, name: &str, afresh: bool) -> io::Result<()> {
        let rel = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        let path = self.root.join(&rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Removed since: by the watcher's word, or while this folder was being read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        if self.filter.excluded(Path::new(&rel), ft.is_dir()) {
            return Ok(());
        }
        if ft.is_dir() {
            self.entries.push(FileEntry {
                path: rel.clone(),
                kind: EntryKind::Dir { mode: mode(&meta) },
            });
            if afresh {
                let reuse = self.reuse.take();
                let read = self.dir(&path, &rel);
                self.reuse = reuse;
                read?;
            } else {
                self.folder(&path, &rel)?;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            self.entries.push(FileEntry {
                path: rel,
                kind: EntryKind::Symlink { target },
            });
        } else if ft.is_file() {
            let key = identity(&meta);
            if nlink(&meta) > 1 {
                if let Some(first) = self.links.get(&key) {
                    self.entries.push(FileEntry {
                        path: rel,
                        kind: EntryKind::Hardlink { to: first.clone() },
                    });
                    return Ok(());
                }
                self.links.insert(key, rel.clone());
            }
            self.pending.push(Pending {
                at: self.entries.len(),
                key,
            });
            self.entries.push(FileEntry {
                path: rel,
                kind: EntryKind::File {
                    size: meta.len(),
                    mode: mode(&meta),
                    mtime_ns: mtime_ns(&meta),
                    hash: ContentHash::UNKNOWN, // Filled in by `hash_all`.
                },
            });
        } else {
            self.skipped += 1;
        }
        Ok(())
    }
}

/// Fills in the hashes, on every core, reading only files the cache does not vouch for.
fn hash_all(
    root: &Path,
    entries: &mut [FileEntry],
    pending: &[Pending],
    cache: &HashCache,
) -> io::Result<()> {
    // Decided under the lock, without copying the cache (it holds an entry per file).
    let todo: Vec<&Pending> = {
        let known = cache
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .iter()
            .filter(|p| match (&entries[p.at].kind, known.get(&p.key)) {
                (EntryKind::File { size, mtime_ns, .. }, Some((s, m, _))) => {
                    s != size || m != mtime_ns
                }
                _ => true,
            })
            .collect()
    };
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(todo.len().max(1));
    let results: Vec<io::Result<Vec<(usize, ContentHash)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(p) = todo.get(i) else {
                            return Ok(done);
                        };
                        done.push((p.at, hash_file(&root.join(&entries[p.at].path))?));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("hash worker"))
            .collect()
    });
    // Written straight into the entries (no map of fresh hashes beside them); a flag per entry
    // says which got one.
    let mut fresh = vec![false; entries.len()];
    for r in results {
        for (at, h) in r? {
            if let EntryKind::File { hash, .. } = &mut entries[at].kind {
                *hash = h;
                fresh[at] = true;
            }
        }
    }
    let mut cache_map = cache
        .known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Room for every file at once: growing by doubling would hold the old table and the new.
    let known = cache_map.len();
    cache_map.reserve(pending.len().saturating_sub(known));
    for p in pending {
        if let EntryKind::File {
            size,
            mtime_ns,
            hash,
            ..
        } = &mut entries[p.at].kind
        {
            if !fresh[p.at]
                && let Some((_, _, h)) = cache_map.get(&p.key)
            {
                *hash = *h;
            }
            cache_map.insert(p.key, (*size, *mtime_ns, *hash));
        }
    }
    Ok(())
}

/// BLAKE3 of a file's content.
pub fn hash_file(path: &Path) -> io::Result<ContentHash> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(h.finalize().into())
}

fn revision(entries: &[FileEntry]) -> String {
    // Every field of every entry, tagged and length-prefixed so that no two lists hash alike.
    // Gathered into a buffer hashed a megabyte at a time: large updates hash far faster than many
    // small ones (this runs on every new file list of a share), and one buffer for the whole
    // list would cost 25 MB for 200,000 entries.
    const FLUSH_AT: usize = 1 << 20;
    let mut hasher = blake3::Hasher::new();
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 4096);
    let text = |buf: &mut Vec<u8>, s: &str| {
        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
    };
    for e in entries {
        if buf.len() >= FLUSH_AT {
            hasher.update(&buf);
            buf.clear();
        }
        text(&mut buf, &e.path);
        match &e.kind {
            EntryKind::Dir { mode } => {
                buf.push(b'd');
                buf.extend_from_slice(&mode.to_le_bytes());
            }
            EntryKind::File {
                size,
                mode,
                mtime_ns,
                hash,
            } => {
                buf.push(b'f');
                buf.extend_from_slice(&size.to_le_bytes());
                buf.extend_from_slice(&mode.to_le_bytes());
                buf.extend_from_slice(&mtime_ns.to_le_bytes());
                buf.extend_from_slice(hash.as_bytes());
            }
            EntryKind::Symlink { target } => {
                buf.push(b'l');
                text(&mut buf, target);
            }
            EntryKind::Hardlink { to } => {
                buf.push(b'h');
                text(&mut buf, to);
            }
        }
    }
    hasher.update(&buf);
    hasher.finalize().to_hex()[..16].to_string()
}

#[cfg(unix)]
fn mode(m: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
}
#[cfg(not(unix))]
fn mode(m: &std::fs::Metadata) -> u32 {
    if m.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}
#[cfg(not(unix))]
fn identity(_m: &std::fs::Metadata) -> FileId {
    (0, 0)
}

#[cfg(unix)]
fn nlink(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(m)
}
#[cfg(not(unix))]
fn nlink(_m: &std::fs::Metadata) -> u64 {
    1
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, body: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn filter(root: &Path) -> Filter {
        Filter::new(root, &aienv_core::Sharing::default()).unwrap()
    }

    #[test]
    fn a_tree_is_listed_in_order_with_hashes_links_and_exclusions() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        write(root, "aienv.toml", b"[workspace]\nname = \"x\"\n");
        write(root, "models/w.bin", &vec![1u8; 100_000]);
        write(root, ".env", b"TOKEN=secret");
        write(root, "src/__pycache__/a.pyc", b"cache");
        std::os::unix::fs::symlink("models/w.bin", root.join("latest")).unwrap();
        std::fs::hard_link(root.join("models/w.bin"), root.join("models/w2.bin")).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(root.join("pipe"))
                .status()
                .unwrap()
                .success()
        );

        let m = index(root, "ws1", &filter(root), &HashCache::default()).unwrap();
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "aienv.toml",
                "latest",
                "models",
                "models/w.bin",
                "models/w2.bin",
                "src"
            ]
        );
        assert_eq!(m.files, 2, "the hard link is not a second file");
        assert_eq!(m.bytes, 100_000 + 23);
        assert_eq!(m.skipped_special, 1, "the FIFO is left out");
        match &m.entries[3].kind {
            EntryKind::File { hash, size, .. } => {
                assert_eq!(*size, 100_000);
                assert_eq!(*hash, ContentHash::of(&vec![1u8; 100_000]));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(
            m.entries[4].kind,
            EntryKind::Hardlink {
                to: "models/w.bin".into()
            }
        );
        assert_eq!(
            m.entries[1].kind,
            EntryKind::Symlink {
                target: "models/w.bin".into()
            }
        );
    }

    #[test]
    fn a_reindex_reads_only_changed_files_and_the_revision_follows_content() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        write(root, "a", b"one");
        write(root, "b", b"two");
        let cache = HashCache::default();
        let first = index(root, "w", &filter(root), &cache).unwrap();
        // Poison the cached hash of `b`: if the re-index trusts the cache for unchanged files,
        // the poisoned value shows through.
        {
            let mut known = cache.known.lock().unwrap();
            for v in known.values_mut() {
                if v.2 == ContentHash::of(b"two") {
                    v.2 = ContentHash::of(b"poisoned");
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        write(root, "a", b"ONE!");
        let second = index(root, "w", &filter(root), &cache).unwrap();
        let hash_of =
            |m: &FileManifest, p: &str| match &m.entries.iter().find(|e| e.path == p).unwrap().kind
            {
                EntryKind::File { hash, .. } => *hash,
                _ => unreachable!(),
            };
        assert_eq!(
            hash_of(&second, "a"),
            ContentHash::of(b"ONE!"),
            "a changed file is hashed again"
        );
        assert_eq!(
            hash_of(&second, "b"),
            ContentHash::of(b"poisoned"),
            "an unchanged file is not read again"
        );
        assert_ne!(first.revision, second.revision);
    }
}
