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
