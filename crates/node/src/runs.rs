//! Runs: start an environment on this machine, watch it become ready, follow its log, stop it,
//! and find it again after the node restarts. The mechanics (plans, backends, readiness) are
//! `aienv_runtime`'s; this is the table of runs around them, their persistence and their events.
//!
//! A run outlives the node: its processes or container keep going when the node stops, and the
//! next start adopts them (by process group or container id, saved in `runs.json`) or marks them
//! ended. Nothing is left that the node could not stop.

use std::time::Duration;

use aienv_core::Event;
use aienv_core::resources::Resources;
use aienv_core::run::{LogLines, Run, RunHandle, RunRequest, RunState, ToolLink};
use aienv_runtime::backend::Running;
use aienv_runtime::plan::{self, RunPlan};
use aienv_runtime::{RunError, fit, logs, ready};

use crate::error::{NodeError, Result};
use crate::now_ms;
use crate::{Node, lock};

/// The runs of this node, kept so a restart finds them again.
const RUNS_FILE: &str = "runs.json";
/// How long a stopped run gets to end by itself before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often new log lines are sent out.
pub(crate) const LOG_EVERY: Duration = Duration::from_millis(200);
/// Log lines quoted in the error of a run that failed.
const ERROR_LINES: usize = 12;

impl Node {
    /// What this machine has, for users and for fitting environments.
    pub async fn resources(&self) -> Resources {
        self.inner.probe.resources().await
    }

