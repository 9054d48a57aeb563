//! Runs as users see them: which environment runs where, in what state, and the links to its tools.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::EnvKind;

/// One start of one environment on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub environment: String,
    pub kind: EnvKind,
    pub state: RunState,
    /// The links to hand the user once the tools answer.
    pub tools: Vec<ToolLink>,
    /// Why the run failed, in a sentence that says what to do (with the last log lines).
    pub error: Option<String>,
    /// Notes about how the run was fitted to this machine (a fallback used, software emulation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How the process tree ended, when it did and that is known.
    pub exit_code: Option<i32>,
    /// Where the backend keeps it: process group, container id, VM process.
    pub handle: RunHandle,
    /// The run's log file (stdout and stderr of everything it started, or the VM's serial console).
    #[schema(value_type = String)]
    pub log: PathBuf,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    /// How setting up its Python goes, while the run is starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<SetupProgress>,
    /// The GPUs (indices on the node that runs it) it holds until it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<u32>,
    /// Set when it runs on a peer: the state, tools and log here mirror the peer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<RunPeer>,
    /// A batch job's outputs, once copied back: where they are on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub outputs: Option<PathBuf>,
    /// Where it runs when started over SSH on a machine without aienv (`user@host[:port]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
}

/// How setting up a run's Python environment goes: the step, and the packages resolved, fetched
/// (from the LAN cache, which asks peers before the internet) and installed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SetupProgress {
    /// The step running now, e.g. "uv pip install".
    pub step: String,
    /// How many packages the environment has, once the resolver settled on them.
    pub packages: Option<u32>,
    /// Package files fetched so far through this node's LAN cache.
    pub fetched: u32,
    /// Of those, how many came from peers (the rest were in this node's cache or upstream).
    pub from_peers: u32,
    /// Bytes of package files fetched from peers or upstream.
    pub bytes: u64,
    /// The state in a sentence, for the UI ("fetching packages: 12 of 40, 85 MB from gpu-box").
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Setting up (Python environment, VM overlay) and starting.
    Starting,
    /// Started, waiting for the tools to answer.
    WaitingReady,
    /// Every tool answers.
    Running,
    Stopping,
    /// Stopped by a user.
    Stopped,
    /// It ended by itself (the exit code says how, where known).
    Exited,
    /// It could not start, or a tool never became ready.
    Failed,
    /// It runs on a peer that stopped answering: it may still be running there. The state comes
    /// back when the peer does.
    Lost,
}

impl RunState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Stopped | RunState::Exited | RunState::Failed
        )
    }

    /// The state in words, for messages and listings.
    pub fn describe(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::WaitingReady => "waiting for its tools",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
            RunState::Exited => "ended",
            RunState::Failed => "failed",
            RunState::Lost => "lost (its peer stopped answering)",
        }
    }
}

/// A tool of a run: where it listens and the link to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ToolLink {
    pub name: String,
    /// The port on this machine (published or forwarded for containers and VMs).
    pub port: Option<u16>,
    /// The link with its token filled in.
    pub url: Option<String>,
    pub ready: bool,
}

/// What the backend needs to find a run again after the node restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum RunHandle {
    /// Not started yet.
    None,
    /// A process group (processes, and the QEMU process of a VM).
    Process { pgid: u32 },
    /// A container of the engine at `engine`.
    Container { id: String, engine: String },
}

/// A new run, as asked through the API or the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunRequest {
    /// Workspace id or name.
    pub workspace: String,
    pub environment: String,
    /// Start even though this machine lacks what the environment requires.
    #[serde(default)]
    pub force: bool,
    /// Run it on a machine without aienv through the system's `ssh`: `user@host[:port]`. The
    /// workspace is copied there, and the tools' ports are forwarded back to this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// Run it on a peer: its name or id, or `auto` for the node where it fits best (this one
    /// included). The peer receives the workspace if it lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// The node whose workspace it is (a catalog entry's owner), when not this one: the peer
    /// that runs it receives it from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A batch job (`aienv submit`): its `outputs` are copied back here when it ends; with no
    /// node free for it, it waits in the queue.
    #[serde(default)]
    pub submit: bool,
}

/// Where a run started from this node runs, when that is a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunPeer {
    pub id: String,
    pub name: String,
    /// The run's id on the peer.
    pub remote_id: Option<String>,
    /// When the peer last answered about it (ms since the epoch).
    pub seen_ms: u64,
}

/// A peer asks this node to run an environment (`POST /api/v1/remote/runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemoteRunRequest {
    /// The node whose workspace it is (this node, or the asker, or a third node).
    pub owner_id: String,
    pub owner_name: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub environment: String,
    #[serde(default)]
    pub force: bool,
    /// A token for the owner's share, when the owner is the asker (a grant it made for this node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The address this node was reached at: its tools listen there, so the links work for the
    /// asker (used when this node listens on every address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub reach: Option<std::net::IpAddr>,
    /// The environment's `outputs` are wanted back when it ends (`aienv submit`).
    #[serde(default)]
    pub submit: bool,
    /// The GPUs it needs and the memory each must have, as the asker read its requirements:
    /// a node without them free says `no_capacity` at once.
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub vram_mb: u64,
}

/// A peer's run on this node, as that peer follows it (`GET /api/v1/remote/runs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemoteJob {
    pub id: String,
    /// Who asked (the node id and name it presented, checked against its certificate).
    pub requester_id: String,
    pub requester_name: String,
    pub workspace: String,
    pub environment: String,
    pub phase: RemotePhase,
    /// What is going on, in a sentence ("receiving the workspace from laptop: 40%").
    pub message: String,
    /// Why it could not start.
    pub error: Option<String>,
    /// The run, once started.
    pub run: Option<Run>,
    pub created_ms: u64,
}

/// What changed about a peer's run since the asker last looked
/// (`GET /api/v1/remote/runs/{id}/changes`): answered as soon as anything did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemoteUpdate {
    pub job: RemoteJob,
    /// A tag of `job` as it is now; sent back as `seen`, it means "tell me when this changes".
    pub version: String,
    /// New log lines, from the line asked for.
    pub lines: Vec<String>,
    /// The line to ask from next time.
    pub next: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemotePhase {
    /// Waiting for this node's owner to say yes (`[remote_runs] access = "approve"`).
    Approving,
    /// Receiving the workspace from its owner.
    Receiving,
    /// Started: `run` says how it goes.
    Started,
    /// It could not start; `error` says why.
    Failed,
}

/// Log lines of a run, as they are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogLines {
    pub run_id: String,
    pub lines: Vec<String>,
}

/// What a live run uses right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunUsage {
    /// CPU time used over a short sample, in percent of one CPU (200 = two CPUs busy).
    pub cpu_percent: f64,
    /// Resident memory of its processes (their sum: pages they share count once per process).
    pub memory_bytes: u64,
    pub processes: u32,
}
