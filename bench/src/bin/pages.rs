//! `pages` — the hottest pages, `GET /` (today's live) and `GET /guide`, served by
//! slotcast against nginx serving the same bytes as static files, in one invocation on
//! 127.0.0.1.
//!
//! slotcast is served as `slotcastd serve` serves it (the pages merged with the center's
//! router, `axum::serve`), on a SQLite file in a temporary directory with `--programs`
//! confirmed programs spread over today on three channels, the system clock, no stream node.
//! The static copy is each page's body as slotcast answered it once, served by nginx
//! (`--nginx-workers`, access log off) from a temporary root.
//!
//! 1. **Throughput**: `--connections` keep-alive connections, each sending its next request
//!    when the answer is read (a closed loop), for `--seconds`; answers per second. Every
//!    answer must be 200 with the whole body. `ratio = slotcast / nginx`; goal ≥ 0.5.
//! 2. **Latency at a fixed rate**: `--rate` requests per second for `--open-seconds`, each
//!    sent at its scheduled instant whatever the earlier ones are doing (an open loop), on a
//!    pool of keep-alive connections; latency from the scheduled instant to the whole body
//!    read (so a stall counts against every request it delays); p50, p99, max; goal p99
//!    < 10 ms.
//!
//! The client is `reqwest` on the same machine, so it shares the two cores with the server
//! under test (nginx and slotcast alike).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use slotcast_bench::{Res, get, open_loop};
use slotcast_center::secrets::Secrets;
use slotcast_center::{Center, NoStreamNode, Settings, Throttle};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::lifecycle;
use slotcast_domain::{Clock, Policy, Timestamp};
use slotcast_store::{Actor, Store, Tier, TransitionCommand};
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{TempDir, fixtures};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "GET / and GET /guide: slotcast against nginx serving the same bytes")]
struct Args {
    /// Keep-alive connections of the throughput run.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Requests per second of the fixed-rate run.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of each fixed-rate run.
    #[arg(long, default_value_t = 10)]
    open_seconds: u64,
    /// Programs today.
    #[arg(long, default_value_t = 24)]
    programs: u32,
    /// nginx worker processes (`auto`: one per core).
    #[arg(long, default_value = "auto")]
    nginx_workers: String,
}

