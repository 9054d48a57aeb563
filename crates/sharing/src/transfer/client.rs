//! The receiving side of one clone: fetch and check the manifest, reuse what is already here
//! (a previous clone, or files a resumed transfer already wrote), stream the rest, link.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::index::{ContentHash, EntryKind, FileEntry, FileManifest, hash_file};
use crate::transfer::unpack::unpack;
use crate::transfer::{StreamRequest, TransferError, plan};

/// A manifest larger than this is refused.
pub const MAX_MANIFEST_BYTES: usize = 256 << 20;
/// A peer that sends nothing for this long is given up on (the clone can be resumed).
pub const STALL: Duration = Duration::from_secs(30);
/// Below this link speed zstd pays off: level 1 compresses a venv about 3:1 at ~300 MB/s on one
/// core here, so on a 1 Gbit/s link (125 MB/s) it moves 2.3x the data; incompressible data
/// (weights) passes through it at line rate. On loopback or 10 Gbit/s it would be the bottleneck.
const COMPRESS_BELOW_BYTES_PER_S: f64 = 250e6;

/// Live counters of one transfer, read by whoever shows progress.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    /// Bytes that actually crossed the network (the rest was reused).
    pub bytes_sent: AtomicU64,
}

impl Counters {
    /// One more file of `size` bytes to have.
    fn count(&self, size: u64) {
        self.bytes_total.fetch_add(size, Ordering::Relaxed);
        self.files_total.fetch_add(1, Ordering::Relaxed);
    }

