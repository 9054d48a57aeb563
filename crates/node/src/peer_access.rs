//! This node as a client of peers' shares: the HTTP client for a peer (pinned to its
//! certificate), the share tokens it holds (given with `--token`, or granted on approval; kept in
//! `DATA_DIR/held-tokens.json`, readable by this user only), and the headers that present them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aienv_core::peer::Peer;
use aienv_trust::NewToken;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::{Node, NodeError, Result, lock};

/// The header a peer presents its share token in (the API key stays in `Authorization`).
pub const TOKEN_HEADER: &str = "aienv-share-token";
/// The headers a node names itself with to the peers it asks: claims, for their audit log.
pub const NODE_ID_HEADER: &str = "aienv-node-id";
pub const NODE_NAME_HEADER: &str = "aienv-node-name";

const HELD_FILE: &str = "held-tokens.json";

/// Share tokens this node holds, by `PEER_ID/WORKSPACE_ID`.
#[derive(Debug)]
pub(crate) struct HeldTokens {
    path: PathBuf,
    map: std::sync::Mutex<BTreeMap<String, String>>,
}

impl HeldTokens {
    pub(crate) fn load(data_dir: &Path) -> HeldTokens {
        let path = data_dir.join(HELD_FILE);
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        HeldTokens {
            path,
            map: std::sync::Mutex::new(map),
        }
    }
}

impl Node {
    /// The client for talking to `peer`: over TLS, accepting only its pinned certificate.
    pub(crate) fn peer_http(&self, peer: &Peer) -> Result<reqwest::Client> {
        self.inner
            .peer_clients
            .for_peer(peer)
            .map_err(|e| NodeError::Denied {
                code: match e {
                    aienv_trust::PeerError::Pin(_) => "peer_certificate_changed",
                    _ => "peer_not_secure",
                },
                message: e.to_string(),
            })
    }

    /// The peers whose certificates this node pinned.
    pub fn trusted_peers(&self) -> Vec<aienv_trust::TrustedPeer> {
        self.inner.peer_clients.pins().list()
    }

    /// Pins the certificate `key` (a peer id or name) announces now, replacing the pinned one,
    /// and fetches its catalog again.
    pub async fn trust_peer(&self, key: &str) -> Result<aienv_trust::TrustedPeer> {
        let peer = self.find_peer(key)?;
        let Some(fp) = peer.fingerprint.clone() else {
            return Err(NodeError::Exists(format!(
                "peer {:?} announces no certificate (it serves plain HTTP); there is nothing to                  trust",
                peer.name
            )));
        };
        self.inner
            .peer_clients
            .pins()
            .trust(&peer.id, &peer.name, &fp)
            .map_err(|e| NodeError::io("cannot save the trusted peers", e))?;
        tracing::warn!(
            "trusting the new certificate of peer {:?} ({}): {fp}",
            peer.name,
            peer.id
        );
        self.spawn_fetch(peer.clone());
        self.inner
            .peer_clients
            .pins()
            .get(&peer.id)
            .ok_or_else(|| NodeError::NotFound("the pin vanished".into()))
    }

    /// Keeps `token` for cloning and pulling `workspace_id` from `peer_id`.
    pub(crate) fn hold_token(&self, peer_id: &str, workspace_id: &str, token: &str) {
        let held = &self.inner.held_tokens;
        let mut map = lock(&held.map);
        map.insert(format!("{peer_id}/{workspace_id}"), token.to_string());
        let written = serde_json::to_vec_pretty(&*map)
            .map_err(std::io::Error::other)
            .and_then(|b| aienv_core::fsutil::atomic_write(&held.path, &b))
            .and_then(|()| aienv_trust::owner_only(&held.path));
        if let Err(e) = written {
            tracing::warn!("cannot save {}: {e}", held.path.display());
        }
    }

    /// The headers for a request to `peer_id`'s share `workspace_id`.
    /// The headers for a peer's LAN cache: this node's names, and a share token it holds for one
    /// of that peer's workspaces (a cache with `access = "token"` asks for one).
    pub(crate) fn cache_headers(&self, peer_id: &str) -> HeaderMap {
        let prefix = format!("{peer_id}/");
        let workspace = lock(&self.inner.held_tokens.map)
            .keys()
            .find_map(|k| k.strip_prefix(&prefix).map(str::to_string));
        self.share_headers(peer_id, workspace.as_deref().unwrap_or(""))
    }

    pub(crate) fn share_headers(&self, peer_id: &str, workspace_id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = lock(&self.inner.held_tokens.map)
            .get(&format!("{peer_id}/{workspace_id}"))
            .cloned();
        for (name, value) in [
            (TOKEN_HEADER, token),
            (NODE_ID_HEADER, Some(self.inner.instance_id.clone())),
            (NODE_NAME_HEADER, Some(self.inner.config.name.clone())),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                h.insert(name, v);
            }
        }
        h
    }

    /// Asks `peer` for access to its share `workspace_id` (shared on approval) and waits for the
    /// owner's answer; a yes is kept as a held token.
    pub(crate) async fn ask_access(&self, peer: &Peer, workspace_id: &str) -> Result<()> {
        let http = self.peer_http(peer)?;
        let url = format!("{}/api/v1/shares/{workspace_id}/access", peer.url);
        let res = http
            .post(&url)
            .headers(self.share_headers(&peer.id, workspace_id))
            // The owner has the node's approve timeout to answer; the peer's may be longer.
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| {
                NodeError::NotFound(format!(
                    "cannot ask {:?} for access: {}",
                    peer.name,
                    aienv_trust::describe(&e)
                ))
            })?;
        if !res.status().is_success() {
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let code = body["error"]["code"].as_str().unwrap_or("access_denied");
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("the owner did not let this node in")
                .to_string();
            return Err(NodeError::Denied {
                code: static_code(code),
                message,
            });
        }
        let grant: NewToken = res.json().await.map_err(|e| {
            NodeError::NotFound(format!("{:?} sent an unreadable grant: {e}", peer.name))
        })?;
        self.hold_token(&peer.id, workspace_id, &grant.secret);
        Ok(())
    }
}

/// The codes a peer's refusal may carry, as this node's own (anything else is `access_denied`).
fn static_code(code: &str) -> &'static str {
    match code {
        "approval_timeout" => "approval_timeout",
        "token_required" => "token_required",
        "token_invalid" => "token_invalid",
        "token_revoked" => "token_revoked",
        "token_expired" => "token_expired",
        _ => "access_denied",
    }
}
