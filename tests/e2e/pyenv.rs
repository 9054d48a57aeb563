//! Python environments rebuilt from the LAN: a workspace cloned to a host whose only route is the
//! peer (a network namespace with no default route) rebuilds its venv from the peer's packages,
//! runs its training script, and locks it, all offline. On loopback: who may read the cache, and
//! a peer whose file changed after it listed it.
//!
//! The owner serves wheels from a folder that `scripts/install-deps.sh` downloads once from PyPI
//! (numpy, scikit-learn and their dependencies, for the python3 on PATH); nothing is downloaded
//! from the internet while the tests run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aienv_e2e::{TestNode, private_group, skip_without, text, wait_for};
use serde_json::Value;

use crate::netns::{Lab, unsupported};

/// The wheel folder `scripts/install-deps.sh` fills (`AIENV_TEST_WHEELS` overrides).
fn test_wheels() -> Result<PathBuf, String> {
    let dir = std::env::var_os("AIENV_TEST_WHEELS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/aienv-test/wheels"))
        })
        .ok_or("no HOME")?;
    let has = |p: &str| {
        std::fs::read_dir(&dir).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(p))
        })
    };
    if has("numpy-") && has("scikit_learn-") {
        Ok(dir)
    } else {
        Err(format!(
            "no numpy and scikit-learn wheels in {}; run scripts/install-deps.sh",
            dir.display()
        ))
    }
}

fn uv_missing() -> Option<String> {
    let found = std::process::Command::new("uv").arg("--version").output();
    (!found.is_ok_and(|o| o.status.success())).then(|| "uv is not installed".to_string())
}

const TRAIN: &str = r#"[workspace]
name = "trainer"

[sharing]
enabled = true
access = "open"

[environment.train]
kind = "process"
command = "python train.py"
python = { requirements = "requirements.txt" }
"#;

const TRAIN_PY: &str = r#"import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 16))
y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
print("accuracy", LogisticRegression().fit(x, y).score(x, y))
"#;

/// The owner's workspace: the training script, its requirements, and a venv of the owner's
/// (which must stay home: the clone rebuilds its own).
fn trainer_workspace(dir: &Path) {
    std::fs::create_dir_all(dir.join(".venv/lib")).unwrap();
    std::fs::write(dir.join(".venv/pyvenv.cfg"), "home = /opt/owner-only/bin\n").unwrap();
    std::fs::write(dir.join(".venv/lib/big.bin"), vec![7u8; 1 << 20]).unwrap();
    std::fs::write(dir.join("aienv.toml"), TRAIN).unwrap();
    std::fs::write(dir.join("requirements.txt"), "numpy\nscikit-learn\n").unwrap();
    std::fs::write(dir.join("train.py"), TRAIN_PY).unwrap();
}

