//! Security between real nodes: share access (token, approve), the audit log, TLS with pinned
//! certificates (a changed certificate, a forged announcement, a man in the middle), the API key
//! on a live node, and the secret scan before sharing.

use std::path::PathBuf;
use std::time::Duration;

use aienv_e2e::{TestNode, clone_job, private_group, text, wait_for};
use serde_json::{Value, json};

const SOON: Duration = Duration::from_secs(15);

fn ok(n: &TestNode, args: &[&str]) -> String {
    let out = n.cli(args);
    assert!(out.status.success(), "{args:?}: {:?}", text(&out));
    text(&out).0
}

struct Lab {
    src: TestNode,
    dst: TestNode,
    tmp: tempfile::TempDir,
}

/// Two nodes on one group; `src` has workspace "proj" with a file, shared with `access`.
fn lab(access: &str, src_flags: &[&str]) -> Lab {
    let group = private_group();
    let mut flags = vec!["--discovery-group", group.as_str()];
    flags.extend_from_slice(src_flags);
    let src = TestNode::start_with("src", &flags).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["proj", "second"] {
        let ws = tmp.path().join(name);
        ok(&src, &["workspace", "create", ws.to_str().unwrap()]);
        std::fs::write(ws.join("train.py"), "print('train')\n").unwrap();
        let out = ok(&src, &["share", name, "--access", access]);
        assert!(out.contains(&format!("access: {access}")), "{out}");
    }
    dst.wait_for_catalog("proj");
    Lab { src, dst, tmp }
}

impl Lab {
    fn target(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `aienv clone src/WS --to TMP/TO --token TOKEN` on dst, which must fail: its message.
    fn refused_with(&self, ws: &str, to: &str, token: &str) -> String {
        let to = self.target(to);
        let source = format!("src/{ws}");
        self.dst.fails(&[
            "clone",
            &source,
            "--to",
            to.to_str().unwrap(),
            "--token",
            token,
        ])
    }
}

fn finished(n: &TestNode, id: &str) -> Value {
    wait_for("the clone ends", Duration::from_secs(30), || {
        let j = clone_job(n, id);
        (j["state"] != "running").then_some(j)
    })
}

#[test]
fn a_token_share_needs_a_valid_token_and_the_audit_log_says_who_got_in() {
    let l = lab("token", &[]);
    let to = l.target("c1");
    let err = l
        .dst
        .fails(&["clone", "src/proj", "--to", to.to_str().unwrap()]);
    assert!(
        err.contains("with a token") && err.contains("aienv share token create proj"),
        "{err}"
    );
    assert!(!to.join("train.py").exists(), "nothing arrived");

    let wrong = l.refused_with("proj", "c1", "aienv_st_guess");
    assert!(wrong.contains("not valid for \"proj\""), "{wrong}");

    let t = l
        .src
        .json(&["share", "token", "create", "proj", "--label", "dst"]);
    let secret = t["secret"].as_str().unwrap();
    // A token for one workspace does not open another.
    let other = l.refused_with("second", "c2", secret);
    assert!(other.contains("not valid for \"second\""), "{other}");

    let job = l.dst.json(&[
        "clone",
        "src/proj",
        "--to",
        to.to_str().unwrap(),
        "--token",
        secret,
    ]);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        std::fs::read_to_string(to.join("train.py")).unwrap(),
        "print('train')\n"
    );

    // The token is kept for pulls, until the owner revokes it.
    let ws = l.tmp.path().join("proj");
    std::fs::write(ws.join("train.py"), "print('v2')\n").unwrap();
    let pulled = l.dst.json(&["pull", "proj"]);
    assert_eq!(pulled["state"], "done", "{pulled}");
    assert_eq!(
        std::fs::read_to_string(to.join("train.py")).unwrap(),
        "print('v2')\n"
    );
    let listed = l.src.json(&["share", "token", "list", "proj"]);
    assert_eq!(listed[0]["label"], "dst");
    assert!(listed[0]["last_used_ms"].as_u64().is_some(), "{listed}");
    assert!(
        !listed.to_string().contains(secret),
        "listing never shows the secret"
    );

