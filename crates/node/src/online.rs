//! Being on the LAN: discovery, the catalog, and peers reached by address.
//!
//! [`Node::go_online`] starts, once the API listens: it announces this node's share list,
//! turns peer changes into events and catalog fetches, keeps the announcement in step with the
//! workspaces, and probes the static peers (for networks that block multicast) over HTTP.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use aienv_core::Event;
use aienv_core::peer::Peer;
use aienv_discovery::datagram::{Datagram, Kind, PROTOCOL};
use aienv_discovery::{Announce, Discovery, DiscoveryConfig, PeerEvent};
use aienv_sharing::{CatalogEntry, RemoteStatus, ShareList, ShareOwner, fetch_shares_from};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{NodeError, Result};
use crate::{Node, lock};

/// How often static peers are probed; they expire like multicast peers when they stop answering.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The file that keeps peers added with `aienv peers add`.
const PEERS_FILE: &str = "peers.json";

/// Discovery as a user debugging "why does nobody show up" needs to see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscoveryReport {
    /// This node's instance id (what peers know it by).
    pub instance_id: String,
    /// `None` until the node is online (its API listens).
    pub status: Option<aienv_discovery::Status>,
    /// Peers reached by address: from `aienv peers add` and from `static_peers` in config.toml.
    pub static_peers: Vec<String>,
    /// How the catalog stands with each peer.
    pub catalogs: Vec<RemoteStatus>,
}

