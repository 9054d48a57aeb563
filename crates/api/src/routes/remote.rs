//! Runs across nodes:
//!
//! - for peers (`/remote/runs...`, no API key; `[remote_runs] access` decides, over TLS from
//!   other machines): start a run here, follow it, read its log, stop it, take its outputs;
//! - for this node's users: `GET /placement`, where an environment would run best and why.

use aienv_core::run::{RemoteJob, RemoteRunRequest, RemoteUpdate, RunRequest};
use aienv_node::{LogPage, Node};
use aienv_runtime::placement::Candidate;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// A peer asks this node to run an environment. Answers at once with the job (202); it is
/// approved (if `[remote_runs] access = "approve"`), the workspace received if this node lacks
/// it, and the run started, in the background.
#[utoipa::path(post, path = "/remote/runs", operation_id = "remote_start", tag = "lan", request_body = RemoteRunRequest,
    responses(
        (status = 202, body = RemoteJob),
        (status = 400, description = "the request does not name the asking node", body = ErrorBody),
        (status = 401, description = "this node takes runs only from token holders", body = ErrorBody),
        (status = 403, description = "remote runs are off here, or the asker is not a node this one knows", body = ErrorBody)))]
pub async fn start(
    State(node): State<Node>,
    super::Who(who): super::Who,
    Body(req): Body<RemoteRunRequest>,
) -> Result<(StatusCode, Json<RemoteJob>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(node.accept_remote_run(req, who).await?),
    ))
}

/// A run the asker started here: its phase and, once started, the run.
#[utoipa::path(get, path = "/remote/runs/{id}", operation_id = "remote_show", tag = "lan", params(("id" = String, Path)),
    responses((status = 200, body = RemoteJob), (status = 404, description = "no such run of the asker's", body = ErrorBody)))]
pub async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
    super::Who(who): super::Who,
) -> Result<Json<RemoteJob>, ApiError> {
    Ok(Json(node.remote_job(&id, &who)?))
}

/// Stops a run the asker started here.
#[utoipa::path(delete, path = "/remote/runs/{id}", operation_id = "remote_stop", tag = "lan", params(("id" = String, Path)),
    responses((status = 200, body = RemoteJob), (status = 404, body = ErrorBody)))]
pub async fn stop(
    State(node): State<Node>,
    Path(id): Path<String>,
    super::Who(who): super::Who,
) -> Result<Json<RemoteJob>, ApiError> {
    Ok(Json(node.stop_remote_job(&id, &who).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ChangesQuery {
    /// The `version` of the last update seen; absent: answer at once.
    seen: Option<String>,
    /// The first log line wanted.
    #[serde(default)]
    from: usize,
    /// Seconds to hold the request while nothing changes (at most 20).
    #[serde(default = "default_wait")]
    wait: u64,
}

fn default_wait() -> u64 {
    15
}

/// The run and its new log lines as soon as either changed since `seen` / `from` (or after
/// `wait` seconds with what there is): how the asker follows its run without polling.
#[utoipa::path(get, path = "/remote/runs/{id}/changes", operation_id = "remote_changes", tag = "lan",
    params(("id" = String, Path), ChangesQuery),
    responses((status = 200, body = RemoteUpdate), (status = 404, body = ErrorBody)))]
pub async fn changes(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<ChangesQuery>,
    super::Who(who): super::Who,
) -> Result<Json<RemoteUpdate>, ApiError> {
    let wait = std::time::Duration::from_secs(q.wait);
    Ok(Json(
        node.remote_job_changes(&id, &who, q.seen.as_deref(), q.from, wait)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// The first line wanted (0: from the start).
    #[serde(default)]
    from: usize,
}

/// Lines of a remote run's log, from line `from` on (at most 5,000 at a time).
#[utoipa::path(get, path = "/remote/runs/{id}/logs", operation_id = "remote_logs", tag = "lan", params(("id" = String, Path), LogQuery),
    responses((status = 200, body = LogPage), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
    super::Who(who): super::Who,
) -> Result<Json<LogPage>, ApiError> {
    blocking(move || {
        let (lines, next) = node.remote_job_log(&id, &who, q.from, 5000)?;
        Ok(Json(LogPage { lines, next }))
    })
    .await
}

/// A finished batch run's `outputs`, as a tar.
#[utoipa::path(get, path = "/remote/runs/{id}/outputs", operation_id = "remote_outputs", tag = "lan", params(("id" = String, Path)),
    responses(
        (status = 200, description = "a tar of the environment's `outputs` (application/x-tar)"),
        (status = 400, description = "it has not ended yet", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn outputs(
    State(node): State<Node>,
    Path(id): Path<String>,
    super::Who(who): super::Who,
) -> Result<Response, ApiError> {
    let (root, outputs) = blocking(move || node.remote_job_outputs(&id, &who)).await?;
    let body = super::transfer::body_from_writer(move |out| {
        aienv_node::outputs::pack(&root, &outputs, out)
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PlaceQuery {
    /// Workspace id or name.
    workspace: String,
    environment: String,
    /// The node whose workspace it is, for a catalog entry (default: this node).
    owner: Option<String>,
}

/// Where the environment would run best: this node and each peer, best first, each with why
/// ("gpu-box: 2 free GPUs, 79 GB free"; "laptop: no GPU").
#[utoipa::path(get, path = "/placement", tag = "runs", params(PlaceQuery),
    responses((status = 200, body = [Candidate]), (status = 404, body = ErrorBody)))]
pub async fn placement(
    State(node): State<Node>,
    Query(q): Query<PlaceQuery>,
) -> Result<Json<Vec<Candidate>>, ApiError> {
    let req = RunRequest {
        workspace: q.workspace,
        environment: q.environment,
        force: false,
        ssh: None,
        on: Some("auto".into()),
        owner: q.owner,
        submit: false,
    };
    Ok(Json(node.placement(&req).await?))
}
