//! What every request handler shares.

use crate::port::StreamStats;
use crate::scheduler::SchedulerHealth;
use crate::secrets::Secrets;
use crate::time::TimeService;
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Policy, Timestamp};
use slotcast_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The center's settings, built by `slotcastd` from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL for links in e-mails, profiles and play answers (no trailing slash).
    pub public_url: String,
    /// IANA name of the service's zone (the zone itself is in `policy`).
    pub time_zone: String,
    /// The booking rules.
    pub policy: Policy,
    /// E-mail invitees already at acceptance.
    pub invite_at_acceptance: bool,
    /// RTMP ingest URLs (without the key), primary first.
    pub ingest: Vec<String>,
    /// Sender of e-mails.
    pub mail_from: String,
    /// Session lifetime.
    pub session_ttl: SignedDuration,
    /// Wrong reservation keys before confirmation locks…
    pub key_max_failures: u32,
    /// …for this long.
    pub key_lock: SignedDuration,
    /// Play tokens live this long.
    pub play_token_ttl: SignedDuration,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` names the client; from
    /// anyone else those headers are ignored.
    pub trusted_proxies: Vec<crate::net::IpNet>,
    /// Viewer seats are taken in the database when a live grant is made (center replicas
    /// with stream nodes elsewhere: the cap holds across every node), instead of asking
    /// the one stream node in the process how many watch.
    pub exact_seats: bool,
}

impl Settings {
    /// Settings for `public_url` with the product's defaults.
    pub fn new(public_url: &str, time_zone: &str, policy: Policy) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let host = public_url
            .split("://")
            .nth(1)
            .and_then(|r| r.split([':', '/']).next())
            .unwrap_or("localhost")
            .to_owned();
        Self {
            ingest: vec![format!("rtmp://{host}:1935/live")],
            public_url,
            time_zone: time_zone.to_owned(),
            policy,
            invite_at_acceptance: false,
            mail_from: "slotcast <slotcast@localhost.localdomain>".into(),
            session_ttl: SignedDuration::from_hours(24 * 30),
            key_max_failures: 5,
            key_lock: SignedDuration::from_mins(15),
            play_token_ttl: SignedDuration::from_mins(5),
            trusted_proxies: Vec::new(),
            exact_seats: false,
        }
    }
}

/// The shared state of the center.
#[derive(Debug)]
pub struct Center {
    /// Every fact.
    pub store: Arc<dyn Store>,
    /// The one clock decisions use.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub settings: Settings,
    /// Keys.
    pub secrets: Secrets,
    /// Failed sign-ins per address across accounts.
    pub login_throttle: Throttle,
    /// Failed sign-ins per (account, address), wrong current passwords per member: a
    /// growing delay.
    pub login_backoff: Backoff,
    /// Wrong viewer passwords per address.
    pub password_throttle: Throttle,
    /// Registrations per address (each costs an argon2 hash).
    pub signup_throttle: Throttle,
    /// The NTP-backed time service, when configured (for `/time`).
    pub time: Option<Arc<TimeService>>,
    /// Viewer counts and program statistics from the stream node.
    pub stats: Arc<dyn StreamStats>,
    /// The stream node's filler workshop.
    pub filler: Arc<dyn crate::port::FillerPort>,
    /// The mail transport's health, for `/readyz`.
    pub mail_check: Option<Arc<dyn ReadinessCheck>>,
    /// How the scheduler's ticks are going (written by the scheduler, read by `/readyz`).
    pub scheduler: SchedulerHealth,
    /// The viewer listings' facts, until a write changes them.
    pub listings: crate::ops::listings::Listings,
}

/// Something `/readyz` asks.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync + std::fmt::Debug {
    /// `Err` with a reason when not ready.
    async fn check(&self) -> Result<(), String>;
}

/// Shared handle passed to handlers.
pub type AppState = Arc<Center>;

/// Counts failures per key in fixed windows; refuses once `limit` is reached until the
/// window ends. Memory is bounded: expired entries are dropped when the map grows.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: SignedDuration,
    entries: Mutex<HashMap<String, (u32, Timestamp)>>,
}

const THROTTLE_MAX_KEYS: usize = 100_000;

impl Throttle {
    /// At most `limit` failures per `window`.
    pub fn new(limit: u32, window: SignedDuration) -> Self {
        Self {
            limit,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` when `key` is throttled at `now`.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        let map = self.entries.lock().expect("throttle lock");
        match map.get(key) {
            Some((n, start)) if *n >= self.limit && now < *start + self.window => {
                let wait = (*start + self.window).duration_since(now).as_secs().max(1);
                Err(u64::try_from(wait).unwrap_or(1))
            }
            _ => Ok(()),
        }
    }

    /// Records a failure of `key`.
    pub fn fail(&self, key: &str, now: Timestamp) {
        let mut map = self.entries.lock().expect("throttle lock");
        if map.len() >= THROTTLE_MAX_KEYS {
            let window = self.window;
            map.retain(|_, (_, start)| now < *start + window);
        }
        let e = map.entry(key.to_owned()).or_insert((0, now));
        if now >= e.1 + self.window {
            *e = (0, now);
        }
        e.0 += 1;
    }

    /// Forgets `key` (after a success).
    pub fn clear(&self, key: &str) {
        self.entries.lock().expect("throttle lock").remove(key);
    }
}

