//! Per-source rate limiting: a flood from one sender cannot drown the others or grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Datagrams per second one (address, id) may send; a node sends about one, plus bursts.
const RATE: f64 = 20.0;
const BURST: f64 = 40.0;
/// Sources tracked at most; beyond, the stalest half is forgotten.
const MAX_SOURCES: usize = 4096;

#[derive(Debug, Default)]
pub struct RateLimit {
    buckets: HashMap<(IpAddr, String), (f64, Instant)>,
}

impl RateLimit {
    /// Whether a datagram from `ip` claiming `id` may pass now.
    pub fn allow(&mut self, ip: IpAddr, id: &str, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&(ip, id.to_string())) {
            let mut ages: Vec<Instant> = self.buckets.values().map(|(_, t)| *t).collect();
            ages.sort();
            let cutoff = ages[ages.len() / 2];
            self.buckets.retain(|_, (_, t)| *t > cutoff);
        }
        let (tokens, last) = self
            .buckets
            .entry((ip, id.to_string()))
            .or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * RATE).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_rate_and_others_pass() {
        let mut r = RateLimit::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let now = Instant::now();
        let passed = (0..1000).filter(|_| r.allow(ip, "flooder", now)).count();
        assert_eq!(
            passed, BURST as usize,
            "a burst passes, the rest of the flood does not"
        );
        assert!(
            r.allow(ip, "neighbour", now),
            "another sender is not affected"
        );
        assert!(
            r.allow(ip, "flooder", now + Duration::from_millis(100)),
            "the flooder recovers at the rate"
        );
    }

    #[test]
    fn memory_stays_bounded_under_many_fake_ids() {
        let mut r = RateLimit::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let now = Instant::now();
        for i in 0..20_000 {
            r.allow(ip, &i.to_string(), now + Duration::from_micros(i));
        }
        assert!(r.buckets.len() <= MAX_SOURCES);
    }
}
