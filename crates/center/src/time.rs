//! # Server time
//!
//! This module owns **the one [`Clock`] every center decision uses** (booking windows,
//! confirm deadlines, connect windows, the time in every API response) and everything that
//! makes it right: querying the configured SNTP servers (`time.ntp_servers`, `host:port`),
//! turning their answers into an offset from the system clock, keeping that offset smooth,
//! and falling back to the plain system clock, reported as such, when NTP is unavailable.
//!
//! What it must **not** do:
//! - **never step the system clock**: it only measures an offset and adds it to the system
//!   time it reads (setting the machine's clock is the broadcaster tool's business, and
//!   only when asked explicitly);
//! - **never block a request on the network**: [`TimeService::now`](Clock::now) and
//!   [`TimeService::status`] only read a lock held for a few arithmetic operations; the
//!   network exchange happens in [`TimeService::sync_once`], which the background task of
//!   [`TimeService::spawn`] drives, and no lock is held across it.
//!
//! ## How the offset is measured
//! [`TimeService::sync_once`] asks the servers in their configured order, each with a
//! 2-second budget for name resolution and the exchange together; the first good answer
//! wins. A good answer gives the offset (server clock − system clock) and an error
//! estimate of half the round-trip delay (rsntp does not expose the server's root
//! dispersion, so that cannot be added).
//!
//! ## How the offset is applied (smoothness)
//! - The **first** good sync (also the first one after a fallback to the system clock)
//!   applies the measured offset at once.
//! - Later syncs **slew**: the applied offset moves linearly towards the newly measured one
//!   at [`SLEW_RATE`] (5 %: at most 50 ms of correction per second of real time), so the
//!   clock never jumps and never runs backwards, it only runs at 95–105 % speed for a
//!   while. A 500 ms correction takes 10 s, a 5 s one 100 s.
//! - A correction larger than 5 s is **stepped** at once (logged as a warning): such a
//!   difference means the clock is plainly wrong, and being right soon matters more than
//!   being smooth.
//!
//! While a slew is under way the reported `estimated_error_ms` includes the part of the
//! correction not yet applied, and it grows by 15 ppm of the time since the last good sync
//! (NTP's customary frequency-tolerance bound), so a status read later is honest about its
//! age.
//!
//! ## Fallback
//! When every server fails, the last applied offset is kept as long as the last good sync
//! is at most 15 minutes old (monotonic time). After that the service falls back to the
//! system clock: source `system`, offset 0, `estimated_error_ms` = 1000 (unknown), and one
//! warning is logged for the transition. The next good answer switches back to NTP
//! (applied at once, like a first sync). `ntp_server` and `last_sync` keep describing the
//! last good sync even after a fallback, so an operator can see how stale NTP is; clients
//! must look at `source`.

use serde::Serialize;
use slotcast_domain::Clock;
use slotcast_domain::jiff::Timestamp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// Budget for one server: name resolution plus the SNTP exchange.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the last applied offset stays in use while every server fails.
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Corrections larger than this (ms) are applied at once instead of slewed.
const STEP_THRESHOLD_MS: f64 = 5_000.0;

/// How fast a correction is slewed in: milliseconds of offset per millisecond of real
/// time (0.05 = 50 ms per second).
pub const SLEW_RATE: f64 = 0.05;

/// The `estimated_error_ms` reported for the system clock: not known, assumed to be within
/// a second of true time.
pub const SYSTEM_ERROR_MS: f64 = 1_000.0;

/// How fast the error estimate grows with the age of the last sync (ms per second:
/// 15 ppm).
const DRIFT_MS_PER_S: f64 = 0.015;

/// The port used when a server is given without one.
const NTP_PORT: u16 = 123;

/// The shortest interval [`TimeService::spawn`] accepts.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Where the current time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// The system clock corrected by an offset measured with an NTP server.
    Ntp,
    /// The plain system clock (no servers configured, none reachable yet, or the last
    /// good sync is too old).
    System,
}

impl TimeSource {
    /// The wire name: `"ntp"` or `"system"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Ntp => "ntp",
            TimeSource::System => "system",
        }
    }
}

