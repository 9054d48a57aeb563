//! Finding the container engine: Docker, or Podman through its Docker-compatible socket.
//!
//! `DOCKER_HOST` (a `unix://` path) comes first, then the usual sockets. The first that answers
//! a version request is used; when none does, the message says which were tried and what to do.

use std::time::Duration;

use aienv_core::resources::ContainerEngine;
use bollard::Docker;

/// How long an engine may take to answer before it counts as not running.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// The longest any one request to the engine may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

fn candidates() -> Vec<String> {
    let mut out = Vec::new();
    // As with the docker CLI, DOCKER_HOST, when set, is the only engine to use.
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        out.push(host.strip_prefix("unix://").unwrap_or(&host).to_string());
        return out;
    }
    out.push("/var/run/docker.sock".into());
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        out.push(format!("{dir}/podman/podman.sock"));
        out.push(format!("{dir}/docker.sock"));
    }
    out.push("/run/podman/podman.sock".into());
    out.dedup();
    out
}

/// The first engine that answers, with what it says of itself.
pub async fn detect() -> Result<(Docker, ContainerEngine), String> {
    let mut tried = Vec::new();
    for path in candidates() {
        if !std::path::Path::new(&path).exists() {
            if std::env::var_os("DOCKER_HOST").is_some() {
                tried.push(format!("{path}: no such socket (from DOCKER_HOST)"));
            }
            continue;
        }
        // The client's own timeout covers every later request too (a stop waits for the grace
        // period, an image load takes long); the detection itself is bounded below.
        let docker = match Docker::connect_with_unix(
            &path,
            REQUEST_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        ) {
            Ok(d) => d,
            Err(e) => {
                tried.push(format!("{path}: {e}"));
                continue;
            }
        };
        match tokio::time::timeout(ANSWER_WITHIN, docker.version()).await {
            Ok(Ok(v)) => {
                let podman = v
                    .components
                    .iter()
                    .flatten()
                    .any(|c| c.name.to_lowercase().contains("podman"));
                let engine = ContainerEngine {
                    name: if podman { "podman" } else { "docker" }.into(),
                    version: v.version.unwrap_or_default(),
                    endpoint: format!("unix://{path}"),
                };
                return Ok((docker, engine));
            }
            Ok(Err(e)) => tried.push(format!("{path}: {e}")),
            Err(_) => tried.push(format!("{path}: no answer in {ANSWER_WITHIN:?}")),
        }
    }
    if tried.is_empty() {
        Err(
            "no container engine found (no Docker or Podman socket); install Docker or Podman \
             and start it"
                .into(),
        )
    } else {
        Err(format!(
            "the container engine does not answer ({}); start it (e.g. `sudo systemctl start \
             docker`) and try again",
            tried.join("; ")
        ))
    }
}
