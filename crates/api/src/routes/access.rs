//! Who gets into this node's shares: share tokens (owner), access requests (peers ask, the owner
//! answers), the audit log, and the peers whose certificates this node pinned.

use std::net::SocketAddr;
use std::time::Duration;

use aienv_core::access::AccessRequest;
use aienv_node::{NODE_ID_HEADER, NODE_NAME_HEADER, Node, Requester, TOKEN_HEADER};
use aienv_trust::{AuditRecord, NewToken, TokenInfo, TrustedPeer};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// The requester of a peer route: its address, the node it says it is, its share token.
#[derive(Debug)]
pub struct Who(pub Requester);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(128).collect::<String>())
        };
        let from = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or("local".to_string(), |ConnectInfo(a)| a.to_string());
        Ok(Who(Requester {
            from,
            peer_id: header(NODE_ID_HEADER),
            peer_name: header(NODE_NAME_HEADER),
            token: parts
                .headers
                .get(TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            cert: parts
                .extensions
                .get::<crate::guard::Transport>()
                .and_then(|t| t.client_cert.as_deref().map(str::to_string)),
        }))
    }
}

/// A peer asks for access to a share with `access = "approve"` and waits (up to the owner's
/// approve timeout) for the answer. A yes returns a token of its own, shown once.
#[utoipa::path(post, path = "/shares/{workspace}/access", tag = "access",
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses(
        (status = 200, description = "approved: present `secret` in the aienv-share-token header", body = NewToken),
        (status = 400, description = "the share is not on approval", body = ErrorBody),
        (status = 403, description = "refused, or nobody answered in time", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn request(
    State(node): State<Node>,
    Path(ws): Path<String>,
    Who(who): Who,
) -> Result<Json<NewToken>, ApiError> {
    Ok(Json(node.request_access(&ws, &who).await?))
}

/// Access requests waiting for the owner's answer, oldest first.
#[utoipa::path(get, path = "/access-requests", tag = "access",
    responses((status = 200, body = [AccessRequest])))]
pub async fn pending(State(node): State<Node>) -> Json<Vec<AccessRequest>> {
    Json(node.access_requests())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub approve: bool,
}

/// Approves or refuses a waiting access request.
#[utoipa::path(post, path = "/access-requests/{id}", tag = "access", request_body = Decision,
    params(("id" = String, Path, description = "the request's id")),
    responses((status = 200, body = AccessRequest), (status = 404, description = "no such request waiting", body = ErrorBody)))]
pub async fn decide(
    State(node): State<Node>,
    Path(id): Path<String>,
    Body(d): Body<Decision>,
) -> Result<Json<AccessRequest>, ApiError> {
    Ok(Json(node.decide_access(&id, d.approve)?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// Who it is for, to recognise it in the list.
    pub label: Option<String>,
    /// Seconds until it stops working (none: until revoked).
    #[schema(minimum = 1)]
    pub expires_in_s: Option<u64>,
}

/// Makes a share token for the workspace. Its secret is in this answer only.
#[utoipa::path(post, path = "/workspaces/{workspace}/tokens", tag = "access", request_body = NewTokenRequest,
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses((status = 201, body = NewToken), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn create_token(
    State(node): State<Node>,
    Path(ws): Path<String>,
    Body(req): Body<NewTokenRequest>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    if req.expires_in_s == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expires_in_s must be at least 1 (leave it out for a token that lasts until revoked)",
        ));
    }
    let label = req.label.filter(|l| !l.trim().is_empty());
    let expires = req
        .expires_in_s
        .map(|s| Duration::from_secs(s.min(100 * 365 * 86_400)));
    let t = blocking(move || node.create_token(&ws, label, expires)).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// The workspace's share tokens (never their secrets), newest first.
#[utoipa::path(get, path = "/workspaces/{workspace}/tokens", tag = "access",
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = [TokenInfo]), (status = 404, body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn list_tokens(
    State(node): State<Node>,
    Path(ws): Path<String>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(node.list_tokens(&ws)?))
}

/// Revokes a share token: peers presenting it are refused from now on.
#[utoipa::path(delete, path = "/workspaces/{workspace}/tokens/{id}", tag = "access",
    params(("workspace" = String, Path, description = "workspace id or unique name"), ("id" = String, Path, description = "the token's id")),
    responses((status = 200, body = TokenInfo), (status = 404, body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody)))]
pub async fn revoke_token(
    State(node): State<Node>,
    Path((ws, id)): Path<(String, String)>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(blocking(move || node.revoke_token(&ws, &id)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// At most this many records (default 200, at most 10000).
    limit: Option<usize>,
}

/// What peers asked of this node's shares and whether they got it, newest first.
#[utoipa::path(get, path = "/audit", tag = "access", params(AuditQuery),
    responses((status = 200, body = [AuditRecord])))]
pub async fn audit(
    State(node): State<Node>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let limit = q.limit.unwrap_or(200).min(10_000);
    Ok(Json(blocking(move || Ok(node.audit_log(limit))).await?))
}

/// The peers whose certificates this node pinned.
#[utoipa::path(get, path = "/peers/trusted", tag = "access",
    responses((status = 200, body = [TrustedPeer])))]
pub async fn trusted(State(node): State<Node>) -> Json<Vec<TrustedPeer>> {
    Json(node.trusted_peers())
}

/// Trusts the certificate a peer announces now, replacing the pinned one (after the peer was
/// reinstalled, say). Only do this when you know why it changed.
#[utoipa::path(post, path = "/peers/{peer}/trust", tag = "access",
    params(("peer" = String, Path, description = "the peer's id or unique name")),
    responses((status = 200, body = TrustedPeer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn trust(
    State(node): State<Node>,
    Path(peer): Path<String>,
) -> Result<Json<TrustedPeer>, ApiError> {
    Ok(Json(node.trust_peer(&peer).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretScanRequest {
    /// Sharing settings to scan under (default: the workspace's own), e.g. the ones about to be
    /// applied.
    pub sharing: Option<aienv_core::Sharing>,
}

/// The files that would be shared and look like they hold secrets (keys, tokens, passwords in
/// code). Front ends call it before switching sharing on, and warn.
#[utoipa::path(post, path = "/workspaces/{workspace}/secret-scan", tag = "access", request_body = SecretScanRequest,
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses((status = 200, body = [aienv_node::SecretFinding]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn secret_scan(
    State(node): State<Node>,
    Path(ws): Path<String>,
    Body(req): Body<SecretScanRequest>,
) -> Result<Json<Vec<aienv_node::SecretFinding>>, ApiError> {
    Ok(Json(
        blocking(move || node.scan_secrets(&ws, req.sharing)).await?,
    ))
}
