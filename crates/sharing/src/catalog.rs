//! The catalog: local and remote shared environments in one list. A workspace shared without
//! environments (code, data, weights) has one entry of its own, with no kind.
//!
//! Remote lists are fetched when a peer announces a catalog revision the catalog does not have.
//! Fetches run in the background with a per-peer timeout, a cap on concurrent fetches, and at
//! most one fetch per peer per [`MIN_REFETCH`], so a slow, lying or chattering peer can neither
//! stall the catalog nor make this node fetch without end. Reading the catalog never waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aienv_core::peer::Peer;
use aienv_core::{Access, EnvKind, Fallback, Requirements};
use aienv_trust::PeerClients;
use serde::Serialize;
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use crate::{FetchError, ShareList, SharedEnvironment, fetch_shares};

/// Fetches from one peer are at least this far apart.
pub const MIN_REFETCH: Duration = Duration::from_millis(250);
/// At most this many peers are fetched from at once.
const MAX_CONCURRENT_FETCHES: usize = 8;

/// One environment in the catalog, or a workspace shared without environments.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CatalogEntry {
    pub owner: Owner,
    pub workspace_id: String,
    pub workspace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_description: Option<String>,
    pub access: Access,
    pub size_bytes: u64,
    /// The environment's name; the workspace's for a workspace without environments.
    pub name: String,
    /// `null` for a workspace shared without environments: files to clone, nothing to run.
    pub kind: Option<EnvKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub requires: Requirements,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    pub tools: Vec<String>,
}

/// Whose an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Owner {
    pub id: String,
    pub name: String,
    /// True for this node's own environments.
    pub local: bool,
    /// The owner's API, for remote entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// How the catalog stands with one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RemoteStatus {
    pub id: String,
    pub name: String,
    pub url: String,
    /// The revision the peer announces.
    pub announced: String,
    /// The revision of the list this node holds, if any.
    pub fetched: Option<String>,
    /// Why the last fetch failed (the last good list, if any, stays in the catalog).
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local: Mutex<Option<ShareList>>,
    remote: Mutex<HashMap<String, Remote>>,
    /// Clients pinned to each peer's certificate.
    clients: Arc<PeerClients>,
    permits: Semaphore,
}

#[derive(Debug)]
struct Remote {
    peer: Peer,
    list: Option<ShareList>,
    error: Option<String>,
    fetching: bool,
    last_fetch: Option<Instant>,
}

impl Catalog {
    pub fn new(clients: Arc<PeerClients>) -> Self {
        Catalog {
            inner: Arc::new(Inner {
                local: Mutex::new(None),
                remote: Mutex::new(HashMap::new()),
                clients,
                permits: Semaphore::new(MAX_CONCURRENT_FETCHES),
            }),
        }
    }

    /// Replaces this node's own share list; true if it changed.
    pub fn set_local(&self, list: ShareList) -> bool {
        let mut local = lock(&self.inner.local);
        let changed = local.as_ref() != Some(&list);
        *local = Some(list);
        changed
    }

    pub fn local(&self) -> Option<ShareList> {
        lock(&self.inner.local).clone()
    }

