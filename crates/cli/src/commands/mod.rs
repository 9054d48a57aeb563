//! The client commands, one file per noun.

pub mod access;
pub mod adopt;
pub mod clone;
pub mod env;
pub mod events;
pub mod model;
pub mod peers;
pub mod project;
pub mod run;
pub mod workspace;

/// An absolute path for the node (which may run in another folder) from a path typed here.
pub fn absolute(path: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}
