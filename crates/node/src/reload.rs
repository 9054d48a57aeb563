//! Hand edits: the watcher reports a changed `aienv.toml`; after a short settle, the node reads
//! it again. A valid edit takes effect and is published; an invalid one keeps the last good
//! manifest in effect and publishes the error with its position.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aienv_core::Event;
use aienv_core::event::ChangeCause;
use aienv_core::watch::ManifestWatcher;
use tokio::sync::mpsc;

use crate::{Node, SETTLE, lock, read};

impl Node {
    /// Starts the OS watcher and the task that turns its reports into reloads.
    pub(crate) fn start_watcher(&self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        match ManifestWatcher::new(move |dir| {
            let _ = tx.send(dir);
        }) {
            Ok(w) => *lock(&self.inner.watcher) = Some(w),
            Err(e) => {
                tracing::warn!(
                    "cannot watch manifests ({e}); hand edits of aienv.toml take effect at the next start"
                );
                return;
            }
        }
        // The task holds a weak handle: it must not keep a shut-down node alive.
        let weak = self.downgrade();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut dirs = BTreeSet::from([first]);
                tokio::time::sleep(SETTLE).await;
                while let Ok(more) = rx.try_recv() {
                    dirs.insert(more);
                }
                let Some(node) = weak.upgrade() else { break };
                tokio::task::spawn_blocking(move || {
                    for dir in dirs {
                        node.reload(&dir);
                    }
                });
            }
        });
    }

    pub(crate) fn watch(&self, dir: &Path) {
        if let Some(w) = lock(&self.inner.watcher).as_mut()
            && let Err(e) = w.watch(dir)
        {
            tracing::warn!(
                "cannot watch {} ({e}); hand edits there take effect at the next start",
                dir.display()
            );
        }
    }

    /// Reads the manifest of the workspace at `dir` again and publishes what changed.
    pub(crate) fn reload(&self, dir: &Path) {
        let _w = self.write_guard();
        let Some(ws) = read(&self.inner.workspaces)
            .values()
            .find(|w| w.path == dir)
            .cloned()
        else {
            return;
        };
        match crate::adopted::load(dir) {
            // Our own API writes come back through the watcher too: nothing changed, say nothing.
            Ok(m) if ws.manifest.as_ref() == Some(&m) && ws.problem.is_none() => {}
            Ok(m) => {
                tracing::info!(workspace = %ws.name, "manifest changed on disk");
                self.apply(ws, m, ChangeCause::File);
            }
            Err(e) if ws.problem.as_ref() == Some(&e) => {}
            Err(e) => {
                tracing::warn!("{e}");
                let id = ws.id.clone();
                self.mutate().insert(
                    id.clone(),
                    aienv_core::Workspace {
                        problem: Some(e.clone()),
                        ..ws
                    },
                );
                self.emit(Event::ManifestInvalid {
                    workspace_id: id,
                    error: e,
                });
            }
        }
    }
}
