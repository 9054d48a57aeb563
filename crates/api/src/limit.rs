//! Limits on what one client may send: a budget of *failed* requests per source address, and a
//! cap on the size of a request's headers.
//!
//! The budget is a token bucket per IP address (kept as GCRA: one "theoretical arrival time" per
//! address), charged only by answers that mean the client is doing something wrong: a wrong or
//! missing key (401), a refused origin or address (403), a path that does not exist (404), headers
//! that are too large (431), and the refusals themselves (429). A client that makes successful
//! requests, however many (the web UI polling every route), is never charged and never tracked.
//! Once an address is over budget, its requests get `429 Too Many Requests` with `Retry-After`,
//! without running the rest of the stack: no key check, no routing, no handler. Two exceptions:
//! `/api/v1/health` always answers, and requests that did not come over a socket (in-process
//! callers: the desktop shell, router tests) carry no address and are never limited.
//!
//! Requests that carry the node's API key are never charged, whatever their answer: the budget is
//! there against guessers and scanners, and a client with the key is the owner (a tester's
//! made-up ids, a UI asking for a workspace removed meanwhile). On a node without a key, a 404
//! is not charged either: everything can be listed there, so there is nothing to find by guessing.
//!
//! A throttled address is refused even with the right key. Letting a correct key through would
//! make the 429 an oracle: a client guessing keys at 10,000/s would see every wrong guess refused
//! and the right one answered, at full speed. Refused this way, it gets
//! [`FAILURE_REFILL_PER_S`] real guesses a second at most, and none while it keeps hammering.
//!
//! The table of addresses is bounded ([`MAX_TRACKED`]); the lock is held for a lookup and a few
//! arithmetic operations, never across an await. The code is ours rather than `governor`'s:
//! governor charges before the request runs, and here the charge depends on the answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Failed requests an address may make in a burst before it is refused. The web UI with a
/// missing or stale key fails on about ten routes at once when a page loads, and a person who
/// mistypes the key does so a few times: 50 leaves room for both several times over, and still
/// stops a scan or a key guesser after 50 tries.
pub const FAILURE_BURST: u32 = 50;

/// Failed requests a second an address regains (one every 50 ms). A client of this API fails now
/// and then (a workspace that was just removed, a run that ended); 20 a second sustained is far
/// beyond that, and far below a flood: a key guesser gets 20 tries a second at most.
pub const FAILURE_REFILL_PER_S: u32 = 20;

/// The longest a refused client is told to wait. Refusals count as failures, so a client that
/// keeps sending while refused stays refused; this bounds how long it stays refused after it
/// stops (or after the person behind it fixed the key).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Addresses tracked at once (about 50 bytes each: under half a MB). A LAN has a few
/// hundred hosts; past this, addresses whose budget is full again are forgotten first, then those
/// closest to it.
pub const MAX_TRACKED: usize = 8192;

/// The most header bytes (names, values and their separators) a request may carry. hyper takes
/// up to about 400 KB before it answers 431 with no body; this API needs a key and a browser's
/// cookies for the host (which, for `localhost`, other local dev servers set too). Twice
/// Node.js's default (16 KiB), four times nginx's per-line buffer (8 KiB).
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// The path that answers whatever an address did before: monitors and clients probing the node.
const HEALTH: &str = "/api/v1/health";

/// The per-address budgets of one router.
#[derive(Debug)]
pub(crate) struct Limiter {
    table: Mutex<HashMap<IpAddr, Entry>>,
    /// The node's API key: requests that carry it are never charged.
    key: Option<Arc<str>>,
    /// The cost of one failure (1 / refill rate).
    cost: Duration,
    /// How far ahead of now an address's arrival time may be while it still has a token left.
    tolerance: Duration,
    /// How far ahead of now its arrival time may be pushed at most.
    ceiling: Duration,
    cap: usize,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the address's bucket is full again; the budget is spent while this is more than
    /// `tolerance` ahead of now.
    full_at: Instant,
    /// A warning was logged for the current stretch of refusals.
    warned: bool,
}

