//! Runs that peers start on this node (`/api/v1/remote/runs`), under this node's own rules,
//! `[remote_runs] access`:
//!
//! - `off`: refused (`remote_runs_off`);
//! - `approve` (the default): each request waits for the owner's yes, like an access request;
//! - `peers`: nodes this node knows (mutual TLS: the certificate is the one pinned or announced
//!   for the node the request names);
//! - `token`: such nodes holding a valid share token of this node's;
//! - `open`: anyone who reaches the port.
//!
//! A request becomes a job: approved (if asked), then the workspace received from its owner if
//! this node lacks it (the sharing transfer, with the grant the asker made for this node, or a
//! clone kept from before), then an ordinary run here, whose tools listen on the address the
//! asker reached. Only the asker sees and stops its jobs. Everything goes to the audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use aienv_core::clone::CloneState;
use aienv_core::config::RemoteAccess;
use aienv_core::run::{RemoteJob, RemotePhase, RemoteRunRequest, RemoteUpdate, RunRequest};

use crate::access::Requester;
use crate::clones::CloneRequest;
use crate::{Node, NodeError, Result, lock, now_ms};

/// What the audit log names remote runs by.
const AUDIT_NAME: &str = "(remote run)";

const JOBS_FILE: &str = "remote-jobs.json";

/// The longest a changes request is held open (below the API's 30 s request limit).
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A short tag of a job as it is now.
fn version_of(job: &RemoteJob) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(job).unwrap_or_default().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The name a job's GPUs are held under until its run holds them.
fn job_hold(id: &str) -> String {
    format!("remote job {id}")
}

/// Jobs by id, with the certificate of the node that asked (only it may follow them).
pub(crate) type Jobs = HashMap<String, (RemoteJob, Option<String>)>;

impl Node {
    /// Takes a peer's request to run an environment here: answers at once with the job, which
    /// moves on in the background. Refusals that need no waiting come back as errors.
    pub async fn accept_remote_run(
        &self,
        req: RemoteRunRequest,
        who: Requester,
    ) -> Result<RemoteJob> {
        let access = self.inner.config.remote_runs.access;
        let what = format!("run {}/{}", req.workspace_name, req.environment);
        let verdict = self.check_remote_access(access, &who);
        let verified = self.verified(&who);
        if let Err(e) = &verdict {
            self.audit(
                &who,
                verified,
                AUDIT_NAME,
                &what,
                false,
                format!("{}: {e}", e.code()),
            );
        }
        verdict?;
        let (Some(requester_id), Some(requester_name)) =
            (who.peer_id.clone(), who.peer_name.clone())
        else {
            return Err(NodeError::InvalidRequest(
                "a remote run must name the node that asks (headers aienv-node-id and \
                 aienv-node-name)"
                    .into(),
            ));
        };
        let job_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // The GPUs are held for the job from now on (while it waits for approval and receives
        // the workspace), so that a second asker is told `no_capacity` at once; the run takes
        // them over when it starts.
        if req.gpus > 0 {
            let machine = self.resources().await;
            self.hold_gpus(&job_hold(&job_id), req.gpus, req.vram_mb, &machine)?;
        }
        let job = RemoteJob {
            id: job_id,
            requester_id,
            requester_name,
            workspace: req.workspace_name.clone(),
            environment: req.environment.clone(),
            phase: if access == RemoteAccess::Approve {
                RemotePhase::Approving
            } else {
                RemotePhase::Receiving
            },
            message: if access == RemoteAccess::Approve {
                format!(
                    "waiting for the owner of {:?} to approve",
                    self.inner.config.name
                )
            } else {
                "preparing".into()
            },
            error: None,
            run: None,
            created_ms: now_ms(),
        };
        self.audit(
            &who,
            verified,
            AUDIT_NAME,
            &what,
            true,
            format!("job {}", job.id),
        );
        lock(&self.inner.remote_jobs).insert(job.id.clone(), (job.clone(), who.cert.clone()));
        self.save_remote_jobs();
        let node = self.clone();
        let id = job.id.clone();
        tokio::spawn(async move {
            let approve = access == RemoteAccess::Approve;
            let result = node.drive_remote(&id, req, &who, approve).await;
            node.release_gpus(&job_hold(&id));
            if let Err(e) = result {
                node.update_job(&id, |j| {
                    j.phase = RemotePhase::Failed;
                    j.message = "could not start".into();
                    j.error = Some(e.to_string());
                });
            }
        });
        Ok(job)
    }

