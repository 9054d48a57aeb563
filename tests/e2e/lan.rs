use std::time::{Duration, Instant};

use aienv_e2e::{TestNode, private_group, text, wait_for};
use serde_json::Value;

const SOON: Duration = Duration::from_secs(5);

/// Nodes that share a discovery group (of their own, on 127.0.0.1).
fn lan(names: &[&str], group: &str) -> Vec<TestNode> {
    names
        .iter()
        .map(|n| TestNode::start_with(n, &["--discovery-group", group]).unwrap())
        .collect()
}

fn catalog_of(node: &TestNode) -> Vec<Value> {
    node.json(&["catalog"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn lists(node: &TestNode, ids: &[String]) -> bool {
    let have = node.peer_ids();
    ids.iter().all(|id| have.contains(id))
}

#[tokio::test]
async fn nodes_find_each_other_and_notice_goodbyes_crashes_and_restarts() {
    let group = private_group();
    let mut nodes = lan(&["alpha", "beta", "gamma"], &group);
    let ids: Vec<String> = nodes.iter().map(TestNode::instance_id).collect();
    let mut events = nodes[0].events().await.unwrap();

    let started = Instant::now();
    for (i, n) in nodes.iter().enumerate() {
        let others: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id.clone())
            .collect();
        wait_for("every node lists the other two", SOON, || {
            lists(n, &others).then_some(())
        });
    }
    eprintln!(
        "three nodes listed each other after {:?}",
        started.elapsed()
    );
    let peers = nodes[0].json(&["peers"]);
    let beta = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "beta")
        .expect("beta listed by name");
    assert_eq!(beta["via"], "multicast");
    assert_eq!(
        beta["url"],
        nodes[1].url.replace("http://", "https://").as_str(),
        "the address is beta's API, over TLS"
    );

    // A clean stop: gone at once from the others (goodbye), with an event.
    nodes[1].stop().unwrap();
    wait_for("beta disappears after its goodbye", SOON, || {
        (!nodes[0].peer_ids().contains(&ids[1])).then_some(())
    });
    let left = events
        .until_match("peer_left", |e| e["peer"]["id"] == ids[1].as_str(), SOON)
        .await
        .unwrap();
    assert_eq!(left["reason"], "goodbye");

    // A crash: no goodbye, gone after the expiry.
    nodes[2].crash();
    let left = events
        .until_match(
            "peer_left",
            |e| e["peer"]["id"] == ids[2].as_str(),
            Duration::from_secs(8),
        )
        .await
        .unwrap();
    assert_eq!(left["reason"], "expired");

    // Restarted on the same data dir: the same id, listed once.
    let gamma_dir = nodes[2].data_dir.clone();
    let again = TestNode::start_in(&gamma_dir, "gamma", &["--discovery-group", &group]).unwrap();
    assert_eq!(
        again.instance_id(),
        ids[2],
        "a restart keeps the instance id"
    );
    wait_for("gamma is back", SOON, || {
        lists(&nodes[0], &ids[2..3]).then_some(())
    });
    let count = nodes[0]
        .peer_ids()
        .iter()
        .filter(|id| **id == ids[2])
        .count();
    assert_eq!(count, 1, "no duplicate after a restart");
}

#[tokio::test]
async fn the_catalog_follows_shares_edits_unshares_and_departures() {
    let group = private_group();
    let mut nodes = lan(&["owner", "viewer"], &group);
    let owner_id = nodes[0].instance_id();
    wait_for("the viewer sees the owner", SOON, || {
        lists(&nodes[1], std::slice::from_ref(&owner_id)).then_some(())
    });
    let mut events = nodes[1].events().await.unwrap();

    let root = tempfile::tempdir().unwrap();
    let ws = root.path().join("llm");
    let ok = |n: &TestNode, args: &[&str]| {
        let out = n.cli(args);
        assert!(out.status.success(), "{args:?}: {:?}", text(&out));
    };
    ok(&nodes[0], &["workspace", "create", ws.to_str().unwrap()]);
    ok(
        &nodes[0],
        &["env", "add", "llm", "notebook", "--kind", "process"],
    );
    std::fs::write(ws.join("weights.bin"), vec![7u8; 100_000]).unwrap();
    // Shared only now: until then the viewer's catalog has nothing of the owner's.
    assert!(
        nodes[1].json(&["catalog"]).as_array().unwrap().is_empty(),
        "nothing is shared before `--share true`"
    );
    let t = Instant::now();
    ok(&nodes[0], &["workspace", "edit", "llm", "--share", "true"]);
    events
        .until_match(
            "catalog_changed",
            |e| e["owner_id"] == owner_id.as_str(),
            SOON,
        )
        .await
        .unwrap();
    eprintln!(
        "a share was visible on the other node after {:?}",
        t.elapsed()
    );
    let catalog = nodes[1].json(&["catalog"]);
    let entry = &catalog[0];
    assert_eq!(entry["owner"]["name"], "owner");
    assert_eq!(entry["owner"]["local"], false);
    assert_eq!(entry["workspace"], "llm");
    assert_eq!(entry["name"], "notebook");
    assert_eq!(entry["kind"], "process");
    assert!(entry["size_bytes"].as_u64().unwrap() >= 100_000, "{entry}");

    // An edit (a hand edit of the manifest) reaches the viewer.
    let manifest = ws.join("aienv.toml");
    let text = std::fs::read_to_string(&manifest).unwrap()
        + "\n[environment.serve]\nkind = \"container\"\nimage = \"vllm/vllm-openai:latest\"\nrequires = { gpus = 1 }\n";
    std::fs::write(&manifest, text).unwrap();
    let has_serve = |c: &Value| {
        c.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "serve" && e["requires"]["gpus"] == 1)
    };
    wait_for("the edit shows on the viewer", SOON, || {
        has_serve(&nodes[1].json(&["catalog"])).then_some(())
    });

    // Unsharing removes it.
    ok(&nodes[0], &["workspace", "edit", "llm", "--share", "false"]);
    wait_for("the unshare shows", SOON, || {
        catalog_of(&nodes[1]).is_empty().then_some(())
    });

    // And a departed owner takes its entries along.
    ok(&nodes[0], &["workspace", "edit", "llm", "--share", "true"]);
    wait_for("shared again", SOON, || {
        (!catalog_of(&nodes[1]).is_empty()).then_some(())
    });
    nodes[0].stop().unwrap();
    wait_for("the owner's entries leave with it", SOON, || {
        catalog_of(&nodes[1]).is_empty().then_some(())
    });
}

