//! Registering, listing, editing and forgetting workspaces.

use std::path::{Path, PathBuf};

use aienv_core::event::ChangeCause;
use aienv_core::manifest::{self, MANIFEST_FILE, ManifestDoc};
use aienv_core::registry::{self, RegistryEntry};
use aienv_core::{Event, ManifestError, Sharing, Workspace, WorkspaceSummary, fsutil};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{NodeError, Result};
use crate::{Node, lock, read};

/// A request to create a new workspace (a starter manifest is written) or to register a folder
/// that already has one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Absolute path of the workspace folder.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// `true`: create the folder if needed and write a starter `aienv.toml` (refused if one
    /// exists). `false` (default): register a folder that has a valid `aienv.toml`.
    #[serde(default)]
    pub create: bool,
    /// Name for a new workspace; defaults to the folder name.
    pub name: Option<String>,
    pub description: Option<String>,
    /// With `create`: the manifest to write instead of the starter, e.g. an accepted (and maybe
    /// edited) proposal from `POST /workspaces/proposal`. Refused, and nothing written, when
    /// it is invalid.
    #[serde(default)]
    pub manifest: Option<String>,
}

/// A change of a workspace's own settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    pub name: Option<String>,
    /// An empty string removes the description.
    pub description: Option<String>,
    pub sharing: Option<Sharing>,
}

impl Node {
    /// Summaries of every registered workspace, by name.
    pub fn workspaces(&self) -> Vec<WorkspaceSummary> {
        self.workspaces_at_revision().1
    }

    /// [`Node::workspaces`] with the [`Node::revision`] it belongs to.
    pub fn workspaces_at_revision(&self) -> (u64, Vec<WorkspaceSummary>) {
        let all = read(&self.inner.workspaces);
        let revision = self.revision();
        let mut list: Vec<_> = all.values().map(Workspace::summary).collect();
        drop(all);
        list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        (revision, list)
    }

    /// Every workspace in full (for share lists).
    pub(crate) fn all_workspaces(&self) -> Vec<Workspace> {
        read(&self.inner.workspaces).values().cloned().collect()
    }

