use std::path::{Path, PathBuf};
use std::time::Duration;

use aienv_e2e::{TestNode, clone_job, private_group, text, wait_for};
use serde_json::Value;

const SOON: Duration = Duration::from_secs(10);

/// Big files go to tmpfs when there is one: the test disk is slow for hundreds of MB.
fn fast_tempdir() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

struct Pair {
    src: TestNode,
    dst: TestNode,
    ws: PathBuf,
    _tmp: tempfile::TempDir,
}

fn ok(n: &TestNode, args: &[&str]) -> String {
    let out = n.cli(args);
    assert!(out.status.success(), "{args:?}: {:?}", text(&out));
    text(&out).0
}

/// Two nodes on one group; `src` shares workspace "proj" with a few files (and a secret).
fn pair() -> Pair {
    let group = private_group();
    let src = TestNode::start_with("src", &["--discovery-group", &group]).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = fast_tempdir();
    let ws = tmp.path().join("proj");
    ok(&src, &["workspace", "create", ws.to_str().unwrap()]);
    std::fs::create_dir_all(ws.join("code")).unwrap();
    std::fs::write(ws.join("code/train.py"), "print('train')\n").unwrap();
    std::fs::write(ws.join(".env"), "HF_TOKEN=secret\n").unwrap();
    // An environment, so the clone has one to fit to this machine.
    ok(&src, &["env", "add", "proj", "train", "--kind", "process"]);
    ok(&src, &["share", "proj", "--access", "open"]);
    dst.wait_for_catalog("proj");
    Pair {
        src,
        dst,
        ws,
        _tmp: tmp,
    }
}

impl Pair {
    /// Starts `aienv clone src/proj --to TMP/clone --detach` on dst: (the target, the job id).
    fn clone_detached(&self) -> (PathBuf, String) {
        let target = self._tmp.path().join("clone");
        let job = self.dst.json(&[
            "clone",
            "src/proj",
            "--to",
            target.to_str().unwrap(),
            "--detach",
        ]);
        (target, job["id"].as_str().unwrap().to_string())
    }
}

/// Writes `mb` MiB of incompressible bytes.
fn big_file(path: &Path, mb: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..mb {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
}

/// Shares eight shards of 80 MiB and starts a detached clone of them; returns the job id and
/// target once at least three files arrived whole, or `None` if the clone ended before that
/// (a machine fast enough to leave nothing to interrupt).
fn sharded_clone_under_way(p: &Pair) -> Option<(String, PathBuf)> {
    std::fs::create_dir_all(p.ws.join("shards")).unwrap();
    for i in 0..8 {
        big_file(&p.ws.join(format!("shards/{i}.bin")), 80);
    }
    let (target, id) = p.clone_detached();
    let seen = wait_for("some shards arrived", Duration::from_secs(60), || {
        let j = clone_job(&p.dst, &id);
        (j["progress"]["files_done"].as_u64().unwrap_or(0) >= 3 || j["state"] != "running")
            .then_some(j)
    });
    (seen["state"] == "running").then_some((id, target))
}

#[test]
fn a_clone_arrives_verified_and_a_pull_moves_only_changes() {
    let p = pair();
    let target = p._tmp.path().join("clone");
    let job = p
        .dst
        .json(&["clone", "src/proj", "--to", target.to_str().unwrap()]);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        std::fs::read_to_string(target.join("code/train.py")).unwrap(),
        "print('train')\n"
    );
    assert!(!target.join(".env").exists(), "secrets stay home");
    let list = p.dst.json(&["workspace", "list"]);
    assert_eq!(
        list[0]["path"],
        target.to_str().unwrap(),
        "the clone is registered"
    );

    // An edit on the source, then a pull: only the change crosses the network.
    let weights = vec![3u8; 2_000_000];
    std::fs::write(p.ws.join("weights.bin"), &weights).unwrap();
    let first = p.dst.json(&["pull", "proj"]);
    assert_eq!(first["state"], "done", "{first}");
    assert!(first["progress"]["bytes_sent"].as_u64().unwrap() >= 2_000_000);
    std::fs::write(p.ws.join("code/train.py"), "print('train v2')\n").unwrap();
    let job = p.dst.json(&["pull", "proj"]);
    assert_eq!(job["state"], "done", "{job}");
    let sent = job["progress"]["bytes_sent"].as_u64().unwrap();
    assert!(
        sent < 100_000,
        "a pull after a small edit sends the edit, not the weights: {sent} bytes"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("code/train.py")).unwrap(),
        "print('train v2')\n"
    );
    assert_eq!(std::fs::read(target.join("weights.bin")).unwrap(), weights);

    // Edits made in the clone survive a pull: one the source did not touch stays as it is; one
    // the source changed too is kept beside the source's version, and the job says so.
    std::fs::write(target.join("weights.bin"), b"fine-tuned here").unwrap();
    std::fs::write(target.join("code/train.py"), "print('my experiment')\n").unwrap();
    std::fs::write(p.ws.join("code/train.py"), "print('train v3')\n").unwrap();
    let job = p.dst.json(&["pull", "proj"]);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        std::fs::read(target.join("weights.bin")).unwrap(),
        b"fine-tuned here"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("code/train.py")).unwrap(),
        "print('train v3')\n"
    );
    let kept: Vec<_> = std::fs::read_dir(target.join("code"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("train.py.local-"))
        .collect();
    assert_eq!(kept.len(), 1, "one kept copy: {kept:?}");
    assert_eq!(
        std::fs::read_to_string(target.join("code").join(&kept[0])).unwrap(),
        "print('my experiment')\n"
    );
    let notes = job["notes"].to_string();
    assert!(
        notes.contains("code/train.py was edited here") && notes.contains(&kept[0]),
        "the job names the kept copy: {notes}"
    );
}

