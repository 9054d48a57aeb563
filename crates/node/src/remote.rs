//! Runs this node starts on a peer (`aienv run WS ENV --on PEER|auto`, `aienv submit`): the
//! peer is asked (`POST /api/v1/remote/runs`), and the run is shown here as if it were local:
//! its state, tools (links that point at the peer), log (copied into the run's log file here, so
//! `aienv logs` works even after the peer is gone) and, for a batch job, its outputs copied back.
//!
//! The run is followed through the peer's changes endpoint: one request held open by the peer
//! until the run changes there (its event stream wakes it), so state and log lines arrive at
//! once. A peer that stops answering or leaves the LAN makes the run `lost`, not gone: it may
//! still run there, and when the peer answers again the run picks up where it is. Stopping the
//! run here stops it there.

use std::io::Write;
use std::time::Duration;

use aienv_core::peer::Peer;
use aienv_core::run::{
    LogLines, RemoteJob, RemotePhase, RemoteRunRequest, RemoteUpdate, Run, RunHandle, RunPeer,
    RunRequest, RunState, SetupProgress,
};
use aienv_core::{Environment, Event, Workspace};
use aienv_runtime::placement::{self, Candidate, Needs, NodeView};

use crate::{Node, NodeError, Result, lock, now_ms};

/// The set-up step of a run that is placed on a peer (or waits to be).
const REMOTE_STEP: &str = "remote";
/// How often the peer table is looked at while a changes request is open, and the pause after
/// a failed one.
const POLL: Duration = Duration::from_secs(1);
/// How long the peer may hold a changes request open when nothing changes.
const CHANGES_WAIT: Duration = Duration::from_secs(15);
/// How long a peer may stay silent before its run is shown as lost.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// How often a queued job looks for a node again.
const QUEUE_RETRY: Duration = Duration::from_secs(3);
/// How long a grant for a peer to receive the workspace lasts.
const GRANT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// What to run, and whose it is.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    owner_id: String,
    owner_name: String,
    workspace_id: String,
    workspace_name: String,
    env: Environment,
    /// This node's own workspace (the peer receives it from here).
    local: Option<Workspace>,
}

impl Node {
    /// Whether the request names another node to run on, or another node's workspace.
    pub(crate) fn runs_elsewhere(&self, req: &RunRequest) -> bool {
        req.on.is_some() || req.owner.as_deref().is_some_and(|o| !self.is_me(o))
    }

    /// Whether `run` is one this node started on a peer: placed (`peer` set), or still waiting
    /// to be placed (a queued job: its set-up step is `remote`, and nothing runs here).
    pub(crate) fn runs_on_peer(run: &Run) -> bool {
        run.peer.is_some()
            || (run.handle == RunHandle::None
                && run.setup.as_ref().is_some_and(|s| s.step == REMOTE_STEP))
    }

    fn is_me(&self, key: &str) -> bool {
        key == self.inner.instance_id || key == self.inner.config.name
    }

    /// The nodes `WS/ENV` could run on (this one and every peer), best first, each with why.
    pub async fn placement(&self, req: &RunRequest) -> Result<Vec<Candidate>> {
        let target = self.run_target(req)?;
        Ok(self.candidates(&target).await)
    }

    async fn candidates(&self, target: &Target) -> Vec<Candidate> {
        self.readvertise().await;
        let me = self.advertised();
        let peers = self.peers();
        let mut nodes = Vec::new();
        // This node runs only its own workspaces without a transfer; another owner's needs a
        // clone here first, which `aienv clone` does.
        if target.local.is_some() {
            nodes.push(NodeView {
                id: &self.inner.instance_id,
                name: &self.inner.config.name,
                local: true,
                resources: me.as_ref(),
            });
        }
        for p in &peers {
            nodes.push(NodeView {
                id: &p.id,
                name: &p.name,
                local: false,
                resources: p.resources.as_ref(),
            });
        }
        placement::place(&target.env, &nodes)
    }

