//! `aienv workspace ...`

use std::path::PathBuf;

use aienv_core::{Access, Sharing, Workspace, WorkspaceSummary};
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::client::{Client, seg};
use crate::output::{list_or_dash, table};

#[derive(Debug, Subcommand)]
pub enum WorkspaceCmd {
    /// Create a workspace: the folder (if needed) and a commented starter aienv.toml.
    Create {
        path: PathBuf,
        /// Defaults to the folder name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Register a folder. Without an aienv.toml there, propose environments from the files it
    /// has (devcontainer.json, Dockerfile, compose.yaml, environment.yml, pixi.toml,
    /// pyproject.toml, requirements*.txt, notebooks) and write one when accepted.
    Add {
        path: PathBuf,
        /// Accept the proposal without asking.
        #[arg(long, short = 'y', conflicts_with = "dry_run")]
        yes: bool,
        /// Only show the proposal; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List registered workspaces.
    #[command(alias = "ls")]
    List,
    /// Show a workspace: its projects, environments and any problem with its manifest.
    Show { workspace: String },
    /// Change a workspace's name, description or sharing.
    Edit {
        workspace: String,
        #[arg(long)]
        name: Option<String>,
        /// An empty string removes it.
        #[arg(long)]
        description: Option<String>,
        /// Share with peers on the LAN (true/false).
        #[arg(long)]
        share: Option<bool>,
        #[arg(long, value_parser = ["open", "token", "approve"])]
        access: Option<String>,
    },
    /// Forget a workspace (its files stay where they are).
    #[command(alias = "rm")]
    Remove { workspace: String },
}

impl WorkspaceCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            WorkspaceCmd::Create {
                path,
                name,
                description,
            } => {
                let body = json!({ "path": super::absolute(&path)?, "create": true, "name": name, "description": description });
                let ws: Workspace = c.send(Method::POST, "/workspaces", Some(&body)).await?;
                c.print(&ws, |ws| {
                    println!(
                        "created workspace {:?} ({}) in {}",
                        ws.name,
                        ws.id,
                        ws.path.display()
                    );
                    println!(
                        "edit {} to add projects and environments",
                        ws.path.join(aienv_core::MANIFEST_FILE).display()
                    );
                });
            }
            WorkspaceCmd::Add { path, yes, dry_run } => {
                let path = super::absolute(&path)?;
                if !path.join(aienv_core::MANIFEST_FILE).exists() {
                    let answer = match (yes, dry_run) {
                        (true, _) => super::adopt::Answer::Yes,
                        (_, true) => super::adopt::Answer::DryRun,
                        _ => super::adopt::Answer::Ask,
                    };
                    return super::adopt::add_folder(c, &path, answer).await;
                }
                let body = json!({ "path": path });
                let ws: Workspace = c.send(Method::POST, "/workspaces", Some(&body)).await?;
                c.print(&ws, |ws| {
                    println!(
                        "registered workspace {:?} ({}) at {}",
                        ws.name,
                        ws.id,
                        ws.path.display()
                    )
                });
            }
            WorkspaceCmd::List => {
                let list: Vec<WorkspaceSummary> = c.get("/workspaces").await?;
                c.print(&list, |list| {
                    if list.is_empty() {
                        println!("no workspaces yet: `aienv workspace create DIR` makes one, `aienv workspace add DIR` registers an existing one");
                        return;
                    }
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|w| {
                            vec![
                                w.name.clone(),
                                w.id.clone(),
                                list_or_dash(&w.environments),
                                if w.shared { "yes" } else { "no" }.into(),
                                w.path.display().to_string(),
                                w.problem.as_ref().map_or_else(String::new, |p| format!("! {}", p.message)),
                            ]
                        })
                        .collect();
                    table(&["NAME", "ID", "ENVIRONMENTS", "SHARED", "PATH", ""], &rows);
                });
            }
            WorkspaceCmd::Show { workspace } => {
                let ws: Workspace = c.get(&format!("/workspaces/{}", seg(&workspace))).await?;
                c.print(&ws, print_workspace);
            }
            WorkspaceCmd::Edit {
                workspace,
                name,
                description,
                share,
                access,
            } => {
                let sharing = if share.is_some() || access.is_some() {
                    let current: Workspace =
                        c.get(&format!("/workspaces/{}", seg(&workspace))).await?;
                    let mut s = current.manifest.map(|m| m.sharing).unwrap_or_default();
                    if let Some(on) = share {
                        s.enabled = on;
                    }
                    if let Some(a) = access {
                        s.access = serde_json::from_value::<Access>(json!(a))?;
                    }
                    Some(s)
                } else {
                    None::<Sharing>
                };
                let body = json!({ "name": name, "description": description, "sharing": sharing });
                let ws: Workspace = c
                    .send(
                        Method::PATCH,
                        &format!("/workspaces/{}", seg(&workspace)),
                        Some(&body),
                    )
                    .await?;
                c.print(&ws, |ws| {
                    println!("updated workspace {:?} ({})", ws.name, ws.id)
                });
            }
            WorkspaceCmd::Remove { workspace } => {
                let ws: Workspace = c
                    .send(
                        Method::DELETE,
                        &format!("/workspaces/{}", seg(&workspace)),
                        None::<&()>,
                    )
                    .await?;
                c.print(&ws, |ws| {
                    println!(
                        "forgot workspace {:?} ({}); its files are still in {}",
                        ws.name,
                        ws.id,
                        ws.path.display()
                    )
                });
            }
        }
        Ok(())
    }
}

