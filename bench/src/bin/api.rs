//! `api` — the center over real HTTP on 127.0.0.1: bookings committed per second through
//! `POST /api/v1/reservations` against the store alone in the same invocation, and the
//! latency of the two public read endpoints at a fixed offered rate.
//!
//! One process starts the center the way `slotcastd serve` does — `slotcast_center::router`
//! served by `axum::serve` on `127.0.0.1:0` with peer addresses — on a SQLite file in a
//! temporary directory (WAL, `synchronous = FULL`) or, with `--postgres`, a temporary
//! PostgreSQL database (`SLOTCAST_TEST_PG`, see `slotcast_testkit::pg`). Decisions use the
//! system clock. There is no scheduler, no mail sender and no log subscriber (the outbox
//! only fills). It seeds 8 channels and raises the monthly quota to 1,000,000 slots. The
//! client is `reqwest` (HTTP/1.1, keep-alive, no proxy) on the same tokio runtime, so it
//! shares the machine's cores with the server.
//!
//! 1. **Bookings.** `--clients C` premium members register and sign in over HTTP (not
//!    timed: argon2 is deliberately slow). In a timed run each client books its share of
//!    `--bookings N` bookings of 3 slots, one request after the other: client `i` on
//!    channel `i % 8`, in a time range no other client uses, on 3-slot blocks picked at
//!    random among twice as many free ones, in random order. Every answer must be 201;
//!    the others are counted and reported (and make the run fail). The figure is committed
//!    bookings per second of wall time.
//!
//!    The baseline is the store alone, measured as `booking` measures it: the same number
//!    of `NewReservation`s built by `slotcast_testkit::fixtures::booking` before the timer
//!    starts, committed through `Store::create_reservation` by `--store-concurrency` tasks
//!    (default 64, the HTTP client count; `booking` defaults to 8), one premium member per
//!    task, same backend, same channels, the same slot layout in time ranges of their own.
//!
//!    After an untimed warm-up of each kind, HTTP and store runs alternate for `--rounds R`
//!    rounds, each on fresh slots; the medians and `ratio = http / store` are reported.
//!
//! 2. **Read latency.** Every booking of the first day of round 1's HTTP run is confirmed
//!    with its key (read from the outbox), so that day's programs are listed. Then for
//!    `GET /api/v1/programs?date=D` and `GET /api/v1/availability?date=D`: a serial run on
//!    one connection (the service time without queueing; `--requests` requests, at most
//!    1000, stopping after `--max-seconds` at the latest), and `--rate` requests per second
//!    for `--open-seconds`, each sent at its scheduled instant whatever the earlier ones
//!    are doing (an open loop, as viewers arrive). Latency is from the scheduled send to
//!    the whole body read; p50, p99 and max. The baseline of the open loop is the serial
//!    run: how much the offered load adds to the service time.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use slotcast_bench::{Res, median, open_loop, run_lanes};
use slotcast_center::secrets::Secrets;
use slotcast_center::{Center, NoStreamNode, Settings, Throttle};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, MemberId, Policy, ReservationId, Timestamp};
use slotcast_store::{Channel, NewReservation, Store, Tier};
use slotcast_store_postgres::PgStore;
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{TempDir, fixtures, pg};
use sqlx::Connection as _;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Slots per booking.
const SLOTS: u32 = 3;
/// Channels seeded; client `i` books on channel `i % CHANNELS`.
const CHANNELS: usize = 8;
const DAY_MS: i64 = 86_400_000;
const PASSWORD: &str = "a long enough bench password";

