//! What every request handler shares.

use crate::port::StreamStats;
use crate::scheduler::SchedulerHealth;
use crate::secrets::Secrets;
use crate::time::TimeService;
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Policy, Timestamp};
use slotcast_store::{CountFrom, StorageError, Store, ThrottleCount};
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
    /// Role `center`: how long a stream node's lease lasts. The scheduler then marks the
    /// programs of a node whose lease ran out as an operator-side outage.
    pub node_lease: Option<SignedDuration>,
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
            node_lease: None,
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
    /// Sessions verified in the last second.
    pub sessions: crate::auth::Sessions,
}

/// Something `/readyz` asks.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync + std::fmt::Debug {
    /// `Err` with a reason when not ready.
    async fn check(&self) -> Result<(), String>;
}

/// Shared handle passed to handlers.
pub type AppState = Arc<Center>;

/// Where a throttle keeps its counts.
#[derive(Debug)]
enum Counts {
    /// In this process (role `all`): bounded, the counts that ran out dropped when it grows.
    Memory(Mutex<HashMap<String, ThrottleCount>>),
    /// In the database, so that every center replica counts the same failures (role
    /// `center`), under the throttle's `name`.
    Shared {
        store: Arc<dyn Store>,
        name: &'static str,
        counted: std::sync::atomic::AtomicU64,
    },
}

const THROTTLE_MAX_KEYS: usize = 100_000;
/// Every this many failures counted in the database, keys idle for a day are pruned.
const PRUNE_EVERY: u64 = 1000;

impl Counts {
    fn memory() -> Self {
        Counts::Memory(Mutex::new(HashMap::new()))
    }

    fn shared(store: Arc<dyn Store>, name: &'static str) -> Self {
        Counts::Shared {
            store,
            name,
            counted: std::sync::atomic::AtomicU64::new(0),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<ThrottleCount>, StorageError> {
        match self {
            Counts::Memory(m) => Ok(m.lock().expect("throttle lock").get(key).copied()),
            Counts::Shared { store, name, .. } => {
                store.throttle_count(&format!("{name}:{key}")).await
            }
        }
    }

    /// One more failure of `key` at `now`; the count starts again once it ran out
    /// (`reset_after` from its first or last failure).
    async fn fail(
        &self,
        key: &str,
        now: Timestamp,
        reset_after: SignedDuration,
        from: CountFrom,
    ) -> Result<(), StorageError> {
        match self {
            Counts::Memory(m) => {
                let ran_out = |c: &ThrottleCount| {
                    let anchor = match from {
                        CountFrom::First => c.first,
                        CountFrom::Last => c.last,
                    };
                    now >= anchor + reset_after
                };
                let mut map = m.lock().expect("throttle lock");
                if map.len() >= THROTTLE_MAX_KEYS {
                    map.retain(|_, c| !ran_out(c));
                }
                let fresh = ThrottleCount {
                    failures: 0,
                    first: now,
                    last: now,
                };
                let c = map.entry(key.to_owned()).or_insert(fresh);
                if ran_out(c) {
                    *c = fresh;
                }
                c.failures = c.failures.saturating_add(1);
                c.last = now;
                Ok(())
            }
            Counts::Shared {
                store,
                name,
                counted,
            } => {
                let ms = i64::try_from(reset_after.as_millis()).unwrap_or(i64::MAX);
                store
                    .throttle_fail(&format!("{name}:{key}"), now, ms, from)
                    .await?;
                if counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % PRUNE_EVERY == 0 {
                    store
                        .prune_throttles(now - SignedDuration::from_hours(24))
                        .await?;
                }
                Ok(())
            }
        }
    }

    async fn clear(&self, key: &str) -> Result<(), StorageError> {
        match self {
            Counts::Memory(m) => {
                m.lock().expect("throttle lock").remove(key);
                Ok(())
            }
            Counts::Shared { store, name, .. } => {
                store.throttle_clear(&format!("{name}:{key}")).await
            }
        }
    }
}

/// Seconds until `until`, at least one.
fn wait_secs(until: Timestamp, now: Timestamp) -> u64 {
    u64::try_from(until.duration_since(now).as_secs().max(1)).unwrap_or(1)
}

/// Counts failures per key in fixed windows; refuses once `limit` is reached until the
/// window ends. In this process (memory bounded) or, [`Throttle::shared`], in the database
/// for every replica.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: SignedDuration,
    counts: Counts,
}

impl Throttle {
    /// At most `limit` failures per `window`, counted in this process.
    pub fn new(limit: u32, window: SignedDuration) -> Self {
        Self {
            limit,
            window,
            counts: Counts::memory(),
        }
    }

    /// The same, counted in `store` under `name`: shared by every replica.
    pub fn shared(self, store: Arc<dyn Store>, name: &'static str) -> Self {
        Self {
            counts: Counts::shared(store, name),
            ..self
        }
    }

    /// The seconds `key` must wait at `now`, `None` when it may go on.
    pub async fn wait(&self, key: &str, now: Timestamp) -> Result<Option<u64>, StorageError> {
        Ok(match self.counts.get(key).await? {
            Some(c) if c.failures >= self.limit && now < c.first + self.window => {
                Some(wait_secs(c.first + self.window, now))
            }
            _ => None,
        })
    }

