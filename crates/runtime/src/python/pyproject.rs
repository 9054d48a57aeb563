//! A `pyproject.toml`'s dependencies as a requirements list, for pip (uv reads the file itself).
//!
//! `[project].dependencies` plus `[project.optional-dependencies]` of each wanted extra. An extra
//! that names the project itself (`all = ["mypkg[gpu,dev]"]`, a common way to group extras) is
//! expanded to those extras' dependencies, since pip would otherwise fetch the project from PyPI.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    project: Option<Project>,
}

/// The `[project]` table, as far as installing its dependencies goes.
#[derive(Debug, Default, Deserialize)]
pub struct Project {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dependencies: Option<Vec<String>>,
    #[serde(default, rename = "optional-dependencies")]
    pub optional: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub dynamic: Vec<String>,
}

/// Reads a pyproject's `[project]` table; the error is a sentence for the user.
pub fn read(path: &Path) -> Result<Project, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "the Python requirements file {} cannot be read ({e}); fix `python` in aienv.toml",
            path.display()
        )
    })?;
    parse(&text).map_err(|e| format!("{} is not a valid pyproject.toml: {e}", path.display()))
}

/// Whether the pyproject at `path` builds a package (it has a `[build-system]`), which an
/// environment then installs itself; an application's pyproject only lists dependencies.
pub fn is_package(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .is_some_and(|t| t.contains_key("build-system"))
}

pub fn parse(text: &str) -> Result<Project, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
    Ok(file.project.unwrap_or_default())
}

impl Project {
    /// The requirements to install for `extras`, in order, without repeats.
    pub fn requirements(&self, extras: &[String]) -> Result<Vec<String>, String> {
        if self.dependencies.is_none() && self.dynamic.iter().any(|d| d == "dependencies") {
            return Err(
                "its pyproject.toml computes its dependencies at build time (`dynamic`), which \
                 pip cannot read without building the project; install uv \
                 (https://docs.astral.sh/uv/) and start it again"
                    .into(),
            );
        }
        let mut out = Vec::new();
        self.add(self.dependencies.iter().flatten(), &mut out);
        for extra in extras {
            self.add(self.extra(extra)?, &mut out);
        }
        Ok(out)
    }

    fn extra(&self, name: &str) -> Result<&Vec<String>, String> {
        self.optional
            .iter()
            .find(|(k, _)| normalise(k) == normalise(name))
            .map(|(_, v)| v)
            .ok_or_else(|| {
                let known: Vec<&str> = self.optional.keys().map(String::as_str).collect();
                format!(
                    "its pyproject.toml has no extra {name:?} (it has: {}); fix `extras` in \
                     aienv.toml",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )
            })
    }

    /// Adds requirements, expanding the project's references to its own extras. An extra that
    /// refers back to one being expanded adds nothing twice: `out` already has its lines.
    fn add<'a>(&'a self, reqs: impl IntoIterator<Item = &'a String>, out: &mut Vec<String>) {
        for req in reqs {
            if out.contains(req) {
                continue;
            }
            match self.own_extras(req) {
                Some(extras) => {
                    out.push(req.clone());
                    for e in extras {
                        if let Ok(more) = self.extra(&e) {
                            self.add(more, out);
                        }
                    }
                    // The marker line was only there to stop a cycle.
                    out.retain(|r| r != req);
                }
                None => out.push(req.clone()),
            }
        }
    }

    /// `mypkg[a, b]` when this project is `mypkg`: `["a", "b"]`.
    fn own_extras(&self, req: &str) -> Option<Vec<String>> {
        let name = self.name.as_deref()?;
        let end = req
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .unwrap_or(req.len());
        if normalise(&req[..end]) != normalise(name) {
            return None;
        }
        let rest = req[end..].trim_start();
        let inner = rest.strip_prefix('[')?.split(']').next()?;
        Some(inner.split(',').map(|e| e.trim().to_string()).collect())
    }
}

/// Names as pip compares them (PEP 503/685): case-insensitive, runs of `-_.` alike.
fn normalise(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if "-_.".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = r#"
[project]
name = "My_Trainer"
dependencies = ["numpy>=1.26", "requests"]

[project.optional-dependencies]
gpu = ["torch==2.3.*", "numpy>=1.26"]
Dev-Tools = ["pytest", "ruff"]
all = ["my-trainer[gpu,dev-tools]", "rich"]

[tool.other]
ignored = true
"#;

    fn extras(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_then_each_extra_without_repeats() {
        let p = parse(PYPROJECT).unwrap();
        assert_eq!(p.requirements(&[]).unwrap(), ["numpy>=1.26", "requests"]);
        assert_eq!(
            p.requirements(&extras(&["gpu", "dev_tools"])).unwrap(),
            ["numpy>=1.26", "requests", "torch==2.3.*", "pytest", "ruff"]
        );
    }

    #[test]
    fn an_extra_naming_the_project_expands_to_its_extras() {
        let p = parse(PYPROJECT).unwrap();
        assert_eq!(
            p.requirements(&extras(&["all"])).unwrap(),
            [
                "numpy>=1.26",
                "requests",
                "torch==2.3.*",
                "pytest",
                "ruff",
                "rich"
            ]
        );
    }

    #[test]
    fn an_unknown_extra_names_the_known_ones() {
        let p = parse(PYPROJECT).unwrap();
        let e = p.requirements(&extras(&["cuda"])).unwrap_err();
        assert_eq!(
            e,
            "its pyproject.toml has no extra \"cuda\" (it has: Dev-Tools, all, gpu); fix \
             `extras` in aienv.toml"
        );
        let bare = parse("[project]\nname = \"x\"\n").unwrap();
        assert!(bare.requirements(&[]).unwrap().is_empty());
        assert!(
            bare.requirements(&extras(&["gpu"]))
                .unwrap_err()
                .contains("(it has: none)")
        );
    }

    #[test]
    fn dynamic_dependencies_ask_for_uv() {
        let p = parse("[project]\nname = \"x\"\ndynamic = [\"dependencies\"]\n").unwrap();
        assert!(p.requirements(&[]).unwrap_err().contains("install uv"));
    }
}
