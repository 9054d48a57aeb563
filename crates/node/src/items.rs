//! Projects and environments of a workspace: each change is an edit of its `aienv.toml`.

use std::path::Path;

use aienv_core::{Environment, Project, Workspace};

use crate::Node;
use crate::error::{NodeError, Result};

impl Node {
    pub fn projects(&self, ws: &str) -> Result<Vec<Project>> {
        Ok(in_effect(&self.workspace(ws)?)?.projects.clone())
    }

    pub fn project(&self, ws: &str, name: &str) -> Result<Project> {
        let w = self.workspace(ws)?;
        in_effect(&w)?
            .project(name)
            .cloned()
            .ok_or_else(|| missing("project", name, &w))
    }

    /// Adds a project to the manifest and creates its folder if it does not exist yet. A path
    /// where no folder can be made (a file is there) is refused before anything is written.
    pub fn add_project(&self, ws: &str, project: Project) -> Result<Project> {
        let root = self.workspace(ws)?.path;
        let w = self.edit_manifest(ws, |doc| {
            doc.add_project(&project)?;
            // The rules first: a path outside the workspace is refused as such, unlooked at.
            doc.validated()?;
            refuse_non_folder(&root.join(project.dir()))
        })?;
        let dir = w.path.join(project.dir());
        std::fs::create_dir_all(&dir).map_err(|e| {
            NodeError::io(
                format!(
                    "the project was added, but its folder {} could not be created",
                    dir.display()
                ),
                e,
            )
        })?;
        Ok(project)
    }

    /// Replaces a project's entry (which may rename it). Its folder is not moved.
    pub fn replace_project(&self, ws: &str, name: &str, project: Project) -> Result<Project> {
        self.edit_manifest(ws, |doc| Ok(doc.replace_project(name, &project)?))?;
        Ok(project)
    }

    /// Removes a project from the manifest; its folder and files stay on disk.
    pub fn remove_project(&self, ws: &str, name: &str) -> Result<Project> {
        let project = self.project(ws, name)?;
        self.edit_manifest(ws, |doc| Ok(doc.remove_project(name)?))?;
        Ok(project)
    }

    pub fn environments(&self, ws: &str) -> Result<Vec<Environment>> {
        Ok(in_effect(&self.workspace(ws)?)?.environments.clone())
    }

    pub fn environment(&self, ws: &str, name: &str) -> Result<Environment> {
        let w = self.workspace(ws)?;
        in_effect(&w)?
            .environment(name)
            .cloned()
            .ok_or_else(|| missing("environment", name, &w))
    }

    pub fn add_environment(&self, ws: &str, env: Environment) -> Result<Environment> {
        self.edit_manifest(ws, |doc| Ok(doc.add_environment(&env)?))?;
        Ok(env)
    }

    pub fn replace_environment(
        &self,
        ws: &str,
        name: &str,
        env: Environment,
    ) -> Result<Environment> {
        self.edit_manifest(ws, |doc| Ok(doc.replace_environment(name, &env)?))?;
        Ok(env)
    }

    pub fn remove_environment(&self, ws: &str, name: &str) -> Result<Environment> {
        let env = self.environment(ws, name)?;
        self.edit_manifest(ws, |doc| Ok(doc.remove_environment(name)?))?;
        Ok(env)
    }
}

/// Refuses a project folder that cannot be made because something other than a folder (a
/// file, a dangling link) is at its path or at a folder on the way to it.
fn refuse_non_folder(dir: &Path) -> Result<()> {
    let mut at = dir.to_path_buf();
    while std::fs::symlink_metadata(&at).is_err() {
        if !at.pop() {
            return Ok(());
        }
    }
    if at.is_dir() {
        return Ok(());
    }
    Err(NodeError::Exists(if at == dir {
        format!(
            "{} exists and is not a folder; give the project another path",
            dir.display()
        )
    } else {
        format!(
            "{} is not a folder, so the project's folder {} cannot be made; give the project \
             another path",
            at.display(),
            dir.display()
        )
    }))
}

/// The manifest in effect, or why there is none.
fn in_effect(w: &Workspace) -> Result<&aienv_core::Manifest> {
    match (&w.manifest, &w.problem) {
        (Some(m), _) => Ok(m),
        (None, Some(p)) => Err(NodeError::InvalidManifest(p.clone())),
        (None, None) => Err(NodeError::InvalidRequest(format!(
            "workspace {:?} has no manifest loaded",
            w.name
        ))),
    }
}

fn missing(what: &str, name: &str, w: &Workspace) -> NodeError {
    NodeError::NotFound(format!(
        "workspace {:?} has no {what} named {name:?}",
        w.name
    ))
}
