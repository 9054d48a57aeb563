//! Building a container environment's image from its Dockerfile (`build` in aienv.toml). It is
//! built on every start: the engine's layer cache makes a repeat build quick, and an edited
//! Dockerfile or context is picked up without anyone asking for a rebuild.
//!
//! The context folder is streamed to the engine (see `context.rs`), never held in memory (a
//! workspace may hold datasets). The image is tagged `image` when the manifest names one, else
//! `aienv-build/ENV-HASH:latest`, which is unique per workspace. What the build prints goes to the
//! run's log; a failed build's message quotes its last lines.

mod context;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use aienv_core::resources::ContainerEngine;
use aienv_core::{Environment, ImageBuild};
use bollard::Docker;
use bollard::models::BuildInfo;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

use self::context::{Context, send_context};
use crate::error::RunError;
use crate::logs;

/// How many lines of the log a failed build quotes.
const QUOTED_LINES: usize = 15;

/// The tag an environment's image is built as.
pub fn tag(workspace: &Path, env: &Environment) -> String {
    env.image
        .clone()
        .unwrap_or_else(|| default_tag(workspace, &env.name))
}

/// `aienv-build/NAME-HASH:latest`: NAME is the environment's name made a valid (lowercase)
/// reference, HASH one of the workspace's path, so that two workspaces' `train` stay apart.
pub fn default_tag(workspace: &Path, env: &str) -> String {
    let mut name = String::new();
    for c in env.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = match name.trim_end_matches('-') {
        "" => "env",
        n => n,
    };
    let hash = fnv1a(workspace.as_os_str().as_encoded_bytes());
    format!("aienv-build/{name}-{hash:08x}:latest")
}

/// FNV-1a, 32 bits: unlike std's hasher it is the same in every Rust version, so the tag (and
/// the engine's cache behind it) survives an upgrade of aienv.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Builds the environment's image with the engine, its output going to `log`. Returns the tag.
pub async fn build(
    docker: &Docker,
    engine: &ContainerEngine,
    workspace: &Path,
    env: &Environment,
    b: &ImageBuild,
    log: &Path,
) -> Result<String, RunError> {
    let (context, dockerfile) = locate(workspace, b)?;
    let tag = tag(workspace, env);
    let mut out = logs::open_append(log)
        .map_err(|e| RunError::io(format!("cannot write the log {}", log.display()), e))?;
    let _ = writeln!(
        out,
        "[aienv] building the image {tag} from {} ({})",
        b.dockerfile, engine.name
    );
    let options = BuildImageOptions {
        dockerfile: dockerfile.to_string_lossy().into_owned(),
        t: Some(tag.clone()),
        buildargs: Some(b.args.clone().into_iter().collect()),
        target: b.target.clone().unwrap_or_default(),
        rm: true,
        // Also when a step fails, so that a broken Dockerfile leaves no containers behind.
        forcerm: true,
        labels: Some(HashMap::from([
            ("aienv.environment".to_string(), env.name.clone()),
            (
                "aienv.workspace".to_string(),
                workspace.display().to_string(),
            ),
        ])),
        ..Default::default()
    };
    let (body, sending) = send_context(Context::new(context.clone(), dockerfile));
    let mut failure = None;
    {
        let mut progress = docker.build_image(options, None, Some(bollard::body_try_stream(body)));
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => show(&mut out, &info),
                Err(e) => {
                    failure = Some(crate::container::message(&e));
                    break;
                }
            }
        }
    }
    if let Some(e) = sending.finish().await {
        return Err(RunError::Build(format!(
            "the build context {} could not be sent to {}: {e}; make its files readable, or \
             leave them out with a .dockerignore",
            context.display(),
            engine.name
        )));
    }
    if let Some(why) = failure {
        return Err(RunError::Build(format!(
            "building the image {tag} for environment {:?} from {} failed: {why}. The build's \
             last lines:\n{}\nFix the Dockerfile (or `build` or `image` in aienv.toml) and start it \
             again",
            env.name,
            b.dockerfile,
            logs::quote_tail(log, QUOTED_LINES)
        )));
    }
    let _ = writeln!(out, "[aienv] built the image {tag}");
    Ok(tag)
}

