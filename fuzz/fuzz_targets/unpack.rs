//! Any bytes a peer may send as a transfer stream, received by the unpacker into a fresh staging
//! folder: it never panics, never writes outside the staging folder, never leaves a file there
//! that is not one it was asked for with exactly the announced content, and on success holds
//! every requested file.
//!
//! The first byte picks the mode:
//! - bit 7 clear: a fixed plan ([`fixed`]: a folder, a small file, a 3000-byte file, one with a
//!   name longer than a tar header holds, an empty one). Bit 0 says zstd; bits 1..=3 (mod 5) how
//!   many of its files are requested. The rest of the input is the stream as it arrives, so seeds
//!   made by the real packer (`corpus/unpack/seed-*`) let the mutator work on real tar (and
//!   zstd) streams.
//! - bit 7 set: the rest is read with `arbitrary` into a plan (folders, files with names,
//!   contents, modes and times chosen by the input) that must pass `plan::check` as a real file
//!   list must; the real packer writes it, and the input then flips bytes, cuts the stream short
//!   and says whether it is compressed.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aienv_sharing::index::{ContentHash, EntryKind, FileEntry, FileManifest};
use aienv_sharing::transfer::{pack::pack, plan, unpack::unpack};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

/// A plan to receive: the file list, which of its files are requested, their contents.
struct Plan {
    entries: Vec<FileEntry>,
    fetch: Vec<usize>,
    contents: HashMap<String, Vec<u8>>,
}

fn dir(path: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: EntryKind::Dir { mode: 0o755 },
    }
}

fn file(path: &str, content: &[u8], mode: u32, mtime_ns: i64) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: EntryKind::File {
            size: content.len() as u64,
            mode,
            mtime_ns,
            hash: ContentHash::of(content),
        },
    }
}

/// The fixed plan of mode 0 (the seeds are streams of it, made by `pack`).
fn fixed(files: usize) -> Plan {
    let long = format!("data/{}.json", "n".repeat(120));
    let weights: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let all: [(&str, Vec<u8>, u32); 4] = [
        ("hello.txt", b"hello, aienv\n".to_vec(), 0o644),
        ("data/weights.bin", weights, 0o600),
        (&long, b"{\"long\": true}\n".to_vec(), 0o644),
        ("empty", Vec::new(), 0o755),
    ];
    let mut entries = vec![dir("data")];
    let mut contents = HashMap::new();
    for (path, content, mode) in all {
        entries.push(file(path, &content, mode, 1_700_000_000_123_456_789));
        contents.insert(path.to_string(), content);
    }
    Plan {
        entries,
        fetch: (1..=files).collect(),
        contents,
    }
}

#[derive(Arbitrary, Debug)]
struct Derived {
    zstd: bool,
    folders: Vec<String>,
    files: Vec<DerivedFile>,
    edits: Vec<(u16, u8)>,
    cut: Option<u16>,
}

#[derive(Arbitrary, Debug)]
struct DerivedFile {
    folder: Option<u8>,
    name: String,
    content: Vec<u8>,
    mode: u32,
    mtime_ns: i64,
    /// Not requested (a pull fetches only what changed).
    skip: bool,
}

/// Mode 1: the plan and the stream from the input; `None` where the plan is one a receiver
/// refuses before any stream (or one the packer cannot write).
fn derived(data: &[u8]) -> Option<(Plan, bool, Vec<u8>)> {
    let d = Derived::arbitrary(&mut Unstructured::new(data)).ok()?;
    if d.folders.len() > 4 || d.files.len() > 8 || d.edits.len() > 32 {
        return None;
    }
    let mut entries: Vec<FileEntry> = d.folders.iter().map(|f| dir(f)).collect();
    let mut contents = HashMap::new();
    let mut fetch = Vec::new();
    for f in &d.files {
        let path = match f.folder {
            Some(i) if !d.folders.is_empty() => {
                format!("{}/{}", d.folders[i as usize % d.folders.len()], f.name)
            }
            _ => f.name.clone(),
        };
        if !f.skip {
            fetch.push(entries.len());
        }
        entries.push(file(&path, &f.content, f.mode, f.mtime_ns));
        contents.insert(path, f.content.clone());
    }
    let mut list = FileManifest {
        workspace_id: "w".into(),
        revision: "r".into(),
        files: d.files.len() as u64,
        bytes: d.files.iter().map(|f| f.content.len() as u64).sum(),
        skipped_special: 0,
        entries,
        substitutes: HashMap::new(),
    };
    plan::check(&list).ok()?;
    // The packer sends a substitute's content instead of reading the disk: no files needed.
    for (path, content) in &contents {
        list.substitute(path, content.clone());
    }
    let mut stream = Vec::new();
    pack(Path::new("/nonexistent"), &list, &fetch, &mut stream, false).ok()?;
    for (at, byte) in d.edits {
        if !stream.is_empty() {
            let at = at as usize % stream.len();
            stream[at] = byte;
        }
    }
    if let Some(cut) = d.cut {
        stream.truncate(cut as usize);
    }
    if d.zstd {
        stream = zstd::encode_all(stream.as_slice(), 1).ok()?;
    }
    let plan = Plan {
        entries: list.entries,
        fetch,
        contents,
    };
    Some((plan, d.zstd, stream))
}