fn sha256_file(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Waits for run `id` on host `i` to end; returns it.
fn wait_run_end(lab: &Lab, i: usize, id: &str) -> Value {
    wait_for("the run ends", Duration::from_secs(240), || {
        let runs = lab.json(i, &["runs"]);
        let run = runs.as_array()?.iter().find(|r| r["id"] == id)?.clone();
        let s = run["state"].as_str()?;
        matches!(s, "exited" | "failed" | "stopped").then_some(run)
    })
}

#[test]
fn a_clone_on_a_host_with_no_route_but_the_peer_rebuilds_its_venv_from_the_peer_and_trains() {
    let missing = unsupported()
        .or_else(uv_missing)
        .or_else(|| test_wheels().err());
    if skip_without("a_clone_on_a_host_with_no_route_but_the_peer...", missing) {
        return;
    }
    let wheels = test_wheels().unwrap();
    let mut lab = Lab::new(2);
    let tmp = lab._tmp.path().to_path_buf();
    let uv_cache = tmp.join("uv-cache");
    // The owner serves the wheel folder; the user keeps its defaults (PyPI upstream), which it
    // cannot reach: the LAN is asked first, and the internet's absence is no error.
    lab.start_with(0, &["--wheel-dir", wheels.to_str().unwrap()], &[]);
    lab.start_with(
        1,
        &[],
        &[
            ("UV_CACHE_DIR", uv_cache.to_str().unwrap()),
            ("UV_PYTHON_DOWNLOADS", "never"),
        ],
    );
    let route = lab.exec(1, "ip", &["route", "get", "1.1.1.1"]);
    assert!(
        !route.status.success(),
        "the user's host must have no route off the LAN: {:?}",
        text(&route)
    );
    wait_for("the hosts see each other", Duration::from_secs(10), || {
        (lab.peer_names(1) == ["host1"]).then_some(())
    });

    let src = tmp.join("trainer");
    trainer_workspace(&src);
    lab.json(0, &["workspace", "add", src.to_str().unwrap()]);
    let target = tmp.join("clone");
    wait_for(
        "the share reaches the user",
        Duration::from_secs(10),
        || {
            let c = lab.json(1, &["catalog"]);
            c.as_array()?
                .iter()
                .any(|e| e["name"] == "train" && e["owner"]["name"] == "host1")
                .then_some(())
        },
    );
    lab.json(
        1,
        &["clone", "host1/trainer", "--to", target.to_str().unwrap()],
    );
    assert!(target.join("train.py").exists());
    assert!(
        !target.join(".venv").exists(),
        "the owner's venv is not copied: it names paths of the owner's machine"
    );

    // The run rebuilds the venv through the user's node, which fetches every package from host1.
    let run = lab.json(1, &["run", "trainer", "train"]);
    let id = run["id"].as_str().unwrap().to_string();
    let run = wait_run_end(&lab, 1, &id);
    let bin = aienv_e2e::aienv_bin();
    let logs = lab.exec(
        1,
        bin.to_str().unwrap(),
        &["--node", &lab.hosts[1].url, "logs", &id],
    );
    let log_text = text(&logs).0;
    assert_eq!(run["state"], "exited", "{run}\n{log_text}");
    assert!(log_text.contains("accuracy"), "the script ran: {log_text}");
    let setup = &run["setup"];
    let fetched = setup["fetched"].as_u64().unwrap();
    assert!(fetched >= 2, "numpy and scikit-learn at least: {setup}");
    assert_eq!(setup["from_peers"], fetched, "all from the peer: {setup}");
    assert!(setup["packages"].as_u64().unwrap() >= fetched, "{setup}");
    assert!(
        setup["message"]
            .as_str()
            .unwrap()
            .contains("from peers (last: host1)"),
        "{setup}"
    );
    let python = target.join(".aienv/venv/train/bin/python");
    let import = lab.exec(
        1,
        python.to_str().unwrap(),
        &["-c", "import numpy, sklearn; print(numpy.__version__)"],
    );
    assert!(import.status.success(), "{:?}", text(&import));

    // What the user's node fetched is kept, byte for byte the owner's wheel, for the next host.
    let numpy = std::fs::read_dir(&wheels)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("numpy-"))
        .unwrap();
    let kept = lab.hosts[1]
        .data_dir
        .join("packages")
        .join(numpy.file_name());
    assert_eq!(sha256_file(&kept), sha256_file(&numpy.path()));
    // The owner's audit log names each file the user took.
    let audit = std::fs::read_to_string(lab.hosts[0].data_dir.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains(&format!(
            "\"action\":\"package {}\"",
            numpy.file_name().to_string_lossy()
        )),
        "{audit}"
    );

    // uv resolved from the wheels' core metadata (PEP 658), served apart, not whole wheels.
    assert!(
        audit.contains("\"action\":\"package metadata numpy-"),
        "{audit}"
    );

    // Locking works offline too (through the LAN), and the next run installs from the lock.
    let locked = lab.json(1, &["env", "lock", "trainer", "train"]);
    assert_eq!(locked["file"], "requirements.lock.txt", "{locked}");
    let lock = std::fs::read_to_string(target.join("requirements.lock.txt")).unwrap();
    assert!(
        lock.contains("numpy==") && lock.contains("--hash=sha256:"),
        "{lock}"
    );
    assert!(
        !lock.contains("127.0.0.1"),
        "the lock names no index: {lock}"
    );
    let manifest = std::fs::read_to_string(target.join("aienv.toml")).unwrap();
    assert!(manifest.contains("requirements.lock.txt"), "{manifest}");
    let run = lab.json(1, &["run", "trainer", "train"]);
    let id = run["id"].as_str().unwrap().to_string();
    let run = wait_run_end(&lab, 1, &id);
    assert_eq!(run["state"], "exited", "{run}");
    assert_eq!(
        run["setup"]["fetched"], 0,
        "everything was in the user's store by now: {run}"
    );
}