    /// The environment to run, from this node's workspace or from a peer's catalog entry.
    fn run_target(&self, req: &RunRequest) -> Result<Target> {
        if let Some(owner) = req.owner.as_deref().filter(|o| !self.is_me(o)) {
            let entry = self
                .catalog()
                .into_iter()
                .find(|e| {
                    (e.owner.id == owner || e.owner.name == owner)
                        && (e.workspace_id == req.workspace || e.workspace == req.workspace)
                        && e.name == req.environment
                })
                .ok_or_else(|| {
                    NodeError::NotFound(format!(
                        "{owner:?} shares no environment {}/{} (see `aienv catalog`)",
                        req.workspace, req.environment
                    ))
                })?;
            let kind = entry.kind.ok_or_else(|| {
                NodeError::InvalidRequest(format!(
                    "{}/{} of {owner:?} is a workspace without environments: nothing to run",
                    entry.workspace, entry.name
                ))
            })?;
            // What placement needs to know of it; the peer that runs it reads the rest.
            let env = Environment {
                requires: entry.requires.clone(),
                fallback: entry.fallback.clone(),
                ..Environment::new(&entry.name, kind)
            };
            return Ok(Target {
                owner_id: entry.owner.id.clone(),
                owner_name: entry.owner.name.clone(),
                workspace_id: entry.workspace_id.clone(),
                workspace_name: entry.workspace.clone(),
                env,
                local: None,
            });
        }
        let ws = self.workspace(&req.workspace)?;
        let env = self.environment(&ws.id, &req.environment)?;
        Ok(Target {
            owner_id: self.inner.instance_id.clone(),
            owner_name: self.inner.config.name.clone(),
            workspace_id: ws.id.clone(),
            workspace_name: ws.name.clone(),
            env,
            local: Some(ws),
        })
    }

    /// Starts `req` on the peer it names, or on the best node (`auto`).
    pub(crate) async fn start_remote(&self, req: RunRequest) -> Result<Run> {
        if req.ssh.is_some() {
            return Err(NodeError::InvalidRequest(
                "a run goes either to a peer (`on`) or over SSH (`ssh`), not both".into(),
            ));
        }
        let target = self.run_target(&req)?;
        let on = req.on.clone().unwrap_or_else(|| "auto".into());
        let candidates: Vec<Candidate> = if on == "auto" {
            self.candidates(&target).await
        } else {
            let peer = self.find_peer(&on)?;
            vec![Candidate::named(&peer.id, &peer.name)]
        };
        // `auto` and the best place is here: an ordinary run.
        if let (Some(best), Some(ws)) = (candidates.first(), &target.local)
            && best.fits
            && best.local
        {
            let note = format!("placed here: {}", best.reason);
            let local = RunRequest {
                workspace: ws.id.clone(),
                on: None,
                ..req
            };
            return self.start_local_run(local, None, vec![note]).await;
        }
        let run = self.new_remote_run(&target)?;
        let attempt = self
            .place_on_peers(&run.id, &target, &req, &candidates)
            .await;
        match attempt {
            Ok(()) => {}
            // A job waits for a node to be free; a run says why none would take it.
            Err(e) if req.submit && e.code() == "no_capacity" => {
                self.set_setup(&run.id, format!("queued: {e}"));
                let (node, id, target, req) =
                    (self.clone(), run.id.clone(), target.clone(), req.clone());
                tokio::spawn(async move { node.queue(&id, &target, &req).await });
            }
            Err(e) => {
                self.finish_remote(&run.id, RunState::Failed, Some(e.to_string()));
                return Err(e);
            }
        }
        self.run(&run.id)
    }