    ok(
        &l.src,
        &[
            "share",
            "token",
            "revoke",
            "proj",
            t["id"].as_str().unwrap(),
        ],
    );
    std::fs::write(ws.join("train.py"), "print('v3')\n").unwrap();
    let out = l.dst.cli(&["pull", "proj"]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success() && format!("{stdout}{stderr}").contains("revoked this token"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(to.join("train.py")).unwrap(),
        "print('v2')\n",
        "a refused pull changes nothing"
    );

    // An expired token is refused with its own message.
    let short = l
        .src
        .json(&["share", "token", "create", "proj", "--expires", "1s"]);
    std::thread::sleep(Duration::from_millis(1200));
    let expired = l.refused_with("proj", "c3", short["secret"].as_str().unwrap());
    assert!(expired.contains("expired"), "{expired}");

    // The audit log has who was let in and who was refused, and why.
    let audit = l.src.json(&["audit", "--limit", "100"]);
    let records = audit.as_array().unwrap();
    let refused: Vec<&Value> = records.iter().filter(|r| r["allowed"] == false).collect();
    let allowed: Vec<&Value> = records.iter().filter(|r| r["allowed"] == true).collect();
    for code in [
        "token_required",
        "token_invalid",
        "token_revoked",
        "token_expired",
    ] {
        assert!(
            refused
                .iter()
                .any(|r| r["detail"].as_str().unwrap().starts_with(code)),
            "{code} is in the audit log: {audit}"
        );
    }
    assert!(
        allowed
            .iter()
            .any(|r| r["action"] == "clone" && r["peer_name"] == "dst")
    );
    assert!(records.iter().any(|r| r["action"] == "token_revoked"));
    assert!(
        records
            .iter()
            .all(|r| r["from"].as_str().unwrap().starts_with("127.0.0.1:") || r["from"] == "owner")
    );
}

#[test]
fn an_approve_share_waits_for_the_owner_who_can_say_yes_or_no() {
    let l = lab("approve", &["--approve-timeout", "4"]);
    let start = |ws: &str, to: &str| -> String {
        let job = l.dst.json(&[
            "clone",
            &format!("src/{ws}"),
            "--to",
            l.target(to).to_str().unwrap(),
            "--detach",
        ]);
        job["id"].as_str().unwrap().to_string()
    };
    let pending = |ws: &str| -> Value {
        wait_for("the request reaches the owner", SOON, || {
            l.src
                .json(&["access", "list"])
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["workspace"] == ws)
                .cloned()
        })
    };

