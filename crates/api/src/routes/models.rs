//! Hugging Face models in the LAN cache.
//!
//! Peer-facing, under `/cache/models` (no API key: each request is judged by the cache's access
//! rules, `[cache] access`): the models this node has, one revision's files, and a blob's bytes.
//! This machine's own, under `/models`: the local models and what peers offer, and pulls.

use aienv_node::Node;
use aienv_node::models::{ModelPull, ModelPullRequest, ModelsOverview, RepoSummary, Revision};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Who;
use super::transfer::body_from_writer;
use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// The models (and datasets) in this node's Hugging Face cache, for peers.
#[utoipa::path(get, path = "/cache/models", tag = "models",
    responses(
        (status = 200, body = [RepoSummary]),
        (status = 403, description = "the cache is off (`cache_off`) or not open to this requester", body = ErrorBody)))]
pub async fn served(
    State(node): State<Node>,
    Who(who): Who,
) -> Result<Json<Vec<RepoSummary>>, ApiError> {
    Ok(Json(blocking(move || node.served_models(&who)).await?))
}

/// The files of one revision (a ref such as `main`, or a commit) of a repo, each with the blob
/// that holds it, for peers.
#[utoipa::path(get, path = "/cache/models/{repo}/revisions/{revision}", tag = "models",
    params(
        ("repo" = String, Path, description = "the repo's cache folder name, `models--ORG--NAME`"),
        ("revision" = String, Path, description = "a branch, tag or commit")),
    responses(
        (status = 200, body = Revision),
        (status = 400, description = "not a repo folder name or a revision", body = ErrorBody),
        (status = 403, description = "the cache is off (`cache_off`) or not open to this requester", body = ErrorBody),
        (status = 404, description = "no such repo or revision here", body = ErrorBody)))]
pub async fn revision(
    State(node): State<Node>,
    Path((repo, revision)): Path<(String, String)>,
    Who(who): Who,
) -> Result<Json<Revision>, ApiError> {
    Ok(Json(
        blocking(move || node.served_model_revision(&who, &repo, &revision)).await?,
    ))
}

/// A blob's bytes, for peers. The receiver checks them against the hash the blob is named by.
#[utoipa::path(get, path = "/cache/models/{repo}/blobs/{hash}", tag = "models",
    params(
        ("repo" = String, Path, description = "the repo's cache folder name, `models--ORG--NAME`"),
        ("hash" = String, Path, description = "the blob's name: SHA-256 (64 hex digits) or git blob SHA-1 (40)")),
    responses(
        (status = 200, description = "the bytes (application/octet-stream)"),
        (status = 400, description = "not a repo folder name or a blob hash", body = ErrorBody),
        (status = 403, description = "the cache is off (`cache_off`) or not open to this requester", body = ErrorBody),
        (status = 404, description = "no such blob here", body = ErrorBody)))]
pub async fn blob(
    State(node): State<Node>,
    Path((repo, hash)): Path<(String, String)>,
    Who(who): Who,
) -> Result<Response, ApiError> {
    let (path, size) = blocking(move || node.served_model_blob(&who, &repo, &hash)).await?;
    let body = body_from_writer(move |out| {
        let mut file = std::fs::File::open(&path)?;
        std::io::copy(&mut file, out).map(|_| ())
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            // The receiver knows a cut stream from a finished one by the length.
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

/// The models in this machine's Hugging Face cache, and what each peer offers.
#[utoipa::path(get, path = "/models", tag = "models",
    responses((status = 200, body = ModelsOverview)))]
pub async fn overview(State(node): State<Node>) -> Result<Json<ModelsOverview>, ApiError> {
    Ok(Json(node.models_overview().await?))
}

/// Pulls a revision of a model from a peer that has it into this machine's Hugging Face cache,
/// each file verified. Answers once a peer with the model is found; the pull then runs on
/// (`GET /models/pulls/{id}`).
#[utoipa::path(post, path = "/models/pull", tag = "models", request_body = ModelPullRequest,
    responses(
        (status = 202, description = "started (or already running)", body = ModelPull),
        (status = 400, description = "not a repo id or a revision, or the peer's file list is unusable", body = ErrorBody),
        (status = 401, description = "the peer wants a token", body = ErrorBody),
        (status = 403, description = "model pulls are off here, or the peer refused", body = ErrorBody),
        (status = 404, description = "no peer has it", body = ErrorBody),
        (status = 409, description = "several peers have that name: use a peer id", body = ErrorBody)))]
pub async fn pull(
    State(node): State<Node>,
    Body(req): Body<ModelPullRequest>,
) -> Result<(StatusCode, Json<ModelPull>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(node.pull_model(req).await?)))
}

/// The model pulls since the node started, newest first.
#[utoipa::path(get, path = "/models/pulls", tag = "models",
    responses((status = 200, body = [ModelPull])))]
pub async fn pulls(State(node): State<Node>) -> Json<Vec<ModelPull>> {
    Json(node.model_pulls())
}

/// One model pull: how far it got, how it ended.
#[utoipa::path(get, path = "/models/pulls/{id}", tag = "models",
    params(("id" = String, Path, description = "the pull's id")),
    responses((status = 200, body = ModelPull), (status = 404, body = ErrorBody)))]
pub async fn show_pull(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<ModelPull>, ApiError> {
    Ok(Json(node.model_pull(&id)?))
}
