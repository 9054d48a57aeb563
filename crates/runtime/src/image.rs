//! Container images between peers: a clone of a container environment brings its image when this
//! machine's engine lacks it. The owner streams `docker save` of the image (only images that a
//! container environment of the shared workspace names); the receiver streams it into
//! `docker load`. No registry is involved, so it works on a LAN without internet, and neither side
//! holds the image in memory.

use std::sync::{Arc, Mutex};

use bollard::query_parameters::ImportImageOptions;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::RunError;

/// Whether this machine's engine has the image.
pub async fn present(name: &str) -> Result<bool, RunError> {
    let (docker, _) = crate::engine::detect().await.map_err(RunError::Engine)?;
    has(&docker, name).await
}

pub(crate) async fn has(docker: &bollard::Docker, name: &str) -> Result<bool, RunError> {
    match docker.inspect_image(name).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(RunError::Engine(format!(
            "cannot ask the engine about {name:?}: {e}"
        ))),
    }
}

/// The image as a `docker save` tar stream.
pub async fn export(
    name: &str,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, RunError> {
    let (docker, _) = crate::engine::detect().await.map_err(RunError::Engine)?;
    if !has(&docker, name).await? {
        return Err(RunError::Image(format!(
            "the image {name:?} is not on this machine"
        )));
    }
    Ok(docker
        .export_image(name)
        .map(|r| r.map_err(std::io::Error::other)))
}

/// Loads a `docker save` tar stream into this machine's engine. A stream that breaks off fails
/// the load (the engine sees a truncated archive) and nothing is tagged.
pub async fn import<S, E>(name: &str, tar: S) -> Result<(), RunError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let (docker, engine) = crate::engine::detect().await.map_err(RunError::Engine)?;
    let broken: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = broken.clone();
    let body = tar
        .take_while(move |r| {
            let ok = match r {
                Ok(_) => true,
                Err(e) => {
                    *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    false
                }
            };
            std::future::ready(ok)
        })
        .filter_map(|r| std::future::ready(r.ok()));
    let mut progress = docker.import_image_stream(
        ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        body,
        None,
    );
    let mut failure = None;
    while let Some(step) = progress.next().await {
        match step {
            Ok(info) => {
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(e);
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    let cut = broken.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(why) = cut.or(failure) {
        return Err(RunError::Image(format!(
            "the image {name:?} could not be loaded into {}: {why}",
            engine.name
        )));
    }
    if !has(&docker, name).await? {
        return Err(RunError::Image(format!(
            "the peer's archive did not contain the image {name:?}"
        )));
    }
    Ok(())
}