    /// The job `id`, for the node that asked for it.
    pub fn remote_job(&self, id: &str, who: &Requester) -> Result<RemoteJob> {
        let (mut job, cert) = lock(&self.inner.remote_jobs)
            .get(id)
            .cloned()
            .ok_or_else(|| NodeError::NotFound(format!("no remote run {id:?} on this node")))?;
        // The asker only: the same node id, and the same certificate where it presented one.
        if who.peer_id.as_deref() != Some(&job.requester_id) || (cert.is_some() && cert != who.cert)
        {
            return Err(NodeError::NotFound(format!(
                "no remote run {id:?} of yours on this node"
            )));
        }
        if let Some(run) = &job.run {
            job.run = self.run(&run.id).ok();
        }
        Ok(job)
    }

    /// Stops the run of job `id` (or the job, before its run started).
    pub async fn stop_remote_job(&self, id: &str, who: &Requester) -> Result<RemoteJob> {
        let job = self.remote_job(id, who)?;
        match &job.run {
            Some(run) if !run.state.is_final() => {
                self.stop_run(&run.id).await?;
            }
            Some(_) => {}
            None => self.update_job(id, |j| {
                j.phase = RemotePhase::Failed;
                j.error = Some(format!("stopped by {} before it started", j.requester_name));
            }),
        }
        self.remote_job(id, who)
    }

