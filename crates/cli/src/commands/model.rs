//! `aienv model list|pull|pulls`: Hugging Face models in the LAN cache.

use std::time::Duration;

use aienv_node::models::{
    ModelPull, ModelPullRequest, ModelsOverview, PullState, RepoKind, RepoSummary,
};
use clap::{Args, Subcommand};
use reqwest::Method;

use crate::client::{Client, seg};
use crate::output::{bytes, table};

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// The models in this machine's Hugging Face cache, and those the peers offer.
    #[command(alias = "ls")]
    List,
    /// Copy a model from a peer into this machine's Hugging Face cache, every file verified;
    /// files already here are not fetched again.
    Pull(PullArgs),
    /// The model pulls since the node started, newest first.
    Pulls,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The repo id, ORG/NAME (as on huggingface.co).
    repo: String,
    /// A branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Pull from this peer (name or id) only; by default the first peer that has it.
    #[arg(long, value_name = "PEER")]
    from: Option<String>,
    /// The repo is a dataset, not a model.
    #[arg(long)]
    dataset: bool,
    /// Start the pull and return at once (follow it with `aienv model pulls`).
    #[arg(long)]
    detach: bool,
}

impl ModelCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            ModelCmd::List => list(c).await,
            ModelCmd::Pull(a) => pull(c, a).await,
            ModelCmd::Pulls => {
                let pulls: Vec<ModelPull> = c.get("/models/pulls").await?;
                c.print(&pulls, |pulls| {
                    let rows: Vec<Vec<String>> = pulls
                        .iter()
                        .map(|p| {
                            vec![
                                p.id.clone(),
                                format!("{}@{}", p.repo, p.revision),
                                p.peer_name.clone(),
                                state(p.state).to_string(),
                                format!("{} / {}", bytes(p.bytes_fetched), bytes(p.bytes_total)),
                            ]
                        })
                        .collect();
                    table(&["ID", "REPO", "FROM", "STATE", "FETCHED"], &rows);
                });
                Ok(())
            }
        }
    }
}

async fn list(c: &Client) -> anyhow::Result<()> {
    let o: ModelsOverview = c.get("/models").await?;
    c.print(&o, |o| {
        println!("this machine ({}):", o.cache.display());
        if o.local.is_empty() {
            println!("  no models yet");
        } else {
            let rows: Vec<Vec<String>> = o.local.iter().map(|m| row("", m)).collect();
            table(&["REPO", "KIND", "REFS", "SIZE"], &rows);
        }
        if !o.enabled {
            println!("\nmodels are not shared with peers here (`[cache] models = false`)");
            return;
        }
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for p in &o.peers {
            rows.extend(p.models.iter().map(|m| row(&p.peer_name, m)));
            if let Some(e) = &p.error {
                notes.push(format!("{}: {e}", p.peer_name));
            }
        }
        println!();
        if rows.is_empty() {
            println!("no peer offers models");
        } else {
            table(&["PEER", "REPO", "KIND", "REFS", "SIZE"], &rows);
        }
        for n in notes {
            println!("{n}");
        }
    });
    Ok(())
}

/// A table row for a repo; with the peer's name first when `peer` is not empty.
fn row(peer: &str, m: &RepoSummary) -> Vec<String> {
    let refs: Vec<String> = m
        .refs
        .iter()
        .map(|(name, commit)| format!("{name}={}", &commit[..commit.len().min(8)]))
        .collect();
    let kind = match m.kind {
        RepoKind::Model => "model",
        RepoKind::Dataset => "dataset",
    };
    let mut r = vec![m.repo.clone(), kind.into(), refs.join(","), bytes(m.size)];
    if !peer.is_empty() {
        r.insert(0, peer.to_string());
    }
    r
}

async fn pull(c: &Client, a: PullArgs) -> anyhow::Result<()> {
    let req = ModelPullRequest {
        repo: a.repo,
        revision: Some(a.revision),
        from: a.from,
        kind: Some(if a.dataset {
            RepoKind::Dataset
        } else {
            RepoKind::Model
        }),
    };
    let mut p: ModelPull = c.send(Method::POST, "/models/pull", Some(&req)).await?;
    if a.detach {
        c.print(&p, |p| {
            println!(
                "pull {} started: {}@{} from {}",
                p.id, p.repo, p.revision, p.peer_name
            )
        });
        return Ok(());
    }
    let bar = crate::output::bytes_bar(c.json, format!("{} from {}", p.repo, p.peer_name));
    while p.state == PullState::Running {
        tokio::time::sleep(Duration::from_millis(50)).await;
        p = c.get(&format!("/models/pulls/{}", seg(&p.id))).await?;
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_fetched);
    }
    bar.finish_and_clear();
    if p.state == PullState::Done {
        c.print(&p, |p| {
            println!(
                "pulled {}@{} ({}) from {}: {} files, {} fetched ({}), {} already here, every file verified",
                p.repo,
                p.revision,
                &p.commit[..p.commit.len().min(12)],
                p.peer_name,
                p.files,
                p.files_fetched,
                bytes(p.bytes_fetched),
                p.files_present
            );
            println!("{}", p.snapshot.display());
        });
        return Ok(());
    }
    if c.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    }
    anyhow::bail!("{}", p.error.unwrap_or_else(|| "the pull failed".into()))
}

fn state(s: PullState) -> &'static str {
    match s {
        PullState::Running => "running",
        PullState::Done => "done",
        PullState::Failed => "failed",
    }
}
