//! Runs: start an environment here, list and follow runs, read their logs, stop them; and the
//! resource probe they are fitted against.

use aienv_core::resources::Resources;
use aienv_core::run::{Run, RunRequest, RunUsage};
use aienv_node::Node;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// What this machine has: CPUs, memory, disk, GPUs, container engine, hypervisor.
#[utoipa::path(get, path = "/resources", tag = "runs", responses((status = 200, body = Resources)))]
pub async fn resources(State(node): State<Node>) -> Json<Resources> {
    Json(node.resources().await)
}

/// Every run of this node, newest first (ended ones too).
#[utoipa::path(get, path = "/runs", operation_id = "list_runs", tag = "runs", responses((status = 200, body = [Run])))]
pub async fn list(State(node): State<Node>) -> Json<Vec<Run>> {
    Json(node.runs())
}

/// Starts an environment. Answers once it is planned (ports and token chosen, state
/// `starting`); `run_changed` events follow until its tools answer (`running`) or it fails.
#[utoipa::path(post, path = "/runs", operation_id = "start_run", tag = "runs", request_body = RunRequest, responses(
    (status = 202, body = Run),
    (status = 404, description = "no such workspace or environment", body = ErrorBody),
    (status = 409, description = "it does not fit this machine (`requirements_not_met`), or a fixed port is taken", body = ErrorBody)))]
pub async fn start(
    State(node): State<Node>,
    Body(req): Body<RunRequest>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(node.start_run(req).await?)))
}

#[utoipa::path(get, path = "/runs/{id}", operation_id = "show_run", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody)))]
pub async fn show(State(node): State<Node>, Path(id): Path<String>) -> Result<Json<Run>, ApiError> {
    Ok(Json(node.run(&id)?))
}

/// Stops a run: SIGTERM (or the engine's stop) to everything it started, a kill after 10 s.
#[utoipa::path(delete, path = "/runs/{id}", operation_id = "stop_run", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Run), (status = 400, description = "not running", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn stop(State(node): State<Node>, Path(id): Path<String>) -> Result<Json<Run>, ApiError> {
    Ok(Json(node.stop_run(&id).await?))
}

/// What the run uses right now: CPU over a short sample, resident memory, processes. `null`
/// once it has ended.
#[utoipa::path(get, path = "/runs/{id}/usage", tag = "runs", operation_id = "run_usage",
    params(("id" = String, Path)),
    responses((status = 200, body = Option<RunUsage>), (status = 404, body = ErrorBody)))]
pub async fn usage(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<Option<RunUsage>>, ApiError> {
    Ok(Json(node.run_usage(&id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// How many of the last lines (default 200, at most 10,000).
    tail: Option<usize>,
}

/// The last lines of a run's log; new lines follow as `run_log` events on `/events`.
#[utoipa::path(get, path = "/runs/{id}/logs", tag = "runs", params(("id" = String, Path), LogQuery),
    responses((status = 200, body = [String]), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<String>>, ApiError> {
    let n = q.tail.unwrap_or(200).min(10_000);
    Ok(Json(blocking(move || node.run_log(&id, n)).await?))
}
