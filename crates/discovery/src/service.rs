//! The running discovery: a receiver, an announcer and an expiry sweep, sharing one peer table.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::datagram::{Datagram, Drop, Kind, MAX_DATAGRAM, PROTOCOL};
use crate::limit::RateLimit;
use crate::net::{self, Interface};
use crate::peers::{Observed, Peer, PeerEvent, PeerTable, Via};
use crate::{DiscoveryConfig, DiscoveryError};

/// Pauses of the start-up burst: three announcements within half a second, each asking the
/// others to answer, so a lost datagram does not delay discovery by a whole period.
const BURST: [Duration; 2] = [Duration::from_millis(150), Duration::from_millis(350)];
/// Answers to newcomers are sent at most this often (many newcomers at once, one answer).
const REPLY_GAP: Duration = Duration::from_millis(100);
const SWEEP: Duration = Duration::from_millis(250);

/// What this node announces about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub id: String,
    pub name: String,
    pub port: u16,
    pub scheme: String,
    pub fingerprint: Option<String>,
    /// Catalog revision.
    pub rev: String,
    pub shared: u32,
    pub version: String,
    /// What this node has free.
    pub resources: Option<aienv_core::peer::PeerResources>,
}

impl Announce {
    fn datagram(&self, kind: Kind, hello: bool) -> Datagram {
        Datagram {
            aienv: PROTOCOL,
            kind,
            id: self.id.clone(),
            name: self.name.clone(),
            port: self.port,
            scheme: self.scheme.clone(),
            fp: self.fingerprint.clone(),
            rev: self.rev.clone(),
            shared: self.shared,
            version: self.version.clone(),
            hello,
            // A goodbye needs no resources.
            res: (kind == Kind::Announce)
                .then(|| self.resources.clone())
                .flatten(),
        }
    }
}

/// What discovery is doing: the first thing to look at when peers do not appear.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Status {
    /// `239.255.77.77:47477` unless configured otherwise.
    pub group: String,
    /// The interfaces announcements go out on and are heard from.
    pub interfaces: Vec<Interface>,
    pub interval_ms: u64,
    pub expiry_ms: u64,
    pub peers: usize,
    /// Datagrams sent (one per interface per announcement).
    pub sent: u64,
    pub send_errors: u64,
    pub last_send_error: Option<String>,
    pub received: u64,
    /// Received and taken into account.
    pub accepted: u64,
    /// Received and dropped, by reason: oversized, malformed, version, own, rate_limited, table_full.
    pub dropped: BTreeMap<Drop, u64>,
}

