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

/// Where a listed file can be fetched from (and its core metadata, at `URL.metadata`, when the
/// listing gave its hash).
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
    /// Files being fetched now: one fetch per file (an installer may ask twice at once).
    inflight: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Core metadata fetched from peers or upstream (small), by wheel file name.
    metadata: std::sync::Mutex<HashMap<String, bytes::Bytes>>,
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
pub enum IndexFile {
    /// In this node's store or wheel folders.
    Stored(PathBuf),
    /// Being fetched: its bytes as they arrive (an error at the end if the hash was wrong).
    Fetching {
        body: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
        size: Option<u64>,
    },
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

    /// The core metadata of this node's own wheel `filename`, for a peer.
    pub fn cached_package_metadata(&self, filename: &str) -> Result<bytes::Bytes> {
        self.package_store()
            .metadata(filename)
            .map(|(b, _)| bytes::Bytes::from(b.to_vec()))
            .ok_or_else(|| {
                NodeError::NotFound(format!("this node has no metadata of {filename:?}"))
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
        // The address the API listens on: loopback when it listens on all of them.
        let ip = match self.inner.config.listen.ip() {
            ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let host = std::net::SocketAddr::new(ip, port);
        let auth = self
            .inner
            .config
            .api_key
            .as_deref()
            .map_or(String::new(), |k| format!("aienv:{k}@"));
        Some(format!("http://{auth}{host}/api/v1/index/simple"))
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

    /// The file `filename` for an installer: from the store, or fetched from where the listing
    /// found it, passed on as it arrives and kept once its hash is the listed one. (A file whose
    /// hash is wrong ends its body with an error, and the installer, which checks the hash from
    /// the page too, refuses it.)
    pub async fn index_file(&self, filename: &str) -> Result<IndexFile> {
        if !is_dist_name(filename) {
            return Err(NodeError::NotFound(format!(
                "{filename:?} is not a package file name"
            )));
        }
        loop {
            if let Some(path) = self.package_store().find(filename) {
                return Ok(IndexFile::Stored(path));
            }
            let source = lock(&self.inner.index.sources).get(filename).cloned();
            let Some(source) = source else {
                return Err(NodeError::NotFound(format!(
                    "no peer and no upstream index listed {filename:?}; list its project first \
                     (GET /api/v1/index/simple/PROJECT/)"
                )));
            };
            if lock(&self.inner.index.inflight).insert(filename.to_string()) {
                return self.fetch_into_store(source).await;
            }
            // Another request fetches it: wait for that one to keep it (or to fail, and try).
            while lock(&self.inner.index.inflight).contains(filename) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The core metadata of wheel `filename` (PEP 658): from the store, or fetched from where
    /// the listing found the wheel and checked against the hash it gave.
    pub async fn index_metadata(&self, filename: &str) -> Result<bytes::Bytes> {
        if let Some((bytes, _)) = self.package_store().metadata(filename) {
            return Ok(bytes::Bytes::from(bytes.to_vec()));
        }
        if let Some(b) = lock(&self.inner.index.metadata).get(filename) {
            return Ok(b.clone());
        }
        let source = lock(&self.inner.index.sources).get(filename).cloned();
        let Some((source, want)) =
            source.and_then(|s| s.dist.metadata_sha256.clone().map(|m| (s, m)))
        else {
            return Err(NodeError::NotFound(format!(
                "no metadata of {filename:?} is listed; installers fall back to the wheel"
            )));
        };
        let (client, headers) = match &source.peer {
            Some((id, _)) => (
                self.peer_http(&self.find_peer(id)?)?,
                self.cache_headers(id),
            ),
            None => (upstream_client(), reqwest::header::HeaderMap::new()),
        };
        let failed = |what: String| {
            NodeError::Fetch(format!("cannot fetch the metadata of {filename}: {what}"))
        };
        let res = client
            .get(format!("{}.metadata", source.url))
            .headers(headers)
            .timeout(LIST_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !res.status().is_success() {
            return Err(failed(format!("it answered {}", res.status())));
        }
        let bytes = res.bytes().await.map_err(|e| failed(e.to_string()))?;
        let got = aienv_lancache::packages::sha256_hex(&bytes);
        if got != want {
            return Err(failed(format!(
                "its SHA-256 is {got}, but the listing said {want}; it was not used"
            )));
        }
        lock(&self.inner.index.metadata).insert(filename.to_string(), bytes.clone());
        Ok(bytes)
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
                    let metadata_sha256 = f.metadata_sha256();
                    Some(Source {
                        dist: Dist {
                            filename: f.filename,
                            sha256,
                            size: f.size.unwrap_or(0),
                            requires_python: f.requires_python,
                            metadata_sha256,
                        },
                        url,
                        peer: None,
                    })
                })
                .collect(),
        )
    }

    /// Starts fetching `source` (its name is in `inflight`, and leaves it when done).
    async fn fetch_into_store(&self, source: Source) -> Result<IndexFile> {
        let guard = Inflight(self.clone(), source.dist.filename.clone());
        let name = source.dist.filename.clone();
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
        let failed = move |what: String| format!("cannot fetch {name} from {from}: {what}");
        let res = client
            .get(&source.url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| NodeError::Fetch(failed(e.to_string())))?;
        if !res.status().is_success() {
            return Err(NodeError::Fetch(failed(format!(
                "it answered {}",
                res.status()
            ))));
        }
        let from_name = source
            .peer
            .as_ref()
            .map_or("the upstream index".to_string(), |(_, n)| {
                format!("peer {n:?}")
            });
        let mut incoming = self
            .package_store()
            .incoming(&source.dist.filename, &source.dist.sha256, &from_name)
            .map_err(|e| NodeError::Fetch(e.to_string()))?;
        let size = res.content_length();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
        let node = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let stats = &node.inner.index.stats;
            let mut body = res.bytes_stream();
            let mut error = None;
            // The last chunk waits for the hash check: a file that fails it never arrives whole,
            // whatever length the response announced.
            let mut held: Option<bytes::Bytes> = None;
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        error = Some(failed(e.to_string()));
                        break;
                    }
                };
                if let Err(e) = incoming.write(&chunk) {
                    error = Some(e.to_string());
                    break;
                }
                stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                // The installer may have gone; the file is still worth keeping for the LAN.
                if let Some(prev) = held.replace(chunk) {
                    let _ = tx.send(Ok(prev)).await;
                }
            }
            let kept = match error {
                Some(e) => Err(e),
                None => incoming.finish().map_err(|e| e.to_string()),
            };
            match kept {
                Ok(_) => {
                    if let Some(last) = held {
                        let _ = tx.send(Ok(last)).await;
                    }
                    stats.fetched.fetch_add(1, Ordering::Relaxed);
                    if let Some((_, peer_name)) = &source.peer {
                        stats.from_peers.fetch_add(1, Ordering::Relaxed);
                        *lock(&stats.last_peer) = Some(peer_name.clone());
                    }
                    tracing::info!(
                        "package {}: fetched from {from_name}, hash checked",
                        source.dist.filename
                    );
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                }
            }
        });
        Ok(IndexFile::Fetching { body: rx, size })
    }
}

/// Takes a file's name out of the in-flight set when its fetch ends, however it ends.
struct Inflight(Node, String);

impl Drop for Inflight {
    fn drop(&mut self) {
        lock(&self.0.inner.index.inflight).remove(&self.1);
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
        /// PEP 714's name for PEP 658's `dist-info-metadata`: `{"sha256": ...}`, or a bool.
        #[serde(default, rename = "core-metadata")]
        pub core_metadata: Option<serde_json::Value>,
        #[serde(default, rename = "dist-info-metadata")]
        pub dist_info_metadata: Option<serde_json::Value>,
    }

    impl File {
        /// The metadata's SHA-256, when the index serves it apart and says its hash.
        pub fn metadata_sha256(&self) -> Option<String> {
            let v = self
                .core_metadata
                .as_ref()
                .or(self.dist_info_metadata.as_ref())?;
            v.get("sha256")?.as_str().map(str::to_ascii_lowercase)
        }
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