    /// The job and its new log lines as soon as either changed (the job no longer what `seen`
    /// tags, or lines past `from`), or after `wait` with what there is: the asker's follower
    /// holds one such request open, so changes reach it at once, pushed by this node's event
    /// stream, and a silent peer shows as a failed request.
    pub async fn remote_job_changes(
        &self,
        id: &str,
        who: &Requester,
        seen: Option<&str>,
        from: usize,
        wait: Duration,
    ) -> Result<RemoteUpdate> {
        let mut events = self.subscribe();
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        let mut log_len = None;
        loop {
            let job = self.remote_job(id, who)?;
            let version = version_of(&job);
            // The log is read again only when it grew.
            let len = job
                .run
                .as_ref()
                .and_then(|r| std::fs::metadata(&r.log).ok())
                .map(|m| m.len());
            let (lines, next) = if len != log_len {
                log_len = len;
                self.remote_job_log(id, who, from, 5000)?
            } else {
                (Vec::new(), from)
            };
            let now = tokio::time::Instant::now();
            if seen != Some(version.as_str()) || !lines.is_empty() || now >= deadline {
                return Ok(RemoteUpdate {
                    job,
                    version,
                    lines,
                    next,
                });
            }
            // Any event may be this run's (a state, log lines); a job's own steps (approval,
            // receiving) are looked at twice a second.
            tokio::select! {
                _ = events.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Lines `from..` of the job's run log (at most `max`), and the index of the next line.
    pub fn remote_job_log(
        &self,
        id: &str,
        who: &Requester,
        from: usize,
        max: usize,
    ) -> Result<(Vec<String>, usize)> {
        let job = self.remote_job(id, who)?;
        let Some(run) = job.run else {
            return Ok((Vec::new(), from));
        };
        let text = std::fs::read(&run.log).unwrap_or_default();
        let lines: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .skip(from)
            .take(max)
            .map(str::to_string)
            .collect();
        let next = from + lines.len();
        Ok((lines, next))
    }

    /// The workspace folder of job `id`'s run and the outputs its environment names.
    pub fn remote_job_outputs(
        &self,
        id: &str,
        who: &Requester,
    ) -> Result<(std::path::PathBuf, Vec<String>)> {
        let job = self.remote_job(id, who)?;
        let run = job.run.ok_or_else(|| {
            NodeError::InvalidRequest(format!("remote run {id} has not started; no outputs yet"))
        })?;
        if !run.state.is_final() {
            return Err(NodeError::InvalidRequest(format!(
                "remote run {id} is {}; its outputs are collected once it ends",
                run.state.describe()
            )));
        }
        let ws = self.workspace(&run.workspace_id)?;
        let env = self.environment(&run.workspace_id, &run.environment)?;
        Ok((ws.path, env.outputs))
    }

    async fn drive_remote(
        &self,
        id: &str,
        req: RemoteRunRequest,
        who: &Requester,
        approve: bool,
    ) -> Result<()> {
        if approve {
            self.approve_remote(&req, who).await?;
        }
        self.update_job(id, |j| {
            j.phase = RemotePhase::Receiving;
            j.message = "finding the workspace".into();
        });
        let ws_id = self.workspace_for(id, &req).await?;
        let host = self.tool_host(req.reach);
        let notes = vec![format!(
            "started by peer {:?} (remote run {id})",
            who.peer_name.as_deref().unwrap_or("?")
        )];
        self.release_gpus(&job_hold(id));
        let run = self
            .start_local_run(
                RunRequest {
                    workspace: ws_id,
                    environment: req.environment.clone(),
                    force: req.force,
                    ssh: None,
                    on: None,
                    owner: None,
                    submit: false,
                },
                Some(host),
                notes,
            )
            .await?;
        self.update_job(id, |j| {
            j.phase = RemotePhase::Started;
            j.message = format!("started as run {}", run.id);
            j.run = Some(run);
        });
        Ok(())
    }

    /// The workspace to run: this node's own, a clone of it kept from before (brought up to
    /// date), or received now from its owner.
    async fn workspace_for(&self, id: &str, req: &RemoteRunRequest) -> Result<String> {
        if req.owner_id == self.inner.instance_id {
            return Ok(self.workspace(&req.workspace_id)?.id);
        }
        if let Some(grant) = &req.grant {
            self.hold_token(&req.owner_id, &req.workspace_id, grant);
        }
        let existing = self.clone_of(&req.owner_id, &req.workspace_id);
        let request = match &existing {
            Some(w) => CloneRequest {
                source: None,
                pull: Some(w.id.clone()),
                to: None,
                compress: None,
                token: None,
            },
            None => CloneRequest {
                source: Some(format!("{}/{}", req.owner_id, req.workspace_id)),
                pull: None,
                to: Some(
                    std::path::absolute(self.inner.data_dir.path())
                        .map_err(|e| NodeError::io("cannot resolve the data dir", e))?
                        .join("remote-workspaces")
                        .join(format!("{}-{}", req.workspace_name, &req.workspace_id)),
                ),
                compress: None,
                token: None,
            },
        };
        let from = req.owner_name.clone();
        let job = self.start_clone(request).await?;
        loop {
            let c = self.clone_job(&job.id)?;
            if c.state.is_final() {
                return match (c.state, c.result_workspace_id, &existing) {
                    (CloneState::Done, Some(ws), _) => Ok(ws),
                    (CloneState::Done, None, Some(w)) => Ok(w.id.clone()),
                    // A pull that failed leaves the clone as it was: run that, and say so.
                    (_, _, Some(w)) => {
                        tracing::warn!(
                            "remote run {id}: could not bring {:?} up to date from {from:?} ({}); \
                             running the copy this node has",
                            w.name,
                            c.error.unwrap_or_default()
                        );
                        Ok(w.id.clone())
                    }
                    _ => Err(NodeError::Denied {
                        code: "workspace_unavailable",
                        message: format!(
                            "could not receive {:?} from {from:?}: {}",
                            req.workspace_name,
                            c.error.unwrap_or_else(|| "the clone ended".into())
                        ),
                    }),
                };
            }
            let p = &c.progress;
            let pct = if p.bytes_total > 0 {
                p.bytes_done as f64 * 100.0 / p.bytes_total as f64
            } else {
                0.0
            };
            self.update_job(id, |j| {
                j.message = format!("receiving the workspace from {from}: {pct:.0}%");
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks this node's owner (web UI, tray, `aienv access approve`) and waits for the answer.
    async fn approve_remote(&self, req: &RemoteRunRequest, who: &Requester) -> Result<()> {
        let timeout = Duration::from_secs(self.inner.config.approve_timeout_s);
        let asked = format!("run {}/{} here", req.workspace_name, req.environment);
        let (approved, timed_out) = self.ask_owner(&req.workspace_id, asked, who, timeout).await;
        let what = format!("run {}/{}", req.workspace_name, req.environment);
        let verified = self.verified(who);
        let owner = &self.inner.config.name;
        let verdict = match (approved, timed_out) {
            (true, _) => Ok(()),
            (false, true) => Err(NodeError::Denied {
                code: "approval_timeout",
                message: format!(
                    "nobody on {owner:?} answered the request to {what} within {} s; ask its \
                     owner to watch for it and try again",
                    timeout.as_secs()
                ),
            }),
            (false, false) => Err(NodeError::Denied {
                code: "access_denied",
                message: format!("the owner of {owner:?} refused to {what}"),
            }),
        };
        let why = match &verdict {
            Ok(()) => "approved by the owner".to_string(),
            Err(e) => format!("{}: {e}", e.code()),
        };
        self.audit(who, verified, AUDIT_NAME, &what, verdict.is_ok(), why);
        verdict
    }

    fn check_remote_access(&self, access: RemoteAccess, who: &Requester) -> Result<()> {
        let name = &self.inner.config.name;
        if access == RemoteAccess::Off {
            return Err(NodeError::Denied {
                code: "remote_runs_off",
                message: format!(
                    "{name:?} does not take runs from peers (`[remote_runs] access = \"off\"`); \
                     run it elsewhere, or ask its owner"
                ),
            });
        }
        if access == RemoteAccess::Open {
            return Ok(());
        }
        let known = self.known_cert(who);
        crate::access::check_identity(who, known)?;
        if !self.verified(who) {
            return Err(NodeError::Denied {
                code: "peer_unknown",
                message: format!(
                    "{name:?} takes runs only from nodes it knows, and does not know this one \
                     (or the request came without the node's certificate)"
                ),
            });
        }
        if access == RemoteAccess::Token {
            let has = self.token_workspace(who).is_some();
            if !has {
                return Err(NodeError::Denied {
                    code: "token_required",
                    message: format!(
                        "{name:?} takes runs only from nodes holding one of its share tokens; ask \
                         its owner for one (`aienv share token create WS`)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Where a peer's run listens: the address this node serves on, or, when it serves on every
    /// address, the one the asker reached.
    fn tool_host(&self, reach: Option<IpAddr>) -> IpAddr {
        let listen = self.inner.config.listen.ip();
        if !listen.is_unspecified() {
            return listen;
        }
        reach.unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    fn update_job(&self, id: &str, change: impl FnOnce(&mut RemoteJob)) {
        if let Some((job, _)) = lock(&self.inner.remote_jobs).get_mut(id) {
            change(job);
        }
        self.save_remote_jobs();
    }

    /// Keeps the jobs in `DATA_DIR/remote-jobs.json`: after a restart the askers find their
    /// runs again (the runs themselves are adopted like any other).
    fn save_remote_jobs(&self) {
        let jobs: Vec<(RemoteJob, Option<String>)> =
            lock(&self.inner.remote_jobs).values().cloned().collect();
        let path = self.inner.data_dir.path().join(JOBS_FILE);
        let bytes = serde_json::to_vec(&jobs).expect("jobs serialise");
        if let Err(e) = aienv_core::fsutil::atomic_write(&path, &bytes) {
            tracing::warn!("cannot save {}: {e}", path.display());
        }
    }

    /// The jobs saved before a restart; those still being prepared then are failed (their
    /// approval or transfer died with the node).
    pub(crate) fn load_remote_jobs(&self) {
        let path = self.inner.data_dir.path().join(JOBS_FILE);
        let Some(jobs) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<(RemoteJob, Option<String>)>>(&b).ok())
        else {
            return;
        };
        let mut map = lock(&self.inner.remote_jobs);
        for (mut job, cert) in jobs {
            if matches!(job.phase, RemotePhase::Approving | RemotePhase::Receiving) {
                job.phase = RemotePhase::Failed;
                job.error = Some("the node restarted before the run started; ask again".into());
            }
            map.insert(job.id.clone(), (job, cert));
        }
    }
}
