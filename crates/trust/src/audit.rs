//! The audit log: one JSON line per thing a peer asked of this node's shares (listing files,
//! cloning, an image, an access request) and whether it got it, in `DATA_DIR/audit.jsonl`.
//! Rotated to `audit.jsonl.1` past 16 MiB, so it is bounded without losing the recent past.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pins::lock;

const FILE: &str = "audit.jsonl";
const ROTATE_AT: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub time_ms: u64,
    /// Where the request came from (`IP:PORT`), or `local` for in-process callers.
    pub from: String,
    /// The node id and name the peer gave (they are claims: the address is the fact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_name: Option<String>,
    /// The SHA-256 of the certificate the peer presented, if any, and whether it is the
    /// certificate this node knows for the node the peer names (then `peer_id` is a fact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_cert: Option<String>,
    #[serde(default)]
    pub peer_verified: bool,
    pub workspace: String,
    /// `files`, `clone`, `image`, `access_request`, `token_created`, `token_revoked`.
    pub action: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// Why it was refused, which token let it in, how many bytes went out...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    write: Mutex<()>,
}

impl Audit {
    pub fn new(data_dir: &Path) -> Audit {
        Audit {
            path: data_dir.join(FILE),
            write: Mutex::new(()),
        }
    }

    /// Appends a record. A failure is logged, not returned: the request it describes is not
    /// refused because the log could not be written (the disk may be full).
    pub fn record(&self, record: &AuditRecord) {
        let _guard = lock(&self.write);
        if let Err(e) = self.append(record) {
            tracing::warn!("cannot write the audit log {}: {e}", self.path.display());
        }
    }

    fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > ROTATE_AT) {
            std::fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?
            .write_all(&line)
    }

    /// The last `limit` records, newest first. Lines that do not parse are skipped.
    pub fn recent(&self, limit: usize) -> Vec<AuditRecord> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str(l).ok())
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::new(dir.path());
        for (i, allowed) in [(1, true), (2, false)] {
            audit.record(&AuditRecord {
                time_ms: i,
                from: "127.0.0.1:5000".into(),
                peer_id: None,
                peer_name: Some("laptop".into()),
                peer_cert: None,
                peer_verified: false,
                workspace: "proj".into(),
                action: "clone".into(),
                allowed,
                detail: None,
            });
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap()
            .write_all(b"garbage\n")
            .unwrap();
        let got = Audit::new(dir.path()).recent(10);
        assert_eq!(got.iter().map(|r| r.time_ms).collect::<Vec<_>>(), [2, 1]);
        assert!(!got[0].allowed);
    }
}
