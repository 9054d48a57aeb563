//! What can stop a run, in words that say what to do.

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The machine lacks what the environment requires, and no fallback covers it.
    #[error("{0}")]
    NotFit(String),
    #[error("{0}")]
    PortTaken(String),
    /// Setting up the environment (its Python, its `setup` commands) failed.
    #[error("{0}")]
    Setup(String),
    /// The command could not be started, or ended at once.
    #[error("{0}")]
    Start(String),
    /// A tool never answered; the message carries the last log lines.
    #[error("{0}")]
    NotReady(String),
    /// The container engine (or hypervisor) is not there or not running.
    #[error("{0}")]
    Engine(String),
    /// The container image is not on this machine (or could not be brought from a peer).
    #[error("{0}")]
    Image(String),
    /// The container image could not be built from its Dockerfile.
    #[error("{0}")]
    Build(String),
    /// The VM's disk image cannot be used.
    #[error("{0}")]
    Disk(String),
    /// A run over SSH could not connect, log in or copy the workspace there.
    #[error("{0}")]
    Ssh(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl RunError {
    /// A stable code for the API; clients switch on it, never on the message.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::NotFit(_) => "requirements_not_met",
            RunError::PortTaken(_) => "port_taken",
            RunError::Setup(_) => "setup_failed",
            RunError::Start(_) => "start_failed",
            RunError::NotReady(_) => "not_ready",
            RunError::Engine(_) => "engine_unavailable",
            RunError::Image(_) => "image_missing",
            RunError::Build(_) => "build_failed",
            RunError::Disk(_) => "bad_disk_image",
            RunError::Ssh(_) => "ssh_failed",
            RunError::Io { .. } => "io_error",
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RunError::Io {
            context: context.into(),
            source,
        }
    }
}
