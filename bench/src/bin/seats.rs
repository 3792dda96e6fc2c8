//! `seats` — viewer seats granted per second on PostgreSQL under many concurrent play
//! requests for one channel, against the raw conditional `UPDATE` alone, run in the same
//! database, by the same connection pool, in the same invocation.
//!
//! - **take_seat**: `Store::take_seat` as a center replica calls it for a live play grant:
//!   keep a seat the holder has (one `UPDATE … RETURNING`), else take the lowest free seat
//!   of the channel in one statement (`UPDATE … WHERE seat_no = (SELECT … LIMIT 1 FOR
//!   UPDATE SKIP LOCKED) RETURNING`), each in its own transaction;
//! - **raw conditional UPDATE** (the baseline): each request already knows its seat and
//!   takes it with one autocommitted `UPDATE seats SET holder = $1, lease_until_ms = $2
//!   WHERE channel_id = $3 AND seat_no = $4 AND lease_until_ms <= $5` — no search, no
//!   contention on the same rows, no transaction of its own.
//!
//! `--requests N` requests per run (the channel has exactly N seats, made before any timer
//! starts), `--concurrency C` of them in flight at once (C tasks, each its share in turn).
//! The seats are freed between runs; baseline and store alternate for `--rounds R`
//! rounds after an untimed warm-up, and the median of each is reported with the ratio.
//! Every run must grant every seat once: a lost or doubled seat fails the benchmark.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use slotcast_bench::{Res, median, run_lanes};
use slotcast_domain::{ChannelId, Timestamp};
use slotcast_store::{ClusterStore as _, to_ms};
use slotcast_store_postgres::PgStore;
use slotcast_testkit::{fixtures, pg};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Parser)]
#[command(
    about = "Seats granted per second on PostgreSQL (Store::take_seat) vs the raw conditional UPDATE alone"
)]
struct Args {
    /// Play requests (and seats) per timed run.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Rounds of (baseline, store); the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seats: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Res<()> {
    let db = pg::TempPg::create()
        .await
        .ok_or("PostgreSQL is unreachable (SLOTCAST_TEST_PG; scripts/test sets it up)")?;
    let store = Arc::new(
        PgStore::open(&db.url)
            .await
            .map_err(|e| format!("open PostgreSQL: {e}"))?,
    );
    let pool = store.pool().clone();
    println!(
        "seats: {} requests per run for one channel, {} in flight, {} rounds (median reported), {} worker threads",
        args.requests,
        args.concurrency,
        args.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let channel = fixtures::channel(&*store, "bench", args.requests, 100).await;
    // Make the seats (and check the count) before any timer starts.
    let now = Timestamp::now();
    store
        .take_seat(channel.id, "warm", args.requests, now, 1)
        .await
        .map_err(|e| e.to_string())?;
    let n = AtomicU64::new(0);
    let fresh = |n: &AtomicU64| format!("grant-{}", n.fetch_add(1, Ordering::Relaxed));
    let (mut store_rates, mut raw_rates) = (Vec::new(), Vec::new());
    for round in 0..=args.rounds {
        free(&pool, channel.id).await?;
        let raw = raw_run(&pool, channel.id, args, &n).await?;
        free(&pool, channel.id).await?;
        let work: Vec<Vec<String>> = lanes(args, |_| fresh(&n));
        let s = store.clone();
        let capacity = args.requests;
        let took = run_lanes(work, args.requests, "take_seat", move |holder: String| {
            let s = s.clone();
            async move {
                let now = Timestamp::now();
                match s
                    .take_seat(channel.id, &holder, capacity, now, 60_000)
                    .await
                {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err("a request found no seat: one was lost".to_owned()),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await?;
        let taken = store
            .seats_taken(channel.id, Timestamp::now())
            .await
            .map_err(|e| e.to_string())?;
        if taken != args.requests {
            return Err(format!("{taken} seats held after {} grants", args.requests));
        }
        let store_rate = f64::from(args.requests) / took.elapsed.as_secs_f64();
        let raw_rate = f64::from(args.requests) / raw.as_secs_f64();
        if round == 0 {
            println!("warm-up: take_seat {store_rate:.0}/s, raw {raw_rate:.0}/s");
            continue;
        }
        println!(
            "round {round}: take_seat {store_rate:>8.0} seats/s   raw conditional UPDATE {raw_rate:>8.0} rows/s"
        );
        store_rates.push(store_rate);
        raw_rates.push(raw_rate);
    }
    let (s, r) = (median(&mut store_rates), median(&mut raw_rates));
    println!(
        "\nmedian: take_seat {s:.0} seats/s, raw {r:.0} rows/s, ratio {:.2}",
        s / r
    );
    println!("RESULT seats.postgres.take_seat_per_s={s:.0}");
    println!("RESULT seats.postgres.raw_update_per_s={r:.0}");
    println!("RESULT seats.postgres.ratio={:.2}", s / r);
    pool.close().await;
    drop(db);
    Ok(())
}

/// `args.requests` items spread over `args.concurrency` lanes.
fn lanes<T>(args: &Args, mut item: impl FnMut(u32) -> T) -> Vec<Vec<T>> {
    let c = args.concurrency.min(args.requests);
    let mut lanes: Vec<Vec<T>> = (0..c).map(|_| Vec::new()).collect();
    for i in 0..args.requests {
        lanes[(i % c) as usize].push(item(i));
    }
    lanes
}

/// Frees every seat of the channel.
async fn free(pool: &sqlx::PgPool, channel: ChannelId) -> Res<()> {
    sqlx::query(
        "UPDATE seats SET holder = NULL, node = NULL, lease_until_ms = 0 WHERE channel_id = $1",
    )
    .bind(channel.0)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// The baseline: each request takes a seat it already knows with one conditional UPDATE.
async fn raw_run(
    pool: &sqlx::PgPool,
    channel: ChannelId,
    args: &Args,
    n: &AtomicU64,
) -> Res<std::time::Duration> {
    let work = lanes(args, |seat| {
        (seat, format!("raw-{}", n.fetch_add(1, Ordering::Relaxed)))
    });
    let pool = pool.clone();
    run_lanes(
        work,
        args.requests,
        "raw",
        move |(seat, holder): (u32, String)| {
            let pool = pool.clone();
            async move {
                let now = to_ms(Timestamp::now());
                let r = sqlx::query(
                    "UPDATE seats SET holder = $1, lease_until_ms = $2 WHERE channel_id = $3 \
                 AND seat_no = $4 AND lease_until_ms <= $5",
                )
                .bind(holder)
                .bind(now + 60_000)
                .bind(channel.0)
                .bind(i64::from(seat))
                .bind(now)
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
                if r.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(format!("seat {seat} was not free"))
                }
            }
        },
    )
    .await
    .map(|l| l.elapsed)
}
