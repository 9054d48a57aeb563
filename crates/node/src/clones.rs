//! Clone jobs: copy a peer's shared workspace here (or update an earlier copy), verified, then
//! register it. The transfer itself is `aienv_sharing::transfer`; this is the job around it:
//! resolving names, the staging folder, progress events, cancel, the final move, registration,
//! and the hook where the runtime adapts the clone to this machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aienv_core::clone::{CloneJob, CloneProgress, CloneState};
use aienv_core::peer::Peer;
use aienv_core::{Event, Workspace};
use aienv_sharing::index::FileManifest;
use aienv_sharing::transfer::TransferError;
use aienv_sharing::transfer::client::{self, Compress, Counters, Spec, staging_for};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::error::{NodeError, Result};
use crate::now_ms;
use crate::{NewWorkspace, Node, lock};

#[cfg(test)]
mod tests;

/// Where a clone records its source, inside the cloned workspace (never shared itself).
const ORIGIN_FILE: &str = ".aienv/origin.json";
/// The jobs of this node, kept so a restart can say what was interrupted.
const JOBS_FILE: &str = "clones.json";
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// `POST /api/v1/clones`: clone a peer's workspace, or pull an earlier clone.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// `PEER/WORKSPACE`: a peer's name or id, and the name or id of a workspace it shares.
    pub source: Option<String>,
    /// A registered workspace that is a clone: bring it up to date with its source.
    pub pull: Option<String>,
    /// Where the clone goes (default: `~/aienv/WORKSPACE`). Absolute.
    #[schema(value_type = Option<String>)]
    pub to: Option<PathBuf>,
    /// `auto` (by the measured link speed), `on` or `off`.
    #[serde(default)]
    pub compress: Option<String>,
    /// A share token from the owner (for a share with `access = "token"`); kept for later pulls.
    #[serde(default)]
    pub token: Option<String>,
}

/// What a clone remembers about where it came from.
#[derive(Debug, Serialize, Deserialize)]
struct Origin {
    peer_id: String,
    peer_name: String,
    workspace_id: String,
    workspace_name: String,
    manifest: FileManifest,
}

/// A running job's handles.
#[derive(Debug)]
pub(crate) struct Running {
    cancel: watch::Sender<bool>,
}

impl Node {
    /// The registered clone of `owner`'s workspace `workspace_id`, if this node has one.
    pub(crate) fn clone_of(&self, owner: &str, workspace_id: &str) -> Option<Workspace> {
        self.all_workspaces().into_iter().find(|w| {
            read_origin(&w.path)
                .is_some_and(|o| o.peer_id == owner && o.workspace_id == workspace_id)
        })
    }

