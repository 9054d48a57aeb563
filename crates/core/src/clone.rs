//! Clone jobs as users see them: what is being copied from where, how far it got, how it ended.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CloneJob {
    pub id: String,
    pub peer_id: String,
    pub peer_name: String,
    pub workspace_id: String,
    pub workspace_name: String,
    /// Where the clone goes (registered there once complete and verified).
    #[schema(value_type = String)]
    pub target: PathBuf,
    /// True when this updates an earlier clone (`aienv pull`).
    pub pull: bool,
    pub state: CloneState,
    pub progress: CloneProgress,
    /// Why it failed, in a sentence that says what to do.
    pub error: Option<String>,
    /// The registered workspace, once done.
    pub result_workspace_id: Option<String>,
    /// What fitting the clone to this machine found or did (images brought, environments that
    /// do not fit here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub started_ms: u64,
    pub finished_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloneState {
    Running,
    Done,
    Failed,
    Cancelled,
    /// The node stopped while it ran; cloning again resumes it.
    Interrupted,
}

impl CloneState {
    pub fn is_final(self) -> bool {
        self != CloneState::Running
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CloneProgress {
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub files_total: u64,
    pub files_done: u64,
    /// Bytes that crossed the network (the rest was already here).
    pub bytes_sent: u64,
    /// Bytes per second over the last interval.
    pub rate: f64,
    /// Seconds left at that rate.
    pub eta_s: Option<f64>,
}