    /// One file of `size` bytes had without fetching it.
    fn done(&self, size: u64) {
        self.bytes_done.fetch_add(size, Ordering::Relaxed);
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    /// Decided by the measured speed of the manifest download.
    Auto,
    On,
    Off,
}

/// Where a clone goes and what it may reuse.
#[derive(Debug)]
pub struct Spec<'a> {
    /// The peer's API, e.g. `http://10.0.0.7:47478`.
    pub base_url: &'a str,
    pub workspace_id: &'a str,
    /// An empty or partly filled folder on the target's filesystem.
    pub staging: &'a Path,
    /// For a pull: the clone to update and the file list it was made from. Only changed files
    /// are fetched into staging; [`crate::transfer::apply`] then puts them in place.
    pub previous: Option<(&'a Path, Arc<FileManifest>)>,
    pub compress: Compress,
    /// A peer that sends nothing for this long is given up on ([`STALL`] by default).
    pub stall: Duration,
    /// Sent with every request: the share token and who this node is.
    pub headers: &'a reqwest::header::HeaderMap,
}

/// Fills `spec.staging` with the share's current content, every file verified. Returns the
/// manifest it was made from.
pub async fn receive(
    http: &reqwest::Client,
    spec: &Spec<'_>,
    counters: Arc<Counters>,
    cancel: watch::Receiver<bool>,
) -> Result<FileManifest, TransferError> {
    let t = Instant::now();
    let (manifest, rate) = fetch_manifest(http, spec).await?;
    plan::check(&manifest)?;
    tracing::debug!(elapsed = ?t.elapsed(), entries = manifest.entries.len(), "clone: file list fetched and checked");
    let zstd = match spec.compress {
        Compress::On => true,
        Compress::Off => false,
        // A peer on this machine is never worth compressing for; otherwise the measured link.
        Compress::Auto => {
            !on_this_machine(spec.base_url) && rate.is_some_and(|r| r < COMPRESS_BELOW_BYTES_PER_S)
        }
    };

    // One copy of the list, shared by the steps below: with hundreds of thousands of entries
    // each copy would cost tens of megabytes.
    let manifest = Arc::new(manifest);
    // Decide, file by file, what can be reused (this reads and hashes local files: blocking).
    let plan = {
        let m = manifest.clone();
        let staging = spec.staging.to_path_buf();
        let previous = spec.previous.clone().map(|(p, m)| (p.to_path_buf(), m));
        let counters = counters.clone();
        tokio::task::spawn_blocking(move || match &previous {
            Some((clone, before)) => prepare_pull(&m, &staging, clone, before, &counters),
            None => prepare(&m, &staging, &counters),
        })
        .await
        .expect("prepare task")?
    };

    tracing::debug!(elapsed = ?t.elapsed(), to_fetch = plan.len(), "clone: reuse decided");
    if !plan.is_empty() {
        stream(http, spec, &manifest, &plan, zstd, counters.clone(), cancel).await?;
    }
    tracing::debug!(elapsed = ?t.elapsed(), "clone: streamed");
    // A pull's links are made in the clone itself, by `apply`.
    if spec.previous.is_none() {
        let m = manifest.clone();
        let staging = spec.staging.to_path_buf();
        tokio::task::spawn_blocking(move || link_and_finish(&m, &staging))
            .await
            .expect("link task")?;
    }
    Ok(Arc::try_unwrap(manifest).unwrap_or_else(|shared| (*shared).clone()))
}

/// What a peer's error answer means: a refusal of access (401/403, with the peer's code and
/// words), or another failure.
async fn refusal(res: reqwest::Response, peer: impl Fn(String) -> TransferError) -> TransferError {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    let v = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default();
    let message = v["error"]["message"].as_str().map_or(body, str::to_string);
    match (status.as_u16(), v["error"]["code"].as_str()) {
        (401 | 403, Some(code)) => TransferError::Denied {
            code: code.to_string(),
            message,
        },
        _ => peer(format!("{status}: {message}")),
    }
}

/// The manifest, and the link's speed as its download showed it (`None` when it was too small
/// to tell: latency, not bandwidth, decides how long a small body takes).
async fn fetch_manifest(
    http: &reqwest::Client,
    spec: &Spec<'_>,
) -> Result<(FileManifest, Option<f64>), TransferError> {
    let url = format!(
        "{}/api/v1/shares/{}/files",
        spec.base_url, spec.workspace_id
    );
    let peer = |why: String| {
        TransferError::Peer(format!(
            "cannot get the file list from {}: {why}",
            spec.base_url
        ))
    };
    let mut res = http
        .get(&url)
        .headers(spec.headers.clone())
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .map_err(|e| peer(aienv_trust::describe(&e)))?;
    if !res.status().is_success() {
        return Err(refusal(res, peer).await);
    }
    // One buffer of the announced size (capped): grown by doubling, a 35 MB list took 63 MB.
    let announced = res.content_length().unwrap_or(0) as usize;
    let mut body = Vec::with_capacity(announced.min(MAX_MANIFEST_BYTES));
    let mut first_chunk: Option<Instant> = None;
    while let Some(chunk) = res.chunk().await.map_err(|e| peer(e.to_string()))? {
        first_chunk.get_or_insert_with(Instant::now);
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(TransferError::Hostile(format!(
                "the file list is larger than {MAX_MANIFEST_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    // Timed from the first byte, so the peer's indexing time does not count as a slow link.
    let rate = first_chunk
        .filter(|_| body.len() >= 512 * 1024)
        .map(|t| body.len() as f64 / t.elapsed().as_secs_f64().max(1e-6));
    // Parsed whole: serde_json reads a slice several times faster than a stream (measured: a
    // pull of 200,000 files took 20% longer parsing as the list arrived, for no lower peak).
    let m = serde_json::from_slice(&body)
        .map_err(|e| TransferError::Hostile(format!("the file list cannot be read ({e})")))?;
    Ok((m, rate))
}

/// A new clone: creates the folders in staging, keeps what an interrupted attempt already wrote
/// correctly, and returns the indices of the files still to fetch.
fn prepare(
    m: &FileManifest,
    staging: &Path,
    counters: &Counters,
) -> Result<Vec<usize>, TransferError> {
    // Only a staging folder left by an interrupted attempt can hold files to resume.
    let resuming = staging.exists();
    create_dir(staging, true)?;
    for e in &m.entries {
        if let EntryKind::Dir { .. } = e.kind {
            create_dir(&staging.join(&e.path), false)?;
        }
    }
    let mut fetch = Vec::new();
    for (i, e) in m.entries.iter().enumerate() {
        let EntryKind::File { size, hash, .. } = &e.kind else {
            continue;
        };
        counters.count(*size);
        if resuming && resumed(&staging.join(&e.path), *size, hash) {
            counters.done(*size);
        } else {
            fetch.push(i);
        }
    }
    Ok(fetch)
}

/// A pull into the clone at `clone`, made from `before`: only files whose content changed on the
/// source are fetched (into staging, under their own paths); the rest stay where they are.
fn prepare_pull(
    m: &FileManifest,
    staging: &Path,
    clone: &Path,
    before: &FileManifest,
    counters: &Counters,
) -> Result<Vec<usize>, TransferError> {
    let resuming = staging.exists();
    create_dir(staging, true)?;
    let hashes: HashMap<&str, &ContentHash> = before
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { hash, .. } => Some((e.path.as_str(), hash)),
            _ => None,
        })
        .collect();
    let mut made: HashSet<&str> = HashSet::new();
    let mut fetch = Vec::new();
    for (i, e) in m.entries.iter().enumerate() {
        let EntryKind::File { size, hash, .. } = &e.kind else {
            continue;
        };
        counters.count(*size);
        let here = || {
            // Already here with this content: moved by an interrupted apply, or the same edit.
            let p = clone.join(&e.path);
            std::fs::symlink_metadata(&p).is_ok_and(|meta| meta.is_file() && meta.len() == *size)
                && hash_file(&p).is_ok_and(|h| &h == hash)
        };
        if hashes.get(e.path.as_str()) == Some(&hash)
            || resuming && resumed(&staging.join(&e.path), *size, hash)
            || here()
        {
            counters.done(*size);
            continue;
        }
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && made.insert(parent)
        {
            let dir = staging.join(parent);
            std::fs::create_dir_all(&dir).map_err(|err| {
                TransferError::io(format!("cannot create {}", dir.display()), err)
            })?;
        }
        fetch.push(i);
    }
    Ok(fetch)
}

fn create_dir(dir: &Path, with_parents: bool) -> Result<(), TransferError> {
    let made = if with_parents {
        std::fs::create_dir_all(dir)
    } else {
        std::fs::create_dir(dir)
    };
    match made {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists || !dir.is_dir() => Err(
            TransferError::io(format!("cannot create {}", dir.display()), err),
        ),
        _ => Ok(()),
    }
}

/// A file an interrupted attempt already wrote in full and correctly.
fn resumed(dest: &Path, size: u64, hash: &ContentHash) -> bool {
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_file() && meta.len() == size => {
            hash_file(dest).is_ok_and(|h| h == *hash)
        }
        Ok(_) => {
            let _ = std::fs::remove_file(dest);
            false
        }
        Err(_) => false,
    }
}

/// Streams the files at `fetch` from the peer into staging.
async fn stream(
    http: &reqwest::Client,
    spec: &Spec<'_>,
    m: &Arc<FileManifest>,
    fetch: &[usize],
    zstd: bool,
    counters: Arc<Counters>,
    mut cancel: watch::Receiver<bool>,
) -> Result<(), TransferError> {
    let url = format!(
        "{}/api/v1/shares/{}/stream",
        spec.base_url, spec.workspace_id
    );
    let req = StreamRequest::from_indices(&m.revision, fetch, zstd);
    let peer = |why: String| {
        TransferError::Peer(format!("the transfer from {} failed: {why}", spec.base_url))
    };
    let mut res = http
        .post(&url)
        .headers(spec.headers.clone())
        .json(&req)
        .send()
        .await
        .map_err(|e| peer(aienv_trust::describe(&e)))?;
    if res.status() == reqwest::StatusCode::CONFLICT {
        return Err(TransferError::Changed);
    }
    if !res.status().is_success() {
        return Err(refusal(res, peer).await);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(32);
    // The writer reads the entries from the one shared list, by index (no copy of the list).
    let (list, indices) = (m.clone(), fetch.to_vec());
    let staging = spec.staging.to_path_buf();
    let c = counters.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let refs: Vec<&FileEntry> = indices.iter().map(|&i| &list.entries[i]).collect();
        let mut on_bytes = |n: u64| {
            c.bytes_done.fetch_add(n, Ordering::Relaxed);
        };
        let mut on_file = || {
            c.files_done.fetch_add(1, Ordering::Relaxed);
        };
        unpack(
            ChannelReader {
                rx,
                buf: Vec::new(),
                at: 0,
            },
            zstd,
            &refs,
            &staging,
            &mut on_bytes,
            &mut on_file,
        )
    });
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            chunk = tokio::time::timeout(spec.stall, res.chunk()) => match chunk {
                Err(_) => { outcome = Err(peer(format!("it sent nothing for {} s (the clone can be resumed)", spec.stall.as_secs()))); break }
                Ok(Err(e)) => { outcome = Err(peer(format!("{e} (the clone can be resumed)"))); break }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(bytes))) => {
                    counters.bytes_sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    // The writer stopped (it found a problem): its error says why.
                    if tx.send(bytes.to_vec()).is_err() { break }
                }
            },
            _ = cancel.changed() => { outcome = Err(TransferError::Cancelled); break }
        }
    }
    drop(tx);
    let written = writer.await.expect("writer task");
    outcome.and(written)
}

