//! The catalog against real HTTP peers on 127.0.0.1 that behave well, slowly, or badly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aienv_core::peer::{Peer, Via};
use aienv_core::{Access, EnvKind};
use aienv_sharing::{Catalog, ShareList, ShareOwner, SharedEnvironment, SharedWorkspace};
use axum::Router;
use axum::routing::get;

fn list(id: &str, revision: &str, envs: &[&str]) -> ShareList {
    ShareList {
        node: ShareOwner {
            id: id.into(),
            name: format!("node-{id}"),
            version: "0.1.0".into(),
        },
        revision: revision.into(),
        workspaces: vec![SharedWorkspace {
            id: "w1".into(),
            name: "llm".into(),
            description: None,
            access: Access::Open,
            size_bytes: 42,
            environments: envs
                .iter()
                .map(|e| SharedEnvironment {
                    name: e.to_string(),
                    kind: EnvKind::Process,
                    description: None,
                    requires: Default::default(),
                    fallback: None,
                    tools: vec![],
                })
                .collect(),
        }],
    }
}

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn peer(id: &str, url: &str, rev: &str) -> Peer {
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    Peer {
        id: id.into(),
        name: format!("node-{id}"),
        address: "127.0.0.1".parse().unwrap(),
        port,
        scheme: "http".into(),
        url: url.into(),
        version: "0.1.0".into(),
        shared: 1,
        rev: rev.into(),
        fingerprint: None,
        via: Via::Multicast,
        since_ms: 0,
        resources: None,
    }
}

/// A catalog that talks plain HTTP (these peers are test servers without TLS).
fn catalog() -> Catalog {
    let pins = aienv_trust::Pins::load(std::path::Path::new("/nonexistent"));
    Catalog::new(std::sync::Arc::new(aienv_trust::PeerClients::new(
        std::sync::Arc::new(pins),
        true,
        None,
    )))
}

#[tokio::test]
async fn a_peers_environments_join_the_catalog_and_leave_with_it() {
    let url = serve(Router::new().route(
        "/api/v1/shares",
        get(|| async { axum::Json(list("p1", "r1", &["nb", "serve"])) }),
    ))
    .await;
    let catalog = catalog();
    assert!(
        catalog.refresh(&peer("p1", &url, "r1")).await,
        "the first list changes the catalog"
    );
    let names: Vec<_> = catalog
        .entries()
        .iter()
        .map(|e| (e.owner.name.clone(), e.name.clone(), e.owner.local))
        .collect();
    assert_eq!(
        names,
        [
            ("node-p1".into(), "nb".into(), false),
            ("node-p1".into(), "serve".into(), false)
        ]
    );
    assert!(
        !catalog.refresh(&peer("p1", &url, "r1")).await,
        "the same revision fetches nothing"
    );
    assert!(catalog.forget("p1"));
    assert!(catalog.entries().is_empty());
}

#[tokio::test]
async fn a_workspace_shared_without_environments_has_an_entry_of_its_own() {
    let url = serve(Router::new().route(
        "/api/v1/shares",
        get(|| async { axum::Json(list("p1", "r1", &[])) }),
    ))
    .await;
    let catalog = catalog();
    catalog.refresh(&peer("p1", &url, "r1")).await;
    let entries = catalog.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].kind, None, "files to clone, nothing to run");
    assert_eq!(entries[0].name, entries[0].workspace);
}

#[tokio::test]
async fn slow_lying_and_garbage_peers_cannot_stall_or_poison_the_catalog() {
    let slow = serve(Router::new().route(
        "/api/v1/shares",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            axum::Json(list("slow", "r1", &["x"]))
        }),
    ))
    .await;
    let garbage =
        serve(Router::new().route("/api/v1/shares", get(|| async { "{\"node\": 5" }))).await;
    let impostor = serve(Router::new().route(
        "/api/v1/shares",
        get(|| async { axum::Json(list("someone-else", "r1", &["x"])) }),
    ))
    .await;
    let good = serve(Router::new().route(
        "/api/v1/shares",
        get(|| async { axum::Json(list("good", "r1", &["ok"])) }),
    ))
    .await;

    let catalog = catalog();
    let c = catalog.clone();
    let slow_peer = peer("slow", &slow, "r1");
    let pending = tokio::spawn(async move { c.refresh(&slow_peer).await });
    catalog.refresh(&peer("garbage", &garbage, "r1")).await;
    catalog.refresh(&peer("impostor", &impostor, "r1")).await;
    catalog.refresh(&peer("good", &good, "r1")).await;
    assert!(
        !pending.is_finished(),
        "the good peer was fetched while the slow one still hangs"
    );

    let names: Vec<_> = catalog.entries().iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["ok"], "only the good peer's environment is listed");
    let status = catalog.remotes();
    let err = |id: &str| {
        status
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.error.clone())
            .unwrap_or_default()
    };
    assert!(err("garbage").contains("cannot read"), "{status:?}");
    assert!(err("impostor").contains("another node"), "{status:?}");
    // The slow one gives up after the fetch timeout and says so.
    assert!(!pending.await.unwrap());
    assert!(
        catalog
            .remotes()
            .iter()
            .any(|r| r.id == "slow" && r.error.as_deref().is_some_and(|e| e.contains("timed out")))
    );
}

#[tokio::test]
async fn a_revision_that_changes_all_the_time_is_fetched_at_a_bounded_rate() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let url = serve(Router::new().route(
        "/api/v1/shares",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move { axum::Json(list("busy", &format!("r{n}"), &["x"])) }
        }),
    ))
    .await;
    let catalog = catalog();
    let started = Instant::now();
    // Announcements with a new revision every 10 ms for 2 s.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = catalog.clone();
        let p = peer("busy", &url, &format!("announced-{i}"));
        tasks.push(tokio::spawn(async move { c.refresh(&p).await }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let fetches = hits.load(Ordering::SeqCst);
    let gap = aienv_sharing::MIN_REFETCH;
    let allowed = (started.elapsed().as_millis() / gap.as_millis()) as usize + 2;
    assert!(
        fetches <= allowed,
        "{fetches} fetches in {:?}: at most one per {gap:?}",
        started.elapsed()
    );
    assert!(fetches >= 2, "it keeps up, within the bound");
}
