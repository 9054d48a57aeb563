//! aienv core: the data model (workspace > project > environment), the `aienv.toml` manifest, the
//! registry of workspaces on disk, configuration (and edits of its file), platform directories,
//! file watching and the event types that every other part speaks.
//!
//! This crate does no networking and depends on no other aienv crate. Start reading at
//! [`model`], then [`manifest`] (parse, validate, edit) and [`registry`] (what a node remembers).

pub mod access;
pub mod clone;
pub mod config;
pub mod config_edit;
pub mod dirs;
pub mod event;
pub mod fsutil;
pub mod manifest;
pub mod model;
pub mod peer;
pub mod registry;
pub mod resources;
pub mod run;
pub mod watch;

pub use event::Event;
pub use manifest::{MANIFEST_FILE, ManifestError};
pub use model::*;
