//! Pinned peer certificates: the first fingerprint heard from a peer id is kept in
//! `DATA_DIR/trusted-peers.json`; a later, different one is refused until the user re-trusts the
//! peer deliberately (`aienv peers trust ID`). Same model as SSH's known_hosts and Syncthing's
//! device ids: the first contact is trusted, every later one must match it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const FILE: &str = "trusted-peers.json";

/// A peer whose certificate this node has pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrustedPeer {
    pub id: String,
    /// The name it had when pinned (names are not unique; ids are).
    pub name: String,
    /// SHA-256 of its certificate, hex.
    pub fingerprint: String,
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error(
        "peer {name:?} (id {id}) now presents another certificate ({offered:.16}...) than the one \
         pinned when it was first seen ({pinned:.16}...). Either it was reinstalled or its data \
         dir reset, or another machine is impersonating it: this node will not talk to it. If you \
         know why it changed, trust the new certificate with `aienv peers trust {id}`"
    )]
    Changed {
        id: String,
        name: String,
        pinned: String,
        offered: String,
    },
}

#[derive(Debug)]
pub struct Pins {
    path: PathBuf,
    map: Mutex<BTreeMap<String, TrustedPeer>>,
}

impl Pins {
    /// The pins kept in `data_dir`; none when the file is missing. An unreadable file is set
    /// aside (and logged) rather than trusted blindly or fatal.
    pub fn load(data_dir: &Path) -> Pins {
        let path = data_dir.join(FILE);
        let map = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<TrustedPeer>>(&bytes)
                .map(|l| l.into_iter().map(|p| (p.id.clone(), p)).collect())
                .unwrap_or_else(|e| {
                    let aside = path.with_extension("json.bad");
                    tracing::warn!(
                        "{} is damaged ({e}); moved to {} and starting with no pinned peers",
                        path.display(),
                        aside.display()
                    );
                    let _ = std::fs::rename(&path, aside);
                    BTreeMap::new()
                }),
            Err(_) => BTreeMap::new(),
        };
        Pins {
            path,
            map: Mutex::new(map),
        }
    }

    /// Accepts `fingerprint` for peer `id` if it is the pinned one, or pins it on first contact.
    pub fn check(&self, id: &str, name: &str, fingerprint: &str) -> Result<(), PinError> {
        let mut map = lock(&self.map);
        match map.get(id) {
            Some(p) if p.fingerprint == fingerprint => Ok(()),
            Some(p) => Err(PinError::Changed {
                id: id.to_string(),
                name: name.to_string(),
                pinned: p.fingerprint.clone(),
                offered: fingerprint.to_string(),
            }),
            None => {
                tracing::info!("pinned the certificate of peer {name:?} ({id}): {fingerprint}");
                map.insert(id.to_string(), trusted(id, name, fingerprint));
                self.save(&map);
                Ok(())
            }
        }
    }

    /// Pins `fingerprint` for `id`, replacing what was pinned (the user said so).
    pub fn trust(&self, id: &str, name: &str, fingerprint: &str) -> std::io::Result<TrustedPeer> {
        let mut map = lock(&self.map);
        let pin = trusted(id, name, fingerprint);
        map.insert(id.to_string(), pin.clone());
        self.write(&map)?;
        Ok(pin)
    }

    pub fn get(&self, id: &str) -> Option<TrustedPeer> {
        lock(&self.map).get(id).cloned()
    }

    pub fn list(&self) -> Vec<TrustedPeer> {
        lock(&self.map).values().cloned().collect()
    }

    fn save(&self, map: &BTreeMap<String, TrustedPeer>) {
        if let Err(e) = self.write(map) {
            // The pin still holds for this run; the next start pins again on first contact.
            tracing::warn!("cannot save {}: {e}", self.path.display());
        }
    }

    fn write(&self, map: &BTreeMap<String, TrustedPeer>) -> std::io::Result<()> {
        let list: Vec<&TrustedPeer> = map.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
        aienv_core::fsutil::atomic_write(&self.path, &bytes)
    }
}

fn trusted(id: &str, name: &str, fingerprint: &str) -> TrustedPeer {
    TrustedPeer {
        id: id.to_string(),
        name: name.to_string(),
        fingerprint: fingerprint.to_string(),
        since_ms: crate::now_ms(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_contact_pins_and_a_changed_certificate_is_refused_until_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::load(dir.path());
        pins.check("id1", "gpu-box", "aa").unwrap();
        pins.check("id1", "gpu-box", "aa").unwrap();
        let err = pins.check("id1", "gpu-box", "bb").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("aienv peers trust id1"), "{msg}");
        // Kept across restarts.
        let again = Pins::load(dir.path());
        assert!(again.check("id1", "gpu-box", "bb").is_err());
        again.trust("id1", "gpu-box", "bb").unwrap();
        again.check("id1", "gpu-box", "bb").unwrap();
        assert!(Pins::load(dir.path()).check("id1", "x", "aa").is_err());
    }

    #[test]
    fn a_damaged_pin_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let pins = Pins::load(dir.path());
        assert!(pins.list().is_empty());
        assert!(dir.path().join("trusted-peers.json.bad").exists());
    }
}
