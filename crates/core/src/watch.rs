//! Watching workspace folders for edits of their `aienv.toml`.
//!
//! Each workspace folder is watched on its own, not recursively: editors save by writing a temp
//! file and renaming it over the original, which replaces the file's inode, so watching the file
//! itself would go deaf after the first save. Events for other files in the folder are dropped.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::manifest::MANIFEST_FILE;

/// Calls back with a workspace folder whenever its manifest may have changed (written, created,
/// renamed into place, deleted). Callers debounce: one save can produce several events.
#[derive(Debug)]
pub struct ManifestWatcher {
    watcher: RecommendedWatcher,
}

impl ManifestWatcher {
    pub fn new(on_change: impl Fn(PathBuf) + Send + 'static) -> notify::Result<Self> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                if path.file_name().is_some_and(|n| n == MANIFEST_FILE)
                    && let Some(dir) = path.parent()
                {
                    on_change(dir.to_path_buf());
                }
            }
        })?;
        Ok(ManifestWatcher { watcher })
    }

    pub fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        self.watcher.watch(dir, RecursiveMode::NonRecursive)
    }

    pub fn unwatch(&mut self, dir: &Path) {
        // Unwatching a folder that was deleted fails; there is nothing left to do then.
        let _ = self.watcher.unwatch(dir);
    }
}
