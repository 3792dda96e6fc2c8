//! `booking` — reservations committed per second through `Store::create_reservation`,
//! against a raw-INSERT baseline run in the same database, by the same connection pool,
//! in the same invocation.
//!
//! For each backend (a SQLite file in a temporary directory — WAL, `synchronous = FULL`;
//! a temporary PostgreSQL database) it times `--bookings N` bookings of 3 slots each, on
//! non-overlapping slots spread over a few channels, committed by `--concurrency C` tasks
//! on a multi-thread tokio runtime:
//!
//! - **store**: `Store::create_reservation` — member check, unique slot claims, quota as a
//!   conditional update, transition log, outbox e-mail, the reservation read back, all in
//!   one transaction;
//! - **raw insert** (the baseline): per booking one transaction (`BEGIN IMMEDIATE` on
//!   SQLite, `BEGIN` on PostgreSQL, like the store) with a plain `INSERT INTO reservations`
//!   of the same columns and one multi-row plain `INSERT INTO slot_claims` of its slots —
//!   no member check, no quota, no transition log, no outbox.
//!
//! Every `NewReservation` is built before any timer starts. After an untimed warm-up of
//! both kinds, baseline and store runs alternate for `--rounds R` rounds, each on fresh
//! slots, and the median of each is reported with the ratio store / raw. A "row" of the
//! baseline is one reservation row with its slot rows, so both figures count bookings.
//! Each booking of the timed rounds is timed too: p50, p99 and the slowest are reported
//! for both kinds, and p99 / p50 of the store's is the fairness figure (how much longer
//! the unluckiest bookings wait than the typical one).
//!
//! PostgreSQL is reached through `SLOTCAST_TEST_PG` (see `slotcast_testkit::pg`); when it
//! is unreachable the benchmark fails unless `--sqlite-only` is given.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use slotcast_bench::{Lanes, Res, median, quantile, run_lanes};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{MemberId, Policy, Status};
use slotcast_store::{Channel, NewReservation, Store, Tier, to_ms};
use slotcast_store_postgres::PgStore;
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{TempDir, fixtures, pg};
use sqlx::Connection as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Slots per booking.
const SLOTS: u32 = 3;
/// Channels each run spreads its bookings over.
const CHANNELS_PER_RUN: usize = 8;

#[derive(Debug, Parser)]
#[command(
    about = "Bookings committed per second through the store vs a raw INSERT baseline, on SQLite and PostgreSQL"
)]
struct Args {
    /// Bookings per timed run.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    bookings: u32,
    /// Tasks committing bookings in parallel.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Rounds of (baseline, store); the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Run SQLite only (no PostgreSQL needed).
    #[arg(long)]
    sqlite_only: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("booking: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Res<()> {
    // Fail before spending a minute on SQLite if PostgreSQL is not there.
    if !args.sqlite_only {
        let admin = pg::admin_url();
        if let Err(e) = sqlx::PgConnection::connect(&admin).await {
            return Err(format!(
                "PostgreSQL is unreachable at {admin}: {e}\n\
                 Start it (scripts/test sets up the role), point SLOTCAST_TEST_PG at a server, \
                 or pass --sqlite-only."
            ));
        }
    }
    println!(
        "booking: {} bookings of {SLOTS} slots per run, concurrency {}, {} rounds (median reported), {} worker threads",
        args.bookings,
        args.concurrency,
        args.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    let mut results = Vec::new();
    {
        let dir = TempDir::new("bench-booking");
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let store = SqliteStore::open(&url)
            .await
            .map_err(|e| format!("open SQLite: {e}"))?;
        let raw = Raw::Sqlite(store.pool().clone());
        results.push(bench_backend("sqlite", Arc::new(store), raw, args).await?);
    }
    if !args.sqlite_only {
        let db = pg::TempPg::create()
            .await
            .ok_or("cannot create a temporary PostgreSQL database")?;
        let store = PgStore::open(&db.url)
            .await
            .map_err(|e| format!("open PostgreSQL: {e}"))?;
        let raw = Raw::Pg(store.pool().clone());
        let r = bench_backend("postgres", Arc::new(store), raw.clone(), args).await;
        raw.close().await;
        results.push(r?);
        drop(db);
    }

    println!();
    for r in &results {
        println!(
            "{:<8} store {:>8.1} bookings/s   raw insert {:>8.1} rows/s   ratio {:.2}",
            r.backend,
            r.store,
            r.raw,
            r.store / r.raw
        );
    }
    for r in &results {
        println!(
            "{:<8} latency of a booking at concurrency {}: store {}; raw insert {}",
            r.backend, args.concurrency, r.store_latency, r.raw_latency
        );
    }
    for r in &results {
        println!("RESULT booking.{}.ratio={:.2}", r.backend, r.store / r.raw);
        println!(
            "RESULT booking.{}.store.p99_over_p50={:.2}",
            r.backend,
            r.store_latency.tail()
        );
    }
    Ok(())
}

/// Median throughputs of one backend, in bookings per second, and the latency of each
/// timed booking.
struct Outcome {
    backend: &'static str,
    store: f64,
    raw: f64,
    store_latency: Spread,
    raw_latency: Spread,
}

/// p50, p99 and the slowest of a set of latencies.
struct Spread {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Spread {
    fn of(v: &mut [Duration]) -> Self {
        Spread {
            p50: quantile(v, 0.5),
            p99: quantile(v, 0.99),
            max: quantile(v, 1.0),
        }
    }

    /// p99 over p50: how much longer the unluckiest bookings wait than the typical one.
    fn tail(&self) -> f64 {
        self.p99.as_secs_f64() / self.p50.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms (p99/p50 {:.2}), max {:.1} ms",
            ms(self.p50),
            ms(self.p99),
            self.tail(),
            ms(self.max)
        )
    }
}

/// What a timed run commits bookings through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    Store,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Raw => "raw",
            Kind::Store => "store",
        }
    }
}