    pub fn clones(&self) -> Vec<CloneJob> {
        let mut jobs: Vec<CloneJob> = lock(&self.inner.clones).values().cloned().collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.started_ms));
        jobs
    }

    pub fn clone_job(&self, id: &str) -> Result<CloneJob> {
        lock(&self.inner.clones)
            .get(id)
            .cloned()
            .ok_or_else(|| NodeError::NotFound(format!("no clone job {id:?} (see `aienv clones`)")))
    }

    /// Cancels a running clone; its staging folder is removed.
    pub fn cancel_clone(&self, id: &str) -> Result<CloneJob> {
        let job = self.clone_job(id)?;
        match lock(&self.inner.running_clones).get(id) {
            Some(r) => {
                let _ = r.cancel.send(true);
            }
            None => {
                return Err(NodeError::InvalidRequest(format!(
                    "clone {id} is not running (it is {:?})",
                    job.state
                )));
            }
        }
        Ok(job)
    }

    /// Starts a clone (or a pull) and returns its job at once; progress follows as events.
    pub async fn start_clone(&self, req: CloneRequest) -> Result<CloneJob> {
        let compress = match req.compress.as_deref() {
            None | Some("auto") => Compress::Auto,
            Some("on") => Compress::On,
            Some("off") => Compress::Off,
            Some(other) => {
                return Err(NodeError::InvalidRequest(format!(
                    "compress is auto, on or off, not {other:?}"
                )));
            }
        };
        let (peer, workspace_id, workspace_name, target, pull) = match (&req.source, &req.pull) {
            (Some(source), None) => {
                let (peer, ws) = source.split_once('/').ok_or_else(|| {
                    NodeError::InvalidRequest(format!(
                        "{source:?} is not PEER/WORKSPACE (see `aienv catalog`)"
                    ))
                })?;
                let peer = self.find_peer(peer)?;
                let list =
                    aienv_sharing::fetch_shares(&self.peer_http(&peer)?, &peer.url, Some(&peer.id))
                        .await
                        .map_err(|e| NodeError::NotFound(e.to_string()))?;
                let w = list
                    .workspaces
                    .iter()
                    .find(|w| w.id == ws || w.name == ws)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            list.workspaces.iter().map(|w| w.name.as_str()).collect();
                        NodeError::NotFound(format!(
                            "peer {:?} shares no workspace {ws:?} (it shares: {})",
                            peer.name,
                            names.join(", ")
                        ))
                    })?;
                let target = match &req.to {
                    Some(t) if t.is_absolute() => t.clone(),
                    Some(t) => {
                        return Err(NodeError::InvalidRequest(format!(
                            "the target {} must be absolute",
                            t.display()
                        )));
                    }
                    None => default_clone_root()?.join(&w.name),
                };
                let previous_same = read_origin(&target)
                    .is_some_and(|o| o.workspace_id == w.id && o.peer_id == peer.id);
                if target.exists() && !previous_same && !is_empty_dir(&target) {
                    return Err(NodeError::Exists(format!(
                        "{} already exists and is not a clone of {source}; choose another folder with --to",
                        target.display()
                    )));
                }
                if let Some(token) = req.token.as_deref().filter(|t| !t.is_empty()) {
                    self.hold_token(&peer.id, &w.id, token.trim());
                }
                (peer, w.id.clone(), w.name.clone(), target, previous_same)
            }
            (None, Some(ws)) => {
                let w = self.workspace(ws)?;
                let origin = read_origin(&w.path).ok_or_else(|| {
                    NodeError::InvalidRequest(format!("workspace {:?} is not a clone (it has no {ORIGIN_FILE}); nothing to pull from", w.name))
                })?;
                let peer = self.find_peer(&origin.peer_id).map_err(|_| {
                    NodeError::NotFound(format!("peer {:?}, where {:?} came from, is not on the LAN now; pull again when it is", origin.peer_name, w.name))
                })?;
                (
                    peer,
                    origin.workspace_id,
                    origin.workspace_name,
                    w.path,
                    true,
                )
            }
            _ => {
                return Err(NodeError::InvalidRequest(
                    "give either source (PEER/WORKSPACE) or pull (WORKSPACE)".into(),
                ));
            }
        };
        if lock(&self.inner.clones)
            .values()
            .any(|j| j.state == CloneState::Running && j.target == target)
        {
            return Err(NodeError::Exists(format!(
                "a clone into {} is already running",
                target.display()
            )));
        }
        let job = CloneJob {
            id: uuid::Uuid::new_v4().simple().to_string()[..10].to_string(),
            peer_id: peer.id.clone(),
            peer_name: peer.name.clone(),
            workspace_id,
            workspace_name,
            target,
            pull,
            state: CloneState::Running,
            progress: CloneProgress::default(),
            error: None,
            result_workspace_id: None,
            notes: Vec::new(),
            started_ms: now_ms(),
            finished_ms: None,
        };
        let (cancel, cancelled) = watch::channel(false);
        lock(&self.inner.clones).insert(job.id.clone(), job.clone());
        lock(&self.inner.running_clones).insert(job.id.clone(), Running { cancel });
        self.save_jobs();
        self.emit(Event::CloneProgress { job: job.clone() });
        let node = self.clone();
        let id = job.id.clone();
        tokio::spawn(async move { node.run_clone(id, peer, compress, cancelled).await });
        Ok(job)
    }

    /// Shows `text` in a running job's notes (the final notes replace it).
    fn note(&self, id: &str, text: String) {
        let job = lock(&self.inner.clones).get_mut(id).map(|j| {
            j.notes.push(text);
            j.clone()
        });
        if let Some(job) = job {
            self.emit(Event::CloneProgress { job });
        }
    }

    pub(crate) fn find_peer(&self, key: &str) -> Result<Peer> {
        let peers = self.peers();
        let found: Vec<&Peer> = peers
            .iter()
            .filter(|p| p.id == key || p.name == key)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NodeError::NotFound(format!(
                "no peer {key:?} on the LAN (peers now: {}); see `aienv peers`",
                if peers.is_empty() {
                    "none".to_string()
                } else {
                    peers
                        .iter()
                        .map(|p| p.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
            _ => Err(NodeError::Ambiguous(format!(
                "several peers are named {key:?}; use a peer id (see `aienv peers`)"
            ))),
        }
    }

    async fn run_clone(
        self,
        id: String,
        peer: Peer,
        compress: Compress,
        cancelled: watch::Receiver<bool>,
    ) {
        let job = self.clone_job(&id).expect("the job was just registered");
        let counters = Arc::new(Counters::default());
        let ticker = self.spawn_progress(id.clone(), counters.clone());
        let result = self
            .transfer(&job, &peer, compress, counters.clone(), cancelled)
            .await;
        ticker.abort();
        let (result, mut notes) = match result {
            Ok((ws, kept)) => (Ok(ws), kept),
            Err(e) => (Err(e), Vec::new()),
        };
        if let Ok(ws) = &result {
            notes.extend(self.adapt_after_clone(ws, &peer, &job.workspace_id).await);
            tracing::debug!("clone: adapted to this machine");
        }
        let staging = staging_for(&job.target);
        let (state, error, ws) = match result {
            Ok(ws) => (CloneState::Done, None, Some(ws)),
            Err(e) => {
                let (state, message) = match &e {
                    TransferError::Cancelled => (CloneState::Cancelled, e.to_string()),
                    TransferError::Hostile(_) | TransferError::Denied { .. } => {
                        (CloneState::Failed, e.to_string())
                    }
                    _ => (
                        CloneState::Failed,
                        format!("{e}; run the same clone again to resume where it stopped"),
                    ),
                };
                // A cancelled or hostile clone leaves nothing behind; an interrupted one keeps
                // its staging folder so a retry resumes.
                if matches!(e, TransferError::Cancelled | TransferError::Hostile(_)) {
                    let _ =
                        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(staging)).await;
                }
                (state, Some(message), None)
            }
        };
        let finished = {
            let mut jobs = lock(&self.inner.clones);
            let j = jobs.get_mut(&id).expect("job");
            j.state = state;
            j.error = error;
            j.finished_ms = Some(now_ms());
            j.progress = snapshot(&counters, &j.progress, Duration::ZERO);
            j.result_workspace_id = ws.as_ref().map(|w: &Workspace| w.id.clone());
            j.notes = notes;
            j.clone()
        };
        lock(&self.inner.running_clones).remove(&id);
        self.save_jobs();
        match state {
            CloneState::Done => self.emit(Event::CloneDone { job: finished }),
            _ => self.emit(Event::CloneFailed { job: finished }),
        }
    }

    /// Streams into staging (again if the share changed meanwhile), then moves the result into
    /// place (a new clone) or applies it to the clone (a pull), and registers it. Returns the
    /// workspace and what the user should hear about edits made here that were kept.
    async fn transfer(
        &self,
        job: &CloneJob,
        peer: &Peer,
        compress: Compress,
        counters: Arc<Counters>,
        cancelled: watch::Receiver<bool>,
    ) -> std::result::Result<(Workspace, Vec<String>), TransferError> {
        let staging = staging_for(&job.target);
        let t = Instant::now();
        // A pull that was verified and had begun to apply when it stopped: finish that first.
        if let Some(kept) = finish_interrupted_pull(&staging, &job.target).await? {
            return Ok((self.register_clone(&job.target).await?, kept));
        }
        let previous = read_origin(&job.target).map(|o| Arc::new(o.manifest));
        tracing::debug!(elapsed = ?t.elapsed(), "clone: previous origin read");
        let http = self
            .peer_http(peer)
            .map_err(|e| TransferError::Peer(e.to_string()))?;
        let mut attempts = 0;
        let mut asked = false;
        let manifest = loop {
            attempts += 1;
            // Every attempt counts from zero: what is already in staging is counted as reused.
            for c in [
                &counters.bytes_total,
                &counters.bytes_done,
                &counters.files_total,
                &counters.files_done,
            ] {
                c.store(0, Ordering::Relaxed);
            }
            let spec = Spec {
                base_url: &peer.url,
                workspace_id: &job.workspace_id,
                staging: &staging,
                previous: previous.as_ref().map(|m| (job.target.as_path(), m.clone())),
                compress,
                stall: client::STALL,
                headers: &self.share_headers(&peer.id, &job.workspace_id),
            };
            match client::receive(&http, &spec, counters.clone(), cancelled.clone()).await {
                Ok(m) => break m,
                Err(TransferError::Changed) if attempts < 3 => continue,
                // Shared on approval: ask the owner once, wait for the answer, then go on.
                Err(TransferError::Denied { code, .. })
                    if code == "approval_required" && !asked =>
                {
                    asked = true;
                    self.note(
                        &job.id,
                        format!("waiting for {}'s owner to approve", peer.name),
                    );
                    self.ask_access(peer, &job.workspace_id)
                        .await
                        .map_err(|e| TransferError::Denied {
                            code: e.code().into(),
                            message: e.to_string(),
                        })?;
                }
                Err(e) => return Err(e),
            }
        };
        let origin = Origin {
            peer_id: peer.id.clone(),
            peer_name: peer.name.clone(),
            workspace_id: job.workspace_id.clone(),
            workspace_name: job.workspace_name.clone(),
            manifest,
        };
        let target = job.target.clone();
        let kept = tokio::task::spawn_blocking(move || match previous {
            Some(before) => pull_in_place(&staging, &target, &before, &origin),
            None => put_in_place(&staging, &target, &origin).map(|()| Vec::new()),
        })
        .await
        .expect("move task")?;
        tracing::debug!(elapsed = ?t.elapsed(), "clone: in place");
        let ws = self.register_clone(&job.target).await?;
        tracing::debug!(elapsed = ?t.elapsed(), "clone: registered");
        Ok((ws, kept))
    }

    /// Registers a finished clone, or reloads it if it was registered already (a pull).
    async fn register_clone(&self, target: &Path) -> std::result::Result<Workspace, TransferError> {
        let registered = self.all_workspaces().into_iter().find(|w| w.path == target);
        let node = self.clone();
        let target = target.to_path_buf();
        let ws = tokio::task::spawn_blocking(move || match registered {
            // The folder was replaced: watch the new one and read its manifest.
            Some(w) => {
                node.watch(&w.path);
                node.reload(&w.path);
                node.workspace(&w.id)
            }
            None => node.create_workspace(NewWorkspace {
                path: target,
                create: false,
                name: None,
                description: None,
                manifest: None,
            }),
        })
        .await
        .expect("register task")
        .map_err(|e| {
            TransferError::Peer(format!(
                "the clone is complete but could not be registered: {e}"
            ))
        })?;
        Ok(ws)
    }

    /// Fits a fresh clone to this machine: brings the images of its container environments
    /// that the engine here lacks (from the peer it came from), and says which environments do
    /// not fit this machine and why. Python environments are set up at their first run. Nothing
    /// here fails the clone: what could not be done becomes a note that says what to do.
    async fn adapt_after_clone(&self, ws: &Workspace, peer: &Peer, remote_ws: &str) -> Vec<String> {
        let Some(m) = &ws.manifest else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        let machine = self.resources().await;
        for env in &m.environments {
            let fit = aienv_runtime::fit::check(env, &machine);
            if !fit.fits() {
                notes.push(format!(
                    "{} does not fit this machine: {}",
                    env.name,
                    fit.missing.join("; ")
                ));
            }
        }
        let images: std::collections::BTreeSet<&String> = m
            .environments
            .iter()
            // An image built from a Dockerfile is built here again at the first run.
            .filter(|e| e.build.is_none())
            .filter_map(|e| e.image.as_ref())
            .collect();
        for image in images {
            match aienv_runtime::image::present(image).await {
                Ok(true) => {}
                Ok(false) => match self.fetch_image(peer, remote_ws, image).await {
                    Ok(()) => notes.push(format!("brought the image {image} from {}", peer.name)),
                    Err(e) => notes.push(format!(
                        "{e}; get it with `docker pull {image}`, or clone again to retry"
                    )),
                },
                // No engine here: the container environments say so when they are run.
                Err(_) => {}
            }
        }
        notes
    }

    /// Streams an image from the peer's share into this machine's engine.
    async fn fetch_image(
        &self,
        peer: &Peer,
        remote_ws: &str,
        image: &str,
    ) -> std::result::Result<(), aienv_runtime::RunError> {
        use aienv_runtime::RunError;
        let url = format!("{}/api/v1/shares/{remote_ws}/images", peer.url);
        let http = self
            .peer_http(peer)
            .map_err(|e| aienv_runtime::RunError::Image(e.to_string()))?;
        let res = http
            .get(url)
            .headers(self.share_headers(&peer.id, remote_ws))
            .query(&[("name", image)])
            .send()
            .await
            .map_err(|e| {
                RunError::Image(format!("{} did not send the image {image}: {e}", peer.name))
            })?;
        if !res.status().is_success() {
            let status = res.status();
            let why = res.text().await.unwrap_or_default();
            return Err(RunError::Image(format!(
                "{} did not send the image {image} ({status}: {why})",
                peer.name
            )));
        }
        aienv_runtime::image::import(image, res.bytes_stream()).await
    }

    fn spawn_progress(&self, id: String, counters: Arc<Counters>) -> tokio::task::JoinHandle<()> {
        let node = self.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            let mut last = Instant::now();
            loop {
                tick.tick().await;
                let Some(node) = node.upgrade() else { break };
                let job = {
                    let mut jobs = lock(&node.inner.clones);
                    let Some(j) = jobs.get_mut(&id) else { break };
                    let p = snapshot(&counters, &j.progress, last.elapsed());
                    last = Instant::now();
                    if p == j.progress {
                        continue;
                    }
                    j.progress = p;
                    j.clone()
                };
                node.emit(Event::CloneProgress { job });
            }
        })
    }

    fn save_jobs(&self) {
        let jobs = self.clones();
        let path = self.inner.data_dir.path().join(JOBS_FILE);
        let bytes = serde_json::to_vec_pretty(&jobs).expect("jobs serialise");
        if let Err(e) = aienv_core::fsutil::atomic_write(&path, &bytes) {
            tracing::warn!("cannot record clone jobs in {}: {e}", path.display());
        }
    }

    /// At start: jobs that were running when the node stopped are marked interrupted.
    pub(crate) fn load_jobs(&self) {
        let path = self.inner.data_dir.path().join(JOBS_FILE);
        let Some(jobs) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<CloneJob>>(&b).ok())
        else {
            return;
        };
        let mut finished = Vec::new();
        {
            let mut map = lock(&self.inner.clones);
            for mut j in jobs {
                if j.state == CloneState::Running {
                    j.state = CloneState::Interrupted;
                    j.error = Some("the node stopped during this clone; run the same clone again to resume where it stopped".into());
                    // A pull stopped while it was being applied is finished now: the clone must
                    // not stay half old, half new.
                    if j.pull
                        && let Some(kept) =
                            apply_pending(&staging_for(&j.target), &j.target).transpose()
                    {
                        match kept {
                            Ok(kept) => {
                                j.state = CloneState::Done;
                                j.error = None;
                                j.notes = kept;
                                j.notes.push("finished when the node started again".into());
                                finished.push(j.target.clone());
                            }
                            Err(e) => j.error = Some(format!("{e}; pull again to finish it")),
                        }
                        j.finished_ms = Some(now_ms());
                    }
                }
                map.insert(j.id.clone(), j);
            }
        }
        if !finished.is_empty() {
            for target in &finished {
                self.reload(target);
            }
            self.save_jobs();
        }
    }
}

