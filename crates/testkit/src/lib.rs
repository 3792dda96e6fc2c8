//! # slotcast-testkit — what slotcast's tests share
//!
//! - [`ManualClock`]: a [`Clock`](slotcast_domain::Clock) tests set and advance, so deadline
//!   logic runs faster than real time and exactly at the instants that matter;
//! - [`TempDir`] and [`pg::TempPg`]: throw-away SQLite directories and PostgreSQL databases;
//!   [`pg::PgCluster`]: a private PostgreSQL server a test may stop and start (an outage);
//! - [`real_part_missing`]: the one place that decides whether a test whose real part
//!   (PostgreSQL, ffmpeg, …) is missing fails (in CI, `CI=true`) or is skipped loudly;
//! - [`fixtures`]: members, channels and bookings built through the domain rules;
//! - [`contract`]: the storage contract suite every backend must pass, instantiated per
//!   backend with [`store_contract!`];
//! - [`media`]: ffmpeg publishing a test pattern over RTMP, ffprobe decoding what comes
//!   back;
//! - [`browser::Browser`]: a real headless Chromium over WebDriver, with screenshots and
//!   an axe-core accessibility scan;
//! - [`ntp::NtpResponder`]: a loopback SNTP server answering with a chosen clock skew, for
//!   the time service's real UDP round trip.
//!
//! Test code only: nothing in the server depends on this crate.

pub mod browser;
pub mod contract;
pub mod fixtures;
pub mod media;
pub mod ntp;
pub mod pg;

use slotcast_domain::{Clock, Timestamp};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: Timestamp) -> Self {
        Self(Mutex::new(t))
    }

    /// Sets the time.
    pub fn set(&self, t: Timestamp) {
        *self.0.lock().expect("clock lock") = t;
    }

    /// Moves the time forward (or back, for a negative duration).
    pub fn advance(&self, d: slotcast_domain::jiff::SignedDuration) {
        let mut g = self.0.lock().expect("clock lock");
        *g += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh empty directory under the system temp dir.
    pub fn new(label: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!(
            "slotcast-{label}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Called when a test's real part (a database, ffmpeg, a browser) is not there. In CI
/// (`CI=true`) that is a failure; elsewhere the test is skipped with a loud note.
pub fn real_part_missing(what: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is required in CI but unavailable: {why}");
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "SKIPPED: {what} unavailable ({why}); run scripts/test to install it. In CI this fails."
        );
    }
}
