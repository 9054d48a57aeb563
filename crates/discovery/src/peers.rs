//! The peer table: who was heard, when, and what they said. Bounded in size; entries expire.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use aienv_core::peer::{LeftReason, Peer, Via};

use crate::datagram::Datagram;

/// At most this many peers are kept; datagrams from further newcomers are dropped (counted).
pub const MAX_PEERS: usize = 1024;

/// A change of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    Joined(Peer),
    /// Something it announces changed (name, address, port, catalog revision, share count).
    Updated(Peer),
    Left {
        peer: Peer,
        reason: LeftReason,
    },
}

#[derive(Debug)]
struct Entry {
    peer: Peer,
    last_seen: Instant,
}

#[derive(Debug, Default)]
pub struct PeerTable {
    entries: HashMap<String, Entry>,
}

/// What `observe` made of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Observed {
    Event(Box<PeerEvent>),
    /// Known, nothing changed; its clock was reset.
    Refreshed,
    /// A newcomer, but the table is full.
    Full,
    /// A known id with another certificate fingerprint: not believed, the entry is unchanged.
    Impostor,
}

impl PeerTable {
    pub fn peers(&self) -> Vec<Peer> {
        let mut list: Vec<Peer> = self.entries.values().map(|e| e.peer.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        list
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records an announcement heard from `from`.
    pub fn observe(&mut self, d: &Datagram, from: IpAddr, via: Via, now: Instant) -> Observed {
        let peer = Peer {
            id: d.id.clone(),
            name: d.name.clone(),
            address: from,
            port: d.port,
            scheme: d.scheme.clone(),
            url: url(&d.scheme, from, d.port),
            version: d.version.clone(),
            shared: d.shared,
            rev: d.rev.clone(),
            fingerprint: d.fp.clone(),
            via,
            since_ms: unix_ms(),
            resources: d.res.clone(),
        };
        let full = self.entries.len() >= MAX_PEERS;
        match self.entries.get_mut(&d.id) {
            // Whoever first announced an id with a certificate keeps it: another machine reusing
            // the id cannot move the peer to its own address or change what it claims.
            Some(e) if e.peer.fingerprint.is_some() && e.peer.fingerprint != d.fp => {
                Observed::Impostor
            }
            Some(e) => {
                e.last_seen = now;
                let since = e.peer.since_ms;
                // A static probe and multicast may both see a peer: keep the multicast view.
                if via == Via::Static && e.peer.via == Via::Multicast {
                    return Observed::Refreshed;
                }
                if e.peer
                    == (Peer {
                        since_ms: since,
                        ..peer.clone()
                    })
                {
                    return Observed::Refreshed;
                }
                e.peer = Peer {
                    since_ms: since,
                    ..peer
                };
                Observed::Event(Box::new(PeerEvent::Updated(e.peer.clone())))
            }
            None if full => Observed::Full,
            None => {
                self.entries.insert(
                    d.id.clone(),
                    Entry {
                        peer: peer.clone(),
                        last_seen: now,
                    },
                );
                Observed::Event(Box::new(PeerEvent::Joined(peer)))
            }
        }
    }

    /// A goodbye from `id`; ignored when it comes with another certificate than the one the
    /// peer announced (a forged goodbye would hide a live peer).
    pub fn goodbye(&mut self, id: &str, fp: Option<&str>) -> Option<PeerEvent> {
        if self
            .entries
            .get(id)
            .is_some_and(|e| e.peer.fingerprint.is_some() && e.peer.fingerprint.as_deref() != fp)
        {
            return None;
        }
        self.entries.remove(id).map(|e| PeerEvent::Left {
            peer: e.peer,
            reason: LeftReason::Goodbye,
        })
    }

    /// Removes peers not heard for longer than `expiry`.
    pub fn expire(&mut self, now: Instant, expiry: Duration) -> Vec<PeerEvent> {
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_seen) > expiry)
            .map(|(id, _)| id.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|id| self.entries.remove(&id))
            .map(|e| PeerEvent::Left {
                peer: e.peer,
                reason: LeftReason::Expired,
            })
            .collect()
    }
}

