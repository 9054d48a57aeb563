//! Projects and environments of a workspace. Each change is an edit of the workspace's manifest,
//! validated before it is written; the JSON of a project or environment is its manifest table.

use aienv_core::{Environment, Project};
use aienv_node::Node;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

type Created<T> = Result<(StatusCode, Json<T>), ApiError>;

#[utoipa::path(get, path = "/workspaces/{id}/projects", tag = "projects",
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = [Project]),
        (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody)))]
pub async fn list_projects(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Project>>, ApiError> {
    Ok(Json(node.projects(&id)?))
}

/// Adds a project and creates its folder if it does not exist.
#[utoipa::path(post, path = "/workspaces/{id}/projects", tag = "projects", request_body = Project,
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 201, body = Project),
        (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace, or the workspace has a project of that name", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid, or the change would make it so", body = ErrorBody)))]
pub async fn add_project(
    State(node): State<Node>,
    Path(id): Path<String>,
    Body(p): Body<Project>,
) -> Created<Project> {
    let p = blocking(move || node.add_project(&id, p)).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/workspaces/{id}/projects/{name}", tag = "projects",
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Project),
        (status = 404, description = "no such workspace or project", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody)))]
pub async fn show_project(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(node.project(&id, &name)?))
}

/// Replaces a project's entry; a different `name` renames it. Its folder is not moved.
#[utoipa::path(put, path = "/workspaces/{id}/projects/{name}", tag = "projects", request_body = Project,
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Project),
        (status = 404, description = "no such workspace or project", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace, or the workspace has a project of that name", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid, or the change would make it so", body = ErrorBody)))]
pub async fn replace_project(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
    Body(p): Body<Project>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(
        blocking(move || node.replace_project(&id, &name, p)).await?,
    ))
}

/// Removes a project from the manifest; its files stay on disk.
#[utoipa::path(delete, path = "/workspaces/{id}/projects/{name}", tag = "projects",
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Project),
        (status = 404, description = "no such workspace or project", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid, or an environment still uses the project", body = ErrorBody)))]
pub async fn remove_project(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Project>, ApiError> {
    Ok(Json(
        blocking(move || node.remove_project(&id, &name)).await?,
    ))
}

#[utoipa::path(get, path = "/workspaces/{id}/environments", tag = "environments",
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = [Environment]),
        (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody)))]
pub async fn list_environments(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Environment>>, ApiError> {
    Ok(Json(node.environments(&id)?))
}

#[utoipa::path(post, path = "/workspaces/{id}/environments", tag = "environments", request_body = Environment,
    params(("id" = String, Path, description = "workspace id or unique name")),
    responses((status = 201, body = Environment),
        (status = 404, description = "no such workspace", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace, or the workspace has an environment of that name", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid, or the change would make it so", body = ErrorBody)))]
pub async fn add_environment(
    State(node): State<Node>,
    Path(id): Path<String>,
    Body(e): Body<Environment>,
) -> Created<Environment> {
    let e = blocking(move || node.add_environment(&id, e)).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(get, path = "/workspaces/{id}/environments/{name}", tag = "environments",
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Environment),
        (status = 404, description = "no such workspace or environment", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody)))]
pub async fn show_environment(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Environment>, ApiError> {
    Ok(Json(node.environment(&id, &name)?))
}

/// Replaces an environment's table; a different `name` renames it.
#[utoipa::path(put, path = "/workspaces/{id}/environments/{name}", tag = "environments", request_body = Environment,
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Environment),
        (status = 404, description = "no such workspace or environment", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace, or the workspace has an environment of that name", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid, or the change would make it so", body = ErrorBody)))]
pub async fn replace_environment(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
    Body(e): Body<Environment>,
) -> Result<Json<Environment>, ApiError> {
    Ok(Json(
        blocking(move || node.replace_environment(&id, &name, e)).await?,
    ))
}

#[utoipa::path(delete, path = "/workspaces/{id}/environments/{name}", tag = "environments",
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = Environment),
        (status = 404, description = "no such workspace or environment", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody)))]
pub async fn remove_environment(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Environment>, ApiError> {
    Ok(Json(
        blocking(move || node.remove_environment(&id, &name)).await?,
    ))
}

/// Pins the environment's Python packages (`uv pip compile --generate-hashes`, or `uv lock` for
/// a uv project), through the node's package index, and sets `python.lock` to the lock file.
#[utoipa::path(post, path = "/workspaces/{id}/environments/{name}/lock", tag = "environments",
    params(("id" = String, Path, description = "workspace id or unique name"), ("name" = String, Path)),
    responses((status = 200, body = aienv_node::LockedEnv),
        (status = 400, description = "the environment has no `python` table", body = ErrorBody),
        (status = 404, description = "no such workspace or environment", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace", body = ErrorBody),
        (status = 422, description = "nothing to lock (conda, pixi, no requirements), uv missing, or the resolver failed: the message quotes it", body = ErrorBody)))]
pub async fn lock_environment(
    State(node): State<Node>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<aienv_node::LockedEnv>, ApiError> {
    Ok(Json(node.lock_environment(&id, &name).await?))
}
