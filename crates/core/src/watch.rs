//! Watching workspace folders for edits of their `aienv.toml`, and of the files adopted
//! environments are read from (a `devcontainer.json`, a `compose.yaml`, their Dockerfiles).
//!
//! Folders are watched, not files, and not recursively: editors save by writing a temp file and
//! renaming it over the original, which replaces the file's inode, so watching the file itself
//! would go deaf after the first save. Events for other files in those folders are dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::manifest::MANIFEST_FILE;

/// Calls back with a workspace folder whenever its manifest, or a file it follows, may have
/// changed (written, created, renamed into place, deleted). Callers debounce: one save can
/// produce several events.
#[derive(Debug)]
pub struct ManifestWatcher {
    watcher: RecommendedWatcher,
    /// Followed file -> the workspace folder it belongs to.
    followed: Arc<Mutex<BTreeMap<PathBuf, PathBuf>>>,
    /// Watched folder -> how many workspaces (or followed files) need it.
    folders: BTreeMap<PathBuf, usize>,
    /// Workspace folder -> the extra folders watched for its followed files.
    extra: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl ManifestWatcher {
    pub fn new(on_change: impl Fn(PathBuf) + Send + 'static) -> notify::Result<Self> {
        let followed: Arc<Mutex<BTreeMap<PathBuf, PathBuf>>> = Arc::default();
        let files = followed.clone();
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
                } else if let Some(ws) = files.lock().unwrap_or_else(|e| e.into_inner()).get(&path)
                {
                    on_change(ws.clone());
                }
            }
        })?;
        Ok(ManifestWatcher {
            watcher,
            followed,
            folders: BTreeMap::new(),
            extra: BTreeMap::new(),
        })
    }

    pub fn watch(&mut self, dir: &Path) -> notify::Result<()> {
        self.add_folder(dir)
    }

    pub fn unwatch(&mut self, dir: &Path) {
        let _ = self.follow(dir, &[]);
        self.remove_folder(dir);
    }

    /// Follows `files` (absolute) for the workspace at `dir`, instead of what it followed
    /// before: a change to one of them is reported as a change of `dir`.
    pub fn follow(&mut self, dir: &Path, files: &[PathBuf]) -> notify::Result<()> {
        {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            followed.retain(|_, ws| ws != dir);
            for f in files {
                followed.insert(f.clone(), dir.to_path_buf());
            }
        }
        let wanted: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent())
            .filter(|p| *p != dir)
            .map(Path::to_path_buf)
            .collect();
        let before = self.extra.remove(dir).unwrap_or_default();
        for gone in before.difference(&wanted) {
            self.remove_folder(gone);
        }
        let mut result = Ok(());
        for new in wanted.difference(&before) {
            if let Err(e) = self.add_folder(new) {
                result = Err(e);
            }
        }
        self.extra.insert(dir.to_path_buf(), wanted);
        result
    }

    fn add_folder(&mut self, dir: &Path) -> notify::Result<()> {
        let n = self.folders.entry(dir.to_path_buf()).or_insert(0);
        *n += 1;
        if *n == 1
            && let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive)
        {
            self.folders.remove(dir);
            return Err(e);
        }
        Ok(())
    }

    fn remove_folder(&mut self, dir: &Path) {
        if let Some(n) = self.folders.get_mut(dir) {
            *n -= 1;
            if *n == 0 {
                self.folders.remove(dir);
                // Unwatching a folder that was deleted fails; there is nothing left to do then.
                let _ = self.watcher.unwatch(dir);
            }
        }
    }
}
