//! `aienv.toml`: parsing, validation with precise positions, edits that keep comments, and the
//! starter manifest.
//!
//! Parsing goes through [`raw`] (serde types that remember where each value sits in the text) and
//! [`validate`] (the rules serde cannot express), and yields a [`Manifest`]. Every error names the
//! file, line and column. Edits ([`edit`]) change the document with `toml_edit`, so the user's
//! comments and layout survive, and are parsed again before they are written: an edit can never
//! leave an invalid manifest on disk.

pub mod edit;
mod error;
mod raw;
mod starter;
mod validate;

use std::path::Path;

pub use edit::ManifestDoc;
pub use error::ManifestError;
pub use starter::starter_manifest;
// The node's name in `config.toml` follows the same rules as names in a manifest.
pub(crate) use validate::name_problem;

use crate::model::Manifest;

/// The manifest's file name at the root of every workspace.
pub const MANIFEST_FILE: &str = "aienv.toml";

/// Manifests larger than this are refused before parsing: a real one is a few kilobytes.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Parses and validates manifest text; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::whole_file(
            file,
            format!(
                "the manifest is {} bytes; the limit is {} (is this really an aienv.toml?)",
                text.len(),
                MAX_MANIFEST_BYTES
            ),
        ));
    }
    let raw: raw::RawManifest =
        toml::from_str(text).map_err(|e| ManifestError::from_toml(file, text, &e))?;
    validate::validate(raw, text, file)
}

/// Reads and parses `DIR/aienv.toml`.
pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
    let file = dir.join(MANIFEST_FILE);
    let text = read_text(&file)?;
    parse(&text, &file)
}

/// Reads a manifest file, turning I/O failures into a [`ManifestError`] that says what to do.
pub fn read_text(file: &Path) -> Result<String, ManifestError> {
    match std::fs::read(file) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
            ManifestError::whole_file(file, format!("the manifest is not UTF-8 text ({e})"))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ManifestError::whole_file(
            file,
            "there is no aienv.toml here (create one with `aienv workspace create`)".to_string(),
        )),
        Err(e) => Err(ManifestError::whole_file(
            file,
            format!("cannot read the manifest: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests;

/// The manifest text a peer receives in a clone: not shared (a clone is shared only when its new
/// owner says so), and, when only some environments are shared (`[sharing] environments`),
/// without the other environments and the projects only they use. Comments and layout of the
/// rest stay.
pub fn shared_view(text: &str, file: &Path, m: &Manifest) -> Result<String, ManifestError> {
    let only = &m.sharing.environments;
    let used: std::collections::BTreeSet<&str> = m
        .shared_environments()
        .flat_map(|e| e.projects.iter().map(String::as_str))
        .collect();
    let mut doc = ManifestDoc::parse(text, file)?;
    if !only.is_empty() {
        for e in m.environments.iter().filter(|e| !only.contains(&e.name)) {
            doc.remove_environment(&e.name)
                .expect("the environment is in the manifest");
        }
        for p in m
            .projects
            .iter()
            .filter(|p| !used.contains(p.name.as_str()))
        {
            doc.remove_project(&p.name)
                .expect("the project is in the manifest");
        }
    }
    doc.set_sharing(&crate::model::Sharing {
        enabled: false,
        environments: Vec::new(),
        ..m.sharing.clone()
    });
    let view = doc.render();
    // What a peer gets must be a valid manifest in its own right.
    parse(&view, file)?;
    Ok(view)
}