#[derive(Debug, Parser)]
#[command(
    about = "The center over HTTP on 127.0.0.1: bookings/s vs the store alone, and read latency under many connections"
)]
struct Args {
    /// Bookings per timed run (HTTP and store alike).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    bookings: u32,
    /// HTTP clients booking in parallel, each a member of its own.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    clients: u32,
    /// Tasks committing bookings through the store in parallel (the baseline).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    store_concurrency: u32,
    /// Rounds of (HTTP, store) booking runs; the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Requests per read endpoint in the serial latency run (at most 1000 are sent).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,
    /// Requests per second offered in the open-loop latency run.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    rate: u64,
    /// Seconds of each open-loop latency run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    open_seconds: u64,
    /// Time cap of each serial latency run, in seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    max_seconds: u64,
    /// Use a temporary PostgreSQL database instead of a SQLite file.
    #[arg(long)]
    postgres: bool,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The system clock: what `slotcastd` uses when no NTP server is configured.
#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The store's pool, closed at the end (before a temporary PostgreSQL database is dropped).
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

async fn run(args: &Args) -> Res<()> {
    let dir = TempDir::new("bench-api");
    let mut temp_pg = None;
    let (backend, store, pool): (&'static str, Arc<dyn Store>, Pool) = if args.postgres {
        let admin = pg::admin_url();
        if let Err(e) = sqlx::PgConnection::connect(&admin).await {
            return Err(format!(
                "PostgreSQL is unreachable at {admin}: {e}\n\
                 Start it (scripts/test sets up the role), point SLOTCAST_TEST_PG at a server, \
                 or leave out --postgres."
            ));
        }
        let db = pg::TempPg::create()
            .await
            .ok_or("cannot create a temporary PostgreSQL database")?;
        let store = PgStore::open(&db.url)
            .await
            .map_err(|e| format!("open PostgreSQL: {e}"))?;
        let pool = Pool::Pg(store.pool().clone());
        temp_pg = Some(db);
        ("postgres", Arc::new(store), pool)
    } else {
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let store = SqliteStore::open(&url)
            .await
            .map_err(|e| format!("open SQLite: {e}"))?;
        let pool = Pool::Sqlite(store.pool().clone());
        ("sqlite", Arc::new(store), pool)
    };
    let outcome = bench(backend, store, args).await;
    match pool {
        Pool::Sqlite(p) => p.close().await,
        Pool::Pg(p) => p.close().await,
    }
    drop(temp_pg);
    outcome
}

/// The server's address and a client for it.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// `POST path` with a JSON body; the status and the parsed answer (`Null` if not JSON).
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Res<(StatusCode, Value)> {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(|e| format!("POST {path}: {e}"))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| format!("POST {path}: {e}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn get(&self, path: &str) -> Res<(StatusCode, Value)> {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| format!("GET {path}: {e}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

async fn bench(backend: &'static str, store: Arc<dyn Store>, args: &Args) -> Res<()> {
    let policy = Policy {
        quota_slots_per_month: 1_000_000,
        ..Policy::default()
    };
    let mut channels = Vec::new();
    for i in 0..CHANNELS {
        channels.push(fixtures::channel(&*store, &format!("ch-{i}"), 100, 500).await);
    }

    // The center, served as slotcastd serves it.
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    slotcast_center::metrics::install();
    let center = Arc::new(Center {
        store: store.clone(),
        clock: Arc::new(SystemClock),
        settings: Settings::new(&base, "UTC", policy.clone()),
        secrets: Secrets::from_master([7; 32]),
        login_throttle: Throttle::new(50, SignedDuration::from_mins(15)),
        login_backoff: slotcast_center::state::Backoff::new(5, SignedDuration::from_mins(15)),
        password_throttle: Throttle::new(20, SignedDuration::from_mins(15)),
        // The bench signs up its clients from one address.
        signup_throttle: Throttle::new(u32::MAX, SignedDuration::from_hours(1)),
        time: None,
        stats: Arc::new(NoStreamNode),
        filler: Arc::new(NoStreamNode),
        mail_check: None,
        scheduler: slotcast_center::SchedulerHealth::default(),
        listings: Default::default(),
        sessions: Default::default(),
    });
    let app = slotcast_center::router(center)
        .into_make_service_with_connect_info::<slotcast_center::net::Peer>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let listener = slotcast_center::net::StallGuard::new(listener, Duration::from_secs(30));
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let api = Api { client, base };

    let outcome = measure(backend, &api, &store, &channels, &policy, args).await;

    // Close the client's idle connections first: a graceful shutdown waits for them.
    drop(api);
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(format!("server: {e}")),
        Ok(Err(e)) => return Err(format!("server task: {e}")),
        Err(_) => eprintln!("api: the server did not stop within 10 s"),
    }
    outcome
}

async fn measure(
    backend: &'static str,
    api: &Api,
    store: &Arc<dyn Store>,
    channels: &[Channel],
    policy: &Policy,
    args: &Args,
) -> Res<()> {
    println!(
        "api: {backend}, {} bookings of {SLOTS} slots per run by {} HTTP clients; store baseline \
         at concurrency {}; {} rounds (median reported); {} worker threads",
        args.bookings,
        args.clients,
        args.store_concurrency,
        args.rounds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // Members: over HTTP for the clients, directly in the store for the baseline.
    let started = Instant::now();
    let signups: Vec<_> = (0..args.clients)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move { sign_up(&api, i).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for s in signups {
        tokens.push(s.await.map_err(|e| format!("sign-up task: {e}"))??);
    }
    println!(
        "registered and signed in {} premium members over HTTP in {:.2} s (argon2; not timed)",
        args.clients,
        started.elapsed().as_secs_f64()
    );
    let mut members = Vec::new();
    for t in 0..args.store_concurrency {
        members.push(
            fixtures::member(&**store, &format!("store-{t}"), Tier::Premium)
                .await
                .id,
        );
    }

    // Slot layout: phase 0 HTTP warm-up, 1 store warm-up, then round r HTTP (2r) and
    // store (2r + 1), each phase in whole days of its own from the day after tomorrow.
    let warm_http = (args.bookings / 10).max(args.clients);
    let warm_store = (args.bookings / 10).max(args.store_concurrency);
    let per_lane = |n: u32, lanes: u32| n.div_ceil(lanes) as i64;
    let max_per_lane = per_lane(args.bookings.max(warm_http), args.clients).max(per_lane(
        args.bookings.max(warm_store),
        args.store_concurrency,
    ));
    let max_lanes = args.clients.max(args.store_concurrency) as usize;
    let today = Timestamp::now().as_millisecond().div_euclid(DAY_MS);
    let layout = Layout::new((today + 2) * DAY_MS, policy, max_per_lane, max_lanes);
    let mut rng = Rng(0x5107_CA57);

    let mut failures = Failures::default();
    let warm = http_run(api, &tokens, channels, &layout, 0, warm_http, &mut rng).await?;
    failures.add(&warm);
    store_run(
        store, &members, channels, &layout, 1, warm_store, policy, &mut rng,
    )
    .await?;

    let (mut http_rates, mut store_rates) = (Vec::new(), Vec::new());
    let mut day_bookings = Vec::new();
    for round in 1..=args.rounds {
        let h = http_run(
            api,
            &tokens,
            channels,
            &layout,
            2 * round,
            args.bookings,
            &mut rng,
        )
        .await?;
        failures.add(&h);
        let ok: usize = h.booked.iter().map(Vec::len).sum();
        let http_rate = ok as f64 / h.elapsed.as_secs_f64();
        let s = store_run(
            store,
            &members,
            channels,
            &layout,
            2 * round + 1,
            args.bookings,
            policy,
            &mut rng,
        )
        .await?;
        let store_rate = f64::from(args.bookings) / s.as_secs_f64();
        println!(
            "{backend:<8} round {round}  http {http_rate:>8.1} bookings/s ({:.2} s, {} of {} answered 201)   \
             store {store_rate:>8.1} bookings/s ({:.2} s)",
            h.elapsed.as_secs_f64(),
            ok,
            args.bookings,
            s.as_secs_f64()
        );
        http_rates.push(http_rate);
        store_rates.push(store_rate);
        if round == 1 {
            day_bookings = h.booked;
        }
    }
    let http = median(&mut http_rates);
    let store_rate = median(&mut store_rates);
    let ratio = http / store_rate;
    println!(
        "{backend:<8} http {http:.1} bookings/s ({} clients)   store {store_rate:.1} bookings/s \
         (concurrency {})   ratio http/store {ratio:.2} (goal >= 0.7)",
        args.clients, args.store_concurrency
    );
    println!(
        "booking answers other than 201: {} of {} (warm-up included){}",
        failures.count,
        failures.total,
        failures
            .first
            .as_deref()
            .map_or(String::new(), |e| format!(" (first: {e})"))
    );

    // The read day: the first day of round 1's HTTP run, every booking of it confirmed.
    let day_from = layout.phase_start(2);
    let day_to = day_from + DAY_MS;
    let date = ts(day_from).strftime("%Y-%m-%d").to_string();
    let booked_that_day = confirm_day(api, store, &tokens, &day_bookings, day_from, day_to).await?;
    let confirmed = booked_that_day;
    let programs_path = format!("/api/v1/programs?date={date}");
    let availability_path = format!("/api/v1/availability?date={date}");
    let (st, programs) = api.get(&programs_path).await?;
    let listed = programs.as_array().map_or(0, Vec::len);
    let (st2, avail) = api.get(&availability_path).await?;
    let slots: Vec<&Value> = avail["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["slots"].as_array())
        .flatten()
        .collect();
    let taken = slots.iter().filter(|s| s["state"] == "taken").count();
    println!(
        "read day {date}: {booked_that_day} bookings, {confirmed} confirmed; programs lists {listed}, \
         availability shows {taken} of {} slots taken",
        slots.len()
    );
    if st != StatusCode::OK
        || st2 != StatusCode::OK
        || listed != confirmed
        || taken != booked_that_day * SLOTS as usize
    {
        return Err(format!(
            "the read day does not show what was booked: programs {st} ({listed} listed), \
             availability {st2} ({taken} slots taken)"
        ));
    }

    let cap = Duration::from_secs(args.max_seconds);
    let mut lat = Vec::new();
    for (name, path) in [
        ("programs", &programs_path),
        ("availability", &availability_path),
    ] {
        let serial_n = args.requests.min(1000);
        let serial = latency(api, path, 1, serial_n, cap).await?;
        println!("GET {path}");
        println!("  serial      {}", serial.line());
        let url = format!("{}{path}", api.base);
        let (p50, p99, max) = open_loop(&api.client, &url, args.rate, args.open_seconds).await?;
        println!(
            "  {} req/s    p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {max:>7.2} ms  (open loop, {} s)",
            args.rate, args.open_seconds
        );
        lat.push((name, serial, (p50, p99)));
    }

    println!();
    println!("RESULT api.{backend}.http_bookings_per_s={http:.1}");
    println!("RESULT api.{backend}.store_bookings_per_s={store_rate:.1}");
    println!("RESULT api.{backend}.ratio={ratio:.2}");
    println!("RESULT api.{backend}.booking_failures={}", failures.count);
    for (name, serial, (p50, p99)) in &lat {
        println!(
            "RESULT api.{backend}.{name}.rate{}.p99_ms={p99:.2}   (p50 {p50:.2}; serial p50 {:.2}, p99 {:.2}; goal p99 < 10 ms {})",
            args.rate,
            serial.p50,
            serial.p99,
            if *p99 < 10.0 { "✔" } else { "✘" }
        );
    }
    if failures.count > 0 {
        return Err(format!(
            "{} of {} bookings did not answer 201",
            failures.count, failures.total
        ));
    }
    Ok(())
}

/// Registers premium member `i` and signs in; returns the bearer token.
async fn sign_up(api: &Api, i: u32) -> Res<String> {
    let email = format!("bench-{i}@example.org");
    let body = json!({
        "email": email,
        "password": PASSWORD,
        "display_name": format!("Bench {i}"),
        "tier": "premium",
        "payment": {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "holder": format!("Bench {i}")},
    });
    let (st, v) = api.post("/api/v1/members", None, &body).await?;
    if st != StatusCode::CREATED {
        return Err(format!("register {email}: {st} {v}"));
    }
    let (st, v) = api
        .post(
            "/api/v1/sessions",
            None,
            &json!({"email": email, "password": PASSWORD}),
        )
        .await?;
    match v["token"].as_str() {
        Some(t) if st == StatusCode::CREATED => Ok(t.to_owned()),
        _ => Err(format!("sign in {email}: {st} {v}")),
    }
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).expect("instant in range")
}

/// Where each run's bookings go. Lane `l` (the client or task `l`) books on channel
/// `l % CHANNELS`, in the `l / CHANNELS`-th range of `lane_ms` of its phase; a range holds
/// twice as many 3-slot blocks as the most any lane books, so the blocks it books are a
/// random half of its range's.
struct Layout {
    base_ms: i64,
    phase_ms: i64,
    lane_ms: i64,
    block_ms: i64,
}

impl Layout {
    fn new(base_ms: i64, policy: &Policy, max_per_lane: i64, max_lanes: usize) -> Self {
        let block_ms = i64::from(policy.slot.minutes() * SLOTS) * 60_000;
        let lane_ms = 2 * max_per_lane * block_ms;
        let stacked = max_lanes.div_ceil(CHANNELS) as i64;
        let phase_ms = (stacked * lane_ms + DAY_MS - 1) / DAY_MS * DAY_MS;
        Self {
            base_ms,
            phase_ms,
            lane_ms,
            block_ms,
        }
    }

    fn phase_start(&self, phase: u32) -> i64 {
        self.base_ms + i64::from(phase) * self.phase_ms
    }

    /// The starts of `n` distinct random blocks of `lane` in `phase`, in random order.
    fn starts(&self, phase: u32, lane: usize, n: usize, rng: &mut Rng) -> Vec<Timestamp> {
        let from = self.phase_start(phase) + (lane / CHANNELS) as i64 * self.lane_ms;
        let mut blocks: Vec<i64> = (0..self.lane_ms / self.block_ms).collect();
        rng.shuffle(&mut blocks);
        assert!(n <= blocks.len(), "lane range too small");
        blocks[..n]
            .iter()
            .map(|b| ts(from + b * self.block_ms))
            .collect()
    }
}

/// Lane `lane`'s share of `n` bookings over `lanes` lanes.
fn share(n: u32, lanes: usize, lane: usize) -> usize {
    let (n, lanes) = (n as usize, lanes);
    n / lanes + usize::from(lane < n % lanes)
}

/// splitmix64: a fixed seed, so every run books the same slots.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// One HTTP booking run.
struct HttpRun {
    elapsed: Duration,
    /// `booked[client]`: (reservation id, start) of each 201.
    booked: Vec<Vec<(i64, i64)>>,
    attempted: u32,
    failures: u32,
    first_error: Option<String>,
}

#[derive(Default)]
struct Failures {
    count: u32,
    total: u32,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, run: &HttpRun) {
        self.count += run.failures;
        self.total += run.attempted;
        if self.first.is_none() {
            self.first.clone_from(&run.first_error);
        }
    }
}

/// Books `n` bookings over HTTP, client `i` its share on lane `i`; times the whole run.
async fn http_run(
    api: &Api,
    tokens: &[String],
    channels: &[Channel],
    layout: &Layout,
    phase: u32,
    n: u32,
    rng: &mut Rng,
) -> Res<HttpRun> {
    // Every request body is built before the timer starts.
    let work: Vec<Vec<(i64, Vec<u8>)>> = (0..tokens.len())
        .map(|i| {
            let channel = &channels[i % CHANNELS];
            layout
                .starts(phase, i, share(n, tokens.len(), i), rng)
                .into_iter()
                .map(|start| {
                    let body = json!({
                        "channel": channel.id.0,
                        "start": start.to_string(),
                        "slots": SLOTS,
                        "visibility": "public",
                        "title": format!("Bench program {i}"),
                    });
                    let bytes = serde_json::to_vec(&body).expect("JSON");
                    (start.as_millisecond(), bytes)
                })
                .collect()
        })
        .collect();
    let url = format!("{}/api/v1/reservations", api.base);
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .zip(tokens)
        .map(|(list, token)| {
            let client = api.client.clone();
            let url = url.clone();
            let auth = format!("Bearer {token}");
            tokio::spawn(async move {
                // Answers are parsed after the timer stops.
                let mut answers = Vec::with_capacity(list.len());
                for (start, body) in list {
                    let res = client
                        .post(&url)
                        .header(AUTHORIZATION, &auth)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await;
                    let answer = match res {
                        Ok(r) => {
                            let status = r.status();
                            r.bytes()
                                .await
                                .map(|b| (status, b))
                                .map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    answers.push((start, answer));
                }
                answers
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.map_err(|e| format!("booking task: {e}"))?);
    }
    let elapsed = started.elapsed();

    let mut run = HttpRun {
        elapsed,
        booked: Vec::new(),
        attempted: 0,
        failures: 0,
        first_error: None,
    };
    for answers in all {
        let mut ok = Vec::new();
        for (start, answer) in answers {
            run.attempted += 1;
            let id = match &answer {
                Ok((StatusCode::CREATED, body)) => serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| v["id"].as_i64()),
                _ => None,
            };
            match id {
                Some(id) => ok.push((id, start)),
                None => {
                    run.failures += 1;
                    if run.first_error.is_none() {
                        run.first_error = Some(match answer {
                            Ok((status, body)) => {
                                format!("{status} {}", String::from_utf8_lossy(&body))
                            }
                            Err(e) => e,
                        });
                    }
                }
            }
        }
        run.booked.push(ok);
    }
    Ok(run)
}

/// Commits `n` bookings through the store, task `i` its share on lane `i` for member `i`,
/// as `booking` does; times the whole run.
#[allow(clippy::too_many_arguments)]
async fn store_run(
    store: &Arc<dyn Store>,
    members: &[MemberId],
    channels: &[Channel],
    layout: &Layout,
    phase: u32,
    n: u32,
    policy: &Policy,
    rng: &mut Rng,
) -> Res<Duration> {
    let now = Timestamp::now();
    let work: Vec<Vec<NewReservation>> = members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let channel = &channels[i % CHANNELS];
            layout
                .starts(phase, i, share(n, members.len(), i), rng)
                .into_iter()
                .map(|start| fixtures::booking(policy, channel, *member, start, SLOTS, now))
                .collect()
        })
        .collect();
    let store = Arc::clone(store);
    run_lanes(work, n, "store", move |r: NewReservation| {
        let store = Arc::clone(&store);
        async move {
            let slug = r.slug.clone();
            store
                .create_reservation(r)
                .await
                .map(drop)
                .map_err(|e| format!("store booking {slug}: {e}"))
        }
    })
    .await
    .map(|l| l.elapsed)
}

/// Confirms, over HTTP with the key from its e-mail, every booking starting in
/// `[from, to)`; returns how many there were (all confirmed, or an error).
async fn confirm_day(
    api: &Api,
    store: &Arc<dyn Store>,
    tokens: &[String],
    booked: &[Vec<(i64, i64)>],
    from: i64,
    to: i64,
) -> Res<usize> {
    // Nothing delivers mail here: lease every queued message to read the keys.
    let far = ts(4_000_000_000_000);
    let texts: HashMap<String, String> = store
        .claim_due(far, 1, 10_000_000)
        .await
        .map_err(|e| format!("read the outbox: {e}"))?
        .into_iter()
        .map(|m| (m.message.dedupe_key, m.message.text))
        .collect();
    let mut jobs = Vec::new();
    for (token, list) in tokens.iter().zip(booked) {
        let mut mine = Vec::new();
        for &(id, start) in list {
            if !(from..to).contains(&start) {
                continue;
            }
            let r = store
                .reservation(ReservationId(id))
                .await
                .map_err(|e| format!("reservation {id}: {e}"))?;
            let key = texts
                .get(&format!("r{id}/key"))
                .and_then(|t| t.split_whitespace().find(|w| r.key_hash.verify(w)))
                .ok_or_else(|| format!("no key e-mail for reservation {id}"))?;
            mine.push((id, key.to_owned()));
        }
        jobs.push((token.clone(), mine));
    }
    let in_range: usize = jobs.iter().map(|j| j.1.len()).sum();
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(token, mine)| {
            let api = api.clone();
            tokio::spawn(async move {
                for (id, key) in mine {
                    let (st, v) = api
                        .post(
                            &format!("/api/v1/reservations/{id}/confirm"),
                            Some(&token),
                            &json!({"reservation_key": key}),
                        )
                        .await?;
                    if st != StatusCode::OK {
                        return Err(format!("confirm {id}: {st} {v}"));
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| format!("confirm task: {e}"))??;
    }
    Ok(in_range)
}

/// A latency run's figures, in milliseconds.
struct Latency {
    connections: u32,
    done: usize,
    errors: u32,
    elapsed: Duration,
    capped: bool,
    bytes: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn line(&self) -> String {
        format!(
            "{:>6} requests in {:>6.2} s ({:>7.0} req/s){}: p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  \
             errors {}  answer {} kB, {} connection(s)",
            self.done,
            self.elapsed.as_secs_f64(),
            self.done as f64 / self.elapsed.as_secs_f64(),
            if self.capped { " [time cap]" } else { "" },
            self.p50,
            self.p99,
            self.max,
            self.errors,
            self.bytes / 1000,
            self.connections,
        )
    }
}

/// `GET path` `requests` times over `connections` keep-alive connections opened beforehand
/// (untimed), each sending its next request when the previous answer is read; stops at
/// `cap` at the latest.
async fn latency(
    api: &Api,
    path: &str,
    connections: u32,
    requests: u32,
    cap: Duration,
) -> Res<Latency> {
    let url = format!("{}{path}", api.base);
    // Open the connections: as many concurrent requests; they stay in the client's pool.
    let opening: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url) = (api.client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = r.status();
                let body = r.bytes().await.map_err(|e| e.to_string())?;
                if status == StatusCode::OK {
                    Ok(body.len())
                } else {
                    Err(format!("{status}"))
                }
            })
        })
        .collect();
    let mut bytes = 0;
    for o in opening {
        bytes = o
            .await
            .map_err(|e| format!("task: {e}"))?
            .map_err(|e| format!("GET {path}: {e}"))?;
    }

    let next = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let deadline = started + cap;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, next) = (api.client.clone(), url.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut times = Vec::new();
                let mut errors = 0u32;
                while next.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) => {
                            let status = r.status();
                            r.bytes().await.is_ok() && status == StatusCode::OK
                        }
                        Err(_) => false,
                    };
                    if ok {
                        times.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (times, errors)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (mut ts, e) = t.await.map_err(|e| format!("task: {e}"))?;
        times.append(&mut ts);
        errors += e;
    }
    let elapsed = started.elapsed();
    if times.is_empty() {
        return Err(format!("GET {path}: no request succeeded"));
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: f64| {
        let rank = (p * times.len() as f64).ceil() as usize;
        ms(times[rank.clamp(1, times.len()) - 1])
    };
    Ok(Latency {
        connections,
        done: times.len(),
        errors,
        elapsed,
        capped: times.len() + (errors as usize) < requests as usize,
        bytes,
        p50: pct(0.50),
        p99: pct(0.99),
        max: ms(times[times.len() - 1]),
    })
}
