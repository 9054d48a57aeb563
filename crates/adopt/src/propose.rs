//! Looking at a folder and proposing environments from what is there, before anything is
//! written. The order says which file wins when several describe the same thing: a dev
//! container over a bare Dockerfile it builds, a conda or pixi file over the requirements it
//! may list, a pyproject over requirements files.

use std::collections::BTreeSet;
use std::path::Path;

use aienv_core::{EnvKind, Environment, ManifestError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Adopted, adopt, compose, slug, source::Source};

/// What `aienv workspace add` proposes for a folder without an `aienv.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Proposal {
    /// The workspace's name (the folder's).
    pub name: String,
    pub environments: Vec<Adopted>,
    /// Files that looked adoptable but could not be read, with why.
    pub problems: Vec<ManifestError>,
    /// Notes about the folder as a whole.
    pub notes: Vec<String>,
}

/// Proposes environments for the folder `dir`.
pub fn propose(dir: &Path) -> Proposal {
    // The folder's name, made a valid workspace name (`.venv-lab` -> `venv-lab`).
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = folder
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    let name = if name.is_empty() {
        "workspace".to_string()
    } else {
        name
    };
    let mut p = Proposal {
        name,
        environments: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let mut taken = BTreeSet::new();
    let mut add = |p: &mut Proposal, from: String, name: String| {
        let mut unique = name.clone();
        let mut n = 2;
        while !taken.insert(unique.clone()) {
            unique = format!("{name}-{n}");
            n += 1;
        }
        match adopt(dir, &from, &unique) {
            Ok(a) => p.environments.push(a),
            Err(e) => p.problems.push(e),
        }
    };

    for file in devcontainers(dir) {
        let name = match Path::new(&file).parent().and_then(Path::file_name) {
            Some(f) if f != ".devcontainer" => slug(&f.to_string_lossy()),
            _ => "devcontainer".into(),
        };
        add(&mut p, file, name);
    }
    let built: BTreeSet<String> = p
        .environments
        .iter()
        .filter_map(|a| a.environment.build.as_ref().map(|b| b.dockerfile.clone()))
        .collect();
    if let Some(df) = first(dir, &["Dockerfile"])
        && !built.contains(&df)
    {
        add(&mut p, df, "docker".into());
    }
    if let Some(c) = first(
        dir,
        &[
            "compose.yaml",
            "compose.yml",
            "docker-compose.yaml",
            "docker-compose.yml",
        ],
    ) {
        match Source::read(dir, &c).and_then(|s| compose::services(&s)) {
            Ok(services) => {
                let one = services.len() == 1;
                for s in services {
                    let from = if one { c.clone() } else { format!("{c}#{s}") };
                    add(&mut p, from, slug(&s));
                }
            }
            Err(e) => p.problems.push(e),
        }
    }
    let mut python = false;
    if let Some(f) = first(dir, &["environment.yml", "environment.yaml"]) {
        add(&mut p, f, "conda".into());
        python = true;
    }
    if let Some(f) = first(dir, &["pixi.toml"]) {
        add(&mut p, f, "pixi".into());
        python = true;
    }
    if !python && let Some(f) = first(dir, &["pyproject.toml"]) {
        let before = p.environments.len();
        add(&mut p, f, "python".into());
        python = p.environments.len() > before;
    }
    let reqs = requirements_files(dir);
    if !python && let Some(f) = reqs.first() {
        add(&mut p, f.clone(), "python".into());
        if reqs.len() > 1 {
            p.notes.push(format!(
                "other requirements files: {}; point `python.requirements` at one to use it instead",
                reqs[1..].join(", ")
            ));
        }
    }
    if notebooks(dir) {
        let py = p
            .environments
            .iter_mut()
            .find(|a| a.environment.kind == EnvKind::Process);
        match py {
            Some(a) if a.environment.tools.iter().any(|t| t.name == "JupyterLab") => {}
            Some(a) => {
                a.environment.tools.push(crate::python::jupyterlab());
                a.notes.push(
                    "the folder has notebooks: a JupyterLab tool is added; jupyterlab must be among the dependencies"
                        .into(),
                );
            }
            None => {
                let mut env = Environment::new("notebooks", EnvKind::Process);
                env.tools.push(crate::python::jupyterlab());
                p.environments.push(Adopted {
                    environment: env,
                    unsupported: Vec::new(),
                    notes: vec![
                        "the folder has notebooks but no Python dependencies: JupyterLab must be installed on the machine (or add a requirements.txt with jupyterlab)".into(),
                    ],
                    files: Vec::new(),
                });
            }
        }
    }
    if p.environments.is_empty() && p.problems.is_empty() {
        p.notes.push(
            "nothing to adopt here (no devcontainer.json, Dockerfile, compose file, environment.yml, pixi.toml, pyproject.toml, requirements*.txt or notebooks); the workspace starts without environments".into(),
        );
    }
    p
}

fn first(dir: &Path, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find(|n| dir.join(n).is_file())
        .map(|n| n.to_string())
}

/// `.devcontainer/devcontainer.json`, `.devcontainer.json`, `.devcontainer/NAME/devcontainer.json`.
fn devcontainers(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = [".devcontainer/devcontainer.json", ".devcontainer.json"]
        .iter()
        .filter(|f| dir.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join(".devcontainer")) {
        let mut more: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("devcontainer.json").is_file())
            .map(|e| {
                format!(
                    ".devcontainer/{}/devcontainer.json",
                    e.file_name().to_string_lossy()
                )
            })
            .collect();
        more.sort();
        found.extend(more);
    }
    found
}

/// `requirements.txt` first, then `requirements-*.txt` / `requirements_*.txt` by name.
fn requirements_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("requirements") && n.ends_with(".txt"))
        .collect();
    files.sort_by_key(|n| (n != "requirements.txt", n.clone()));
    files
}

/// Whether there are notebooks at the top or one folder down (hidden folders skipped).
fn notebooks(dir: &Path) -> bool {
    let is_nb = |p: &Path| p.extension().is_some_and(|e| e == "ipynb");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if hidden {
            return false;
        }
        is_nb(&path)
            || (path.is_dir()
                && std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|f| is_nb(&f.path())))
    })
}
