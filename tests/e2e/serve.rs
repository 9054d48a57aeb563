use std::time::Duration;

use aienv_e2e::{TestNode, cli_with_env, serve_command, text};

#[test]
fn serve_logs_one_line_with_its_address_and_answers_health() {
    let node = TestNode::start("alpha").unwrap();
    let log = node.log();
    let line = log
        .lines()
        .find(|l| l.contains("listening on"))
        .unwrap_or_else(|| panic!("no address line in:\n{log}"));
    assert!(
        line.contains(&node.url),
        "the logged address is the one in node.json ({}): {line}",
        node.url
    );
    let out = node.cli(&["workspace", "list", "--json"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn a_stopped_node_withdraws_its_address_and_keeps_its_workspaces() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut node = TestNode::start_in(&data, "alpha", &[]).unwrap();
    let ws = tmp.path().join("keep-me");
    let out = node.cli(&["workspace", "create", ws.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let status = node.stop().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(
        !data.join("node.json").exists(),
        "node.json goes with the node"
    );

    let out = cli_with_env(
        &["workspace", "list"],
        &[("AIENV_DATA_DIR", data.as_os_str())],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("no aienv node is running") && err.contains("aienv serve"),
        "{err}"
    );

    let node = TestNode::start_in(&data, "alpha", &[]).unwrap();
    let (out, _) = text(&node.cli(&["workspace", "list"]));
    assert!(
        out.contains("keep-me"),
        "the registry survives a restart: {out}"
    );
}

#[test]
fn client_commands_say_clearly_when_no_node_answers() {
    let out = cli_with_env(&["--node", "http://127.0.0.1:9", "workspace", "list"], &[]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("cannot reach the aienv node at http://127.0.0.1:9")
            && err.contains("aienv serve"),
        "{err}"
    );
}

#[test]
fn wrong_usage_exits_2() {
    let out = cli_with_env(&["workspace", "frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
}

#[test]
fn an_occupied_port_is_refused_with_a_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = serve_command(
        &tmp.path().join("d"),
        "x",
        &["--listen", &format!("127.0.0.1:{port}")],
    )
    .output()
    .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("already in use") && err.contains("--listen"),
        "{err}"
    );
    assert!(
        !tmp.path().join("d/node.json").exists(),
        "a node that did not start records no address"
    );
}

#[test]
fn a_data_dir_that_cannot_be_written_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where a folder should be: refused even for root, unlike permission bits.
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let out = serve_command(&tmp.path().join("file/data"), "x", &[])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("cannot use data dir") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn a_second_node_on_the_same_data_dir_is_refused() {
    let first = TestNode::start("first").unwrap();
    let out = serve_command(&first.data_dir, "second", &[])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("already using data dir") && err.contains(&first.url),
        "{err}"
    );
    let out = first.cli(&["workspace", "list"]);
    assert!(
        out.status.success(),
        "the first node keeps running: {:?}",
        text(&out)
    );
}

#[test]
fn a_corrupt_registry_is_kept_aside_and_the_node_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("registry.json"), "{ not json").unwrap();
    let node = TestNode::start_in(&data, "x", &[]).unwrap();
    let log = node.log();
    assert!(
        log.contains("could not be read") && log.contains("registry.json.corrupt-"),
        "{log}"
    );
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registry.json.corrupt-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(kept[0].path()).unwrap(),
        "{ not json"
    );
}

#[test]
fn a_registry_from_a_newer_version_stops_the_node_and_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let newer = r#"{"format": 99, "workspaces": []}"#;
    std::fs::write(data.join("registry.json"), newer).unwrap();
    let mut child = serve_command(&data, "x", &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node should refuse to start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("newer aienv") && err.contains("format 99"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("registry.json")).unwrap(),
        newer
    );
}
