//! `aienv clone`, `aienv pull`, `aienv clones`.

use std::path::PathBuf;
use std::time::Duration;

use aienv_core::clone::{CloneJob, CloneState};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, seg};
use crate::output::{bytes, table};

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// PEER/WORKSPACE, as `aienv catalog` lists them.
    source: String,
    /// Where the clone goes (default: ~/aienv/WORKSPACE).
    #[arg(long)]
    to: Option<PathBuf>,
    /// Compress the transfer: auto (by link speed), on, off.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    compress: String,
    /// Start the clone and return at once (follow it with `aienv clones`).
    #[arg(long)]
    detach: bool,
    /// The share token its owner gave you (shares with `access = "token"`); kept for pulls.
    #[arg(long, env = "AIENV_SHARE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// A workspace cloned from a peer.
    workspace: String,
    #[arg(long)]
    detach: bool,
}

#[derive(Debug, Args)]
pub struct ClonesArgs {
    #[command(subcommand)]
    command: Option<ClonesCmd>,
}

#[derive(Debug, Subcommand)]
enum ClonesCmd {
    /// List clone jobs, newest first (the default).
    List,
    /// Cancel a running clone; nothing is registered and its staging folder is removed.
    Cancel { id: String },
}

pub async fn clone(c: &Client, a: CloneArgs) -> anyhow::Result<()> {
    let to = a.to.map(|p| super::absolute(&p)).transpose()?;
    let body = json!({ "source": a.source, "to": to, "compress": a.compress, "token": a.token });
    let job: CloneJob = c.send(Method::POST, "/clones", Some(&body)).await?;
    follow(c, job, a.detach).await
}

pub async fn pull(c: &Client, a: PullArgs) -> anyhow::Result<()> {
    let job: CloneJob = c
        .send(
            Method::POST,
            "/clones",
            Some(&json!({ "pull": a.workspace })),
        )
        .await?;
    follow(c, job, a.detach).await
}

pub async fn clones(c: &Client, a: ClonesArgs) -> anyhow::Result<()> {
    match a.command.unwrap_or(ClonesCmd::List) {
        ClonesCmd::List => {
            let jobs: Vec<CloneJob> = c.get("/clones").await?;
            c.print(&jobs, |jobs| {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            format!("{}/{}", j.peer_name, j.workspace_name),
                            format!("{:?}", j.state).to_lowercase(),
                            format!(
                                "{} / {}",
                                bytes(j.progress.bytes_done),
                                bytes(j.progress.bytes_total)
                            ),
                            j.target.display().to_string(),
                        ]
                    })
                    .collect();
                table(&["ID", "SOURCE", "STATE", "PROGRESS", "TARGET"], &rows);
            });
        }
        ClonesCmd::Cancel { id } => {
            let j: CloneJob = c
                .send(
                    Method::DELETE,
                    &format!("/clones/{}", seg(&id)),
                    None::<&()>,
                )
                .await?;
            c.print(&j, |j| {
                println!(
                    "cancelling clone {} of {}/{}",
                    j.id, j.peer_name, j.workspace_name
                )
            });
        }
    }
    Ok(())
}

/// Shows a progress bar until the job ends; fails (exit 1) if the clone does.
async fn follow(c: &Client, mut job: CloneJob, detach: bool) -> anyhow::Result<()> {
    if detach {
        c.print(&job, |j| {
            println!(
                "clone {} started: {}/{} -> {}",
                j.id,
                j.peer_name,
                j.workspace_name,
                j.target.display()
            )
        });
        return Ok(());
    }
    let bar = crate::output::bytes_bar(c.json, format!("{}/{}", job.peer_name, job.workspace_name));
    while job.state == CloneState::Running {
        // Often enough that a small pull is not kept waiting for the next look.
        tokio::time::sleep(Duration::from_millis(50)).await;
        job = c.get(&format!("/clones/{}", seg(&job.id))).await?;
        bar.set_length(job.progress.bytes_total);
        bar.set_position(job.progress.bytes_done);
    }
    bar.finish_and_clear();
    match job.state {
        CloneState::Done => {
            c.print(&job, |j| {
                let p = &j.progress;
                println!(
                    "cloned {}/{} into {}: {} files, {} ({} sent, the rest already here), every file verified",
                    j.peer_name,
                    j.workspace_name,
                    j.target.display(),
                    p.files_total,
                    bytes(p.bytes_total),
                    bytes(p.bytes_sent)
                );
                for n in &j.notes {
                    println!("note: {n}");
                }
            });
            Ok(())
        }
        _ => {
            if c.json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            }
            anyhow::bail!(
                "{}",
                job.error
                    .unwrap_or_else(|| format!("the clone ended {:?}", job.state))
            )
        }
    }
}
