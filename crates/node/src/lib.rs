//! aienv node: the one `Node` that owns a machine's parts (the workspace registry, the manifest
//! watcher, and, as they land, discovery, sharing and the runtime) and the flows that cross them.
//!
//! `Node` is a cheap-to-clone handle. Every front end (the REST API, the WebSocket, the desktop
//! shell, the CLI through the API) calls the same methods here; none re-implements an operation.
//! Everything that happens is published on one broadcast bus of [`aienv_core::Event`]s
//! ([`Node::subscribe`]).
//!
//! Depends on `aienv-core` only. Start reading at [`Node::start`], then `workspaces.rs` (the
//! registry operations), `items.rs` (projects and environments) and `reload.rs` (hand edits).

mod access;
mod adopted;
mod advertise;
mod catalog_fit;
mod clones;
mod datadir;
mod env_lock;
mod error;
mod files;
mod instance;
mod items;
pub mod lan_cache;
pub mod models;
mod online;
pub mod outputs;
mod packages;
mod pause;
mod peer_access;
mod reload;
mod remote;
mod remote_serve;
mod run_models;
mod runs;
mod settings;
mod setup_watch;
mod workspaces;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use aienv_core::config::Config;
use aienv_core::watch::ManifestWatcher;
use aienv_core::{Event, Workspace};
use tokio::sync::broadcast;

pub use access::Requester;
pub use adopted::WorkspaceProposal;
pub use aienv_discovery::Status as DiscoveryStatus;
pub use aienv_runtime::RunError;
pub use aienv_sharing::{CatalogEntry, FileManifest, SecretFinding, ShareList};
pub use catalog_fit::{CatalogItem, FitSummary};
pub use clones::CloneRequest;
pub use datadir::{NODE_FILE, NodeRecord, create as create_data_dir, read_record};
pub use env_lock::LockedEnv;
pub use error::{NodeError, Result};
pub use online::DiscoveryReport;
pub use packages::IndexFile;
pub use peer_access::{NODE_ID_HEADER, NODE_NAME_HEADER, TOKEN_HEADER};
pub use remote::LogPage;
pub use settings::{ConfigFileSettings, NodeSettings, SettingsPatch, SettingsUpdate};
pub use workspaces::{NewWorkspace, WorkspacePatch};

/// How many events a slow subscriber may fall behind before it is told it lagged.
const EVENT_BUFFER: usize = 1024;

