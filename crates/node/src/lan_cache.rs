//! Who may read this node's LAN cache (packages and models), by `[cache] access`:
//!
//! - `peers` (the default): a node this node knows, proven by the certificate it presents over
//!   TLS (the one pinned or announced for the node id it names). With `plain_peers` there are no
//!   certificates, and a node in the peer table is enough.
//! - `token`: such a node that also holds a valid share token for one of this node's workspaces.
//! - `open`: anyone who reaches the port.
//!
//! Each decision goes to the audit log under the workspace name `(lan cache)`.

use aienv_core::config::CacheAccess;

use crate::access::Requester;
use crate::{Node, NodeError, Result};

/// What the audit log names the cache by, where it names a workspace for shares.
pub const AUDIT_NAME: &str = "(lan cache)";

/// What the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Packages,
    Models,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Packages => "packages",
            Part::Models => "models",
        }
    }
}

impl Node {
    /// Lets `who` read `part` of the LAN cache (`action` names what, for the audit log), or says
    /// why not and what to do.
    pub fn authorize_cache(&self, part: Part, who: &Requester, action: &str) -> Result<()> {
        let cfg = &self.inner.config.cache;
        let on = match part {
            Part::Packages => cfg.packages,
            Part::Models => cfg.models,
        };
        let known = self.known_cert(who);
        let verified = who.cert.is_some() && known == who.cert;
        let verdict = if !on {
            Err(NodeError::Denied {
                code: "cache_off",
                message: format!(
                    "{:?} does not serve {} to peers (`[cache] {} = false` in its config.toml)",
                    self.inner.config.name,
                    part.name(),
                    part.name()
                ),
            })
        } else {
            self.check_cache_access(cfg.access, who, known)
        };
        let (allowed, why) = match &verdict {
            Ok(why) => (true, why.clone()),
            Err(e) => (false, format!("{}: {e}", e.code())),
        };
        self.audit(who, verified, AUDIT_NAME, action, allowed, why);
        verdict.map(|_| ())
    }

    fn check_cache_access(
        &self,
        access: CacheAccess,
        who: &Requester,
        known: Option<String>,
    ) -> Result<String> {
        if access == CacheAccess::Open {
            return Ok("open cache".into());
        }
        super::access::check_identity(who, known)?;
        if !self.verified(who) {
            return Err(NodeError::Denied {
                code: "peer_unknown",
                message: format!(
                    "{:?} serves its LAN cache to the nodes it knows, and does not know this one \
                     (or this request came without the node's certificate); start an aienv node \
                     on the same LAN, or ask the owner to set `[cache] access = \"open\"`",
                    self.inner.config.name
                ),
            });
        }
        if access == CacheAccess::Peers {
            return Ok("known peer".into());
        }
        let token = self.token_workspace(who);
        match token {
            Some(ws) => Ok(format!("known peer with a token for {ws:?}")),
            None => Err(NodeError::Denied {
                code: "token_required",
                message: format!(
                    "{:?} serves its LAN cache only to nodes that hold a share token of one of its \
                     workspaces; ask its owner for one (`aienv share token create WS`)",
                    self.inner.config.name
                ),
            }),
        }
    }
}
