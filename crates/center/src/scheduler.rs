//! The durable scheduler. Due work is derived from the database on every tick — expiries
//! at the confirm deadline, the confirmation reminder, the start reminder, the extension
//! offer, completion at the close of the connect window — so a restart loses nothing, and
//! every job is idempotent: state changes are conditional updates, notices are recorded
//! once with their e-mails in the same transaction. Any number of center replicas may run
//! it: each listing leases its reservations (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
//! replicas share the work instead of racing for it, and the work of a replica that died
//! comes back when its lease runs out.
//!
//! A tick that fails (the database is down, one reservation's job hits an error) is
//! retried with backoff, never given up on; the outcome of every tick is kept in the
//! center's [`SchedulerHealth`] for `/readyz` and `/metrics`. Program totals are peeked
//! from the stream node and acknowledged only once the completion that stores them has
//! been committed, so a failed completion loses nothing.

use crate::ops;
use crate::state::AppState;
use slotcast_domain::{Status, Timestamp};
use slotcast_store::{DueField, Notice, Reservation, StorageError};
use std::sync::Mutex;
use std::time::Duration;

/// Most reservations handled per kind of job per tick.
const BATCH: u32 = 200;

/// How long a replica holds the reservations it listed before another may take them: a
/// replica that dies mid-tick delays its jobs by at most this.
const WORK_LEASE_MS: i64 = 15_000;

/// Longest wait between two attempts while ticks fail.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Reservations awaiting confirmation past their deadline expire.
const EXPIRE: [(Status, DueField); 1] = [(Status::AwaitingConfirmation, DueField::ConfirmBy)];
/// Notices sent when their instant comes.
const NOTICES: [(Status, DueField); 4] = [
    (
        Status::AwaitingConfirmation,
        DueField::Notice(Notice::ConfirmReminder),
    ),
    (Status::Confirmed, DueField::Notice(Notice::StartReminder)),
    (Status::Confirmed, DueField::Notice(Notice::ExtensionOffer)),
    (Status::Live, DueField::Notice(Notice::ExtensionOffer)),
];
/// Programs whose connect window closed are completed.
const COMPLETE: [(Status, DueField); 2] = [
    (Status::Confirmed, DueField::ConnectTo),
    (Status::Live, DueField::ConnectTo),
];

/// Runs the due jobs.
#[derive(Debug, Clone)]
pub struct Scheduler {
    center: AppState,
}

/// Why a tick did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The database could not be reached; the tick stopped there, since every other job
    /// would have failed the same way.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The jobs of some reservations failed; every other due job was done.
    #[error("{failed} scheduled job(s) failed; the first, {job}: {source}")]
    Jobs {
        /// How many jobs failed.
        failed: usize,
        /// The first that failed, e.g. `completion of reservation 42`.
        job: String,
        /// Its error.
        #[source]
        source: StorageError,
    },
}

/// The failures of one tick that did not stop it.
#[derive(Debug, Default)]
struct Failures {
    count: usize,
    first: Option<(String, StorageError)>,
}

impl Failures {
    /// Keeps `e` of `job` and lets the tick go on with the other reservations — unless
    /// the database itself is unreachable: then the tick stops at once.
    fn absorb(&mut self, job: impl FnOnce() -> String, e: StorageError) -> Result<(), TickError> {
        if matches!(e, StorageError::Unavailable(_)) {
            return Err(TickError::Storage(e));
        }
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((job(), e));
        }
        Ok(())
    }

    fn finish(self, acted: usize) -> Result<usize, TickError> {
        match self.first {
            None => Ok(acted),
            Some((job, source)) => Err(TickError::Jobs {
                failed: self.count,
                job,
                source,
            }),
        }
    }
}

/// How the scheduler's ticks are going, shared with `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct SchedulerHealth(Mutex<HealthReport>);

/// A snapshot of [`SchedulerHealth`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// When a tick last finished without error.
    pub last_success: Option<Timestamp>,
    /// Failed ticks since the last good one.
    pub consecutive_failures: u32,
    /// Start of the first failed tick since the last good one; `None` while healthy.
    pub failing_since: Option<Timestamp>,
    /// The error of the last failed tick (for the log, never sent over HTTP).
    pub last_error: Option<String>,
}

