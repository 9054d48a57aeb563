//! A pull applied in place: what changed on the source arrives, what did not is not rewritten,
//! edits made in the clone are never lost, and an apply stopped half-way finishes when run again.
//!
//! Real folders: a source tree is indexed, copied to a clone, changed, indexed again; the
//! changed files go into staging the way a transfer puts them there.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use aienv_core::Sharing;
use aienv_sharing::Filter;
use aienv_sharing::index::{EntryKind, FileManifest, HashCache, index};
use aienv_sharing::transfer::apply::{apply, stamp};

fn list(root: &Path) -> FileManifest {
    let filter = Filter::new(root, &Sharing::default()).unwrap();
    index(root, "ws", &filter, &HashCache::default()).unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Copies a tree keeping times and modes (what a clone looks like).
fn copy_tree(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a");
}

/// Puts the files of `after` whose content differs from `before` into staging, with the
/// source's times, as a verified transfer leaves them.
fn stage(source: &Path, staging: &Path, before: &FileManifest, after: &FileManifest) -> usize {
    let mut n = 0;
    for e in &after.entries {
        let EntryKind::File { hash, .. } = &e.kind else {
            continue;
        };
        let same = before.entries.iter().any(|b| {
            b.path == e.path && matches!(&b.kind, EntryKind::File { hash: h, .. } if h == hash)
        });
        if !same {
            let dest = staging.join(&e.path);
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let ok = std::process::Command::new("cp")
                .arg("-a")
                .arg(source.join(&e.path))
                .arg(&dest)
                .status()
                .unwrap()
                .success();
            assert!(ok);
            n += 1;
        }
    }
    n
}

struct Setup {
    _dir: tempfile::TempDir,
    source: std::path::PathBuf,
    clone: std::path::PathBuf,
    staging: std::path::PathBuf,
    before: FileManifest,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    write(&source, "README.md", "hello\n");
    write(&source, "src/train.py", "print('v1')\n");
    write(&source, "src/util.py", "x = 1\n");
    write(&source, "data/old/a.csv", "1,2\n");
    write(&source, "notes.txt", "keep me\n");
    std::os::unix::fs::symlink("src/train.py", source.join("run.py")).unwrap();
    let before = list(&source);
    let clone = dir.path().join("clone");
    copy_tree(&source, &clone);
    let staging = dir.path().join("staging");
    fs::create_dir(&staging).unwrap();
    Setup {
        _dir: dir,
        source,
        clone,
        staging,
        before,
    }
}

#[test]
fn a_pull_brings_changes_and_leaves_the_rest_alone() {
    let s = setup();
    let untouched_inode = fs::metadata(s.clone.join("README.md")).unwrap().ino();
    write(&s.source, "src/train.py", "print('v2')\n");
    write(&s.source, "src/new.py", "y = 2\n");
    fs::remove_dir_all(s.source.join("data/old")).unwrap();
    write(&s.source, "data/new/b.csv", "3,4\n");
    fs::remove_file(s.source.join("run.py")).unwrap();
    std::os::unix::fs::symlink("src/new.py", s.source.join("run.py")).unwrap();
    let after = list(&s.source);
    assert_eq!(stage(&s.source, &s.staging, &s.before, &after), 3);

    let applied = apply(&s.clone, &s.staging, &s.before, &after, "X").unwrap();

    assert!(applied.kept.is_empty(), "{:?}", applied.kept);
    assert_eq!(read(&s.clone, "src/train.py"), "print('v2')\n");
    assert_eq!(read(&s.clone, "src/new.py"), "y = 2\n");
    assert_eq!(read(&s.clone, "data/new/b.csv"), "3,4\n");
    assert!(!s.clone.join("data/old").exists(), "removed on the source");
    assert_eq!(
        fs::read_link(s.clone.join("run.py")).unwrap(),
        Path::new("src/new.py")
    );
    assert_eq!(
        fs::metadata(s.clone.join("README.md")).unwrap().ino(),
        untouched_inode,
        "an unchanged file is not rewritten"
    );
    // The clone now lists exactly as the source does (content, modes and times).
    assert_eq!(list(&s.clone).revision, after.revision);
}

#[test]
fn edits_made_in_the_clone_are_never_lost() {
    let s = setup();
    // Edited here only: stays as it is.
    write(&s.clone, "notes.txt", "my own notes\n");
    // Edited here and changed on the source: the source's version takes the name.
    write(&s.clone, "src/train.py", "print('mine')\n");
    write(&s.source, "src/train.py", "print('v2')\n");
    // Edited here and removed on the source: stays.
    write(&s.clone, "src/util.py", "x = 42\n");
    fs::remove_file(s.source.join("src/util.py")).unwrap();
    // A file made here in a folder the source removes: the folder stays for it.
    write(&s.clone, "data/old/mine.csv", "9\n");
    fs::remove_dir_all(s.source.join("data/old")).unwrap();
    let after = list(&s.source);
    stage(&s.source, &s.staging, &s.before, &after);
    let st = stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_195_000));
    assert_eq!(st, "20251126-221000");

    let applied = apply(&s.clone, &s.staging, &s.before, &after, &st).unwrap();

    assert_eq!(read(&s.clone, "notes.txt"), "my own notes\n");
    assert_eq!(read(&s.clone, "src/train.py"), "print('v2')\n");
    assert_eq!(
        read(&s.clone, "src/train.py.local-20251126-221000"),
        "print('mine')\n"
    );
    assert_eq!(read(&s.clone, "src/util.py"), "x = 42\n");
    assert_eq!(read(&s.clone, "data/old/mine.csv"), "9\n");
    assert!(!s.clone.join("data/old/a.csv").exists());
    let said = applied.kept.join("\n");
    assert!(
        said.contains("src/train.py was edited here and the source changed it too: your copy is kept as train.py.local-20251126-221000"),
        "{said}"
    );
    assert!(
        said.contains("kept src/util.py: the source removed it, but it was edited here"),
        "{said}"
    );
    assert!(said.contains("kept the folder data/old"), "{said}");
    assert!(
        !said.contains("notes.txt"),
        "an edit nobody else touched is not news: {said}"
    );
}

