//! The receiving side: a tar stream checked entry by entry against the manifest, written into
//! the staging folder and hashed on the way.
//!
//! The stream must hold exactly the requested files, in the requested order, as plain files of
//! the manifest's sizes; anything else (other names, links, devices, other sizes, other
//! content) ends the transfer. A [`Budget`] caps what may be read between entries, so neither a
//! zstd bomb nor a lying long-name header can make the receiver read or allocate without bound.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::index::{EntryKind, FileEntry};
use crate::transfer::TransferError;

/// What may be read for one entry's headers (long names included).
const HEADER_BUDGET: u64 = 64 * 1024;

/// Receives `expected` (file entries, in order) from `input` into `staging`. `on_bytes` is called
/// with each chunk's length, `on_file` once per verified file.
pub fn unpack(
    input: impl Read,
    zstd: bool,
    expected: &[&FileEntry],
    staging: &Path,
    on_bytes: &mut dyn FnMut(u64),
    on_file: &mut dyn FnMut(),
) -> Result<(), TransferError> {
    let budget = Arc::new(AtomicU64::new(HEADER_BUDGET));
    let input: Box<dyn Read> = if zstd {
        Box::new(zstd::Decoder::new(input).map_err(|e| TransferError::io("cannot start zstd", e))?)
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(Budget {
        inner: input,
        left: budget.clone(),
    });
    let mut entries = archive
        .entries()
        .map_err(|e| hostile_io("cannot read the stream", e))?;
    let mut buf = vec![0u8; 256 * 1024];
    for exp in expected {
        let EntryKind::File {
            size,
            mode,
            mtime_ns,
            hash,
        } = &exp.kind
        else {
            continue;
        };
        budget.store(HEADER_BUDGET, Ordering::SeqCst);
        let mut entry = match entries.next() {
            None => {
                return Err(TransferError::Peer(format!(
                    "the stream ended before {} (a truncated transfer)",
                    exp.path
                )));
            }
            Some(Err(e)) => {
                return Err(hostile_io(
                    &format!("a broken entry where {} was expected", exp.path),
                    e,
                ));
            }
            Some(Ok(entry)) => entry,
        };
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular && kind != tar::EntryType::Continuous {
            return Err(TransferError::Hostile(format!(
                "{:?} entry where the file {} was expected",
                kind, exp.path
            )));
        }
        let path = entry.path_bytes();
        if path.as_ref() != exp.path.as_bytes() {
            return Err(TransferError::Hostile(format!(
                "an entry named {:?} where {} was expected",
                String::from_utf8_lossy(&path),
                exp.path
            )));
        }
        if entry.size() != *size {
            return Err(TransferError::Hostile(format!(
                "{} is {} bytes in the stream but {size} in the manifest",
                exp.path,
                entry.size()
            )));
        }
        // The content and its padding, nothing more.
        budget.store(size + 1024, Ordering::SeqCst);
        let dest = staging.join(&exp.path);
        let mut file = File::create(&dest)
            .map_err(|e| TransferError::io(format!("cannot create {}", dest.display()), e))?;
        let mut hasher = blake3::Hasher::new();
        let mut got = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    drop(file);
                    let _ = std::fs::remove_file(&dest);
                    return Err(stream_error(&exp.path, e));
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| TransferError::io(format!("cannot write {}", dest.display()), e))?;
            got += n as u64;
            on_bytes(n as u64);
        }
        if got != *size {
            drop(file);
            let _ = std::fs::remove_file(&dest);
            return Err(TransferError::Peer(format!(
                "the stream ended inside {} (a truncated transfer)",
                exp.path
            )));
        }
        if crate::index::ContentHash::from(hasher.finalize()) != *hash {
            drop(file);
            let _ = std::fs::remove_file(&dest);
            return Err(TransferError::Hostile(format!(
                "{} does not match its hash",
                exp.path
            )));
        }
        finish_file(&file, *mode, *mtime_ns).map_err(|e| {
            TransferError::io(format!("cannot set the times of {}", dest.display()), e)
        })?;
        on_file();
    }
    Ok(())
}

/// Mode (without set-id bits: a peer does not get to plant setuid files) and modification time.
pub fn finish_file(file: &File, mode: u32, mtime_ns: i64) -> io::Result<()> {
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode & 0o777))?;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(mtime_ns.max(0) as u64);
    file.set_modified(t)
}

fn hostile_io(what: &str, e: io::Error) -> TransferError {
    TransferError::Hostile(format!("{what} ({e})"))
}

fn stream_error(path: &str, e: io::Error) -> TransferError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => TransferError::Peer(format!(
            "the stream ended inside {path} (a truncated transfer)"
        )),
        io::ErrorKind::TimedOut => {
            TransferError::Peer(format!("the peer stopped sending during {path}"))
        }
        io::ErrorKind::Interrupted => TransferError::Cancelled,
        _ if e.to_string().contains("budget") => {
            TransferError::Hostile(format!("more data than announced around {path}"))
        }
        _ => TransferError::Peer(format!("the stream broke during {path}: {e}")),
    }
}

/// A reader that refuses to deliver more than its current allowance.
struct Budget<R> {
    inner: R,
    left: Arc<AtomicU64>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(io::Error::other(
                "over budget: the stream holds more than the manifest announced",
            ));
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left.fetch_sub(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}
