//! Workspace sizes on disk, measured at most once a minute per folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct SizeCache {
    sizes: Mutex<HashMap<PathBuf, (u64, Instant)>>,
}

impl SizeCache {
    /// Bytes of the regular files under `dir` (or of `dir` itself, a file; symlinks are not followed, hard links counted
    /// once per name). Blocking: call it off the async workers.
    pub fn size_of(&self, dir: &Path) -> u64 {
        if let Some((size, at)) = self.sizes.lock().ok().and_then(|m| m.get(dir).copied())
            && at.elapsed() < MAX_AGE
        {
            return size;
        }
        let size = walk(dir);
        if let Ok(mut m) = self.sizes.lock() {
            m.insert(dir.to_path_buf(), (size, Instant::now()));
        }
        size
    }
}

fn walk(dir: &Path) -> u64 {
    if let Ok(m) = std::fs::symlink_metadata(dir)
        && m.is_file()
    {
        return m.len();
    }
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                total += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}
