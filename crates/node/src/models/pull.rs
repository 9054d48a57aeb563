//! Pulling a model from a peer into this machine's hub cache.
//!
//! [`Node::pull_model`] asks the peers (or the one named) for the revision's file list, takes the
//! first that has it, and returns a running [`ModelPull`]; a task then fetches each file whose
//! blob is not here yet, checking its bytes against the hash the blob is named by as they arrive
//! (a blob that does not match is not kept). Only when every blob is here are the snapshot links
//! and the ref written, so a failed pull never leaves a revision that looks complete but is not.

use std::time::Duration;

use aienv_core::peer::Peer;
use aienv_lancache::hf::{HfCache, HfError, RepoId, check_path, check_ref, is_commit};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{ModelPull, ModelPullRequest, PullState, RepoFile, RepoSummary, Revision};
use crate::{Node, NodeError, Result, lock, now_ms};

/// How long a peer may take to list its models or a revision's files.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);

/// What one peer said when asked for a revision.
enum Answer {
    Has(Box<Revision>),
    Lacks,
    Refused { code: String, message: String },
    Away(String),
}

impl Node {
    /// Starts pulling `req.repo` at `req.revision` (default `main`) from a peer that has it. Fails
    /// at once when no peer has it (naming those asked), the peer refused, or the peer's file
    /// list is unusable; the returned pull then runs on, its state in [`Node::model_pull`].
    pub async fn pull_model(&self, req: ModelPullRequest) -> Result<ModelPull> {
        if !self.inner.config.cache.models {
            return Err(NodeError::Denied {
                code: "cache_off",
                message: "this node does not pull models from peers (`[cache] models = false` in \
                          its config.toml); remove that line and restart the node to pull"
                    .into(),
            });
        }
        let repo = RepoId::new(req.kind.unwrap_or_default(), req.repo.trim())
            .map_err(|e| NodeError::InvalidRequest(e.to_string()))?;
        let revision = req
            .revision
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .unwrap_or("main")
            .to_string();
        if !is_commit(&revision) {
            check_ref(&revision).map_err(|e| NodeError::InvalidRequest(e.to_string()))?;
        }
        let cache = self.hf_cache()?;
        if let Some(running) = self.model_pulls().into_iter().find(|p| {
            p.state == PullState::Running
                && p.repo == repo.name()
                && p.kind == repo.kind()
                && p.revision == revision
        }) {
            return Ok(running);
        }
        let peers = match req.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            Some(key) => vec![self.find_peer(key)?],
            None => self.peers(),
        };
        if peers.is_empty() {
            return Err(NodeError::NotFound(format!(
                "no peers on the LAN to ask for {repo}; `aienv peers` lists the nodes this one \
                 knows"
            )));
        }
        let (peer, listing) = self.find_revision(&peers, &repo, &revision).await?;
        check_listing(&listing, &repo, &revision, &peer)?;
        let pull = ModelPull {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            repo: repo.name().to_string(),
            kind: repo.kind(),
            revision: revision.clone(),
            commit: listing.commit.clone(),
            peer_id: peer.id.clone(),
            peer_name: peer.name.clone(),
            state: PullState::Running,
            files: listing.files.len(),
            files_fetched: 0,
            files_present: 0,
            bytes_total: 0,
            bytes_fetched: 0,
            snapshot: cache.snapshot_dir(&repo, &listing.commit),
            error: None,
            error_code: None,
            started_ms: now_ms(),
            finished_ms: None,
        };
        lock(&self.inner.model_pulls.0).insert(pull.id.clone(), pull.clone());
        let node = self.clone();
        let id = pull.id.clone();
        tokio::spawn(async move {
            let result = node.run_pull(&id, &peer, &cache, &repo, &listing).await;
            node.update_pull(&id, |p| {
                p.finished_ms = Some(now_ms());
                match result {
                    Ok(()) => p.state = PullState::Done,
                    Err((code, message)) => {
                        p.state = PullState::Failed;
                        p.error_code = Some(code.to_string());
                        p.error = Some(message);
                    }
                }
            });
            if let Ok(p) = node.model_pull(&id) {
                match &p.error {
                    None => tracing::info!(
                        "pulled {} {} from {:?}: {} files fetched, {} already here",
                        p.repo,
                        p.revision,
                        p.peer_name,
                        p.files_fetched,
                        p.files_present
                    ),
                    Some(e) => tracing::warn!("pulling {} from {:?}: {e}", p.repo, p.peer_name),
                }
            }
        });
        Ok(pull)
    }

    /// Asks every peer in `peers` at once; the first in order that has the revision wins.
    async fn find_revision(
        &self,
        peers: &[Peer],
        repo: &RepoId,
        revision: &str,
    ) -> Result<(Peer, Revision)> {
        let asks = peers.iter().map(|p| self.ask_revision(p, repo, revision));
        let answers = futures_util::future::join_all(asks).await;
        let mut said = Vec::new();
        let mut refusals = Vec::new();
        for (peer, answer) in peers.iter().zip(answers) {
            match answer {
                Answer::Has(listing) => return Ok((peer.clone(), *listing)),
                Answer::Lacks => said.push(format!("{:?} does not have it", peer.name)),
                Answer::Away(why) => said.push(format!("{:?} did not answer ({why})", peer.name)),
                Answer::Refused { code, message } => {
                    said.push(format!("{:?} refused: {message}", peer.name));
                    refusals.push(code);
                }
            }
        }
        let what = format!("{repo} at {revision:?}");
        if refusals.len() == peers.len() {
            return Err(NodeError::Denied {
                code: refusal_code(&refusals[0]),
                message: format!("no peer let this node pull {what}: {}", said.join("; ")),
            });
        }
        Err(NodeError::NotFound(format!(
            "no peer has {what} in its Hugging Face cache ({}); download it once on any node \
             of the LAN, then pull it here",
            said.join("; ")
        )))
    }

    async fn ask_revision(&self, peer: &Peer, repo: &RepoId, revision: &str) -> Answer {
        let http = match self.peer_http(peer) {
            Ok(h) => h,
            Err(e) => return Answer::Away(e.to_string()),
        };
        let url = format!(
            "{}/api/v1/cache/models/{}/revisions/{}",
            peer.url,
            repo.folder(),
            revision.replace('/', "%2F")
        );
        let res = match http
            .get(&url)
            .headers(self.cache_headers(&peer.id))
            .timeout(LISTING_TIMEOUT)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Answer::Away(aienv_trust::describe(&e)),
        };
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Answer::Lacks;
        }
        if !res.status().is_success() {
            let (code, message) = refusal(res).await;
            return Answer::Refused { code, message };
        }
        match res.json::<Revision>().await {
            Ok(listing) => Answer::Has(Box::new(listing)),
            Err(e) => Answer::Away(format!("an unreadable file list: {e}")),
        }
    }

    /// The models `peer` offers this node.
    pub(super) async fn peer_models(&self, peer: &Peer) -> Result<Vec<RepoSummary>> {
        let http = self.peer_http(peer)?;
        let res = http
            .get(format!("{}/api/v1/cache/models", peer.url))
            .headers(self.cache_headers(&peer.id))
            .timeout(LISTING_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                NodeError::NotFound(format!(
                    "{:?} did not answer: {}",
                    peer.name,
                    aienv_trust::describe(&e)
                ))
            })?;
        if !res.status().is_success() {
            let (code, message) = refusal(res).await;
            return Err(NodeError::Denied {
                code: refusal_code(&code),
                message,
            });
        }
        res.json().await.map_err(|e| {
            NodeError::NotFound(format!(
                "{:?} sent an unreadable model list: {e}",
                peer.name
            ))
        })
    }

    /// Fetches what is missing, then links the snapshot and sets the ref. The error is a code
    /// and a sentence for the pull's record.
    async fn run_pull(
        &self,
        id: &str,
        peer: &Peer,
        cache: &HfCache,
        repo: &RepoId,
        listing: &Revision,
    ) -> std::result::Result<(), (&'static str, String)> {
        let have = {
            let (cache, repo, files) = (cache.clone(), repo.clone(), listing.files.clone());
            tokio::task::spawn_blocking(move || {
                files
                    .iter()
                    .map(|f| cache.has_blob(&repo, f))
                    .collect::<Vec<bool>>()
            })
            .await
            .map_err(|e| ("io_error", format!("checking the cache failed: {e}")))?
        };
        let (mut present, mut missing) = (Vec::new(), Vec::new());
        // Files with the same bytes share a blob: it is fetched once.
        let mut wanted = std::collections::HashSet::new();
        for (file, here) in listing.files.iter().zip(have) {
            if here {
                present.push(file)
            } else if wanted.insert(file.blob.as_str()) {
                missing.push(file)
            }
        }
        let bytes_total = missing.iter().map(|f| f.size).sum();
        self.update_pull(id, |p| {
            p.files_present = present.len();
            p.bytes_total = bytes_total;
        });
        let http = self
            .peer_http(peer)
            .map_err(|e| ("peer_refused", e.to_string()))?;
        for file in missing {
            self.fetch_blob(id, &http, peer, cache, repo, file).await?;
            self.update_pull(id, |p| p.files_fetched += 1);
        }
        let (cache, repo, listing) = (cache.clone(), repo.clone(), listing.clone());
        tokio::task::spawn_blocking(move || {
            for f in &listing.files {
                cache.link(&repo, &listing.commit, f)?;
            }
            if listing.revision != listing.commit {
                cache.set_ref(&repo, &listing.revision, &listing.commit)?;
            }
            Ok::<(), HfError>(())
        })
        .await
        .map_err(|e| ("io_error", format!("writing the snapshot failed: {e}")))?
        .map_err(|e| ("io_error", e.to_string()))
    }

    /// Streams one blob from `peer` into the cache, verified on the way in.
    async fn fetch_blob(
        &self,
        id: &str,
        http: &reqwest::Client,
        peer: &Peer,
        cache: &HfCache,
        repo: &RepoId,
        file: &RepoFile,
    ) -> std::result::Result<(), (&'static str, String)> {
        let url = format!(
            "{}/api/v1/cache/models/{}/blobs/{}",
            peer.url,
            repo.folder(),
            file.blob
        );
        let away = |e: &(dyn std::error::Error + 'static)| {
            (
                "peer_unreachable",
                format!(
                    "{}: the transfer from {:?} broke off ({}); pull again to fetch the rest",
                    file.path,
                    peer.name,
                    aienv_trust::describe(e)
                ),
            )
        };
        let res = http
            .get(&url)
            .headers(self.cache_headers(&peer.id))
            .send()
            .await
            .map_err(|e| away(&e))?;
        if !res.status().is_success() {
            let (_, message) = refusal(res).await;
            return Err((
                "peer_refused",
                format!("{:?} did not send {}: {message}", peer.name, file.path),
            ));
        }
        // The file is written on the blocking pool; the chunks reach it through a channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, String>>(16);
        let writer = {
            let (cache, repo, file) = (cache.clone(), repo.clone(), file.clone());
            tokio::task::spawn_blocking(move || {
                let mut incoming = cache.incoming(&repo, &file)?;
                while let Some(chunk) = rx.blocking_recv() {
                    match chunk {
                        Ok(bytes) => incoming.write(&bytes)?,
                        Err(why) => {
                            return Err(HfError::Io(file.path.clone(), std::io::Error::other(why)));
                        }
                    }
                }
                incoming.finish()
            })
        };
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| aienv_trust::describe(&e));
            let n = chunk.as_ref().map_or(0, |b| b.len() as u64);
            if tx.send(chunk).await.is_err() {
                break; // the writer stopped: its error says why
            }
            self.update_pull(id, |p| p.bytes_fetched += n);
        }
        drop(tx);
        match writer.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e @ (HfError::HashMismatch { .. } | HfError::SizeMismatch { .. }))) => {
                Err(("hash_mismatch", format!("{} (from {:?})", e, peer.name)))
            }
            Ok(Err(HfError::Io(path, e))) if path == file.path => Err(away(&e)),
            Ok(Err(e)) => Err(("io_error", e.to_string())),
            Err(e) => Err(("io_error", format!("writing {} failed: {e}", file.path))),
        }
    }
}

