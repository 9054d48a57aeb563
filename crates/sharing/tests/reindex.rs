//! A share's file list kept current by a watcher: after real edits, a list that read only the
//! changed folders is the list a full walk makes, and an unchanged share is not read at all.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use aienv_core::Sharing;
use aienv_sharing::index::{EntryKind, HashCache, index};
use aienv_sharing::watch::{Changes, ShareWatch};
use aienv_sharing::{Filter, ShareIndex};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("ws");
    write(&r, "aienv.toml", "[workspace]\nname = \"x\"\n");
    for i in 0..20 {
        write(
            &r,
            &format!("venv/lib/pkg{i}/__init__.py"),
            &format!("v = {i}\n"),
        );
    }
    write(&r, "models/w.bin", "weights");
    write(&r, "src/deep/er/train.py", "print(1)\n");
    fs::hard_link(r.join("models/w.bin"), r.join("models/w2.bin")).unwrap();
    std::os::unix::fs::symlink("src/deep/er/train.py", r.join("run.py")).unwrap();
    d
}

fn full(root: &Path) -> aienv_sharing::FileManifest {
    let filter = Filter::new(root, &Sharing::default()).unwrap();
    index(root, "ws", &filter, &HashCache::default()).unwrap()
}

#[test]
fn edits_are_seen_and_only_changed_paths_are_read() {
    let d = tree();
    let root = d.path().join("ws");
    let share = ShareIndex::new(&root, &d.path().join("scratch"));
    let filter = Filter::new(&root, &Sharing::default()).unwrap();
    let list = || share.list("ws", &filter, "k", |_| {}).unwrap();

    let first = list();
    assert_eq!(first.entries, full(&root).entries);
    // Nothing changed: the same list, not a new walk.
    assert!(
        Arc::ptr_eq(&first, &list()),
        "an unchanged share is not walked again"
    );

    // Edits all over the tree, listed at once (no pause: the barrier makes them count).
    write(&root, "src/deep/er/train.py", "print(2)\n");
    write(&root, "venv/lib/pkg3/new.py", "n = 1\n");
    fs::remove_dir_all(root.join("venv/lib/pkg7")).unwrap();
    write(&root, "data/fresh/a.csv", "1\n");
    fs::remove_file(root.join("run.py")).unwrap();
    std::os::unix::fs::symlink("models/w.bin", root.join("run.py")).unwrap();
    fs::remove_file(root.join("models/w.bin")).unwrap();
    let second = list();
    let walked = full(&root);
    assert_eq!(
        second.entries, walked.entries,
        "the kept list is the walked list"
    );
    assert_eq!(second.revision, walked.revision);
    // The hard link's first name went: its other name is now the file.
    let w2 = second
        .entries
        .iter()
        .find(|e| e.path == "models/w2.bin")
        .unwrap();
    assert!(matches!(w2.kind, EntryKind::File { .. }), "{w2:?}");
}

#[test]
fn the_watcher_names_the_paths_that_changed() {
    let d = tree();
    let root = d.path().join("ws");
    let watch = ShareWatch::start(&root, &d.path().join("scratch"));
    assert_eq!(
        watch.take(),
        Changes::Everything,
        "the first list walks it all"
    );
    assert_eq!(watch.take(), Changes::Paths(Default::default()));
    write(&root, "venv/lib/pkg1/__init__.py", "changed\n");
    write(&root, "new/folder/x", "x");
    let Changes::Paths(changed) = watch.take() else {
        panic!("paths expected")
    };
    for p in ["venv/lib/pkg1/__init__.py", "new"] {
        assert!(changed.contains(p), "{p:?} in {changed:?}");
    }
    assert!(
        !changed.iter().any(|p| p.starts_with("models")),
        "{changed:?}"
    );
    watch.forget();
    assert_eq!(watch.take(), Changes::Everything, "after a failed index");
}

#[test]
fn another_filter_walks_everything_again() {
    let d = tree();
    let root = d.path().join("ws");
    let share = ShareIndex::new(&root, &d.path().join("scratch"));
    let all = Filter::new(&root, &Sharing::default()).unwrap();
    let first = share.list("ws", &all, "all", |_| {}).unwrap();
    assert!(first.entries.iter().any(|e| e.path.starts_with("venv")));
    let fewer = Filter::new(
        &root,
        &Sharing {
            exclude: vec!["venv/".into()],
            ..Sharing::default()
        },
    )
    .unwrap();
    let second = share.list("ws", &fewer, "no venv", |_| {}).unwrap();
    assert!(!second.entries.iter().any(|e| e.path.starts_with("venv")));
}