/// The peers added with `aienv peers add`, as kept in `DATA_DIR/peers.json`. Read once at start;
/// the probe loop asks every second, so it reads memory, not the disk.
pub(crate) fn load_added_peers(data_dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read(data_dir.join(PEERS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<PeersFile>(&b).ok())
        .map(|f| f.static_peers)
        .unwrap_or_default()
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PeersFile {
    #[serde(rename = "static")]
    static_peers: BTreeSet<String>,
}

impl Node {
    /// Starts discovery and the catalog, announcing the API on `api_port`.
    pub async fn go_online(&self, api_port: u16) -> Result<()> {
        self.refresh_local_shares().await;
        let config = DiscoveryConfig {
            group: self.inner.config.discovery_group,
            interfaces: self.inner.config.discovery_interfaces.clone(),
            ..DiscoveryConfig::default()
        };
        let announce = self.announce(api_port);
        let (discovery, mut peer_events) =
            Discovery::start(config, announce).await.map_err(|e| {
                NodeError::Discovery(format!("{e}; choose interfaces with --discovery-interface"))
            })?;
        *lock(&self.inner.discovery) = Some((discovery.clone(), api_port));

        let node = self.downgrade();
        tokio::spawn(async move {
            while let Some(event) = peer_events.recv().await {
                let Some(node) = node.upgrade() else { break };
                node.on_peer_event(event);
            }
        });
        self.spawn_share_tracker();
        self.spawn_static_probe(discovery);
        self.spawn_advertiser();
        Ok(())
    }

    pub fn peers(&self) -> Vec<Peer> {
        lock(&self.inner.discovery)
            .as_ref()
            .map(|(d, _)| d.peers())
            .unwrap_or_default()
    }

    pub fn catalog(&self) -> Vec<CatalogEntry> {
        self.inner.catalog.entries()
    }

    /// What this node shares (`GET /api/v1/shares`, for peers).
    pub fn shares(&self) -> ShareList {
        self.inner
            .catalog
            .local()
            .unwrap_or_else(|| ShareList::of(self.owner(), &[], &self.inner.sizes))
    }

    pub fn discovery_report(&self) -> DiscoveryReport {
        DiscoveryReport {
            instance_id: self.inner.instance_id.clone(),
            status: lock(&self.inner.discovery)
                .as_ref()
                .map(|(d, _)| d.status()),
            static_peers: self.static_peers(),
            catalogs: self.inner.catalog.remotes(),
        }
    }

    /// Every static peer address: added ones and configured ones.
    pub fn static_peers(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.inner.config.static_peers.iter().cloned().collect();
        all.extend(lock(&self.inner.added_peers).iter().cloned());
        all.into_iter().collect()
    }

    /// Adds a peer by address (`HOST:PORT` of its API), for networks where multicast is blocked.
    pub fn add_static_peer(&self, address: &str) -> Result<String> {
        let address = normalise_address(address)?;
        let _w = self.write_guard();
        let mut peers = lock(&self.inner.added_peers).clone();
        if !peers.insert(address.clone()) || self.inner.config.static_peers.contains(&address) {
            return Err(NodeError::Exists(format!(
                "{address} is already a static peer"
            )));
        }
        self.save_added_peers(peers)?;
        Ok(address)
    }

    pub fn remove_static_peer(&self, address: &str) -> Result<String> {
        let address = normalise_address(address)?;
        let _w = self.write_guard();
        let mut peers = lock(&self.inner.added_peers).clone();
        if !peers.remove(&address) {
            let why = if self.inner.config.static_peers.contains(&address) {
                "it comes from static_peers in config.toml; remove it there"
            } else {
                "see `aienv peers static`"
            };
            return Err(NodeError::NotFound(format!(
                "{address} is not a static peer added here ({why})"
            )));
        }
        self.save_added_peers(peers)?;
        Ok(address)
    }

    /// Writes the added peers to `peers.json`, then puts them in effect (not before: a failed
    /// write changes nothing).
    fn save_added_peers(&self, peers: BTreeSet<String>) -> Result<()> {
        let path = self.inner.data_dir.path().join(PEERS_FILE);
        let file = PeersFile {
            static_peers: peers,
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("peers file serialises");
        aienv_core::fsutil::atomic_write(&path, &bytes)
            .map_err(|e| NodeError::io(format!("cannot write {}", path.display()), e))?;
        *lock(&self.inner.added_peers) = file.static_peers;
        Ok(())
    }

    pub(crate) async fn go_offline(&self) {
        let discovery = lock(&self.inner.discovery).take();
        if let Some((d, _)) = discovery {
            d.stop().await;
        }
    }

    /// How peers reach this node: TLS unless configured otherwise.
    fn scheme(&self) -> &'static str {
        if self.inner.config.plain_peers {
            "http"
        } else {
            "https"
        }
    }

    fn owner(&self) -> ShareOwner {
        ShareOwner {
            id: self.inner.instance_id.clone(),
            name: self.inner.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn announce(&self, port: u16) -> Announce {
        let shares = self.shares();
        Announce {
            id: self.inner.instance_id.clone(),
            name: self.inner.config.name.clone(),
            port,
            scheme: self.scheme().into(),
            fingerprint: (!self.inner.config.plain_peers)
                .then(|| self.inner.identity.fingerprint().to_string()),
            shared: shares.environment_count(),
            rev: shares.revision,
            version: env!("CARGO_PKG_VERSION").to_string(),
            resources: self.advertised(),
        }
    }

    /// Announces again at once (when what is announced changed).
    pub(crate) fn reannounce(&self) {
        if let Some((d, port)) = lock(&self.inner.discovery).clone() {
            d.set_announce(self.announce(port));
        }
    }

    fn on_peer_event(&self, event: PeerEvent) {
        match event {
            PeerEvent::Joined(peer) => {
                self.emit(Event::PeerJoined { peer: peer.clone() });
                self.spawn_fetch(peer);
            }
            PeerEvent::Updated(peer) => {
                self.emit(Event::PeerUpdated { peer: peer.clone() });
                self.spawn_fetch(peer);
            }
            PeerEvent::Left { peer, reason } => {
                if self.inner.catalog.forget(&peer.id) {
                    self.emit(Event::CatalogChanged {
                        owner_id: peer.id.clone(),
                        owner_name: peer.name.clone(),
                        local: false,
                    });
                }
                self.emit(Event::PeerLeft { peer, reason });
            }
        }
    }

    pub(crate) fn spawn_fetch(&self, peer: Peer) {
        let node = self.clone();
        tokio::spawn(async move {
            if node.inner.catalog.refresh(&peer).await {
                node.emit(Event::CatalogChanged {
                    owner_id: peer.id,
                    owner_name: peer.name,
                    local: false,
                });
            }
        });
    }

    /// Recomputes this node's share list (sizes walk the disk: off the async workers).
    pub(crate) async fn refresh_local_shares(&self) -> bool {
        let node = self.clone();
        let list = tokio::task::spawn_blocking(move || {
            let shared = if node.sharing_paused() {
                Vec::new()
            } else {
                node.all_workspaces()
            };
            ShareList::of(node.owner(), &shared, &node.inner.sizes)
        })
        .await
        .expect("share list task");
        let changed = self.inner.catalog.set_local(list);
        if changed && let Some((d, port)) = lock(&self.inner.discovery).clone() {
            d.set_announce(self.announce(port));
        }
        changed
    }

    /// Keeps the share list, the catalog and the announcement in step with workspace changes.
    fn spawn_share_tracker(&self) {
        let mut rx = self.subscribe();
        let node = self.downgrade();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(
                        Event::WorkspaceAdded { .. }
                        | Event::WorkspaceChanged { .. }
                        | Event::WorkspaceRemoved { .. }
                        | Event::ManifestInvalid { .. },
                    )
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
                let Some(node) = node.upgrade() else { break };
                if node.refresh_local_shares().await {
                    node.emit(Event::CatalogChanged {
                        owner_id: node.inner.instance_id.clone(),
                        owner_name: node.inner.config.name.clone(),
                        local: true,
                    });
                }
            }
        });
    }

    fn spawn_static_probe(&self, discovery: Discovery) {
        let node = self.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            loop {
                tick.tick().await;
                let Some(node) = node.upgrade() else { break };
                let addresses = node.static_peers();
                let (http, scheme) = (node.inner.peer_clients.first_contact(), node.scheme());
                drop(node);
                for address in addresses {
                    probe(&http, scheme, &discovery, &address).await;
                }
            }
        });
    }
}

