//! The data dir: one node at a time (a lock file), and `node.json`, which tells client commands
//! on this machine where the node listens.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{NodeError, Result};

/// The file that holds the running node's address, for client commands.
pub const NODE_FILE: &str = "node.json";
const LOCK_FILE: &str = "node.lock";

/// What `node.json` records about a running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Base URL clients on this machine use, e.g. `http://127.0.0.1:47478`.
    pub url: String,
    pub pid: u32,
    pub name: String,
    pub version: String,
}

/// A data dir held by this process until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds an exclusive lock on `node.lock` for as long as this node runs; the OS releases it
    /// when the process dies, so a crashed node never blocks the next one.
    _lock: File,
}

impl DataDir {
    pub fn open(path: &Path) -> Result<DataDir> {
        create(path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| unusable(path, "it is not writable", e))?;
        if lock.try_lock().is_err() {
            let holder = read_record(path)
                .map(|r| format!(" (pid {}, {})", r.pid, r.url))
                .unwrap_or_default();
            return Err(NodeError::DataDir(format!(
                "another aienv node{holder} is already using data dir {}; stop it, or start this one with another --data-dir",
                path.display()
            )));
        }
        // A probe write: a read-only data dir should fail now, not at the first registry save.
        aienv_core::fsutil::atomic_write(&path.join(".write-probe"), b"ok")
            .and_then(|()| std::fs::remove_file(path.join(".write-probe")))
            .map_err(|e| unusable(path, "it is not writable", e))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_record(&self, record: &NodeRecord) -> Result<()> {
        let file = self.path.join(NODE_FILE);
        let bytes = serde_json::to_vec_pretty(record).expect("node record serialises");
        aienv_core::fsutil::atomic_write(&file, &bytes)
            .map_err(|e| NodeError::io(format!("cannot write {}", file.display()), e))
    }

    pub fn remove_record(&self) {
        let _ = std::fs::remove_file(self.path.join(NODE_FILE));
    }
}

/// Creates the data dir if needed, with an error that says what to do when that fails.
pub fn create(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| unusable(path, "cannot create it", e))
}

fn unusable(path: &Path, what: &str, e: std::io::Error) -> NodeError {
    NodeError::DataDir(format!(
        "cannot use data dir {}: {what} ({e}); pass --data-dir (or AIENV_DATA_DIR) with a writable folder",
        path.display()
    ))
}

/// The record of the node using `data_dir`, if one was written (it may be stale after a crash:
/// clients confirm by connecting).
pub fn read_record(data_dir: &Path) -> Option<NodeRecord> {
    let bytes = std::fs::read(data_dir.join(NODE_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
