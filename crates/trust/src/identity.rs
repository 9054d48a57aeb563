//! The node's TLS identity: a self-signed certificate and its key, created on first start in
//! `DATA_DIR/tls/` and kept across restarts, so peers that pinned it keep trusting this node.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

const CERT_FILE: &str = "tls/cert.der";
const KEY_FILE: &str = "tls/key.der";

#[derive(Clone)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key: Arc<PrivatePkcs8KeyDer<'static>>,
    fingerprint: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of a certificate (DER), in lowercase hex: what announcements carry and peers pin.
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Identity {
    /// Loads the identity from `data_dir`, or makes one (named after `name`) on first start.
    pub fn load_or_create(data_dir: &Path, name: &str) -> std::io::Result<Identity> {
        let (cert_path, key_path) = (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE));
        match (std::fs::read(&cert_path), std::fs::read(&key_path)) {
            (Ok(cert), Ok(key)) => Ok(Identity::from_der(cert, key)),
            (Err(e), _) | (_, Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot read this node's TLS identity in {}: {e}",
                        cert_path.parent().unwrap_or(data_dir).display()
                    ),
                ))
            }
            _ => {
                let made =
                    rcgen::generate_simple_self_signed(vec!["aienv".to_string(), sanitize(name)])
                        .map_err(std::io::Error::other)?;
                let cert = made.cert.der().to_vec();
                let key = made.key_pair.serialize_der();
                let dir = data_dir.join("tls");
                std::fs::create_dir_all(&dir)?;
                owner_only(&dir)?;
                // The key first, private from the start: a crash between the two writes leaves a
                // key without a certificate, which the next start replaces.
                aienv_core::fsutil::atomic_write_with(&key_path, &key, owner_only)?;
                aienv_core::fsutil::atomic_write(&cert_path, &cert)?;
                Ok(Identity::from_der(cert, key))
            }
        }
    }

    fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Identity {
        Identity {
            fingerprint: fingerprint(&cert),
            cert: CertificateDer::from(cert),
            key: Arc::new(PrivatePkcs8KeyDer::from(key)),
        }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The server side: this certificate, HTTP/1.1, and client certificates asked for but not
    /// required: a peer presents its own (self-signed) one, which proves which node it is; other
    /// TLS clients (curl, a browser) may present none.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(AnyPeer(crate::provider())))
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.as_ref().clone_key()),
            )?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl Identity {
    /// This certificate and key, for a client that presents them.
    pub(crate) fn cert_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.as_ref().clone_key()),
        )
    }
}

/// Accepts any client certificate whose key signs the handshake (the proof that the client
/// holds the key): peers are self-signed, and who they are is decided by the fingerprint, which
/// the node then checks against what it knows of the peer (see the node's `access`).
#[derive(Debug)]
struct AnyPeer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyPeer {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A DNS name rcgen accepts: host names may carry characters a SAN cannot.
fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if s.trim_matches('-').is_empty() {
        "node".into()
    } else {
        s
    }
}

/// Makes a file (0600) or folder (0700) readable by its owner only: the key, share tokens a
/// node holds.
#[cfg(unix)]
pub fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o700 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub fn owner_only(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path(), "gpu box!").unwrap();
        let b = Identity::load_or_create(dir.path(), "renamed").unwrap();
        assert_eq!(
            a.fingerprint(),
            b.fingerprint(),
            "a restart keeps the certificate"
        );
        assert_eq!(a.fingerprint().len(), 64);
        a.server_config().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
        }
        let other = tempfile::tempdir().unwrap();
        let c = Identity::load_or_create(other.path(), "gpu box!").unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint(), "each node has its own");
    }
}