    /// A workspace by id, or by name when the name is unique.
    pub fn workspace(&self, key: &str) -> Result<Workspace> {
        let all = read(&self.inner.workspaces);
        if let Some(ws) = all.get(key) {
            return Ok(ws.clone());
        }
        let named: Vec<_> = all.values().filter(|w| w.name == key).collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NodeError::NotFound(format!(
                "no workspace {key:?} is registered on this node (see `aienv workspace list`)"
            ))),
            many => Err(NodeError::Ambiguous(format!(
                "{} workspaces are named {key:?}; use an id instead: {}",
                many.len(),
                many.iter()
                    .map(|w| format!("{} ({})", w.id, w.path.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn create_workspace(&self, req: NewWorkspace) -> Result<Workspace> {
        let path = absolute(&req.path)?;
        let _w = self.write_guard();
        if req.create {
            let file = path.join(MANIFEST_FILE);
            if file.exists() {
                return Err(NodeError::Exists(format!(
                    "{} already has an aienv.toml; register it with `aienv workspace add {}`",
                    path.display(),
                    path.display()
                )));
            }
            self.refuse_registered(&path)?;
            let text = match req.manifest {
                Some(text) => {
                    if req.name.is_some() || req.description.is_some() {
                        return Err(NodeError::InvalidRequest(
                            "give either a manifest or a name and description, not both".into(),
                        ));
                    }
                    crate::adopted::parse(&text, &path)?;
                    text
                }
                None => {
                    let name = match req.name {
                        Some(n) => n,
                        None => folder_name(&path)?,
                    };
                    let text = manifest::starter_manifest(&name, req.description.as_deref());
                    // Check before touching the disk: a bad name must not leave a folder behind.
                    manifest::parse(&text, &file).map_err(|e| {
                        NodeError::InvalidRequest(format!(
                            "cannot create a workspace there: {}; give it a name",
                            e.message
                        ))
                    })?;
                    text
                }
            };
            std::fs::create_dir_all(&path).map_err(|e| {
                NodeError::io(format!("cannot create the folder {}", path.display()), e)
            })?;
            fsutil::atomic_write(&file, text.as_bytes())
                .map_err(|e| NodeError::io(format!("cannot write {}", file.display()), e))?;
        } else if req.name.is_some() || req.description.is_some() || req.manifest.is_some() {
            return Err(NodeError::InvalidRequest(
                "name, description and manifest apply only when creating a workspace (`create`); \
                 to change them in an existing one, edit it after adding"
                    .into(),
            ));
        }
        if !path.is_dir() {
            return Err(NodeError::NotFound(format!(
                "{} is not a folder; create a workspace there with `aienv workspace create`",
                path.display()
            )));
        }
        let path = canonical(&path)?;
        self.refuse_registered(&path)?;
        if !path.join(MANIFEST_FILE).exists() {
            return Err(NodeError::NotFound(format!(
                "{} has no aienv.toml; `aienv workspace add` proposes environments from the files \
                 there (POST /api/v1/workspaces/proposal), or `aienv workspace create` starts an \
                 empty one",
                path.display()
            )));
        }
        let manifest = crate::adopted::load(&path)?;
        let ws = Workspace {
            id: new_id(),
            name: manifest.workspace.name.clone(),
            path,
            manifest: Some(manifest),
            problem: None,
        };
        self.mutate().insert(ws.id.clone(), ws.clone());
        if let Err(e) = self.save_registry() {
            self.mutate().remove(&ws.id);
            return Err(e);
        }
        self.watch(&ws.path);
        self.follow_sources(&ws);
        self.emit(Event::WorkspaceAdded {
            workspace: ws.clone(),
        });
        Ok(ws)
    }

    /// Forgets a workspace. Its folder and files are left exactly as they are.
    pub fn remove_workspace(&self, key: &str) -> Result<Workspace> {
        let _w = self.write_guard();
        let ws = self.workspace(key)?;
        self.mutate().remove(&ws.id);
        if let Err(e) = self.save_registry() {
            self.mutate().insert(ws.id.clone(), ws);
            return Err(e);
        }
        if let Some(w) = lock(&self.inner.watcher).as_mut() {
            w.unwatch(&ws.path);
        }
        self.forget_share_index(&ws.id);
        self.emit(Event::WorkspaceRemoved {
            id: ws.id.clone(),
            name: ws.name.clone(),
        });
        Ok(ws)
    }

    pub fn update_workspace(&self, key: &str, patch: WorkspacePatch) -> Result<Workspace> {
        self.edit_manifest(key, |doc| {
            if let Some(name) = &patch.name {
                doc.set_name(name);
            }
            if let Some(d) = &patch.description {
                doc.set_description(Some(d.as_str()).filter(|d| !d.is_empty()));
            }
            if let Some(s) = &patch.sharing {
                doc.set_sharing(s);
            }
            Ok(())
        })
    }

    /// The manifest text as it is on disk now (which may be newer than, or differ from, the
    /// manifest in effect when the file has an error).
    pub fn manifest_text(&self, key: &str) -> Result<String> {
        let ws = self.workspace(key)?;
        Ok(manifest::read_text(&ws.path.join(MANIFEST_FILE))?)
    }

    /// Replaces the whole manifest text (the UI's editor). Invalid text is refused and nothing is
    /// written.
    pub fn replace_manifest(&self, key: &str, text: &str) -> Result<Workspace> {
        let _w = self.write_guard();
        let ws = self.workspace(key)?;
        let file = ws.path.join(MANIFEST_FILE);
        let manifest = crate::adopted::parse(text, &ws.path)?;
        fsutil::atomic_write(&file, text.as_bytes())
            .map_err(|e| NodeError::io(format!("cannot write {}", file.display()), e))?;
        Ok(self.apply(ws, manifest, ChangeCause::Api))
    }

    /// Applies `change` to the manifest on disk, validates the result, writes it atomically and
    /// publishes the change. Nothing is written when any step fails.
    pub(crate) fn edit_manifest(
        &self,
        key: &str,
        change: impl FnOnce(&mut ManifestDoc) -> Result<()>,
    ) -> Result<Workspace> {
        let _w = self.write_guard();
        let ws = self.workspace(key)?;
        let file = ws.path.join(MANIFEST_FILE);
        let text = manifest::read_text(&file)?;
        let mut doc = ManifestDoc::parse(&text, &file).map_err(fix_first)?;
        // Edit the text on disk, not the last good manifest: a hand edit in progress is kept.
        manifest::parse(&text, &file).map_err(fix_first)?;
        change(&mut doc)?;
        let manifest = aienv_adopt::resolve_manifest(&ws.path, doc.validated()?)?;
        fsutil::atomic_write(&file, doc.render().as_bytes())
            .map_err(|e| NodeError::io(format!("cannot write {}", file.display()), e))?;
        Ok(self.apply(ws, manifest, ChangeCause::Api))
    }

    /// Puts a valid manifest into effect and tells subscribers. Caller holds the write guard.
    pub(crate) fn apply(
        &self,
        mut ws: Workspace,
        manifest: aienv_core::Manifest,
        cause: ChangeCause,
    ) -> Workspace {
        ws.name = manifest.workspace.name.clone();
        if !manifest.sharing.enabled {
            // Unshared: its file list and watcher go.
            self.forget_share_index(&ws.id);
        }
        ws.manifest = Some(manifest);
        ws.problem = None;
        self.mutate().insert(ws.id.clone(), ws.clone());
        self.follow_sources(&ws);
        self.emit(Event::WorkspaceChanged {
            workspace: ws.clone(),
            cause,
        });
        ws
    }

    /// Reads every registered workspace at start-up. A missing folder or a bad manifest does not
    /// stop the node: the workspace is listed with its problem, so the user can see and fix it.
    pub(crate) fn load_workspaces(&self, entries: Vec<RegistryEntry>) {
        lock(&self.inner.added).extend(entries.iter().map(|e| (e.id.clone(), e.added)));
        let mut all = self.mutate();
        for entry in entries {
            let (manifest, problem) = match crate::adopted::load(&entry.path) {
                Ok(m) => (Some(m), None),
                Err(e) if !entry.path.is_dir() => (
                    None,
                    Some(ManifestError {
                        message: format!(
                            "the workspace folder is gone (moved or deleted?); `aienv workspace remove {}` forgets it",
                            entry.id
                        ),
                        ..e
                    }),
                ),
                Err(e) => (None, Some(e)),
            };
            let name = manifest.as_ref().map_or_else(
                || {
                    entry
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                },
                |m| m.workspace.name.clone(),
            );
            all.insert(
                entry.id.clone(),
                Workspace {
                    id: entry.id,
                    path: entry.path,
                    name,
                    manifest,
                    problem,
                },
            );
        }
        let loaded: Vec<_> = all.values().cloned().collect();
        drop(all);
        for ws in loaded {
            self.watch(&ws.path);
            self.follow_sources(&ws);
        }
    }

    fn save_registry(&self) -> Result<()> {
        // Registration times live in memory (from the registry at start, then as workspaces
        // are added): saving never reads the file it is about to replace.
        let mut added = lock(&self.inner.added);
        let entries: Vec<RegistryEntry> = read(&self.inner.workspaces)
            .values()
            .map(|w| {
                let mut e = RegistryEntry::new(w.id.clone(), w.path.clone());
                e.added = *added.entry(w.id.clone()).or_insert(e.added);
                e
            })
            .collect();
        drop(added);
        Ok(registry::save(self.inner.data_dir.path(), &entries)?)
    }

    fn refuse_registered(&self, path: &Path) -> Result<()> {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        match read(&self.inner.workspaces)
            .values()
            .find(|w| w.path == canon)
        {
            Some(w) => Err(NodeError::Exists(format!(
                "{} is already registered as workspace {:?} ({})",
                path.display(),
                w.name,
                w.id
            ))),
            None => Ok(()),
        }
    }
}

/// A manifest with an error on disk cannot be edited through the API: the edit would have to
/// guess what the user meant. Say so, with the error's position.
fn fix_first(e: ManifestError) -> NodeError {
    NodeError::InvalidManifest(ManifestError {
        message: format!(
            "{}; fix this in the file first, then retry the change",
            e.message
        ),
        ..e
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(NodeError::InvalidRequest(format!(
            "the workspace path {:?} is relative; the node needs an absolute path (the CLI resolves relative paths for you)",
            path.display()
        )))
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .map_err(|e| NodeError::io(format!("cannot resolve {}", path.display()), e))
}

fn folder_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            NodeError::InvalidRequest(format!(
                "{} has no folder name; give the workspace a name",
                path.display()
            ))
        })
}

/// Ids are random and short enough to type: 12 hex digits (48 bits).
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
