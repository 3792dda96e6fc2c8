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
    /// Failed logins per account and per address.
    pub login_throttle: Throttle,
    /// Wrong viewer passwords per address.
    pub password_throttle: Throttle,
    /// Registrations per address (each costs an argon2 hash).
    pub signup_throttle: Throttle,
    /// The NTP-backed time service, when configured (for `/time`).
    pub time: Option<Arc<TimeService>>,
    /// Viewer counts and program statistics from the stream node.
    pub stats: Arc<dyn StreamStats>,
    /// The mail transport's health, for `/readyz`.
    pub mail_check: Option<Arc<dyn ReadinessCheck>>,
    /// How the scheduler's ticks are going (written by the scheduler, read by `/readyz`).
    pub scheduler: SchedulerHealth,
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
