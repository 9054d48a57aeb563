//! The sending side: requested files of a share, in manifest order, as a tar stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::index::{EntryKind, FileManifest};

/// Writes the files at `indices` of `manifest` (all must be files) from `root` as tar to `out`,
/// zstd-compressed when asked. A file whose size changed since indexing ends the stream with an
/// error: the receiver then sees a short stream and asks again.
pub fn pack(
    root: &Path,
    manifest: &FileManifest,
    indices: &[usize],
    out: impl Write,
    zstd: bool,
) -> io::Result<()> {
    if zstd {
        // Level 1: fast enough not to be the bottleneck below ~1 Gbit/s.
        let enc = zstd::Encoder::new(out, 1)?;
        let enc = write_tar(root, manifest, indices, enc)?;
        enc.finish()?.flush()
    } else {
        write_tar(root, manifest, indices, out)?.flush()
    }
}

fn write_tar<W: Write>(
    root: &Path,
    manifest: &FileManifest,
    indices: &[usize],
    out: W,
) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    for &i in indices {
        let e = &manifest.entries[i];
        let EntryKind::File {
            size,
            mode,
            mtime_ns,
            ..
        } = e.kind
        else {
            return Err(io::Error::other(format!(
                "entry {i} ({}) is not a file",
                e.path
            )));
        };
        if let Some(content) = manifest.substitutes.get(&e.path) {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(mode);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, &e.path, content.as_slice())?;
            continue;
        }
        let f = File::open(root.join(&e.path))?;
        // Sent only as indexed: a file written since then would not match its hash. Ending the
        // stream here makes the receiver ask again with the new file list.
        let meta = f.metadata()?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        if meta.len() != size || modified != mtime_ns {
            return Err(io::Error::other(format!(
                "{} changed since it was indexed",
                e.path
            )));
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &e.path, f.take(size))?;
    }
    b.into_inner()
}
