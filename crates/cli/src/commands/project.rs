//! `aienv project ...`

use aienv_core::{GitRef, Project};
use clap::Subcommand;
use reqwest::Method;

use crate::client::{Client, seg};
use crate::output::table;

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// List a workspace's projects.
    #[command(alias = "ls")]
    List { workspace: String },
    /// Add a project (its folder is created if missing).
    Add {
        workspace: String,
        name: String,
        /// Folder relative to the workspace (default: the name).
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Git remote the project tracks.
        #[arg(long)]
        git: Option<String>,
        /// Git revision (branch, tag or commit).
        #[arg(long, requires = "git")]
        rev: Option<String>,
    },
    /// Show one project.
    Show { workspace: String, name: String },
    /// Change a project's entry; only the given fields change. Its folder is not moved.
    Edit {
        workspace: String,
        name: String,
        /// A new name.
        #[arg(long)]
        rename: Option<String>,
        #[arg(long)]
        path: Option<String>,
        /// An empty string removes it.
        #[arg(long)]
        description: Option<String>,
        /// An empty string removes the git remote.
        #[arg(long)]
        git: Option<String>,
        #[arg(long)]
        rev: Option<String>,
    },
    /// Remove a project from the manifest (its files stay).
    #[command(alias = "rm")]
    Remove { workspace: String, name: String },
}

impl ProjectCmd {
    pub async fn run(self, c: &Client) -> anyhow::Result<()> {
        match self {
            ProjectCmd::List { workspace } => {
                let list: Vec<Project> = c
                    .get(&format!("/workspaces/{}/projects", seg(&workspace)))
                    .await?;
                c.print(&list, |list| {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|p| {
                            vec![
                                p.name.clone(),
                                p.dir().to_string(),
                                p.git.as_ref().map_or("-".into(), |g| g.remote.clone()),
                            ]
                        })
                        .collect();
                    table(&["NAME", "PATH", "GIT"], &rows);
                });
            }
            ProjectCmd::Add {
                workspace,
                name,
                path,
                description,
                git,
                rev,
            } => {
                let project = Project {
                    name,
                    path,
                    description,
                    git: git.map(|remote| GitRef { remote, rev }),
                };
                let p: Project = c
                    .send(
                        Method::POST,
                        &format!("/workspaces/{}/projects", seg(&workspace)),
                        Some(&project),
                    )
                    .await?;
                c.print(&p, |p| {
                    println!("added project {:?} ({}/)", p.name, p.dir())
                });
            }
            ProjectCmd::Show { workspace, name } => {
                let p: Project = c.get(&item_path(&workspace, &name)).await?;
                c.print(&p, print_project);
            }
            ProjectCmd::Edit {
                workspace,
                name,
                rename,
                path,
                description,
                git,
                rev,
            } => {
                let mut p: Project = c.get(&item_path(&workspace, &name)).await?;
                if let Some(n) = rename {
                    p.name = n;
                }
                if let Some(path) = path {
                    p.path = Some(path);
                }
                if let Some(d) = description {
                    p.description = Some(d).filter(|d| !d.is_empty());
                }
                match git {
                    Some(remote) if remote.is_empty() => p.git = None,
                    Some(remote) => {
                        p.git = Some(GitRef {
                            remote,
                            rev: p.git.and_then(|g| g.rev),
                        })
                    }
                    None => {}
                }
                if let Some(rev) = rev {
                    let Some(g) = p.git.as_mut() else {
                        anyhow::bail!("project {name:?} has no git remote; pass --git URL too")
                    };
                    g.rev = Some(rev);
                }
                let p: Project = c
                    .send(Method::PUT, &item_path(&workspace, &name), Some(&p))
                    .await?;
                c.print(&p, |p| println!("updated project {:?}", p.name));
            }
            ProjectCmd::Remove { workspace, name } => {
                let p: Project = c
                    .send(Method::DELETE, &item_path(&workspace, &name), None::<&()>)
                    .await?;
                c.print(&p, |p| {
                    println!(
                        "removed project {:?} from the manifest; its folder {}/ is untouched",
                        p.name,
                        p.dir()
                    )
                });
            }
        }
        Ok(())
    }
}

fn item_path(workspace: &str, name: &str) -> String {
    format!("/workspaces/{}/projects/{}", seg(workspace), seg(name))
}

fn print_project(p: &Project) {
    println!("{} ({}/)", p.name, p.dir());
    if let Some(d) = &p.description {
        println!("  {d}");
    }
    if let Some(g) = &p.git {
        println!(
            "  git: {}{}",
            g.remote,
            g.rev.as_ref().map_or(String::new(), |r| format!(" @ {r}"))
        );
    }
}