    pub fn runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = lock(&self.inner.runs).values().cloned().collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        runs
    }

    /// What a live run uses right now (a short CPU sample). `None` once it has ended.
    pub async fn run_usage(&self, id: &str) -> Result<Option<aienv_core::run::RunUsage>> {
        self.run(id)?;
        let running = lock(&self.inner.live_runs).get(id).cloned();
        Ok(match running {
            Some(r) => aienv_runtime::usage::usage(&r).await,
            None => None,
        })
    }

    pub fn run(&self, id: &str) -> Result<Run> {
        lock(&self.inner.runs)
            .get(id)
            .cloned()
            .ok_or_else(|| NodeError::NotFound(format!("no run {id:?} (see `aienv runs`)")))
    }

    /// The last `n` lines of a run's log.
    pub fn run_log(&self, id: &str, n: usize) -> Result<Vec<String>> {
        let run = self.run(id)?;
        logs::tail(&run.log, n).map_err(|e| NodeError::io("cannot read the run's log", e))
    }

    /// Checks the environment against this machine, plans it and starts it. Answers once the run
    /// is planned (state `starting`); `run_changed` events follow until it runs or fails.
    pub async fn start_run(&self, req: RunRequest) -> Result<Run> {
        if self.runs_elsewhere(&req) {
            return self.start_remote(req).await;
        }
        self.start_local_run(req, None, Vec::new()).await
    }

    /// [`Node::start_run`] here: `host` is where its tools listen (a peer's run: this node's
    /// address on the LAN), `notes` go first in the run's notes.
    pub(crate) async fn start_local_run(
        &self,
        req: RunRequest,
        host: Option<std::net::IpAddr>,
        mut notes: Vec<String>,
    ) -> Result<Run> {
        let ws = self.workspace(&req.workspace)?;
        let manifest = ws.manifest.as_ref().ok_or_else(|| {
            NodeError::InvalidRequest(format!(
                "workspace {} has no valid aienv.toml; fix it first",
                ws.name
            ))
        })?;
        let env = manifest.environment(&req.environment).ok_or_else(|| {
            let known: Vec<&str> = manifest
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            NodeError::NotFound(format!(
                "workspace {} has no environment {:?} (it has: {})",
                ws.name,
                req.environment,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let machine = self.resources().await;
        // Over SSH it runs on a machine this node knows nothing about: nothing to check here.
        let ssh = req.ssh.as_deref().map(aienv_runtime::ssh::SshTarget::parse);
        let ssh = ssh.transpose().map_err(NodeError::InvalidRequest)?;
        let fit = match ssh {
            Some(_) => Default::default(),
            None => fit::check(env, &machine),
        };
        if !fit.fits() {
            let what = fit.missing.join("; ");
            if !req.force {
                return Err(RunError::NotFit(format!(
                    "{}/{} does not fit this machine: {what}. Run it anyway with --force \
                     (API: \"force\": true), or on a peer that has what it needs",
                    ws.name, env.name
                ))
                .into());
            }
            notes.push(format!("started with --force although it {what}"));
        }
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        // Its GPUs, held until it ends: another run (a peer's too) gets other ones, or none.
        let needs = aienv_runtime::placement::Needs::of(env);
        // (None to hold where it runs without them: no GPU here, or its no-gpu fallback.)
        let want = if fit.fallback_env.is_some() || machine.gpus.is_empty() || ssh.is_some() {
            0
        } else {
            needs.gpus
        };
        let gpus = match self.hold_gpus(&id, want, needs.vram_mb, &machine) {
            Ok(gpus) => gpus,
            Err(e) if req.force => {
                notes.push(format!("started with --force although {e}"));
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let run_dir = self.inner.data_dir.path().join("runs").join(&id);
        let planned = plan::make(
            plan::Inputs {
                run_id: &id,
                workspace: ws.path.clone(),
                env,
                resources: &machine,
                fit: &fit,
                run_dir,
                host,
            },
            &self.inner.ports,
        );
        let mut plan = match planned {
            Ok(p) => p,
            Err(e) => {
                self.release_gpus(&id);
                return Err(e.into());
            }
        };
        if !gpus.is_empty() {
            let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
            plan.vars
                .insert("CUDA_VISIBLE_DEVICES".into(), list.join(","));
            notes.push(format!("holds GPU {}", list.join(", ")));
        }
        notes.extend(plan.notes.iter().cloned());
        plan.ssh.clone_from(&ssh);
        let run = Run {
            id: id.clone(),
            workspace_id: ws.id.clone(),
            workspace_name: ws.name.clone(),
            environment: env.name.clone(),
            kind: env.kind,
            state: RunState::Starting,
            tools: plan
                .tools
                .iter()
                .map(|t| ToolLink {
                    name: t.name.clone(),
                    port: t.port,
                    url: t.url.clone(),
                    ready: false,
                })
                .collect(),
            error: None,
            notes,
            exit_code: None,
            handle: RunHandle::None,
            log: plan.log.clone(),
            started_ms: now_ms(),
            ended_ms: None,
            setup: None,
            gpus: gpus.clone(),
            peer: None,
            outputs: None,
            ssh: ssh.map(|t| t.to_string()),
        };
        lock(&self.inner.runs).insert(id.clone(), run.clone());
        // Tools' ports and, for containers and VMs, every published one: let go when it ends.
        lock(&self.inner.held_ports).insert(id.clone(), plan.ports());
        self.run_changed(&id);
        let node = self.clone();
        tokio::spawn(async move { node.drive(plan, machine).await });
        Ok(run)
    }

    /// Stops a run: a graceful signal, then a kill; nothing of it is left afterwards.
    pub async fn stop_run(&self, id: &str) -> Result<Run> {
        let run = self.run(id)?;
        if Self::runs_on_peer(&run) {
            if run.state.is_final() {
                return Err(NodeError::InvalidRequest(format!(
                    "run {id} is not running (it is {}); nothing to stop",
                    run.state.describe()
                )));
            }
            return self.stop_remote(&run).await;
        }
        if run.state.is_final() || run.state == RunState::Stopping {
            return Err(NodeError::InvalidRequest(format!(
                "run {id} is not running (it is {}); nothing to stop",
                run.state.describe()
            )));
        }
        let running = lock(&self.inner.live_runs).get(id).cloned();
        self.update_run(id, |r| r.state = RunState::Stopping);
        if let Some(running) = running {
            running.stop(STOP_GRACE).await?;
        }
        self.finish(id, RunState::Stopped, None);
        self.run(id)
    }

    /// Sets up, starts and watches one run until it ends.
    async fn drive(self, mut plan: RunPlan, machine: Resources) {
        let id = plan.run_id.clone();
        plan.python.index = self.package_index_url();
        let (watch, progress) = self.watch_setup(&id, &plan.log);
        plan.python.progress = Some(progress);
        if !plan.env.models.is_empty() {
            let notes = self.ensure_models(&id, &plan.env).await;
            self.update_run(&id, |r| r.notes.extend(notes));
        }

        let started = self.inner.backends.start(&plan, &machine).await;
        let follower = watch.finish().await;
        let (running, notes) = match started {
            Ok(r) => r,
            Err(e) => {
                let msg = with_log(&e.to_string(), &plan.log);
                self.finish(&id, RunState::Failed, Some(msg));
                return;
            }
        };
        lock(&self.inner.live_runs).insert(id.clone(), running.clone());
        self.update_run(&id, |r| {
            r.handle = running.handle();
            r.notes.extend(notes);
            if r.state == RunState::Starting {
                r.state = RunState::WaitingReady;
            }
        });
        self.spawn_log_follower(&id, &plan.log, follower);
        self.wait_ready(&id, &plan, &running).await;
        running.wait_gone().await;
        let code = running.exit_code();
        self.update_run(&id, |r| r.exit_code = r.exit_code.or(code));
        // Ending by itself with an error (a batch command that failed) is a failure.
        match running.failure().filter(|_| code.is_some_and(|c| c != 0)) {
            Some(why) => self.finish(&id, RunState::Failed, Some(with_log(&why, &plan.log))),
            None => self.finish(&id, RunState::Exited, None),
        }
    }

    /// Waits for every tool; a tool that never answers fails (and stops) the whole run. An
    /// optional tool (`ready = { optional = true }`) is not waited for: its link is marked
    /// ready when it answers, for as long as the run lives.
    async fn wait_ready(&self, id: &str, plan: &RunPlan, running: &Running) {
        let optional = |name: &str| {
            plan.env
                .tools
                .iter()
                .any(|t| t.name == name && t.ready.as_ref().is_some_and(|r| r.optional))
        };
        for t in plan.tools.iter().filter(|t| optional(&t.name)) {
            let (node, id, check, log, name) = (
                self.downgrade(),
                id.to_string(),
                t.check.clone(),
                plan.log.clone(),
                t.name.clone(),
            );
            let running = running.clone();
            let host = plan.host;
            tokio::spawn(async move {
                let forever = Duration::from_secs(365 * 24 * 3600);
                if ready::wait_at(&check, host, log, forever, || running.failure())
                    .await
                    .is_ok()
                    && let Some(node) = node.upgrade()
                {
                    node.update_run(&id, |r| {
                        if let Some(t) = r.tools.iter_mut().find(|t| t.name == name) {
                            t.ready = true;
                        }
                    });
                }
            });
        }
        let waits = plan.tools.iter().filter(|t| !optional(&t.name)).map(|t| {
            let running = running.clone();
            let log = plan.log.clone();
            async move {
                let r =
                    ready::wait_at(&t.check, plan.host, log, t.timeout, || running.failure()).await;
                (t.name.clone(), r)
            }
        });
        let mut failed = None;
        for (name, result) in futures_util::future::join_all(waits).await {
            match result {
                Ok(()) => self.update_run(id, |r| {
                    if let Some(t) = r.tools.iter_mut().find(|t| t.name == name) {
                        t.ready = true;
                    }
                }),
                Err(why) => {
                    failed.get_or_insert(format!("{name} did not become ready: {why}"));
                }
            }
        }
        match failed {
            None => self.update_run(id, |r| {
                if r.state == RunState::WaitingReady {
                    r.state = RunState::Running;
                }
            }),
            Some(why)
                if self
                    .run(id)
                    .is_ok_and(|r| r.state == RunState::WaitingReady) =>
            {
                let _ = running.stop(Duration::from_secs(3)).await;
                self.finish(id, RunState::Failed, Some(with_log(&why, &plan.log)));
            }
            Some(_) => {}
        }
    }

    /// Streams a run's new log lines as events until the run ends; rotates a big log.
    fn spawn_log_follower(
        &self,
        id: &str,
        log: &std::path::Path,
        follower: Option<logs::Follower>,
    ) {
        let node = self.downgrade();
        let id = id.to_string();
        let mut follower = follower.unwrap_or_else(|| logs::Follower::new(log.to_path_buf(), true));
        let log = log.to_path_buf();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOG_EVERY).await;
                let Some(node) = node.upgrade() else { break };
                let lines = follower.read_new().unwrap_or_default();
                if !lines.is_empty() {
                    node.emit(Event::RunLog {
                        log: LogLines {
                            run_id: id.clone(),
                            lines,
                        },
                    });
                }
                if node.run(&id).map_or(true, |r| r.state.is_final()) {
                    break;
                }
                let _ = logs::rotate_if_big(&log, logs::ROTATE_AT);
            }
        });
    }

    /// Moves a run to a final state (unless it already is in one) and lets go of its ports.
    fn finish(&self, id: &str, state: RunState, error: Option<String>) {
        let mut changed = false;
        self.update_run(id, |r| {
            if r.state.is_final() {
                return;
            }
            // A run that was being stopped ends as stopped, whatever noticed its end first.
            r.state = if r.state == RunState::Stopping {
                RunState::Stopped
            } else {
                state
            };
            if r.error.is_none() {
                r.error = error.clone();
            }
            r.ended_ms = Some(now_ms());
            changed = true;
        });
        if changed {
            lock(&self.inner.live_runs).remove(id);
            let held = lock(&self.inner.held_ports).remove(id);
            self.inner.ports.release(held.unwrap_or_default());
            self.release_gpus(id);
        }
    }

    /// Changes a run, saves the table and tells subscribers, if anything changed.
    pub(crate) fn update_run(&self, id: &str, change: impl FnOnce(&mut Run)) {
        let changed = {
            let mut runs = lock(&self.inner.runs);
            let Some(r) = runs.get_mut(id) else { return };
            let before = r.clone();
            change(r);
            *r != before
        };
        if changed {
            self.run_changed(id);
        }
    }

    pub(crate) fn run_changed(&self, id: &str) {
        self.save_runs();
        if let Ok(run) = self.run(id) {
            self.emit(Event::RunChanged { run });
        }
    }

    fn save_runs(&self) {
        // Under the table's lock: two runs changing at once must not interleave their writes.
        let runs = lock(&self.inner.runs);
        let mut list: Vec<&Run> = runs.values().collect();
        list.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
        let path = self.inner.data_dir.path().join(RUNS_FILE);
        let bytes = serde_json::to_vec_pretty(&list).expect("runs serialise");
        // No fsync: what this file holds (process groups, container ids) ends with a power loss.
        if let Err(e) = aienv_core::fsutil::replace_file(&path, &bytes) {
            tracing::warn!("cannot save {}: {e}", path.display());
        }
    }

    /// After a restart: adopts the runs that are still alive, marks the others ended.
    pub(crate) fn load_runs(&self) {
        let path = self.inner.data_dir.path().join(RUNS_FILE);
        let Some(runs) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Run>>(&b).ok())
        else {
            return;
        };
        let open: Vec<Run> = runs
            .iter()
            .filter(|r| !r.state.is_final())
            .cloned()
            .collect();
        {
            let mut map = lock(&self.inner.runs);
            for r in runs {
                map.insert(r.id.clone(), r);
            }
        }
        for r in &open {
            self.inner
                .ports
                .reserve(r.tools.iter().filter_map(|t| t.port));
        }
        let node = self.clone();
        tokio::spawn(async move {
            for r in open {
                if r.peer.is_some() {
                    node.follow_again(&r);
                } else {
                    node.adopt(r).await;
                }
            }
        });
    }

    async fn adopt(&self, run: Run) {
        let Some(running) = self
            .inner
            .backends
            .adopt(&run.handle, run.log.clone())
            .await
        else {
            self.update_run(&run.id, |r| {
                r.notes
                    .push("it ended while the node was not running".into());
            });
            self.finish(&run.id, RunState::Exited, None);
            return;
        };
        tracing::info!(run = %run.id, "found run {}/{} again", run.workspace_name, run.environment);
        // Its GPUs are its own again: nobody else gets them while it runs.
        if !run.gpus.is_empty() {
            lock(&self.inner.held_gpus).insert(run.id.clone(), run.gpus.clone());
        }
        lock(&self.inner.live_runs).insert(run.id.clone(), running.clone());
        self.spawn_log_follower(&run.id, &run.log, None);
        let node = self.clone();
        tokio::spawn(async move {
            running.wait_gone().await;
            node.finish(&run.id, RunState::Exited, None);
        });
    }
}

/// An error with the last lines of the run's log under it.
fn with_log(msg: &str, log: &std::path::Path) -> String {
    let lines = logs::tail(log, ERROR_LINES).unwrap_or_default();
    if lines.is_empty() {
        msg.to_string()
    } else {
        format!("{msg}. Last lines of its log:\n{}", lines.join("\n"))
    }
}
