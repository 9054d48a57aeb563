//! What can go wrong in a node operation, in terms a caller can act on.

use aienv_core::ManifestError;
use aienv_core::manifest::edit::EditError;
use aienv_core::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No such workspace, project or environment.
    #[error("{0}")]
    NotFound(String),
    /// A name matches more than one workspace.
    #[error("{0}")]
    Ambiguous(String),
    /// The thing to create exists already.
    #[error("{0}")]
    Exists(String),
    /// A manifest (on disk, or as an edit would leave it) breaks the rules.
    #[error("{0}")]
    InvalidManifest(ManifestError),
    /// What the request refers to changed meanwhile (a share's files): fetch it again.
    #[error("{0}")]
    Changed(String),
    /// The request itself makes no sense (a relative path, an empty name).
    #[error("{0}")]
    InvalidRequest(String),
    /// The data dir cannot be used (not writable, in use by another node).
    #[error("{0}")]
    DataDir(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A run could not be planned or started (requirements, ports, engine, image, disk).
    #[error(transparent)]
    Run(#[from] aienv_runtime::RunError),
    /// A peer may not have what it asked for (no token, a revoked one, the owner said no...), or
    /// this node will not talk to a peer (a changed certificate, plain HTTP). `code` says which.
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// Discovery could not start (a wrong interface, a UDP port taken).
    #[error("{0}")]
    Discovery(String),
    /// A package or model could not be fetched from a peer or the upstream index, or what came
    /// was not what was listed.
    #[error("{0}")]
    Fetch(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl NodeError {
    /// A stable machine-readable code; the API and UI switch on it, never on the message.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NotFound(_) => "not_found",
            NodeError::Ambiguous(_) => "ambiguous",
            NodeError::Exists(_) => "already_exists",
            NodeError::Changed(_) => "changed",
            NodeError::InvalidManifest(_) => "invalid_manifest",
            NodeError::InvalidRequest(_) => "invalid_request",
            NodeError::DataDir(_) => "data_dir",
            NodeError::Registry(_) => "registry",
            NodeError::Run(e) => e.code(),
            NodeError::Discovery(_) => "discovery",
            NodeError::Denied { code, .. } => code,
            NodeError::Fetch(_) => "fetch_failed",
            NodeError::Io { .. } => "io_error",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NodeError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<ManifestError> for NodeError {
    fn from(e: ManifestError) -> Self {
        NodeError::InvalidManifest(e)
    }
}

impl From<EditError> for NodeError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotFound { .. } => NodeError::NotFound(e.to_string()),
            EditError::Exists { .. } => NodeError::Exists(e.to_string()),
        }
    }
}

pub type Result<T, E = NodeError> = std::result::Result<T, E>;
