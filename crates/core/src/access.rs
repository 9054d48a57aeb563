//! Requests for access to a share whose owner approves each one (`access = "approve"`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A peer asks to clone a workspace and waits for the owner's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessRequest {
    pub id: String,
    pub workspace_id: String,
    pub workspace: String,
    /// The id and name the peer gave (claims; `from` is the address it connected from).
    pub peer_id: Option<String>,
    pub peer_name: Option<String>,
    pub from: String,
    pub requested_ms: u64,
    /// When it is refused if nobody answers.
    pub expires_ms: u64,
}
