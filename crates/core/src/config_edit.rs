//! Changes to `DATA_DIR/config.toml` that keep the user's comments and layout (`toml_edit`).
//!
//! A change is checked before anything is touched, applied to the document, and the result is
//! parsed again with the same rules as at start-up; only then is the file replaced, atomically.
//! So a refused change leaves the file exactly as it was. The running node does not re-read the
//! file: changes take effect at its next start.

use std::path::Path;

use toml_edit::{Array, DocumentMut, Value};

use crate::config::{CONFIG_FILE, ConfigError, Settings};
use crate::manifest::edit::set_keeping_comment;

/// The longest API key accepted; real keys are 32 to 64 characters.
const MAX_API_KEY_LEN: usize = 256;

/// The settings a client may change; `None` leaves a setting as the file has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub name: Option<String>,
    pub discovery_interfaces: Option<Vec<String>>,
    /// A new key, or an empty string to remove the key from the file.
    pub api_key: Option<String>,
}

impl ConfigChange {
    pub fn is_empty(&self) -> bool {
        *self == ConfigChange::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    /// The change itself is not acceptable; the message says why and what would be.
    #[error("{0}")]
    Invalid(String),
    /// The file cannot be read, parsed (a hand edit broke it) or written.
    #[error(transparent)]
    File(#[from] ConfigError),
}

/// Applies `change` to `DATA_DIR/config.toml` (creating it if needed) and returns what the file
/// says afterwards.
pub fn apply(data_dir: &Path, change: &ConfigChange) -> Result<Settings, ConfigEditError> {
    check(change)?;
    let file = data_dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_error(&file, format!("cannot read it: {e}"))),
    };
    // The file as it is must be valid, or the edit would carry its problem forward unseen.
    Settings::parse(&text, &file).map_err(|e| {
        file_error(
            &file,
            format!("{}; fix the file by hand, then try again", e.message),
        )
    })?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| file_error(&file, format!("{e}")))?;
    edit(&mut doc, change);
    let new_text = doc.to_string();
    let settings = Settings::parse(&new_text, &file)?;
    crate::fsutil::atomic_write(&file, new_text.as_bytes()).map_err(|e| {
        file_error(
            &file,
            format!("cannot write it: {e}; check that the data dir is writable"),
        )
    })?;
    Ok(settings)
}

fn edit(doc: &mut DocumentMut, change: &ConfigChange) {
    let table = doc.as_table_mut();
    if let Some(name) = &change.name {
        set_keeping_comment(table, "name", name.as_str().into());
    }
    if let Some(interfaces) = &change.discovery_interfaces {
        let list: Array = interfaces.iter().map(String::as_str).collect();
        set_keeping_comment(table, "discovery_interfaces", Value::Array(list));
    }
    match change.api_key.as_deref() {
        Some("") => {
            table.remove("api_key");
        }
        Some(key) => set_keeping_comment(table, "api_key", key.into()),
        None => {}
    }
}

/// Refuses values the node could not use, before anything is written.
fn check(change: &ConfigChange) -> Result<(), ConfigEditError> {
    if let Some(name) = &change.name
        && let Some(problem) = crate::manifest::name_problem(name)
    {
        return Err(invalid(format!(
            "the node name {name:?} is not valid: {problem} (e.g. \"gpu-box\")"
        )));
    }
    for interface in change.discovery_interfaces.iter().flatten() {
        if interface.is_empty()
            || interface
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(format!(
                "the discovery interface {interface:?} is not valid: give an interface name \
                 (eth0) or one of this machine's addresses (192.168.1.5), without spaces"
            )));
        }
    }
    if let Some(key) = &change.api_key {
        // Browsers pass the key in a WebSocket URL (`?access_token=KEY`), which the node compares
        // without decoding: keep to characters that URLs never escape.
        let url_safe = key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
        if !url_safe || key.len() > MAX_API_KEY_LEN {
            return Err(invalid(format!(
                "the API key is not valid: use at most {MAX_API_KEY_LEN} letters, digits, '-', \
                 '_', '.' and '~' (an empty key removes it)"
            )));
        }
    }
    Ok(())
}

fn invalid(message: String) -> ConfigEditError {
    ConfigEditError::Invalid(message)
}

fn file_error(file: &Path, message: String) -> ConfigEditError {
    ConfigEditError::File(ConfigError {
        file: file.to_path_buf(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change_name(name: &str) -> ConfigChange {
        ConfigChange {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_change_keeps_comments_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &file,
            "# my node\nname = \"old\"   # shown to peers\nlisten = \"127.0.0.1:5000\"\napi_key = \"k\"\n",
        )
        .unwrap();
        let got = apply(
            dir.path(),
            &ConfigChange {
                name: Some("new-name".into()),
                discovery_interfaces: Some(vec!["eth0".into(), "192.168.1.5".into()]),
                api_key: Some(String::new()),
            },
        )
        .unwrap();
        assert_eq!(got.name.as_deref(), Some("new-name"));
        assert_eq!(got.api_key, None, "an empty key removes it");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# my node\n"), "{text}");
        assert!(
            text.contains("name = \"new-name\"   # shown to peers"),
            "{text}"
        );
        assert!(text.contains("listen = \"127.0.0.1:5000\""), "{text}");
        assert!(
            text.contains("discovery_interfaces = [\"eth0\", \"192.168.1.5\"]"),
            "{text}"
        );
        assert!(!text.contains("api_key"), "{text}");
    }

    #[test]
    fn a_missing_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        apply(dir.path(), &change_name("box")).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert_eq!(text.trim(), "name = \"box\"");
    }

    #[test]
    fn bad_values_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CONFIG_FILE);
        std::fs::write(&file, "name = \"ok\"\n").unwrap();
        let bad = [
            change_name(""),
            change_name("-dash"),
            change_name("has space"),
            change_name(&"x".repeat(65)),
            ConfigChange {
                discovery_interfaces: Some(vec![String::new()]),
                ..Default::default()
            },
            ConfigChange {
                api_key: Some("a&b".into()),
                ..Default::default()
            },
        ];
        for change in bad {
            let err = apply(dir.path(), &change).unwrap_err();
            assert!(
                matches!(err, ConfigEditError::Invalid(_)),
                "{change:?}: {err}"
            );
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "name = \"ok\"\n");
        }
    }

    #[test]
    fn a_broken_file_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CONFIG_FILE);
        std::fs::write(&file, "nmae = \"typo\"\n").unwrap();
        let err = apply(dir.path(), &change_name("box")).unwrap_err();
        assert!(matches!(err, ConfigEditError::File(_)));
        assert!(err.to_string().contains("nmae"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "nmae = \"typo\"\n");
    }
}