    /// Tries the candidates in order until one takes the run; then follows it.
    async fn place_on_peers(
        &self,
        id: &str,
        target: &Target,
        req: &RunRequest,
        candidates: &[Candidate],
    ) -> Result<()> {
        let mut refusals = Vec::new();
        let auto = req.on.as_deref().is_none_or(|o| o == "auto");
        for c in candidates {
            if c.local {
                // Here does not fit (or it would have run here): say why with the rest.
                refusals.push(c.reason.clone());
                continue;
            }
            if auto && !c.fits {
                refusals.push(c.reason.clone());
                continue;
            }
            let peer = self.find_peer(&c.node_id)?;
            match self.ask_peer(&peer, target, req).await {
                Ok(job) => {
                    self.update_run(id, |r| {
                        r.peer = Some(RunPeer {
                            id: peer.id.clone(),
                            name: peer.name.clone(),
                            remote_id: Some(job.id.clone()),
                            seen_ms: now_ms(),
                        });
                        if auto {
                            r.notes.push(format!("placed on {}", c.reason));
                        }
                    });
                    let (node, id, submit) = (self.clone(), id.to_string(), req.submit);
                    tokio::spawn(async move { node.follow(&id, submit).await });
                    return Ok(());
                }
                // Someone took the last GPU meanwhile: the next one, if any.
                Err(e) if auto && e.code() == "no_capacity" => refusals.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        let nothing = if refusals.is_empty() {
            "there are no peers".to_string()
        } else {
            refusals.join("; ")
        };
        Err(NodeError::Denied {
            code: "no_capacity",
            message: format!(
                "no node can run {}/{} now: {nothing}",
                target.workspace_name, target.env.name
            ),
        })
    }

    /// A job no node could take: looks again every few seconds until one does (or it is
    /// stopped).
    async fn queue(&self, id: &str, target: &Target, req: &RunRequest) {
        loop {
            tokio::time::sleep(QUEUE_RETRY).await;
            if self.run(id).map_or(true, |r| r.state.is_final()) {
                return;
            }
            let candidates = self.candidates(target).await;
            match self.place_on_peers(id, target, req, &candidates).await {
                Ok(()) => return,
                Err(e) if e.code() == "no_capacity" => self.set_setup(id, format!("queued: {e}")),
                Err(e) => {
                    self.finish_remote(id, RunState::Failed, Some(e.to_string()));
                    return;
                }
            }
        }
    }

    /// Asks `peer` to run the target; the peer answers at once with its job.
    async fn ask_peer(&self, peer: &Peer, target: &Target, req: &RunRequest) -> Result<RemoteJob> {
        let grant = match &target.local {
            Some(ws) => self.grant_for(peer, ws)?,
            None => None,
        };
        let needs = Needs::of(&target.env);
        let body = RemoteRunRequest {
            owner_id: target.owner_id.clone(),
            owner_name: target.owner_name.clone(),
            workspace_id: target.workspace_id.clone(),
            workspace_name: target.workspace_name.clone(),
            environment: target.env.name.clone(),
            force: req.force,
            grant,
            reach: Some(peer.address),
            submit: req.submit,
            gpus: needs.gpus,
            vram_mb: needs.vram_mb,
        };
        let res = self
            .peer_http(peer)?
            .post(format!("{}/api/v1/remote/runs", peer.url))
            .headers(self.cache_headers(&peer.id))
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| unreachable(peer, &e))?;
        read_answer(peer, res).await
    }

    /// A token that lets `peer` receive `ws` from here (bound to its certificate), unless the
    /// share is open. The workspace must be shared: a peer receives it through the share.
    fn grant_for(&self, peer: &Peer, ws: &Workspace) -> Result<Option<String>> {
        let sharing = ws.manifest.as_ref().map(|m| &m.sharing);
        if !sharing.is_some_and(|s| s.enabled) {
            return Err(NodeError::InvalidRequest(format!(
                "to run {:?} on {:?}, the peer must receive it: share it first (`aienv share {}`; \
                 its access can stay `token`, the peer gets a grant of its own)",
                ws.name, peer.name, ws.name
            )));
        }
        if sharing.is_some_and(|s| s.access == aienv_core::Access::Open) {
            return Ok(None);
        }
        let t = self
            .inner
            .tokens
            .create(
                &ws.id,
                Some(format!("remote run on {}", peer.name)),
                Some(now_ms() + GRANT_FOR.as_millis() as u64),
                Some((peer.name.clone(), peer.fingerprint.clone())),
            )
            .map_err(|e| NodeError::io("cannot save the grant for the peer", e))?;
        Ok(Some(t.secret))
    }

    /// A run record here for a run that goes to a peer.
    fn new_remote_run(&self, target: &Target) -> Result<Run> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let run_dir = self.inner.data_dir.path().join("runs").join(&id);
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| NodeError::io("cannot create the run's folder", e))?;
        let run = Run {
            id: id.clone(),
            workspace_id: target.workspace_id.clone(),
            workspace_name: target.workspace_name.clone(),
            environment: target.env.name.clone(),
            kind: target.env.kind,
            state: RunState::Starting,
            tools: Vec::new(),
            error: None,
            notes: Vec::new(),
            exit_code: None,
            handle: RunHandle::None,
            log: run_dir.join("run.log"),
            started_ms: now_ms(),
            ended_ms: None,
            setup: None,
            ssh: None,
            gpus: Vec::new(),
            peer: None,
            outputs: None,
        };
        lock(&self.inner.runs).insert(id.clone(), run.clone());
        self.run_changed(&id);
        Ok(run)
    }

    /// Follows run `id` on its peer until it ends there (or is stopped here): one changes
    /// request open at a time, answered by the peer as soon as anything changes; meanwhile the
    /// peer table is watched, so a peer that leaves the LAN makes the run lost within seconds.
    pub(crate) async fn follow(&self, id: &str, submit: bool) {
        let mut next_line = 0usize;
        let mut seen: Option<String> = None;
        let mut silent_since: Option<std::time::Instant> = None;
        loop {
            let Ok(run) = self.run(id) else { return };
            if run.state.is_final() {
                return;
            }
            let Some(at) = run.peer.clone() else { return };
            let gone = async {
                loop {
                    tokio::time::sleep(POLL).await;
                    if !self.peers().iter().any(|p| p.id == at.id) {
                        return;
                    }
                }
            };
            let answer = tokio::select! {
                a = self.changes(&at, seen.as_deref(), next_line) => a,
                () = gone => Err(NodeError::Fetch("it left the LAN".into())),
            };
            match answer {
                Ok(update) => {
                    silent_since = None;
                    next_line = update.next;
                    seen = Some(update.version);
                    self.append_log(&run, update.lines);
                    if self.mirror(id, &at, update.job, submit).await {
                        return;
                    }
                }
                Err(e) => {
                    // The next answer must come at once, changed or not: the run may be shown
                    // as lost here while nothing changed there.
                    seen = None;
                    let since = *silent_since.get_or_insert_with(std::time::Instant::now);
                    let gone = !self.peers().iter().any(|p| p.id == at.id);
                    if (gone || since.elapsed() >= LOST_AFTER) && run.state != RunState::Lost {
                        self.mark_lost(id, &at, gone, &e);
                    }
                    // Not at once again: the peer is away, or refused.
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    fn mark_lost(&self, id: &str, at: &RunPeer, gone: bool, e: &NodeError) {
        let why = if gone {
            "left the LAN".to_string()
        } else {
            format!("stopped answering: {e}")
        };
        let seen = at.seen_ms;
        self.update_run(id, |r| {
            r.state = RunState::Lost;
            r.error = Some(format!(
                "{:?} {why}; the run may still be going there (last heard of {} s ago). It \
                 comes back here when the peer does",
                at.name,
                now_ms().saturating_sub(seen) / 1000
            ));
        });
    }

    /// The peer's next update about the run (held open by the peer until something changes).
    async fn changes(&self, at: &RunPeer, seen: Option<&str>, from: usize) -> Result<RemoteUpdate> {
        let peer = self.find_peer(&at.id)?;
        let remote = at.remote_id.clone().unwrap_or_default();
        let mut url = format!(
            "{}/api/v1/remote/runs/{remote}/changes?from={from}&wait={}",
            peer.url,
            CHANGES_WAIT.as_secs()
        );
        if let Some(seen) = seen {
            url.push_str(&format!("&seen={seen}"));
        }
        let res = self
            .peer_http(&peer)?
            .get(url)
            .headers(self.cache_headers(&peer.id))
            .timeout(CHANGES_WAIT + Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| unreachable(&peer, &e))?;
        read_answer(&peer, res).await
    }

    /// Shows the peer's view of the run here; true once it ended (and its outputs, for a job,
    /// are back).
    async fn mirror(&self, id: &str, at: &RunPeer, job: RemoteJob, submit: bool) -> bool {
        let seen = now_ms();
        match (job.phase, job.run) {
            (RemotePhase::Failed, _) => {
                self.finish_remote(id, RunState::Failed, job.error.or(Some(job.message)));
                true
            }
            (_, Some(remote)) => {
                let ended = remote.state.is_final();
                self.update_run(id, |r| {
                    if let Some(p) = &mut r.peer {
                        p.seen_ms = seen;
                    }
                    if !ended {
                        r.state = remote.state;
                        r.error = None;
                    }
                    r.tools = remote.tools.clone();
                    r.gpus = remote.gpus.clone();
                    r.exit_code = remote.exit_code;
                    r.setup = remote.setup.clone();
                    for n in &remote.notes {
                        let n = format!("on {}: {n}", at.name);
                        if !r.notes.contains(&n) {
                            r.notes.push(n);
                        }
                    }
                });
                if ended {
                    if submit {
                        self.collect_outputs(id, at).await;
                    }
                    self.finish_remote(id, remote.state, remote.error);
                }
                ended
            }
            (_, None) => {
                self.update_run(id, |r| {
                    if let Some(p) = &mut r.peer {
                        p.seen_ms = seen;
                    }
                    r.state = RunState::Starting;
                    r.error = None;
                });
                self.set_setup(id, format!("on {}: {}", at.name, job.message));
                false
            }
        }
    }

    /// Stops a run on its peer; the follower sees it end there.
    pub(crate) async fn stop_remote(&self, run: &Run) -> Result<Run> {
        let Some(at) = &run.peer else {
            // Still queued or being placed: nothing runs anywhere yet.
            self.finish_remote(&run.id, RunState::Stopped, None);
            return self.run(&run.id);
        };
        let peer = self.find_peer(&at.id).map_err(|_| NodeError::Denied {
            code: "peer_unreachable",
            message: format!(
                "{:?} is not on the LAN now, so the run there cannot be stopped from here; \
                     it is shown as lost until the peer is back",
                at.name
            ),
        })?;
        let remote = at.remote_id.clone().unwrap_or_default();
        self.update_run(&run.id, |r| r.state = RunState::Stopping);
        let res = self
            .peer_http(&peer)?
            .delete(format!("{}/api/v1/remote/runs/{remote}", peer.url))
            .headers(self.cache_headers(&peer.id))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| unreachable(&peer, &e))?;
        let job: RemoteJob = read_answer(&peer, res).await?;
        let state = job
            .run
            .as_ref()
            .map(|r| r.state)
            .filter(|s| s.is_final())
            .unwrap_or(RunState::Stopped);
        self.finish_remote(&run.id, state, None);
        self.run(&run.id)
    }

    /// Copies a finished job's `outputs` from its peer into the workspace here (this node's
    /// own), or into `DATA_DIR/outputs/RUN` (another owner's).
    async fn collect_outputs(&self, id: &str, at: &RunPeer) {
        let result = self.fetch_outputs(id, at).await;
        match result {
            Ok(Some(dir)) => self.update_run(id, |r| {
                r.notes.push(format!("outputs copied to {}", dir.display()));
                r.outputs = Some(dir);
            }),
            Ok(None) => {}
            Err(e) => self.update_run(id, |r| {
                r.notes
                    .push(format!("its outputs could not be copied back: {e}"));
            }),
        }
    }

    async fn fetch_outputs(&self, id: &str, at: &RunPeer) -> Result<Option<std::path::PathBuf>> {
        let run = self.run(id)?;
        let own = self.workspace(&run.workspace_id).ok();
        let wanted = match &own {
            Some(ws) => self.environment(&ws.id, &run.environment)?.outputs,
            None => vec!["(outputs)".into()],
        };
        if wanted.is_empty() {
            return Ok(None);
        }
        let dir = match own {
            Some(ws) => ws.path,
            None => self.inner.data_dir.path().join("outputs").join(id),
        };
        let peer = self.find_peer(&at.id)?;
        let remote = at.remote_id.clone().unwrap_or_default();
        let res = self
            .peer_http(&peer)?
            .get(format!("{}/api/v1/remote/runs/{remote}/outputs", peer.url))
            .headers(self.cache_headers(&peer.id))
            .send()
            .await
            .map_err(|e| unreachable(&peer, &e))?;
        if !res.status().is_success() {
            let e: Result<RemoteJob> = read_answer(&peer, res).await;
            return Err(e
                .err()
                .unwrap_or_else(|| NodeError::Fetch("no outputs".into())));
        }
        let bytes = res.bytes().await.map_err(|e| {
            NodeError::Fetch(format!("the outputs from {:?} were cut: {e}", peer.name))
        })?;
        let target = dir.clone();
        tokio::task::spawn_blocking(move || crate::outputs::unpack(&bytes, &target))
            .await
            .map_err(|e| NodeError::Fetch(e.to_string()))??;
        Ok(Some(dir))
    }

    /// Appends the peer's new log lines to the run's log here and tells subscribers.
    fn append_log(&self, run: &Run, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&run.log)
        {
            for l in &lines {
                let _ = writeln!(f, "{l}");
            }
        }
        self.emit(Event::RunLog {
            log: LogLines {
                run_id: run.id.clone(),
                lines,
            },
        });
    }

    fn set_setup(&self, id: &str, message: String) {
        self.update_run(id, |r| {
            r.setup = Some(SetupProgress {
                step: REMOTE_STEP.into(),
                message,
                ..Default::default()
            });
        });
    }

    fn finish_remote(&self, id: &str, state: RunState, error: Option<String>) {
        self.update_run(id, |r| {
            if r.state.is_final() {
                return;
            }
            r.state = state;
            if r.error.is_none() || state != RunState::Lost {
                r.error = error;
            }
            r.ended_ms = Some(now_ms());
        });
    }

    /// After a restart: follow again the runs that were on peers.
    pub(crate) fn follow_again(&self, run: &Run) {
        if run.peer.is_some() {
            let (node, id) = (self.clone(), run.id.clone());
            tokio::spawn(async move { node.follow(&id, false).await });
        }
    }
}

/// A page of a remote run's log (`GET /api/v1/remote/runs/{id}/logs?from=N`).
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LogPage {
    pub lines: Vec<String>,
    /// The line to ask from next time.
    pub next: usize,
}

fn unreachable(peer: &Peer, e: &reqwest::Error) -> NodeError {
    NodeError::Fetch(format!(
        "cannot reach {:?} at {}: {}",
        peer.name,
        peer.url,
        aienv_trust::describe(e)
    ))
}

/// The peer's answer, or its refusal as an error with the peer's code and message.
async fn read_answer<T: serde::de::DeserializeOwned>(
    peer: &Peer,
    res: reqwest::Response,
) -> Result<T> {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| {
            NodeError::Fetch(format!(
                "{:?} answered something this node does not understand: {e}",
                peer.name
            ))
        });
    }
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("");
    let message = body["error"]["message"].as_str().map_or_else(
        || format!("{:?} answered {status}", peer.name),
        |m| format!("{:?}: {m}", peer.name),
    );
    Err(NodeError::Denied {
        code: match code {
            "no_capacity" => "no_capacity",
            "remote_runs_off" => "remote_runs_off",
            "peer_unknown" => "peer_unknown",
            "token_required" => "token_required",
            "access_denied" => "access_denied",
            "approval_timeout" => "approval_timeout",
            "not_found" => "peer_not_found",
            _ => "peer_refused",
        },
        message,
    })
}