/// Writes a line of the build's progress to the log. Download progress bars are left out.
fn show(out: &mut File, info: &BuildInfo) {
    if let Some(text) = &info.stream {
        let _ = out.write_all(text.as_bytes());
    } else if let (Some(status), None) = (&info.status, &info.progress) {
        let id = info
            .id
            .as_deref()
            .map(|i| format!("{i}: "))
            .unwrap_or_default();
        let _ = writeln!(out, "{id}{status}");
    }
}

/// The context folder, and the Dockerfile's path inside it.
fn locate(workspace: &Path, b: &ImageBuild) -> Result<(PathBuf, PathBuf), RunError> {
    let context_dir = b.context_dir();
    let context = workspace.join(&context_dir).canonicalize().map_err(|e| {
        RunError::Build(format!(
            "the build context {} cannot be read ({e}); fix `build.context` in aienv.toml",
            workspace.join(&context_dir).display()
        ))
    })?;
    let dockerfile = workspace.join(&b.dockerfile).canonicalize().map_err(|e| {
        RunError::Build(format!(
            "the Dockerfile {} cannot be read ({e}); fix `build.dockerfile` in aienv.toml",
            workspace.join(&b.dockerfile).display()
        ))
    })?;
    match dockerfile.strip_prefix(&context) {
        Ok(inside) => Ok((context.clone(), inside.to_path_buf())),
        Err(_) => Err(RunError::Build(format!(
            "the Dockerfile {} is outside the build context {}: the engine sees only the \
             context, so move the Dockerfile into it, or set `build.context` to a folder that \
             holds both",
            b.dockerfile,
            if context_dir.is_empty() {
                "(the workspace)".to_string()
            } else {
                context_dir
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_of(dockerfile: &str, context: Option<&str>) -> ImageBuild {
        ImageBuild {
            dockerfile: dockerfile.into(),
            context: context.map(str::to_string),
            args: Default::default(),
            target: None,
        }
    }

    #[test]
    fn the_default_tag_is_a_valid_reference_unique_per_workspace() {
        let a = default_tag(Path::new("/home/ana/ws"), "Train_GPU.v2");
        assert_eq!(a, default_tag(Path::new("/home/ana/ws"), "Train_GPU.v2"));
        assert!(a.starts_with("aienv-build/train-gpu-v2-"), "{a}");
        assert!(a.ends_with(":latest"), "{a}");
        let hash = &a["aienv-build/train-gpu-v2-".len()..a.len() - ":latest".len()];
        assert_eq!(hash.len(), 8);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase())
        );
        assert_ne!(a, default_tag(Path::new("/home/bo/ws"), "Train_GPU.v2"));
        assert!(default_tag(Path::new("/w"), "--").starts_with("aienv-build/env-"));
        let mut env = Environment::new("train", aienv_core::EnvKind::Container);
        env.image = Some("lab/trainer:dev".into());
        assert_eq!(tag(Path::new("/w"), &env), "lab/trainer:dev");
    }

    #[test]
    fn the_dockerfile_must_be_inside_the_context() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("docker/ctx")).unwrap();
        std::fs::write(ws.path().join("docker/Dockerfile"), "FROM x\n").unwrap();
        let (ctx, file) = locate(ws.path(), &build_of("docker/Dockerfile", None)).unwrap();
        assert_eq!(ctx, ws.path().join("docker").canonicalize().unwrap());
        assert_eq!(file, Path::new("Dockerfile"));
        let (_, file) = locate(ws.path(), &build_of("./docker/Dockerfile", Some("."))).unwrap();
        assert_eq!(file, Path::new("docker/Dockerfile"));
        let e = locate(
            ws.path(),
            &build_of("docker/Dockerfile", Some("docker/ctx")),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "the Dockerfile docker/Dockerfile is outside the build context docker/ctx"
            ),
            "{e}"
        );
        let e = locate(ws.path(), &build_of("Dockerfile.gpu", None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Dockerfile.gpu cannot be read"), "{e}");
        assert!(e.ends_with("fix `build.dockerfile` in aienv.toml"), "{e}");
    }
}