    // Yes: the clone goes on, and the peer holds a grant the owner sees and can revoke.
    let id = start("proj", "yes");
    let r = pending("proj");
    assert_eq!(r["peer_name"], "dst");
    assert!(
        clone_job(&l.dst, &id)["notes"]
            .to_string()
            .contains("approve")
    );
    ok(&l.src, &["access", "approve", r["id"].as_str().unwrap()]);
    let job = finished(&l.dst, &id);
    assert_eq!(job["state"], "done", "{job}");
    assert!(l.target("yes").join("train.py").exists());
    let tokens = l.src.json(&["share", "token", "list", "proj"]);
    assert_eq!(tokens[0]["granted_to"], "dst", "{tokens}");
    let dst_cert = health(&l.dst)["node"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        tokens[0]["bound_to"],
        dst_cert.as_str(),
        "the grant is bound to dst's certificate"
    );
    let audit = l.src.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "clone"
                && r["allowed"] == true
                && r["peer_verified"] == true
                && r["peer_cert"] == dst_cert.as_str()),
        "dst's clone is logged with its verified certificate: {audit}"
    );

    // The grant, copied to another machine, opens nothing: not with dst's name, not without it.
    let held = std::fs::read_to_string(l.dst.data_dir.join("held-tokens.json")).unwrap();
    let held: Value = serde_json::from_str(&held).unwrap();
    let grant = held
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    let thief_dir = tempfile::tempdir().unwrap();
    let thief = aienv_trust::Identity::load_or_create(thief_dir.path(), "thief").unwrap();
    let src_fp = health(&l.src)["node"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let files = format!(
        "{}/api/v1/shares/proj/files",
        l.src.url.replace("http://", "https://")
    );
    let dst_id = l.dst.instance_id();
    for (cert, claim, code) in [
        (Some(&thief), Some(dst_id.as_str()), "peer_impersonation"),
        (Some(&thief), None, "token_other_peer"),
        (None, None, "token_other_peer"),
    ] {
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(aienv_trust::tls_config(&src_fp, cert))
            .build()
            .unwrap();
        let mut req = http.get(&files).header("aienv-share-token", grant);
        if let Some(id) = claim {
            req = req
                .header("aienv-node-id", id)
                .header("aienv-node-name", "dst");
        }
        let res = req.send().unwrap();
        assert_eq!(res.status().as_u16(), 403, "{code}");
        let body: Value = res.json().unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }

    // No: the peer is told the owner refused.
    let id = start("second", "no");
    let r = pending("second");
    ok(&l.src, &["access", "deny", r["id"].as_str().unwrap()]);
    let job = finished(&l.dst, &id);
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("refused the request"),
        "{job}"
    );
    assert!(!l.target("no").join("train.py").exists());

    // Nobody answers: refused after the timeout, with what to do.
    let id = start("second", "silence");
    pending("second");
    let job = finished(&l.dst, &id);
    assert!(job["error"].as_str().unwrap().contains("answered"), "{job}");
    assert!(
        l.src
            .json(&["access", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let answered = l.src.cli(&["access", "approve", "nosuch"]);
    assert!(
        text(&answered).1.contains("no access request"),
        "{:?}",
        text(&answered)
    );
}

fn peer_of(n: &TestNode, id: &str) -> Option<Value> {
    n.json(&["peers"])
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
}

fn health(n: &TestNode) -> Value {
    reqwest::blocking::get(format!("{}/api/v1/health", n.url))
        .unwrap()
        .json()
        .unwrap()
}

/// Sends one announcement datagram to the group, as a forger on this machine would.
fn announce(group: &str, datagram: &Value) {
    // Bound to 127.0.0.1, the datagram leaves through loopback (as the nodes' own do here).
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_multicast_loop_v4(true).unwrap();
    sock.send_to(datagram.to_string().as_bytes(), group)
        .unwrap();
}

fn dropped(status: &Value, reason: &str) -> u64 {
    status["dropped"][reason]
        .as_u64()
        .or_else(|| status["status"]["dropped"][reason].as_u64())
        .unwrap_or(0)
}

#[test]
fn peers_talk_tls_with_pinned_certificates_and_refuse_impostors() {
    let group = private_group();
    let mut src = TestNode::start_with("src", &["--discovery-group", &group]).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("proj");
    ok(&src, &["workspace", "create", ws.to_str().unwrap()]);
    std::fs::write(ws.join("data.txt"), "payload\n").unwrap();
    ok(&src, &["share", "proj", "--access", "open"]);
    dst.wait_for_catalog("proj");
    let src_id = src.instance_id();
    let fp = health(&src)["node"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fp.len(), 64);
    let peer = peer_of(&dst, &src_id).unwrap();
    assert_eq!(peer["scheme"], "https");
    assert!(
        peer["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert_eq!(peer["fingerprint"], fp.as_str());
    let trusted = dst.json(&["peers", "trusted"]);
    assert_eq!(
        trusted[0]["fingerprint"],
        fp.as_str(),
        "pinned on first contact"
    );

    // A forged announcement: src's id, another certificate, another port. Not believed.
    let port: u16 = peer["port"].as_u64().unwrap() as u16;
    let forged = json!({"aienv": 1, "kind": "announce", "id": src_id, "name": "src",
        "port": 9, "scheme": "https", "fp": "f".repeat(64), "rev": "forged", "shared": 9,
        "version": "0.1.0", "hello": false});
    announce(&group, &forged);
    wait_for("the forgery is dropped", SOON, || {
        (dropped(&dst.json(&["discovery", "status"]), "impostor") >= 1).then_some(())
    });
    let peer = peer_of(&dst, &src_id).unwrap();
    assert_eq!(
        peer["port"].as_u64(),
        Some(u64::from(port)),
        "the peer did not move"
    );
    let mut bye = forged.clone();
    bye["kind"] = json!("goodbye");
    announce(&group, &bye);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        peer_of(&dst, &src_id).is_some(),
        "a forged goodbye does not hide the peer"
    );

    // A man in the middle: the right fingerprint announced, but the address leads to a machine
    // with another certificate (here a third node). src is paused so only the forger speaks.
    let mitm = TestNode::start("mitm").unwrap();
    let mitm_port = mitm.url.rsplit(':').next().unwrap().to_string();
    let pid = src.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let lure = json!({"aienv": 1, "kind": "announce", "id": src_id, "name": "src",
        "port": mitm_port.parse::<u16>().unwrap(), "scheme": "https", "fp": fp,
        "rev": "lure", "shared": 1, "version": "0.1.0", "hello": false});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keep_luring = {
        let (stop, group, lure) = (stop.clone(), group.clone(), lure.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                announce(&group, &lure);
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    wait_for("the lure is believed", SOON, || {
        let p = peer_of(&dst, &src_id)?;
        (p["port"].as_u64() == mitm_port.parse().ok()).then_some(())
    });
    let err = dst.fails(&[
        "clone",
        "src/proj",
        "--to",
        tmp.path().join("m").to_str().unwrap(),
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    keep_luring.join().unwrap();
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert!(err.contains("not the one pinned"), "{err}");
    assert!(!tmp.path().join("m/data.txt").exists());

    // src comes back with a new certificate (its tls/ folder was lost): refused until trusted.
    src.stop().unwrap();
    std::fs::remove_dir_all(src.data_dir.join("tls")).unwrap();
    src.restart(&["--discovery-group", &group]).unwrap();
    let new_fp = health(&src)["node"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_fp, fp);
    let err = wait_for(
        "the changed certificate is refused",
        Duration::from_secs(20),
        || {
            let out = dst.cli(&[
                "clone",
                "src/proj",
                "--to",
                tmp.path().join("c").to_str().unwrap(),
            ]);
            let (_, e) = text(&out);
            (!out.status.success() && e.contains("another certificate")).then_some(e)
        },
    );
    assert!(
        err.contains(&format!("aienv peers trust {src_id}")),
        "{err}"
    );
    ok(&dst, &["peers", "trust", "src"]);
    let job = dst.json(&[
        "clone",
        "src/proj",
        "--to",
        tmp.path().join("c").to_str().unwrap(),
    ]);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("c/data.txt")).unwrap(),
        "payload\n"
    );
}

#[test]
fn sharing_warns_of_files_that_look_like_secrets() {
    let n = TestNode::start("solo").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("leaky");
    ok(&n, &["workspace", "create", ws.to_str().unwrap()]);
    std::fs::write(ws.join("config.py"), "KEY = 'AKIAIOSFODNN7EXAMPLE'\n").unwrap();
    std::fs::write(
        ws.join(".env"),
        "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\n",
    )
    .unwrap();
    let out = n.cli(&["share", "leaky"]);
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("config.py:1: an AWS access key"), "{err}");
    assert!(
        !err.contains(".env"),
        ".env is excluded by default, so not a warning: {err}"
    );
    assert!(err.contains("--yes"), "{err}");
    let ws_now = n.json(&["workspace", "show", "leaky"]);
    assert_ne!(
        ws_now["manifest"]["sharing"]["enabled"], true,
        "not shared: {ws_now}"
    );

    // --yes shares anyway (the warning is printed all the same).
    let out = ok(&n, &["share", "leaky", "--yes"]);
    assert!(out.contains("sharing"), "{out}");
}

#[test]
fn peers_clone_from_a_node_that_has_an_api_key_and_its_other_routes_need_the_key() {
    let group = private_group();
    let src =
        TestNode::start_with("src", &["--discovery-group", &group, "--api-key", "k3y"]).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("proj");
    let with_key = |args: &[&str]| {
        let mut all = vec!["--api-key", "k3y"];
        all.extend_from_slice(args);
        ok(&src, &all)
    };
    with_key(&["workspace", "create", ws.to_str().unwrap()]);
    std::fs::write(ws.join("a.txt"), "a\n").unwrap();
    with_key(&["share", "proj", "--access", "open"]);
    dst.wait_for_catalog("proj");
    let job = dst.json(&[
        "clone",
        "src/proj",
        "--to",
        tmp.path().join("c").to_str().unwrap(),
    ]);
    assert_eq!(job["state"], "done", "{job}");
    let no_key = src.cli(&["workspace", "list"]);
    assert!(
        text(&no_key).1.contains("requires an API key"),
        "{:?}",
        text(&no_key)
    );
}

#[test]
fn a_generated_api_key_is_saved_shown_once_and_required() {
    let mut n = TestNode::start_with("keyed", &["--api-key", "generate"]).unwrap();
    let config = std::fs::read_to_string(n.data_dir.join("config.toml")).unwrap();
    let key = config
        .lines()
        .find_map(|l| l.strip_prefix("api_key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the key is saved in config.toml")
        .to_string();
    assert_eq!(key.len(), 64, "{config}");
    let refused = n.cli(&["workspace", "list"]);
    assert!(
        text(&refused).1.contains("requires an API key"),
        "{:?}",
        text(&refused)
    );
    ok(&n, &["--api-key", &key, "workspace", "list"]);
    // A restart without the flag keeps requiring it (it is in config.toml).
    n.restart(&[]).unwrap();
    assert!(!n.cli(&["workspace", "list"]).status.success());
    ok(&n, &["--api-key", &key, "workspace", "list"]);
}

#[test]
fn symlinks_out_of_a_share_and_path_tricks_never_serve_what_is_outside() {
    let group = private_group();
    let src = TestNode::start_with("src", &["--discovery-group", &group]).unwrap();
    let dst = TestNode::start_with("dst", &["--discovery-group", &group]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "OUTSIDE-SECRET\n").unwrap();
    let ws = tmp.path().join("proj");
    ok(&src, &["workspace", "create", ws.to_str().unwrap()]);
    std::fs::write(ws.join("in.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), ws.join("escape-file")).unwrap();
    ok(&src, &["share", "proj", "--access", "open"]);
    dst.wait_for_catalog("proj");

    // The file list has the links as links; nothing under them.
    let http = reqwest::blocking::Client::new();
    let list: Value = http
        .get(format!("{}/api/v1/shares/proj/files", src.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = list["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| !e["path"].as_str().unwrap().starts_with("escape-dir/")),
        "{list}"
    );
    let link = entries
        .iter()
        .position(|e| e["path"] == "escape-file")
        .unwrap();
    assert_eq!(entries[link]["type"], "symlink", "{}", entries[link]);
    // Asking for the link's content as a file is refused.
    let res = http
        .post(format!("{}/api/v1/shares/proj/stream", src.url))
        .json(&json!({"revision": list["revision"], "ranges": [[link, link + 1]]}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(!res.text().unwrap().contains("OUTSIDE-SECRET"));
    // Path tricks name no workspace.
    for trick in ["..%2F..%2Foutside", "..", "%2e%2e", "proj%2F..%2F.."] {
        let res = http
            .get(format!("{}/api/v1/shares/{trick}/files", src.url))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 404, "{trick}");
    }

    // A clone gets the links, never the content behind them.
    let to = tmp.path().join("clone");
    let out = dst.cli(&["clone", "src/proj", "--to", to.to_str().unwrap()]);
    let (o, e) = text(&out);
    if out.status.success() {
        for name in ["escape-dir", "escape-file"] {
            let meta = std::fs::symlink_metadata(to.join(name)).unwrap();
            assert!(meta.file_type().is_symlink(), "{name} arrives as a link");
        }
    } else {
        // Or the receiver refuses a link that leads out of the clone, which is safe too.
        assert!(format!("{o}{e}").contains("leads outside"), "{o}{e}");
    }
    let mut stack = vec![to.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let t = entry.file_type().unwrap();
            if t.is_dir() {
                stack.push(entry.path());
            } else if t.is_file() {
                let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
                assert!(
                    !body.contains("OUTSIDE-SECRET"),
                    "{}",
                    entry.path().display()
                );
            }
        }
    }
}
