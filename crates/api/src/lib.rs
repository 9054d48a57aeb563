//! aienv API: the axum router over a [`aienv_node::Node`]: REST under `/api/v1`, the WebSocket
//! event stream at `/api/v1/events`, the OpenAPI document at `/api/v1/openapi.json`, and the
//! embedded web UI at `/`.
//!
//! Handlers are thin: they parse, call one `Node` method, and shape the answer. Node methods that
//! touch the disk run on the blocking pool ([`blocking`]). Depends on `aienv-node` and
//! `aienv-core`; only this crate knows axum. Start reading at [`router`], then `routes/`.

mod error;
mod guard;
mod limit;
mod listener;
mod origin;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aienv_node::{Node, NodeError};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ErrorBody};
pub use guard::is_lan;
pub use listener::{Conn, PeerListener};

/// The largest request body the API takes. The biggest legitimate one is a manifest (1 MiB).
pub const MAX_BODY_BYTES: usize = 2 << 20;

/// How long one request may take before it is cut off with 408. WebSocket streams are not
/// affected: their upgrade answers at once.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "aienv",
        description = "AI Environment Manager node API. Errors are `{ \"error\": { \"code\", \"message\" } }`."
    ),
    components(schemas(aienv_core::Event, ErrorBody))
)]
struct ApiDoc;

/// The complete router: API, OpenAPI document and web UI, with limits and guards.
pub fn router(node: Node) -> Router {
    router_with_ui(node, routes::ui::router())
}

/// [`router`] with the given UI routes (tests pass a fixture build of the UI).
fn router_with_ui(node: Node, ui: Router) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = Arc::new(doc);
    let key: Option<Arc<str>> = node.config().api_key.as_deref().map(Arc::from);
    let limits = limit::layer(key.clone());
    let plain_peers = node.config().plain_peers;
    Router::new()
        .merge(api.with_state(node))
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(ui)
        .fallback(routes::not_found)
        .layer(axum::Extension(Arc::new(routes::ListCache::default())))
        .layer(axum::middleware::from_fn(error::shape_bare_errors))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(key, guard::api_key))
        .layer(axum::middleware::from_fn_with_state(
            plain_peers,
            guard::peers_over_tls,
        ))
        .layer(axum::middleware::from_fn(origin::same_origin))
        .layer(axum::middleware::from_fn(guard::lan_only))
        .layer(limits)
        .layer(axum::middleware::from_fn(guard::transport))
}

/// The OpenAPI document, as `/api/v1/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

fn api_routes() -> OpenApiRouter<Node> {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", routes::api());
    error::document_request_errors(api.get_openapi_mut());
    api
}

/// Serves the router on `listener` until `shutdown` completes: plain HTTP for this machine's
/// clients, and TLS with the node's certificate for peers, on the same port.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = node
        .identity()
        .server_config()
        .map_err(|e| std::io::Error::other(format!("cannot set up TLS: {e}")))?;
    let listener = PeerListener::new(listener, Some(tls));
    let app = router(node).into_make_service_with_connect_info::<Conn>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs a node operation that touches the disk on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the operation failed unexpectedly ({e}); see the node's log"),
        )),
    }
}

#[cfg(test)]
mod tests;
