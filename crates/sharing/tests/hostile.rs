//! A hostile or broken peer, played by a small HTTP server in the test that serves crafted file
//! lists and tar streams: every case is refused with a clear error, and nothing is written
//! outside the staging folder.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aienv_sharing::index::{EntryKind, FileEntry, FileManifest};
use aienv_sharing::transfer::TransferError;
use aienv_sharing::transfer::client::{Compress, Counters, Spec, receive};
use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures_util::StreamExt;
use tokio::sync::watch;

fn file(path: &str, content: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: EntryKind::File {
            size: content.len() as u64,
            mode: 0o644,
            mtime_ns: 0,
            hash: aienv_sharing::index::ContentHash::of(content),
        },
    }
}

fn manifest(entries: Vec<FileEntry>) -> FileManifest {
    FileManifest {
        workspace_id: "w".into(),
        revision: "r1".into(),
        files: 0,
        bytes: 0,
        skipped_special: 0,
        entries,
        substitutes: Default::default(),
    }
}

/// A tar header block written by hand, so names and types can be anything a hostile peer likes.
fn header(name: &[u8], size: u64, kind: tar::EntryType) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn entry(name: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = header(name, content.len() as u64, tar::EntryType::Regular);
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// A router that serves `m` as the file list of workspace "w".
fn serving_list(m: FileManifest) -> Router {
    Router::new().route(
        "/api/v1/shares/w/files",
        get(move || async move { axum::Json(m) }),
    )
}

/// Serves `m` as the file list and `stream` as the tar stream; returns the base URL.
async fn hostile(m: FileManifest, stream: Vec<u8>) -> String {
    let stream = Arc::new(stream);
    let app = serving_list(m).route(
        "/api/v1/shares/w/stream",
        post(move || async move { stream.as_ref().clone() }),
    );
    serve(app).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Runs a clone into `root/staging` with zstd as given and returns its error.
async fn clone_err(url: &str, root: &Path, zstd: bool) -> TransferError {
    clone(url, root, zstd, Duration::from_secs(30))
        .await
        .expect_err("the hostile clone must fail")
}

async fn clone(
    url: &str,
    root: &Path,
    zstd: bool,
    stall: Duration,
) -> Result<FileManifest, TransferError> {
    let staging = root.join("staging");
    let spec = Spec {
        base_url: url,
        workspace_id: "w",
        staging: &staging,
        previous: None,
        compress: if zstd { Compress::On } else { Compress::Off },
        stall,
        headers: &reqwest::header::HeaderMap::new(),
    };
    let (_tx, cancel) = watch::channel(false);
    receive(
        &reqwest::Client::new(),
        &spec,
        Arc::new(Counters::default()),
        cancel,
    )
    .await
}

/// Every path under `root` outside its `staging` folder: there must be none.
fn written_outside_staging(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        if e.file_name() != "staging" {
            out.push(e.path().display().to_string());
        }
    }
    out
}

async fn expect_refused(m: FileManifest, stream: Vec<u8>, zstd: bool, why: &str) {
    let url = hostile(m, stream).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let err = clone_err(&url, &root, zstd).await;
    let text = err.to_string();
    assert!(text.contains(why), "expected {why:?} in: {text}");
    assert!(
        written_outside_staging(&root).is_empty(),
        "{why}: wrote outside staging: {:?}",
        written_outside_staging(&root)
    );
    assert!(!dir.path().join("evil").exists() && !Path::new("/tmp/aienv-evil").exists());
}

#[tokio::test]
async fn manifests_with_escaping_or_colliding_paths_are_refused() {
    expect_refused(
        manifest(vec![file("../evil", b"x")]),
        vec![],
        false,
        "not a plain relative path",
    )
    .await;
    expect_refused(
        manifest(vec![file("/tmp/aienv-evil", b"x")]),
        vec![],
        false,
        "not a plain relative path",
    )
    .await;
    expect_refused(
        manifest(vec![file("a", b"x"), file("A", b"y")]),
        vec![],
        false,
        "appears twice",
    )
    .await;
    let link = FileEntry {
        path: "l".into(),
        kind: EntryKind::Symlink {
            target: "../../../etc/passwd".into(),
        },
    };
    expect_refused(manifest(vec![link]), vec![], false, "leads outside").await;
    let hard = FileEntry {
        path: "h".into(),
        kind: EntryKind::Hardlink {
            to: "/etc/shadow".into(),
        },
    };
    expect_refused(manifest(vec![hard]), vec![], false, "not an earlier file").await;
}

#[tokio::test]
async fn a_list_whose_hash_is_not_one_is_refused() {
    let text = serde_json::to_string(&manifest(vec![file("f", b"x")]))
        .unwrap()
        .replace(&blake3::hash(b"x").to_hex().to_string(), "zz");
    let app = Router::new().route(
        "/api/v1/shares/w/files",
        get(move || async move { ([("content-type", "application/json")], text) }),
    );
    let url = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let err = clone_err(&url, dir.path(), false).await.to_string();
    assert!(
        err.contains("the peer sent a bad clone") && err.contains("not a BLAKE3 hash"),
        "{err}"
    );
    assert!(!dir.path().join("staging").exists(), "nothing was written");
}

#[tokio::test]
async fn a_manifest_of_more_than_a_million_entries_is_refused() {
    let entries = (0..1_000_001)
        .map(|i| FileEntry {
            path: format!("d{i}"),
            kind: EntryKind::Dir { mode: 0o755 },
        })
        .collect();
    expect_refused(manifest(entries), vec![], false, "more than 1000000").await;
}

#[tokio::test]
async fn stream_entries_that_do_not_match_the_manifest_are_refused() {
    let m = || manifest(vec![file("a.txt", b"hello")]);
    let mut other_name = entry(b"../../evil", b"hello");
    other_name.extend(end());
    expect_refused(m(), other_name, false, "named \"../../evil\"").await;

    let mut symlink = header(b"a.txt", 0, tar::EntryType::Symlink);
    symlink.extend(end());
    expect_refused(m(), symlink, false, "Symlink entry").await;

    let mut hard = header(b"a.txt", 0, tar::EntryType::Link);
    hard.extend(end());
    expect_refused(m(), hard, false, "Link entry").await;

    let mut device = header(b"a.txt", 0, tar::EntryType::Char);
    device.extend(end());
    expect_refused(m(), device, false, "Char entry").await;

    let mut longer = entry(b"a.txt", b"hello, world");
    longer.extend(end());
    expect_refused(m(), longer, false, "12 bytes in the stream but 5").await;

    let mut tampered = entry(b"a.txt", b"HELLO");
    tampered.extend(end());
    expect_refused(m(), tampered, false, "does not match its hash").await;
}

#[tokio::test]
async fn a_truncated_stream_is_an_error_and_the_partial_file_is_gone() {
    let body = vec![7u8; 10_000];
    let m = manifest(vec![file("big.bin", &body)]);
    let mut cut = entry(b"big.bin", &body);
    cut.truncate(512 + 4000);
    let url = hostile(m, cut).await;
    let dir = tempfile::tempdir().unwrap();
    let err = clone_err(&url, dir.path(), false).await.to_string();
    assert!(err.contains("truncated"), "{err}");
    assert!(
        !dir.path().join("staging/big.bin").exists(),
        "a partial file does not stay"
    );
}

#[tokio::test]
async fn a_zstd_bomb_is_cut_off_by_the_read_budget() {
    // A GNU long-name entry of 1 GiB of zeros: a few hundred KB compressed, and a parser that
    // believed it would allocate the whole name.
    let m = manifest(vec![file("a.txt", b"hello")]);
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&header(
        b"././@LongLink",
        1 << 30,
        tar::EntryType::GNULongName,
    ))
    .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 2 << 20, "the bomb is small: {}", bomb.len());
    expect_refused(m, bomb, true, "more than the manifest announced").await;
}