/// The store's own connection pool, for the baseline's raw statements.
#[derive(Debug, Clone)]
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

/// Defines `$name(pool, r)`: the baseline booking on `$db` — one transaction opened with
/// `$begin`, a plain `INSERT INTO reservations` of the columns the store writes and one
/// multi-row plain `INSERT INTO slot_claims`.
macro_rules! raw_booking {
    ($name:ident, $db:ty, $begin:literal) => {
        async fn $name(pool: &sqlx::Pool<$db>, r: &NewReservation) -> Result<(), sqlx::Error> {
            let mut tx = pool.begin_with($begin).await?;
            let s = &r.schedule;
            let invitees: Vec<&str> = r.invitees.iter().map(|e| e.as_str()).collect();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO reservations (member_id, channel_id, slots, status, start_ms, end_ms, confirm_by_ms, \
                 confirm_reminder_at_ms, connect_from_ms, connect_to_ms, start_reminder_at_ms, extension_offer_at_ms, \
                 visibility, title, genre, outline, detail, show_email, web_url, viewer_password, invitees, key_hash, \
                 slug, fee_minor, currency, invited_at_acceptance, created_at_ms, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
                 $21, $22, $23, $24, $25, $26, $27, $27) RETURNING id",
            )
            .bind(r.member.0)
            .bind(r.channel.0)
            .bind(i64::from(r.slots))
            .bind(Status::AwaitingConfirmation.as_str())
            .bind(to_ms(s.start))
            .bind(to_ms(s.end))
            .bind(to_ms(s.confirm_by))
            .bind(s.confirm_reminder_at.map(to_ms))
            .bind(to_ms(s.connect_from))
            .bind(to_ms(s.connect_to))
            .bind(to_ms(s.start_reminder_at))
            .bind(to_ms(s.extension_offer_at))
            .bind(r.visibility.as_str())
            .bind(&r.program.title)
            .bind(&r.program.genre)
            .bind(&r.program.outline)
            .bind(&r.program.detail)
            .bind(r.program.show_email)
            .bind(&r.program.web_url)
            .bind(&r.viewer_password)
            .bind(invitees.join("\n"))
            .bind(r.key_hash.to_hex())
            .bind(&r.slug)
            .bind(r.fee.minor)
            .bind(r.fee.currency.as_str())
            .bind(r.invited_at_acceptance)
            .bind(to_ms(r.created_at))
            .fetch_one(&mut *tx)
            .await?;
            let months = r
                .quota
                .iter()
                .flat_map(|(m, n)| std::iter::repeat_n(m.to_string(), *n as usize));
            let mut qb = sqlx::QueryBuilder::<$db>::new(
                "INSERT INTO slot_claims (channel_id, slot_ms, reservation_id, member_id, month) ",
            );
            qb.push_values(r.claims.iter().zip(months), |mut b, (slot, month)| {
                b.push_bind(r.channel.0)
                    .push_bind(to_ms(*slot))
                    .push_bind(id)
                    .push_bind(r.member.0)
                    .push_bind(month);
            });
            qb.build().execute(&mut *tx).await?;
            tx.commit().await
        }
    };
}

