use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::*;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn git_sha1(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

fn model() -> RepoId {
    RepoId::new(RepoKind::Model, "acme/tiny-bert").unwrap()
}

/// Writes a blob and its snapshot link by hand, the way `huggingface_hub` lays them out.
fn put(root: &Path, repo: &RepoId, path: &str, blob: &str, bytes: &[u8]) {
    let dir = root.join(repo.folder());
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::write(dir.join("blobs").join(blob), bytes).unwrap();
    let link = dir.join("snapshots").join(COMMIT).join(path);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let ups = "../".repeat(path.split('/').count() + 1);
    std::os::unix::fs::symlink(format!("{ups}blobs/{blob}"), link).unwrap();
}

/// A cache with one model: an LFS weight file, a nested config (git blob), and `refs/main`.
fn fixture() -> (tempfile::TempDir, HfCache) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("hub");
    let repo = model();
    let weights = vec![7u8; 10_000];
    put(
        &root,
        &repo,
        "model.safetensors",
        &sha256(&weights),
        &weights,
    );
    put(
        &root,
        &repo,
        "sub/dir/config.json",
        &git_sha1(b"{}\n"),
        b"{}\n",
    );
    std::fs::create_dir_all(root.join(repo.folder()).join("refs")).unwrap();
    std::fs::write(root.join(repo.folder()).join("refs/main"), COMMIT).unwrap();
    (tmp, HfCache::at(root))
}

#[test]
fn the_cache_is_found_where_huggingface_hub_looks() {
    let home = Some(PathBuf::from("/home/u"));
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    };
    assert_eq!(
        locate_with(env(&[]), home.clone()),
        Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
    );
    assert_eq!(
        locate_with(env(&[("XDG_CACHE_HOME", "/xdg")]), home.clone()),
        Some(PathBuf::from("/xdg/huggingface/hub"))
    );
    assert_eq!(
        locate_with(
            env(&[("HF_HOME", "~/hf"), ("XDG_CACHE_HOME", "/xdg")]),
            home.clone()
        ),
        Some(PathBuf::from("/home/u/hf/hub"))
    );
    assert_eq!(
        locate_with(
            env(&[("HF_HUB_CACHE", "/fast/hub"), ("HF_HOME", "/hf")]),
            home.clone()
        ),
        Some(PathBuf::from("/fast/hub"))
    );
    assert_eq!(
        locate_with(env(&[("HUGGINGFACE_HUB_CACHE", "/old")]), home),
        Some(PathBuf::from("/old"))
    );
    assert_eq!(locate_with(env(&[]), None), None);
}