#[tokio::test]
async fn a_stalled_peer_is_given_up_on() {
    let m = manifest(vec![file("a.txt", b"hello")]);
    let app = serving_list(m).route(
        "/api/v1/shares/w/stream",
        post(|| async {
            // Headers, then silence.
            let stream =
                futures_util::stream::once(async { Ok::<_, std::io::Error>(vec![0u8; 0]) })
                    .chain(futures_util::stream::pending());
            Body::from_stream(stream).into_response()
        }),
    );
    let url = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let err = clone(&url, dir.path(), false, Duration::from_millis(500))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sent nothing"), "{err}");
}

#[tokio::test]
async fn a_share_that_changed_asks_for_a_new_list() {
    let m = manifest(vec![file("a.txt", b"hello")]);
    let app = serving_list(m).route(
        "/api/v1/shares/w/stream",
        post(|| async { (StatusCode::CONFLICT, "changed") }),
    );
    let url = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        clone_err(&url, dir.path(), false).await,
        TransferError::Changed
    ));
}

#[tokio::test]
async fn an_honest_stream_lands_verified_with_links() {
    let m = manifest(vec![
        FileEntry {
            path: "d".into(),
            kind: EntryKind::Dir { mode: 0o755 },
        },
        file("d/a.txt", b"hello"),
        FileEntry {
            path: "d/b.txt".into(),
            kind: EntryKind::Hardlink {
                to: "d/a.txt".into(),
            },
        },
        FileEntry {
            path: "l".into(),
            kind: EntryKind::Symlink {
                target: "d/a.txt".into(),
            },
        },
    ]);
    let mut s = entry(b"d/a.txt", b"hello");
    s.extend(end());
    let url = hostile(m, s).await;
    let dir = tempfile::tempdir().unwrap();
    clone(&url, dir.path(), false, Duration::from_secs(5))
        .await
        .unwrap();
    let st = dir.path().join("staging");
    assert_eq!(std::fs::read(st.join("d/b.txt")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read_link(st.join("l")).unwrap(),
        Path::new("d/a.txt")
    );
}