impl SchedulerHealth {
    /// The current state.
    pub fn report(&self) -> HealthReport {
        self.0.lock().expect("scheduler health lock").clone()
    }

    /// Whether ticks are failing now.
    pub fn failing(&self) -> bool {
        self.report().failing_since.is_some()
    }

    /// A tick finished without error at `at`; returns the state before.
    pub fn succeeded(&self, at: Timestamp) -> HealthReport {
        let mut h = self.0.lock().expect("scheduler health lock");
        let before = h.clone();
        *h = HealthReport {
            last_success: Some(at),
            ..HealthReport::default()
        };
        before
    }

    /// A tick that started at `started` failed with `error`; returns the state before.
    pub fn failed(&self, started: Timestamp, error: &str) -> HealthReport {
        let mut h = self.0.lock().expect("scheduler health lock");
        let before = h.clone();
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.failing_since.get_or_insert(started);
        h.last_error = Some(error.to_owned());
        before
    }
}

/// The wait after the `failures`-th failed tick in a row: 1 s, 2 s, 4 s … at most 30 s.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(5);
    Duration::from_secs(1 << exp).min(MAX_BACKOFF)
}

impl Scheduler {
    /// A scheduler over `center`.
    pub fn new(center: AppState) -> Self {
        Self { center }
    }

    /// Runs every job that is due now; returns how many reservations were acted on. A job
    /// that fails for one reservation does not keep the others from running (the first
    /// such error is returned at the end); an unreachable database stops the tick at once.
    pub async fn run_once(&self) -> Result<usize, TickError> {
        let now = self.center.clock.now();
        let mut failures = Failures::default();
        let mut n = 0;
        // One read when nothing is due (most ticks), instead of a write lock per job; if
        // the read fails, the jobs run and tell their own errors.
        let any = match (self.center.store)
            .any_due(&[&EXPIRE[..], &NOTICES, &COMPLETE].concat(), now)
            .await
        {
            Ok(any) => any,
            Err(e) => {
                failures.absorb(|| "looking for due jobs".to_owned(), e)?;
                true
            }
        };
        if any {
            n += self.expire(now, &mut failures).await?;
            n += self.notices(now, &mut failures).await?;
            n += self.complete(now, &mut failures).await?;
        }
        if let Some(lease) = self.center.settings.node_lease {
            // Before a completion can see the program: the next tick's.
            if let Err(e) = crate::cluster::mark_lost(&self.center, now, lease).await {
                failures.absorb(|| "marking the programs of lost nodes".to_owned(), e)?;
            }
        }
        failures.finish(n)
    }

