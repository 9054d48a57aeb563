//! Re-indexing a share after some of its paths changed: only those are looked at again (a
//! changed folder is read whole). Every other entry comes from the previous list as it was, and
//! folders with nothing changed below them are not even visited. Which paths changed comes from
//! [`crate::watch::ShareWatch`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::ops::Range;
use std::path::Path;

use super::{EntryKind, FileEntry, FileManifest, HashCache, index, walk};
use crate::exclude::Filter;

/// The previous list, cut into folders, and what changed.
pub(super) struct Reuse<'a> {
    prev: &'a [FileEntry],
    /// Folder -> the range of `prev` below it (its whole subtree).
    below: HashMap<&'a str, Range<usize>>,
    /// Folder -> the names in it that changed (created, written, removed, renamed, chmod...).
    named: HashMap<&'a str, BTreeSet<&'a str>>,
    /// Folders with a changed name in or below them.
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

    /// The previous children of `folder` in order, and the names in it that changed (sorted;
    /// they are to be looked at again). `None` for a folder the previous list lacks.
    pub(super) fn children<'s>(
        &'s self,
        folder: &str,
    ) -> Option<(impl Iterator<Item = &'s FileEntry> + 's, Vec<&'s str>)> {
        let range = match folder {
            "" => 0..self.prev.len(),
            _ => self.below.get(folder)?.clone(),
        };
        let named = self
            .named
            .get(folder)
            .map(|n| n.iter().copied().collect())
            .unwrap_or_default();
        let mut at = range.start;
        let children = std::iter::from_fn(move || {
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
        });
        Some((children, named))
    }

    /// Whether `name` in `folder` changed.
    pub(super) fn named(&self, folder: &str, name: &str) -> bool {
        self.named.get(folder).is_some_and(|n| n.contains(name))
    }
}

/// Like [`index`], looking again only at the paths in `changed` (relative to `root`; a folder
/// named there is read whole). `None` when nothing changed. Falls back to a full walk if the
/// result would not be a sound list (a hard link whose file is gone).
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
    let mut named: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut touched: HashSet<&str> = HashSet::new();
    for c in changed.iter().filter(|c| !c.is_empty()) {
        let (folder, name) = c.rsplit_once('/').unwrap_or(("", c.as_str()));
        named.entry(folder).or_default().insert(name);
        let mut at = folder;
        touched.insert(at);
        while let Some((parent, _)) = at.rsplit_once('/') {
            touched.insert(parent);
            at = parent;
        }
        touched.insert("");
    }
    if named.is_empty() {
        return Ok(None); // Only the root folder itself (its time) changed.
    }
    let reuse = Reuse {
        prev: &prev.entries,
        below: subtrees(&prev.entries),
        named,
        touched,
    };
    let mut m = walk(root, workspace_id, filter, cache, Some(&reuse))?;
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