#[test]
fn a_reindex_looks_at_the_named_paths_and_takes_the_rest_as_they_were() {
    let d = tree();
    let root = d.path().join("ws");
    let filter = Filter::new(&root, &Sharing::default()).unwrap();
    let cache = HashCache::default();
    let before = index(&root, "ws", &filter, &cache).unwrap();
    write(
        &root,
        "venv/lib/pkg1/__init__.py",
        "edited, but not named\n",
    );
    write(&root, "src/deep/er/train.py", "print('named')\n");
    write(&root, "src/deep/er/other.py", "not named either\n");
    write(&root, "src/deep/er/later.py", "new, named\n");
    fs::create_dir_all(root.join("moved/in")).unwrap();
    write(&root, "moved/in/deep.txt", "a folder named is read whole\n");
    let named = [
        "src/deep/er/train.py",
        "src/deep/er/later.py",
        "moved",
        "models/w2.bin",
    ]
    .map(String::from)
    .into();
    let after = aienv_sharing::index::reindex(&root, "ws", &filter, &cache, &before, &named)
        .unwrap()
        .expect("a folder was named");
    let kind = |m: &aienv_sharing::FileManifest, p: &str| {
        m.entries.iter().find(|e| e.path == p).unwrap().kind.clone()
    };
    assert_eq!(
        kind(&after, "venv/lib/pkg1/__init__.py"),
        kind(&before, "venv/lib/pkg1/__init__.py"),
        "a folder not named is not read"
    );
    assert_ne!(
        kind(&after, "src/deep/er/train.py"),
        kind(&before, "src/deep/er/train.py")
    );
    assert!(
        after
            .entries
            .iter()
            .all(|e| e.path != "src/deep/er/other.py"),
        "a name not named is not looked for"
    );
    for p in ["src/deep/er/later.py", "moved/in/deep.txt"] {
        assert!(after.entries.iter().any(|e| e.path == p), "{p}");
    }
    // The whole list is still in walk order (a full walk of the same tree, less other.py).
    let mut walked = full(&root).entries;
    walked.retain(|e| e.path != "src/deep/er/other.py");
    let paths =
        |v: &[aienv_sharing::FileEntry]| v.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&after.entries), paths(&walked));
    let nothing = Default::default();
    assert!(
        aienv_sharing::index::reindex(&root, "ws", &filter, &cache, &before, &nothing)
            .unwrap()
            .is_none()
    );
}

/// Rounds of random edits (files written, appended, removed, renamed, chmod'ed; folders made,
/// removed, renamed into place): after each, the kept list is exactly what a full walk lists.
#[test]
fn random_edits_never_leave_the_kept_list_behind() {
    use std::os::unix::fs::PermissionsExt;
    let d = tree();
    let root = d.path().join("ws");
    let share = ShareIndex::new(&root, &d.path().join("scratch"));
    let filter = Filter::new(&root, &Sharing::default()).unwrap();
    share.list("ws", &filter, "k", |_| {}).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..12 {
        for step in 0..15 {
            let files: Vec<_> = walk_files(&root);
            let dirs: Vec<_> = walk_dirs(&root);
            let f = &files[rnd(files.len())];
            let dir = &dirs[rnd(dirs.len())];
            let tag = format!("r{round}s{step}");
            match rnd(8) {
                0 => fs::write(dir.join(format!("{tag}.txt")), &tag).unwrap(),
                1 => fs::write(f, format!("{tag} rewritten")).unwrap(),
                2 => {
                    let _ = fs::remove_file(f);
                }
                3 => {
                    let _ = fs::rename(f, dir.join(format!("{tag}.moved")));
                }
                4 => {
                    let _ = fs::set_permissions(f, fs::Permissions::from_mode(0o600));
                }
                5 => {
                    // A folder with content made elsewhere, then renamed into place.
                    let outside = d.path().join(&tag);
                    write(&outside, "a/b.txt", &tag);
                    fs::rename(&outside, dir.join(&tag)).unwrap();
                }
                6 if dir != &root => {
                    let _ = fs::remove_dir_all(dir);
                }
                _ => write(dir, &format!("{tag}/deep/x.bin"), &tag),
            }
        }
        let kept = share.list("ws", &filter, "k", |_| {}).unwrap();
        let walked = full(&root);
        assert_eq!(kept.entries, walked.entries, "round {round}");
    }
}

fn walk_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in walk_dirs(root) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

fn walk_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        for e in fs::read_dir(&out[i]).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.push(e.path());
            }
        }
        i += 1;
    }
    out
}
