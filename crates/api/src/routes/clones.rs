//! Clone jobs: start (clone or pull), list, follow, cancel.

use aienv_core::clone::CloneJob;
use aienv_node::{CloneRequest, Node};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// Every clone job of this node, newest first.
#[utoipa::path(get, path = "/clones", operation_id = "list_clones", tag = "clones", responses((status = 200, body = [CloneJob])))]
pub async fn list(State(node): State<Node>) -> Json<Vec<CloneJob>> {
    Json(node.clones())
}

/// Starts a clone of a peer's shared workspace (`source`), or a pull of an earlier clone
/// (`pull`). Answers at once with the job; progress follows as `clone_progress` events.
#[utoipa::path(post, path = "/clones", operation_id = "start_clone", tag = "clones", request_body = CloneRequest, responses(
    (status = 202, body = CloneJob),
    (status = 404, description = "no such peer or shared workspace", body = ErrorBody),
    (status = 409, description = "the target exists, or a clone into it runs", body = ErrorBody)))]
pub async fn start(
    State(node): State<Node>,
    Body(req): Body<CloneRequest>,
) -> Result<(StatusCode, Json<CloneJob>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(node.start_clone(req).await?)))
}

#[utoipa::path(get, path = "/clones/{id}", operation_id = "show_clone", tag = "clones", params(("id" = String, Path)),
    responses((status = 200, body = CloneJob), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<CloneJob>, ApiError> {
    Ok(Json(node.clone_job(&id)?))
}

/// Cancels a running clone; its staging folder is removed and nothing is registered.
#[utoipa::path(delete, path = "/clones/{id}", operation_id = "cancel_clone", tag = "clones", params(("id" = String, Path)),
    responses((status = 200, body = CloneJob), (status = 400, description = "not running", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn cancel(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<CloneJob>, ApiError> {
    Ok(Json(blocking(move || node.cancel_clone(&id)).await?))
}
