//! `GET /events`: the node's event bus as a WebSocket stream of JSON messages.
//!
//! The first message is `{"type": "hello", ...}`. Each following message is one
//! [`aienv_core::Event`]. A client that reads too slowly gets `{"type": "lagged", "missed": N}`
//! and should fetch the state it shows again.

use aienv_node::Node;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

/// Upgrades to a WebSocket that streams every event from now on.
#[utoipa::path(get, path = "/events", tag = "node",
    responses((status = 101, description = "WebSocket of JSON events (see the Event schema)")))]
pub async fn events(State(node): State<Node>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| stream(node, socket))
}

async fn stream(node: Node, mut socket: WebSocket) {
    // Subscribe before saying hello, so nothing that happens after the hello is missed.
    let mut rx = node.subscribe();
    let info = node.info();
    let hello = json!({ "type": "hello", "node": info });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            event = rx.recv() => {
                let text = match event {
                    Ok(e) => serde_json::to_string(&e).expect("events serialise"),
                    Err(RecvError::Lagged(n)) => json!({ "type": "lagged", "missed": n }).to_string(),
                    Err(RecvError::Closed) => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // Clients have nothing to say yet; pings are answered by the library.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
}