/// A growing delay per key: `free` failures cost nothing, each further one doubles the
/// wait (1 s, 2 s, 4 s … at most `max`) before the next attempt is heard. A success clears
/// the key; a key idle for a day is forgotten. Memory is bounded like [`Throttle`]'s.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    max: SignedDuration,
    entries: Mutex<HashMap<String, (u32, Timestamp)>>,
}

impl Backoff {
    /// `free` failures without delay, then doubling waits up to `max`.
    pub fn new(free: u32, max: SignedDuration) -> Self {
        Self {
            free,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn delay(&self, failures: u32) -> SignedDuration {
        match failures.checked_sub(self.free) {
            None | Some(0) => SignedDuration::ZERO,
            Some(n) => SignedDuration::from_secs(1i64 << (n - 1).min(20)).min(self.max),
        }
    }

    /// `Err(seconds to wait)` while `key` must wait at `now`.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        let map = self.entries.lock().expect("backoff lock");
        match map.get(key) {
            Some(&(n, last)) if now < last + self.delay(n) => {
                let wait = (last + self.delay(n)).duration_since(now).as_secs().max(1);
                Err(u64::try_from(wait).unwrap_or(1))
            }
            _ => Ok(()),
        }
    }

    /// Records a failure of `key` at `now`.
    pub fn fail(&self, key: &str, now: Timestamp) {
        let mut map = self.entries.lock().expect("backoff lock");
        if map.len() >= THROTTLE_MAX_KEYS {
            let day = SignedDuration::from_hours(24);
            map.retain(|_, (_, last)| now < *last + day);
        }
        let e = map.entry(key.to_owned()).or_insert((0, now));
        if now >= e.1 + SignedDuration::from_hours(24) {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
    }

    /// Forgets `key` (after a success).
    pub fn clear(&self, key: &str) {
        self.entries.lock().expect("backoff lock").remove(key);
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for crate::mail::Sender {
    async fn check(&self) -> Result<(), String> {
        crate::mail::Sender::check(self)
            .await
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_free_failures() {
        let b = Backoff::new(3, SignedDuration::from_mins(15));
        let t: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        for _ in 0..3 {
            assert!(b.check("k", t).is_ok());
            b.fail("k", t);
        }
        assert!(b.check("k", t).is_ok(), "three failures are free");
        b.fail("k", t);
        assert_eq!(b.check("k", t), Err(1));
        let t = t + SignedDuration::from_secs(1);
        assert!(b.check("k", t).is_ok());
        b.fail("k", t);
        assert_eq!(b.check("k", t), Err(2));
        for _ in 0..30 {
            b.fail("k", t);
        }
        assert_eq!(b.check("k", t), Err(900), "capped");
        assert!(b.check("other", t).is_ok());
        b.clear("k");
        assert!(b.check("k", t).is_ok());
    }

    #[test]
    fn throttle_windows() {
        let t = Throttle::new(3, SignedDuration::from_mins(15));
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check("a", now).is_ok());
            t.fail("a", now);
        }
        assert_eq!(t.check("a", now), Err(900));
        assert!(t.check("b", now).is_ok());
        assert!(t.check("a", now + SignedDuration::from_mins(15)).is_ok());
        t.clear("a");
        assert!(t.check("a", now).is_ok());
    }
}