fn print_workspace(ws: &Workspace) {
    println!("{} ({})", ws.name, ws.id);
    println!("  path: {}", ws.path.display());
    if let Some(p) = &ws.problem {
        println!("  problem: {p}");
        if ws.manifest.is_some() {
            println!("  (the last valid manifest below stays in effect until the file is fixed)");
        }
    }
    let Some(m) = &ws.manifest else { return };
    if let Some(d) = &m.workspace.description {
        println!("  description: {d}");
    }
    let access = serde_json::to_value(m.sharing.access)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    println!(
        "  shared: {}",
        if m.sharing.enabled {
            format!("yes ({access})")
        } else {
            "no".into()
        }
    );
    println!(
        "  projects:{}",
        if m.projects.is_empty() { " none" } else { "" }
    );
    for p in &m.projects {
        let git = p.git.as_ref().map_or(String::new(), |g| {
            format!(
                "  git {}{}",
                g.remote,
                g.rev.as_ref().map_or(String::new(), |r| format!(" @ {r}"))
            )
        });
        println!("    {}  ({}/){git}", p.name, p.dir());
    }
    println!(
        "  environments:{}",
        if m.environments.is_empty() {
            " none"
        } else {
            ""
        }
    );
    for e in &m.environments {
        let tools: Vec<String> = e.tools.iter().map(|t| t.name.clone()).collect();
        println!(
            "    {}  {}  tools: {}",
            e.name,
            e.kind.as_str(),
            list_or_dash(&tools)
        );
    }
}

/// `aienv share` / `aienv unshare`: the `[sharing]` switch of a workspace's manifest.
pub async fn share(
    c: &Client,
    workspace: &str,
    on: bool,
    access: Option<String>,
    envs: Vec<String>,
    yes: bool,
) -> anyhow::Result<()> {
    let current: Workspace = c.get(&format!("/workspaces/{}", seg(workspace))).await?;
    let all: Vec<String> = current
        .manifest
        .as_ref()
        .map(|m| m.environments.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let mut s = current.manifest.map(|m| m.sharing).unwrap_or_default();
    if let Some(a) = access {
        s.access = serde_json::from_value::<Access>(json!(a))?;
    }
    let whole = s.enabled && s.environments.is_empty();
    match (on, envs.is_empty()) {
        // The whole workspace.
        (true, true) => s.environments.clear(),
        // These environments too (or, from the whole workspace, only these).
        (true, false) => {
            if whole || !s.enabled {
                s.environments.clear();
            }
            for e in envs {
                if !s.environments.contains(&e) {
                    s.environments.push(e);
                }
            }
        }
        (false, true) => {}
        // All but these.
        (false, false) => {
            let before = if whole { all } else { s.environments.clone() };
            s.environments = before.into_iter().filter(|e| !envs.contains(e)).collect();
        }
    }
    s.enabled = on || !s.environments.is_empty() && s.enabled;
    if on {
        warn_of_secrets(c, workspace, &s, yes).await?;
    }
    let ws: Workspace = c
        .send(
            Method::PATCH,
            &format!("/workspaces/{}", seg(workspace)),
            Some(&json!({ "sharing": s })),
        )
        .await?;
    c.print(&ws, |ws| {
        let sharing = ws.manifest.as_ref().map(|m| &m.sharing);
        match sharing {
            Some(s) if s.enabled && !s.environments.is_empty() => println!(
                "sharing {} of {:?} with the LAN, with the projects and files they use; secrets and caches stay home",
                s.environments.join(", "),
                ws.name
            ),
            Some(s) if s.enabled => println!(
                "sharing {:?} with the LAN; secrets and caches stay home (see [sharing] in its aienv.toml)",
                ws.name
            ),
            _ => println!("{:?} is no longer shared", ws.name),
        }
        if let Some(s) = sharing.filter(|s| s.enabled) {
            match s.access {
                Access::Open => println!("access: open (any peer on the LAN may clone it)"),
                Access::Token => println!(
                    "access: token (give peers a token: `aienv share token create {}`)",
                    ws.name
                ),
                Access::Approve => println!(
                    "access: approve (answer each request in the web UI or with `aienv access list`)"
                ),
            }
        }
    });
    Ok(())
}

/// Lists the files about to be shared that look like secrets; unless `yes`, asks whether to
/// share anyway (and refuses when nobody can be asked).
async fn warn_of_secrets(
    c: &Client,
    workspace: &str,
    sharing: &aienv_core::Sharing,
    yes: bool,
) -> anyhow::Result<()> {
    let found: Vec<aienv_node::SecretFinding> = c
        .send(
            Method::POST,
            &format!("/workspaces/{}/secret-scan", seg(workspace)),
            Some(&json!({ "sharing": sharing })),
        )
        .await?;
    if found.is_empty() {
        return Ok(());
    }
    eprintln!("warning: these files look like they hold secrets and would be shared:");
    for f in &found {
        eprintln!("  {}:{}: {}", f.path, f.line, f.kind);
    }
    eprintln!(
        "Keep them home with [sharing] exclude = [\"PATH\"] in aienv.toml, or move the secrets out."
    );
    if yes {
        return Ok(());
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("not shared: pass --yes to share these files anyway");
    }
    eprint!("Share anyway? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("not shared")
    }
}
