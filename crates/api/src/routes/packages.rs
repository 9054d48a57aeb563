//! Python packages of the LAN cache:
//!
//! - for peers, `GET /cache/packages/{project}` (this node's files of a project, with hashes) and
//!   `GET /cache/packages/{project}/{filename}` (one file), behind `[cache] access`;
//! - for installers on this machine, a PEP 503 simple index at `/index/simple/` whose files come
//!   from this node, its peers, then upstream (`pip install --index-url
//!   http://127.0.0.1:47478/api/v1/index/simple/ ...`; with an API key, put it in the URL as
//!   `http://aienv:KEY@127.0.0.1:...`).

use aienv_lancache::packages::{Listing, simple_page, simple_root};
use aienv_node::lan_cache::Part;
use aienv_node::{IndexFile, Node};
use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::blocking;
use crate::error::{ApiError, ErrorBody};

/// This node's own files of a project (its store and wheel folders), for a peer's index.
#[utoipa::path(get, path = "/cache/packages/{project}", tag = "lan",
    params(("project" = String, Path, description = "project name, any spelling (PEP 503 normalises it)")),
    responses(
        (status = 200, body = Listing),
        (status = 403, description = "this node does not serve its cache to the requester", body = ErrorBody)))]
pub async fn peer_listing(
    State(node): State<Node>,
    Path(project): Path<String>,
    super::Who(who): super::Who,
) -> Result<axum::Json<Listing>, ApiError> {
    blocking(move || {
        node.authorize_cache(Part::Packages, &who, "package list")?;
        Ok(axum::Json(node.cached_packages(&project)))
    })
    .await
}

/// One file of this node's packages, for a peer (which checks it against the listed hash).
#[utoipa::path(get, path = "/cache/packages/{project}/{filename}", tag = "lan",
    params(
        ("project" = String, Path, description = "project name"),
        ("filename" = String, Path, description = "the file's name, as listed")),
    responses(
        (status = 200, description = "the file's bytes"),
        (status = 404, body = ErrorBody),
        (status = 403, description = "this node does not serve its cache to the requester", body = ErrorBody)))]
pub async fn peer_file(
    State(node): State<Node>,
    Path((_project, filename)): Path<(String, String)>,
    super::Who(who): super::Who,
) -> Result<Response, ApiError> {
    // `FILE.metadata`: the wheel's core metadata (PEP 658), a few KB.
    if let Some(wheel) = filename.strip_suffix(".metadata") {
        let wheel = wheel.to_string();
        let bytes = blocking(move || {
            node.authorize_cache(Part::Packages, &who, &format!("package metadata {wheel}"))?;
            node.cached_package_metadata(&wheel)
        })
        .await?;
        return Ok(immutable(bytes.to_vec().into_response()));
    }
    let path = blocking(move || {
        node.authorize_cache(Part::Packages, &who, &format!("package {filename}"))?;
        node.cached_package_file(&filename)
    })
    .await?;
    file_response(&path).await
}

/// The simple index's root: the projects this node holds.
#[utoipa::path(get, path = "/index/simple/", tag = "packages",
    responses((status = 200, description = "a PEP 503 root page (HTML)")))]
pub async fn index_root(State(node): State<Node>) -> Result<Html<String>, ApiError> {
    blocking(move || Ok(Html(simple_root(&node.index_projects())))).await
}

/// A project's page of the simple index: the files this node, its peers and upstream offer.
#[utoipa::path(get, path = "/index/simple/{project}/", tag = "packages",
    params(("project" = String, Path, description = "project name, any spelling")),
    responses(
        (status = 200, description = "a PEP 503 project page (HTML), each link with its SHA-256 (and its core metadata's, PEP 658, where served)"),
        (status = 304, description = "unchanged since the tag the installer sent (If-None-Match)"),
        (status = 404, description = "no one has files of this project", body = ErrorBody)))]
pub async fn index_project(
    State(node): State<Node>,
    Path(project): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let files = node.index_listing(&project).await;
    if files.is_empty() {
        return Err(aienv_node::NodeError::NotFound(format!(
            "no package {project:?} on this node, its peers or the upstream index"
        ))
        .into());
    }
    let page = simple_page(&project, &files, |f| format!("../../files/{}", f.filename));
    // Installers that cached the page ask again with its tag: unchanged, it need not travel.
    let etag = format!(
        "\"{}\"",
        &aienv_lancache::packages::sha256_hex(page.as_bytes())[..16]
    );
    let same = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if same {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Html(page).into_response()
    };
    res.headers_mut().insert(
        header::ETAG,
        header::HeaderValue::from_str(&etag).expect("hex is a header value"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=0, must-revalidate"),
    );
    Ok(res)
}

/// A file of the simple index: from this node's store, or fetched from the peer or upstream index
/// that listed it (checked against the listed SHA-256, then kept for the next asker).
#[utoipa::path(get, path = "/index/files/{filename}", tag = "packages",
    params(("filename" = String, Path, description = "the file's name, as the project page lists it")),
    responses(
        (status = 200, description = "the file's bytes"),
        (status = 404, body = ErrorBody),
        (status = 502, description = "the peer or index that listed it failed, or sent other bytes than it listed", body = ErrorBody)))]
pub async fn index_file(
    State(node): State<Node>,
    Path(filename): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(wheel) = filename.strip_suffix(".metadata") {
        let bytes = node.index_metadata(wheel).await?;
        return Ok(immutable(bytes.into_response()));
    }
    match node.index_file(&filename).await? {
        IndexFile::Stored(path) => file_response(&path).await,
        IndexFile::Fetching { body, size } => {
            let stream = futures_util::stream::unfold(body, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            let mut res = HttpBody::from_stream(stream).into_response();
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(size) = size {
                headers.insert(header::CONTENT_LENGTH, size.into());
            }
            Ok(immutable(res))
        }
    }
}

/// A file as the body of a response, streamed, with its length.
async fn file_response(path: &std::path::Path) -> Result<Response, ApiError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| aienv_node::NodeError::Io {
            context: format!("cannot read {}", path.display()),
            source: e,
        })?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = HttpBody::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    Ok(immutable(
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, len.to_string()),
            ],
            body,
        )
            .into_response(),
    ))
}

/// A distribution file never changes under its name (and installers check its hash): caches
/// may keep it for good instead of asking again.
fn immutable(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    res
}
