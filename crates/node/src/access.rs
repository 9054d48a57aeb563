//! Who may take what from this node's shares, by each share's access mode:
//!
//! - `open`: any peer on the LAN;
//! - `token`: a peer that presents a token the owner made for that workspace;
//! - `approve`: a peer asks ([`Node::request_access`]) and waits; when the owner says yes, it
//!   gets a token of its own (a grant), which it presents from then on. The owner can revoke it
//!   like any token.
//!
//! Every decision about a peer's request goes to the audit log.

use std::collections::HashMap;
use std::time::Duration;

use aienv_core::access::AccessRequest;
use aienv_core::{Access, Event, Workspace};
use aienv_trust::{AuditRecord, NewToken, TokenCheck, TokenInfo};
use tokio::sync::oneshot;

use crate::{Node, NodeError, Result, lock, now_ms};

/// Who is asking, as the API saw the request.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    /// `IP:PORT` it connected from (`local` for in-process callers).
    pub from: String,
    pub peer_id: Option<String>,
    pub peer_name: Option<String>,
    /// The share token it presented.
    pub token: Option<String>,
    /// The SHA-256 of the certificate it presented over TLS (a peer node presents its own).
    pub cert: Option<String>,
}

/// Pending access requests, and how to answer each.
pub(crate) type Pending = HashMap<String, (AccessRequest, oneshot::Sender<bool>)>;

impl Node {
    /// Lets `who` do `action` (`files`, `clone`, `image`) on shared workspace `ws`, or says why
    /// not and what to do. Either way the audit log records it.
    pub fn authorize(&self, ws: &str, who: &Requester, action: &str) -> Result<()> {
        let w = self.shared_workspace(ws)?;
        let access = w.manifest.as_ref().map(|m| m.sharing.access);
        let known = self.known_cert(who);
        let verified = who.cert.is_some() && known == who.cert;
        let verdict = check_identity(who, known).and_then(|()| match access {
            Some(Access::Open) => Ok("open share".to_string()),
            _ => self.check_token(&w, access, who),
        });
        match verdict {
            Ok(why) => {
                self.audit(who, verified, &w.name, action, true, why);
                Ok(())
            }
            Err(e) => {
                let why = format!("{}: {e}", e.code());
                self.audit(who, verified, &w.name, action, false, why);
                Err(e)
            }
        }
    }

    /// Whether `who` proved it is the node it names: its certificate is the one known for it
    /// (with `plain_peers`, being in the peer table is all there is). The LAN cache and remote
    /// runs admit such nodes.
    pub(crate) fn verified(&self, who: &Requester) -> bool {
        let known = self.known_cert(who);
        if who.cert.is_some() && known == who.cert {
            return true;
        }
        self.inner.config.plain_peers
            && who
                .peer_id
                .as_deref()
                .is_some_and(|id| self.peers().iter().any(|p| p.id == id))
    }

    /// The workspace of this node's that `who` holds a valid share token for, if any (what the
    /// `token` modes of the LAN cache and of remote runs ask for).
    pub(crate) fn token_workspace(&self, who: &Requester) -> Option<String> {
        self.workspaces()
            .into_iter()
            .find(|w| {
                matches!(
                    self.inner
                        .tokens
                        .check(&w.id, who.token.as_deref(), who.cert.as_deref()),
                    TokenCheck::Valid(_)
                )
            })
            .map(|w| w.name)
    }

    /// The certificate this node knows for the node `who` names, pinned or announced.
    pub(crate) fn known_cert(&self, who: &Requester) -> Option<String> {
        let id = who.peer_id.as_deref()?;
        self.inner
            .peer_clients
            .pins()
            .get(id)
            .map(|p| p.fingerprint)
            .or_else(|| {
                self.peers()
                    .into_iter()
                    .find(|p| p.id == id)
                    .and_then(|p| p.fingerprint)
            })
    }

    fn check_token(
        &self,
        w: &Workspace,
        access: Option<Access>,
        who: &Requester,
    ) -> std::result::Result<String, NodeError> {
        let owner = &self.inner.config.name;
        let name = &w.name;
        let denied = |code, message: String| Err(NodeError::Denied { code, message });
        let check = self
            .inner
            .tokens
            .check(&w.id, who.token.as_deref(), who.cert.as_deref());
        match check {
            TokenCheck::Valid(t) => Ok(format!("token {}", t.id)),
            TokenCheck::Missing if access == Some(Access::Approve) => denied(
                "approval_required",
                format!(
                    "{owner:?} shares {name:?} on approval: ask for access (`aienv clone` does, \
                     then waits for the owner's answer)"
                ),
            ),
            TokenCheck::Missing => denied(
                "token_required",
                format!(
                    "{owner:?} shares {name:?} with a token: ask its owner for one (on their \
                     machine: `aienv share token create {name}`), then clone with --token TOKEN"
                ),
            ),
            TokenCheck::Unknown => denied(
                "token_invalid",
                format!(
                    "the token is not valid for {name:?} on {owner:?}: check it, or ask the \
                     owner for a new one"
                ),
            ),
            TokenCheck::Revoked(t) => denied(
                "token_revoked",
                format!(
                    "the owner of {name:?} on {owner:?} revoked this token ({}); ask them for a \
                     new one",
                    t.id
                ),
            ),
            TokenCheck::OtherPeer(t) => denied(
                "token_other_peer",
                format!(
                    "this token for {name:?} on {owner:?} was granted to another node ({}); ask \
                     for access from this one",
                    t.granted_to.as_deref().unwrap_or("?")
                ),
            ),
            TokenCheck::Expired(t) => denied(
                "token_expired",
                format!(
                    "this token for {name:?} on {owner:?} expired ({}); ask the owner for a new one",
                    t.id
                ),
            ),
        }
    }

