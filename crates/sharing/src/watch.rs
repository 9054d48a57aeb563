//! Which paths of a share changed since it was last indexed, from a recursive file watcher, so
//! a re-index looks only at those ([`crate::index::reindex`]) instead of walking the whole
//! tree: the way Syncthing's watcher narrows its scans.
//!
//! Events arrive a moment after the change. So that a list asked for right after an edit still
//! sees it, [`ShareWatch::take`] first writes a file into a folder of its own that the same
//! watcher follows, and waits for that file's event: the kernel queues events in order, so every
//! change made before the request has been counted once it arrives.
//!
//! Watchers can miss things (an overflowing event queue, more folders than the watch limit), so
//! the answer is "everything" when the watcher could not start, reported lost events or an error,
//! its barrier did not come back, and at least every [`FULL_EVERY`] as a safety net.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// The longest a share goes without a full walk.
pub const FULL_EVERY: Duration = Duration::from_secs(600);
/// How long a barrier may take to come back before the answer is "everything".
const BARRIER_WAIT: Duration = Duration::from_secs(2);

/// What changed since the last [`ShareWatch::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Changes {
    /// Walk the whole share.
    Everything,
    /// Only these paths (relative, `/`-separated; `""` is the root) were created, written,
    /// removed, renamed or had their mode changed.
    Paths(HashSet<String>),
}

/// Watches one share's folder tree.
#[derive(Debug)]
pub struct ShareWatch {
    /// `None` when the watcher could not start: then every index walks everything.
    watcher: Option<(RecommendedWatcher, tempfile::TempDir)>,
    shared: Arc<(Mutex<State>, Condvar)>,
}

#[derive(Debug, Default)]
struct State {
    paths: HashSet<String>,
    everything: bool,
    full_at: Option<Instant>,
    /// Barrier files whose events arrived.
    barriers: HashSet<PathBuf>,
}

impl ShareWatch {
    /// Starts watching `root` and everything below it (before the first index, so that nothing
    /// written during it goes unseen). Barrier files go into a fresh folder under `scratch`.
    pub fn start(root: &Path, scratch: &Path) -> ShareWatch {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let watcher = match Self::watcher(root, scratch, shared.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::info!(
                    "cannot watch {} for changes ({e}); every file list of it walks the whole folder",
                    root.display()
                );
                None
            }
        };
        ShareWatch { watcher, shared }
    }

    fn watcher(
        root: &Path,
        scratch: &Path,
        shared: Arc<(Mutex<State>, Condvar)>,
    ) -> Result<(RecommendedWatcher, tempfile::TempDir), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(scratch)?;
        let barriers = tempfile::Builder::new()
            .prefix("barrier-")
            .tempdir_in(scratch)?;
        let barrier_dir = barriers.path().to_path_buf();
        let base = root.to_path_buf();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let (lock, arrived) = &*shared;
            let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
            let event = match res {
                Ok(event) if !event.need_rescan() => event,
                _ => {
                    s.everything = true;
                    return;
                }
            };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                if path.parent() == Some(barrier_dir.as_path()) {
                    s.barriers.insert(path);
                    arrived.notify_all();
                    continue;
                }
                match relative(&base, &path) {
                    Some(rel) => {
                        s.paths.insert(rel);
                    }
                    None => s.everything = true,
                }
            }
        })?;
        w.watch(root, RecursiveMode::Recursive)?;
        w.watch(barriers.path(), RecursiveMode::NonRecursive)?;
        Ok((w, barriers))
    }

    /// What changed since the last call (or everything, see the module notes), and starts
    /// collecting afresh.
    pub fn take(&self) -> Changes {
        let (lock, arrived) = &*self.shared;
        let barrier_back = match &self.watcher {
            Some((_, dir)) => {
                let file = dir.path().join(uuid::Uuid::new_v4().simple().to_string());
                let written = std::fs::write(&file, b"");
                let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                let deadline = Instant::now() + BARRIER_WAIT;
                while written.is_ok() && !s.barriers.contains(&file) && Instant::now() < deadline {
                    s = arrived
                        .wait_timeout(s, deadline.saturating_duration_since(Instant::now()))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                let back = s.barriers.remove(&file);
                drop(s);
                let _ = std::fs::remove_file(&file);
                back
            }
            None => false,
        };
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        // The removal's event may come later: forget barriers of earlier calls.
        s.barriers.clear();
        let stale = s.full_at.is_none_or(|t| t.elapsed() >= FULL_EVERY);
        if !barrier_back || s.everything || stale {
            *s = State {
                full_at: Some(Instant::now()),
                ..State::default()
            };
            return Changes::Everything;
        }
        Changes::Paths(std::mem::take(&mut s.paths))
    }

    /// The next [`take`](Self::take) says everything (an index that used its answer failed).
    pub fn forget(&self) {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .everything = true;
    }
}

/// `path` relative to `base`, `/`-separated; `""` for `base` itself.
fn relative(base: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}