#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// nginx, stopped when dropped: its master and workers share a process group of their
/// own, ended whole (killing the master alone leaves the workers serving).
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", self.0.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match rt.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pages: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Res<()> {
    let dir = TempDir::new("bench-pages");
    let url = format!("sqlite://{}/slotcast.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.map_err(|e| e.to_string())?);
    seed(&*store, args.programs).await?;

    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base = format!("http://{addr}");
    let center = Arc::new(Center {
        store,
        clock: Arc::new(SystemClock),
        settings: Settings::new(&base, "UTC", Policy::default()),
        secrets: Secrets::from_master([7; 32]),
        login_throttle: Throttle::new(50, SignedDuration::from_mins(15)),
        login_backoff: slotcast_center::state::Backoff::new(5, SignedDuration::from_mins(15)),
        password_throttle: Throttle::new(20, SignedDuration::from_mins(15)),
        signup_throttle: Throttle::new(20, SignedDuration::from_hours(1)),
        time: None,
        stats: Arc::new(NoStreamNode),
        filler: Arc::new(NoStreamNode),
        mail_check: None,
        scheduler: slotcast_center::SchedulerHealth::default(),
        listings: Default::default(),
        sessions: Default::default(),
    });
    let app = slotcast_web::router(center.clone())
        .merge(slotcast_center::router(center.clone()))
        .layer(axum::middleware::from_fn_with_state(
            center,
            slotcast_web::html_errors,
        ))
        .into_make_service_with_connect_info::<slotcast_center::net::Peer>();
    let listener = slotcast_center::net::StallGuard::new(listener, Duration::from_secs(30));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;

    // The same bytes, as static files for nginx.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    let mut sizes = Vec::new();
    for (path, file) in [("/", "index.html"), ("/guide", "guide.html")] {
        let body = get(&client, &format!("{base}{path}")).await?;
        if !body.contains("Morning show 1") {
            return Err(format!("{path} does not list the seeded programs"));
        }
        sizes.push((path, body.len()));
        std::fs::write(www.join(file), body).map_err(|e| e.to_string())?;
    }
    let nginx_port = free_port()?;
    let _nginx = start_nginx(dir.path(), nginx_port, &args.nginx_workers)?;
    let ngx = format!("http://127.0.0.1:{nginx_port}");
    for _ in 0..100 {
        if get(&client, &format!("{ngx}/")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "pages: slotcast {base}, nginx {} ({} workers) {ngx}; {} programs today; bodies: / {} B, /guide {} B",
        nginx_version(),
        args.nginx_workers,
        args.programs,
        sizes[0].1,
        sizes[1].1
    );

    for (name, path) in [("home", "/"), ("guide", "/guide")] {
        let ours = closed_loop(&client, &format!("{base}{path}"), args).await?;
        let theirs = closed_loop(&client, &format!("{ngx}{path}"), args).await?;
        let ratio = ours / theirs;
        println!(
            "RESULT pages.{name}.throughput_rps={ours:.0}   (nginx {theirs:.0}; ratio {ratio:.2}; goal >= 0.5 {})",
            if ratio >= 0.5 { "✔" } else { "✘" }
        );
        let ours = open_loop(
            &client,
            &format!("{base}{path}"),
            args.rate,
            args.open_seconds,
        )
        .await?;
        let theirs = open_loop(
            &client,
            &format!("{ngx}{path}"),
            args.rate,
            args.open_seconds,
        )
        .await?;
        println!(
            "RESULT pages.{name}.rate{}.p99_ms={:.2}   (p50 {:.2}, max {:.2}; nginx p50 {:.2}, p99 {:.2}, max {:.2}; goal p99 < 10 ms {})",
            args.rate,
            ours.1,
            ours.0,
            ours.2,
            theirs.0,
            theirs.1,
            theirs.2,
            if ours.1 < 10.0 { "✔" } else { "✘" }
        );
    }
    Ok(())
}

/// `n` confirmed public programs today, on three channels, from 00:00 UTC on.
async fn seed(store: &dyn Store, n: u32) -> Res<()> {
    let policy = Policy::default();
    let channels = [
        fixtures::channel(store, "small", 10, 100).await,
        fixtures::channel(store, "medium", 100, 300).await,
        fixtures::channel(store, "large", 1000, 1000).await,
    ];
    let now = Timestamp::now();
    let midnight = now
        .to_zoned(slotcast_domain::jiff::tz::TimeZone::UTC)
        .start_of_day()
        .map_err(|e| e.to_string())?
        .timestamp();
    // Booked and confirmed a day before, so every deadline lies ahead of those instants.
    let booked_at = midnight - SignedDuration::from_hours(24);
    for i in 0..n {
        // A broadcaster each: one member's monthly quota would not hold them all.
        let member = fixtures::member(store, &format!("broadcaster{i}"), Tier::Premium).await;
        let channel = &channels[i as usize % channels.len()];
        let start = midnight
            + SignedDuration::from_mins(i64::from(i / 3) * 60 * 24 / i64::from(n.div_ceil(3)));
        let mut nr = fixtures::booking(&policy, channel, member.id, start, 2, booked_at);
        nr.program.title = format!("Morning show {}", i + 1);
        nr.program.outline = Some("News, weather and a guest".into());
        let r = store
            .create_reservation(nr)
            .await
            .map_err(|e| e.to_string())?;
        let t = lifecycle::confirm(r.status, &r.schedule, booked_at, true)
            .map_err(|e| e.to_string())?;
        store
            .transition(TransitionCommand::from_transition(
                r.id,
                &t,
                booked_at,
                Actor::Member(member.id),
                "bench",
            ))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Answers per second over `args.connections` closed-loop connections.
async fn closed_loop(client: &reqwest::Client, url: &str, args: &Args) -> Res<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            let (client, url, done) = (client.clone(), url.to_owned(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    get(&client, &url).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn free_port() -> Res<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn start_nginx(dir: &Path, port: u16, workers: &str) -> Res<Nginx> {
    let conf = dir.join("nginx.conf");
    let www = dir.join("www");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes {workers};\npid {pid};\nerror_log {err} warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  default_type text/html;\n  \
             client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n  \
             server {{\n    listen 127.0.0.1:{port};\n    root {www};\n    \
             location = / {{ try_files /index.html =404; }}\n    \
             location = /guide {{ try_files /guide.html =404; }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            err = dir.join("nginx-error.log").display(),
            tmp = dir.display(),
            www = www.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    Command::new("nginx")
        .process_group(0)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Nginx)
        .map_err(|e| format!("nginx (apt-get install nginx): {e}"))
}

fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_default()
}
