//! Pausing sharing for the whole node (the tray's "Pause sharing"): peers see an empty share
//! list at once and every share request is refused, without touching any manifest. Not kept
//! across restarts: a pause is for now, `[sharing] enabled` is for good.

use std::sync::atomic::Ordering;

use aienv_core::Event;

use crate::Node;
use crate::error::{NodeError, Result};

impl Node {
    pub fn sharing_paused(&self) -> bool {
        self.inner.sharing_paused.load(Ordering::Relaxed)
    }

    /// Pauses or resumes sharing; peers learn of it with the next announcement.
    pub async fn set_sharing_paused(&self, paused: bool) {
        if self.inner.sharing_paused.swap(paused, Ordering::Relaxed) == paused {
            return;
        }
        tracing::info!(
            "sharing {} on this node",
            if paused { "paused" } else { "resumed" }
        );
        if self.refresh_local_shares().await {
            self.emit(Event::CatalogChanged {
                owner_id: self.inner.instance_id.clone(),
                owner_name: self.inner.config.name.clone(),
                local: true,
            });
        }
    }

    pub(crate) fn refuse_when_paused(&self) -> Result<()> {
        if self.sharing_paused() {
            return Err(NodeError::NotFound(
                "sharing is paused on this node; its owner can resume it from the tray or with \
                 PUT /api/v1/sharing {\"paused\": false}"
                    .into(),
            ));
        }
        Ok(())
    }
}
