//! The file manifests of shared workspaces (what a clone consists of), for peers.

use std::sync::Arc;

use aienv_sharing::Filter;
use aienv_sharing::index::{self, FileManifest, HashCache};

use crate::error::{NodeError, Result};
use crate::{Node, lock};

impl Node {
    /// Indexes a shared workspace: every entry a clone recreates, with content hashes. Files
    /// unchanged since the last index are not read again. Blocking: it reads the disk.
    pub fn file_manifest(&self, ws: &str) -> Result<FileManifest> {
        let w = self.workspace(ws)?;
        let Some(sharing) = w
            .manifest
            .as_ref()
            .map(|m| &m.sharing)
            .filter(|s| s.enabled)
        else {
            return Err(NodeError::NotFound(format!(
                "workspace {:?} is not shared",
                w.name
            )));
        };
        let filter = Filter::new(&w.path, sharing).map_err(NodeError::InvalidRequest)?;
        let cache: Arc<HashCache> = lock(&self.inner.hash_caches)
            .entry(w.id.clone())
            .or_default()
            .clone();
        index::index(&w.path, &w.id, &filter, &cache).map_err(|e| {
            NodeError::io(
                format!(
                    "cannot index workspace {:?} at {}",
                    w.name,
                    w.path.display()
                ),
                e,
            )
        })
    }
}
