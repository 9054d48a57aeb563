//! Peers: other nodes of the LAN as this node knows them (found by discovery or by address).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A node on the LAN, as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Peer {
    /// Its instance id.
    pub id: String,
    pub name: String,
    /// The address it was heard from (multicast) or probed at (static).
    #[schema(value_type = String)]
    pub address: IpAddr,
    /// Its API port.
    pub port: u16,
    pub scheme: String,
    /// Base URL of its API, e.g. `http://10.0.0.7:47478`.
    pub url: String,
    pub version: String,
    /// How many environments it shares.
    pub shared: u32,
    /// Its catalog revision.
    pub rev: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How it was found.
    pub via: Via,
    /// When it was first heard, in ms since the Unix epoch.
    pub since_ms: u64,
    /// What it has free, as it last announced (absent from nodes that do not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<PeerResources>,
}

/// What a node has free, as it announces it every second: enough for a peer to decide where an
/// environment fits without asking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerResources {
    pub cpus: u32,
    pub memory_mb: u64,
    /// Memory available to new processes (rounded to 256 MB, so small changes are not news).
    pub memory_free_mb: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<PeerGpu>,
    /// Runs live on it now.
    pub runs: u32,
    /// Whether it takes runs from peers (`[remote_runs] access` is not `off`).
    #[serde(default)]
    pub accepts_runs: bool,
}

/// One GPU of a node, as announced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PeerGpu {
    pub index: u32,
    pub name: String,
    pub memory_mb: u64,
    /// Free memory (rounded to 256 MB), where the driver says.
    pub memory_free_mb: Option<u64>,
    /// Held by a run of that node (its reservation), so not free for another.
    #[serde(default)]
    pub held: bool,
}

impl PeerResources {
    /// The GPUs no run holds.
    pub fn free_gpus(&self) -> impl Iterator<Item = &PeerGpu> {
        self.gpus.iter().filter(|g| !g.held)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Its multicast announcements.
    Multicast,
    /// A configured address, probed over HTTP (for networks that block multicast).
    Static,
}

/// Why a peer left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LeftReason {
    /// It said goodbye.
    Goodbye,
    /// It fell silent for longer than the expiry.
    Expired,
}
