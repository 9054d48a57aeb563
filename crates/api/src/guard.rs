//! Who may talk to the node: only loopback and private or link-local addresses (the node is a
//! LAN tool), and, when an API key is configured, only requests that carry it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// API paths that answer without a key: health checks must work before a client has one.
/// Everything outside `/api/` (the web UI's files) is open too: the page is what asks for the key,
/// and it holds nothing secret. The peer routes ([`is_peer_path`]) have their own rules: each
/// share's access mode.
const OPEN_PATHS: &[&str] = &["/api/v1/health"];

/// What peers call: the share list and, per share, its files, stream, images and access
/// requests; the LAN cache (`/api/v1/cache/...`); and runs peers start here
/// (`/api/v1/remote/...`). Peers do not hold the user's API key; shares are guarded by their
/// access mode (open, token, approve) instead, the cache by `[cache] access`, remote runs by
/// `[remote_runs] access`, and, from other machines, all of them only over TLS.
pub fn is_peer_path(path: &str) -> bool {
    path == "/api/v1/shares"
        || ["/api/v1/shares/", "/api/v1/cache/", "/api/v1/remote/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// Whether the request came over TLS, and the fingerprint of the client's certificate (absent
/// for in-process callers, which have no socket).
#[derive(Debug, Clone)]
pub struct Transport {
    pub tls: bool,
    pub client_cert: Option<std::sync::Arc<str>>,
}

/// Makes the connection's facts available the usual way: `ConnectInfo<SocketAddr>` for the
/// address, [`Transport`] for TLS.
pub async fn transport(mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(conn)) = req.extensions().get::<ConnectInfo<crate::Conn>>().cloned() {
        req.extensions_mut().insert(ConnectInfo(conn.addr));
        req.extensions_mut().insert(Transport {
            tls: conn.tls,
            client_cert: conn.client_cert,
        });
    }
    next.run(req).await
}

/// Peers on other machines must use TLS for the peer routes (plain HTTP would carry share
/// tokens and files in the clear), unless the node is configured with `plain_peers = true`.
/// This machine's own clients may use plain HTTP: loopback never leaves it.
pub async fn peers_over_tls(
    State(plain_allowed): State<bool>,
    req: Request,
    next: Next,
) -> Response {
    let plain = req.extensions().get::<Transport>().is_some_and(|t| !t.tls);
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(a)| !a.ip().is_loopback());
    if plain && remote && !plain_allowed && is_peer_path(req.uri().path()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "tls_required",
            "shares are served to other machines over TLS only: connect with https:// (aienv \
             nodes do this by themselves), or set `plain_peers = true` on both nodes to allow \
             plain HTTP on a network you trust",
        )
        .into_response();
    }
    next.run(req).await
}

/// Refuses requests from outside the LAN. Requests that did not come over a socket (in-process
/// callers such as the desktop shell, router tests) carry no address and pass.
pub async fn lan_only(req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && !is_lan(addr.ip())
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "not_lan",
            format!(
                "this node answers only its own machine and the local network; {} is outside it",
                addr.ip()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// The API key a request presents: `Authorization: Bearer KEY`, or `?access_token=KEY` (browsers'
/// WebSockets cannot set headers), or as the password of HTTP Basic auth (pip and uv send the
/// credentials of an index URL like `http://aienv:KEY@127.0.0.1:47478/api/v1/index/simple/`).
pub(crate) fn presented_key(req: &Request) -> Option<std::borrow::Cow<'_, str>> {
    let auth = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let bearer = auth.and_then(|v| v.strip_prefix("Bearer ")).map(Into::into);
    let basic = || {
        let encoded = auth?.strip_prefix("Basic ")?;
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        text.split_once(':').map(|(_, key)| key.to_string().into())
    };
    let query = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("access_token=")))
        .map(Into::into);
    bearer.or_else(basic).or(query)
}

/// Checks the API key ([`presented_key`]) when the node has one.
pub async fn api_key(
    State(key): State<Option<std::sync::Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(key) = key else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if OPEN_PATHS.contains(&path) || !path.starts_with("/api/") || is_peer_path(path) {
        return next.run(req).await;
    }
    match presented_key(&req) {
        Some(given) if aienv_trust::same_secret(given.as_bytes(), key.as_bytes()) => {
            next.run(req).await
        }
        Some(_) => unauthorized(
            "the API key is wrong; use the key this node was started with (--api-key or AIENV_API_KEY)",
        ),
        None => unauthorized(
            "this node requires an API key: send `Authorization: Bearer KEY` (the CLI reads --api-key or AIENV_API_KEY)",
        ),
    }
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response()
}

/// Loopback, private (RFC 1918, IPv6 unique-local) and link-local addresses.
pub fn is_lan(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_lan(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_addresses_pass_and_public_ones_do_not() {
        for ok in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "169.254.3.4",
            "::1",
            "fe80::1",
            "fd00::5",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_lan(ok.parse().unwrap()), "{ok} is on the LAN");
        }
        for no in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:1.1.1.1"] {
            assert!(!is_lan(no.parse().unwrap()), "{no} is not on the LAN");
        }
    }
}
