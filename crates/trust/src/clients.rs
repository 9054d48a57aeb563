//! HTTP clients for talking to peers. Over TLS, a client accepts exactly one certificate: the
//! peer's pinned one (no CA, no host name: peers are known by fingerprint, not by name). Plain
//! HTTP is used only when this node is configured to allow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aienv_core::peer::Peer;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::identity::{Identity, fingerprint};
use crate::pins::{PinError, Pins, lock};

/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error(transparent)]
    Pin(#[from] PinError),
    #[error(
        "peer {name:?} offers only plain HTTP, and this node talks to peers over TLS only. Update \
         it, or, on a network you trust, set `plain_peers = true` in config.toml on both nodes"
    )]
    Plain { name: String },
    #[error("peer {name:?} announces TLS without a certificate fingerprint; update it")]
    NoFingerprint { name: String },
}

/// The clients of one node, one per pinned fingerprint, made on first use.
#[derive(Debug)]
pub struct PeerClients {
    pins: Arc<Pins>,
    plain_allowed: bool,
    /// Presented to peers, so they know which node asks (mutual TLS).
    identity: Option<Identity>,
    clients: Mutex<HashMap<String, reqwest::Client>>,
}

impl PeerClients {
    pub fn new(pins: Arc<Pins>, plain_allowed: bool, identity: Option<Identity>) -> PeerClients {
        PeerClients {
            pins,
            plain_allowed,
            identity,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn pins(&self) -> &Pins {
        &self.pins
    }

    pub fn plain_allowed(&self) -> bool {
        self.plain_allowed
    }

    /// The client for `peer`: pinned to its certificate (pinning it on first contact), or plain
    /// when both sides allow that.
    pub fn for_peer(&self, peer: &Peer) -> Result<reqwest::Client, PeerError> {
        if peer.scheme != "https" {
            return if self.plain_allowed {
                Ok(self.client(None))
            } else {
                Err(PeerError::Plain {
                    name: peer.name.clone(),
                })
            };
        }
        let Some(fp) = &peer.fingerprint else {
            return Err(PeerError::NoFingerprint {
                name: peer.name.clone(),
            });
        };
        self.pins.check(&peer.id, &peer.name, fp)?;
        Ok(self.client(Some(fp)))
    }

    /// A client that accepts any certificate and reports it (`reqwest::tls::TlsInfo`): for the
    /// first contact with a peer added by address, whose fingerprint is not known yet. What it
    /// fetches is only used to learn the peer's id and fingerprint, which are then pinned.
    pub fn first_contact(&self) -> reqwest::Client {
        self.client(Some(""))
    }

    fn client(&self, fp: Option<&str>) -> reqwest::Client {
        let key = fp.unwrap_or("plain").to_string();
        lock(&self.clients)
            .entry(key)
            .or_insert_with(|| build(fp, self.identity.as_ref()))
            .clone()
    }
}

/// Fetches are rare and transfers are long, so connections are not pooled: an idle connection
/// per peer would cost more memory, on both sides, than everything else kept about that peer.
fn build(fp: Option<&str>, identity: Option<&Identity>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(CONNECT_TIMEOUT);
    let builder = match fp {
        None => builder,
        Some(fp) => builder
            .use_preconfigured_tls(tls_config(fp, identity))
            .tls_info(true),
    };
    builder.build().expect("the HTTP client builds")
}

/// A rustls client config that accepts only the certificate with SHA-256 `fp` ("" = any), and
/// presents `identity`'s certificate when given.
pub fn tls_config(fp: &str, identity: Option<&Identity>) -> rustls::ClientConfig {
    let provider = crate::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            fingerprint: fp.to_string(),
            provider,
        }));
    let mut config = match identity.map(Identity::cert_and_key) {
        Some((cert, key)) => builder
            .with_client_auth_cert(cert, key)
            .expect("the node's own key matches its certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The fingerprint of the certificate a response came over, if it came over TLS.
pub fn response_fingerprint(res: &reqwest::Response) -> Option<String> {
    res.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(fingerprint)
}

#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if self.fingerprint.is_empty() || got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the peer's certificate ({got:.16}...) is not the one pinned for it \
                 ({:.16}...): someone may be intercepting the connection",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An error with its causes, `a: b: c`: reqwest's own message hides why a TLS handshake failed.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
