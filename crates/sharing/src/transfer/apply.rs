//! Bringing an earlier clone up to date in place (a pull). The files that changed on the source
//! were streamed into staging and verified; [`apply`] moves each over the clone with one rename,
//! removes what the source removed, and makes the folders and links that changed.
//!
//! Nothing edited here is lost. The clone's file list from the last pull says what each file was
//! when it arrived (size and modification time); a file that no longer matches was edited here.
//! If the source changed or removed it too, the edited copy is kept beside it as
//! `NAME.local-STAMP` (the way Syncthing keeps conflicting copies); otherwise it is not touched.
//!
//! An apply can stop anywhere (a crash, a power cut) and be run again with the same inputs: a
//! file still in staging is still to be moved, and one already moved is not in staging any more.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::index::{EntryKind, FileManifest, hash_file};
use crate::transfer::TransferError;
use crate::transfer::unpack::finish_file;

/// What an apply did that the user should hear about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// One sentence per edit made here that the apply kept.
    pub kept: Vec<String>,
}

/// Updates `target` (the clone as `prev` describes it) to `new`, taking changed files from
/// `staging`. `stamp` names kept copies (`NAME.local-STAMP`).
pub fn apply(
    target: &Path,
    staging: &Path,
    prev: &FileManifest,
    new: &FileManifest,
    stamp: &str,
) -> Result<Applied, TransferError> {
    let mut a = Apply {
        target,
        stamp,
        prev: prev
            .entries
            .iter()
            .map(|e| (e.path.as_str(), &e.kind))
            .collect(),
        kept: Vec::new(),
    };
    let next: HashMap<&str, &EntryKind> = new
        .entries
        .iter()
        .map(|e| (e.path.as_str(), &e.kind))
        .collect();

    // 1. What the source removed (or turned into something else), children before parents.
    for e in prev.entries.iter().rev() {
        let now = next.get(e.path.as_str());
        if now.is_some_and(|k| same_type(k, &e.kind)) {
            continue;
        }
        a.remove(&e.path, &e.kind, now.is_some())?;
    }
    // 2. New folders, parents first. (Folders the last pull made are there; one removed here
    // since is made again when a file goes into it.)
    for e in &new.entries {
        if let EntryKind::Dir { .. } = e.kind {
            if matches!(a.prev.get(e.path.as_str()), Some(EntryKind::Dir { .. })) {
                continue;
            }
            let p = target.join(&e.path);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => a.keep_aside(&e.path, "the source has a folder there")?,
                Err(_) => {}
            }
            std::fs::create_dir(&p).map_err(|err| io_err("create", &p, err))?;
        }
    }
    // 3. Files: the changed ones from staging, one rename each; metadata of the others.
    let mut replaced: HashSet<&str> = HashSet::new();
    for e in &new.entries {
        let EntryKind::File {
            size,
            mode,
            mtime_ns,
            hash,
        } = &e.kind
        else {
            continue;
        };
        let before = a.prev.get(e.path.as_str()).copied();
        if before == Some(&e.kind) {
            continue; // Unchanged on the source: nothing was staged, nothing to do.
        }
        let staged = staging.join(&e.path);
        let p = target.join(&e.path);
        if std::fs::symlink_metadata(&staged).is_ok_and(|m| m.is_file()) {
            if std::fs::symlink_metadata(&p).is_ok() && !a.unchanged_here(&e.path, before) {
                a.keep_aside(&e.path, "the source changed it too")?;
            }
            move_into_place(&staged, &p)?;
            replaced.insert(&e.path);
        } else {
            // Same content here already (unchanged on the source, or verified earlier): only
            // its mode or time may differ. An edit made here keeps its own.
            let content_is_new = a.unchanged_here(&e.path, before)
                && matches!(before, Some(EntryKind::File { hash: h, .. }) if h == hash)
                || std::fs::metadata(&p).is_ok_and(|m| m.len() == *size)
                    && hash_file(&p).is_ok_and(|h| &h == hash);
            if content_is_new && let Ok(f) = std::fs::File::open(&p) {
                finish_file(&f, *mode, *mtime_ns)
                    .map_err(|err| io_err("set the mode and time of", &p, err))?;
            }
        }
    }
    // 4. Links: new or changed ones, and hard links whose file was just replaced.
    for e in &new.entries {
        let before = a.prev.get(e.path.as_str()).copied();
        let p = target.join(&e.path);
        match &e.kind {
            EntryKind::Symlink { target: to } => {
                if before == Some(&e.kind)
                    || std::fs::read_link(&p).is_ok_and(|t| t == Path::new(to))
                {
                    continue;
                }
                a.clear(&e.path, before)?;
                symlink(to, &p).map_err(|err| io_err("create the symlink", &p, err))?;
            }
            EntryKind::Hardlink { to } => {
                if before == Some(&e.kind) && !replaced.contains(to.as_str()) {
                    continue;
                }
                a.clear(&e.path, before)?;
                std::fs::hard_link(target.join(to), &p)
                    .map_err(|err| io_err("create the hard link", &p, err))?;
            }
            _ => {}
        }
    }
    // 5. Folder modes, last: a read-only folder must not stop the moves into it.
    #[cfg(unix)]
    for e in new.entries.iter().rev() {
        if let EntryKind::Dir { mode } = e.kind
            && a.prev.get(e.path.as_str()).copied() != Some(&e.kind)
        {
            let p = target.join(&e.path);
            std::fs::set_permissions(
                &p,
                std::os::unix::fs::PermissionsExt::from_mode((mode & 0o777) | 0o700),
            )
            .map_err(|err| io_err("set the mode of", &p, err))?;
        }
    }
    Ok(Applied { kept: a.kept })
}

