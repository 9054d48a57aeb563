//! The node's instance id: stable across restarts, different on every machine and data dir.
//!
//! It is kept in `DATA_DIR/instance.json` with a fingerprint of the machine and the data dir's
//! path. A data dir copied to another machine (or to another folder, to run a second node) no
//! longer matches its fingerprint and gets a new id, so two nodes never announce the same one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{NodeError, Result};

const INSTANCE_FILE: &str = "instance.json";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct InstanceFile {
    id: String,
    /// A hash of the machine id (the id itself is not spread around).
    machine: String,
    data_dir: PathBuf,
}

/// The id for the node using `data_dir`, created (or renewed after a copy) as needed.
pub fn load_or_create(data_dir: &Path) -> Result<String> {
    let file = data_dir.join(INSTANCE_FILE);
    let here = InstanceFile {
        id: String::new(),
        machine: machine_fingerprint(),
        data_dir: std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
    };
    if let Some(kept) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<InstanceFile>(&b).ok())
    {
        if kept.machine == here.machine && kept.data_dir == here.data_dir && !kept.id.is_empty() {
            return Ok(kept.id);
        }
        tracing::warn!(
            "this data dir was copied from another machine or folder (instance {}); this node takes a new instance id so the two do not collide",
            kept.id
        );
    }
    let fresh = InstanceFile {
        id: uuid::Uuid::new_v4().simple().to_string(),
        ..here
    };
    let bytes = serde_json::to_vec_pretty(&fresh).expect("instance file serialises");
    aienv_core::fsutil::atomic_write(&file, &bytes)
        .map_err(|e| NodeError::io(format!("cannot write {}", file.display()), e))?;
    Ok(fresh.id)
}

fn machine_fingerprint() -> String {
    let raw = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(aienv_core::dirs::host_name);
    let hash = raw.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_stable_and_a_copied_data_dir_gets_a_new_one() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        std::fs::create_dir_all(&a).unwrap();
        let id = load_or_create(&a).unwrap();
        assert_eq!(load_or_create(&a).unwrap(), id, "stable across restarts");

        let b = root.path().join("b");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::copy(a.join(INSTANCE_FILE), b.join(INSTANCE_FILE)).unwrap();
        let copied = load_or_create(&b).unwrap();
        assert_ne!(copied, id, "a copy elsewhere must not announce the same id");
        assert_eq!(load_or_create(&b).unwrap(), copied, "and keeps its new id");

        // The same for a data dir that arrives from another machine.
        let mut f: InstanceFile =
            serde_json::from_slice(&std::fs::read(a.join(INSTANCE_FILE)).unwrap()).unwrap();
        f.machine = "another-machine".into();
        std::fs::write(a.join(INSTANCE_FILE), serde_json::to_vec(&f).unwrap()).unwrap();
        assert_ne!(load_or_create(&a).unwrap(), id);
    }
}