#[test]
fn repo_ids_map_to_cache_folders_and_back() {
    let r = model();
    assert_eq!(r.folder(), "models--acme--tiny-bert");
    assert_eq!(RepoId::from_folder("models--acme--tiny-bert"), Some(r));
    let d = RepoId::from_folder("datasets--org--data.v2").unwrap();
    assert_eq!((d.kind(), d.name()), (RepoKind::Dataset, "org/data.v2"));
    assert_eq!(RepoId::from_folder("models--gpt2").unwrap().name(), "gpt2");
    for not_a_repo in [
        ".locks",
        "version.txt",
        "spaces--a--b",
        "models--a--b--c",
        "models--",
    ] {
        assert_eq!(RepoId::from_folder(not_a_repo), None, "{not_a_repo}");
    }
    for bad in [
        "",
        "a/b/c",
        "/a",
        "a/",
        "../x",
        "a/..",
        "a--b/c",
        "a b/c",
        "a/.hidden",
        "a\\b",
    ] {
        assert!(RepoId::new(RepoKind::Model, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn blob_names_are_hashes_of_two_kinds() {
    assert_eq!(BlobKind::of(&"a".repeat(64)), Some(BlobKind::Sha256));
    assert_eq!(BlobKind::of(&"0".repeat(40)), Some(BlobKind::GitSha1));
    for bad in [
        "",
        "abc",
        &"A".repeat(64),
        &"g".repeat(40),
        &format!("{}.incomplete", "a".repeat(64)),
        "../../etc/passwd",
    ] {
        assert_eq!(BlobKind::of(bad), None, "{bad:?}");
    }
    // The git blob id of an empty file and of "hello world\n", as `git hash-object` gives them.
    assert_eq!(git_sha1(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    assert_eq!(
        git_sha1(b"hello world\n"),
        "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
    );
}

#[test]
fn snapshot_paths_cannot_leave_the_snapshot() {
    assert_eq!(
        check_path("onnx/model.onnx").unwrap(),
        ["onnx", "model.onnx"]
    );
    assert!(check_path(".gitattributes").is_ok());
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "a/./b",
        "a/",
        "a\\..\\b",
        "a\0b",
    ] {
        assert!(check_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn repos_revisions_and_files_are_listed_from_the_layout() {
    let (_tmp, cache) = fixture();
    let repos = cache.repos().unwrap();
    assert_eq!(repos.len(), 1);
    let r = &repos[0];
    assert_eq!(
        (r.id.as_str(), r.repo.as_str()),
        ("models--acme--tiny-bert", "acme/tiny-bert")
    );
    assert_eq!(r.refs["main"], COMMIT);
    assert_eq!(r.revisions, [COMMIT]);
    assert_eq!(r.size, 10_003);

    let rev = cache.revision(&model(), "main").unwrap();
    assert_eq!(rev.commit, COMMIT);
    let paths: Vec<(&str, u64)> = rev
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size))
        .collect();
    assert_eq!(
        paths,
        [("model.safetensors", 10_000), ("sub/dir/config.json", 3)]
    );
    assert_eq!(rev.files[1].blob, git_sha1(b"{}\n"));
    // A commit with a snapshot is a revision too; an unknown ref or repo is not found.
    assert_eq!(cache.revision(&model(), COMMIT).unwrap().files, rev.files);
    assert!(matches!(
        cache.revision(&model(), "v2"),
        Err(HfError::NotFound(_))
    ));
    let other = RepoId::new(RepoKind::Model, "acme/other").unwrap();
    assert!(matches!(
        cache.revision(&other, "main"),
        Err(HfError::NotFound(_))
    ));
    assert!(matches!(
        cache.revision(&model(), "../../x"),
        Err(HfError::Invalid(_))
    ));
    // A cache that does not exist yet is empty, not an error.
    assert!(HfCache::at("/nonexistent/hub").repos().unwrap().is_empty());
}

#[test]
fn links_out_of_the_repos_blobs_are_not_listed_or_served() {
    let (tmp, cache) = fixture();
    let snap = cache.snapshot_dir(&model(), COMMIT);
    let outside = tmp.path().join("secret");
    std::fs::write(&outside, "password").unwrap();
    std::os::unix::fs::symlink(&outside, snap.join("stolen")).unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", snap.join("passwd")).unwrap();
    std::fs::write(snap.join("plain.txt"), "a regular file").unwrap();
    std::os::unix::fs::symlink("/", snap.join("root")).unwrap();
    // A blob-named link in the blobs folder that leads out is no blob to serve.
    let blobs = cache.repo_dir(&model()).join("blobs");
    std::os::unix::fs::symlink(&outside, blobs.join("f".repeat(64))).unwrap();

    let paths: Vec<String> = cache
        .revision(&model(), "main")
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(paths, ["model.safetensors", "sub/dir/config.json"]);
    assert!(matches!(
        cache.blob(&model(), &"f".repeat(64)),
        Err(HfError::NotFound(_))
    ));
    assert!(matches!(
        cache.blob(&model(), "../../secret"),
        Err(HfError::Invalid(_))
    ));
}

#[test]
fn a_pulled_repo_is_written_in_the_hub_layout() {
    let (_src_tmp, src) = fixture();
    let dst_tmp = tempfile::tempdir().unwrap();
    let dst = HfCache::at(dst_tmp.path().join("hub"));
    let rev = src.revision(&model(), "main").unwrap();
    for f in &rev.files {
        assert!(!dst.has_blob(&model(), f));
        let (path, _) = src.blob(&model(), &f.blob).unwrap();
        let n = dst
            .insert(&model(), f, std::fs::File::open(path).unwrap())
            .unwrap();
        assert_eq!(n, f.size);
        assert!(dst.has_blob(&model(), f));
        dst.link(&model(), &rev.commit, f).unwrap();
        dst.link(&model(), &rev.commit, f).unwrap(); // again: nothing changes
    }
    dst.set_ref(&model(), "main", &rev.commit).unwrap();

    let repo_dir = dst.repo_dir(&model());
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );
    let nested = repo_dir
        .join("snapshots")
        .join(COMMIT)
        .join("sub/dir/config.json");
    assert_eq!(
        std::fs::read_link(&nested).unwrap(),
        PathBuf::from(format!("../../../../blobs/{}", git_sha1(b"{}\n")))
    );
    assert_eq!(std::fs::read(&nested).unwrap(), b"{}\n");
    // What was written lists as the source listed it.
    assert_eq!(dst.revision(&model(), "main").unwrap(), rev);
}

#[test]
fn bytes_that_do_not_match_their_hash_are_not_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = HfCache::at(tmp.path().join("hub"));
    let good = b"weights".to_vec();
    for (blob, what) in [(sha256(&good), "sha256"), (git_sha1(&good), "git")] {
        let f = RepoFile {
            path: "model.bin".into(),
            blob: blob.clone(),
            size: good.len() as u64,
        };
        let err = cache.insert(&model(), &f, &b"WEIGHTS"[..]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, HfError::HashMismatch { .. }),
            "{what}: {text}"
        );
        assert!(text.contains("model.bin") && text.contains(&blob), "{text}");
        assert!(text.contains("nothing was kept"), "{text}");
        // A short stream is refused by its size.
        let err = cache.insert(&model(), &f, &b"weig"[..]).unwrap_err();
        assert!(
            matches!(
                err,
                HfError::SizeMismatch {
                    expected: 7,
                    got: 4,
                    ..
                }
            ),
            "{err}"
        );
    }
    let blobs = cache.repo_dir(&model()).join("blobs");
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        0,
        "no blob, no partial file"
    );
    // A blob written but dropped unfinished leaves nothing either.
    let f = RepoFile {
        path: "x".into(),
        blob: sha256(&good),
        size: 7,
    };
    let mut incoming = cache.incoming(&model(), &f).unwrap();
    incoming.write(b"wei").unwrap();
    drop(incoming);
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
}

#[test]
fn hostile_names_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = HfCache::at(tmp.path().join("hub"));
    let blob = sha256(b"x");
    for (path, blob) in [
        ("../escape", blob.as_str()),
        ("/etc/passwd", blob.as_str()),
        ("ok.bin", "../../../etc/passwd"),
        ("ok.bin", "NOTHEX"),
    ] {
        let f = RepoFile {
            path: path.into(),
            blob: blob.into(),
            size: 1,
        };
        assert!(
            matches!(
                cache.insert(&model(), &f, &b"x"[..]),
                Err(HfError::Invalid(_))
            ),
            "{path} {blob}"
        );
        assert!(
            matches!(cache.link(&model(), COMMIT, &f), Err(HfError::Invalid(_))),
            "{path} {blob}"
        );
    }
    let f = RepoFile {
        path: "ok.bin".into(),
        blob,
        size: 1,
    };
    assert!(matches!(
        cache.link(&model(), "../../x", &f),
        Err(HfError::Invalid(_))
    ));
    assert!(matches!(
        cache.set_ref(&model(), "../../x", COMMIT),
        Err(HfError::Invalid(_))
    ));
    assert!(matches!(
        cache.set_ref(&model(), "main", "nothex"),
        Err(HfError::Invalid(_))
    ));
    assert!(!tmp.path().join("escape").exists());
}
