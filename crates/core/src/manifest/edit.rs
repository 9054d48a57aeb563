//! Edits of a manifest that keep the user's comments and layout (`toml_edit`).
//!
//! An edit never writes anything by itself: the caller renders the document, and
//! [`ManifestDoc::validated`] parses the result again with the same rules as a hand edit, so
//! an edit can never produce a manifest that a hand edit could not.

use std::path::{Path, PathBuf};

use serde::Serialize;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value};

use super::ManifestError;
use crate::model::{Environment, Manifest, Project, Sharing};

/// A manifest document being edited.
#[derive(Debug, Clone)]
pub struct ManifestDoc {
    file: PathBuf,
    doc: DocumentMut,
}

/// Why an edit could not be applied (before any validation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("there is no {what} named {name:?} in this workspace")]
    NotFound { what: &'static str, name: String },
    #[error("this workspace already has a {what} named {name:?}")]
    Exists { what: &'static str, name: String },
}

impl ManifestDoc {
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            ManifestError::at(file, text, at, e.message().trim_end().to_string())
        })?;
        Ok(ManifestDoc {
            file: file.to_path_buf(),
            doc,
        })
    }

    /// The document as text, ready to be written.
    pub fn render(&self) -> String {
        self.doc.to_string()
    }

    /// Parses the edited text with the manifest rules.
    pub fn validated(&self) -> Result<Manifest, ManifestError> {
        super::parse(&self.render(), &self.file)
    }

    pub fn set_name(&mut self, name: &str) {
        let ws = self.doc["workspace"].or_insert(toml_edit::table());
        if let Some(t) = ws.as_table_like_mut() {
            set_keeping_comment(t, "name", name.into());
        }
    }

    pub fn set_description(&mut self, description: Option<&str>) {
        let ws = self.doc["workspace"].or_insert(toml_edit::table());
        match description {
            Some(d) => {
                if let Some(t) = ws.as_table_like_mut() {
                    set_keeping_comment(t, "description", d.into());
                }
            }
            None => {
                if let Some(t) = ws.as_table_like_mut() {
                    t.remove("description");
                }
            }
        }
    }

    pub fn set_sharing(&mut self, sharing: &Sharing) {
        let table = self.doc["sharing"].or_insert(toml_edit::table());
        let Some(table) = table.as_table_like_mut() else {
            return;
        };
        set_keeping_comment(table, "enabled", sharing.enabled.into());
        set_keeping_comment(table, "access", serde_plain(&sharing.access).into());
        if sharing.python_envs != crate::model::PythonEnvs::default() {
            set_keeping_comment(
                table,
                "python_envs",
                serde_plain(&sharing.python_envs).into(),
            );
        } else {
            table.remove("python_envs");
        }
        for (key, list) in [
            ("exclude", &sharing.exclude),
            ("include", &sharing.include),
            ("environments", &sharing.environments),
        ] {
            // An empty list the user wrote (with its comment) stays; we do not add empty ones.
            if key == "environments" && list.is_empty() {
                // No list means the whole workspace: an empty one would read as "nothing".
                table.remove(key);
            } else if !list.is_empty() || table.contains_key(key) {
                set_keeping_comment(table, key, list.iter().collect::<toml_edit::Array>().into());
            }
        }
    }

    pub fn add_project(&mut self, project: &Project) -> Result<(), EditError> {
        if self.project_index(&project.name).is_some() {
            return Err(EditError::Exists {
                what: "project",
                name: project.name.clone(),
            });
        }
        match self.doc["project"].or_insert(Item::ArrayOfTables(ArrayOfTables::new())) {
            Item::ArrayOfTables(array) => array.push(to_table(project)),
            Item::Value(Value::Array(array)) => {
                array.push(Value::InlineTable(to_table(project).into_inline_table()));
            }
            _ => {}
        }
        Ok(())
    }

    pub fn replace_project(&mut self, name: &str, project: &Project) -> Result<(), EditError> {
        let i = self
            .project_index(name)
            .ok_or_else(|| not_found("project", name))?;
        if project.name != name && self.project_index(&project.name).is_some() {
            return Err(EditError::Exists {
                what: "project",
                name: project.name.clone(),
            });
        }
        match self.doc.get_mut("project") {
            Some(Item::ArrayOfTables(array)) => {
                if let Some(table) = array.get_mut(i) {
                    // Keep the comment above the table; replace its keys.
                    let decor = table.decor().clone();
                    *table = to_table(project);
                    *table.decor_mut() = decor;
                }
            }
            Some(Item::Value(Value::Array(array))) => {
                if let Some(value) = array.get_mut(i) {
                    let decor = value.decor().clone();
                    *value = Value::InlineTable(to_table(project).into_inline_table());
                    *value.decor_mut() = decor;
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn remove_project(&mut self, name: &str) -> Result<(), EditError> {
        let i = self
            .project_index(name)
            .ok_or_else(|| not_found("project", name))?;
        let empty = match self.doc.get_mut("project") {
            Some(Item::ArrayOfTables(array)) => {
                array.remove(i);
                array.is_empty()
            }
            Some(Item::Value(Value::Array(array))) => {
                array.remove(i);
                array.is_empty()
            }
            _ => false,
        };
        if empty {
            self.doc.remove("project");
        }
        Ok(())
    }

    pub fn add_environment(&mut self, env: &Environment) -> Result<(), EditError> {
        if self
            .environments()
            .is_some_and(|t| t.contains_key(&env.name))
        {
            return Err(EditError::Exists {
                what: "environment",
                name: env.name.clone(),
            });
        }
        self.insert_environment(env);
        Ok(())
    }

    pub fn replace_environment(&mut self, name: &str, env: &Environment) -> Result<(), EditError> {
        let Some(envs) = self.environments_mut().filter(|t| t.contains_key(name)) else {
            return Err(not_found("environment", name));
        };
        if env.name != name && envs.contains_key(&env.name) {
            return Err(EditError::Exists {
                what: "environment",
                name: env.name.clone(),
            });
        }
        let decor = envs
            .get(name)
            .and_then(Item::as_table)
            .map(|t| t.decor().clone());
        envs.remove(name);
        self.insert_environment(env);
        if let Some(decor) = decor
            && let Some(t) = self
                .environments_mut()
                .and_then(|e| e.get_mut(&env.name))
                .and_then(Item::as_table_mut)
        {
            *t.decor_mut() = decor;
        }
        Ok(())
    }

    pub fn remove_environment(&mut self, name: &str) -> Result<(), EditError> {
        let Some(envs) = self.environments_mut().filter(|t| t.contains_key(name)) else {
            return Err(not_found("environment", name));
        };
        envs.remove(name);
        if envs.is_empty() {
            self.doc.remove("environment");
        }
        Ok(())
    }

    /// The project's index in `[[project]]` tables, or in `project = [{ ... }]` written inline
    /// (a hand edit may use either form).
    fn project_index(&self, name: &str) -> Option<usize> {
        let named = |t: &dyn TableLike| t.get("name").and_then(Item::as_str) == Some(name);
        match self.doc.get("project")? {
            Item::ArrayOfTables(array) => array.iter().position(|t| named(t)),
            Item::Value(Value::Array(array)) => array
                .iter()
                .position(|v| v.as_inline_table().is_some_and(|t| named(t))),
            _ => None,
        }
    }

    /// `[environment.NAME]` tables, or `environment = { NAME = { ... } }` written inline.
    fn environments(&self) -> Option<&dyn TableLike> {
        self.doc.get("environment")?.as_table_like()
    }

    fn environments_mut(&mut self) -> Option<&mut dyn TableLike> {
        self.doc.get_mut("environment")?.as_table_like_mut()
    }

    fn insert_environment(&mut self, env: &Environment) {
        let mut table = to_table(env);
        table.remove("name");
        // JSON says `tools`; the manifest has one `[[environment.NAME.tool]]` table per tool.
        if let Some(tools) = table.remove("tools") {
            table.insert("tool", Item::ArrayOfTables(array_of_tables(tools)));
        }
        let envs = self.doc["environment"].or_insert({
            let mut t = Table::new();
            // `[environment]` itself has no keys: only its `[environment.NAME]` children show.
            t.set_implicit(true);
            Item::Table(t)
        });
        // (An inline `environment = { ... }` gets the new one inline too.)
        if let Some(envs) = envs.as_table_like_mut() {
            envs.insert(&env.name, Item::Table(table));
        }
    }
}

/// Sets `key` to `value`, keeping the spacing and the end-of-line comment of the old value, and
/// the comment lines above the key. `config.toml` edits use it too.
pub(crate) fn set_keeping_comment(
    table: &mut dyn toml_edit::TableLike,
    key: &str,
    mut value: Value,
) {
    match table.get_mut(key) {
        // Replace the item in place: `insert` would reset the key's decor, which holds the
        // comment lines above it.
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            value.decor_mut().set_prefix(" ");
            table.insert(key, Item::Value(value));
        }
    }
}

fn not_found(what: &'static str, name: &str) -> EditError {
    EditError::NotFound {
        what,
        name: name.to_string(),
    }
}

/// A model value as a TOML table, with nested structs as inline tables (`git = { ... }`), the way
/// people write small tables in a manifest.
fn to_table<T: Serialize>(value: &T) -> Table {
    // The model types serialise to a TOML table by construction; an error here is a bug.
    let doc = toml_edit::ser::to_document(value).expect("model types serialise to TOML");
    let mut table = doc.as_table().clone();
    for (_, item) in table.iter_mut() {
        if let Item::Table(t) = item {
            *item = Item::Value(Value::InlineTable(t.clone().into_inline_table()));
        }
    }
    table.set_implicit(false);
    table.decor_mut().clear();
    table
}

fn array_of_tables(item: Item) -> ArrayOfTables {
    let mut out = ArrayOfTables::new();
    let values: Vec<Value> = match item {
        Item::Value(Value::Array(a)) => a.into_iter().collect(),
        Item::ArrayOfTables(a) => return a,
        _ => Vec::new(),
    };
    for v in values {
        if let Value::InlineTable(t) = v {
            let mut table = t.into_table();
            for (_, item) in table.iter_mut() {
                if let Item::Table(t) = item {
                    *item = Item::Value(Value::InlineTable(t.clone().into_inline_table()));
                }
            }
            out.push(table);
        }
    }
    out
}

/// The serde name of a unit enum variant (`Access::Token` -> "token").
pub fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
