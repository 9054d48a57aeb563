//! The node's package index: a PEP 503 simple index on this machine that the node's own Python
//! builds (and any pip or uv the user points at it) install from. It asks, in this order:
//!
//! 1. this node's store and wheel folders;
//! 2. its peers (`GET /api/v1/cache/packages/{project}` on each, at once, briefly);
//! 3. the upstream index (`[cache] upstream`, PyPI by default; empty: the LAN only).
//!
//! Files listed by a peer or upstream are fetched when an installer asks for them, checked
//! against the SHA-256 their listing gave, and kept in the store, so the next machine on the LAN
//! gets them from here. Upstream only adds files that no one on the LAN has, so a version the LAN
//! holds is fetched from the LAN.
//!
//! Peers' own requests (`/api/v1/cache/packages/...`) get this node's store only: a node never
//! fetches from the internet, or from a third node, on a peer's behalf.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aienv_lancache::packages::{Dist, Listing, Store, is_dist_name, normalize};
use futures_util::StreamExt;

use crate::{Node, NodeError, Result, lock};

/// How long a peer or the upstream index has to list a project.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a listed file can be fetched from.
#[derive(Debug, Clone)]
struct Source {
    dist: Dist,
    url: String,
    /// The peer's id, or `None` for upstream.
    peer: Option<(String, String)>,
}

/// The index's state: where files not in the store come from, and what it fetched.
#[derive(Debug, Default)]
pub(crate) struct Index {
    sources: std::sync::Mutex<HashMap<String, Source>>,
    /// One fetch per file at a time (uv may ask twice in parallel).
    fetching: tokio::sync::Mutex<()>,
    pub(crate) stats: Stats,
}

/// What the index fetched since the node started (runs report the difference over their build).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub fetched: AtomicU64,
    pub from_peers: AtomicU64,
    pub bytes: AtomicU64,
    pub last_peer: std::sync::Mutex<Option<String>>,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.fetched.load(Ordering::Relaxed),
            self.from_peers.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A file the index hands to an installer.
#[derive(Debug)]
pub struct IndexFile {
    pub path: PathBuf,
    pub size: u64,
}

impl Node {
    /// The node's packages: its store and configured wheel folders.
    pub(crate) fn package_store(&self) -> &Store {
        &self.inner.packages
    }

    /// This node's own files of `project`, for a peer (the store and wheel folders only).
    pub fn cached_packages(&self, project: &str) -> Listing {
        Listing {
            project: normalize(project),
            files: self.package_store().list(project),
        }
    }

    /// Where this node's own copy of `filename` is, for a peer.
    pub fn cached_package_file(&self, filename: &str) -> Result<PathBuf> {
        self.package_store().find(filename).ok_or_else(|| {
            NodeError::NotFound(format!("this node has no package file {filename:?}"))
        })
    }

    /// The URL of this node's package index, for installers on this machine; `None` when the
    /// LAN cache for packages is off.
    pub fn package_index_url(&self) -> Option<String> {
        if !self.inner.config.cache.packages {
            return None;
        }
        let port = lock(&self.inner.discovery)
            .as_ref()
            .map(|(_, port)| *port)
            .unwrap_or(self.inner.config.listen.port());
        let auth = self
            .inner
            .config
            .api_key
            .as_deref()
            .map_or(String::new(), |k| format!("aienv:{k}@"));
        Some(format!("http://{auth}127.0.0.1:{port}/api/v1/index/simple"))
    }

    /// The projects this node's store and wheel folders hold (the index's root page).
    pub fn index_projects(&self) -> Vec<String> {
        self.package_store().projects()
    }

    /// Every file of `project` that the LAN, then upstream, offers; the store's first.
    pub async fn index_listing(&self, project: &str) -> Vec<Dist> {
        let project = normalize(project);
        let mut files = self.package_store().list(&project);
        let mut have: std::collections::HashSet<String> =
            files.iter().map(|f| f.filename.clone()).collect();
        let mut found = Vec::new();
        for (dist, source) in self.peer_listings(&project).await {
            if have.insert(dist.filename.clone()) {
                found.push(source);
                files.push(dist);
            }
        }
        if let Some(listed) = self.upstream_listing(&project).await {
            for source in listed {
                if have.insert(source.dist.filename.clone()) {
                    files.push(source.dist.clone());
                    found.push(source);
                }
            }
        }
        let mut sources = lock(&self.inner.index.sources);
        for s in found {
            sources.insert(s.dist.filename.clone(), s);
        }
        files
    }

    /// The file `filename` for an installer: from the store, or fetched (and checked against its
    /// listed hash) from where the listing found it.
    pub async fn index_file(&self, filename: &str) -> Result<IndexFile> {
        if !is_dist_name(filename) {
            return Err(NodeError::NotFound(format!(
                "{filename:?} is not a package file name"
            )));
        }
        let _one = self.inner.index.fetching.lock().await;
        if let Some(path) = self.package_store().find(filename) {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            return Ok(IndexFile { path, size });
        }
        let source = lock(&self.inner.index.sources).get(filename).cloned();
        let Some(source) = source else {
            return Err(NodeError::NotFound(format!(
                "no peer and no upstream index listed {filename:?}; list its project first \
                 (GET /api/v1/index/simple/PROJECT/)"
            )));
        };
        self.fetch_into_store(&source).await
    }

