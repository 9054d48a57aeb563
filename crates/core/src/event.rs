//! Events: what the node tells its clients (the WebSocket, the desktop shell, tests) as it happens.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clone::CloneJob;
use crate::manifest::ManifestError;
use crate::model::Workspace;
use crate::peer::{LeftReason, Peer};
use crate::run::{LogLines, Run};

/// One event on the node's bus. Serialised with a `type` tag, e.g.
/// `{"type": "workspace_changed", "workspace": {...}, "cause": "file"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A workspace was registered (created, added).
    WorkspaceAdded { workspace: Workspace },
    /// A workspace's manifest changed and is valid (this also clears an earlier problem).
    WorkspaceChanged {
        workspace: Workspace,
        cause: ChangeCause,
    },
    /// A workspace was unregistered; its files are untouched.
    WorkspaceRemoved { id: String, name: String },
    /// The manifest on disk became invalid or unreadable; the last good manifest stays in effect.
    ManifestInvalid {
        workspace_id: String,
        error: ManifestError,
    },
    /// A node was found on the LAN (or at a configured address).
    PeerJoined { peer: Peer },
    /// Something a peer announces changed (name, address, shared count, catalog revision).
    PeerUpdated { peer: Peer },
    /// A peer said goodbye or fell silent.
    PeerLeft { peer: Peer, reason: LeftReason },
    /// A clone started, or moved on (about four times a second while it runs).
    CloneProgress { job: CloneJob },
    /// A clone finished: the workspace is registered and every file verified.
    CloneDone { job: CloneJob },
    /// A clone failed or was cancelled; `job.error` says why and what to do.
    CloneFailed { job: CloneJob },
    /// A run started, changed state, or ended.
    RunChanged { run: Run },
    /// New lines in a run's log (sent in batches, a few times a second at most).
    RunLog { log: LogLines },
    /// A peer asks for access to a share with `access = "approve"`: the owner answers with
    /// `POST /access-requests/{id}` before `request.expires_ms`.
    AccessRequested {
        request: crate::access::AccessRequest,
    },
    /// An access request was answered (or timed out: `approved` false, `timed_out` true).
    AccessDecided {
        request: crate::access::AccessRequest,
        approved: bool,
        timed_out: bool,
    },
    /// The catalog changed: the environments `owner_id` shares (this node's own when `local`).
    CatalogChanged {
        owner_id: String,
        owner_name: String,
        local: bool,
    },
}

/// Who changed a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// Through the API (UI, CLI).
    Api,
    /// An edit of `aienv.toml` on disk (an editor, git checkout).
    File,
}
