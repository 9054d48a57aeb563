//! `aienv events`: the node's event stream, one JSON object a line.

use anyhow::Context;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;

pub async fn follow(c: &Client) -> anyhow::Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(c.events_url())
        .await
        .with_context(|| format!("cannot open the event stream of the node at {}", c.base))?;
    while let Some(msg) = ws.next().await {
        match msg.context("the event stream broke off")? {
            Message::Text(t) => println!("{t}"),
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(())
}