struct Apply<'a> {
    target: &'a Path,
    stamp: &'a str,
    prev: HashMap<&'a str, &'a EntryKind>,
    kept: Vec<String>,
}

impl Apply<'_> {
    /// Whether the thing at `path` is still what the last pull left there.
    fn unchanged_here(&self, path: &str, before: Option<&EntryKind>) -> bool {
        let p = self.target.join(path);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            return false;
        };
        let file_as = |k: Option<&EntryKind>| match k {
            Some(EntryKind::File { size, mtime_ns, .. }) => {
                meta.is_file() && meta.len() == *size && mtime_of(&meta) == *mtime_ns
            }
            _ => false,
        };
        match before {
            Some(EntryKind::Dir { .. }) => meta.is_dir(),
            Some(k @ EntryKind::File { .. }) => file_as(Some(k)),
            // A hard link shares its file's size and time.
            Some(EntryKind::Hardlink { to }) => file_as(self.prev.get(to.as_str()).copied()),
            Some(EntryKind::Symlink { target }) => {
                meta.is_symlink() && std::fs::read_link(&p).is_ok_and(|t| t == Path::new(target))
            }
            None => false,
        }
    }

    /// Removes what the source removed at `path`; an edit made here stays (in place, or beside
    /// it when the source needs the name for something else).
    fn remove(
        &mut self,
        path: &str,
        before: &EntryKind,
        name_needed: bool,
    ) -> Result<(), TransferError> {
        let p = self.target.join(path);
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            return Ok(()); // Gone already.
        };
        let is_dir = matches!(before, EntryKind::Dir { .. });
        if meta.is_dir() != is_dir {
            // Something else stands there now: the source's new entry (a repeated apply), or
            // the user's; the steps below sort out which.
            return Ok(());
        }
        if is_dir {
            return match std::fs::remove_dir(&p) {
                Ok(()) => Ok(()),
                Err(_) if name_needed => self.keep_aside(path, "the source has a file there"),
                Err(_) => {
                    self.kept.push(format!(
                        "kept the folder {path}: the source removed it, but it holds files made here"
                    ));
                    Ok(())
                }
            };
        }
        if self.unchanged_here(path, Some(before)) {
            return std::fs::remove_file(&p).map_err(|err| io_err("remove", &p, err));
        }
        if name_needed {
            self.keep_aside(path, "the source replaced it")
        } else {
            self.kept.push(format!(
                "kept {path}: the source removed it, but it was edited here"
            ));
            Ok(())
        }
    }

    /// Makes room at `path` for a link: removes what the last pull left there, keeps aside an
    /// edit made here.
    fn clear(&mut self, path: &str, before: Option<&EntryKind>) -> Result<(), TransferError> {
        let p = self.target.join(path);
        if std::fs::symlink_metadata(&p).is_err() {
            return Ok(());
        }
        if self.unchanged_here(path, before)
            && !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
        {
            return std::fs::remove_file(&p).map_err(|err| io_err("remove", &p, err));
        }
        self.keep_aside(path, "the source changed it too")
    }

    /// Renames what is at `path` to `path.local-STAMP` (or `-2`, `-3`... if taken).
    fn keep_aside(&mut self, path: &str, why: &str) -> Result<(), TransferError> {
        let p = self.target.join(path);
        let aside = free_name(&p, self.stamp);
        std::fs::rename(&p, &aside).map_err(|err| io_err("keep aside", &p, err))?;
        let name = aside
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.kept.push(format!(
            "{path} was edited here and {why}: your copy is kept as {name}"
        ));
        Ok(())
    }
}

/// Renames a staged file over its place in the clone, making its folder again if it was removed
/// here since the last pull.
fn move_into_place(staged: &Path, p: &Path) -> Result<(), TransferError> {
    match std::fs::rename(staged, p) {
        Err(e)
            if e.kind() == io::ErrorKind::NotFound && p.parent().is_some_and(|d| !d.exists()) =>
        {
            let dir = p.parent().expect("checked");
            std::fs::create_dir_all(dir).map_err(|err| io_err("create", dir, err))?;
            std::fs::rename(staged, p).map_err(|err| io_err("move into place", p, err))
        }
        other => other.map_err(|err| io_err("move into place", p, err)),
    }
}

fn free_name(p: &Path, stamp: &str) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidate = p.with_file_name(format!("{name}.local-{stamp}"));
    let mut n = 2;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        candidate = p.with_file_name(format!("{name}.local-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

fn same_type(a: &EntryKind, b: &EntryKind) -> bool {
    let file = |k: &EntryKind| matches!(k, EntryKind::File { .. } | EntryKind::Hardlink { .. });
    std::mem::discriminant(a) == std::mem::discriminant(b) || file(a) && file(b)
}

fn mtime_of(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i64)
}

fn io_err(what: &str, p: &Path, e: io::Error) -> TransferError {
    TransferError::io(format!("cannot {what} {}", p.display()), e)
}

#[cfg(unix)]
fn symlink(target: &str, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}
#[cfg(not(unix))]
fn symlink(target: &str, _at: &Path) -> io::Result<()> {
    Err(io::Error::other(format!(
        "symlinks ({target}) are not supported on this platform yet"
    )))
}

/// `YYYYMMDD-HHMMSS` in UTC, for the names of kept copies.
pub fn stamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: days since 1970-01-01 to a Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
