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
            ProjectCmd::Remove { workspace, name } => {
                let path = format!("/workspaces/{}/projects/{}", seg(&workspace), seg(&name));
                let p: Project = c.send(Method::DELETE, &path, None::<&()>).await?;
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