    /// The project's files on each online peer, asked at once; silent peers are skipped.
    async fn peer_listings(&self, project: &str) -> Vec<(Dist, Source)> {
        let asks = self.peers().into_iter().map(|peer| async move {
            let client = self.peer_http(&peer).ok()?;
            let url = format!("{}/api/v1/cache/packages/{project}", peer.url);
            let res = client
                .get(&url)
                .headers(self.cache_headers(&peer.id))
                .timeout(LIST_TIMEOUT)
                .send()
                .await
                .ok()?;
            if !res.status().is_success() {
                tracing::debug!("peer {:?} lists no {project}: {}", peer.name, res.status());
                return None;
            }
            let listing: Listing = res.json().await.ok()?;
            Some(
                listing
                    .files
                    .into_iter()
                    .filter(|d| is_dist_name(&d.filename))
                    .map(|d| {
                        let source = Source {
                            dist: d.clone(),
                            url: format!("{url}/{}", d.filename),
                            peer: Some((peer.id.clone(), peer.name.clone())),
                        };
                        (d, source)
                    })
                    .collect::<Vec<_>>(),
            )
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .flatten()
            .collect()
    }

    /// The project's files on the upstream index (PEP 691 JSON), or `None` when there is no
    /// upstream or it cannot be reached (offline is normal: the LAN may have everything).
    async fn upstream_listing(&self, project: &str) -> Option<Vec<Source>> {
        let upstream = &self.inner.config.cache.upstream;
        if upstream.is_empty() {
            return None;
        }
        let url = format!("{upstream}/{project}/");
        let res = upstream_client()
            .get(&url)
            .header("accept", "application/vnd.pypi.simple.v1+json")
            .timeout(LIST_TIMEOUT)
            .send()
            .await;
        let res = match res {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::debug!("upstream index {url}: {}", r.status());
                return None;
            }
            Err(e) => {
                tracing::info!("upstream index {upstream} cannot be reached ({e}); the LAN only");
                return None;
            }
        };
        let base = res.url().clone();
        let page: pep691::Project = res.json().await.ok()?;
        Some(
            page.files
                .into_iter()
                .filter(|f| !f.yanked.is_yanked() && is_dist_name(&f.filename))
                .filter_map(|f| {
                    let sha256 = f.hashes.get("sha256")?.to_ascii_lowercase();
                    let url = base.join(&f.url).ok()?.to_string();
                    Some(Source {
                        dist: Dist {
                            filename: f.filename,
                            sha256,
                            size: f.size.unwrap_or(0),
                            requires_python: f.requires_python,
                        },
                        url,
                        peer: None,
                    })
                })
                .collect(),
        )
    }

    async fn fetch_into_store(&self, source: &Source) -> Result<IndexFile> {
        let name = &source.dist.filename;
        let (client, headers, from) = match &source.peer {
            Some((id, peer_name)) => {
                let peer = self.find_peer(id)?;
                (
                    self.peer_http(&peer)?,
                    self.cache_headers(id),
                    format!("peer {peer_name:?}"),
                )
            }
            None => (
                upstream_client(),
                reqwest::header::HeaderMap::new(),
                format!("the index {}", self.inner.config.cache.upstream),
            ),
        };
        let failed = |what: String| NodeError::Fetch(format!("cannot fetch {name} from {from}: {what}"));
        let res = client
            .get(&source.url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !res.status().is_success() {
            return Err(failed(format!("it answered {}", res.status())));
        }
        let mut incoming = self
            .package_store()
            .incoming(name, &source.dist.sha256, &from)
            .map_err(|e| NodeError::Fetch(e.to_string()))?;
        let mut body = res.bytes_stream();
        let stats = &self.inner.index.stats;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed(e.to_string()))?;
            incoming
                .write(&chunk)
                .map_err(|e| NodeError::Fetch(e.to_string()))?;
            stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let (path, dist) = incoming.finish().map_err(|e| {
            tracing::warn!("{e}");
            NodeError::Fetch(e.to_string())
        })?;
        stats.fetched.fetch_add(1, Ordering::Relaxed);
        if let Some((_, peer_name)) = &source.peer {
            stats.from_peers.fetch_add(1, Ordering::Relaxed);
            *lock(&stats.last_peer) = Some(peer_name.clone());
        }
        tracing::info!("package {name}: fetched from {from}, hash checked");
        Ok(IndexFile {
            path,
            size: dist.size,
        })
    }
}

/// The client for the upstream index: the system's usual TLS roots.
fn upstream_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(LIST_TIMEOUT)
                .user_agent(concat!("aienv/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// The parts of the PEP 691 JSON project page the index uses.
mod pep691 {
    use std::collections::HashMap;

    #[derive(Debug, serde::Deserialize)]
    pub struct Project {
        pub files: Vec<File>,
    }

    #[derive(Debug, serde::Deserialize)]
    pub struct File {
        pub filename: String,
        pub url: String,
        #[serde(default)]
        pub hashes: HashMap<String, String>,
        #[serde(default, rename = "requires-python")]
        pub requires_python: Option<String>,
        #[serde(default)]
        pub size: Option<u64>,
        #[serde(default)]
        pub yanked: Yanked,
    }

    /// `false`, `true`, or the reason (a string, which also means yanked).
    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(untagged)]
    pub enum Yanked {
        #[default]
        No,
        Flag(bool),
        Reason(#[allow(dead_code)] String),
    }

    impl Yanked {
        pub fn is_yanked(&self) -> bool {
            matches!(self, Yanked::Flag(true) | Yanked::Reason(_))
        }
    }
}

/// The index's state, made at start.
pub(crate) fn new_index() -> Arc<Index> {
    Arc::new(Index::default())
}
