//! One file being adopted: its text, and the parsed shapes the formats come in (JSON with
//! comments, YAML, TOML), all read into `serde_json::Value` so every format is walked the same
//! way. Parse errors carry the file's line and column; errors found later name the key and point
//! at the line where the key first appears.

use std::path::{Component, Path, PathBuf};

use aienv_core::ManifestError;
use aienv_core::manifest::MAX_MANIFEST_BYTES;
use serde_json::Value;

/// A source file of the workspace.
#[derive(Debug)]
pub(crate) struct Source {
    /// Relative to the workspace, with `/` separators.
    pub rel: String,
    pub file: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(dir: &Path, rel: &str) -> Result<Source, ManifestError> {
        let file = dir.join(rel);
        let whole = |m: String| ManifestError::whole_file(&file, m);
        let meta = std::fs::metadata(&file).map_err(|e| {
            whole(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{rel} is gone; restore it, or remove `from = {rel:?}` from aienv.toml")
            } else {
                format!("cannot read {rel}: {e}")
            })
        })?;
        if meta.len() > MAX_MANIFEST_BYTES as u64 {
            return Err(whole(format!(
                "{rel} is {} bytes; files over {MAX_MANIFEST_BYTES} bytes are not adopted",
                meta.len()
            )));
        }
        let bytes = std::fs::read(&file).map_err(|e| whole(format!("cannot read {rel}: {e}")))?;
        let text =
            String::from_utf8(bytes).map_err(|_| whole(format!("{rel} is not UTF-8 text")))?;
        Ok(Source {
            rel: rel.to_string(),
            file,
            text,
        })
    }

    /// The folder the file is in, relative to the workspace ("" at the root).
    pub fn folder(&self) -> String {
        Path::new(&self.rel)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn error_at(&self, at: usize, message: String) -> ManifestError {
        ManifestError::at(&self.file, &self.text, at, message)
    }

    /// An error about `key`, placed where the key is first written in the file.
    pub fn key_error(&self, key: &str, message: String) -> ManifestError {
        let at = [format!("\"{key}\""), format!("{key}:"), format!("{key} =")]
            .iter()
            .filter_map(|k| self.text.find(k.as_str()))
            .min()
            .unwrap_or(0);
        self.error_at(at, format!("{}: {message}", self.rel))
    }

    /// JSON with comments and trailing commas (devcontainer.json is JSONC).
    pub fn jsonc(&self) -> Result<Value, ManifestError> {
        let v: Value = jsonc_parser::parse_to_serde_value(&self.text, &Default::default())
            .map_err(|e| {
                self.error_at(
                    e.range().start,
                    format!("{} is not valid JSON: {}", self.rel, e.kind()),
                )
            })?;
        Ok(v)
    }

    pub fn yaml(&self) -> Result<Value, ManifestError> {
        let docs =
            yaml_rust2::YamlLoader::load_from_str(&self.text).map_err(|e| ManifestError {
                file: self.file.clone(),
                line: e.marker().line().max(1),
                column: e.marker().col() + 1,
                message: format!("{} is not valid YAML: {}", self.rel, e.info()),
            })?;
        Ok(docs
            .into_iter()
            .next()
            .map(yaml_to_json)
            .unwrap_or(Value::Null))
    }

    pub fn toml(&self) -> Result<Value, ManifestError> {
        let v: toml::Value = toml::from_str(&self.text).map_err(|e| {
            self.error_at(
                e.span().map_or(0, |s| s.start),
                format!("{} is not valid TOML: {}", self.rel, e.message().trim_end()),
            )
        })?;
        serde_json::to_value(v).map_err(|e| self.error_at(0, e.to_string()))
    }

    /// A path the file gives relative to its own folder, made relative to the workspace.
    /// Refused when it leads out of the workspace.
    pub fn beside(&self, key: &str, path: &str) -> Result<String, ManifestError> {
        let joined = Path::new(&self.folder()).join(path);
        normalise(&joined).ok_or_else(|| {
            self.key_error(
                key,
                format!("{path:?} leads outside the workspace; aienv shares and builds only what is inside it"),
            )
        })
    }
}

/// `a/./b/../c` -> `a/c`; `None` when it climbs above the start or is absolute.
pub(crate) fn normalise(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn yaml_to_json(y: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(s), Value::Number),
        Yaml::Integer(i) => Value::from(i),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(a) => Value::Array(a.into_iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s,
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Real(r) => r,
                        Yaml::Boolean(b) => b.to_string(),
                        _ => String::new(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;
    use std::path::Path;

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert_eq!(
            normalise(Path::new(".devcontainer/../Dockerfile")).as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(
            normalise(Path::new(".devcontainer/.")).as_deref(),
            Some(".devcontainer")
        );
        assert_eq!(normalise(Path::new("./..")), None);
        assert_eq!(normalise(Path::new("/etc/passwd")), None);
    }
}
