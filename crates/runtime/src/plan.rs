//! A run plan: one environment made concrete for one start on this machine: which port each
//! tool gets, the token, the filled-in commands and links, the variables everything sees.
//!
//! Making the plan touches nothing but the port table; backends only execute it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aienv_core::resources::Resources;
use aienv_core::{EnvKind, Environment};

use crate::error::RunError;
use crate::fit::Fit;
use crate::ports::Ports;
use crate::ready::{self, Check};
use crate::template::{self, Vars};

/// Where tools are reached. Tools bind loopback; the federation issue widens this per run.
pub const HOST: &str = "127.0.0.1";

#[derive(Debug, Clone)]
pub struct RunPlan {
    pub run_id: String,
    pub workspace: PathBuf,
    pub env: Environment,
    pub token: String,
    pub tools: Vec<PlannedTool>,
    /// Ports published from a container or forwarded into a VM: (on this machine, inside).
    pub publish: Vec<(u16, u16)>,
    /// Variables for everything the run starts (on top of the manifest's `env`).
    pub vars: BTreeMap<String, String>,
    /// The run's own folder (log, VM overlay link, pid files).
    pub run_dir: PathBuf,
    pub log: PathBuf,
    pub notes: Vec<String>,
    /// What the node adds to the Python build (its package index, where progress goes).
    pub python: crate::python::Context,
    /// Where the tools listen and their links point: loopback, or for a run a peer started, the
    /// address this node has on the LAN.
    pub host: std::net::IpAddr,
    /// Run it on that machine through `ssh` instead of here (process environments only).
    pub ssh: Option<crate::ssh::SshTarget>,
}

#[derive(Debug, Clone)]
pub struct PlannedTool {
    pub name: String,
    /// The port on this machine.
    pub port: Option<u16>,
    pub command: Option<String>,
    pub url: Option<String>,
    pub check: Check,
    pub timeout: Duration,
}

impl RunPlan {
    /// Every port this plan holds in the port table.
    pub fn ports(&self) -> Vec<u16> {
        let mut p: Vec<u16> = self.tools.iter().filter_map(|t| t.port).collect();
        p.extend(self.publish.iter().map(|(host, _)| *host));
        p.sort_unstable();
        p.dedup();
        p
    }
}

#[derive(Debug)]
pub struct Inputs<'a> {
    pub run_id: &'a str,
    pub workspace: PathBuf,
    pub env: &'a Environment,
    pub resources: &'a Resources,
    pub fit: &'a Fit,
    pub run_dir: PathBuf,
    /// Where the tools listen (default [`HOST`]).
    pub host: Option<std::net::IpAddr>,
}

pub fn make(i: Inputs<'_>, ports: &Ports) -> Result<RunPlan, RunError> {
    let mut held = Vec::new();
    let result = make_holding(&i, ports, &mut held);
    if result.is_err() {
        ports.release(held);
    }
    result
}

fn make_holding(i: &Inputs<'_>, ports: &Ports, held: &mut Vec<u16>) -> Result<RunPlan, RunError> {
    let env = i.env;
    let token = template::token();
    let ws = i.workspace.display().to_string();
    let host = i
        .host
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
        .to_string();
    let mut tools = Vec::new();
    let mut publish = Vec::new();
    let uses_port = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains("{port}"));
    for t in &env.tools {
        let port = match env.kind {
            EnvKind::Process if t.port.is_some() || uses_port(&t.command) || uses_port(&t.url) => {
                let p = ports.allocate(&t.name, t.port)?;
                held.push(p);
                Some(p)
            }
            EnvKind::Process => None,
            // Inside a container or VM the port is the manifest's; outside it is a free one.
            EnvKind::Container | EnvKind::Vm => match t.port.or(env.ports.first().copied()) {
                Some(inside) => {
                    let p = ports.allocate(&t.name, None)?;
                    held.push(p);
                    publish.push((p, inside));
                    Some(p)
                }
                None => None,
            },
        };
        let vars = Vars {
            host: &host,
            port,
            token: &token,
            workspace: &ws,
        };
        tools.push(PlannedTool {
            name: t.name.clone(),
            port,
            command: t.command.as_deref().map(|c| template::fill(c, &vars)),
            url: t.url.as_deref().map(|u| template::fill(u, &vars)),
            check: Check::for_tool(t.ready.as_ref(), port, env.kind != EnvKind::Process),
            timeout: t
                .ready
                .as_ref()
                .and_then(|r| r.timeout_s)
                .map_or(ready::DEFAULT_TIMEOUT, |s| Duration::from_secs(s.into())),
        });
    }
    if env.kind != EnvKind::Process {
        for &inside in &env.ports {
            if !publish.iter().any(|&(_, i)| i == inside) {
                let p = ports.allocate(&format!("port {inside}"), None)?;
                held.push(p);
                publish.push((p, inside));
            }
        }
    }

    let mut vars = BTreeMap::new();
    vars.insert("AIENV_RUN_ID".into(), i.run_id.to_string());
    vars.insert("AIENV_TOKEN".into(), token.clone());
    vars.insert("AIENV_WORKSPACE".into(), ws.clone());
    vars.insert("PYTHONUNBUFFERED".into(), "1".into());
    vars.insert("OMP_NUM_THREADS".into(), i.resources.cpus.to_string());
    if !i.resources.gpus.is_empty() {
        let ids: Vec<String> = i
            .resources
            .gpus
            .iter()
            .map(|g| g.index.to_string())
            .collect();
        vars.insert("CUDA_VISIBLE_DEVICES".into(), ids.join(","));
    }
    if let Some(first) = tools.iter().find_map(|t| t.port) {
        vars.insert("AIENV_PORT".into(), first.to_string());
    }
    for t in &tools {
        if let Some(p) = t.port {
            vars.insert(format!("AIENV_PORT_{}", env_name(&t.name)), p.to_string());
        }
    }
    // The manifest's own variables win over ours; the fallback's win over both.
    vars.extend(env.env.clone());
    if let Some(f) = &i.fit.fallback_env {
        vars.extend(f.clone());
    }
    Ok(RunPlan {
        run_id: i.run_id.to_string(),
        workspace: i.workspace.clone(),
        env: env.clone(),
        token,
        tools,
        publish,
        vars,
        log: i.run_dir.join("run.log"),
        run_dir: i.run_dir.clone(),
        notes: i.fit.note.iter().cloned().collect(),
        python: Default::default(),
        host: i.host.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
        ssh: None,
    })
}

/// `JupyterLab` -> `JUPYTERLAB`, `tensor-board` -> `TENSOR_BOARD`.
fn env_name(tool: &str) -> String {
    tool.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
