//! The node's own settings: what is in effect, what `DATA_DIR/config.toml` says, and changes to
//! that file. The node reads its configuration once, at start: a saved change takes effect at
//! the next start, and answers say so.

use aienv_core::config::{CONFIG_FILE, Config, Settings};
use aienv_core::config_edit::{self, ConfigChange, ConfigEditError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Node;
use crate::error::{NodeError, Result};

/// The node's settings in effect, and what its config file says (the two differ after a saved
/// change until the node restarts, or when a flag or environment variable overrides the file).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeSettings {
    /// Shown to peers and in the UI.
    pub name: String,
    /// Address and port the API listens on, e.g. `0.0.0.0:47478`.
    pub listen: String,
    /// Interfaces (names or addresses) discovery announces on; empty: every suitable one.
    pub discovery_interfaces: Vec<String>,
    /// The discovery multicast group and port, e.g. `239.255.77.77:47477`.
    pub discovery_group: String,
    /// Peers reached by address (HOST:PORT) rather than multicast.
    pub static_peers: Vec<String>,
    /// Whether requests need an API key. The key itself is never sent.
    pub api_key_set: bool,
    /// The node's data dir.
    pub data_dir: String,
    /// The config file read at start and written by changes.
    pub config_file: String,
    /// What the config file says now; `null` where it says nothing (a default, a flag or an
    /// environment variable applies).
    pub file: ConfigFileSettings,
}

/// The settings as written in the config file.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ConfigFileSettings {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub discovery_interfaces: Option<Vec<String>>,
    pub discovery_group: Option<String>,
    pub static_peers: Option<Vec<String>>,
    /// Whether the file holds an API key (never the key).
    pub api_key_set: bool,
}

/// A change of the node's settings, saved to its config file; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit.
    pub name: Option<String>,
    /// Interface names (`eth0`) or addresses; an empty list means every suitable interface.
    pub discovery_interfaces: Option<Vec<String>>,
    /// A new API key (letters, digits, '-', '_', '.', '~'); an empty string removes it.
    pub api_key: Option<String>,
}

/// The answer to a change: the settings as after a read, and what the change means.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsUpdate {
    #[serde(flatten)]
    pub settings: NodeSettings,
    /// `true` when something was saved: the running node still uses the old values.
    pub restart_needed: bool,
    /// What happened, in a sentence for people.
    pub message: String,
}

impl Node {
    /// The settings in effect and what the config file says.
    pub fn settings(&self) -> Result<NodeSettings> {
        let file = Settings::from_file(self.inner.data_dir.path())
            .map_err(|e| NodeError::DataDir(format!("{e}; fix the file by hand")))?;
        Ok(self.describe(file))
    }

    /// Saves `patch` to the config file, keeping its comments. Nothing changes in the running
    /// node; nothing is written when a value is refused.
    pub fn update_settings(&self, patch: SettingsPatch) -> Result<SettingsUpdate> {
        let change = ConfigChange {
            name: patch.name,
            discovery_interfaces: patch.discovery_interfaces,
            api_key: patch.api_key,
        };
        if change.is_empty() {
            return Ok(SettingsUpdate {
                settings: self.settings()?,
                restart_needed: false,
                message: "nothing to change: give name, discovery_interfaces or api_key"
                    .to_string(),
            });
        }
        // One read-modify-write of the file at a time, or concurrent changes could lose one.
        let _writing = self.write_guard();
        let file =
            config_edit::apply(self.inner.data_dir.path(), &change).map_err(|e| match e {
                ConfigEditError::Invalid(message) => NodeError::InvalidRequest(message),
                ConfigEditError::File(e) => NodeError::DataDir(e.to_string()),
            })?;
        let settings = self.describe(file);
        let message = format!(
            "saved to {}; the changes take effect when the node restarts (a flag or AIENV_ \
             environment variable given at start still wins over the file)",
            settings.config_file
        );
        Ok(SettingsUpdate {
            settings,
            restart_needed: true,
            message,
        })
    }

    fn describe(&self, file: Settings) -> NodeSettings {
        let Config {
            name,
            listen,
            discovery_interfaces,
            api_key,
            discovery_group,
            static_peers,
            ..
        } = self.config();
        let data_dir = self.inner.data_dir.path();
        NodeSettings {
            name: name.clone(),
            listen: listen.to_string(),
            discovery_interfaces: discovery_interfaces.clone(),
            discovery_group: discovery_group.to_string(),
            static_peers: static_peers.clone(),
            api_key_set: api_key.is_some(),
            data_dir: data_dir.display().to_string(),
            config_file: data_dir.join(CONFIG_FILE).display().to_string(),
            file: ConfigFileSettings {
                name: file.name,
                listen: file.listen.map(|a| a.to_string()),
                discovery_interfaces: file.discovery_interfaces,
                discovery_group: file.discovery_group.map(|a| a.to_string()),
                static_peers: file.static_peers,
                // The same rule as at start: an empty key in the file is no key.
                api_key_set: file.api_key.is_some_and(|k| !k.is_empty()),
            },
        }
    }
}