pub fn url(scheme: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::{Kind, PROTOCOL};

    fn d(id: &str, rev: &str) -> Datagram {
        Datagram {
            aienv: PROTOCOL,
            kind: Kind::Announce,
            id: id.into(),
            name: format!("node-{id}"),
            port: 5000,
            scheme: "http".into(),
            fp: None,
            rev: rev.into(),
            shared: 1,
            version: "0.1.0".into(),
            hello: false,
            res: None,
        }
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn join_refresh_update_goodbye() {
        let mut t = PeerTable::default();
        let now = Instant::now();
        assert!(
            matches!(t.observe(&d("a", "1"), LO, Via::Multicast, now), Observed::Event(e) if matches!(&*e, PeerEvent::Joined(p) if p.url == "http://127.0.0.1:5000"))
        );
        assert_eq!(
            t.observe(&d("a", "1"), LO, Via::Multicast, now),
            Observed::Refreshed
        );
        assert!(
            matches!(t.observe(&d("a", "2"), LO, Via::Multicast, now), Observed::Event(e) if matches!(&*e, PeerEvent::Updated(p) if p.rev == "2"))
        );
        assert!(matches!(
            t.goodbye("a", None),
            Some(PeerEvent::Left {
                reason: LeftReason::Goodbye,
                ..
            })
        ));
        assert!(t.is_empty());
        assert_eq!(
            t.goodbye("a", None),
            None,
            "a second goodbye changes nothing"
        );
    }

    #[test]
    fn an_announcement_reusing_a_known_id_with_another_certificate_is_not_believed() {
        let mut t = PeerTable::default();
        let now = Instant::now();
        let real = Datagram {
            fp: Some("aa".into()),
            scheme: "https".into(),
            ..d("a", "1")
        };
        t.observe(&real, LO, Via::Multicast, now);
        let elsewhere: IpAddr = "127.0.0.9".parse().unwrap();
        let forged = Datagram {
            fp: Some("bb".into()),
            rev: "2".into(),
            ..real.clone()
        };
        assert_eq!(
            t.observe(&forged, elsewhere, Via::Multicast, now),
            Observed::Impostor
        );
        let without = Datagram { fp: None, ..forged };
        assert_eq!(
            t.observe(&without, elsewhere, Via::Multicast, now),
            Observed::Impostor
        );
        assert_eq!(t.peers()[0].address, LO, "the peer was not moved");
        assert_eq!(t.peers()[0].rev, "1");
        assert_eq!(
            t.goodbye("a", Some("bb")),
            None,
            "a forged goodbye is ignored"
        );
        assert_eq!(t.len(), 1);
        assert!(t.goodbye("a", Some("aa")).is_some());
    }

    #[test]
    fn silent_peers_expire_and_heard_ones_stay() {
        let mut t = PeerTable::default();
        let t0 = Instant::now();
        t.observe(&d("a", "1"), LO, Via::Multicast, t0);
        t.observe(&d("b", "1"), LO, Via::Multicast, t0);
        t.observe(
            &d("b", "1"),
            LO,
            Via::Multicast,
            t0 + Duration::from_secs(3),
        );
        let left = t.expire(t0 + Duration::from_secs(4), Duration::from_millis(3500));
        assert_eq!(left.len(), 1);
        assert!(
            matches!(&left[0], PeerEvent::Left { peer, reason: LeftReason::Expired } if peer.id == "a")
        );
        assert_eq!(t.peers().len(), 1);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = PeerTable::default();
        let now = Instant::now();
        for i in 0..MAX_PEERS {
            t.observe(&d(&i.to_string(), "1"), LO, Via::Multicast, now);
        }
        assert_eq!(
            t.observe(&d("one-too-many", "1"), LO, Via::Multicast, now),
            Observed::Full
        );
        assert_eq!(t.len(), MAX_PEERS);
    }
}