/// A running discovery. Clone it freely.
#[derive(Debug, Clone)]
pub struct Discovery {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: DiscoveryConfig,
    table: Mutex<PeerTable>,
    status: Mutex<Status>,
    announce: watch::Sender<Announce>,
    reply: Notify,
    events: mpsc::UnboundedSender<PeerEvent>,
    senders: Vec<UdpSocket>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Discovery {
    /// Opens the sockets and starts announcing and listening. Peer changes arrive on the
    /// returned receiver.
    pub async fn start(
        config: DiscoveryConfig,
        announce: Announce,
    ) -> Result<(Discovery, mpsc::UnboundedReceiver<PeerEvent>), DiscoveryError> {
        let interfaces = net::choose_interfaces(&config.interfaces)?;
        if interfaces.is_empty() {
            tracing::warn!(
                "discovery has no interface to use (no up interface with a private address); \
                 peers can still be added by address (`aienv peers add HOST:PORT`)"
            );
        }
        let receiver = UdpSocket::from_std(net::receiver(config.group, &interfaces)?)
            .map_err(|e| DiscoveryError::Socket(e.to_string()))?;
        let mut senders = Vec::new();
        for i in &interfaces {
            senders.push(
                UdpSocket::from_std(net::sender(i, config.ttl)?)
                    .map_err(|e| DiscoveryError::Socket(e.to_string()))?,
            );
        }
        let (events, rx) = mpsc::unbounded_channel();
        let status = Status {
            group: config.group.to_string(),
            interfaces,
            interval_ms: config.interval.as_millis() as u64,
            expiry_ms: config.expiry.as_millis() as u64,
            ..Status::default()
        };
        let d = Discovery {
            inner: Arc::new(Shared {
                config,
                table: Mutex::new(PeerTable::default()),
                status: Mutex::new(status),
                announce: watch::Sender::new(announce),
                reply: Notify::new(),
                events,
                senders,
                stop: watch::Sender::new(false),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        let tasks = vec![
            tokio::spawn(d.clone().receive(receiver)),
            tokio::spawn(d.clone().announce_loop()),
            tokio::spawn(d.clone().sweep()),
        ];
        *lock(&d.inner.tasks) = tasks;
        Ok((d, rx))
    }

    pub fn peers(&self) -> Vec<Peer> {
        lock(&self.inner.table).peers()
    }

    pub fn status(&self) -> Status {
        let mut s = lock(&self.inner.status).clone();
        s.peers = lock(&self.inner.table).len();
        s
    }

    /// Changes what is announced; a change of anything peers show goes out at once.
    pub fn set_announce(&self, a: Announce) {
        self.inner.announce.send_if_modified(|current| {
            let changed = *current != a;
            *current = a;
            changed
        });
    }

    /// Records a peer found by an HTTP probe of a configured address (no multicast involved).
    pub fn observe_static(&self, d: &Datagram, from: IpAddr) {
        if d.id == self.inner.announce.borrow().id {
            return;
        }
        let observed = lock(&self.inner.table).observe(d, from, Via::Static, Instant::now());
        if let Observed::Event(e) = observed {
            let _ = self.inner.events.send(*e);
        }
    }

    /// Says goodbye and stops. Peers drop this node at once instead of after the expiry.
    pub async fn stop(&self) {
        if self.inner.stop.send_replace(true) {
            return;
        }
        let goodbye = self.inner.announce.borrow().datagram(Kind::Goodbye, false);
        // Twice: a single lost datagram would leave this node listed until it expires.
        for _ in 0..2 {
            self.send(&goodbye).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in lock(&self.inner.tasks).drain(..) {
            t.abort();
        }
    }

    async fn send(&self, d: &Datagram) {
        let bytes = d.encode();
        let to = SocketAddr::V4(self.inner.config.group);
        for s in &self.inner.senders {
            let result = s.send_to(&bytes, to).await;
            let mut st = lock(&self.inner.status);
            match result {
                Ok(_) => st.sent += 1,
                Err(e) => {
                    st.send_errors += 1;
                    if st.last_send_error.as_deref() != Some(&e.to_string()) {
                        tracing::debug!("discovery send failed: {e}");
                    }
                    st.last_send_error = Some(e.to_string());
                }
            }
        }
    }

    async fn announce_loop(self) {
        let mut stop = self.inner.stop.subscribe();
        let mut changes = self.inner.announce.subscribe();
        let hello = || self.inner.announce.borrow().datagram(Kind::Announce, true);
        self.send(&hello()).await;
        for pause in BURST {
            tokio::select! {
                () = tokio::time::sleep(pause) => self.send(&hello()).await,
                _ = stop.changed() => return,
            }
        }
        let mut tick = tokio::time::interval(self.inner.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_reply = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                r = changes.changed() => if r.is_err() { return },
                () = self.inner.reply.notified() => {
                    let wait = REPLY_GAP.saturating_sub(last_reply.elapsed());
                    tokio::time::sleep(wait).await;
                    last_reply = Instant::now();
                }
                _ = stop.changed() => return,
            }
            changes.borrow_and_update();
            let d = self.inner.announce.borrow().datagram(Kind::Announce, false);
            self.send(&d).await;
            tick.reset();
        }
    }

    async fn receive(self, socket: UdpSocket) {
        // Larger than the largest datagram we accept, so oversized ones are seen as such.
        let mut buf = vec![0u8; MAX_DATAGRAM * 2];
        let mut limit = RateLimit::default();
        let own_id = self.inner.announce.borrow().id.clone();
        loop {
            let (n, from) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("discovery receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let verdict = self.judge(&buf[..n], from.ip(), &own_id, &mut limit);
            let mut st = lock(&self.inner.status);
            st.received += 1;
            match verdict {
                Ok(()) => st.accepted += 1,
                Err(reason) => *st.dropped.entry(reason).or_default() += 1,
            }
        }
    }

    fn judge(
        &self,
        bytes: &[u8],
        from: IpAddr,
        own_id: &str,
        limit: &mut RateLimit,
    ) -> Result<(), Drop> {
        let d = Datagram::decode(bytes)?;
        if d.id == own_id {
            return Err(Drop::Own);
        }
        if !limit.allow(from, &d.id, Instant::now()) {
            return Err(Drop::RateLimited);
        }
        let event = match d.kind {
            Kind::Goodbye => lock(&self.inner.table).goodbye(&d.id, d.fp.as_deref()),
            Kind::Announce => {
                match lock(&self.inner.table).observe(&d, from, Via::Multicast, Instant::now()) {
                    Observed::Event(e) => Some(*e),
                    Observed::Refreshed => None,
                    Observed::Full => return Err(Drop::TableFull),
                    Observed::Impostor => return Err(Drop::Impostor),
                }
            }
        };
        if d.hello {
            self.inner.reply.notify_one();
        }
        if let Some(e) = event {
            let _ = self.inner.events.send(e);
        }
        Ok(())
    }

    async fn sweep(self) {
        let mut tick = tokio::time::interval(SWEEP);
        loop {
            tick.tick().await;
            let left = lock(&self.inner.table).expire(Instant::now(), self.inner.config.expiry);
            for e in left {
                let _ = self.inner.events.send(e);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
