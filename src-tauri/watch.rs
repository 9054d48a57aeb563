//! Keeps the tray's picture of the node current: the lists once, then the node's event stream;
//! reconnects when the node goes away and comes back. Clones that end become desktop
//! notifications.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aienv_core::Event;
use futures_util::StreamExt;

use crate::api::Api;
use crate::menu::Snapshot;

/// What the watcher tells the app.
pub trait Sink: Send + Sync + 'static {
    /// The picture changed (called at most a few times a second).
    fn changed(&self, snapshot: Snapshot);
    /// Something the user should hear about even with the window closed.
    fn notify(&self, title: String, body: String);
}

pub fn spawn(api: Api, sink: impl Sink) {
    tauri::async_runtime::spawn(async move {
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let mut wait = Duration::from_millis(250);
        loop {
            match follow(&api, &snapshot, &sink).await {
                Ok(()) => wait = Duration::from_millis(250),
                Err(e) => tracing::debug!("the node's event stream: {e}"),
            }
            let s = {
                let mut s = snapshot.lock().unwrap_or_else(|e| e.into_inner());
                s.connected = false;
                s.clone()
            };
            sink.changed(s);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    });
}

async fn refetch(api: &Api, snapshot: &Mutex<Snapshot>) -> anyhow::Result<Snapshot> {
    let (workspaces, runs, clones, peers, paused, access) = tokio::try_join!(
        api.workspaces(),
        api.runs(),
        api.clones(),
        api.peers(),
        api.sharing_paused(),
        api.access_requests()
    )?;
    let mut s = snapshot.lock().unwrap_or_else(|e| e.into_inner());
    *s = Snapshot {
        workspaces,
        runs,
        clones,
        peers: peers.len(),
        access,
        sharing_paused: paused,
        connected: true,
    };
    Ok(s.clone())
}

/// Follows the event stream until it ends.
async fn follow(api: &Api, snapshot: &Mutex<Snapshot>, sink: &impl Sink) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(api.events_url()).await?;
    // Subscribed first, then read: nothing that happens in between is missed.
    sink.changed(refetch(api, snapshot).await?);
    while let Some(msg) = ws.next().await {
        let text = match msg? {
            tokio_tungstenite::tungstenite::Message::Text(t) => t,
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => continue,
        };
        let Ok(event) = serde_json::from_str::<Event>(&text) else {
            // `hello`, or `lagged`: events were missed, read everything again.
            if text.contains("\"lagged\"") {
                sink.changed(refetch(api, snapshot).await?);
            }
            continue;
        };
        match &event {
            Event::CloneDone { job } => sink.notify(
                format!("Cloned {} from {}", job.workspace_name, job.peer_name),
                job.target.display().to_string(),
            ),
            Event::AccessRequested { request } => sink.notify(
                format!(
                    "{} asks to clone {}",
                    request.peer_name.as_deref().unwrap_or(&request.from),
                    request.workspace
                ),
                "Approve or deny it from the tray menu or the window".into(),
            ),
            Event::CloneFailed { job } => sink.notify(
                format!(
                    "Clone of {} from {} ended",
                    job.workspace_name, job.peer_name
                ),
                job.error.clone().unwrap_or_else(|| "cancelled".into()),
            ),
            _ => {}
        }
        if apply(
            &mut snapshot.lock().unwrap_or_else(|e| e.into_inner()),
            &event,
        ) {
            let s = snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone();
            sink.changed(s);
        } else if matches!(
            event,
            Event::WorkspaceAdded { .. }
                | Event::WorkspaceChanged { .. }
                | Event::WorkspaceRemoved { .. }
                | Event::PeerJoined { .. }
                | Event::PeerLeft { .. }
                | Event::CatalogChanged { local: true, .. }
        ) {
            sink.changed(refetch(api, snapshot).await?);
        }
    }
    Ok(())
}

/// Applies what an event carries in full; `false` when the lists must be read again.
fn apply(s: &mut Snapshot, event: &Event) -> bool {
    match event {
        Event::RunChanged { run } => {
            s.runs.retain(|r| r.id != run.id);
            s.runs.insert(0, run.clone());
            true
        }
        Event::AccessRequested { request } => {
            s.access.push(request.clone());
            true
        }
        Event::AccessDecided { request, .. } => {
            s.access.retain(|r| r.id != request.id);
            true
        }
        Event::CloneProgress { job } | Event::CloneDone { job } | Event::CloneFailed { job } => {
            s.clones.retain(|c| c.id != job.id);
            s.clones.insert(0, job.clone());
            true
        }
        _ => false,
    }
}
