//! `aienv env ...`

use aienv_core::{EnvKind, Environment};
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;

use crate::client::{Client, seg};
use crate::output::{list_or_dash, requires, table};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Process,
    Container,
    Vm,
}

/// The fields `env add` and `env edit` set; `edit` changes only those given, and an empty
/// string removes a text field.
#[derive(Debug, Args)]
pub struct EnvFields {
    /// A project the environment uses; repeatable (`edit`: replaces the list).
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
}

impl EnvFields {
    fn apply(self, e: &mut Environment) {
        if !self.projects.is_empty() {
            e.projects = self.projects;
        }
        for (field, value) in [
            (&mut e.command, self.command),
            (&mut e.image, self.image),
            (&mut e.disk, self.disk),
            (&mut e.description, self.description),
        ] {
            if let Some(v) = value {
                *field = Some(v).filter(|v| !v.is_empty());
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EnvCmd {
    /// List a workspace's environments.
    #[command(alias = "ls")]
    List { workspace: String },
    /// Show one environment in full.
    Show { workspace: String, env: String },
    /// Pin its Python packages in a lock file (uv, through the LAN cache) and set `python.lock`,
    /// so every rebuild, here or on a peer, installs exactly the same files.
    Lock { workspace: String, env: String },
    /// Add an environment (for everything else, edit aienv.toml).
    Add {
        workspace: String,
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        #[command(flatten)]
        fields: EnvFields,
    },
    /// Change an environment; only the given fields change (the rest: edit aienv.toml).
    Edit {
        workspace: String,
        env: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        fields: EnvFields,
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
            EnvCmd::Lock { workspace, env } => {
                let locked: serde_json::Value = c
                    .send(
                        Method::POST,
                        &format!(
                            "/workspaces/{}/environments/{}/lock",
                            seg(&workspace),
                            seg(&env)
                        ),
                        None::<&()>,
                    )
                    .await?;
                c.print(&locked, |l| {
                    println!(
                        "locked {}/{}: {} packages pinned in {} (python.lock set in aienv.toml)",
                        l["workspace"].as_str().unwrap_or("?"),
                        l["environment"].as_str().unwrap_or("?"),
                        l["packages"],
                        l["file"].as_str().unwrap_or("?")
                    )
                });
            }
            EnvCmd::Add {
                workspace,
                name,
                kind,
                fields,
            } => {
                let kind = match kind {
                    Kind::Process => EnvKind::Process,
                    Kind::Container => EnvKind::Container,
                    Kind::Vm => EnvKind::Vm,
                };
                // Everything but the name and kind starts empty; the flags fill in the rest.
                let mut env: Environment =
                    serde_json::from_value(serde_json::json!({ "name": name, "kind": kind }))?;
                fields.apply(&mut env);
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
                fields,
            } => {
                let mut e: Environment = c.get(&item_path(&workspace, &env)).await?;
                if let Some(n) = rename {
                    e.name = n;
                }
                fields.apply(&mut e);
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
