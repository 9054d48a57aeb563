//! `GET`, `PATCH /settings`: the node's own settings, and changes saved to its config file for
//! the next start.

use aienv_node::{Node, NodeSettings, SettingsPatch, SettingsUpdate};
use axum::Json;
use axum::extract::State;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// The settings in effect, and what `DATA_DIR/config.toml` says (`file`). Never the API key.
#[utoipa::path(get, path = "/settings", operation_id = "show_settings", tag = "node", responses(
    (status = 200, body = NodeSettings),
    (status = 500, description = "the config file cannot be read", body = ErrorBody),
))]
pub async fn show(State(node): State<Node>) -> Result<Json<NodeSettings>, ApiError> {
    Ok(Json(blocking(move || node.settings()).await?))
}

/// Saves a change to `DATA_DIR/config.toml`, keeping its comments; it takes effect when the node
/// restarts. A refused value writes nothing.
#[utoipa::path(patch, path = "/settings", operation_id = "update_settings", tag = "node", request_body = SettingsPatch, responses(
    (status = 200, body = SettingsUpdate),
    (status = 400, description = "a value is not valid; nothing was written", body = ErrorBody),
    (status = 500, description = "the config file cannot be read or written", body = ErrorBody),
))]
pub async fn update(
    State(node): State<Node>,
    Body(patch): Body<SettingsPatch>,
) -> Result<Json<SettingsUpdate>, ApiError> {
    Ok(Json(blocking(move || node.update_settings(patch)).await?))
}