impl std::fmt::Display for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of the time service, for `GET /time`, logs and the admin view.
#[derive(Debug, Clone, Serialize)]
pub struct TimeStatus {
    /// Where [`Clock::now`] currently gets its time; serialises as `"ntp"` or `"system"`.
    pub source: TimeSource,
    /// The server (as configured) of the last good sync, if there was one. Kept after a
    /// fallback to the system clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntp_server: Option<String>,
    /// When the last good sync happened, on the server's clock (RFC 3339).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_opt_timestamp"
    )]
    pub last_sync: Option<Timestamp>,
    /// The offset applied right now: corrected clock − system clock, in milliseconds
    /// (0 for the system source).
    pub offset_ms: f64,
    /// An estimate of how far [`Clock::now`] may be from true time, in milliseconds: half
    /// the round-trip delay of the last good sync, plus any correction still being slewed
    /// in, plus 15 ppm of the sync's age; [`SYSTEM_ERROR_MS`] for the system source.
    pub estimated_error_ms: f64,
}

fn serialize_opt_timestamp<S: serde::Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// The service has no servers configured; it runs on the system clock.
    #[error("no NTP servers configured")]
    NoServers,
    /// Every configured server failed; one entry per server, in the order asked.
    #[error("no NTP server gave a usable answer: {}", list_failures(.0))]
    AllFailed(Vec<ServerFailure>),
}