/// The aienv engine of one machine. Clone it freely: clones share everything.
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    /// What peers know this node by (see `instance.rs`).
    instance_id: String,
    /// This node's certificate (peers pin its fingerprint).
    identity: aienv_trust::Identity,
    /// Clients for peers, pinned to their certificates; the catalog uses the same ones.
    peer_clients: Arc<aienv_trust::PeerClients>,
    /// Share tokens this node made for its own shares, and those it holds for peers' shares.
    tokens: aienv_trust::Tokens,
    held_tokens: peer_access::HeldTokens,
    audit: aienv_trust::Audit,
    /// Access requests waiting for the owner's answer.
    approvals: Mutex<access::Pending>,
    catalog: aienv_sharing::Catalog,
    sizes: aienv_sharing::SizeCache,
    /// Shared workspaces' file lists, kept current by a watcher each (by workspace id).
    share_indexes: Mutex<std::collections::HashMap<String, Arc<aienv_sharing::ShareIndex>>>,
    /// Clone jobs by id (finished ones too), and the cancel handles of running ones.
    clones: Mutex<std::collections::HashMap<String, aienv_core::clone::CloneJob>>,
    running_clones: Mutex<std::collections::HashMap<String, clones::Running>>,
    /// Runs by id (ended ones too), and the backend handles of live ones.
    runs: Mutex<std::collections::HashMap<String, aienv_core::run::Run>>,
    live_runs: Mutex<std::collections::HashMap<String, aienv_runtime::backend::Running>>,
    /// The ports each unfinished run holds in `ports`.
    held_ports: Mutex<std::collections::HashMap<String, Vec<u16>>>,
    /// Sharing paused (the tray's "Pause sharing"): peers see nothing and can clone nothing.
    sharing_paused: std::sync::atomic::AtomicBool,
    /// Pulls of Hugging Face models from peers, by id (see `models.rs`).
    model_pulls: models::Pulls,
    probe: aienv_runtime::Probe,
    ports: aienv_runtime::ports::Ports,
    backends: aienv_runtime::backend::Backends,
    /// Peers added by address (`peers.json`).
    added_peers: Mutex<std::collections::BTreeSet<String>>,
    /// Discovery and the API port it announces, once online.
    discovery: Mutex<Option<(aienv_discovery::Discovery, u16)>>,
    data_dir: datadir::DataDir,
    events: broadcast::Sender<Event>,
    /// Registered workspaces by id. Readers take the read lock briefly and clone what they need.
    workspaces: RwLock<BTreeMap<String, Workspace>>,
    /// When each registered workspace was registered (seconds since the epoch), for the registry.
    added: Mutex<std::collections::HashMap<String, u64>>,
    /// Bumped on every change of `workspaces`, under its write lock, so that a reader holding the
    /// read lock sees a revision that matches the data (front ends cache by it).
    revision: AtomicU64,
    /// Serialises every change (API edits and reloads of hand edits) so that manifest writes,
    /// state updates and registry saves happen in one order.
    writes: Mutex<()>,
    /// `None` when the OS refused a watcher (e.g. out of inotify instances): hand edits are then
    /// picked up only at the next start, which the log says.
    watcher: Mutex<Option<ManifestWatcher>>,
    started: Instant,
    /// The LAN cache's packages (store and wheel folders) and the index built on them.
    packages: aienv_lancache::packages::Store,
    index: Arc<packages::Index>,
    /// What this node last announced it has free.
    advertised: Mutex<Option<aienv_core::peer::PeerResources>>,
    /// GPUs held by runs (reservations).
    held_gpus: Mutex<advertise::Held>,
    /// Runs peers started here, as they follow them.
    remote_jobs: Mutex<remote_serve::Jobs>,
}

/// Facts about the node for health checks and the UI.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    pub name: String,
    /// SHA-256 of this node's TLS certificate: what peers pin. Compare it with what a peer shows
    /// before trusting a changed certificate.
    pub fingerprint: String,
    pub version: String,
    pub uptime_s: u64,
    pub workspaces: usize,
}

