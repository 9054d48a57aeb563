//! The LAN: peers, the catalog of shared environments, this node's share list (peer-facing),
//! and discovery diagnostics.

use aienv_core::peer::Peer;
use aienv_node::{CatalogItem, DiscoveryReport, FileManifest, Node, ShareList};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// Every peer this node knows, by name.
#[utoipa::path(get, path = "/peers", operation_id = "list_peers", tag = "lan", responses((status = 200, body = [Peer])))]
pub async fn list(State(node): State<Node>) -> Json<Vec<Peer>> {
    Json(node.peers())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticPeer {
    /// `HOST:PORT` of the peer's API.
    pub address: String,
}

/// Adds a peer by address, for networks where multicast is blocked. It is probed over HTTP
/// and listed like any other peer while it answers.
#[utoipa::path(post, path = "/peers", operation_id = "add_peer", tag = "lan", request_body = StaticPeer,
    responses((status = 201, body = StaticPeer), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(node): State<Node>,
    Body(p): Body<StaticPeer>,
) -> Result<(StatusCode, Json<StaticPeer>), ApiError> {
    let address = blocking(move || node.add_static_peer(&p.address)).await?;
    Ok((StatusCode::CREATED, Json(StaticPeer { address })))
}

/// The peers reached by address.
#[utoipa::path(get, path = "/peers/static", tag = "lan", responses((status = 200, body = [String])))]
pub async fn list_static(State(node): State<Node>) -> Json<Vec<String>> {
    Json(node.static_peers())
}

#[utoipa::path(delete, path = "/peers/static/{address}", tag = "lan",
    params(("address" = String, Path, description = "HOST:PORT")),
    responses((status = 200, body = StaticPeer), (status = 400, description = "not HOST:PORT", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove_static(
    State(node): State<Node>,
    Path(address): Path<String>,
) -> Result<Json<StaticPeer>, ApiError> {
    let address = blocking(move || node.remove_static_peer(&address)).await?;
    Ok(Json(StaticPeer { address }))
}

/// Local and remote shared environments in one list: this node's first, then by owner; each
/// with whether it fits this machine and, if not, why.
#[utoipa::path(get, path = "/catalog", tag = "lan", responses((status = 200, body = [CatalogItem])))]
pub async fn catalog(State(node): State<Node>) -> Json<Vec<CatalogItem>> {
    Json(node.catalog_with_fit().await)
}

/// What this node shares. Peers fetch it when this node announces a new catalog revision.
#[utoipa::path(get, path = "/shares", tag = "lan", responses((status = 200, body = ShareList)))]
pub async fn shares(State(node): State<Node>) -> Json<ShareList> {
    Json(node.shares())
}

/// The file manifest of a shared workspace: every directory, file (size, mode, modification
/// time, BLAKE3 hash), symlink and hard link a clone recreates. Excluded files never appear.
#[utoipa::path(get, path = "/shares/{workspace}/files", tag = "lan",
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = FileManifest), (status = 404, description = "no such workspace, or not shared", body = ErrorBody),
        (status = 400, description = "the workspace's sharing settings are not valid", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody),
        (status = 401, description = "the share needs a token or approval", body = ErrorBody),
        (status = 403, description = "the token is wrong, revoked or expired", body = ErrorBody)))]
pub async fn files(
    State(node): State<Node>,
    Path(workspace): Path<String>,
    super::Who(who): super::Who,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    // Streamed from the node's one copy of the list: a list of hundreds of thousands of entries
    // is never also held as one JSON text. Its length is counted first (a second pass over the
    // list, ~10 ms for 28,000 entries) so the receiver can hold it in one buffer of the right
    // size instead of one that doubles as it grows (measured: 63 MB for a 35 MB list).
    let (m, len) = blocking(move || {
        node.authorize(&workspace, &who, "files")?;
        let m = node.file_manifest(&workspace)?;
        let mut count = ByteCount(0);
        serde_json::to_writer(&mut count, &*m).expect("a file list serialises");
        Ok((m, count.0))
    })
    .await?;
    let body = super::transfer::body_from_writer(move |out| {
        serde_json::to_writer(out, &*m).map_err(std::io::Error::other)
    });
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json".to_string(),
            ),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

/// A writer that only counts what it is given.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Discovery diagnostics: interfaces, packets sent and received, drops by reason, static peers,
/// and each peer's catalog state.
#[utoipa::path(get, path = "/discovery", tag = "lan", responses((status = 200, body = DiscoveryReport)))]
pub async fn discovery(State(node): State<Node>) -> Json<DiscoveryReport> {
    Json(node.discovery_report())
}