/// Refuses a listing that is not for what was asked or names anything that cannot be a file of
/// the snapshot: a peer's word decides which bytes come, never where they go.
fn check_listing(listing: &Revision, repo: &RepoId, revision: &str, peer: &Peer) -> Result<()> {
    let unusable = |why: String| {
        NodeError::InvalidRequest(format!(
            "{:?} sent a file list for {repo} that cannot be used ({why}); nothing was fetched",
            peer.name
        ))
    };
    if listing.repo != repo.name() || listing.kind != repo.kind() {
        return Err(unusable(format!("it is for {:?}", listing.repo)));
    }
    // The ref written is the one asked for, never another the peer names.
    if listing.revision != revision {
        return Err(unusable(format!(
            "it is for revision {:?}",
            listing.revision
        )));
    }
    if !is_commit(&listing.commit) {
        return Err(unusable(format!("{:?} is no commit hash", listing.commit)));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &listing.files {
        check_path(&f.path).map_err(|e| unusable(e.to_string()))?;
        if aienv_lancache::hf::BlobKind::of(&f.blob).is_none() {
            return Err(unusable(format!(
                "{}: {:?} is no blob hash",
                f.path, f.blob
            )));
        }
        if !seen.insert(f.path.as_str()) {
            return Err(unusable(format!("{} is listed twice", f.path)));
        }
    }
    Ok(())
}

/// The code and message of a peer's error answer.
async fn refusal(res: reqwest::Response) -> (String, String) {
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("access_denied");
    let message = body["error"]["message"]
        .as_str()
        .map_or_else(|| format!("it answered {status}"), str::to_string);
    (code.to_string(), message)
}

/// A peer's refusal code as this node's own (anything unknown is `access_denied`).
fn refusal_code(code: &str) -> &'static str {
    match code {
        "cache_off" => "cache_off",
        "peer_unknown" => "peer_unknown",
        "token_required" => "token_required",
        "peer_impersonation" => "peer_impersonation",
        "tls_required" => "tls_required",
        "peer_certificate_changed" => "peer_certificate_changed",
        "peer_not_secure" => "peer_not_secure",
        _ => "access_denied",
    }
}
