//! `aienv run`, `aienv runs`, `aienv logs`, `aienv stop`, `aienv resources`.

use std::time::Duration;

use aienv_core::Event;
use aienv_core::resources::Resources;
use aienv_core::run::{Run, RunState};
use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, seg};
use crate::output::{bytes, table};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workspace name or id.
    workspace: String,
    /// Environment name.
    environment: String,
    /// Start even though this machine lacks what the environment requires.
    #[arg(long)]
    force: bool,
    /// Return once the run is planned instead of waiting for its tools.
    #[arg(long)]
    detach: bool,
    /// Run it on a machine without aienv, through the system's `ssh` (keys from your agent or
    /// ~/.ssh/config): the workspace is copied there and the tools' ports are forwarded back.
    /// Process environments only.
    #[arg(long, value_name = "USER@HOST[:PORT]", conflicts_with_all = ["on", "owner"])]
    ssh: Option<String>,
    /// Run it on a peer (its name or id), or `auto`: on the node where it fits best (this one
    /// included; `aienv place` shows the ranking). The peer receives the workspace if it lacks
    /// it; the run, its log and its links show here.
    #[arg(long, value_name = "PEER|auto")]
    on: Option<String>,
    /// The node whose workspace it is, for an environment from the catalog (default: this one).
    #[arg(long, value_name = "PEER")]
    owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Workspace name or id.
    workspace: String,
    /// Environment name (its command runs to completion; its `outputs` come back here).
    environment: String,
    /// Where: a peer, or `auto` (the best node free now; with none free, it waits in the queue).
    #[arg(long, value_name = "PEER|auto", default_value = "auto")]
    on: String,
    /// The node whose workspace it is, for an environment from the catalog.
    #[arg(long, value_name = "PEER")]
    owner: Option<String>,
    /// Wait until it ends and its outputs are back.
    #[arg(long)]
    wait: bool,
}

#[derive(Debug, Args)]
pub struct PlaceArgs {
    /// Workspace name or id.
    workspace: String,
    environment: String,
    /// The node whose workspace it is, for an environment from the catalog.
    #[arg(long, value_name = "PEER")]
    owner: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    run: String,
    /// Keep printing new lines until the run ends.
    #[arg(short, long)]
    follow: bool,
    /// How many of the last lines to print first.
    #[arg(short = 'n', long, default_value_t = 200)]
    lines: usize,
}

/// How often `aienv run` asks how far its run got (loopback: cheap, and it bounds the delay).
const POLL: Duration = Duration::from_millis(10);