    /// Every shared environment, local first, then by owner, workspace and name.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        let mut out = Vec::new();
        if let Some(list) = lock(&self.inner.local).as_ref() {
            push_entries(&mut out, list, true, None);
        }
        let remote = lock(&self.inner.remote);
        let mut lists: Vec<&Remote> = remote.values().filter(|r| r.list.is_some()).collect();
        lists.sort_by(|a, b| {
            a.peer
                .name
                .cmp(&b.peer.name)
                .then_with(|| a.peer.id.cmp(&b.peer.id))
        });
        for r in lists {
            if let Some(list) = &r.list {
                push_entries(&mut out, list, false, Some(r.peer.url.clone()));
            }
        }
        out
    }

    pub fn remotes(&self) -> Vec<RemoteStatus> {
        let mut list: Vec<RemoteStatus> = lock(&self.inner.remote)
            .values()
            .map(|r| RemoteStatus {
                id: r.peer.id.clone(),
                name: r.peer.name.clone(),
                url: r.peer.url.clone(),
                announced: r.peer.rev.clone(),
                fetched: r.list.as_ref().map(|l| l.revision.clone()),
                error: r.error.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Drops a peer's entries (it left); true if it had any.
    pub fn forget(&self, peer_id: &str) -> bool {
        lock(&self.inner.remote)
            .remove(peer_id)
            .is_some_and(|r| r.list.is_some_and(|l| !l.workspaces.is_empty()))
    }

    /// Brings the peer's entries up to the revision it announces. Returns true when the catalog
    /// changed. Cheap when nothing is to be done; at most one fetch per peer runs at a time, and
    /// an announcement during a fetch is picked up when the fetch ends.
    pub async fn refresh(&self, peer: &Peer) -> bool {
        {
            let mut remote = lock(&self.inner.remote);
            let r = remote.entry(peer.id.clone()).or_insert_with(|| Remote {
                peer: peer.clone(),
                list: None,
                error: None,
                fetching: false,
                last_fetch: None,
            });
            r.peer = peer.clone();
            if r.fetching || r.list.as_ref().is_some_and(|l| l.revision == peer.rev) {
                return false;
            }
            r.fetching = true;
        }
        let mut changed = false;
        loop {
            let (target, wait) = {
                let remote = lock(&self.inner.remote);
                let Some(r) = remote.get(&peer.id) else {
                    return changed;
                };
                let wait = r
                    .last_fetch
                    .map_or(Duration::ZERO, |t| MIN_REFETCH.saturating_sub(t.elapsed()));
                (r.peer.clone(), wait)
            };
            tokio::time::sleep(wait).await;
            let result = {
                let _permit = self.inner.permits.acquire().await;
                match self.inner.clients.for_peer(&target) {
                    Ok(http) => fetch_shares(&http, &target.url, Some(&target.id)).await,
                    Err(e) => Err(FetchError::Untrusted(e.to_string())),
                }
            };
            let mut remote = lock(&self.inner.remote);
            // The peer may have left meanwhile: then there is nothing to update.
            let Some(r) = remote.get_mut(&peer.id) else {
                return changed;
            };
            r.last_fetch = Some(Instant::now());
            match result {
                Ok(list) => {
                    // What the catalog shows changed (a first list with nothing shared does not
                    // change it, nor does a new revision with the same workspaces).
                    let before = r.list.as_ref().map_or(&[][..], |l| &l.workspaces[..]);
                    changed |= before != &list.workspaces[..];
                    r.list = Some(list);
                    r.error = None;
                }
                Err(e) => {
                    log_once(r, &e);
                    r.error = Some(e.to_string());
                    r.fetching = false;
                    return changed;
                }
            }
            // Go again (after the pause) only if a newer revision was announced while we
            // fetched. A peer whose list never matches what it announces is not chased.
            if r.peer.rev == target.rev {
                r.fetching = false;
                return changed;
            }
        }
    }
}

fn log_once(r: &Remote, e: &FetchError) {
    if r.error.as_deref() != Some(&e.to_string()) {
        tracing::warn!("catalog of peer {:?}: {e}", r.peer.name);
    }
}

fn push_entries(out: &mut Vec<CatalogEntry>, list: &ShareList, local: bool, url: Option<String>) {
    let owner = Owner {
        id: list.node.id.clone(),
        name: list.node.name.clone(),
        local,
        url,
    };
    for w in &list.workspaces {
        // The workspace itself: its entry when it shares no environments, and what every
        // environment's entry starts from.
        let files = CatalogEntry {
            owner: owner.clone(),
            workspace_id: w.id.clone(),
            workspace: w.name.clone(),
            workspace_description: w.description.clone(),
            access: w.access,
            size_bytes: w.size_bytes,
            name: w.name.clone(),
            kind: None,
            description: w.description.clone(),
            requires: Requirements::default(),
            fallback: None,
            tools: Vec::new(),
        };
        for e in &w.environments {
            let SharedEnvironment {
                name,
                kind,
                description,
                requires,
                fallback,
                tools,
            } = e.clone();
            out.push(CatalogEntry {
                name,
                kind: Some(kind),
                description,
                requires,
                fallback,
                tools,
                ..files.clone()
            });
        }
        if w.environments.is_empty() {
            out.push(files);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