/// This process's dedicated parent folder; the staging folder is its only child.
fn parent() -> &'static Path {
    static PARENT: OnceLock<PathBuf> = OnceLock::new();
    PARENT.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("aienv-fuzz-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create the fuzz parent folder");
        p
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (plan, zstd, stream) = if mode & 0x80 == 0 {
        (
            fixed(((mode >> 1) & 7) as usize % 5),
            mode & 1 == 1,
            rest.to_vec(),
        )
    } else {
        match derived(rest) {
            Some(x) => x,
            None => return,
        }
    };

    let staging = parent().join("s");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).expect("clear the staging folder");
    }
    std::fs::create_dir(&staging).expect("create the staging folder");
    // As the client does before streaming: the folders first. One the file system refuses (a
    // name too long) ends the clone there, with an error.
    let mut dirs = BTreeSet::new();
    for e in &plan.entries {
        if let EntryKind::Dir { .. } = e.kind {
            if std::fs::create_dir(staging.join(&e.path)).is_err() {
                return;
            }
            dirs.insert(PathBuf::from(&e.path));
        }
    }
    let expected: Vec<&FileEntry> = plan.fetch.iter().map(|&i| &plan.entries[i]).collect();
    let mut bytes = 0u64;
    let mut files = 0usize;
    let result = unpack(
        stream.as_slice(),
        zstd,
        &expected,
        &staging,
        &mut |n| bytes += n,
        &mut || files += 1,
    );

    // Nothing beside the staging folder.
    let beside: Vec<_> = std::fs::read_dir(parent())
        .expect("read the parent folder")
        .map(|e| e.expect("a parent entry").file_name())
        .collect();
    assert_eq!(
        beside,
        ["s"],
        "something was written outside the staging folder"
    );

    // Inside it, only the plan's folders and requested files, each complete and verified.
    let requested: BTreeSet<PathBuf> = expected.iter().map(|e| PathBuf::from(&e.path)).collect();
    let mut found = BTreeSet::new();
    let mut stack = vec![staging.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read a staging folder") {
            let e = e.expect("a staging entry");
            let rel = e.path().strip_prefix(&staging).unwrap().to_path_buf();
            let t = e.file_type().expect("an entry's type");
            if t.is_dir() {
                assert!(dirs.contains(&rel), "unexpected folder {rel:?}");
                stack.push(e.path());
            } else {
                assert!(t.is_file(), "{rel:?} is neither a file nor a folder");
                assert!(requested.contains(&rel), "unrequested file {rel:?}");
                let want = &plan.contents[rel.to_str().unwrap()];
                let meta = e.metadata().expect("a file's metadata");
                assert_eq!(meta.len(), want.len() as u64, "{rel:?} has the wrong size");
                // (A mode without read permission hides the content; the size must still do.)
                if let Ok(got) = std::fs::read(e.path()) {
                    assert!(&got == want, "{rel:?} has the wrong content");
                }
                found.insert(rel);
            }
        }
    }
    // A file that fails on the way is removed: what stays is exactly what was reported verified.
    assert_eq!(
        files,
        found.len(),
        "a file counted but missing, or one left unverified"
    );
    if result.is_ok() {
        assert_eq!(found, requested, "a success without every requested file");
        assert_eq!(files, requested.len());
        let total: u64 = expected
            .iter()
            .map(|e| match e.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum();
        assert_eq!(bytes, total);
    }
});
