//! One shared folder's file list, kept current between requests: the hash cache, a watcher of
//! the folder, and the last list. A request looks again only at the paths that changed since the
//! last one (at nothing when nothing changed).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{FileManifest, HashCache, index, reindex};
use crate::exclude::Filter;
use crate::watch::{Changes, ShareWatch};

#[derive(Debug)]
pub struct ShareIndex {
    root: PathBuf,
    cache: HashCache,
    watch: ShareWatch,
    /// The last list and the key of the filter it was made with.
    last: Mutex<Option<(String, Arc<FileManifest>)>>,
}

impl ShareIndex {
    /// Starts watching `root` (the watcher's own files go under `scratch`); the first
    /// [`list`](Self::list) walks it whole.
    pub fn new(root: &Path, scratch: &Path) -> ShareIndex {
        ShareIndex {
            root: root.to_path_buf(),
            cache: HashCache::default(),
            watch: ShareWatch::start(root, scratch),
            last: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The last list made, without looking for changes (a stream request names the revision
    /// of the list its sender just fetched).
    pub fn last(&self) -> Option<Arc<FileManifest>> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().map(|(_, m)| m.clone())
    }

    /// The current file list. `filter_key` identifies `filter` (another key walks everything
    /// again: the exclusions changed). `finish` adjusts a new list before it is kept (the
    /// sender's substitutes); a list from the folders that changed gets it again.
    pub fn list(
        &self,
        workspace_id: &str,
        filter: &Filter,
        filter_key: &str,
        finish: impl FnOnce(&mut FileManifest),
    ) -> std::io::Result<Arc<FileManifest>> {
        // One index of a share at a time: the second request then finds the first one's list.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let changes = self.watch.take();
        let prev = last
            .as_ref()
            .filter(|(key, _)| key == filter_key)
            .map(|(_, m)| m.clone());
        let made = match (changes, prev) {
            (Changes::Paths(paths), Some(prev)) => {
                match reindex(&self.root, workspace_id, filter, &self.cache, &prev, &paths) {
                    Ok(None) => return Ok(prev),
                    Ok(Some(m)) => Ok(m),
                    Err(e) => Err(e),
                }
            }
            _ => index(&self.root, workspace_id, filter, &self.cache),
        };
        let mut m = made.inspect_err(|_| self.watch.forget())?;
        finish(&mut m);
        let m = Arc::new(m);
        *last = Some((filter_key.to_string(), m.clone()));
        Ok(m)
    }
}
