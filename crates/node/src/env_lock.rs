//! `aienv env lock`: pins an environment's Python packages (through the node's package index, so
//! it works offline when the LAN has them) and records the lock in `aienv.toml` as `python.lock`.

use aienv_runtime::python::{find_uv, lock};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Node, NodeError, Result};

/// What `env lock` did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LockedEnv {
    pub workspace: String,
    pub environment: String,
    /// The lock file, relative to the workspace; `python.lock` names it now.
    pub file: String,
    /// How many packages it pins.
    pub packages: usize,
}

impl Node {
    pub async fn lock_environment(&self, ws: &str, name: &str) -> Result<LockedEnv> {
        let w = self.workspace(ws)?;
        let mut env = self.environment(ws, name)?;
        let Some(py) = env.python.clone() else {
            return Err(NodeError::InvalidRequest(format!(
                "environment {name:?} of {} has no `python` table: nothing to lock",
                w.name
            )));
        };
        let log = self
            .inner
            .data_dir
            .path()
            .join("locks")
            .join(format!("{}-{name}.log", w.id));
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| NodeError::io("cannot create the lock log's folder", e))?;
        }
        let _ = std::fs::remove_file(&log);
        let index = self.package_index_url();
        let locked = lock::lock(
            &w.path,
            name,
            &py,
            find_uv().as_deref(),
            index.as_deref(),
            &log,
        )
        .await?;
        if py.lock.as_deref() != Some(locked.file.as_str()) {
            env.python = Some(aienv_core::PythonSetup {
                lock: Some(locked.file.clone()),
                ..py
            });
            let (node, ws, name, env) = (self.clone(), ws.to_string(), name.to_string(), env);
            tokio::task::spawn_blocking(move || node.replace_environment(&ws, &name, env))
                .await
                .map_err(|e| NodeError::InvalidRequest(e.to_string()))??;
        }
        Ok(LockedEnv {
            workspace: w.name,
            environment: name.to_string(),
            file: locked.file,
            packages: locked.packages,
        })
    }
}
