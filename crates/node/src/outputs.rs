//! A batch job's outputs (`outputs = ["out/", "metrics.json"]`) moved from the node that ran it
//! to the node that submitted it: a tar of those paths, unpacked on arrival into the workspace.
//!
//! Unpacking refuses what a hostile peer could send to write elsewhere: absolute paths, `..`,
//! links, and anything outside the listed outputs' folders.

use std::path::{Component, Path};

use crate::{NodeError, Result};

/// A tar of `outputs` (relative to `root`); missing ones are skipped (a job may not write all).
pub fn pack(root: &Path, outputs: &[String], out: impl std::io::Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    for o in outputs {
        let rel = Path::new(o.trim_end_matches('/'));
        if !safe(rel) {
            continue;
        }
        let path = root.join(rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => tar.append_dir_all(rel, &path)?,
            Ok(m) if m.is_file() => tar.append_path_with_name(&path, rel)?,
            _ => {}
        }
    }
    tar.finish()
}

/// Unpacks a tar of outputs into `dir`: plain files and folders only, inside `dir`.
pub fn unpack(bytes: &[u8], dir: &Path) -> Result<()> {
    let bad = |what: String| {
        NodeError::Fetch(format!(
            "the outputs the peer sent are refused ({what}); nothing more was written"
        ))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| NodeError::io(format!("cannot create {}", dir.display()), e))?;
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let rel = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if !safe(&rel) {
            return Err(bad(format!("the path {}", rel.display())));
        }
        let kind = entry.header().entry_type();
        let target = dir.join(&rel);
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| NodeError::io(format!("cannot create {}", target.display()), e))?;
        } else if kind.is_file() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| NodeError::io(format!("cannot create {}", parent.display()), e))?;
            }
            let mut file = std::fs::File::create(&target)
                .map_err(|e| NodeError::io(format!("cannot write {}", target.display()), e))?;
            std::io::copy(&mut entry, &mut file)
                .map_err(|e| NodeError::io(format!("cannot write {}", target.display()), e))?;
        } else {
            return Err(bad(format!(
                "{} is a link or a special file",
                rel.display()
            )));
        }
    }
    Ok(())
}

/// A relative path with no `..`, root or prefix.
fn safe(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_go_there_and_back_and_hostile_archives_are_refused() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("out/plots")).unwrap();
        std::fs::write(ws.path().join("out/plots/loss.csv"), "1,0.5\n").unwrap();
        std::fs::write(ws.path().join("metrics.json"), "{}").unwrap();
        let mut tar = Vec::new();
        let wanted = [
            "out/".to_string(),
            "metrics.json".into(),
            "missing".into(),
            "../x".into(),
        ];
        pack(ws.path(), &wanted, &mut tar).unwrap();
        let here = tempfile::tempdir().unwrap();
        unpack(&tar, here.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(here.path().join("out/plots/loss.csv")).unwrap(),
            "1,0.5\n"
        );
        assert!(here.path().join("metrics.json").exists());

        // A hand-made archive with `..` in a name.
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../escape.txt";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        evil.append(&h, &b"evil"[..]).unwrap();
        let evil = evil.into_inner().unwrap();
        let e = unpack(&evil, here.path()).unwrap_err().to_string();
        assert!(e.contains("refused"), "{e}");
        assert!(!here.path().parent().unwrap().join("escape.txt").exists());

        // A symlink.
        let mut link = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        link.append_link(&mut h, "out/l", "/etc/passwd").unwrap();
        let e = unpack(&link.into_inner().unwrap(), here.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("link"), "{e}");
    }
}
