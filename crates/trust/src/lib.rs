//! aienv trust: who a node is to its peers and who it lets in.
//!
//! - [`Identity`]: the node's self-signed certificate, made on first start and kept in the data
//!   dir. Its SHA-256 [`fingerprint`] travels in announcements; peers pin it.
//! - [`Pins`]: the fingerprints this node has pinned, per peer id (trust on first contact, the way
//!   Syncthing and LocalSend do it); a changed one is refused until the user re-trusts it.
//! - [`PeerClients`]: HTTPS clients that accept exactly the pinned certificate of a peer.
//! - [`Tokens`]: per-share tokens the owner creates, lists and revokes (grants of approved
//!   requests are tokens too).
//! - [`Audit`]: an append-only log of what peers asked for and got.
//!
//! Depends only on `aienv-core`. TLS is rustls with the ring provider.

mod audit;
mod clients;
mod identity;
mod pins;
mod tokens;

pub use audit::{Audit, AuditRecord};
pub use clients::{PeerClients, PeerError};
pub use clients::{describe, response_fingerprint, tls_config};
pub use identity::{Identity, fingerprint};
pub use pins::{PinError, Pins, TrustedPeer};
pub use tokens::{NewToken, TokenCheck, TokenInfo, Tokens};

/// The rustls crypto provider every TLS config of this node uses.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
