//! Per-share tokens: the owner makes one for a workspace shared with `access = "token"`, hands
//! it to a colleague, and revokes it when done. A grant (an approved request under
//! `access = "approve"`) is a token made for one peer. Kept in `DATA_DIR/share-tokens.json` as
//! SHA-256 hashes: the secret is shown once, at creation, and never stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pins::lock;

const FILE: &str = "share-tokens.json";
/// Secrets start with this, so a leaked one is recognisable (and secret scanners can find it).
pub const PREFIX: &str = "aienv_st_";
/// `last_used_ms` is written back at most this often per token: a clone makes several requests.
const USE_WRITE_EVERY_MS: u64 = 60_000;

/// What the owner sees of a token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Short id, for listing and revoking.
    pub id: String,
    pub workspace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_ms: Option<u64>,
    /// For a grant: the peer whose request the owner approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_to: Option<String>,
    /// For a grant: the SHA-256 of that peer's certificate. The token works only on connections
    /// that present it, so a copied grant is worth nothing elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<String>,
}

/// A token just made: the only time its secret is known.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub secret: String,
}

/// What a presented secret is worth for a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Valid(TokenInfo),
    Missing,
    /// Never issued (or issued for another workspace).
    Unknown,
    Expired(TokenInfo),
    Revoked(TokenInfo),
    /// A grant presented over a connection without its peer's certificate.
    OtherPeer(TokenInfo),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    info: TokenInfo,
    sha256: String,
}

#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    /// By hash of the secret: a lookup, not a comparison, so timing says nothing of the secret.
    by_hash: Mutex<BTreeMap<String, Stored>>,
}

impl Tokens {
    pub fn load(data_dir: &Path) -> std::io::Result<Tokens> {
        let path = data_dir.join(FILE);
        let by_hash = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Stored>>(&bytes)
                .map_err(|e| {
                    // Unlike pins, a damaged token file must not silently become "no tokens":
                    // revoked ones would come back to life if an older copy were restored.
                    std::io::Error::other(format!(
                        "{} is damaged ({e}); fix or remove it (removing it invalidates every \
                         share token)",
                        path.display()
                    ))
                })?
                .into_iter()
                .map(|s| (s.sha256.clone(), s))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Tokens {
            path,
            by_hash: Mutex::new(by_hash),
        })
    }

    /// Makes a token for `workspace_id`. `expires_ms` is absolute; `granted_to` (a peer's name
    /// and certificate fingerprint) marks a grant, bound to that certificate.
    pub fn create(
        &self,
        workspace_id: &str,
        label: Option<String>,
        expires_ms: Option<u64>,
        granted_to: Option<(String, Option<String>)>,
    ) -> std::io::Result<NewToken> {
        let (granted_to, bound_to) = granted_to.unzip();
        let secret = format!(
            "{PREFIX}{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            workspace_id: workspace_id.to_string(),
            label,
            created_ms: crate::now_ms(),
            expires_ms,
            revoked_ms: None,
            last_used_ms: None,
            granted_to,
            bound_to: bound_to.flatten(),
        };
        let mut map = lock(&self.by_hash);
        map.insert(
            hash(&secret),
            Stored {
                info: info.clone(),
                sha256: hash(&secret),
            },
        );
        self.write(&map)?;
        Ok(NewToken { info, secret })
    }

    /// The workspace's tokens, newest first (revoked and expired ones too, marked).
    pub fn list(&self, workspace_id: &str) -> Vec<TokenInfo> {
        let mut out: Vec<TokenInfo> = lock(&self.by_hash)
            .values()
            .filter(|s| s.info.workspace_id == workspace_id)
            .map(|s| s.info.clone())
            .collect();
        out.sort_by_key(|t| std::cmp::Reverse(t.created_ms));
        out
    }

    /// Revokes token `id` of the workspace; `None` if there is no such token.
    pub fn revoke(&self, workspace_id: &str, id: &str) -> std::io::Result<Option<TokenInfo>> {
        let mut map = lock(&self.by_hash);
        let Some(s) = map
            .values_mut()
            .find(|s| s.info.workspace_id == workspace_id && s.info.id == id)
        else {
            return Ok(None);
        };
        s.info.revoked_ms.get_or_insert_with(crate::now_ms);
        let info = s.info.clone();
        self.write(&map)?;
        Ok(Some(info))
    }

    /// Whether `secret`, presented over a connection with client certificate `cert`, opens
    /// `workspace_id` now.
    pub fn check(
        &self,
        workspace_id: &str,
        secret: Option<&str>,
        cert: Option<&str>,
    ) -> TokenCheck {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return TokenCheck::Missing;
        };
        let mut map = lock(&self.by_hash);
        let Some(s) = map.get_mut(&hash(secret)) else {
            return TokenCheck::Unknown;
        };
        if s.info.workspace_id != workspace_id {
            return TokenCheck::Unknown;
        }
        let now = crate::now_ms();
        if s.info.revoked_ms.is_some() {
            return TokenCheck::Revoked(s.info.clone());
        }
        if s.info.expires_ms.is_some_and(|e| e <= now) {
            return TokenCheck::Expired(s.info.clone());
        }
        if s.info.bound_to.is_some() && s.info.bound_to.as_deref() != cert {
            return TokenCheck::OtherPeer(s.info.clone());
        }
        let write = s
            .info
            .last_used_ms
            .is_none_or(|t| now.saturating_sub(t) >= USE_WRITE_EVERY_MS);
        s.info.last_used_ms = Some(now);
        let info = s.info.clone();
        if write && let Err(e) = self.write(&map) {
            tracing::warn!(
                "cannot record a token's use in {}: {e}",
                self.path.display()
            );
        }
        TokenCheck::Valid(info)
    }

    fn write(&self, map: &BTreeMap<String, Stored>) -> std::io::Result<()> {
        let list: Vec<&Stored> = map.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
        aienv_core::fsutil::atomic_write(&self.path, &bytes)
    }
}