/// Writes the origin into staging and moves it into place: one rename for a new clone. (A
/// folder already there, left by an earlier clone without its origin, steps aside first and is
/// removed after.)
fn put_in_place(
    staging: &Path,
    target: &Path,
    origin: &Origin,
) -> std::result::Result<(), TransferError> {
    let io = |what: String, e: std::io::Error| TransferError::io(what, e);
    record_origin(staging, origin)?;
    durable(staging).map_err(|e| {
        io(
            format!("cannot flush the clone in {} to disk", staging.display()),
            e,
        )
    })?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io(format!("cannot create {}", parent.display()), e))?;
    }
    if target.exists() {
        let old = target.with_file_name(format!(
            ".aienv-old-{}",
            staging
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::fs::rename(target, &old)
            .map_err(|e| io(format!("cannot move the old {} aside", target.display()), e))?;
        if let Err(e) = std::fs::rename(staging, target) {
            let _ = std::fs::rename(&old, target);
            return Err(io(
                format!("cannot move the clone into {}", target.display()),
                e,
            ));
        }
        // The old tree is no longer anyone's: remove it without keeping the user waiting.
        std::thread::spawn(move || {
            let _ = std::fs::remove_dir_all(&old);
        });
    } else {
        std::fs::rename(staging, target).map_err(|e| {
            io(
                format!("cannot move the clone into {}", target.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// Marks a pull as verified and being applied (in its staging folder, beside the new origin).
const APPLYING: &str = ".aienv/applying";

/// Applies a verified pull to the clone in place. The new origin and a marker are made durable
/// first, so that a pull stopped half-applied is finished (never left so) by the next attempt
/// or the next start of the node. Returns the edits made here that were kept.
fn pull_in_place(
    staging: &Path,
    target: &Path,
    before: &FileManifest,
    origin: &Origin,
) -> std::result::Result<Vec<String>, TransferError> {
    let io = |what: String, e: std::io::Error| TransferError::io(what, e);
    record_origin(staging, origin)?;
    let marker = staging.join(APPLYING);
    std::fs::write(&marker, b"")
        .map_err(|e| io(format!("cannot write {}", marker.display()), e))?;
    durable(staging).map_err(|e| {
        io(
            format!("cannot flush the pull in {} to disk", staging.display()),
            e,
        )
    })?;
    apply_staged(staging, target, before, &origin.manifest)
}

/// The apply of a pull that was stopped after it was verified, if there is one.
fn apply_pending(
    staging: &Path,
    target: &Path,
) -> std::result::Result<Option<Vec<String>>, TransferError> {
    if !staging.join(APPLYING).exists() {
        return Ok(None);
    }
    let (Some(before), Some(after)) = (read_origin(target), read_origin(staging)) else {
        return Err(TransferError::Peer(format!(
            "the pull being applied in {} lacks its file lists; remove that folder and pull again",
            staging.display()
        )));
    };
    apply_staged(staging, target, &before.manifest, &after.manifest).map(Some)
}

async fn finish_interrupted_pull(
    staging: &Path,
    target: &Path,
) -> std::result::Result<Option<Vec<String>>, TransferError> {
    let (staging, target) = (staging.to_path_buf(), target.to_path_buf());
    tokio::task::spawn_blocking(move || apply_pending(&staging, &target))
        .await
        .expect("apply task")
}

/// The apply itself, then the new origin into the clone (which ends the pull) and the emptied
/// staging folder away.
fn apply_staged(
    staging: &Path,
    target: &Path,
    before: &FileManifest,
    after: &FileManifest,
) -> std::result::Result<Vec<String>, TransferError> {
    let stamp = aienv_sharing::transfer::apply::stamp(SystemTime::now());
    let applied = aienv_sharing::transfer::apply::apply(target, staging, before, after, &stamp)?;
    let (from, to) = (staging.join(ORIGIN_FILE), target.join(ORIGIN_FILE));
    let moved = to
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(&from, &to));
    moved
        .map_err(|e| TransferError::io(format!("cannot record the pull in {}", to.display()), e))?;
    durable(target)
        .map_err(|e| TransferError::io(format!("cannot flush {} to disk", target.display()), e))?;
    let _ = std::fs::remove_dir_all(staging);
    Ok(applied.kept)
}

/// Writes `origin` into `dir`'s `.aienv/origin.json`.
fn record_origin(dir: &Path, origin: &Origin) -> std::result::Result<(), TransferError> {
    let file = dir.join(ORIGIN_FILE);
    std::fs::create_dir_all(file.parent().expect("origin has a parent"))
        .and_then(|()| write_origin(&file, origin))
        .map_err(|e| TransferError::io(format!("cannot write {}", file.display()), e))
}

fn write_origin(file: &Path, origin: &Origin) -> std::io::Result<()> {
    // Written straight to the file (the record holds the whole file list); the flush that
    // follows makes it durable with everything else.
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    serde_json::to_writer(&mut out, origin)?;
    std::io::Write::flush(&mut out)
}

/// Flushes everything written into `dir`'s filesystem before the final rename, so that a power
/// cut after the clone was registered cannot leave empty or torn files behind it. One `syncfs`
/// costs far less than an fsync per file (a venv has tens of thousands).
#[cfg(target_os = "linux")]
fn durable(dir: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&f).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn durable(dir: &Path) -> std::io::Result<()> {
    // No syncfs elsewhere: fsync the folder where the OS allows it (Windows cannot open a
    // folder as a file); file data follows the OS's own flushing.
    let _ = std::fs::File::open(dir).and_then(|f| f.sync_all());
    Ok(())
}

fn read_origin(dir: &Path) -> Option<Origin> {
    serde_json::from_slice(&std::fs::read(dir.join(ORIGIN_FILE)).ok()?).ok()
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// `~/aienv`: where clones go when no folder is given.
fn default_clone_root() -> Result<PathBuf> {
    directories::UserDirs::new()
        .map(|u| u.home_dir().join("aienv"))
        .ok_or_else(|| {
            NodeError::InvalidRequest(
                "this system has no home folder; give the clone a folder with --to".into(),
            )
        })
}

fn snapshot(c: &Counters, prev: &CloneProgress, elapsed: Duration) -> CloneProgress {
    let bytes_done = c.bytes_done.load(Ordering::Relaxed);
    let bytes_total = c.bytes_total.load(Ordering::Relaxed);
    let rate = if elapsed.is_zero() {
        prev.rate
    } else {
        // A smoothed rate, so the ETA does not jump with every tick.
        let now = bytes_done.saturating_sub(prev.bytes_done) as f64 / elapsed.as_secs_f64();
        if prev.rate == 0.0 {
            now
        } else {
            0.7 * prev.rate + 0.3 * now
        }
    };
    CloneProgress {
        bytes_total,
        bytes_done,
        files_total: c.files_total.load(Ordering::Relaxed),
        files_done: c.files_done.load(Ordering::Relaxed),
        bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
        rate,
        eta_s: (rate > 0.0).then(|| bytes_total.saturating_sub(bytes_done) as f64 / rate),
    }
}