    /// A workspace that is shared now, or `NotFound`.
    fn shared_workspace(&self, ws: &str) -> Result<Workspace> {
        self.refuse_when_paused()?;
        let w = self.workspace(ws)?;
        if !w.manifest.as_ref().is_some_and(|m| m.sharing.enabled) {
            return Err(NodeError::NotFound(format!(
                "workspace {:?} is not shared",
                w.name
            )));
        }
        Ok(w)
    }

    /// `verified`: the requester's certificate is the one known for the node it names.
    pub(crate) fn audit(
        &self,
        who: &Requester,
        verified: bool,
        workspace: &str,
        action: &str,
        allowed: bool,
        detail: String,
    ) {
        self.inner.audit.record(&AuditRecord {
            time_ms: now_ms(),
            from: who.from.clone(),
            peer_id: who.peer_id.clone(),
            peer_name: who.peer_name.clone(),
            peer_cert: who.cert.clone(),
            peer_verified: verified,
            workspace: workspace.to_string(),
            action: action.to_string(),
            allowed,
            detail: Some(detail),
        });
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: usize) -> Vec<AuditRecord> {
        self.inner.audit.recent(limit)
    }

    /// Makes a token for shared workspace `ws`; `expires_in` from now, or never.
    pub fn create_token(
        &self,
        ws: &str,
        label: Option<String>,
        expires_in: Option<Duration>,
    ) -> Result<NewToken> {
        let w = self.workspace(ws)?;
        let expires = expires_in.map(|d| now_ms() + d.as_millis() as u64);
        let t = self
            .inner
            .tokens
            .create(&w.id, label, expires, None)
            .map_err(|e| NodeError::io("cannot save the share token", e))?;
        self.audit_owner(&w.name, "token_created", &t.info.id);
        Ok(t)
    }

    pub fn list_tokens(&self, ws: &str) -> Result<Vec<TokenInfo>> {
        let w = self.workspace(ws)?;
        Ok(self.inner.tokens.list(&w.id))
    }