fn list_failures(failures: &[ServerFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One server's failure within a sync.
#[derive(Debug, thiserror::Error)]
#[error("{server}: {error}")]
pub struct ServerFailure {
    /// The server as configured.
    pub server: String,
    /// What went wrong.
    #[source]
    pub error: MeasureError,
}

/// Why one server gave no usable measurement.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The server name could not be resolved.
    #[error("cannot resolve: {0}")]
    Resolve(#[source] std::io::Error),
    /// The server name resolved to no address.
    #[error("resolves to no address")]
    NoAddress,
    /// No answer (resolution and exchange together) within the per-server budget.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The SNTP exchange failed: a socket error (e.g. connection refused), or an answer
    /// rsntp rejected (wrong originate timestamp, unsynchronised server, kiss-o'-death, …).
    #[error("SNTP exchange failed: {0}")]
    Exchange(#[source] rsntp::SynchronizationError),
    /// The answer produced a non-finite offset or delay.
    #[error("implausible answer")]
    Implausible,
}

/// The server's time: the system clock plus an offset measured with NTP. See the module
/// documentation for the rules.
#[derive(Debug)]
pub struct TimeService {
    servers: Vec<String>,
    state: RwLock<State>,
}

impl TimeService {
    /// A service for `servers` (`host:port`, or a bare host/IP for port 123), asked in this
    /// order. It starts on the system clock; call [`sync_once`](Self::sync_once) or
    /// [`spawn`](Self::spawn) to bring NTP in.
    pub fn new(servers: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            servers,
            state: RwLock::new(State::new(Instant::now())),
        })
    }

    /// Asks the servers in order (2 s each at most) and applies the first good answer.
    /// When all fail, keeps the current offset unless the last good sync is older than
    /// 15 minutes, in which case it falls back to the system clock (logged once).
    ///
    /// # Errors
    /// [`TimeError::NoServers`] when none are configured (nothing changes: the service
    /// stays on the system clock); [`TimeError::AllFailed`] when no server answered
    /// usefully.
    pub async fn sync_once(&self) -> Result<(), TimeError> {
        if self.servers.is_empty() {
            return Err(TimeError::NoServers);
        }
        let mut failures = Vec::new();
        for server in &self.servers {
            match measure(server, QUERY_TIMEOUT).await {
                Ok(m) => {
                    let (offset_ms, error_ms) = (m.offset_ms, m.error_ms);
                    let outcome = self.write().apply(m, Instant::now());
                    log_applied(server, offset_ms, error_ms, outcome, &failures);
                    return Ok(());
                }
                Err(error) => {
                    tracing::debug!(server = %server, error = %error, "NTP query failed");
                    failures.push(ServerFailure {
                        server: server.clone(),
                        error,
                    });
                }
            }
        }
        let err = TimeError::AllFailed(failures);
        let outcome = self.write().record_failure(Instant::now());
        match outcome {
            Failure::FellBack => tracing::warn!(
                error = %err,
                "no good NTP sync for over {} minutes; falling back to the system clock",
                STALE_AFTER.as_secs() / 60
            ),
            Failure::First {
                source: TimeSource::Ntp,
            } => tracing::info!(
                error = %err,
                "NTP sync failed; keeping the last offset for now"
            ),
            Failure::First {
                source: TimeSource::System,
            } => tracing::warn!(
                error = %err,
                "NTP sync failed; using the system clock"
            ),
            Failure::Repeated => tracing::debug!(error = %err, "NTP sync failed again"),
        }
        Err(err)
    }

    /// Starts the background task: syncs now and then every `interval` (at least one
    /// second). Failures are logged, never fatal. With no servers configured the task
    /// does nothing and the service stays on the system clock. Abort the returned handle
    /// to stop it.
    pub fn spawn(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        if self.servers.is_empty() {
            tracing::info!("no NTP servers configured; using the system clock");
            return tokio::spawn(async {});
        }
        let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            loop {
                ticker.tick().await;
                // Outcomes are logged by `sync_once`.
                let _ = self.sync_once().await;
            }
        })
    }

    /// The current state, for `GET /time` and the admin view.
    pub fn status(&self) -> TimeStatus {
        self.read().status_at(Instant::now())
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for TimeService {
    /// The system time plus the offset applied right now.
    fn now(&self) -> Timestamp {
        let offset_ms = self.read().offset_at(Instant::now());
        add_ms(Timestamp::now(), offset_ms)
    }
}

fn log_applied(
    server: &str,
    offset_ms: f64,
    error_ms: f64,
    outcome: Applied,
    failures: &[ServerFailure],
) {
    match outcome {
        Applied::First => tracing::info!(
            server,
            offset_ms,
            error_ms,
            skipped = failures.len(),
            "time synchronised with NTP"
        ),
        Applied::Step { from_ms } => tracing::warn!(
            server,
            offset_ms,
            from_ms,
            "NTP offset changed by more than {} s; stepping",
            STEP_THRESHOLD_MS / 1000.0
        ),
        Applied::Slew => tracing::debug!(server, offset_ms, error_ms, "NTP offset measured"),
    }
}

/// `t` moved by `ms` milliseconds (`t` itself if that leaves the representable range).
fn add_ms(t: Timestamp, ms: f64) -> Timestamp {
    if ms == 0.0 {
        return t;
    }
    let nanos = (ms * 1e6).round() as i128;
    Timestamp::from_nanosecond(t.as_nanosecond().saturating_add(nanos)).unwrap_or(t)
}

// ---------------------------------------------------------------------------------------
// The network part: one server, one measurement.

/// One good answer from a server.
#[derive(Debug, Clone, PartialEq)]
struct Measurement {
    /// The server as configured.
    server: String,
    /// Server clock − system clock, ms.
    offset_ms: f64,
    /// Half the round-trip delay, ms.
    error_ms: f64,
    /// The server's time when the answer arrived.
    server_time: Timestamp,
}

/// Asks one server, within `budget` for resolution and exchange together.
async fn measure(server: &str, budget: Duration) -> Result<Measurement, MeasureError> {
    let exchange = async {
        let addr = resolve(server).await?;
        let bind: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let client = rsntp::AsyncSntpClient::with_config(
            rsntp::Config::default().bind_address(bind).timeout(budget),
        );
        let result = client
            .synchronize(addr)
            .await
            .map_err(MeasureError::Exchange)?;
        let system_now = Timestamp::now();
        let offset_ms = result.clock_offset().as_secs_f64() * 1000.0;
        let delay_ms = result.round_trip_delay().as_secs_f64() * 1000.0;
        if !offset_ms.is_finite() || !delay_ms.is_finite() {
            return Err(MeasureError::Implausible);
        }
        Ok(Measurement {
            server: server.to_owned(),
            offset_ms,
            error_ms: delay_ms.max(0.0) / 2.0,
            server_time: add_ms(system_now, offset_ms),
        })
    };
    tokio::time::timeout(budget, exchange)
        .await
        .map_err(|_| MeasureError::Timeout(budget))?
}

/// The first address of `server`, with port 123 when none is given.
async fn resolve(server: &str) -> Result<SocketAddr, MeasureError> {
    let target = with_default_port(server);
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(addr);
    }
    tokio::net::lookup_host(target.as_str())
        .await
        .map_err(MeasureError::Resolve)?
        .next()
        .ok_or(MeasureError::NoAddress)
}

