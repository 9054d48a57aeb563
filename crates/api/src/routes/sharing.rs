//! `GET`/`PUT /sharing`: pausing all sharing of this node at once (the desktop tray's switch).

use aienv_node::Node;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Body;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharingState {
    /// While paused, peers see no environment of this node and can clone nothing from it.
    pub paused: bool,
}

/// Whether sharing is paused on this node.
#[utoipa::path(get, path = "/sharing", tag = "lan", operation_id = "show_sharing",
    responses((status = 200, body = SharingState)))]
pub async fn show(State(node): State<Node>) -> Json<SharingState> {
    Json(SharingState {
        paused: node.sharing_paused(),
    })
}

/// Pauses or resumes all sharing of this node (manifests are not changed; not kept across
/// restarts).
#[utoipa::path(put, path = "/sharing", tag = "lan", operation_id = "set_sharing",
    request_body = SharingState, responses((status = 200, body = SharingState)))]
pub async fn set(State(node): State<Node>, Body(req): Body<SharingState>) -> Json<SharingState> {
    node.set_sharing_paused(req.paused).await;
    Json(SharingState {
        paused: node.sharing_paused(),
    })
}
