//! Workspaces: list, register (create or add), show, edit, forget; and the manifest as text.

use std::sync::{Arc, Mutex};

use aienv_core::{Workspace, WorkspaceSummary};
use aienv_node::{NewWorkspace, Node, WorkspacePatch, WorkspaceProposal};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// The serialised listing of the last revision asked for. Listings are read far more often
/// than workspaces change, and serialising a thousand of them on every request is what would
/// limit a busy node.
#[derive(Debug, Default)]
pub struct ListCache(Mutex<Option<(u64, Bytes)>>);

/// Every registered workspace, by name.
#[utoipa::path(get, path = "/workspaces", operation_id = "list_workspaces", tag = "workspaces", responses((status = 200, body = [WorkspaceSummary])))]
pub async fn list(
    State(node): State<Node>,
    Extension(cache): Extension<Arc<ListCache>>,
) -> impl IntoResponse {
    let cached = cache
        .0
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .filter(|(rev, _)| *rev == node.revision());
    let body = match cached {
        Some((_, body)) => body,
        None => {
            let (rev, list): (u64, Vec<WorkspaceSummary>) = node.workspaces_at_revision();
            let body = Bytes::from(serde_json::to_vec(&list).expect("summaries serialise"));
            if let Ok(mut c) = cache.0.lock() {
                *c = Some((rev, body.clone()));
            }
            body
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// Creates a workspace (`create: true` writes a starter manifest) or registers a folder that
/// has an `aienv.toml`.
#[utoipa::path(post, path = "/workspaces", operation_id = "create_workspace", tag = "workspaces", request_body = NewWorkspace, responses(
    (status = 201, body = Workspace),
    (status = 409, description = "already registered, or an aienv.toml exists", body = ErrorBody),
    (status = 422, description = "the folder's manifest is invalid", body = ErrorBody),
))]
pub async fn create(
    State(node): State<Node>,
    Body(req): Body<NewWorkspace>,
) -> Result<impl IntoResponse, ApiError> {
    let ws = blocking(move || node.create_workspace(req)).await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// A folder to propose environments for.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalRequest {
    /// Absolute path of a folder without an `aienv.toml`.
    #[schema(value_type = String)]
    pub path: std::path::PathBuf,
}

/// Proposes environments for a folder without an `aienv.toml`, from the files already there
/// (devcontainer.json, Dockerfile, compose.yaml, environment.yml, pixi.toml, pyproject.toml,
/// requirements*.txt, notebooks), and the manifest accepting them would write. Writes nothing:
/// accept with `POST /workspaces` (`create: true`, `manifest`: the text, edited or not).
#[utoipa::path(post, path = "/workspaces/proposal", operation_id = "propose_workspace", tag = "workspaces", request_body = ProposalRequest, responses(
    (status = 200, body = WorkspaceProposal),
    (status = 404, description = "no such folder", body = ErrorBody),
    (status = 409, description = "the folder has an aienv.toml already", body = ErrorBody),
))]
pub async fn propose(
    State(node): State<Node>,
    Body(req): Body<ProposalRequest>,
) -> Result<Json<WorkspaceProposal>, ApiError> {
    Ok(Json(
        blocking(move || node.propose_workspace(&req.path)).await?,
    ))
}

/// One workspace by id (or by name, when unique), with its manifest and any current problem.
#[utoipa::path(get, path = "/workspaces/{id}", operation_id = "show_workspace", tag = "workspaces",
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = Workspace), (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn show(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(node.workspace(&id)?))
}

/// Changes the workspace's name, description or sharing settings (an edit of its manifest).
#[utoipa::path(patch, path = "/workspaces/{id}", operation_id = "update_workspace", tag = "workspaces", request_body = WorkspacePatch,
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = Workspace), (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody),
        (status = 422, description = "the manifest is invalid, or the change would make it so", body = ErrorBody)))]
pub async fn update(
    State(node): State<Node>,
    Path(id): Path<String>,
    Body(patch): Body<WorkspacePatch>,
) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(
        blocking(move || node.update_workspace(&id, patch)).await?,
    ))
}

/// Forgets the workspace. Its folder and files stay where they are.
#[utoipa::path(delete, path = "/workspaces/{id}", operation_id = "remove_workspace", tag = "workspaces",
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, description = "the workspace that was forgotten", body = Workspace), (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn remove(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(blocking(move || node.remove_workspace(&id)).await?))
}

/// The manifest as it is on disk (TOML text).
#[utoipa::path(get, path = "/workspaces/{id}/manifest", tag = "workspaces",
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, content_type = "application/toml", body = String), (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody),
        (status = 422, description = "the manifest cannot be read", body = ErrorBody)))]
pub async fn manifest(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let text = blocking(move || node.manifest_text(&id)).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
        text,
    ))
}

/// Replaces the manifest text. Invalid text is refused with its line and column; nothing is written.
#[utoipa::path(put, path = "/workspaces/{id}/manifest", tag = "workspaces",
    params(("id" = String, Path, description = "workspace id or unique name")),
    request_body(content = String, content_type = "application/toml",
        example = json!("[workspace]\nname = \"lab\"\n\n[[project]]\nname = \"trainer\"\n\n[environment.train]\nkind = \"process\"\nprojects = [\"trainer\"]\ncommand = \"python trainer/train.py\"\n")),
    responses((status = 200, body = Workspace), (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody),
        (status = 422, description = "the text is not a valid manifest; nothing was written", body = ErrorBody)))]
pub async fn replace_manifest(
    State(node): State<Node>,
    Path(id): Path<String>,
    text: String,
) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(
        blocking(move || node.replace_manifest(&id, &text)).await?,
    ))
}