/// `server` as `host:port`: `"ntp.example"` → `"ntp.example:123"`, `"::1"` →
/// `"[::1]:123"`; anything with a port stays as it is.
fn with_default_port(server: &str) -> String {
    let server = server.trim();
    if server.parse::<SocketAddr>().is_ok() {
        server.to_owned()
    } else if let Ok(ip) = server.parse::<IpAddr>() {
        SocketAddr::new(ip, NTP_PORT).to_string()
    } else if (server.starts_with('[') && server.ends_with(']')) || !server.contains(':') {
        format!("{server}:{NTP_PORT}")
    } else {
        server.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// The pure part: what a measurement or a failure does to the state.

/// What applying a measurement did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Applied {
    /// First sync (or first after a fallback): applied at once.
    First,
    /// A correction beyond the step threshold: applied at once.
    Step { from_ms: f64 },
    /// Slewing towards the new offset.
    Slew,
}

/// What a failed sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The first failure after a success (or since start); the source is unchanged.
    First { source: TimeSource },
    /// Another failure; nothing changed.
    Repeated,
    /// The last good sync became too old: now on the system clock.
    FellBack,
}

#[derive(Debug)]
struct State {
    source: TimeSource,
    /// The applied offset at `slew_start` (ms).
    from_ms: f64,
    /// The offset being slewed towards (ms).
    target_ms: f64,
    slew_start: Instant,
    server: Option<String>,
    last_sync: Option<Timestamp>,
    /// Monotonic time of the last good sync.
    last_good: Option<Instant>,
    /// Half the round trip of the last good sync (ms).
    measured_error_ms: f64,
    /// Whether the last sync failed (to log the first failure of a streak only).
    failing: bool,
}

impl State {
    fn new(at: Instant) -> Self {
        Self {
            source: TimeSource::System,
            from_ms: 0.0,
            target_ms: 0.0,
            slew_start: at,
            server: None,
            last_sync: None,
            last_good: None,
            measured_error_ms: 0.0,
            failing: false,
        }
    }

    /// The offset applied at `at` (ms).
    fn offset_at(&self, at: Instant) -> f64 {
        if self.source == TimeSource::System {
            return 0.0;
        }
        let elapsed_ms = at.saturating_duration_since(self.slew_start).as_secs_f64() * 1000.0;
        let max_move = elapsed_ms * SLEW_RATE;
        let diff = self.target_ms - self.from_ms;
        if diff.abs() <= max_move {
            self.target_ms
        } else {
            self.from_ms + diff.signum() * max_move
        }
    }

    /// Takes in a good measurement made at `at`.
    fn apply(&mut self, m: Measurement, at: Instant) -> Applied {
        let outcome = if self.source == TimeSource::System {
            Applied::First
        } else {
            let current = self.offset_at(at);
            if (m.offset_ms - current).abs() > STEP_THRESHOLD_MS {
                Applied::Step { from_ms: current }
            } else {
                self.from_ms = current;
                Applied::Slew
            }
        };
        if outcome != Applied::Slew {
            self.from_ms = m.offset_ms;
        }
        self.target_ms = m.offset_ms;
        self.slew_start = at;
        self.source = TimeSource::Ntp;
        self.server = Some(m.server);
        self.last_sync = Some(m.server_time);
        self.last_good = Some(at);
        self.measured_error_ms = m.error_ms;
        self.failing = false;
        outcome
    }

    /// Takes in a sync at `at` where every server failed.
    fn record_failure(&mut self, at: Instant) -> Failure {
        let first = !self.failing;
        self.failing = true;
        let stale = self
            .last_good
            .is_some_and(|good| at.saturating_duration_since(good) > STALE_AFTER);
        if self.source == TimeSource::Ntp && stale {
            self.source = TimeSource::System;
            self.from_ms = 0.0;
            self.target_ms = 0.0;
            self.slew_start = at;
            return Failure::FellBack;
        }
        if first {
            Failure::First {
                source: self.source,
            }
        } else {
            Failure::Repeated
        }
    }