    /// One tick as [`Scheduler::run`] makes it: [`Scheduler::run_once`], with its
    /// outcome recorded in the center's [`SchedulerHealth`], the metrics and the log. A
    /// failure is logged when ticks start failing or the error changes, not on every
    /// retry; the recovery is logged too.
    pub async fn tick(&self) -> Result<usize, TickError> {
        let health = &self.center.scheduler;
        let started = self.center.clock.now();
        let result = self.run_once().await;
        match &result {
            Ok(_) => {
                let before = health.succeeded(self.center.clock.now());
                crate::metrics::scheduler_tick(true);
                if let Some(since) = before.failing_since {
                    tracing::info!(
                        failed_ticks = before.consecutive_failures,
                        failing_since = %since,
                        "scheduler recovered"
                    );
                }
            }
            Err(e) => {
                let error = e.to_string();
                let before = health.failed(started, &error);
                crate::metrics::scheduler_tick(false);
                let failures = before.consecutive_failures.saturating_add(1);
                if before.failing_since.is_none() {
                    tracing::error!(%error, "scheduler tick failed; retrying with backoff");
                } else if before.last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(%error, failures, "scheduler tick still failing");
                } else {
                    tracing::debug!(failures, "scheduler tick still failing, same error");
                }
            }
        }
        result
    }

    /// Ticks every `every` until `shutdown` resolves. After a failed tick it waits
    /// [`backoff`] (never less than `every`) instead, and goes back to `every` after a
    /// good one: it never stops on an error.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let result = self.tick().await;
            let wait = match &result {
                Ok(_) => every,
                Err(_) => backoff(self.center.scheduler.report().consecutive_failures).max(every),
            };
            let database_down = matches!(result, Err(TickError::Storage(_)));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wait(wait, every, database_down) => {}
            }
        }
    }

    /// Waits `wait`; while backing off from an unreachable database, checks it every
    /// `every` and ends the wait as soon as it answers again, so the scheduler is back
    /// within a tick of the database's return however long the backoff grew.
    async fn wait(&self, wait: Duration, every: Duration, database_down: bool) {
        if wait <= every || !database_down {
            return tokio::time::sleep(wait).await;
        }
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(every.min(until - tokio::time::Instant::now())).await;
            if self.center.store.ping().await.is_ok() {
                return;
            }
        }
    }

    /// The reservations in `status` due by `field`; an empty list (the failure kept)
    /// when the listing fails for a reason other than an unreachable database.
    async fn due(
        &self,
        status: Status,
        field: DueField,
        now: Timestamp,
        failures: &mut Failures,
    ) -> Result<Vec<Reservation>, TickError> {
        match self
            .center
            .store
            .due(status, field, now, BATCH, WORK_LEASE_MS)
            .await
        {
            Ok(due) => Ok(due),
            Err(e) => {
                failures.absorb(
                    || format!("listing {status} reservations due by {field:?}"),
                    e,
                )?;
                Ok(Vec::new())
            }
        }
    }

    /// Gives back the lease of a reservation whose job ran (other jobs of it may be due
    /// in this tick); should that fail, the lease simply runs out.
    async fn release(&self, r: &Reservation) {
        if let Err(e) = self.center.store.release_work(r.id).await {
            tracing::debug!(reservation = %r.id, error = %e, "scheduler lease not released");
        }
    }

    async fn expire(&self, now: Timestamp, failures: &mut Failures) -> Result<usize, TickError> {
        let [(status, field)] = EXPIRE;
        let due = self.due(status, field, now, failures).await?;
        let mut n = 0;
        for r in due {
            let done = ops::jobs::expire(&self.center, &r, now).await;
            self.release(&r).await;
            match done {
                Ok(done) => n += usize::from(done),
                Err(e) => failures.absorb(|| format!("expiry of reservation {}", r.id), e)?,
            }
        }
        Ok(n)
    }

    async fn notices(&self, now: Timestamp, failures: &mut Failures) -> Result<usize, TickError> {
        let mut n = 0;
        for (status, field) in NOTICES {
            let DueField::Notice(notice) = field else {
                continue;
            };
            for r in self.due(status, field, now, failures).await? {
                let done = ops::jobs::notice(&self.center, &r, notice, now).await;
                self.release(&r).await;
                match done {
                    Ok(done) => n += usize::from(done),
                    Err(e) => {
                        failures.absorb(|| format!("{notice:?} of reservation {}", r.id), e)?
                    }
                }
            }
        }
        Ok(n)
    }

    async fn complete(&self, now: Timestamp, failures: &mut Failures) -> Result<usize, TickError> {
        let mut n = 0;
        for (status, field) in COMPLETE {
            for r in self.due(status, field, now, failures).await? {
                let done = ops::jobs::complete(&self.center, &r, now).await;
                self.release(&r).await;
                match done {
                    Ok(done) => n += usize::from(done),
                    Err(e) => {
                        failures.absorb(|| format!("completion of reservation {}", r.id), e)?
                    }
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn health_keeps_the_first_failure_until_a_success() {
        let h = SchedulerHealth::default();
        let t = |s: &str| -> Timestamp { s.parse().unwrap() };
        assert!(!h.failing());
        h.failed(t("2026-06-01T08:00:00Z"), "database unavailable: a");
        let before = h.failed(t("2026-06-01T08:00:01Z"), "database unavailable: b");
        assert_eq!(before.consecutive_failures, 1);
        let r = h.report();
        assert_eq!(
            (
                r.consecutive_failures,
                r.failing_since,
                r.last_error.as_deref()
            ),
            (
                2,
                Some(t("2026-06-01T08:00:00Z")),
                Some("database unavailable: b")
            )
        );
        let before = h.succeeded(t("2026-06-01T08:00:05Z"));
        assert_eq!(before, r);
        assert_eq!(
            h.report(),
            HealthReport {
                last_success: Some(t("2026-06-01T08:00:05Z")),
                ..HealthReport::default()
            }
        );
    }
}
