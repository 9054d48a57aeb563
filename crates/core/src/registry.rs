//! The registry: which workspace folders this node knows, kept in `DATA_DIR/registry.json`.
//!
//! Only ids and paths live here; everything else is read from each workspace's manifest. Writes
//! are atomic ([`crate::fsutil::atomic_write`]), so a crash mid-write never loses the registry. A
//! registry that cannot be read is never overwritten: a corrupt one is moved aside (and the node
//! starts empty, saying where the old file is); one written by a newer aienv stops the node.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// The registry file's name in the data dir.
pub const REGISTRY_FILE: &str = "registry.json";

/// The format this build writes, and the newest it reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub id: String,
    pub path: PathBuf,
    /// When it was registered, in seconds since the Unix epoch.
    pub added: u64,
}

impl RegistryEntry {
    pub fn new(id: String, path: PathBuf) -> Self {
        let added = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        RegistryEntry { id, path, added }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistryFile {
    format: u32,
    workspaces: Vec<RegistryEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "{file} was written by a newer aienv (registry format {found}; this aienv reads up to {FORMAT}). \
         It was left untouched: run the newer aienv, or move the file away to start with an empty registry"
    )]
    Newer { file: PathBuf, found: u64 },
    #[error("cannot read the registry {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write the registry {file}: {source} (is the data dir writable and the disk not full?)"
    )]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// The loaded registry and how it was found.
#[derive(Debug)]
pub struct Loaded {
    pub entries: Vec<RegistryEntry>,
    /// Set when a corrupt registry was moved aside: what happened and what to do.
    pub warning: Option<String>,
}

/// Loads `DATA_DIR/registry.json`. A missing file is an empty registry.
pub fn load(data_dir: &Path) -> Result<Loaded, RegistryError> {
    let file = data_dir.join(REGISTRY_FILE);
    remove_stale_temp_files(data_dir);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Loaded {
                entries: Vec::new(),
                warning: None,
            });
        }
        Err(source) => return Err(RegistryError::Read { file, source }),
    };
    match decode(&bytes) {
        Ok(entries) => Ok(Loaded {
            entries,
            warning: None,
        }),
        Err(Decode::Newer(found)) => Err(RegistryError::Newer { file, found }),
        Err(Decode::Corrupt(why)) => {
            let aside = set_aside(&file).map_err(|source| RegistryError::Read {
                file: file.clone(),
                source,
            })?;
            Ok(Loaded {
                entries: Vec::new(),
                warning: Some(format!(
                    "the registry {} could not be read ({why}); it was kept as {} and this node \
                     starts with no workspaces. Re-add them with `aienv workspace add PATH`, or \
                     repair the kept file and put it back while the node is stopped",
                    file.display(),
                    aside.display()
                )),
            })
        }
    }
}

/// Writes the registry atomically.
pub fn save(data_dir: &Path, entries: &[RegistryEntry]) -> Result<(), RegistryError> {
    save_with(data_dir, entries, |_| Ok(()))
}

/// [`save`] with a hook before the final rename (tests simulate crashes with it).
pub fn save_with(
    data_dir: &Path,
    entries: &[RegistryEntry],
    before_rename: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), RegistryError> {
    let file = data_dir.join(REGISTRY_FILE);
    let body = RegistryFile {
        format: FORMAT,
        workspaces: entries.to_vec(),
    };
    let mut bytes = serde_json::to_vec_pretty(&body).expect("registry serialises");
    bytes.push(b'\n');
    fsutil::atomic_write_with(&file, &bytes, before_rename)
        .map_err(|source| RegistryError::Write { file, source })
}

enum Decode {
    Newer(u64),
    Corrupt(String),
}

fn decode(bytes: &[u8]) -> Result<Vec<RegistryEntry>, Decode> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Decode::Corrupt(e.to_string()))?;
    let format = value
        .get("format")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Decode::Corrupt("no \"format\" number".into()))?;
    if format > u64::from(FORMAT) {
        return Err(Decode::Newer(format));
    }
    let file: RegistryFile =
        serde_json::from_value(value).map_err(|e| Decode::Corrupt(e.to_string()))?;
    Ok(file.workspaces)
}

/// Renames a bad registry to `registry.json.corrupt-SECONDS` (never over an existing file).
fn set_aside(file: &Path) -> std::io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut n = 0;
    loop {
        let suffix = if n == 0 {
            format!("corrupt-{secs}")
        } else {
            format!("corrupt-{secs}-{n}")
        };
        let aside = file.with_file_name(format!("{REGISTRY_FILE}.{suffix}"));
        if !aside.exists() {
            std::fs::rename(file, &aside)?;
            return Ok(aside);
        }
        n += 1;
    }
}

/// A crash between writing the temp file and renaming it leaves the temp file behind; the real
/// registry is intact, so the leftover can go.
fn remove_stale_temp_files(data_dir: &Path) {
    let Ok(dir) = std::fs::read_dir(data_dir) else {
        return;
    };
    let prefix = format!(".{REGISTRY_FILE}.tmp-");
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
