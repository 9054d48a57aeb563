//! Node configuration: built-in defaults, then `DATA_DIR/config.toml`, then environment variables
//! and flags (the command line resolves those two, flags winning).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default API port.
pub const DEFAULT_PORT: u16 = 47478;

/// The discovery multicast group of the protocol.
pub const DEFAULT_DISCOVERY_GROUP: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 77), 47477);

/// The configuration file's name in the data dir.
pub const CONFIG_FILE: &str = "config.toml";

/// The resolved configuration of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Shown to peers and in the UI.
    pub name: String,
    pub listen: SocketAddr,
    /// Interfaces (names or addresses) that discovery announces on; empty means every up,
    /// multicast-capable interface with a private address.
    pub discovery_interfaces: Vec<String>,
    /// When set, every API request must carry `Authorization: Bearer KEY`.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// The discovery multicast group and port.
    pub discovery_group: SocketAddrV4,
    /// Peers reached by address (HOST:PORT) rather than multicast, from the config file.
    pub static_peers: Vec<String>,
    /// Talk to peers, and serve them, over plain HTTP (no TLS, no pinned certificates). Only for
    /// networks the user trusts, or to measure what TLS costs.
    pub plain_peers: bool,
    /// How long a request to clone a share with `access = "approve"` waits for the owner.
    pub approve_timeout_s: u64,
    /// The LAN cache: packages and models served to peers, and asked of them before the internet.
    pub cache: CacheConfig,
    /// Runs that peers start on this node.
    pub remote_runs: RemoteRunsConfig,
}

/// `[remote_runs]` in `config.toml`: whether and for whom this node runs peers' environments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRunsConfig {
    #[serde(default)]
    pub access: RemoteAccess,
}

/// Who may start runs on this node from another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteAccess {
    /// Nobody: remote runs are refused (`remote_runs_off`).
    Off,
    /// Each request waits for the owner's yes (web UI, tray, `aienv access approve`).
    #[default]
    Approve,
    /// Nodes this node knows (their certificate is the one pinned or announced for them).
    Peers,
    /// Known nodes that present a share token of this node's (`aienv share token create WS`).
    Token,
    /// Anyone who reaches the port.
    Open,
}

/// The LAN cache's settings (`[cache]` in `config.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheConfig {
    /// Serve this node's Python packages to peers, and build Python environments through the
    /// node's package index (which asks peers before `upstream`).
    pub packages: bool,
    /// Serve the models in this machine's Hugging Face cache to peers, and fetch models from them.
    pub models: bool,
    /// Which peers may read the cache.
    pub access: CacheAccess,
    /// The index asked when no peer has a package (PEP 503 simple API); empty: the LAN only.
    pub upstream: String,
    /// Folders of wheel files served beside the node's own store (a wheelhouse, `pip download`'s).
    pub wheel_dirs: Vec<PathBuf>,
}

/// The default upstream package index.
pub const PYPI_SIMPLE: &str = "https://pypi.org/simple";

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            packages: true,
            models: true,
            access: CacheAccess::Peers,
            upstream: PYPI_SIMPLE.to_string(),
            wheel_dirs: Vec::new(),
        }
    }
}

/// Who may read a node's LAN cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheAccess {
    /// Nodes this node knows: the certificate a request presents is the one pinned or announced
    /// for the node it names (mutual TLS). With `plain_peers`, any node in the peer table.
    Peers,
    /// Known nodes that also hold a valid share token for one of this node's workspaces.
    Token,
    /// Anyone who can reach the port.
    Open,
}

/// `[cache]` in `config.toml`; `None` leaves the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub packages: Option<bool>,
    pub models: Option<bool>,
    pub access: Option<CacheAccess>,
    pub upstream: Option<String>,
    pub wheel_dirs: Option<Vec<PathBuf>>,
}

impl CacheSettings {
    /// `self` over `below`, key by key.
    fn over(self, below: CacheSettings) -> CacheSettings {
        CacheSettings {
            packages: self.packages.or(below.packages),
            models: self.models.or(below.models),
            access: self.access.or(below.access),
            upstream: self.upstream.or(below.upstream),
            wheel_dirs: self.wheel_dirs.or(below.wheel_dirs),
        }
    }