pub async fn run(c: &Client, a: RunArgs) -> anyhow::Result<()> {
    let body = json!({
        "workspace": a.workspace,
        "environment": a.environment,
        "force": a.force,
        "ssh": a.ssh,
        "on": a.on,
        "owner": a.owner,
    });
    let mut run: Run = c.send(Method::POST, "/runs", Some(&body)).await?;
    if !c.json {
        for n in &run.notes {
            eprintln!("note: {n}");
        }
    }
    // The backend adds notes once it has started (how a VM is accelerated): printed at the end.
    let noted = run.notes.len();
    let mut said = run.state;
    let mut setup = String::new();
    while !a.detach && matches!(run.state, RunState::Starting | RunState::WaitingReady) {
        tokio::time::sleep(POLL).await;
        run = c.get(&format!("/runs/{}", seg(&run.id))).await?;
        if run.state != said && run.state == RunState::WaitingReady && !c.json {
            eprintln!("started; waiting for its tools to answer");
        }
        // A run on a peer says how far it got there (approval, the workspace arriving).
        if let Some(s) = run.setup.as_ref().filter(|s| s.step == "remote")
            && s.message != setup
            && !c.json
        {
            eprintln!("{}", s.message);
            setup = s.message.clone();
        }
        said = run.state;
    }
    c.print(&run, |r| {
        // Notes the backend added once it started (e.g. how a VM is accelerated).
        for n in r.notes.iter().skip(noted) {
            eprintln!("note: {n}");
        }
        if r.state == RunState::Running || a.detach {
            println!(
                "run {} of {}/{}: {}{}",
                r.id,
                r.workspace_name,
                r.environment,
                r.state.describe(),
                r.ssh
                    .as_ref()
                    .map_or(String::new(), |s| format!(" on {s} (over SSH)"))
            );
            for t in &r.tools {
                println!(
                    "  {:<16} {}",
                    t.name,
                    t.url.as_deref().unwrap_or("(no link)")
                );
            }
            println!("logs: aienv logs {} -f    stop: aienv stop {}", r.id, r.id);
        }
    });
    match run.state {
        RunState::Failed | RunState::Lost => {
            bail!("{}", run.error.unwrap_or_else(|| "the run failed".into()))
        }
        RunState::Exited | RunState::Stopped if !a.detach => {
            if !c.json {
                eprintln!(
                    "run {} ended before its tools answered (exit code {})",
                    run.id,
                    run.exit_code.map_or("unknown".into(), |c| c.to_string())
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

pub async fn runs(c: &Client) -> anyhow::Result<()> {
    let runs: Vec<Run> = c.get("/runs").await?;
    c.print(&runs, |runs| {
        if runs.is_empty() {
            println!("No runs yet. Start one with `aienv run WORKSPACE ENV`.");
            return;
        }
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    format!("{}/{}", r.workspace_name, r.environment),
                    r.kind.as_str().into(),
                    r.state.describe().into(),
                    r.tools
                        .iter()
                        .filter_map(|t| t.url.clone())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        table(&["ID", "ENVIRONMENT", "KIND", "STATE", "LINKS"], &rows);
    });
    Ok(())
}

pub async fn stop(c: &Client, id: &str) -> anyhow::Result<()> {
    let run: Run = c
        .send(Method::DELETE, &format!("/runs/{}", seg(id)), None::<&()>)
        .await?;
    c.print(&run, |r| println!("run {} {}", r.id, r.state.describe()));
    Ok(())
}

pub async fn logs(c: &Client, a: LogsArgs) -> anyhow::Result<()> {
    // Subscribe first so that no line falls between the tail and the stream.
    let mut events = if a.follow {
        let (ws, _) = tokio_tungstenite::connect_async(c.events_url())
            .await
            .with_context(|| format!("cannot open the event stream of the node at {}", c.base))?;
        Some(ws)
    } else {
        None
    };
    let lines: Vec<String> = c
        .get(&format!("/runs/{}/logs?tail={}", seg(&a.run), a.lines))
        .await?;
    for l in &lines {
        println!("{l}");
    }
    let Some(ws) = events.as_mut() else {
        return Ok(());
    };
    let run: Run = c.get(&format!("/runs/{}", seg(&a.run))).await?;
    if run.state.is_final() {
        return Ok(());
    }
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg.context("the event stream broke off")? else {
            continue;
        };
        match serde_json::from_str::<Event>(&text) {
            Ok(Event::RunLog { log }) if log.run_id == run.id => {
                for l in log.lines {
                    println!("{l}");
                }
            }
            Ok(Event::RunChanged { run: r }) if r.id == run.id && r.state.is_final() => {
                eprintln!("run {} {}", r.id, r.state.describe());
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

pub async fn resources(c: &Client) -> anyhow::Result<()> {
    let r: Resources = c.get("/resources").await?;
    c.print(&r, |r| {
        println!("{} ({}), {} CPUs: {}", r.os, r.arch, r.cpus, r.cpu_model);
        println!(
            "memory: {} total, {} available",
            bytes(r.ram_total_bytes),
            bytes(r.ram_available_bytes)
        );
        if let Some(d) = &r.disk {
            println!(
                "disk:   {} free of {} on {}",
                bytes(d.available_bytes),
                bytes(d.total_bytes),
                d.mount_point
            );
        }
        if r.gpus.is_empty() {
            println!(
                "gpus:   none ({})",
                r.gpu_note.as_deref().unwrap_or("none found")
            );
        }
        for g in &r.gpus {
            println!(
                "gpu {}:  {}, {} MB, driver {}, CUDA {}",
                g.index,
                g.name,
                g.memory_total_mb,
                g.driver.as_deref().unwrap_or("?"),
                g.cuda.as_deref().unwrap_or("?")
            );
        }
        match &r.container_engine {
            Some(e) => println!("containers: {} {} at {}", e.name, e.version, e.endpoint),
            None => println!(
                "containers: none ({})",
                r.container_note.as_deref().unwrap_or("")
            ),
        }
        match &r.hypervisor {
            Some(h) => println!(
                "vms:    {} {}{}",
                h.qemu,
                h.version,
                if h.kvm {
                    ", /dev/kvm usable"
                } else {
                    ", software emulation only"
                }
            ),
            None => println!(
                "vms:    none ({})",
                r.hypervisor_note.as_deref().unwrap_or("")
            ),
        }
    });
    Ok(())
}

/// `aienv submit`: a batch job on the best node (or the one named); its outputs come back.
pub async fn submit(c: &Client, a: SubmitArgs) -> anyhow::Result<()> {
    let body = json!({
        "workspace": a.workspace,
        "environment": a.environment,
        "on": a.on,
        "owner": a.owner,
        "submit": true,
    });
    let mut run: Run = c.send(Method::POST, "/runs", Some(&body)).await?;
    let mut said = String::new();
    while a.wait && !run.state.is_final() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        run = c.get(&format!("/runs/{}", seg(&run.id))).await?;
        let now = match (&run.peer, &run.setup) {
            (_, Some(s)) if run.state == RunState::Starting => s.message.clone(),
            (Some(p), _) => format!("{} on {}", run.state.describe(), p.name),
            _ => run.state.describe().to_string(),
        };
        if now != said && !c.json {
            eprintln!("{now}");
            said = now;
        }
    }
    c.print(&run, |r| {
        let place = r
            .peer
            .as_ref()
            .map_or("here".to_string(), |p| format!("on {}", p.name));
        println!(
            "job {} ({}/{}) {place}: {}",
            r.id,
            r.workspace_name,
            r.environment,
            r.setup
                .as_ref()
                .filter(|_| r.state == RunState::Starting)
                .map_or(r.state.describe().to_string(), |s| s.message.clone())
        );
        if let Some(dir) = &r.outputs {
            println!("outputs: {}", dir.display());
        }
        if !r.state.is_final() {
            println!("logs: aienv logs {} -f    stop: aienv stop {}", r.id, r.id);
        }
    });
    match run.state {
        RunState::Failed => bail!("{}", run.error.unwrap_or_else(|| "the job failed".into())),
        _ => Ok(()),
    }
}

/// `aienv place`: where an environment would run best, and why for each node.
pub async fn place(c: &Client, a: PlaceArgs) -> anyhow::Result<()> {
    let mut path = format!(
        "/placement?workspace={}&environment={}",
        seg(&a.workspace),
        seg(&a.environment)
    );
    if let Some(o) = &a.owner {
        path.push_str(&format!("&owner={}", seg(o)));
    }
    let list: Vec<serde_json::Value> = c.get(&path).await?;
    c.print(&list, |list| {
        for (i, cand) in list.iter().enumerate() {
            println!(
                "{}. {} {}",
                i + 1,
                if cand["fits"] == true {
                    "fits   "
                } else {
                    "no     "
                },
                cand["reason"].as_str().unwrap_or("?")
            );
        }
    });
    Ok(())
}