/// Creates symlinks and hard links, then gives folders their modes (last: a read-only folder
/// must not stop the writes into it).
fn link_and_finish(m: &FileManifest, staging: &Path) -> Result<(), TransferError> {
    for e in &m.entries {
        let dest = staging.join(&e.path);
        match &e.kind {
            EntryKind::Symlink { target } => {
                let _ = std::fs::remove_file(&dest);
                symlink(target, &dest).map_err(|err| {
                    TransferError::io(format!("cannot create the symlink {}", dest.display()), err)
                })?;
            }
            EntryKind::Hardlink { to } => {
                let _ = std::fs::remove_file(&dest);
                std::fs::hard_link(staging.join(to), &dest).map_err(|err| {
                    TransferError::io(
                        format!("cannot create the hard link {}", dest.display()),
                        err,
                    )
                })?;
            }
            _ => {}
        }
    }
    #[cfg(unix)]
    for e in m.entries.iter().rev() {
        if let EntryKind::Dir { mode } = e.kind {
            let dest = staging.join(&e.path);
            std::fs::set_permissions(
                &dest,
                std::os::unix::fs::PermissionsExt::from_mode((mode & 0o777) | 0o700),
            )
            .map_err(|err| {
                TransferError::io(format!("cannot set the mode of {}", dest.display()), err)
            })?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &str, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}
#[cfg(not(unix))]
fn symlink(target: &str, at: &Path) -> io::Result<()> {
    // Windows needs privileges for symlinks; a copy of the target would change the tree.
    Err(io::Error::other(format!(
        "symlinks ({target}) are not supported on this platform yet"
    )))
}

/// Hands the network's chunks to the blocking unpacker.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Whether a peer URL names this machine (a loopback address).
fn on_this_machine(base_url: &str) -> bool {
    let host = base_url.split("://").nth(1).unwrap_or(base_url);
    host.starts_with("127.") || host.starts_with("[::1]") || host.starts_with("localhost")
}

/// The staging folder for a clone into `target`: beside it (same filesystem, so the final move is
/// one rename), named after it, so a retried clone finds what an interrupted one left.
pub fn staging_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = blake3::hash(target.to_string_lossy().as_bytes()).to_hex();
    target.with_file_name(format!(".aienv-staging-{name}-{}", &hash[..8]))
}
