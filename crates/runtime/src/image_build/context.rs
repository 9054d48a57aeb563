//! A build context as the engine receives it: the context folder as a tar stream, written on a
//! blocking thread while the engine reads it, so that no part of it is held in memory.
//!
//! Left out: `.git/` and `.aienv/` at any depth, and what the folder's `.dockerignore` excludes
//! (patterns anchored at the context's root, `!` exceptions honoured), except that the Dockerfile
//! and `.dockerignore` always go, because the engine reads them. Files go in owned by root, as the
//! docker CLI sends them, whoever owns them here.

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use tokio::sync::{mpsc, oneshot};

/// Never sent, at any depth: a repository's history and aienv's own state (venvs, prefixes).
const NEVER_SENT: [&str; 2] = [".git", ".aienv"];
/// How much of the archive goes to the engine at a time.
const CHUNK: usize = 256 << 10;

/// What goes into a build context: all of the folder but [`NEVER_SENT`] and what its
/// `.dockerignore` excludes, except that the Dockerfile and `.dockerignore` always go (the
/// engine reads them).
#[derive(Debug)]
pub(super) struct Context {
    root: PathBuf,
    dockerfile: PathBuf,
    ignore: Gitignore,
    /// Whether `.dockerignore` has `!` lines: then an excluded folder may hold included files.
    exceptions: bool,
}

impl Context {
    pub(super) fn new(root: PathBuf, dockerfile: PathBuf) -> Context {
        let (ignore, exceptions) = dockerignore(&root);
        Context {
            root,
            dockerfile,
            ignore,
            exceptions,
        }
    }

    /// Writes the context as a tar archive.
    fn write<W: Write>(&self, out: W) -> io::Result<()> {
        let mut tar = tar::Builder::new(out);
        if let Err(e) = self.add_dir(&mut tar, &self.root, Path::new("")) {
            // Dropping the builder would end the archive properly; a context cut short must
            // not look complete to the engine.
            std::mem::forget(tar);
            return Err(e);
        }
        tar.finish()
    }

    fn add_dir<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        dir: &Path,
        rel: &Path,
    ) -> io::Result<()> {
        let mut entries = std::fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
        // The same archive for the same files, whatever order the file system lists them in.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if NEVER_SENT.iter().any(|n| name == *n) {
                continue;
            }
            let rel = rel.join(&name);
            let path = entry.path();
            let meta = path.symlink_metadata()?;
            let is_dir = meta.is_dir();
            let sent = self.sent(&rel, is_dir);
            if sent {
                append(tar, &path, &rel, &meta)?;
            }
            // An excluded folder is still walked when something inside it may be sent (an
            // exception, the Dockerfile): those files arrive without an entry for the folder,
            // and the engine creates it.
            if is_dir && (sent || self.exceptions || self.dockerfile.starts_with(&rel)) {
                self.add_dir(tar, &path, &rel)?;
            }
        }
        Ok(())
    }

    fn sent(&self, rel: &Path, is_dir: bool) -> bool {
        rel == self.dockerfile
            || rel == Path::new(".dockerignore")
            || !self
                .ignore
                .matched_path_or_any_parents(rel, is_dir)
                .is_ignore()
    }
}

/// The folder's `.dockerignore` as a matcher, and whether it has exceptions (`!` lines).
/// Docker's patterns are relative to the context's root, so each is anchored there (`*.log`
/// means the top folder's logs, `**/*.log` all of them), unlike gitignore's.
fn dockerignore(root: &Path) -> (Gitignore, bool) {
    let mut builder = GitignoreBuilder::new(root);
    let mut exceptions = false;
    let text = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (bang, pattern) = match line.strip_prefix('!') {
            Some(p) => ("!", p.trim()),
            None => ("", line),
        };
        exceptions |= !bang.is_empty();
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        // A pattern that does not parse is skipped, as a typo in .gitignore would be.
        let _ = builder.add_line(None, &format!("{bang}/{pattern}"));
    }
    (
        builder.build().unwrap_or_else(|_| Gitignore::empty()),
        exceptions,
    )
}

/// One file system entry into the archive.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    rel: &Path,
    meta: &Metadata,
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_uid(0);
    header.set_gid(0);
    let kind = meta.file_type();
    if kind.is_dir() {
        tar.append_data(&mut header, rel, io::empty())
    } else if kind.is_symlink() {
        tar.append_link(&mut header, rel, std::fs::read_link(path)?)
    } else if kind.is_file() {
        // No more than the header announced, should the file grow while it is read.
        tar.append_data(&mut header, rel, File::open(path)?.take(meta.len()))
    } else {
        // Sockets, pipes, devices: nothing a build can use.
        Ok(())
    }
}

/// The archive being written, on a blocking thread, into a request body.
pub(super) struct Sending {
    task: tokio::task::JoinHandle<io::Result<()>>,
    /// Dropped to tell the writer to give up (the engine stopped reading).
    keep_going: oneshot::Receiver<()>,
}