#[test]
fn a_peer_added_by_address_is_probed_over_http_without_multicast() {
    // Two nodes on different groups: multicast cannot bring them together.
    let a = TestNode::start("a").unwrap();
    let b = TestNode::start("b").unwrap();
    let b_id = b.instance_id();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        a.peer_ids().is_empty(),
        "separate groups do not see each other"
    );

    let address = b.url.trim_start_matches("http://").to_string();
    let out = a.cli(&["peers", "add", &address]);
    assert!(out.status.success(), "{:?}", text(&out));
    let peer = wait_for("b shows as a static peer", SOON, || {
        a.json(&["peers"])
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == b_id.as_str())
            .cloned()
    });
    assert_eq!(peer["via"], "static");
    assert_eq!(peer["name"], "b");

    let again = a.cli(&["peers", "add", &address]);
    assert_eq!(again.status.code(), Some(1), "adding twice is refused");
    let bad = a.cli(&["peers", "add", "no-port-here"]);
    assert!(text(&bad).1.contains("HOST:PORT"), "{:?}", text(&bad));

    let out = a.cli(&["peers", "remove", &address]);
    assert!(out.status.success(), "{:?}", text(&out));
    wait_for("b goes once it is no longer probed", SOON, || {
        a.peer_ids().is_empty().then_some(())
    });
    let status = a.json(&["discovery", "status"]);
    assert!(status["static_peers"].as_array().unwrap().is_empty());
}

/// A peer's catalog says, for each environment, whether it fits this machine and why not; an
/// environment that asks for a GPU but runs without one (its fallback) fits, with a note.
#[test]
fn catalog_entries_say_whether_they_fit_this_machine() {
    let group = private_group();
    let nodes = lan(&["owner", "viewer"], &group);
    let (owner, viewer) = (&nodes[0], &nodes[1]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fits");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("aienv.toml"),
        r#"[workspace]
name = "fits"

[sharing]
enabled = true
access = "open"

[environment.anywhere]
kind = "process"
command = "true"

[environment.gpu-optional]
kind = "process"
command = "true"
requires = { gpus = 1 }
fallback = { when = "no-gpu", env = { CUDA_VISIBLE_DEVICES = "" } }

[environment.huge]
kind = "process"
command = "true"
requires = { cpus = 4096 }
"#,
    )
    .unwrap();
    owner.json(&["workspace", "add", dir.to_str().unwrap()]);
    viewer.wait_for_catalog("fits");
    let catalog = catalog_of(viewer);
    let fit = |name: &str| {
        catalog
            .iter()
            .find(|e| e["name"] == name && e["workspace"] == "fits")
            .map(|e| e["fit"].clone())
            .unwrap_or_else(|| panic!("{name} not in {catalog:?}"))
    };
    assert_eq!(fit("anywhere")["fits"], true);
    let huge = fit("huge");
    assert_eq!(huge["fits"], false);
    assert!(
        huge["missing"][0]
            .as_str()
            .unwrap()
            .contains("needs 4096 CPUs"),
        "{huge}"
    );
    let optional = fit("gpu-optional");
    assert_eq!(
        optional["fits"], true,
        "its fallback runs it without a GPU: {optional}"
    );
}
