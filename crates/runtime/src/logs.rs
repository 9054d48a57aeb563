//! Run logs: one file per run that everything the run starts writes to directly.
//!
//! The processes hold the file themselves (opened for append), so they keep logging while the
//! node is down; the node only reads: it follows the file to stream new lines, and rotates it by
//! copy-and-truncate when it grows too big (append mode makes the writers continue at the new
//! end). A few lines written during the copy may be lost, as with logrotate's `copytruncate`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A log is rotated once it is bigger than this; one older file (`.1`) is kept.
pub const ROTATE_AT: u64 = 16 << 20;
/// The most a follower reads in one go, so one chatty run cannot stall the others.
const READ_CAP: u64 = 1 << 20;

/// Opens (creating) a log for appending, for a child's stdout and stderr.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The last `n` lines of a log (looking at most at its last 1 MiB).
pub fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(READ_CAP)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect())
}

/// The last `n` lines of a log, indented, for an error message that quotes them (or a note that
/// the log is empty), so that a failed start says what was printed without opening the log.
pub fn quote_tail(path: &Path, n: usize) -> String {
    let lines = tail(path, n).unwrap_or_default();
    if lines.is_empty() {
        return "(the log is empty)".into();
    }
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Copies a big log to `NAME.1` and empties it. Returns whether it rotated.
pub fn rotate_if_big(path: &Path, limit: u64) -> std::io::Result<bool> {
    if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) <= limit {
        return Ok(false);
    }
    std::fs::copy(path, old_path(path))?;
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

fn old_path(path: &Path) -> PathBuf {
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    PathBuf::from(old)
}

fn rotated_at(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(old_path(path))
        .and_then(|m| m.modified())
        .ok()
}

/// Reads what was appended to a log since the last call, as whole lines.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// When `NAME.1` was last written: a change means the log was rotated (copy-truncate keeps
    /// the file, so its length alone cannot tell when it regrew past the old offset).
    rotated_at: Option<std::time::SystemTime>,
}

impl Follower {
    /// Follows from the current end (`from_start` = false) or from the beginning.
    pub fn new(path: PathBuf, from_start: bool) -> Self {
        let offset = if from_start {
            0
        } else {
            std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        };
        let rotated_at = rotated_at(&path);
        Follower {
            path,
            offset,
            partial: Vec::new(),
            rotated_at,
        }
    }

    /// New complete lines; a line still being written waits for its newline.
    pub fn read_new(&mut self) -> std::io::Result<Vec<String>> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let rotated = rotated_at(&self.path);
        if len < self.offset || rotated != self.rotated_at {
            self.rotated_at = rotated;
            // Rotated (or truncated): start over at the new beginning.
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        (&mut f).take(READ_CAP).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_nl + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        Ok(String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_appends_partial_lines_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log");
        let mut w = open_append(&path).unwrap();
        writeln!(w, "before").unwrap();
        let mut f = Follower::new(path.clone(), false);
        assert!(f.read_new().unwrap().is_empty());
        write!(w, "one\ntw").unwrap();
        assert_eq!(f.read_new().unwrap(), ["one"]);
        writeln!(w, "o").unwrap();
        assert_eq!(f.read_new().unwrap(), ["two"]);
        assert!(rotate_if_big(&path, 4).unwrap());
        assert!(dir.path().join("run.log.1").exists());
        writeln!(w, "after rotation").unwrap();
        assert_eq!(f.read_new().unwrap(), ["after rotation"]);
        assert_eq!(tail(&path, 5).unwrap(), ["after rotation"]);
        assert_eq!(
            tail(&dir.path().join("run.log.1"), 2).unwrap(),
            ["one", "two"]
        );
    }
}
