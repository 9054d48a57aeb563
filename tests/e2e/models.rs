//! Hugging Face models in the LAN cache between two real nodes: a model in the hub cache layout
//! on one node is pulled by the other into its own hub cache, verified, once; a blob changed on
//! the owner is refused and leaves nothing behind; a node with the cache off says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aienv_e2e::{TestNode, private_group, text, wait_for};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

const SOON: Duration = Duration::from_secs(20);
const REPO: &str = "acme/tiny-llm";
const FOLDER: &str = "models--acme--tiny-llm";
const COMMIT: &str = "4f1c9e0d2b7a6c5e8f9a0b1c2d3e4f5a6b7c8d9e";
const WEIGHTS: &str = "model.safetensors";

struct Lan {
    owner: TestNode,
    puller: TestNode,
    owner_hub: PathBuf,
    puller_hub: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Two nodes on one group, each with a hub cache of its own (`HF_HUB_CACHE`); the owner's holds
/// [`REPO`]. Returns once each node knows the other (the cache serves the nodes it knows).
fn lan(owner_flags: &[&str]) -> Lan {
    let tmp = fast_tempdir();
    let (owner_hub, puller_hub) = (tmp.path().join("owner-hub"), tmp.path().join("puller-hub"));
    write_repo(&owner_hub);
    let group = private_group();
    let mut flags = vec!["--discovery-group", group.as_str()];
    flags.extend_from_slice(owner_flags);
    let env = |hub: &Path| vec![("HF_HUB_CACHE", hub.to_str().unwrap().to_string())];
    let start = |name: &str, flags: &[&str], hub: &Path| {
        let env = env(hub);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        TestNode::start_with_env(name, flags, &env).unwrap()
    };
    let owner = start("owner", &flags, &owner_hub);
    let puller = start("puller", &["--discovery-group", &group], &puller_hub);
    let (owner_id, puller_id) = (owner.instance_id(), puller.instance_id());
    wait_for("the nodes know each other", SOON, || {
        (owner.peer_ids().contains(&puller_id) && puller.peer_ids().contains(&owner_id))
            .then_some(())
    });
    Lan {
        owner,
        puller,
        owner_hub,
        puller_hub,
        _tmp: tmp,
    }
}

/// Big files go to tmpfs when there is one: the test disk is slow.
fn fast_tempdir() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// The repo's files: (path in the snapshot, bytes, stored by LFS).
fn files() -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut weights = vec![0u8; 3 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in weights.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    vec![
        (
            "config.json",
            b"{\"model_type\": \"llama\"}\n".to_vec(),
            false,
        ),
        (WEIGHTS, weights, true),
        (
            "tokenizer/special_tokens_map.json",
            b"{\"bos_token\": \"<s>\"}\n".to_vec(),
            false,
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The blob name `huggingface_hub` gives `bytes`: SHA-256 for LFS files, the git blob id else.
fn blob_name(bytes: &[u8], lfs: bool) -> String {
    if lfs {
        return hex(&Sha256::digest(bytes));
    }
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// Writes [`REPO`] at [`COMMIT`] into `hub` in the layout `huggingface_hub` makes.
fn write_repo(hub: &Path) {
    let repo = hub.join(FOLDER);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    for (path, bytes, lfs) in files() {
        let blob = blob_name(&bytes, lfs);
        std::fs::write(repo.join("blobs").join(&blob), &bytes).unwrap();
        let link = repo.join("snapshots").join(COMMIT).join(path);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        let ups = "../".repeat(path.split('/').count() + 1);
        std::os::unix::fs::symlink(format!("{ups}blobs/{blob}"), link).unwrap();
    }
}

/// Every file name under `dir`, recursively (links not followed).
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            out.extend(names_under(&e.path()));
        }
    }
    out
}

#[test]
fn a_model_is_pulled_from_a_peer_verified_into_the_hub_layout_and_only_once() {
    let l = lan(&[]);
    // The puller sees what the owner offers.
    let offered = wait_for("the owner's model is listed", SOON, || {
        let list = l.puller.json(&["model", "list"]);
        let peer = list["peers"]
            .as_array()?
            .iter()
            .find(|p| p["peer_name"] == "owner")?
            .clone();
        (peer["models"][0]["repo"] == REPO).then_some(peer)
    });
    assert_eq!(offered["models"][0]["refs"]["main"], COMMIT, "{offered}");

    let pull = l.puller.json(&["model", "pull", REPO]);
    assert_eq!(pull["state"], "done", "{pull}");
    assert_eq!(
        (pull["files"].as_u64(), pull["files_fetched"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(pull["peer_name"], "owner");
    assert_eq!(pull["commit"], COMMIT);

    // Byte for byte, through the snapshot links the hub client follows, in its layout.
    let repo = l.puller_hub.join(FOLDER);
    let snapshot = repo.join("snapshots").join(COMMIT);
    assert_eq!(pull["snapshot"], snapshot.to_str().unwrap());
    for (path, bytes, lfs) in files() {
        let link = snapshot.join(path);
        assert!(
            std::fs::read(&link).unwrap() == bytes,
            "{path} arrived whole"
        );
        let ups = "../".repeat(path.split('/').count() + 1);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from(format!("{ups}blobs/{}", blob_name(&bytes, lfs))),
            "{path} is a relative link into blobs/"
        );
    }
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    assert!(
        !names_under(&repo)
            .iter()
            .any(|n| n.ends_with(".incomplete")),
        "no partial file is left"
    );
    let local = l.puller.json(&["model", "list"]);
    assert_eq!(local["local"][0]["repo"], REPO, "{local}");

    // Again: everything is here, nothing moves.
    let again = l.puller.json(&["model", "pull", REPO, "--from", "owner"]);
    assert_eq!(again["state"], "done", "{again}");
    assert_eq!(
        (
            again["files_fetched"].as_u64(),
            again["files_present"].as_u64()
        ),
        (Some(0), Some(3))
    );
    assert_eq!(again["bytes_fetched"], 0);

    // The owner's audit log names who took what; a client without a node's certificate gets
    // nothing from a cache open to known peers only.
    let audit = l.owner.json(&["audit", "--limit", "100"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "model blob"
                && r["allowed"] == true
                && r["peer_name"] == "puller"
                && r["peer_verified"] == true),
        "{audit}"
    );
    let res = reqwest::blocking::get(format!("{}/api/v1/cache/models", l.owner.url)).unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"]["code"], "peer_unknown", "{body}");

    // A repo nobody has: the message names the peers asked.
    let err = l.puller.fails(&["model", "pull", "acme/missing"]);
    assert!(
        err.contains("no peer has acme/missing") && err.contains("\"owner\" does not have it"),
        "{err}"
    );
}

#[test]
fn a_blob_changed_on_the_owner_is_refused_and_nothing_of_it_is_kept() {
    let l = lan(&[]);
    let (_, weights, _) = files().into_iter().find(|(p, ..)| *p == WEIGHTS).unwrap();
    let blob = blob_name(&weights, true);
    // Same size, same name, other bytes: a damaged disk or a hand edit.
    let mut changed = weights.clone();
    changed[1 << 20] ^= 0xff;
    std::fs::write(l.owner_hub.join(FOLDER).join("blobs").join(&blob), &changed).unwrap();

    let err = l.puller.fails(&["model", "pull", REPO, "--from", "owner"]);
    assert!(
        err.contains(WEIGHTS) && err.contains(&blob),
        "names the file and its hash: {err}"
    );
    assert!(
        err.contains(&hex(&Sha256::digest(&changed))),
        "says what came: {err}"
    );
    assert!(err.contains("nothing was kept"), "{err}");

    let repo = l.puller_hub.join(FOLDER);
    let names = names_under(&repo);
    assert!(
        !names.contains(&blob),
        "the changed blob is not kept: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with(".incomplete")),
        "{names:?}"
    );
    assert!(
        !repo.join("snapshots").exists(),
        "no snapshot of an incomplete pull: {names:?}"
    );
    assert!(!repo.join("refs/main").exists());
    let pulls = l.puller.json(&["model", "pulls"]);
    assert_eq!(pulls[0]["state"], "failed", "{pulls}");
    assert_eq!(pulls[0]["error_code"], "hash_mismatch", "{pulls}");
}

#[test]
fn a_node_with_models_off_refuses_with_cache_off() {
    let l = lan(&["--no-lan-cache"]);
    let err = l.puller.fails(&["model", "pull", REPO, "--from", "owner"]);
    assert!(
        err.contains("does not serve models") && err.contains("models = false"),
        "{err}"
    );
    let list = l.puller.json(&["model", "list"]);
    let owner = &list["peers"][0];
    assert_eq!(owner["peer_name"], "owner", "{list}");
    assert!(
        owner["error"].as_str().unwrap().contains("models = false"),
        "{list}"
    );
    // The owner with the cache off does not pull either.
    let err = l.owner.fails(&["model", "pull", REPO]);
    assert!(err.contains("models = false"), "{err}");
}

/// An environment that names a model gets it from the LAN before it starts: its command finds
/// the files in the hub cache, verified, as if they had been downloaded.
#[test]
fn an_environment_that_uses_a_model_gets_it_from_a_peer_before_it_starts() {
    let lan = lan(&[]);
    let ws = lan._tmp.path().join("uses-model");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("aienv.toml"),
        format!(
            r#"[workspace]
name = "uses-model"

[environment.infer]
kind = "process"
models = ["{REPO}"]
command = "cat \"$HF_HUB_CACHE/{FOLDER}/snapshots/$(cat \"$HF_HUB_CACHE/{FOLDER}/refs/main\")/config.json\""
"#
        ),
    )
    .unwrap();
    lan.puller.json(&["workspace", "add", ws.to_str().unwrap()]);
    let run = lan.puller.json(&["run", "uses-model", "infer"]);
    let id = run["id"].as_str().unwrap().to_string();
    let run = wait_for("the run ends", SOON, || {
        let runs = lan.puller.json(&["runs"]);
        let r = runs
            .as_array()?
            .iter()
            .find(|r| r["id"] == id.as_str())?
            .clone();
        (r["state"] == "exited" || r["state"] == "failed").then_some(r)
    });
    assert_eq!(run["state"], "exited", "{run}");
    let log = text(&lan.puller.cli(&["logs", &id])).0;
    assert!(log.contains("\"model_type\": \"llama\""), "{log}");
    assert!(
        run["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("from owner (3 of 3 files fetched, verified)")),
        "{run}"
    );
    assert!(lan.puller_hub.join(FOLDER).join("refs/main").exists());
    // A model nobody has: the run still starts, and its notes say where it will come from.
    std::fs::write(
        ws.join("aienv.toml"),
        r#"[workspace]
name = "uses-model"

[environment.infer]
kind = "process"
models = ["acme/nobody-has-this"]
command = "true"
"#,
    )
    .unwrap();
    let run = wait_for("the manifest is read again", SOON, || {
        let out = lan.puller.cli(&["--json", "run", "uses-model", "infer"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["notes"]
            .to_string()
            .contains("nobody-has-this")
            .then_some(v)
    });
    assert!(
        run["notes"].to_string().contains("is not on the LAN"),
        "{run}"
    );
}