/// What to do with a request from a refused address.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// How long until the address has a request to spend again.
    pub wait: Duration,
    /// The first refusal of a stretch: worth a line in the log.
    pub first: bool,
}

impl Limiter {
    pub(crate) fn new(burst: u32, per_second: u32, max_wait: Duration, cap: usize) -> Self {
        let cost = Duration::from_secs(1) / per_second.max(1);
        let tolerance = cost * burst.max(1).saturating_sub(1);
        Limiter {
            table: Mutex::new(HashMap::new()),
            key: None,
            cost,
            tolerance,
            ceiling: tolerance + max_wait,
            cap: cap.max(1),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        // The lock guards plain numbers: a panic elsewhere leaves them usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some` when `ip` is over budget at `now`; the refusal is charged as a failure.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Option<Refusal> {
        let mut table = self.table();
        let entry = table.get_mut(&ip)?;
        let ahead = entry.full_at.saturating_duration_since(now);
        if ahead <= self.tolerance {
            entry.warned = false;
            return None;
        }
        let first = !entry.warned;
        entry.warned = true;
        let ahead = (ahead + self.cost).min(self.ceiling);
        entry.full_at = now + ahead;
        Some(Refusal {
            // Until the budget has a request again, this refusal's charge included.
            wait: ahead - self.tolerance,
            first,
        })
    }

    /// Charges one failure to `ip` at `now`.
    pub(crate) fn charge(&self, ip: IpAddr, now: Instant) {
        let mut table = self.table();
        if !table.contains_key(&ip) && table.len() >= self.cap {
            table.retain(|_, e| e.full_at > now);
            if table.len() >= self.cap
                && let Some(oldest) = table.iter().min_by_key(|(_, e)| e.full_at).map(|(k, _)| *k)
            {
                table.remove(&oldest);
            }
        }
        let entry = table.entry(ip).or_insert(Entry {
            full_at: now,
            warned: false,
        });
        let ahead = entry.full_at.saturating_duration_since(now);
        entry.full_at = now + (ahead + self.cost).min(self.ceiling);
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.table().len()
    }

    /// The node's limiter: the budgets above, and the node's API key.
    fn for_node(key: Option<Arc<str>>) -> Self {
        Limiter {
            key,
            ..Limiter::new(
                FAILURE_BURST,
                FAILURE_REFILL_PER_S,
                MAX_RETRY_AFTER,
                MAX_TRACKED,
            )
        }
    }
}

type Answer = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;
type Middleware = fn(State<Arc<Limiter>>, Request, Next) -> Answer;

/// The layer for the router of a node with API key `key`: a fresh set of budgets, shared by the
/// router's clones.
pub(crate) fn layer(
    key: Option<Arc<str>>,
) -> axum::middleware::FromFnLayer<Middleware, Arc<Limiter>, (State<Arc<Limiter>>, Request)> {
    let f: Middleware = |state, req, next| Box::pin(limit(state, req, next));
    axum::middleware::from_fn_with_state(Arc::new(Limiter::for_node(key)), f)
}

/// The middleware: the address's budget first, then the size of the headers.
pub(crate) async fn limit(
    State(limiter): State<Arc<Limiter>>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical());
    let health = req.uri().path() == HEALTH;
    if let Some(ip) = ip
        && !health
        && let Some(refusal) = limiter.check(ip, Instant::now())
    {
        if refusal.first {
            tracing::warn!(
                "refusing requests from {ip} for a while: more than {FAILURE_BURST} failed \
                 requests (wrong API key, refused origin, unknown paths)"
            );
        }
        return too_many(ip, refusal.wait);
    }
    // A client with the key is the owner: its failures (a workspace removed meanwhile, a
    // tester's made-up ids) are its own business.
    let keyed = ip.is_some() && limiter.key.as_deref().is_some_and(|k| carries_key(&req, k));
    let size = header_bytes(&req);
    let res = if size > MAX_HEADER_BYTES {
        headers_too_large(size)
    } else {
        next.run(req).await
    };
    if let Some(ip) = ip
        && !health
        && !keyed
        && is_failure(res.status(), limiter.key.is_some())
    {
        limiter.charge(ip, Instant::now());
    }
    res
}

