//! Adopting existing projects: the files other tools already describe environments with
//! (`devcontainer.json`, a `Dockerfile`, `compose.yaml`, conda's `environment.yml`, `pixi.toml`,
//! `pyproject.toml`, `requirements*.txt`, a folder of notebooks) become aienv environments.
//!
//! Two entry points:
//! - [`propose`] looks at a folder without an `aienv.toml` and proposes environments; [`render`]
//!   turns the proposal into a commented manifest that points at the original files
//!   (`from = "..."`) instead of copying them.
//! - [`resolve_manifest`] reads the files such a manifest points at and fills its environments
//!   in, every time the node loads the manifest: the original file stays the source of truth, and
//!   keys written in `aienv.toml` override what it says.
//!
//! Every key of a source that aienv does not act on is listed in [`Adopted::unsupported`], never
//! silently dropped. This crate reads files only; it runs nothing.

mod compose;
mod conda;
mod devcontainer;
mod dockerfile;
mod keys;
mod propose;
mod python;
mod render;
mod resolve;
mod source;

use std::path::Path;

use aienv_core::{Environment, ManifestError};
use serde::Serialize;
use utoipa::ToSchema;

pub use propose::{Proposal, propose};
pub use render::render;
pub use resolve::{followed_files, resolve_manifest};

/// What one source file says about an environment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Adopted {
    pub environment: Environment,
    /// Keys of the source that aienv does not act on, each with what it means for the user.
    pub unsupported: Vec<String>,
    /// Other things worth knowing before accepting (what was guessed, what to add).
    pub notes: Vec<String>,
    /// The files the environment is read from (relative to the workspace): the source, and the
    /// Dockerfile it builds. A change to any of them is picked up.
    pub files: Vec<String>,
}

impl Adopted {
    fn new(environment: Environment, source: &str) -> Self {
        Adopted {
            environment,
            unsupported: Vec::new(),
            notes: Vec::new(),
            files: vec![source.to_string()],
        }
    }
}

/// Which format a file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Devcontainer,
    Dockerfile,
    Compose,
    Conda,
    Pixi,
    Pyproject,
    Requirements,
}

impl Format {
    fn of(file: &str) -> Option<Format> {
        let name = Path::new(file).file_name()?.to_str()?.to_ascii_lowercase();
        Some(match name.as_str() {
            "devcontainer.json" | ".devcontainer.json" => Format::Devcontainer,
            "compose.yaml" | "compose.yml" | "docker-compose.yaml" | "docker-compose.yml" => {
                Format::Compose
            }
            "environment.yml" | "environment.yaml" => Format::Conda,
            "pixi.toml" => Format::Pixi,
            "pyproject.toml" => Format::Pyproject,
            n if n == "dockerfile"
                || n.starts_with("dockerfile.")
                || n.ends_with(".dockerfile") =>
            {
                Format::Dockerfile
            }
            n if n.starts_with("requirements") && n.ends_with(".txt") => Format::Requirements,
            _ => return None,
        })
    }
}

const SUPPORTED: &str = "devcontainer.json, Dockerfile, compose.yaml#SERVICE, environment.yml, \
                         pixi.toml, pyproject.toml, requirements*.txt";

/// Reads the environment that `from` (a path relative to the workspace `dir`, with `#SERVICE`
/// for a compose file) describes, named `name`.
pub fn adopt(dir: &Path, from: &str, name: &str) -> Result<Adopted, ManifestError> {
    let (file, part) = match from.split_once('#') {
        Some((f, p)) => (f, Some(p)),
        None => (from, None),
    };
    let format = Format::of(file).ok_or_else(|| {
        ManifestError::whole_file(
            &dir.join(file),
            format!("aienv cannot adopt {file:?}: it reads {SUPPORTED}"),
        )
    })?;
    let src = source::Source::read(dir, file)?;
    if part.is_some() && format != Format::Compose {
        return Err(src.error_at(
            0,
            format!("`from = {from:?}`: only compose files take a `#SERVICE` part"),
        ));
    }
    let mut adopted = match format {
        Format::Devcontainer => devcontainer::adopt(&src, name),
        Format::Dockerfile => dockerfile::adopt(&src, name),
        Format::Compose => compose::adopt(&src, part, name),
        Format::Conda => conda::adopt(&src, name),
        Format::Pixi => python::pixi(&src, name),
        Format::Pyproject => python::pyproject(dir, &src, name),
        Format::Requirements => python::requirements(&src, name),
    }?;
    adopted.environment.from = Some(from.to_string());
    Ok(adopted)
}

/// Ports and tools: a published port becomes a tool with a link; nothing needs to listen on it
/// for the run to be up (the user may start the server later), so its readiness is optional.
fn port_tool(name: String, inside: u16) -> aienv_core::Tool {
    aienv_core::Tool {
        name,
        command: None,
        port: Some(inside),
        url: Some("http://{host}:{port}/".into()),
        ready: Some(aienv_core::Readiness {
            http: None,
            log: None,
            timeout_s: None,
            optional: true,
        }),
    }
}

/// A name usable as an environment name: lower case letters, digits and `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(64).collect();
    if out.is_empty() { "env".into() } else { out }
}

/// Quotes one word for `sh -c` when it needs quoting.
pub(crate) fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
