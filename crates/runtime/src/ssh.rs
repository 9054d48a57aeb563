//! Runs on machines that do not run aienv but accept SSH (`aienv run WS ENV --ssh user@host`):
//! a process environment started there through the system's `ssh`, with the same log and links
//! as a local run.
//!
//! Keys and host keys are the user's business: ssh takes them from the agent and `~/.ssh/config`
//! and is never allowed to ask (`BatchMode`). The steps, each an `ssh` of its own:
//!
//! 1. [`probe`]: log in, make the workspace copy's folder (`~/.cache/aienv-ssh/NAME-HASH`, the
//!    same for every run of the workspace), see whether `python3` and `uv` are there;
//! 2. [`copy`]: the workspace, `tar` through `ssh`, without venvs, caches and `.aienv/`;
//! 3. [`python`]: its venv there, when the environment has a `python` table;
//! 4. the `setup` commands, in the copy;
//! 5. the session: one `ssh -tt` runs the command and every tool ([`script::session`]), with
//!    `-L` forwarding each tool's port from the plan's host here (loopback, or this node's LAN
//!    address for a run a peer asked for) to 127.0.0.1 there. The tool gets the
//!    same port number there as here (the plan's, free here; if it is taken there, the tool
//!    fails to bind and the run fails with its message).
//!
//! The session's `ssh` is the run's process group here, so everything local works unchanged:
//! the log, readiness through the forwarded ports, finding the run again after a restart, and
//! stop: SIGTERM ends the `ssh`, the terminal there hangs up, and the session takes its
//! processes down with it.

mod connect;
mod copy;
mod probe;
mod python;
mod script;
mod target;

use std::collections::BTreeMap;

pub use target::SshTarget;

use crate::error::RunError;
use crate::plan::RunPlan;
use crate::process::{Cmd, Group};
use crate::python::SetupProgress;
use crate::setup;

/// Copies, sets up and starts `cmds` (label, command) of `plan` on `target`. Returns the local
/// `ssh` as the run's group, and notes for the user.
pub async fn start(
    plan: &RunPlan,
    target: &SshTarget,
    cmds: &[(String, Cmd)],
) -> Result<(Group, Vec<String>), RunError> {
    python::check(&plan.env)?;
    let log = &plan.log;
    let step = |what: String| {
        connect::say(log, &what);
        if let Some(progress) = &plan.python.progress {
            progress(SetupProgress {
                step: what.clone(),
                message: what,
                ..Default::default()
            });
        }
    };
    step(format!("connecting to {target} over SSH"));
    let found = probe::probe(target, &probe::folder(&plan.workspace)).await?;
    step(format!("copying the workspace to {target}:{}", found.dir));
    copy::workspace(target, &plan.workspace, &found.dir, log).await?;
    if plan.env.python.is_some() {
        step(format!("setting up Python on {target}"));
    }
    python::ensure(target, &plan.env, &plan.workspace, &found, log).await?;
    let remote = script::Remote {
        dir: found.dir.clone(),
        venv: python::venv(&plan.env),
    };
    let local = plan.workspace.display().to_string();
    let vars = remote_vars(plan, &local, &remote.dir);
    run_setup(plan, target, &remote, &vars).await?;
    let cmds = remote_cmds(plan, cmds, &local, &remote.dir);
    // The session is a file there, so that the log's "starting" line stays one short line.
    let file = format!("{}/.aienv/ssh/{}.sh", remote.dir, plan.run_id);
    let session = script::session(&remote, &vars, &cmds);
    connect::capture(
        target,
        &script::sh_c(&format!("cat > {}", script::quote(&file))),
        Some(session.as_bytes()),
        std::time::Duration::from_secs(60),
    )
    .await?;
    let mut extra: Vec<String> = ["-tt", "-o", "ExitOnForwardFailure=yes"]
        .map(String::from)
        .to_vec();
    // Only fatal errors: a forward tried before its tool listens would log a line each time
    // a readiness check knocks. Login problems were said by the probe a moment ago.
    extra.extend(["-o".into(), "LogLevel=FATAL".into()]);
    extra.extend(forwards(plan));
    let argv = connect::argv(target, &extra, &format!("exec sh {}", script::quote(&file)));
    let group = Group::spawn(
        &[(format!("ssh {target}"), Cmd::Argv(argv))],
        &plan.workspace,
        &BTreeMap::new(),
        log,
    )?;
    let forwarded = if plan.tools.iter().any(|t| t.port.is_some()) {
        "; its tools' ports are forwarded to this machine"
    } else {
        ""
    };
    Ok((
        group,
        vec![format!(
            "runs on {target} over SSH, in {}{forwarded}",
            remote.dir
        )],
    ))
}

/// The environment's `setup` commands, one `ssh` each, in the copy with the run's variables.
async fn run_setup(
    plan: &RunPlan,
    target: &SshTarget,
    remote: &script::Remote,
    vars: &BTreeMap<String, String>,
) -> Result<(), RunError> {
    let log = &plan.log;
    for (i, cmd) in plan.env.setup.iter().enumerate() {
        setup::announce(log, cmd)?;
        let script = script::setup(remote, vars, cmd);
        let mut c = connect::command(&connect::argv(target, &[], &script::sh_c(&script)));
        c.stdin(std::process::Stdio::null());
        match connect::to_log(c, log).await? {
            Some(0) => {}
            Some(connect::SSH_FAILED) => return Err(connect::lost(target, log)),
            code => return Err(setup::failed(&plan.env.name, i, cmd, code, log)),
        }
    }
    Ok(())
}

/// The commands as they run there. `{workspace}` was filled in with this machine's folder;
/// there it is the copy. `{host}` is where the link points here; there the tools listen on
/// loopback, behind the forward.
fn remote_cmds(
    plan: &RunPlan,
    cmds: &[(String, Cmd)],
    local: &str,
    dir: &str,
) -> Vec<(String, String)> {
    let host = plan.host.to_string();
    cmds.iter()
        .map(|(label, cmd)| {
            let line = match cmd {
                Cmd::Shell(s) => s.clone(),
                Cmd::Argv(a) => a
                    .iter()
                    .map(|w| script::quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let line = line.replace(local, dir);
            let line = if plan.host.is_loopback() {
                line
            } else {
                line.replace(&host, "127.0.0.1")
            };
            (label.clone(), line)
        })
        .collect()
}

/// `-L` for each tool's port: the plan's host and port here, the same port on loopback there.
fn forwards(plan: &RunPlan) -> Vec<String> {
    let here = match plan.host {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    plan.tools
        .iter()
        .filter_map(|t| t.port)
        .flat_map(|p| ["-L".to_string(), format!("{here}:{p}:127.0.0.1:{p}")])
        .collect()
}

/// The run's variables as they apply there: the workspace is the copy, and the GPUs and CPU
/// count found here say nothing about that machine (unless the manifest set them).
fn remote_vars(plan: &RunPlan, local: &str, dir: &str) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = plan
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(local, dir)))
        .collect();
    for k in ["CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"] {
        if !plan.env.env.contains_key(k) {
            vars.remove(k);
        }
    }
    vars.insert("AIENV_WORKSPACE".into(), dir.to_string());
    vars
}