/// Answers that charge the budget of a client without the key: the client is wrong, not the
/// node. A 404 only where there is a key: on a node without one, everything can be listed, so
/// there is nothing to find by guessing paths.
fn is_failure(status: StatusCode, node_has_key: bool) -> bool {
    match status {
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::TOO_MANY_REQUESTS
        | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => true,
        StatusCode::NOT_FOUND => node_has_key,
        _ => false,
    }
}

/// Whether `req` carries the node's API key, where `guard::api_key` looks for it.
fn carries_key(req: &Request, key: &str) -> bool {
    crate::guard::presented_key(req)
        .is_some_and(|given| aienv_trust::same_secret(given.as_bytes(), key.as_bytes()))
}

fn header_bytes(req: &Request) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn too_many(ip: IpAddr, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many failed requests from {ip} (wrong API key, refused origin or unknown paths); \
             this node refuses its requests for now: retry in {secs} s (Retry-After), with the \
             right key, and fewer requests that fail"
        ),
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

fn headers_too_large(size: usize) -> Response {
    ApiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        format!(
            "the request's headers are {size} bytes, more than this node takes \
             ({MAX_HEADER_BYTES}); send fewer or smaller headers (in a browser, clear this \
             site's cookies)"
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_the_budget_refills() {
        let l = Limiter::new(5, 10, Duration::from_secs(30), 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            assert_eq!(l.check(a, t0), None);
            l.charge(a, t0);
        }
        let refused = l
            .check(a, t0)
            .expect("the sixth failure in a burst is refused");
        assert!(refused.first);
        assert_eq!(
            refused.wait,
            Duration::from_millis(200),
            "the failure over budget and the refusal, one failure's worth each"
        );
        let again = l.check(a, t0).unwrap();
        assert!(!again.first, "one warning a stretch");
        assert_eq!(again.wait, Duration::from_millis(300));
        let t1 = t0 + again.wait + Duration::from_millis(1);
        assert_eq!(l.check(a, t1), None, "passes once the wait is over");
        assert_eq!(l.check(ip("10.0.0.2"), t0), None, "others are not affected");
    }

    #[test]
    fn hammering_while_refused_is_bounded_by_the_longest_wait() {
        let l = Limiter::new(5, 10, Duration::from_secs(3), 100);
        let t0 = Instant::now();
        let a = ip("10.0.0.1");
        for _ in 0..10_000 {
            l.charge(a, t0);
        }
        let refused = l.check(a, t0).unwrap();
        assert_eq!(refused.wait, Duration::from_secs(3));
        assert!(l.check(a, t0 + Duration::from_secs(3)).is_none());
    }

    #[test]
    fn successes_are_not_tracked_and_the_table_is_bounded() {
        let l = Limiter::new(5, 10, Duration::from_secs(30), 4);
        let t0 = Instant::now();
        for i in 0..100 {
            assert_eq!(l.check(ip(&format!("10.0.1.{i}")), t0), None);
        }
        assert_eq!(l.tracked(), 0, "addresses that only succeed cost nothing");
        // A flooder that is over budget, then many addresses failing once each.
        let bad = ip("10.0.0.1");
        for _ in 0..6 {
            l.charge(bad, t0);
        }
        for i in 0..100 {
            l.charge(ip(&format!("10.0.2.{i}")), t0);
        }
        assert_eq!(l.tracked(), 4);
        assert!(
            l.check(bad, t0).is_some(),
            "the address furthest over budget is evicted last"
        );
        // Later, the once-failing addresses are full again and make room first.
        let later = t0 + Duration::from_millis(200);
        l.charge(ip("10.0.3.1"), later);
        assert_eq!(l.tracked(), 2, "the full ones were swept, the flooder kept");
        assert!(l.check(bad, later).is_some());
    }
}
