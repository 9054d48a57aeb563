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
    let body = json!({ "workspace": a.workspace, "environment": a.environment, "force": a.force });
    let mut run: Run = c.send(Method::POST, "/runs", Some(&body)).await?;
    if !c.json {
        for n in &run.notes {
            eprintln!("note: {n}");
        }
    }
    // The backend adds notes once it has started (how a VM is accelerated): printed at the end.
    let noted = run.notes.len();
    let mut said = run.state;
    while !a.detach && matches!(run.state, RunState::Starting | RunState::WaitingReady) {
        tokio::time::sleep(POLL).await;
        run = c.get(&format!("/runs/{}", seg(&run.id))).await?;
        if run.state != said && run.state == RunState::WaitingReady && !c.json {
            eprintln!("started; waiting for its tools to answer");
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
                "run {} of {}/{}: {}",
                r.id,
                r.workspace_name,
                r.environment,
                r.state.describe()
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
        RunState::Failed => bail!("{}", run.error.unwrap_or_else(|| "the run failed".into())),
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