#[test]
fn a_clone_into_an_existing_folder_or_from_an_unknown_peer_is_refused() {
    let p = pair();
    let out = p.dst.cli(&["clone", "nobody/proj"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("no peer \"nobody\""),
        "{:?}",
        text(&out)
    );
    let out = p.dst.cli(&["clone", "src/nothing"]);
    assert!(
        text(&out).1.contains("shares no workspace"),
        "{:?}",
        text(&out)
    );
    let taken = p._tmp.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("mine.txt"), "keep").unwrap();
    let out = p
        .dst
        .cli(&["clone", "src/proj", "--to", taken.to_str().unwrap()]);
    assert!(text(&out).1.contains("already exists"), "{:?}", text(&out));
    assert_eq!(
        std::fs::read_to_string(taken.join("mine.txt")).unwrap(),
        "keep"
    );
}

#[test]
fn a_clone_survives_a_killed_source_and_resumes_where_it_stopped() {
    let mut p = pair();
    let Some((id, target)) = sharded_clone_under_way(&p) else {
        eprintln!(
            "the transfer finished before the source could be killed; nothing to resume on this machine"
        );
        return;
    };
    p.src.crash();
    let failed = wait_for("the clone fails", SOON, || {
        let all = p.dst.json(&["clones"]);
        all.as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id.as_str() && j["state"] != "running")
            .cloned()
    });
    if failed["state"] == "done" {
        eprintln!(
            "the transfer finished before the source was killed; nothing to resume on this machine"
        );
        return;
    }
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("resume"),
        "{failed}"
    );
    assert!(
        p.dst
            .json(&["workspace", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing half-registered"
    );
    let whole = failed["progress"]["files_done"].as_u64().unwrap();

    // The source comes back (same data dir, same id); the same clone resumes.
    let src_dir = p.src.data_dir.clone();
    let group = p.dst.json(&["discovery", "status"])["status"]["group"]
        .as_str()
        .unwrap()
        .to_string();
    p.src = TestNode::start_in(&src_dir, "src", &["--discovery-group", &group]).unwrap();
    p.dst.wait_for_catalog("proj");
    let job = p
        .dst
        .json(&["clone", "src/proj", "--to", target.to_str().unwrap()]);
    assert_eq!(job["state"], "done", "{job}");
    let total = job["progress"]["bytes_total"].as_u64().unwrap();
    let sent = job["progress"]["bytes_sent"].as_u64().unwrap();
    eprintln!(
        "{whole} files had arrived whole before the kill; the resume sent {sent} of {total} bytes"
    );
    // Files that arrived whole are kept; only the shard in flight and those after it move
    // again (plus tar headers).
    let shard = 80u64 << 20;
    let small_files = 4096;
    let left = total - (whole.saturating_sub(2)).min(8) * shard;
    assert!(
        sent <= left + small_files + 64 * 1024,
        "resume sent {sent} bytes; at most {left} were missing"
    );
    assert!(whole < 8 && sent < total, "the resume did not start over");
    for i in 0..8 {
        assert_eq!(
            std::fs::metadata(target.join(format!("shards/{i}.bin")))
                .unwrap()
                .len(),
            shard
        );
    }
}

#[test]
fn a_cancelled_clone_leaves_nothing_behind() {
    let p = pair();
    big_file(&p.ws.join("weights.bin"), 400);
    let (target, id) = p.clone_detached();
    let out = p.dst.cli(&["clones", "cancel", &id]);
    let done = wait_for("the clone ends", SOON, || {
        let all = p.dst.json(&["clones"]);
        all.as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id.as_str() && j["state"] != "running")
            .cloned()
    });
    if done["state"] == "done" {
        eprintln!(
            "the clone finished before the cancel arrived ({:?})",
            text(&out)
        );
        return;
    }
    assert_eq!(done["state"], "cancelled", "{done}");
    assert!(!target.exists(), "no target folder");
    let leftovers: Vec<_> = std::fs::read_dir(p._tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".aienv-staging")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "the staging folder is removed: {leftovers:?}"
    );
    assert!(
        p.dst
            .json(&["workspace", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_full_disk_is_a_clear_error_and_nothing_is_registered() {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs everything: this test needs root to mount a small tmpfs"
        );
        eprintln!("SKIPPED a_full_disk...: needs root to mount a small tmpfs");
        return;
    }
    let p = pair();
    big_file(&p.ws.join("weights.bin"), 40);
    let small = p._tmp.path().join("small-disk");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(small.clone());
    let out = p.dst.cli(&[
        "clone",
        "src/proj",
        "--to",
        small.join("clone").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out).1;
    assert!(err.contains("disk is full"), "{err}");
    assert!(
        p.dst
            .json(&["workspace", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing registered"
    );
}

#[test]
fn a_receiver_killed_mid_clone_says_so_after_a_restart_and_resumes() {
    let mut p = pair();
    let Some((id, target)) = sharded_clone_under_way(&p) else {
        eprintln!(
            "the clone ended before the receiver could be killed; nothing to test on this machine"
        );
        return;
    };
    let group = p.src.json(&["discovery", "status"])["status"]["group"]
        .as_str()
        .unwrap()
        .to_string();
    p.dst.restart(&["--discovery-group", &group]).unwrap();
    let jobs = p.dst.json(&["clones"]);
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(job["state"], "interrupted", "{job}");
    assert!(job["error"].as_str().unwrap().contains("resume"), "{job}");
    assert!(
        p.dst
            .json(&["workspace", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing half-registered after the crash"
    );
    assert!(!target.exists(), "the target appears only when complete");

    p.dst.wait_for_catalog("proj");
    let again = p
        .dst
        .json(&["clone", "src/proj", "--to", target.to_str().unwrap()]);
    assert_eq!(again["state"], "done", "{again}");
    let total = again["progress"]["bytes_total"].as_u64().unwrap();
    let sent = again["progress"]["bytes_sent"].as_u64().unwrap();
    eprintln!("after the receiver's restart the clone sent {sent} of {total} bytes");
    assert!(sent < total, "the files written before the crash were kept");
    assert_eq!(
        p.dst.json(&["workspace", "list"]).as_array().unwrap().len(),
        1
    );
}

#[test]
fn sharing_one_environment_shares_it_with_its_projects_and_nothing_else() {
    let group = private_group();
    let src = TestNode::start_with("owner", &["--discovery-group", &group]).unwrap();
    let dst = TestNode::start_with("user", &["--discovery-group", &group]).unwrap();
    let tmp = fast_tempdir();
    let ws = tmp.path().join("lab");
    for (path, body) in [
        ("trainer/train.py", "print('train')\n"),
        ("trainer/requirements.txt", "numpy\n"),
        ("secret-research/notes.md", "unpublished\n"),
        ("README.md", "lab\n"),
    ] {
        std::fs::create_dir_all(ws.join(path).parent().unwrap()).unwrap();
        std::fs::write(ws.join(path), body).unwrap();
    }
    std::fs::write(
        ws.join("aienv.toml"),
        r#"[workspace]
name = "lab"

[sharing]
access = "open"

[[project]]
name = "trainer"

[[project]]
name = "secret-research"

[environment.train]
kind = "process"
projects = ["trainer"]
command = "python trainer/train.py"
python = { requirements = "trainer/requirements.txt" }

[environment.internal]
kind = "process"
projects = ["secret-research", "trainer"]
env = { API_KEY = "hunter2" }
"#,
    )
    .unwrap();
    ok(&src, &["workspace", "add", ws.to_str().unwrap()]);
    let out = ok(&src, &["share", "lab", "--env", "train"]);
    assert!(out.contains("sharing train of \"lab\""), "{out}");

    let seen = wait_for("the user's catalog lists lab", SOON, || {
        let c = dst.json(&["catalog"]);
        let lab: Vec<Value> = c
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["workspace"] == "lab")
            .cloned()
            .collect();
        (!lab.is_empty()).then_some(lab)
    });
    let names: Vec<&str> = seen.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["train"], "only the shared environment is listed");
    let shared_bytes = std::fs::metadata(ws.join("aienv.toml")).unwrap().len()
        + "print('train')\n".len() as u64
        + "numpy\n".len() as u64;
    assert_eq!(
        seen[0]["size_bytes"], shared_bytes,
        "the size is of what is shared"
    );

    let target = tmp.path().join("copy");
    let job = dst.json(&["clone", "owner/lab", "--to", target.to_str().unwrap()]);
    assert_eq!(job["state"], "done", "{job}");
    assert!(target.join("trainer/train.py").exists());
    assert!(target.join("trainer/requirements.txt").exists());
    assert!(
        !target.join("secret-research").exists(),
        "a project only the other environment uses stays home"
    );
    assert!(
        !target.join("README.md").exists(),
        "files outside the shared environment stay home"
    );
    let manifest = std::fs::read_to_string(target.join("aienv.toml")).unwrap();
    assert!(
        !manifest.contains("internal") && !manifest.contains("hunter2"),
        "{manifest}"
    );
    assert!(manifest.contains("[environment.train]"), "{manifest}");
    // The clone is a working workspace with just that environment.
    let cloned = dst.json(&["workspace", "show", "lab"]);
    let envs = &cloned["manifest"]["environments"];
    assert_eq!(envs.as_array().unwrap().len(), 1, "{cloned}");
    assert!(
        std::fs::read_to_string(ws.join("aienv.toml"))
            .unwrap()
            .contains("hunter2"),
        "the owner's file is untouched"
    );

    // Unsharing the last shared environment unshares the workspace.
    let out = ok(&src, &["unshare", "lab", "--env", "train"]);
    assert!(out.contains("no longer shared"), "{out}");
    wait_for("lab to leave the user's catalog", SOON, || {
        let c = dst.json(&["catalog"]);
        (!c.as_array()
            .unwrap()
            .iter()
            .any(|e| e["workspace"] == "lab"))
        .then_some(())
    });
}

#[test]
fn a_workspace_shared_without_environments_is_in_the_catalog_and_clones() {
    let group = private_group();
    let src = TestNode::start_with("src", &["--discovery-group", &group]).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = fast_tempdir();
    let ws = tmp.path().join("datasets");
    ok(&src, &["workspace", "create", ws.to_str().unwrap()]);
    std::fs::write(ws.join("labels.csv"), "id,label\n1,cat\n").unwrap();
    ok(&src, &["share", "datasets", "--access", "open"]);
    dst.wait_for_catalog("datasets");
    let catalog = dst.json(&["catalog"]);
    let entry = &catalog.as_array().unwrap()[0];
    assert_eq!(entry["kind"], Value::Null, "files only: {entry}");
    assert_eq!(entry["fit"]["fits"], true, "{entry}");
    let (table, _) = text(&dst.cli(&["catalog"]));
    assert!(table.contains("files"), "{table}");

    let target = tmp.path().join("copy");
    let job = dst.json(&["clone", "src/datasets", "--to", target.to_str().unwrap()]);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        std::fs::read_to_string(target.join("labels.csv")).unwrap(),
        "id,label\n1,cat\n"
    );
}
