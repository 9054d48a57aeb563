//! The one interface the node runs environments through, whatever the kind: start from a plan,
//! find again after a restart, watch, stop.
//!
//! `process` and `vm` runs are process groups ([`Group`]); `container` runs are containers of the
//! engine ([`ContainerRun`]). A process run over SSH is the group of its local `ssh`
//! ([`crate::ssh`]). Everything above this module (the node, the API) sees [`Running`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aienv_core::EnvKind;
use aienv_core::resources::Resources;
use aienv_core::run::RunHandle;

use crate::container::{self, ContainerRun};
use crate::error::RunError;
use crate::plan::RunPlan;
use crate::process::{self, Cmd, Group};
use crate::python;
use crate::setup;
use crate::vm::{self, Accel};

/// A started run.
#[derive(Debug, Clone)]
pub enum Running {
    Group(Group),
    Container(ContainerRun),
}

impl Running {
    /// What to persist to find it again.
    pub fn handle(&self) -> RunHandle {
        match self {
            Running::Group(g) => RunHandle::Process { pgid: g.pgid },
            Running::Container(c) => RunHandle::Container {
                id: c.id.clone(),
                engine: c.endpoint.clone(),
            },
        }
    }

    /// Why it cannot (or can no longer) serve: a process failed, the container exited.
    pub fn failure(&self) -> Option<String> {
        match self {
            Running::Group(g) => g.failure(),
            Running::Container(c) => c.failure(),
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Running::Group(g) => g.exit_code(),
            Running::Container(c) => c.exit_code(),
        }
    }

    /// Resolves when nothing of the run is left.
    pub async fn wait_gone(&self) {
        match self {
            Running::Group(g) => g.wait_gone().await,
            Running::Container(c) => c.wait_gone().await,
        }
    }

    /// Stops it: a graceful signal, then a kill after `grace`; nothing is left afterwards.
    pub async fn stop(&self, grace: Duration) -> Result<(), RunError> {
        match self {
            Running::Group(g) => {
                process::stop_group(g.pgid, grace).await;
                if process::group_alive(g.pgid) {
                    return Err(RunError::Start(format!(
                        "processes {:?} of the run survived SIGKILL",
                        process::group_members(g.pgid)
                    )));
                }
                Ok(())
            }
            Running::Container(c) => c.stop(grace).await,
        }
    }
}

/// The backends of this node, and what they learned about the machine (KVM that does not boot).
#[derive(Debug, Default)]
pub struct Backends {
    kvm_broken: AtomicBool,
}

impl Backends {
    /// Sets the environment up (its Python or image, then its `setup` commands) and starts it.
    /// Returns the run and notes for the user.
    pub async fn start(
        &self,
        plan: &RunPlan,
        machine: &Resources,
    ) -> Result<(Running, Vec<String>), RunError> {
        if let Some(target) = &plan.ssh {
            if plan.env.kind != EnvKind::Process {
                return Err(RunError::Start(format!(
                    "environment {:?} is a {} environment; only process environments run over \
                     SSH so far: start it here, or on a peer that runs aienv",
                    plan.env.name,
                    plan.env.kind.as_str()
                )));
            }
            // Its Python and setup commands are the other machine's business (crate::ssh).
            let cmds = process_cmds(plan)?;
            let (g, notes) = crate::ssh::start(plan, target, &cmds).await?;
            return Ok((Running::Group(g), notes));
        }
        match plan.env.kind {
            EnvKind::Process => {
                let cmds = process_cmds(plan)?;
                let mut vars = plan.vars.clone();
                // The GPUs pick the `python.variant` (CUDA, ROCm or CPU build) to install.
                let cx = python::Context {
                    gpus: machine.gpus.clone(),
                    ..plan.python.clone()
                };
                let py = python::ensure(&plan.workspace, &plan.env, &plan.log, &cx).await?;
                vars.extend(py.vars);
                setup::run_local(&plan.env, &plan.workspace, &vars, &plan.log).await?;
                let g = Group::spawn(&cmds, &plan.workspace, &vars, &plan.log)?;
                Ok((Running::Group(g), py.notes))
            }
            EnvKind::Container => {
                let use_gpus = !machine.gpus.is_empty();
                let c = container::start(plan, use_gpus).await?;
                let notes = if plan.env.gpus.is_some() && !use_gpus {
                    vec!["no GPU on this machine: the container runs without one".into()]
                } else {
                    Vec::new()
                };
                Ok((Running::Container(c), notes))
            }
            EnvKind::Vm => {
                let Some(hv) = &machine.hypervisor else {
                    return Err(RunError::Engine(
                        machine
                            .hypervisor_note
                            .clone()
                            .unwrap_or_else(|| "QEMU is not installed".into()),
                    ));
                };
                let accel = match std::env::var("AIENV_VM_ACCEL").as_deref() {
                    Ok("tcg") => Accel::Tcg,
                    Ok("kvm") => Accel::Kvm,
                    _ if hv.kvm && !self.kvm_broken.load(Ordering::Relaxed) => Accel::Kvm,
                    _ => Accel::Tcg,
                };
                let started = vm::start(plan, accel).await?;
                if accel == Accel::Kvm && started.accel == Accel::Tcg {
                    self.kvm_broken.store(true, Ordering::Relaxed);
                }
                Ok((Running::Group(started.group), started.notes))
            }
        }
    }

    /// Finds a run started before the node restarted. `None`: nothing of it is left.
    pub async fn adopt(&self, handle: &RunHandle, log: PathBuf) -> Option<Running> {
        match handle {
            RunHandle::None => None,
            RunHandle::Process { pgid } => {
                process::group_alive(*pgid).then(|| Running::Group(Group::adopt(*pgid)))
            }
            RunHandle::Container { id, .. } => {
                container::adopt(id, log).await.map(Running::Container)
            }
        }
    }
}

/// A process environment's command and its tools' commands, each labelled with its name.
fn process_cmds(plan: &RunPlan) -> Result<Vec<(String, Cmd)>, RunError> {
    let mut cmds = Vec::new();
    if let Some(c) = &plan.env.command {
        cmds.push((plan.env.name.clone(), Cmd::Shell(c.clone())));
    }
    for t in &plan.tools {
        if let Some(c) = &t.command {
            cmds.push((t.name.clone(), Cmd::Shell(c.clone())));
        }
    }
    if cmds.is_empty() {
        // Said before anything is set up, so that a Python build is not waited for in vain.
        return Err(RunError::Start(format!(
            "environment {:?} has nothing to start: give it a `command`, or a tool with a \
             `command`",
            plan.env.name
        )));
    }
    Ok(cmds)
}
