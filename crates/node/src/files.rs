//! The file manifests of shared workspaces (what a clone consists of), for peers.

use std::sync::Arc;

use aienv_sharing::Filter;
use std::path::PathBuf;

use aienv_sharing::ShareIndex;
use aienv_sharing::index::{EntryKind, FileManifest};
use aienv_sharing::transfer::StreamRequest;

use crate::error::{NodeError, Result};
use crate::{Node, lock};

impl Node {
    /// Indexes a shared workspace: every entry a clone recreates, with content hashes. Only
    /// folders a watcher saw change since the last list are read again, and only changed files
    /// are hashed. Blocking: it reads the disk.
    pub fn file_manifest(&self, ws: &str) -> Result<Arc<FileManifest>> {
        self.refuse_when_paused()?;
        let w = self.workspace(ws)?;
        let Some(manifest) = w.manifest.as_ref().filter(|m| m.sharing.enabled) else {
            self.forget_share_index(&w.id);
            return Err(NodeError::NotFound(format!(
                "workspace {:?} is not shared",
                w.name
            )));
        };
        let filter = Filter::new(&w.path, &manifest.sharing)
            .map_err(NodeError::InvalidRequest)?
            .only(manifest.shared_paths());
        // Peers get the manifest as a clone should have it: not shared, and naming only the
        // shared environments.
        let file = w.path.join(aienv_core::MANIFEST_FILE);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| NodeError::io(format!("cannot read {}", file.display()), e))?;
        let view = aienv_core::manifest::shared_view(&text, &file, manifest)?;
        let share = {
            let scratch = self.inner.data_dir.path().join("watch");
            let mut shares = lock(&self.inner.share_indexes);
            let share = shares
                .entry(w.id.clone())
                .or_insert_with(|| Arc::new(ShareIndex::new(&w.path, &scratch)));
            if share.root() != w.path {
                *share = Arc::new(ShareIndex::new(&w.path, &scratch));
            }
            share.clone()
        };
        // The filter follows the manifest's sharing section; a new one means a full walk.
        let filter_key = format!("{:?}", (&manifest.sharing, manifest.shared_paths()));
        let m = share
            .list(&w.id, &filter, &filter_key, |m| {
                m.substitute(aienv_core::MANIFEST_FILE, view.into_bytes())
            })
            .map_err(|e| {
                NodeError::io(
                    format!(
                        "cannot index workspace {:?} at {}",
                        w.name,
                        w.path.display()
                    ),
                    e,
                )
            })?;
        tracing::debug!(entries = m.entries.len(), "share: file list made");
        Ok(m)
    }
}

impl Node {
    /// Stops watching a workspace that is no longer shared (or registered).
    pub(crate) fn forget_share_index(&self, id: &str) {
        lock(&self.inner.share_indexes).remove(id);
    }

    /// What to send for a stream request: the workspace root, the current manifest, and the
    /// requested file indices. Refused with `Changed` when the share moved on since the
    /// requester's manifest.
    pub fn stream_plan(
        &self,
        ws: &str,
        req: &StreamRequest,
    ) -> Result<(PathBuf, Arc<FileManifest>, Vec<usize>)> {
        // The file list the requester just fetched is usually the last one made: reuse it
        // rather than walk the tree again. Files written since are caught when sent.
        let w = self.workspace(ws)?;
        let share = lock(&self.inner.share_indexes).get(&w.id).cloned();
        let recent = share
            .and_then(|share| share.last())
            .filter(|m| m.revision == req.revision);
        let m = match recent {
            Some(m) => m,
            None => self.file_manifest(ws)?,
        };
        if m.revision != req.revision {
            return Err(NodeError::Changed(format!(
                "the share changed since revision {} (now {}); fetch its file list again",
                req.revision, m.revision
            )));
        }
        let indices = req.indices(m.entries.len()).ok_or_else(|| {
            NodeError::InvalidRequest(
                "the requested ranges are out of order or past the end".into(),
            )
        })?;
        if let Some(&i) = indices
            .iter()
            .find(|&&i| !matches!(m.entries[i].kind, EntryKind::File { .. }))
        {
            return Err(NodeError::InvalidRequest(format!(
                "entry {i} ({}) is not a file",
                m.entries[i].path
            )));
        }
        Ok((w.path, m, indices))
    }
}

impl Node {
    /// The `docker save` stream of an image a shared workspace's container environment names.
    /// Any other image is refused: a share exposes what its manifest names, nothing else.
    pub async fn share_image(
        &self,
        ws: &str,
        image: &str,
    ) -> Result<
        impl futures_util::Stream<Item = std::result::Result<bytes::Bytes, std::io::Error>>
        + Send
        + 'static,
    > {
        self.refuse_when_paused()?;
        let w = self.workspace(ws)?;
        let named = w
            .manifest
            .as_ref()
            .filter(|m| m.sharing.enabled)
            .is_some_and(|m| {
                m.environments
                    .iter()
                    .any(|e| e.image.as_deref() == Some(image))
            });
        if !named {
            return Err(NodeError::NotFound(format!(
                "workspace {:?} is not shared, or none of its environments uses the image {image:?}",
                w.name
            )));
        }
        Ok(aienv_runtime::image::export(image).await?)
    }
}