    pub fn revoke_token(&self, ws: &str, id: &str) -> Result<TokenInfo> {
        let w = self.workspace(ws)?;
        let t = self
            .inner
            .tokens
            .revoke(&w.id, id)
            .map_err(|e| NodeError::io("cannot save the share tokens", e))?
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "workspace {:?} has no token {id:?} (see `aienv share token list {}`)",
                    w.name, w.name
                ))
            })?;
        self.audit_owner(&w.name, "token_revoked", id);
        Ok(t)
    }

    fn audit_owner(&self, workspace: &str, action: &str, token: &str) {
        let who = Requester {
            from: "owner".into(),
            ..Requester::default()
        };
        self.audit(
            &who,
            false,
            workspace,
            action,
            true,
            format!("token {token}"),
        );
    }

    /// Asks the owner of `ws` (shared with `access = "approve"`) to let `who` in, and waits for
    /// the answer (at most the configured timeout). A yes gives `who` a token of its own.
    pub async fn request_access(&self, ws: &str, who: &Requester) -> Result<NewToken> {
        let w = self.shared_workspace(ws)?;
        let known = self.known_cert(who);
        let verified = who.cert.is_some() && known == who.cert;
        let audit =
            |allowed, why| self.audit(who, verified, &w.name, "access_request", allowed, why);
        if let Err(e) = check_identity(who, known) {
            audit(false, format!("{}: {e}", e.code()));
            return Err(e);
        }
        let access = w.manifest.as_ref().map(|m| m.sharing.access);
        if access != Some(Access::Approve) {
            let e = NodeError::InvalidRequest(format!(
                "{:?} is not shared on approval (its access is {}): no request is needed{}",
                w.name,
                access.map_or("open".into(), |a| aienv_core::manifest::edit::serde_plain(
                    &a
                )),
                if access == Some(Access::Token) {
                    "; ask its owner for a token instead"
                } else {
                    ""
                }
            ));
            audit(false, e.to_string());
            return Err(e);
        }
        let timeout = Duration::from_secs(self.inner.config.approve_timeout_s);
        let (approved, timed_out) = self.ask_owner(&w.id, w.name.clone(), who, timeout).await;
        let owner = &self.inner.config.name;
        let verdict = if approved {
            let to = who.peer_name.clone().unwrap_or_else(|| who.from.clone());
            self.inner
                .tokens
                .create(
                    &w.id,
                    Some(format!("approved for {to}")),
                    None,
                    Some((to, who.cert.clone())),
                )
                .map_err(|e| NodeError::io("cannot save the grant", e))
        } else if timed_out {
            Err(NodeError::Denied {
                code: "approval_timeout",
                message: format!(
                    "nobody on {owner:?} answered the request for {:?} within {} s; ask the owner \
                     to watch for it (web UI, or `aienv access list`) and try again",
                    w.name,
                    timeout.as_secs()
                ),
            })
        } else {
            Err(NodeError::Denied {
                code: "access_denied",
                message: format!(
                    "the owner of {:?} on {owner:?} refused the request; talk to them before \
                     asking again",
                    w.name
                ),
            })
        };
        match &verdict {
            Ok(t) => audit(true, format!("granted token {}", t.info.id)),
            Err(e) => audit(false, format!("{}: {e}", e.code())),
        }
        verdict
    }

    /// Puts `request` before the owner (event, web UI, tray, `aienv access`) and waits for the
    /// answer, at most `timeout`: (approved, timed out).
    /// `what` is what the request asks, as the owner reads it (a workspace's name, "run WS/ENV
    /// here").
    pub(crate) async fn ask_owner(
        &self,
        workspace_id: &str,
        what: String,
        who: &Requester,
        timeout: Duration,
    ) -> (bool, bool) {
        let now = now_ms();
        let request = AccessRequest {
            id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            workspace_id: workspace_id.to_string(),
            workspace: what,
            peer_id: who.peer_id.clone(),
            peer_name: who.peer_name.clone(),
            from: who.from.clone(),
            requested_ms: now,
            expires_ms: now + timeout.as_millis() as u64,
        };
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.approvals).insert(request.id.clone(), (request.clone(), tx));
        // Gone from the pending list however this ends, the requester hanging up included.
        let _pending = PendingGuard(self, &request.id);
        self.emit(Event::AccessRequested {
            request: request.clone(),
        });
        let answer = tokio::time::timeout(timeout, rx).await;
        let (approved, timed_out) = match answer {
            Ok(Ok(yes)) => (yes, false),
            _ => (false, true),
        };
        if timed_out {
            self.emit(Event::AccessDecided {
                request: request.clone(),
                approved: false,
                timed_out: true,
            });
        }
        (approved, timed_out)
    }

    /// Requests waiting for an answer, oldest first.
    pub fn access_requests(&self) -> Vec<AccessRequest> {
        let mut list: Vec<AccessRequest> = lock(&self.inner.approvals)
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        list.sort_by_key(|r| r.requested_ms);
        list
    }

    /// The owner's answer to request `id`.
    pub fn decide_access(&self, id: &str, approve: bool) -> Result<AccessRequest> {
        let (request, answer) = lock(&self.inner.approvals).remove(id).ok_or_else(|| {
            NodeError::NotFound(format!(
                "no access request {id:?} is waiting (it was answered, timed out, or the peer \
                 gave up); see `aienv access list`"
            ))
        })?;
        // The requester may have hung up a moment ago: then the answer has no one to reach.
        let _ = answer.send(approve);
        self.emit(Event::AccessDecided {
            request: request.clone(),
            approved: approve,
            timed_out: false,
        });
        Ok(request)
    }
}

/// The certificate a peer presents must be the one this node knows (`known`) for the node it
/// names: a machine cannot borrow another node's name.
pub(crate) fn check_identity(
    who: &Requester,
    known: Option<String>,
) -> std::result::Result<(), NodeError> {
    match (known, &who.cert) {
        (Some(known), Some(cert)) if known != *cert => Err(NodeError::Denied {
            code: "peer_impersonation",
            message: format!(
                "this request names node {:?} ({}) but comes with another certificate than that \
                 node's; it was refused and logged",
                who.peer_name.as_deref().unwrap_or("?"),
                who.peer_id.as_deref().unwrap_or("?")
            ),
        }),
        _ => Ok(()),
    }
}

struct PendingGuard<'a>(&'a Node, &'a str);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.inner.approvals).remove(self.1);
    }
}

impl Node {
    /// Files of `ws` that would be shared (under `sharing`, or its own settings) and look like
    /// they hold secrets.
    pub fn scan_secrets(
        &self,
        ws: &str,
        sharing: Option<aienv_core::Sharing>,
    ) -> Result<Vec<aienv_sharing::SecretFinding>> {
        let w = self.workspace(ws)?;
        let m = w.manifest.as_ref();
        let sharing = sharing
            .or_else(|| m.map(|m| m.sharing.clone()))
            .unwrap_or_default();
        let only = m.and_then(|m| {
            let mut m = m.clone();
            m.sharing = sharing.clone();
            m.shared_paths()
        });
        let filter = aienv_sharing::Filter::new(&w.path, &sharing)
            .map_err(NodeError::InvalidRequest)?
            .only(only);
        Ok(aienv_sharing::secrets::scan(&w.path, &filter))
    }
}
