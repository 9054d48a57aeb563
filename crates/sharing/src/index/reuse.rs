//! Re-indexing a share after some of its folders changed: only those folders are read again.
//! A folder above one keeps its previous listing (only its changed subfolders are walked), and
//! every other folder's entries come from the previous list as they were. Which folders changed
//! comes from [`crate::watch::ShareWatch`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::Range;
use std::path::Path;

use super::{EntryKind, FileEntry, FileManifest, HashCache, index, walk};
use crate::exclude::Filter;

/// The previous list, cut into folders, and which folders must be read again.
pub(super) struct Reuse<'a> {
    prev: &'a [FileEntry],
    /// Folder -> the range of `prev` below it (its whole subtree).
    below: HashMap<&'a str, Range<usize>>,
    /// Folders whose own listing may have changed.
    changed: &'a HashSet<String>,
    /// Changed folders and every folder above one.
    touched: HashSet<&'a str>,
}

impl Reuse<'_> {
    /// The previous entries below `folder`, if none of them can have changed.
    pub(super) fn unchanged_below(&self, folder: &str) -> Option<&[FileEntry]> {
        if self.touched.contains(folder) {
            return None;
        }
        self.below.get(folder).map(|r| &self.prev[r.clone()])
    }

    /// The previous children of `folder` (folders among them to be walked in turn), if only
    /// folders below it changed: its own listing is then as it was.
    pub(super) fn same_children<'s>(
        &'s self,
        folder: &str,
    ) -> Option<impl Iterator<Item = &'s FileEntry> + 's> {
        if self.changed.contains(folder) {
            return None;
        }
        let range = match folder {
            "" => 0..self.prev.len(),
            _ => self.below.get(folder)?.clone(),
        };
        let mut at = range.start;
        Some(std::iter::from_fn(move || {
            if at >= range.end {
                return None;
            }
            let e = &self.prev[at];
            at = match e.kind {
                // Past the child folder's own entries.
                EntryKind::Dir { .. } => self.below.get(e.path.as_str()).map_or(at + 1, |r| r.end),
                _ => at + 1,
            };
            Some(e)
        }))
    }
}

/// Like [`index`], reading again only the folders in `changed` (paths relative to `root`) and
/// those above them. `None` when nothing changed. Falls back to a full walk if the result would
/// not be a sound list (a hard link whose file is gone).
pub fn reindex(
    root: &Path,
    workspace_id: &str,
    filter: &Filter,
    cache: &HashCache,
    prev: &FileManifest,
    changed: &HashSet<String>,
) -> io::Result<Option<FileManifest>> {
    if changed.is_empty() {
        return Ok(None);
    }
    let mut touched: HashSet<&str> = HashSet::new();
    touched.insert("");
    for c in changed {
        let mut at = c.as_str();
        touched.insert(at);
        while let Some((parent, _)) = at.rsplit_once('/') {
            touched.insert(parent);
            at = parent;
        }
    }
    let reuse = Reuse {
        prev: &prev.entries,
        below: subtrees(&prev.entries),
        changed,
        touched,
    };
    tracing::debug!(touched = reuse.touched.len(), "reindex: planned");
    let mut m = walk(root, workspace_id, filter, cache, Some(&reuse))?;
    tracing::debug!("reindex: walked");
    // Folders not read again hold files and specials counted by the last full walk.
    m.skipped_special = prev.skipped_special;
    if !sound(&m.entries) {
        return index(root, workspace_id, filter, cache).map(Some);
    }
    Ok(Some(m))
}

/// For every folder of a list in walk order, the range of entries below it.
fn subtrees(entries: &[FileEntry]) -> HashMap<&str, Range<usize>> {
    let mut out = HashMap::new();
    let mut open: Vec<(&str, usize)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        while let Some(&(dir, start)) = open.last() {
            let inside = e.path.len() > dir.len()
                && e.path.starts_with(dir)
                && e.path.as_bytes()[dir.len()] == b'/';
            if inside {
                break;
            }
            out.insert(dir, start..i);
            open.pop();
        }
        if let EntryKind::Dir { .. } = e.kind {
            open.push((&e.path, i + 1));
        }
    }
    for (dir, start) in open {
        out.insert(dir, start..entries.len());
    }
    out
}

/// Every hard link names an earlier file of the list.
fn sound(entries: &[FileEntry]) -> bool {
    if !entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::Hardlink { .. }))
    {
        return true;
    }
    let mut files: HashSet<&str> = HashSet::new();
    for e in entries {
        match &e.kind {
            EntryKind::File { .. } => {
                files.insert(&e.path);
            }
            EntryKind::Hardlink { to } if !files.contains(to.as_str()) => return false,
            _ => {}
        }
    }
    true
}