#[test]
fn an_apply_stopped_half_way_finishes_when_run_again() {
    let s = setup();
    write(&s.source, "src/train.py", "print('v2')\n");
    write(&s.source, "src/util.py", "x = 2\n");
    fs::remove_file(s.source.join("notes.txt")).unwrap();
    let after = list(&s.source);
    stage(&s.source, &s.staging, &s.before, &after);
    // The first attempt moved one file and removed one, then the machine went down.
    fs::rename(s.staging.join("src/train.py"), s.clone.join("src/train.py")).unwrap();
    fs::remove_file(s.clone.join("notes.txt")).unwrap();

    let applied = apply(&s.clone, &s.staging, &s.before, &after, "X").unwrap();
    assert!(
        applied.kept.is_empty(),
        "what the first attempt did is not an edit: {:?}",
        applied.kept
    );
    assert_eq!(list(&s.clone).revision, after.revision);
    // And once more: nothing left to do, nothing changes.
    let again = apply(&s.clone, &s.staging, &s.before, &after, "X").unwrap();
    assert!(again.kept.is_empty(), "{:?}", again.kept);
    assert_eq!(list(&s.clone).revision, after.revision);
}

#[test]
fn a_file_that_became_a_folder_and_back() {
    let s = setup();
    fs::remove_file(s.source.join("notes.txt")).unwrap();
    write(&s.source, "notes.txt/today.md", "# today\n");
    fs::remove_dir_all(s.source.join("data")).unwrap();
    write(&s.source, "data", "now a file\n");
    let after = list(&s.source);
    stage(&s.source, &s.staging, &s.before, &after);

    let applied = apply(&s.clone, &s.staging, &s.before, &after, "X").unwrap();
    assert!(applied.kept.is_empty(), "{:?}", applied.kept);
    assert_eq!(read(&s.clone, "notes.txt/today.md"), "# today\n");
    assert_eq!(read(&s.clone, "data"), "now a file\n");
    assert_eq!(list(&s.clone).revision, after.revision);
}
