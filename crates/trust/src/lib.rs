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
pub use identity::{Identity, fingerprint, owner_only};
pub use pins::{PinError, Pins, TrustedPeer};
pub use tokens::{NewToken, TokenCheck, TokenInfo, Tokens};

/// The rustls crypto provider every TLS config of this node uses.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a presented secret (an API key) is the expected one, in time that depends on neither
/// where they differ nor their lengths: both are hashed first, then compared in constant time.
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let (a, b) = (sha2::Sha256::digest(given), sha2::Sha256::digest(expected));
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(super::same_secret(b"s3cret", b"s3cret"));
        assert!(!super::same_secret(b"s3cres", b"s3cret"));
        assert!(!super::same_secret(b"s3cret-longer", b"s3cret"));
        assert!(!super::same_secret(b"", b"s3cret"));
    }
}
