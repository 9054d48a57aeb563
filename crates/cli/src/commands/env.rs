//! `aienv env ...`

use aienv_core::{EnvKind, Environment};
use clap::{Subcommand, ValueEnum};
use reqwest::Method;

use crate::client::{Client, seg};
use crate::output::{list_or_dash, requires, table};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Process,
    Container,
    Vm,
}

#[derive(Debug, Subcommand)]
pub enum EnvCmd {
    /// List a workspace's environments.
    #[command(alias = "ls")]
    List { workspace: String },
    /// Show one environment in full.
    Show { workspace: String, env: String },
    /// Add an environment (for everything else, edit aienv.toml).
    Add {
        workspace: String,
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// A project the environment uses; repeatable.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// process: the main command; container: overrides the image's command.
        #[arg(long)]
        command: Option<String>,
        /// container: the image.
        #[arg(long)]
        image: Option<String>,
        /// vm: the disk image, relative to the workspace.
        #[arg(long)]
        disk: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change an environment; only the given fields change (the rest: edit aienv.toml).
    Edit {
        workspace: String,
        env: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        /// Replaces the list of projects; repeatable.
        #[arg(long = "project")]
        projects: Vec<String>,
        /// An empty string removes it.
        #[arg(long)]
        command: Option<String>,
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        disk: Option<String>,
        /// An empty string removes it.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove an environment from the manifest.
    #[command(alias = "rm")]
    Remove { workspace: String, env: String },
}

impl EnvCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            EnvCmd::List { workspace } => {
                let list: Vec<Environment> = c
                    .get(&format!("/workspaces/{}/environments", seg(&workspace)))
                    .await?;
                c.print(&list, |list| {
                    if list.is_empty() {
                        println!("no environments: add one with `aienv env add` or in aienv.toml");
                        return;
                    }
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|e| {
                            let tools: Vec<String> =
                                e.tools.iter().map(|t| t.name.clone()).collect();
                            vec![
                                e.name.clone(),
                                e.kind.as_str().into(),
                                list_or_dash(&e.projects),
                                list_or_dash(&tools),
                                requires(&e.requires),
                            ]
                        })
                        .collect();
                    table(&["NAME", "KIND", "PROJECTS", "TOOLS", "REQUIRES"], &rows);
                });
            }
            EnvCmd::Show { workspace, env } => {
                let e: Environment = c
                    .get(&format!(
                        "/workspaces/{}/environments/{}",
                        seg(&workspace),
                        seg(&env)
                    ))
                    .await?;
                c.print(&e, print_env);
            }
            EnvCmd::Add {
                workspace,
                name,
                kind,
                projects,
                command,
                image,
                disk,
                description,
            } => {
                let kind = match kind {
                    Kind::Process => EnvKind::Process,
                    Kind::Container => EnvKind::Container,
                    Kind::Vm => EnvKind::Vm,
                };
                let env = Environment {
                    name,
                    kind,
                    description,
                    projects,
                    env: Default::default(),
                    requires: Default::default(),
                    fallback: None,
                    python: None,
                    command,
                    image,
                    ports: vec![],
                    gpus: None,
                    disk,
                    memory_gb: None,
                    cpus: None,
                    tools: vec![],
                };
                let e: Environment = c
                    .send(
                        Method::POST,
                        &format!("/workspaces/{}/environments", seg(&workspace)),
                        Some(&env),
                    )
                    .await?;
                c.print(&e, |e| {
                    println!("added {} environment {:?}", e.kind.as_str(), e.name)
                });
            }
            EnvCmd::Edit {
                workspace,
                env,
                rename,
                projects,
                command,
                image,
                disk,
                description,
            } => {
                let mut e: Environment = c.get(&item_path(&workspace, &env)).await?;
                if let Some(n) = rename {
                    e.name = n;
                }
                if !projects.is_empty() {
                    e.projects = projects;
                }
                let set = |field: &mut Option<String>, value: Option<String>| {
                    if let Some(v) = value {
                        *field = Some(v).filter(|v| !v.is_empty());
                    }
                };
                set(&mut e.command, command);
                set(&mut e.image, image);
                set(&mut e.disk, disk);
                set(&mut e.description, description);
                let e: Environment = c
                    .send(Method::PUT, &item_path(&workspace, &env), Some(&e))
                    .await?;
                c.print(&e, |e| println!("updated environment {:?}", e.name));
            }
            EnvCmd::Remove { workspace, env } => {
                let e: Environment = c
                    .send(Method::DELETE, &item_path(&workspace, &env), None::<&()>)
                    .await?;
                c.print(&e, |e| println!("removed environment {:?}", e.name));
            }
        }
        Ok(())
    }
}

fn print_env(e: &Environment) {
    println!("{} ({})", e.name, e.kind.as_str());
    if let Some(d) = &e.description {
        println!("  {d}");
    }
    println!("  projects: {}", list_or_dash(&e.projects));
    println!("  requires: {}", requires(&e.requires));
    for (label, value) in [
        ("image", &e.image),
        ("disk", &e.disk),
        ("command", &e.command),
    ] {
        if let Some(v) = value {
            println!("  {label}: {v}");
        }
    }
    if let Some(p) = &e.python {
        let what = p
            .lock
            .as_deref()
            .or(p.requirements.as_deref())
            .unwrap_or("-");
        println!(
            "  python: {} from {what}",
            p.version.as_deref().unwrap_or("any")
        );
    }
    for t in &e.tools {
        println!(
            "  tool {}: {}",
            t.name,
            t.url.as_deref().or(t.command.as_deref()).unwrap_or("-")
        );
    }
}

fn item_path(workspace: &str, env: &str) -> String {
    format!("/workspaces/{}/environments/{}", seg(workspace), seg(env))
}