fn hash(secret: &str) -> String {
    crate::fingerprint(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_workspace_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load(dir.path()).unwrap();
        let t = tokens
            .create("ws1", Some("alice".into()), None, None)
            .unwrap();
        assert!(t.secret.starts_with(PREFIX));
        assert!(matches!(
            tokens.check("ws1", Some(&t.secret), None),
            TokenCheck::Valid(_)
        ));
        assert_eq!(
            tokens.check("ws2", Some(&t.secret), None),
            TokenCheck::Unknown
        );
        assert_eq!(
            tokens.check("ws1", Some("aienv_st_nope"), None),
            TokenCheck::Unknown
        );
        assert_eq!(tokens.check("ws1", None, None), TokenCheck::Missing);

        // Kept across restarts, as a hash only.
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!text.contains(&t.secret), "the secret is never stored");
        let tokens = Tokens::load(dir.path()).unwrap();
        assert!(matches!(
            tokens.check("ws1", Some(&t.secret), None),
            TokenCheck::Valid(_)
        ));

        tokens.revoke("ws1", &t.info.id).unwrap().unwrap();
        assert!(matches!(
            tokens.check("ws1", Some(&t.secret), None),
            TokenCheck::Revoked(_)
        ));
        assert!(tokens.revoke("ws1", "nosuch").unwrap().is_none());

        let old = tokens
            .create("ws1", None, Some(crate::now_ms() - 1), None)
            .unwrap();
        assert!(matches!(
            tokens.check("ws1", Some(&old.secret), None),
            TokenCheck::Expired(_)
        ));
        assert_eq!(tokens.list("ws1").len(), 2);

        let grant = tokens
            .create(
                "ws1",
                None,
                None,
                Some(("laptop".into(), Some("cc".into()))),
            )
            .unwrap();
        assert!(matches!(
            tokens.check("ws1", Some(&grant.secret), Some("cc")),
            TokenCheck::Valid(_)
        ));
        assert!(matches!(
            tokens.check("ws1", Some(&grant.secret), Some("dd")),
            TokenCheck::OtherPeer(_)
        ));
        assert!(matches!(
            tokens.check("ws1", Some(&grant.secret), None),
            TokenCheck::OtherPeer(_)
        ));
    }

    #[test]
    fn a_damaged_token_file_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"[{").unwrap();
        let err = Tokens::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("share-tokens.json is damaged"), "{err}");
    }
}