raw_booking!(raw_booking_sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE");
raw_booking!(raw_booking_pg, sqlx::Postgres, "BEGIN");

impl Raw {
    async fn book(&self, r: &NewReservation) -> Result<(), sqlx::Error> {
        match self {
            Raw::Sqlite(p) => raw_booking_sqlite(p, r).await,
            Raw::Pg(p) => raw_booking_pg(p, r).await,
        }
    }

    /// Opens up to `n` connections (at most the pool's size) so no timed run pays for
    /// connecting.
    async fn prewarm(&self, n: u32) -> Res<()> {
        async fn hold<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, n: u32) -> Res<()> {
            let n = n.min(pool.options().get_max_connections());
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(pool.acquire().await.map_err(|e| format!("connect: {e}"))?);
            }
            Ok(())
        }
        match self {
            Raw::Sqlite(p) => hold(p, n).await,
            Raw::Pg(p) => hold(p, n).await,
        }
    }

    async fn count(&self, table: &'static str) -> Res<i64> {
        let sql = match table {
            "reservations" => "SELECT count(*) FROM reservations",
            "slot_claims" => "SELECT count(*) FROM slot_claims",
            "transitions" => "SELECT count(*) FROM transitions",
            "outbox" => "SELECT count(*) FROM outbox",
            other => return Err(format!("no count query for {other}")),
        };
        let n = match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Raw::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        };
        n.map_err(|e| format!("count {table}: {e}"))
    }

    async fn close(&self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Pg(p) => p.close().await,
        }
    }
}

/// Where the bookings of one run go, and who makes them.
struct Plan {
    kind: Kind,
    /// `work[t]`: the bookings task `t` commits, in order.
    work: Vec<Vec<NewReservation>>,
}

/// The bookings of one run: booking `j` is made by task `j % C` for that task's member (so
/// no two tasks contend for one quota row) on channel `j % CHANNELS_PER_RUN`, the
/// `j / CHANNELS_PER_RUN`-th 3-slot block from 2026-06-02T00:00Z. Blocks are 30 minutes
/// and aligned to month starts, so each booking's quota falls in one month.
fn plan(kind: Kind, policy: &Policy, channels: &[Channel], members: &[MemberId], n: u32) -> Plan {
    let now = fixtures::now();
    let first = fixtures::ts("2026-06-02T00:00:00Z");
    let block = SignedDuration::from_mins(i64::from(policy.slot.minutes() * SLOTS));
    let mut work: Vec<Vec<NewReservation>> = vec![Vec::new(); members.len()];
    for j in 0..n as usize {
        let channel = &channels[j % channels.len()];
        let index = i32::try_from(j / channels.len()).expect("fewer than 2^31 blocks");
        let start = first + block * index;
        let task = j % members.len();
        work[task].push(fixtures::booking(
            policy,
            channel,
            members[task],
            start,
            SLOTS,
            now,
        ));
    }
    Plan { kind, work }
}