impl Sending {
    /// Stops the writer if it still runs; its error, unless that was only the engine hanging up.
    pub(super) async fn finish(self) -> Option<io::Error> {
        drop(self.keep_going);
        match self.task.await {
            Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Some(e),
            _ => None,
        }
    }
}

/// Starts writing `context` as a tar stream. A failure to read a file fails the stream too, so
/// the engine never builds from a context that silently lacks files.
pub(super) fn send_context(context: Context) -> (impl Stream<Item = io::Result<Bytes>>, Sending) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let (stop, keep_going) = oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        let mut sender = ChannelWriter { tx, stop, runtime };
        let result = {
            let mut buffered = io::BufWriter::with_capacity(CHUNK, &mut sender);
            let written = context.write(&mut buffered).and_then(|()| buffered.flush());
            if written.is_err() {
                // Dropped unsent rather than flushed: the error below is all that follows.
                let _ = buffered.into_parts();
            }
            written
        };
        if let Err(e) = &result {
            sender.send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (body, Sending { task, keep_going })
}

/// Hands what the tar writer writes to the request body; gives up when told to stop.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    stop: oneshot::Sender<()>,
    runtime: tokio::runtime::Handle,
}

impl ChannelWriter {
    /// Waits until the body takes `item`, or the engine is gone. Whether it was taken.
    fn send(&mut self, item: io::Result<Bytes>) -> bool {
        let (tx, stop) = (&self.tx, &mut self.stop);
        self.runtime.block_on(async {
            tokio::select! {
                r = tx.send(item) => r.is_ok(),
                () = stop.closed() => false,
            }
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.send(Ok(Bytes::copy_from_slice(buf))) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            ));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn names(context: &Context) -> Vec<String> {
        let mut tar = Vec::new();
        context.write(&mut tar).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().uid().unwrap(), 0);
                e.path().unwrap().display().to_string()
            })
            .collect()
    }

    #[test]
    fn the_context_leaves_out_git_aienv_and_dockerignored_files() {
        let ws = tempfile::tempdir().unwrap();
        let w = |p: &str, text: &str| {
            let p = ws.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("Dockerfile", "FROM x\n");
        w("app/main.py", "print()\n");
        w("app/debug.log", "noise\n");
        w("debug.log", "noise\n");
        w(".git/HEAD", "ref\n");
        w(".aienv/venv/e/bin/python", "");
        w("data/big.bin", "0000");
        w("data/keep.txt", "kept\n");
        w("docs/Dockerfile.docs", "FROM y\n");
        w("docs/notes.md", "notes\n");
        w(
            ".dockerignore",
            "# comment\n*.log\ndata\n!data/keep.txt\ndocs\n",
        );
        std::os::unix::fs::symlink("app/main.py", ws.path().join("link.py")).unwrap();
        let ctx = Context::new(ws.path().to_path_buf(), PathBuf::from("Dockerfile"));
        assert_eq!(
            names(&ctx),
            [
                ".dockerignore",
                "Dockerfile",
                "app",
                "app/debug.log",
                "app/main.py",
                "data/keep.txt",
                "link.py"
            ]
        );
        // A Dockerfile in an excluded folder is sent all the same, and nothing else there.
        w(".dockerignore", "docs\n");
        let ctx = Context::new(
            ws.path().to_path_buf(),
            PathBuf::from("docs/Dockerfile.docs"),
        );
        let sent = names(&ctx);
        assert!(
            sent.contains(&"docs/Dockerfile.docs".to_string()),
            "{sent:?}"
        );
        assert!(!sent.contains(&"docs/notes.md".to_string()), "{sent:?}");
        assert!(sent.contains(&"data/big.bin".to_string()), "{sent:?}");
    }

    #[tokio::test]
    async fn the_stream_carries_the_archive_or_fails_with_the_read_error() {
        use futures_util::StreamExt;
        let ws = tempfile::tempdir().unwrap();
        std::fs::write(ws.path().join("Dockerfile"), "FROM x\n").unwrap();
        let ctx = Context::new(ws.path().to_path_buf(), PathBuf::from("Dockerfile"));
        let (body, sending) = send_context(ctx);
        let chunks: Vec<io::Result<Bytes>> = body.collect().await;
        assert!(sending.finish().await.is_none());
        let tar: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap()).collect();
        let mut archive = tar::Archive::new(&tar[..]);
        assert_eq!(archive.entries().unwrap().count(), 1);

        let gone = Context::new(ws.path().join("gone"), PathBuf::from("Dockerfile"));
        let (body, sending) = send_context(gone);
        let chunks: Vec<io::Result<Bytes>> = body.collect().await;
        // Nothing that could pass for an archive, then the error: the engine must not build.
        assert_eq!(chunks.len(), 1, "{chunks:?}");
        assert!(chunks[0].is_err());
        let e = sending.finish().await.expect("the read error");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