    fn status_at(&self, at: Instant) -> TimeStatus {
        let (offset_ms, estimated_error_ms) = match self.source {
            TimeSource::System => (0.0, SYSTEM_ERROR_MS),
            TimeSource::Ntp => {
                let offset = self.offset_at(at);
                let age_s = self
                    .last_good
                    .map_or(0.0, |g| at.saturating_duration_since(g).as_secs_f64());
                let error = self.measured_error_ms
                    + (self.target_ms - offset).abs()
                    + age_s * DRIFT_MS_PER_S;
                (offset, error)
            }
        };
        TimeStatus {
            source: self.source,
            ntp_server: self.server.clone(),
            last_sync: self.last_sync,
            offset_ms,
            estimated_error_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-6;

    fn m(offset_ms: f64) -> Measurement {
        Measurement {
            server: "ntp.test:123".into(),
            offset_ms,
            error_ms: 2.0,
            server_time: Timestamp::UNIX_EPOCH,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn starts_on_the_system_clock() {
        let t0 = Instant::now();
        let s = State::new(t0);
        let st = s.status_at(t0 + secs(5));
        assert_eq!(st.source, TimeSource::System);
        assert_eq!(st.offset_ms, 0.0);
        assert_eq!(st.estimated_error_ms, SYSTEM_ERROR_MS);
        assert_eq!(st.ntp_server, None);
        assert_eq!(st.last_sync, None);
    }

    #[test]
    fn first_sync_applies_the_offset_at_once() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        assert_eq!(s.apply(m(1500.0), t0), Applied::First);
        assert!((s.offset_at(t0) - 1500.0).abs() < EPS);
        let st = s.status_at(t0);
        assert_eq!(st.source, TimeSource::Ntp);
        assert_eq!(st.ntp_server.as_deref(), Some("ntp.test:123"));
        assert_eq!(st.last_sync, Some(Timestamp::UNIX_EPOCH));
        assert!((st.estimated_error_ms - 2.0).abs() < EPS);
    }

    #[test]
    fn later_corrections_are_slewed_at_the_slew_rate() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(1000.0), t0);
        let t1 = t0 + secs(60);
        assert_eq!(s.apply(m(1400.0), t1), Applied::Slew);
        assert!(
            (s.offset_at(t1) - 1000.0).abs() < EPS,
            "no jump at the sync"
        );
        // 50 ms per second: after 2 s, 100 ms of the 400 ms are in.
        assert!((s.offset_at(t1 + secs(2)) - 1100.0).abs() < EPS);
        // Error includes the part not yet applied.
        assert!(
            (s.status_at(t1 + secs(2)).estimated_error_ms - (2.0 + 300.0 + 2.0 * DRIFT_MS_PER_S))
                .abs()
                < EPS
        );
        // Done after 8 s, and stays there.
        assert!((s.offset_at(t1 + secs(8)) - 1400.0).abs() < EPS);
        assert!((s.offset_at(t1 + secs(100)) - 1400.0).abs() < EPS);
    }

    #[test]
    fn slewing_backwards_never_runs_the_clock_backwards() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(0.0), t0);
        s.apply(m(-4000.0), t0);
        let mut prev = f64::NEG_INFINITY;
        for ms in (0..100_000).step_by(250) {
            let elapsed = Duration::from_millis(ms);
            // corrected time (ms since t0) = elapsed + offset
            let corrected = elapsed.as_secs_f64() * 1000.0 + s.offset_at(t0 + elapsed);
            assert!(corrected >= prev, "clock ran backwards at {ms} ms");
            prev = corrected;
        }
        assert!((s.offset_at(t0 + secs(80)) + 4000.0).abs() < EPS);
    }

    #[test]
    fn a_resync_mid_slew_starts_from_the_applied_offset() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(0.0), t0);
        s.apply(m(1000.0), t0);
        let t1 = t0 + secs(4); // 200 ms in
        s.apply(m(0.0), t1);
        assert!((s.offset_at(t1) - 200.0).abs() < EPS);
        assert!((s.offset_at(t1 + secs(2)) - 100.0).abs() < EPS);
        assert!(s.offset_at(t1 + secs(10)).abs() < EPS);
    }

    #[test]
    fn corrections_beyond_five_seconds_are_stepped() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(100.0), t0);
        assert_eq!(
            s.apply(m(-5200.0), t0 + secs(1)),
            Applied::Step { from_ms: 100.0 }
        );
        assert!((s.offset_at(t0 + secs(1)) + 5200.0).abs() < EPS);
        // Exactly at the threshold: still slewed.
        assert_eq!(s.apply(m(-200.0), t0 + secs(2)), Applied::Slew);
    }

    #[test]
    fn failures_keep_the_offset_until_stale_then_fall_back_once() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(1500.0), t0);
        assert_eq!(
            s.record_failure(t0 + secs(60)),
            Failure::First {
                source: TimeSource::Ntp
            }
        );
        assert_eq!(s.record_failure(t0 + secs(120)), Failure::Repeated);
        // Exactly 15 min: still NTP.
        assert_eq!(s.record_failure(t0 + STALE_AFTER), Failure::Repeated);
        let st = s.status_at(t0 + STALE_AFTER);
        assert_eq!(st.source, TimeSource::Ntp);
        assert!((st.offset_ms - 1500.0).abs() < EPS);
        // Error grew by 15 ppm of 900 s = 13.5 ms.
        assert!((st.estimated_error_ms - 15.5).abs() < EPS);

        let late = t0 + STALE_AFTER + secs(1);
        assert_eq!(s.record_failure(late), Failure::FellBack);
        let st = s.status_at(late);
        assert_eq!(st.source, TimeSource::System);
        assert_eq!(st.offset_ms, 0.0);
        assert_eq!(st.estimated_error_ms, SYSTEM_ERROR_MS);
        // The last good sync is still described.
        assert_eq!(st.ntp_server.as_deref(), Some("ntp.test:123"));
        assert!(st.last_sync.is_some());
        // No second fallback warning.
        assert_eq!(s.record_failure(late + secs(60)), Failure::Repeated);
    }

    #[test]
    fn failing_without_any_sync_stays_on_the_system_clock() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        assert_eq!(
            s.record_failure(t0 + secs(3600)),
            Failure::First {
                source: TimeSource::System
            }
        );
        assert_eq!(s.record_failure(t0 + secs(7200)), Failure::Repeated);
        assert_eq!(s.status_at(t0).source, TimeSource::System);
    }

    #[test]
    fn after_a_fallback_the_next_good_sync_applies_at_once() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        s.apply(m(1500.0), t0);
        let late = t0 + STALE_AFTER + secs(1);
        assert_eq!(s.record_failure(late), Failure::FellBack);
        assert_eq!(s.apply(m(1700.0), late), Applied::First);
        assert!((s.offset_at(late) - 1700.0).abs() < EPS);
        // And a new failure streak logs again.
        assert_eq!(
            s.record_failure(late + secs(1)),
            Failure::First {
                source: TimeSource::Ntp
            }
        );
    }

    #[test]
    fn offsets_move_timestamps_in_both_directions() {
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(add_ms(t, 1500.0).as_millisecond(), 1_700_000_001_500);
        assert_eq!(add_ms(t, -2500.25).as_microsecond(), 1_699_999_997_499_750);
        assert_eq!(add_ms(t, 0.0), t);
        assert_eq!(add_ms(t, f64::MAX), t, "out of range leaves the time alone");
    }

    #[test]
    fn servers_get_the_default_port() {
        assert_eq!(with_default_port("127.0.0.1:9123"), "127.0.0.1:9123");
        assert_eq!(with_default_port("127.0.0.1"), "127.0.0.1:123");
        assert_eq!(with_default_port("::1"), "[::1]:123");
        assert_eq!(with_default_port("[::1]"), "[::1]:123");
        assert_eq!(with_default_port("[::1]:9"), "[::1]:9");
        assert_eq!(with_default_port("pool.ntp.org"), "pool.ntp.org:123");
        assert_eq!(with_default_port("pool.ntp.org:4123"), "pool.ntp.org:4123");
    }

    #[test]
    fn status_serialises_as_the_api_says() {
        let t0 = Instant::now();
        let mut s = State::new(t0);
        let v = serde_json::to_value(s.status_at(t0)).unwrap();
        assert_eq!(v["source"], "system");
        assert!(v.get("ntp_server").is_none());
        assert!(v.get("last_sync").is_none());
        s.apply(m(10.0), t0);
        let v = serde_json::to_value(s.status_at(t0)).unwrap();
        assert_eq!(v["source"], "ntp");
        assert_eq!(v["ntp_server"], "ntp.test:123");
        assert_eq!(v["last_sync"], "1970-01-01T00:00:00Z");
        assert_eq!(v["offset_ms"], 10.0);
        assert_eq!(TimeSource::Ntp.to_string(), "ntp");
        assert_eq!(TimeSource::System.to_string(), "system");
    }

    #[tokio::test]
    async fn no_servers_is_an_error_and_changes_nothing() {
        let svc = TimeService::new(vec![]);
        assert!(matches!(svc.sync_once().await, Err(TimeError::NoServers)));
        assert_eq!(svc.status().source, TimeSource::System);
        let handle = Arc::clone(&svc).spawn(Duration::from_secs(60));
        handle.await.unwrap();
        assert_eq!(svc.status().source, TimeSource::System);
    }
}
