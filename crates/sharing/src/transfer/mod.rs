//! Moving a workspace between nodes: the sender packs requested files as a tar stream
//! (optionally zstd), the receiver checks the manifest ([`plan`]), streams what it lacks into a
//! staging folder, and verifies every byte against its BLAKE3 hash as it writes ([`unpack`]).
//! [`client`] runs the receiving side of one clone; [`apply`] brings an earlier clone up to date
//! in place (a pull).

pub mod apply;
pub mod client;
pub mod pack;
pub mod plan;
pub mod unpack;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/shares/{workspace}/stream`: which files of a manifest revision to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// The manifest revision the indices refer to; a share that changed since answers 409.
    pub revision: String,
    /// Half-open ranges `[start, end)` of entry indices; each entry must be a file.
    pub ranges: Vec<[u32; 2]>,
    /// Compress the stream with zstd (worth it on links slower than zstd itself).
    #[serde(default)]
    pub zstd: bool,
}

impl StreamRequest {
    /// Ranges from sorted indices.
    pub fn from_indices(revision: &str, indices: &[usize], zstd: bool) -> StreamRequest {
        let mut ranges: Vec<[u32; 2]> = Vec::new();
        for &i in indices {
            let i = i as u32;
            match ranges.last_mut() {
                Some(r) if r[1] == i => r[1] = i + 1,
                _ => ranges.push([i, i + 1]),
            }
        }
        StreamRequest {
            revision: revision.to_string(),
            ranges,
            zstd,
        }
    }

    /// The indices, in order, or `None` if a range is malformed or past `len`.
    pub fn indices(&self, len: usize) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        let mut last = None;
        for [a, b] in &self.ranges {
            let (a, b) = (*a as usize, *b as usize);
            if a >= b || b > len || last.is_some_and(|l| a < l) {
                return None;
            }
            out.extend(a..b);
            last = Some(b);
        }
        Some(out)
    }
}

/// Why a transfer failed. Every case leaves the staging folder to the caller to clean or resume.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The peer sent something that breaks the rules (a bad path, a wrong size or hash...).
    #[error("the peer sent a bad clone: {0}; nothing was written outside the staging folder")]
    Hostile(String),
    #[error("{0}")]
    Peer(String),
    /// The peer refused access (`code` is its error code: `token_required`, `token_revoked`...).
    #[error("{message}")]
    Denied { code: String, message: String },
    /// The share changed while cloning; the caller fetches the manifest again.
    #[error("the share changed while it was being cloned")]
    Changed,
    #[error("the clone was cancelled")]
    Cancelled,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl TransferError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        // A full disk deserves a sentence of its own.
        if source.raw_os_error() == Some(28) {
            return TransferError::Io {
                context: format!(
                    "{context}: the disk is full (free some space, then clone again to resume)"
                ),
                source,
            };
        }
        TransferError::Io { context, source }
    }
}