impl Node {
    /// Opens the data dir, loads the registry and every manifest, and starts watching them.
    /// Must be called inside a tokio runtime (the watcher's reload task runs on it).
    pub fn start(config: Config) -> Result<Node> {
        let started = Instant::now();
        let data_dir = datadir::DataDir::open(&config.data_dir)?;
        let instance_id = instance::load_or_create(data_dir.path())?;
        let loaded = aienv_core::registry::load(data_dir.path())?;
        if let Some(warning) = &loaded.warning {
            tracing::warn!("{warning}");
        }
        let identity = aienv_trust::Identity::load_or_create(data_dir.path(), &config.name)
            .map_err(|e| NodeError::DataDir(e.to_string()))?;
        let tokens = aienv_trust::Tokens::load(data_dir.path())
            .map_err(|e| NodeError::DataDir(e.to_string()))?;
        let peer_clients = Arc::new(aienv_trust::PeerClients::new(
            Arc::new(aienv_trust::Pins::load(data_dir.path())),
            config.plain_peers,
            Some(identity.clone()),
        ));
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let packages = aienv_lancache::packages::Store::new(
            data_dir.path().join("packages"),
            config.cache.wheel_dirs.clone(),
        );
        let node = Node {
            inner: Arc::new(Inner {
                catalog: aienv_sharing::Catalog::new(peer_clients.clone()),
                identity,
                peer_clients,
                tokens,
                held_tokens: peer_access::HeldTokens::load(data_dir.path()),
                audit: aienv_trust::Audit::new(data_dir.path()),
                approvals: Mutex::new(Default::default()),
                config,
                instance_id,
                sizes: aienv_sharing::SizeCache::default(),
                share_indexes: Mutex::new(Default::default()),
                clones: Mutex::new(Default::default()),
                running_clones: Mutex::new(Default::default()),
                runs: Mutex::new(Default::default()),
                live_runs: Mutex::new(Default::default()),
                held_ports: Mutex::new(Default::default()),
                sharing_paused: Default::default(),
                model_pulls: Default::default(),
                probe: aienv_runtime::Probe::new(data_dir.path()),
                ports: Default::default(),
                backends: Default::default(),
                discovery: Mutex::new(None),
                added_peers: Mutex::new(online::load_added_peers(data_dir.path())),
                data_dir,
                events,
                workspaces: RwLock::new(BTreeMap::new()),
                revision: AtomicU64::new(0),
                added: Mutex::new(Default::default()),
                writes: Mutex::new(()),
                watcher: Mutex::new(None),
                started,
                packages,
                index: packages::new_index(),
                advertised: Mutex::new(None),
                held_gpus: Mutex::new(Default::default()),
                remote_jobs: Mutex::new(Default::default()),
            }),
        };
        // Barrier files of share watchers a killed node left behind.
        let _ = std::fs::remove_dir_all(node.inner.data_dir.path().join("watch"));
        node.start_watcher();
        node.load_workspaces(loaded.entries);
        node.load_jobs();
        node.load_runs();
        node.load_remote_jobs();
        // Warm the resource probe (GPUs, engine, QEMU) so the first run does not wait for it.
        let warm = node.clone();
        tokio::spawn(async move { warm.resources().await });
        tracing::debug!(elapsed = ?started.elapsed(), "node loaded");
        Ok(node)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// This node's TLS identity.
    pub fn identity(&self) -> &aienv_trust::Identity {
        &self.inner.identity
    }

    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            name: self.inner.config.name.clone(),
            fingerprint: self.inner.identity.fingerprint().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: self.inner.started.elapsed().as_secs(),
            workspaces: read(&self.inner.workspaces).len(),
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Records the address the API listens on in `DATA_DIR/node.json`, for client commands.
    pub fn publish_address(&self, url: &str) -> Result<()> {
        self.inner.data_dir.write_record(&NodeRecord {
            url: url.to_string(),
            pid: std::process::id(),
            name: self.inner.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    /// This node's instance id, the name peers know it by.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Says goodbye to peers, stops watching and withdraws `node.json`. Runs (later issues) are
    /// not stopped: they outlive the node by design.
    pub async fn shutdown(&self) {
        self.go_offline().await;
        lock(&self.inner.watcher).take();
        self.inner.data_dir.remove_record();
    }

    /// A handle that does not keep the node alive (for background tasks).
    fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    fn emit(&self, event: Event) {
        // No subscriber is not an error: events are for whoever listens.
        let _ = self.inner.events.send(event);
    }

    fn write_guard(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.writes)
    }

    /// The workspaces map for changing; counts as a new revision.
    fn mutate(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Workspace>> {
        let guard = write(&self.inner.workspaces);
        self.inner.revision.fetch_add(1, Ordering::SeqCst);
        guard
    }

    /// A number that changes whenever any workspace changes: equal numbers mean equal listings.
    pub fn revision(&self) -> u64 {
        self.inner.revision.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
struct WeakNode(std::sync::Weak<Inner>);

impl WeakNode {
    fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

/// How long the watcher waits for a burst of file events (one editor save is several) to settle.
const SETTLE: Duration = Duration::from_millis(60);

// A panic while holding a lock leaves plain data behind, still consistent for our uses (every
// update replaces whole values): keep serving rather than poisoning the whole node.
/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
