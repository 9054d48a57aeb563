//! The API's one error shape, `{ "error": { "code": "...", "message": "..." } }`, and the JSON
//! body extractor that reports malformed requests in that shape.

use aienv_node::NodeError;
use aienv_node::RunError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// An error as every endpoint returns it. The UI switches on `code`; `message` is for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_manifest`, `payload_too_large`.
    pub code: String,
    /// What happened and what to do, in a sentence.
    pub message: String,
    /// For `invalid_manifest`: where the problem is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<aienv_core::ManifestError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub location: Option<aienv_core::ManifestError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            location: None,
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::NotFound(_) => StatusCode::NOT_FOUND,
            NodeError::Ambiguous(_) | NodeError::Exists(_) | NodeError::Changed(_) => {
                StatusCode::CONFLICT
            }
            NodeError::InvalidManifest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            NodeError::Denied { code, .. } => match *code {
                "token_required" | "approval_required" => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            },
            NodeError::Run(r) => match r {
                RunError::NotFit(_) | RunError::PortTaken(_) => StatusCode::CONFLICT,
                RunError::Image(_)
                | RunError::Build(_)
                | RunError::Disk(_)
                | RunError::Setup(_) => StatusCode::UNPROCESSABLE_ENTITY,
                RunError::Engine(_) => StatusCode::SERVICE_UNAVAILABLE,
                // The other machine could not be reached or logged in to.
                RunError::Ssh(_) => StatusCode::BAD_GATEWAY,
                RunError::Start(_) | RunError::NotReady(_) | RunError::Io { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            NodeError::Fetch(_) => StatusCode::BAD_GATEWAY,
            NodeError::DataDir(_)
            | NodeError::Registry(_)
            | NodeError::Discovery(_)
            | NodeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let location = match &e {
            NodeError::InvalidManifest(m) => Some(m.clone()),
            _ => None,
        };
        if status.is_server_error() {
            tracing::error!("{e}");
        }
        ApiError {
            status,
            code: e.code().to_string(),
            message: e.to_string(),
            location,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                location: self.location,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// `axum::Json`, but a bad body answers in the API's error shape: 400 for broken JSON, 422 for
/// JSON of the wrong shape (unknown or missing fields), 413 past the size limit, 415 without
/// `Content-Type: application/json`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(rejected(&rejection)),
        }
    }
}

fn rejected(r: &JsonRejection) -> ApiError {
    let status = r.status();
    let code = code_for(status);
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is too large (limit {} bytes)",
            crate::MAX_BODY_BYTES
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with `Content-Type: application/json`".to_string()
        }
        _ => r.body_text(),
    };
    ApiError::new(status, code, message)
}

/// The code for an error that has no more specific one.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// Gives errors that did not come from our handlers (timeouts, body limits, wrong methods,
/// axum's own extractor rejections) the API's error shape, so a client handles one format only.
pub async fn shape_bare_errors(req: Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return res;
    }
    let text = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => {
            "the request took too long and was cut off; try again".to_string()
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            "this path does not take that method (see /api/v1/openapi.json)".to_string()
        }
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is too large (limit {} bytes)",
            crate::MAX_BODY_BYTES
        ),
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    ApiError::new(status, code_for(status), message).into_response()
}

/// Documents the answers an operation gives before its handler runs, wherever it can give them:
/// a JSON body ([`Body`]) is refused when it is not JSON (400), not sent as JSON (415), of the
/// wrong shape (422) or too large (413); any body when it is too large (413) or, as text, not
/// UTF-8 (400); query parameters when they are missing or malformed (400). What an operation
/// documents itself is kept.
pub(crate) fn document_request_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;

    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let body = op.request_body.as_ref();
            let json = body.is_some_and(|b| b.content.contains_key("application/json"));
            let query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| p.parameter_in == ParameterIn::Query);
            let too_large = format!(
                "the body is larger than the limit ({} bytes)",
                crate::MAX_BODY_BYTES
            );
            let mut errors: Vec<(&str, &str)> = Vec::new();
            if json {
                errors.extend([
                    ("400", "the body is not valid JSON"),
                    ("413", too_large.as_str()),
                    (
                        "415",
                        "the body is not sent with `Content-Type: application/json`",
                    ),
                    (
                        "422",
                        "the body is JSON of the wrong shape (a missing, unknown or mistyped field)",
                    ),
                ]);
            } else if body.is_some() {
                errors.extend([
                    ("400", "the body is not UTF-8 text"),
                    ("413", too_large.as_str()),
                ]);
            }
            if query {
                errors.push(("400", "a query parameter is missing or malformed"));
            }
            for (status, description) in errors {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(description).into());
            }
        }
    }
}

/// A response with an [`ErrorBody`].
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