    fn resolve(self) -> CacheConfig {
        let d = CacheConfig::default();
        CacheConfig {
            packages: self.packages.unwrap_or(d.packages),
            models: self.models.unwrap_or(d.models),
            access: self.access.unwrap_or(d.access),
            upstream: self
                .upstream
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or(d.upstream),
            wheel_dirs: self.wheel_dirs.unwrap_or_default(),
        }
    }
}

/// How long an access request waits for the owner's answer by default.
pub const DEFAULT_APPROVE_TIMEOUT_S: u64 = 120;

/// One layer of settings; `None` leaves the value of the layer below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub name: Option<String>,
    pub listen: Option<SocketAddr>,
    pub discovery_interfaces: Option<Vec<String>>,
    pub api_key: Option<String>,
    pub discovery_group: Option<SocketAddrV4>,
    pub static_peers: Option<Vec<String>>,
    pub plain_peers: Option<bool>,
    pub approve_timeout_s: Option<u64>,
    pub cache: Option<CacheSettings>,
    pub remote_runs: Option<RemoteRunsConfig>,
}

impl Settings {
    /// What `DATA_DIR/config.toml` says; all `None` when there is no such file.
    pub fn from_file(data_dir: &Path) -> Result<Settings, ConfigError> {
        let file = data_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Settings::parse(&text, &file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(ConfigError {
                file,
                message: e.to_string(),
            }),
        }
    }

    /// Parses the text of a config file; `file` is only used in the error.
    pub fn parse(text: &str, file: &Path) -> Result<Settings, ConfigError> {
        toml::from_str::<Settings>(text).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

impl Config {
    /// Defaults, then `DATA_DIR/config.toml` (if present), then `overrides`.
    pub fn load(data_dir: &Path, overrides: Settings) -> Result<Config, ConfigError> {
        Ok(Config::resolve(
            data_dir,
            Settings::from_file(data_dir)?,
            overrides,
        ))
    }

    fn resolve(data_dir: &Path, file: Settings, over: Settings) -> Config {
        Config {
            data_dir: data_dir.to_path_buf(),
            name: over
                .name
                .or(file.name)
                .unwrap_or_else(crate::dirs::host_name),
            listen: over
                .listen
                .or(file.listen)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
            discovery_interfaces: over
                .discovery_interfaces
                .or(file.discovery_interfaces)
                .unwrap_or_default(),
            api_key: over.api_key.or(file.api_key).filter(|k| !k.is_empty()),
            discovery_group: over
                .discovery_group
                .or(file.discovery_group)
                .unwrap_or(DEFAULT_DISCOVERY_GROUP),
            static_peers: over.static_peers.or(file.static_peers).unwrap_or_default(),
            plain_peers: over.plain_peers.or(file.plain_peers).unwrap_or(false),
            approve_timeout_s: over
                .approve_timeout_s
                .or(file.approve_timeout_s)
                .unwrap_or(DEFAULT_APPROVE_TIMEOUT_S)
                .max(1),
            cache: over
                .cache
                .unwrap_or_default()
                .over(file.cache.unwrap_or_default())
                .resolve(),
            remote_runs: over.remote_runs.or(file.remote_runs).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "name = \"from-file\"\nlisten = \"127.0.0.1:5000\"\n",
        )
        .unwrap();
        let c = Config::load(
            dir.path(),
            Settings {
                name: Some("from-flag".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.name, "from-flag", "a flag beats the file");
        assert_eq!(
            c.listen,
            "127.0.0.1:5000".parse().unwrap(),
            "the file beats the default"
        );
        assert_eq!(c.api_key, None);
    }

    #[test]
    fn an_unknown_key_in_the_config_file_is_an_error_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "nmae = \"typo\"\n").unwrap();
        let err = Config::load(dir.path(), Settings::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("config.toml") && text.contains("nmae") && text.contains("line 1"),
            "{text}"
        );
    }
}
