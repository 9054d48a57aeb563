//! aienv discovery: nodes find each other on the LAN with UDP multicast, without a server.
//!
//! Each node announces itself on group 239.255.77.77:47477 (TTL 1) in a short burst at start
//! (asking the others to answer at once), then every [`DiscoveryConfig::interval`], at once when
//! its catalog changes, and with a goodbye when it stops. Every node keeps a [`PeerTable`] of
//! what it hears; a peer silent for [`DiscoveryConfig::expiry`] is dropped. Bad datagrams are
//! dropped and counted by reason ([`Status`]), never fatal.
//!
//! Depends on `aienv-core` only; only this crate opens UDP sockets. Start at [`Discovery::start`],
//! then `service.rs`; the wire format is in [`datagram`].

pub mod datagram;
mod limit;
mod net;
pub mod peers;
mod service;

use std::net::SocketAddrV4;
use std::time::Duration;

pub use datagram::MAX_GPUS;
pub use net::Interface;
pub use peers::{LeftReason, Peer, PeerEvent, Via};
pub use service::{Announce, Discovery, Status};

/// The multicast group and port of the protocol.
pub use aienv_core::config::DEFAULT_DISCOVERY_GROUP as DEFAULT_GROUP;

/// How discovery runs.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub group: SocketAddrV4,
    /// Interface names or IPv4 addresses; empty: every up interface with a private address.
    pub interfaces: Vec<String>,
    /// Time between two announcements.
    pub interval: Duration,
    /// A peer not heard for this long is dropped (three missed announcements and a margin).
    pub expiry: Duration,
    pub ttl: u32,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            group: DEFAULT_GROUP,
            interfaces: Vec::new(),
            interval: Duration::from_secs(1),
            expiry: Duration::from_millis(3500),
            ttl: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot list this machine's network interfaces: {0}")]
    Interfaces(String),
    #[error(
        "discovery interface {wanted:?} is not a name or IPv4 address of this machine; it has: {known}"
    )]
    NoSuchInterface { wanted: String, known: String },
    #[error("{0}")]
    Socket(String),
}