/// Asks a static peer who it is; an answer counts as hearing its announcement. Over TLS, the
/// certificate it answered with stands in for the fingerprint an announcement carries: it is
/// pinned (or checked against the pin) when the catalog fetches from the peer.
async fn probe(http: &reqwest::Client, scheme: &str, discovery: &Discovery, address: &str) {
    let Ok(Some(addr)) = tokio::net::lookup_host(address).await.map(|mut a| a.next()) else {
        tracing::debug!("static peer {address}: the name does not resolve");
        return;
    };
    let url = aienv_discovery::peers::url(scheme, addr.ip(), addr.port());
    match fetch_shares_from(http, &url, None).await {
        Ok((list, fp)) => {
            let d = Datagram {
                aienv: PROTOCOL,
                kind: Kind::Announce,
                id: list.node.id.clone(),
                name: list.node.name.clone(),
                port: addr.port(),
                scheme: scheme.into(),
                fp,
                shared: list.environment_count(),
                rev: list.revision.clone(),
                version: list.node.version.clone(),
                hello: false,
                res: None,
            };
            discovery.observe_static(&d, addr.ip());
        }
        Err(e) => tracing::debug!("static peer {address}: {e}"),
    }
}

/// `HOST:PORT` with a port, or an error that shows the expected form.
fn normalise_address(address: &str) -> Result<String> {
    let a = address
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let ok = match a.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    };
    if !ok || a.parse::<IpAddr>().is_ok() {
        return Err(NodeError::InvalidRequest(format!(
            "{address:?} is not HOST:PORT; give the peer's API address, e.g. 10.0.0.7:47478"
        )));
    }
    Ok(a.to_string())
}