/// A fake distribution file: the index moves bytes and checks hashes, it never opens them.
const DEMO: &str = "demo_pkg-1.0-py3-none-any.whl";

#[test]
fn the_cache_serves_known_peers_only_and_a_file_changed_after_listing_is_refused() {
    let wheels = tempfile::tempdir().unwrap();
    let demo = wheels.path().join(DEMO);
    std::fs::write(&demo, vec![1u8; 300_000]).unwrap();
    let group = private_group();
    let owner = TestNode::start_with(
        "owner",
        &[
            "--discovery-group",
            &group,
            "--wheel-dir",
            wheels.path().to_str().unwrap(),
            "--package-upstream",
            "none",
        ],
    )
    .unwrap();
    let user = TestNode::start_with(
        "user",
        &["--discovery-group", &group, "--package-upstream", "none"],
    )
    .unwrap();
    wait_for("the nodes see each other", Duration::from_secs(10), || {
        (!user.peer_ids().is_empty()).then_some(())
    });
    let http = reqwest::blocking::Client::new();

    // Someone who is not a node the owner knows (no certificate) gets a clear refusal.
    let res = http
        .get(format!("{}/api/v1/cache/packages/demo-pkg", owner.url))
        .send()
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"]["code"], "peer_unknown", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[cache] access"),
        "{body}"
    );

    // The user's index lists the owner's file, with its hash, under any spelling of the name.
    let page = http
        .get(format!("{}/api/v1/index/simple/Demo.Pkg/", user.url))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(
        page.contains(&format!("../../files/{DEMO}#sha256={}", sha256_file(&demo))),
        "{page}"
    );
    let missing = http
        .get(format!("{}/api/v1/index/simple/no-such-project/", user.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The owner's file changes after it was listed (same size and time, so the owner's hash
    // cache still says the old hash): the user passes the bytes on, but ends the body with an
    // error and keeps nothing.
    let before = std::fs::metadata(&demo).unwrap().modified().unwrap();
    std::fs::write(&demo, vec![2u8; 300_000]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&demo)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let res = http
        .get(format!("{}/api/v1/index/files/{DEMO}", user.url))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200, "the bytes start flowing at once");
    assert!(res.bytes().is_err(), "the body ends with an error");
    let store = user.data_dir.join("packages");
    let kept: Vec<_> = std::fs::read_dir(&store)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(kept.is_empty(), "nothing kept: {kept:?}");
    let log = user.log();
    assert!(
        log.contains(&format!("{DEMO}: its SHA-256 is")) && log.contains("was not kept"),
        "{log}"
    );

    // A file the owner did not change arrives whole and is kept.
    let other = wheels.path().join("other_pkg-2.0-py3-none-any.whl");
    std::fs::write(&other, b"whole").unwrap();
    let page = http
        .get(format!("{}/api/v1/index/simple/other-pkg/", user.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("other_pkg-2.0"), "{page}");
    let body = http
        .get(format!(
            "{}/api/v1/index/files/other_pkg-2.0-py3-none-any.whl",
            user.url
        ))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&body[..], b"whole");
    assert_eq!(
        std::fs::read(store.join("other_pkg-2.0-py3-none-any.whl")).unwrap(),
        b"whole"
    );
}

#[test]
fn a_node_with_its_cache_off_serves_nothing_and_says_so() {
    let wheels = tempfile::tempdir().unwrap();
    std::fs::write(wheels.path().join(DEMO), b"x").unwrap();
    let group = private_group();
    let owner = TestNode::start_with(
        "owner",
        &[
            "--discovery-group",
            &group,
            "--wheel-dir",
            wheels.path().to_str().unwrap(),
            "--no-lan-cache",
            "--cache-access",
            "open",
        ],
    )
    .unwrap();
    let res =
        reqwest::blocking::get(format!("{}/api/v1/cache/packages/demo-pkg", owner.url)).unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"]["code"], "cache_off", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[cache] packages = false"),
        "{body}"
    );
    // With the cache open, the same request is answered.
    let open = TestNode::start_with(
        "open",
        &[
            "--discovery-group",
            &group,
            "--wheel-dir",
            wheels.path().to_str().unwrap(),
            "--cache-access",
            "open",
        ],
    )
    .unwrap();
    let listing: Value =
        reqwest::blocking::get(format!("{}/api/v1/cache/packages/demo-pkg", open.url))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(listing["files"][0]["filename"], DEMO, "{listing}");
}
