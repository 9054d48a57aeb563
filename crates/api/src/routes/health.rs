//! `GET /health`: is the node up, and who is it.

use aienv_node::{Node, NodeInfo};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always "ok" when the node answers.
    pub status: &'static str,
    pub node: NodeInfo,
}

/// Answers 200 as soon as the node serves requests; needs no API key.
#[utoipa::path(get, path = "/health", tag = "node", responses((status = 200, body = Health)))]
pub async fn health(State(node): State<Node>) -> Json<Health> {
    Json(Health {
        status: "ok",
        node: node.info(),
    })
}
