//! Checking a file manifest from a peer before anything is written: the peer may be hostile.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};

use crate::index::{EntryKind, FileManifest};
use crate::transfer::TransferError;

/// A manifest with more entries than this is refused (a large real one has a few hundred
/// thousand).
pub const MAX_ENTRIES: usize = 1_000_000;

/// Checks every entry: safe relative paths, no duplicates, parents listed before children,
/// symlinks that stay inside the tree, hard links to earlier files, well-formed hashes.
pub fn check(m: &FileManifest) -> Result<(), TransferError> {
    let bad = |path: &str, why: &str| {
        TransferError::Hostile(format!("the manifest entry {path:?} {why}"))
    };
    if m.entries.len() > MAX_ENTRIES {
        return Err(TransferError::Hostile(format!(
            "the manifest has {} entries; more than {MAX_ENTRIES} is refused",
            m.entries.len()
        )));
    }
    let mut seen: HashSet<String> = HashSet::with_capacity(m.entries.len());
    let mut dirs: HashSet<&str> = HashSet::new();
    let mut files: HashMap<&str, ()> = HashMap::new();
    for e in &m.entries {
        let normal = normalise(&e.path)
            .ok_or_else(|| bad(&e.path, "is not a plain relative path inside the workspace"))?;
        if normal != e.path {
            return Err(bad(
                &e.path,
                "is not in normal form (it would collide with another name)",
            ));
        }
        if !seen.insert(normal.to_lowercase()) {
            return Err(bad(
                &e.path,
                "appears twice (names may not differ only in case either)",
            ));
        }
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !dirs.contains(parent)
        {
            return Err(bad(
                &e.path,
                "comes before its folder, or its folder is not a folder",
            ));
        }
        match &e.kind {
            EntryKind::Dir { .. } => {
                dirs.insert(&e.path);
            }
            // (A hash that is not one never gets this far: the list does not parse.)
            EntryKind::File { .. } => {
                files.insert(&e.path, ());
            }
            EntryKind::Symlink { target } => {
                if !link_stays_inside(&e.path, target) {
                    return Err(bad(
                        &e.path,
                        &format!("is a symlink to {target:?}, which leads outside the workspace"),
                    ));
                }
            }
            EntryKind::Hardlink { to } => {
                if !files.contains_key(to.as_str()) {
                    return Err(bad(
                        &e.path,
                        &format!(
                            "is a hard link to {to:?}, which is not an earlier file of the workspace"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `path` with `.` removed, or `None` if it is absolute, empty, climbs with `..`, or holds a
/// NUL or a backslash (a separator on Windows).
fn normalise(path: &str) -> Option<String> {
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether a symlink at `path` pointing to `target` is acceptable: a relative target must
/// resolve inside the tree (lexically). An absolute target names a path on the receiving machine
/// itself, the way every Python venv points at its interpreter (`bin/python3 ->
/// /usr/bin/python3.11`); it is recreated as it is. Nothing is ever written through a symlink:
/// links are made after every file, and a file's parents must be folders of the manifest.
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return !target.contains('\0');
    }
    if target.is_empty() || target.contains('\\') {
        return false;
    }
    let mut depth = path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::FileEntry;

    fn m(entries: Vec<FileEntry>) -> FileManifest {
        FileManifest {
            workspace_id: "w".into(),
            revision: "r".into(),
            files: 0,
            bytes: 0,
            skipped_special: 0,
            entries,
            substitutes: Default::default(),
        }
    }
    fn dir(p: &str) -> FileEntry {
        FileEntry {
            path: p.into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }
    }
    fn file(p: &str) -> FileEntry {
        FileEntry {
            path: p.into(),
            kind: EntryKind::File {
                size: 1,
                mode: 0o644,
                mtime_ns: 0,
                hash: crate::index::ContentHash::of(b"a"),
            },
        }
    }
    fn link(p: &str, t: &str) -> FileEntry {
        FileEntry {
            path: p.into(),
            kind: EntryKind::Symlink { target: t.into() },
        }
    }

    #[test]
    fn a_sound_manifest_passes() {
        check(&m(vec![
            dir("a"),
            file("a/x"),
            link("a/l", "x"),
            link("top", "a/x"),
            FileEntry {
                path: "a/h".into(),
                kind: EntryKind::Hardlink { to: "a/x".into() },
            },
        ]))
        .unwrap();
    }

    #[test]
    fn hostile_manifests_are_refused() {
        for (entries, why) in [
            (vec![file("../escape")], "plain relative"),
            (vec![file("/etc/passwd")], "plain relative"),
            (vec![dir("a"), file("a/./x")], "normal form"),
            (vec![file("x"), file("X")], "twice"),
            (vec![file("a/x")], "before its folder"),
            (vec![link("l", "../../etc")], "outside"),
            (vec![dir("a"), link("a/l", "../../x")], "outside"),
            (
                vec![FileEntry {
                    path: "h".into(),
                    kind: EntryKind::Hardlink {
                        to: "/etc/shadow".into(),
                    },
                }],
                "hard link",
            ),
            (vec![file("a\\..\\..\\x")], "plain relative"),
        ] {
            let err = check(&m(entries)).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
