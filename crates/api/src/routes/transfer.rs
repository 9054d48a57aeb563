//! `POST /shares/{workspace}/stream`: the files a peer asks for, as a tar stream.

use std::io::{self, Write};

use aienv_node::Node;
use aienv_sharing::transfer::{StreamRequest, pack::pack};
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use crate::blocking;
use crate::error::{ApiError, Body, ErrorBody};

/// Streams the requested files of a shared workspace as tar (zstd when asked), in the order of
/// its file manifest. 409 when the share changed since the requester's manifest revision.
#[utoipa::path(post, path = "/shares/{workspace}/stream", tag = "lan", request_body = StreamRequest,
    params(("workspace" = String, Path, description = "workspace id or unique name")),
    responses(
        (status = 200, description = "a tar stream (application/x-tar or application/zstd)"),
        (status = 400, description = "the ranges are out of order or past the end, or name an entry that is not a file", body = ErrorBody),
        (status = 409, description = "the share changed: fetch its file list again (or the name matches more than one workspace)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "the workspace's manifest is invalid", body = ErrorBody),
        (status = 401, description = "the share needs a token or approval", body = ErrorBody),
        (status = 403, description = "the token is wrong, revoked or expired", body = ErrorBody)))]
pub async fn stream(
    State(node): State<Node>,
    Path(ws): Path<String>,
    super::Who(who): super::Who,
    Body(req): Body<StreamRequest>,
) -> Result<Response, ApiError> {
    let zstd = req.zstd;
    let t = std::time::Instant::now();
    let (root, manifest, indices) = blocking(move || {
        node.authorize(&ws, &who, "clone")?;
        node.stream_plan(&ws, &req)
    })
    .await?;
    tracing::debug!(elapsed = ?t.elapsed(), files = indices.len(), "stream: planned");
    let body = body_from_writer(move |out| {
        let result = pack(&root, &manifest, &indices, out, zstd);
        tracing::debug!(elapsed = ?t.elapsed(), "stream: packed");
        if let Err(e) = &result {
            tracing::warn!("sending {}: {e}", root.display());
        }
        result
    });
    let kind = if zstd {
        "application/zstd"
    } else {
        "application/x-tar"
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}

/// An HTTP body that `write` fills from a blocking thread, in large chunks. An error ends the
/// body with that error: the receiver sees a cut stream, not a clean end.
pub(crate) fn body_from_writer(
    write: impl FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
) -> HttpBody {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = write(&mut out).and_then(|()| out.flush()) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    HttpBody::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

const CHUNK: usize = 256 * 1024;

/// Collects a writer's many small writes into large chunks for the HTTP body.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the receiver went away"))
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ImageQuery {
    /// The image, as a container environment of the workspace names it.
    name: String,
}

/// Streams a container image (`docker save` format) that a container environment of the shared
/// workspace uses, so that a peer cloning it needs no registry.
#[utoipa::path(get, path = "/shares/{workspace}/images", tag = "lan",
    params(("workspace" = String, Path, description = "workspace id or unique name"), ImageQuery),
    responses(
        (status = 200, description = "a tar stream (application/x-tar)"),
        (status = 404, description = "not shared, or no environment uses that image", body = ErrorBody),
        (status = 409, description = "the name matches more than one workspace: use its id", body = ErrorBody),
        (status = 422, description = "the image is not on this machine", body = ErrorBody),
        (status = 401, description = "the share needs a token or approval", body = ErrorBody),
        (status = 403, description = "the token is wrong, revoked or expired", body = ErrorBody),
        (status = 503, description = "no container engine here", body = ErrorBody)))]
pub async fn image(
    State(node): State<Node>,
    Path(ws): Path<String>,
    super::Who(who): super::Who,
    axum::extract::Query(q): axum::extract::Query<ImageQuery>,
) -> Result<Response, ApiError> {
    {
        let (node, ws) = (node.clone(), ws.clone());
        blocking(move || node.authorize(&ws, &who, "image")).await?;
    }
    let stream = node.share_image(&ws, &q.name).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        HttpBody::from_stream(stream),
    )
        .into_response())
}