/// Commits a plan's bookings with one task per work list; returns the wall time.
async fn execute(store: &Arc<dyn Store>, raw: &Raw, plan: Plan, expected: u32) -> Res<Lanes> {
    let kind = plan.kind;
    let (store, raw) = (Arc::clone(store), raw.clone());
    run_lanes(
        plan.work,
        expected,
        kind.label(),
        move |r: NewReservation| {
            let (store, raw) = (Arc::clone(&store), raw.clone());
            async move {
                let slug = r.slug.clone();
                match kind {
                    Kind::Store => store
                        .create_reservation(r)
                        .await
                        .map(drop)
                        .map_err(|e| format!("store booking {slug}: {e}")),
                    Kind::Raw => raw
                        .book(&r)
                        .await
                        .map_err(|e| format!("raw booking {slug}: {e}")),
                }
            }
        },
    )
    .await
}

async fn bench_backend(
    backend: &'static str,
    store: Arc<dyn Store>,
    raw: Raw,
    args: &Args,
) -> Res<Outcome> {
    let policy = Policy {
        quota_slots_per_month: 1_000_000,
        ..Policy::default()
    };
    let mut members = Vec::new();
    for t in 0..args.concurrency {
        members.push(
            fixtures::member(&*store, &format!("bench-{t}"), Tier::Premium)
                .await
                .id,
        );
    }

    // Build every booking before any timer starts; every run (the untimed warm-up, round 0,
    // included) on channels of its own, so it has fresh slots and never conflicts.
    let warm_n = (args.bookings / 10).max(args.concurrency);
    let mut runs = Vec::new();
    for kind in [Kind::Raw, Kind::Store] {
        let ch = channels_of(&*store, &format!("warmup-{}", kind.label())).await;
        runs.push((0, plan(kind, &policy, &ch, &members, warm_n), warm_n));
    }
    for round in 1..=args.rounds {
        for kind in [Kind::Raw, Kind::Store] {
            let ch = channels_of(&*store, &format!("r{round}-{}", kind.label())).await;
            runs.push((
                round,
                plan(kind, &policy, &ch, &members, args.bookings),
                args.bookings,
            ));
        }
    }

    raw.prewarm(args.concurrency).await?;
    let (mut raw_rates, mut store_rates) = (Vec::new(), Vec::new());
    let (mut raw_took, mut store_took) = (Vec::new(), Vec::new());
    let mut round_line = String::new();
    let total: u32 = runs.iter().map(|r| r.2).sum();
    let store_total: u32 = runs
        .iter()
        .filter(|r| r.1.kind == Kind::Store)
        .map(|r| r.2)
        .sum();
    for (round, p, n) in runs {
        let kind = p.kind;
        let Lanes { elapsed, latencies } = execute(&store, &raw, p, n).await?;
        let rate = f64::from(n) / elapsed.as_secs_f64();
        if round == 0 {
            continue;
        }
        match kind {
            Kind::Raw => {
                raw_rates.push(rate);
                raw_took.extend(latencies);
                round_line = format!(
                    "{backend:<8} round {round}  raw insert {rate:>8.1} rows/s ({:.2} s)",
                    elapsed.as_secs_f64()
                );
            }
            Kind::Store => {
                store_rates.push(rate);
                store_took.extend(latencies);
                println!(
                    "{round_line}   store {rate:>8.1} bookings/s ({:.2} s)",
                    elapsed.as_secs_f64()
                );
            }
        }
    }

    // Everything the runs claim to have committed is there.
    let slots = i64::from(SLOTS);
    let checks = [
        ("reservations", i64::from(total)),
        ("slot_claims", i64::from(total) * slots),
        ("transitions", i64::from(store_total)),
        ("outbox", i64::from(store_total)),
    ];
    for (table, want) in checks {
        let got = raw.count(table).await?;
        if got != want {
            return Err(format!(
                "{backend}: {table} holds {got} rows, expected {want}"
            ));
        }
    }

    Ok(Outcome {
        backend,
        store: median(&mut store_rates),
        raw: median(&mut raw_rates),
        store_latency: Spread::of(&mut store_took),
        raw_latency: Spread::of(&mut raw_took),
    })
}

/// `CHANNELS_PER_RUN` new channels named `{label}-{i}`.
async fn channels_of(store: &dyn Store, label: &str) -> Vec<Channel> {
    let mut out = Vec::new();
    for i in 0..CHANNELS_PER_RUN {
        out.push(fixtures::channel(store, &format!("{label}-{i}"), 100, 500).await);
    }
    out
}
