//! The tray menu from node states a user would be in: nothing yet, a run going, a clone going,
//! a node that does not answer.

use serde_json::json;

use super::{Action, ENVIRONMENTS, Entry, Snapshot, build};

fn ws(id: &str, name: &str, envs: &[&str]) -> aienv_core::WorkspaceSummary {
    serde_json::from_value(
        json!({"id": id, "path": "/w", "name": name, "description": null,
        "shared": false, "projects": [], "environments": envs, "problem": null}),
    )
    .unwrap()
}

fn run(
    id: &str,
    ws: &str,
    env: &str,
    state: &str,
    tools: serde_json::Value,
) -> aienv_core::run::Run {
    serde_json::from_value(json!({"id": id, "workspace_id": ws, "workspace_name": format!("name-{ws}"),
        "environment": env, "kind": "process", "state": state, "tools": tools, "error": null,
        "exit_code": null, "handle": {"backend": "none"}, "log": "/l", "started_ms": 1, "ended_ms": null}))
    .unwrap()
}

fn labels(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::Item { label, .. }
            | Entry::Check { label, .. }
            | Entry::Submenu { label, .. } => label.clone(),
            Entry::Separator => "---".into(),
        })
        .collect()
}

fn submenu<'a>(entries: &'a [Entry], label: &str) -> &'a [Entry] {
    entries
        .iter()
        .find_map(|e| match e {
            Entry::Submenu { label: l, items } if l == label => Some(items.as_slice()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no submenu {label:?} in {:?}", labels(entries)))
}

fn id_of(entries: &[Entry], label: &str) -> String {
    entries
        .iter()
        .find_map(|e| match e {
            Entry::Item { id, label: l, .. } | Entry::Check { id, label: l, .. } if l == label => {
                Some(id.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no item {label:?} in {:?}", labels(entries)))
}

#[test]
fn a_fresh_node_offers_the_window_and_says_what_is_missing() {
    let m = build(&Snapshot {
        connected: true,
        ..Default::default()
    });
    assert_eq!(
        labels(&m),
        [
            "Open AI Environment Manager",
            "---",
            "No environments yet",
            "---",
            "No peers on the LAN",
            "Pause sharing",
            "---",
            "Quit"
        ]
    );
    assert_eq!(Action::parse(&id_of(&m, "Quit")), Some(Action::Quit));
    assert_eq!(
        Action::parse(&id_of(&m, "Pause sharing")),
        Some(Action::PauseSharing(true))
    );
}

#[test]
fn a_running_environment_offers_its_links_and_stop_and_comes_first() {
    let s = Snapshot {
        connected: true,
        workspaces: vec![
            ws("w1", "vision", &["lab", "serve"]),
            ws("w2", "audio", &["asr"]),
        ],
        runs: vec![run(
            "r1",
            "w1",
            "serve",
            "running",
            json!([{"name": "API", "port": 8000, "url": "http://127.0.0.1:8000/docs", "ready": true}]),
        )],
        peers: 2,
        ..Default::default()
    };
    let m = build(&s);
    let l = labels(&m);
    assert_eq!(
        &l[2..5],
        ["● vision / serve", "audio / asr", "vision / lab"],
        "recent first, then by name"
    );
    assert!(l.contains(&"2 peers on the LAN".to_string()));
    let serve = submenu(&m, "● vision / serve");
    assert_eq!(labels(serve), ["running (process)", "Open API", "Stop"]);
    assert_eq!(
        Action::parse(&id_of(serve, "Open API")),
        Some(Action::OpenLink("http://127.0.0.1:8000/docs".into()))
    );
    assert_eq!(
        Action::parse(&id_of(serve, "Stop")),
        Some(Action::Stop { run: "r1".into() })
    );
    let asr = submenu(&m, "audio / asr");
    assert_eq!(
        Action::parse(&id_of(asr, "Start")),
        Some(Action::Start {
            workspace: "w2".into(),
            environment: "asr".into()
        })
    );
}

#[test]
fn an_ended_run_offers_start_again_and_a_removed_workspace_is_not_offered() {
    let s = Snapshot {
        connected: true,
        workspaces: vec![ws("w1", "vision", &["lab"])],
        runs: vec![
            run("r2", "gone", "old", "running", json!([])),
            run("r1", "w1", "lab", "stopped", json!([])),
        ],
        ..Default::default()
    };
    let m = build(&s);
    assert_eq!(labels(submenu(&m, "vision / lab")), ["Start"]);
    assert!(!labels(&m).iter().any(|l| l.contains("old")));
}

#[test]
fn running_clones_show_their_progress_and_the_list_is_bounded() {
    let names: Vec<String> = (0..20).map(|i| format!("env{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let clone: aienv_core::clone::CloneJob = serde_json::from_value(json!({
        "id": "c1", "peer_id": "p", "peer_name": "gpu-box", "workspace_id": "w", "workspace_name": "llm",
        "target": "/t", "pull": false, "state": "running", "error": null, "result_workspace_id": null,
        "started_ms": 1, "finished_ms": null,
        "progress": {"bytes_total": 400, "bytes_done": 100, "files_total": 2, "files_done": 1, "bytes_sent": 100, "rate": 1.0, "eta_s": 3.0}
    }))
    .unwrap();
    let m = build(&Snapshot {
        connected: true,
        workspaces: vec![ws("w1", "big", &refs)],
        clones: vec![clone],
        sharing_paused: true,
        ..Default::default()
    });
    let l = labels(&m);
    assert_eq!(
        l.iter().filter(|x| x.starts_with("big / ")).count(),
        ENVIRONMENTS
    );
    assert!(
        l.contains(&"Cloning llm from gpu-box: 25%".to_string()),
        "{l:?}"
    );
    assert!(m.contains(&Entry::Check {
        id: "pause:false".into(),
        label: "Pause sharing".into(),
        checked: true
    }));
}

#[test]
fn a_node_that_does_not_answer_leaves_the_window_and_quit() {
    let m = build(&Snapshot::default());
    assert_eq!(
        labels(&m),
        [
            "Open AI Environment Manager",
            "---",
            "The node does not answer",
            "---",
            "Quit"
        ]
    );
}

#[test]
fn ids_round_trip() {
    for a in [
        Action::OpenWindow,
        Action::OpenView("clones".into()),
        Action::Start {
            workspace: "abc".into(),
            environment: "lab".into(),
        },
        Action::Stop { run: "r".into() },
        Action::OpenLink("http://127.0.0.1:1/lab?token=x:y".into()),
        Action::PauseSharing(false),
        Action::Decide {
            request: "r1".into(),
            approve: true,
        },
        Action::Quit,
    ] {
        assert_eq!(Action::parse(&a.id()), Some(a.clone()));
    }
    assert_eq!(Action::parse("note"), None);
}

#[test]
fn a_waiting_access_request_is_answered_from_the_menu() {
    let request: aienv_core::access::AccessRequest = serde_json::from_value(json!({
        "id": "r1", "workspace_id": "w1", "workspace": "private", "peer_id": "p", "peer_name": "laptop",
        "from": "10.0.0.7:5000", "requested_ms": 1, "expires_ms": 2}))
    .unwrap();
    let s = Snapshot {
        connected: true,
        access: vec![request],
        ..Snapshot::default()
    };
    let menu = build(&s);
    let Entry::Submenu { label, items } = &menu[2] else {
        panic!("the request comes first: {menu:?}")
    };
    assert_eq!(label, "laptop asks to clone private");
    let ids: Vec<Option<Action>> = items
        .iter()
        .map(|e| match e {
            Entry::Item { id, .. } => Action::parse(id),
            _ => None,
        })
        .collect();
    assert!(ids.contains(&Some(Action::Decide {
        request: "r1".into(),
        approve: true
    })));
    assert!(ids.contains(&Some(Action::Decide {
        request: "r1".into(),
        approve: false
    })));
    assert!(
        build(&Snapshot {
            connected: true,
            ..Snapshot::default()
        })
        .iter()
        .all(|e| !matches!(e, Entry::Submenu { label, .. } if label.contains("asks")))
    );
}