    /// Records a failure of `key`.
    pub async fn fail(&self, key: &str, now: Timestamp) -> Result<(), StorageError> {
        self.counts
            .fail(key, now, self.window, CountFrom::First)
            .await
    }

    /// Forgets `key` (after a success).
    pub async fn clear(&self, key: &str) -> Result<(), StorageError> {
        self.counts.clear(key).await
    }
}

/// A growing delay per key: `free` failures cost nothing, each further one doubles the
/// wait (1 s, 2 s, 4 s … at most `max`) before the next attempt is heard. A success clears
/// the key; a key idle for a day is forgotten. Kept like [`Throttle`]'s counts.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    max: SignedDuration,
    counts: Counts,
}

impl Backoff {
    /// `free` failures without delay, then doubling waits up to `max`, counted in this
    /// process.
    pub fn new(free: u32, max: SignedDuration) -> Self {
        Self {
            free,
            max,
            counts: Counts::memory(),
        }
    }

    /// The same, counted in `store` under `name`: shared by every replica.
    pub fn shared(self, store: Arc<dyn Store>, name: &'static str) -> Self {
        Self {
            counts: Counts::shared(store, name),
            ..self
        }
    }

    fn delay(&self, failures: u32) -> SignedDuration {
        match failures.checked_sub(self.free) {
            None | Some(0) => SignedDuration::ZERO,
            Some(n) => SignedDuration::from_secs(1i64 << (n - 1).min(20)).min(self.max),
        }
    }

    /// The seconds `key` must wait at `now`, `None` when it may go on.
    pub async fn wait(&self, key: &str, now: Timestamp) -> Result<Option<u64>, StorageError> {
        Ok(match self.counts.get(key).await? {
            Some(c) if now < c.last + self.delay(c.failures) => {
                Some(wait_secs(c.last + self.delay(c.failures), now))
            }
            _ => None,
        })
    }

    /// Records a failure of `key` at `now`.
    pub async fn fail(&self, key: &str, now: Timestamp) -> Result<(), StorageError> {
        self.counts
            .fail(key, now, SignedDuration::from_hours(24), CountFrom::Last)
            .await
    }

    /// Forgets `key` (after a success).
    pub async fn clear(&self, key: &str) -> Result<(), StorageError> {
        self.counts.clear(key).await
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

    async fn backoff_doubles(b: Backoff) {
        let t: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(b.wait("k", t).await.unwrap(), None);
            b.fail("k", t).await.unwrap();
        }
        assert_eq!(
            b.wait("k", t).await.unwrap(),
            None,
            "three failures are free"
        );
        b.fail("k", t).await.unwrap();
        assert_eq!(b.wait("k", t).await.unwrap(), Some(1));
        let t = t + SignedDuration::from_secs(1);
        assert_eq!(b.wait("k", t).await.unwrap(), None);
        b.fail("k", t).await.unwrap();
        assert_eq!(b.wait("k", t).await.unwrap(), Some(2));
        for _ in 0..30 {
            b.fail("k", t).await.unwrap();
        }
        assert_eq!(b.wait("k", t).await.unwrap(), Some(900), "capped");
        assert_eq!(b.wait("other", t).await.unwrap(), None);
        b.clear("k").await.unwrap();
        assert_eq!(b.wait("k", t).await.unwrap(), None);
        // A day without failures: the count is forgotten.
        for _ in 0..5 {
            b.fail("k", t).await.unwrap();
        }
        let later = t + SignedDuration::from_hours(24);
        b.fail("k", later).await.unwrap();
        assert_eq!(b.wait("k", later).await.unwrap(), None);
    }

    async fn throttle_windows(t: Throttle) {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.wait("a", now).await.unwrap(), None);
            t.fail("a", now).await.unwrap();
        }
        assert_eq!(t.wait("a", now).await.unwrap(), Some(900));
        assert_eq!(t.wait("b", now).await.unwrap(), None);
        let later = now + SignedDuration::from_mins(15);
        assert_eq!(t.wait("a", later).await.unwrap(), None);
        t.clear("a").await.unwrap();
        assert_eq!(t.wait("a", now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn backoff_doubles_after_the_free_failures_in_memory() {
        backoff_doubles(Backoff::new(3, SignedDuration::from_mins(15))).await;
    }

    #[tokio::test]
    async fn throttle_windows_in_memory() {
        throttle_windows(Throttle::new(3, SignedDuration::from_mins(15))).await;
    }

    /// The same rules, counted in the database (as replicas share them).
    #[tokio::test]
    async fn throttles_behave_alike_in_the_database() {
        let dir = slotcast_testkit::TempDir::new("throttles");
        let url = format!("sqlite://{}/db", dir.path().display());
        let store: Arc<dyn Store> = Arc::new(
            slotcast_store_sqlite::SqliteStore::open(&url)
                .await
                .unwrap(),
        );
        backoff_doubles(Backoff::new(3, SignedDuration::from_mins(15)).shared(store.clone(), "b"))
            .await;
        throttle_windows(Throttle::new(3, SignedDuration::from_mins(15)).shared(store, "t")).await;
    }
}
