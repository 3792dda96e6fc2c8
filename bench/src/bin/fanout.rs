//! `fanout` — one 2.5 Mbit/s ingest delivered to N viewers by slotcast's stream node
//! (HTTP-FLV and the fMP4 stream) and by nginx with libnginx-mod-rtmp (RTMP play), in the
//! same invocation, on loopback; and glass-to-glass latency of HTTP-FLV, fMP4 and LL-HLS
//! against nginx-rtmp's RTMP play and HLS.
//!
//! Everything that talks to the servers is ours and runs in this process: an RTMP
//! publisher (the same for both servers) that sends a cached ffmpeg encoding in real time,
//! looping with continuous timestamps, and logs when each video frame left; viewers, one
//! tokio task each, that count bytes and follow media time without keeping the stream;
//! latency probes that match the frames they receive to the publisher's log by a hash of
//! the frame's first VCL NAL unit (the same bytes in FLV, fMP4 and MPEG-TS).
//!
//! For each N and protocol the viewers connect, settle, and then for `--seconds` the run
//! measures the bytes viewers received, the server's CPU time (utime + stime of its
//! processes, from `/proc`) and its peak resident memory (VmRSS, sampled every 200 ms,
//! against its RSS before the viewers came). A viewer is behind when it was disconnected
//! or fell more than `--behind-ms` behind its live edge (see `viewer::Stat`). Every figure
//! is printed next to nginx's, measured in the same invocation, and as a ratio.
//!
//! slotcast is driven through the product: an operator (`slotcastd admin
//! create-operator`) creates a channel, a premium member books it from the next slot
//! boundary, confirms with the key from the e-mail outbox and publishes with that key;
//! every viewer gets its own play token from `POST /programs/{slug}/play`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "fanout/amf.rs"]
mod amf;
#[path = "fanout/edge.rs"]
mod edge;
#[path = "fanout/ingest.rs"]
mod ingest;
#[path = "fanout/media.rs"]
mod media;
#[path = "fanout/procs.rs"]
mod procs;
#[path = "fanout/product.rs"]
mod product;
#[path = "fanout/publish.rs"]
mod publish;
#[path = "fanout/rtmp.rs"]
mod rtmp;
#[path = "fanout/source.rs"]
mod source;
#[path = "fanout/viewer.rs"]
mod viewer;

use clap::Parser;
use ingest::{Ingest, Scratch};
use procs::{Nginx, Slotcastd};
use publish::SendLog;
use slotcast_bench::Res;
use source::Source;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use viewer::{Clock, PLAYING, Probe, Stat, Target};

#[derive(Debug, Parser)]
#[command(
    about = "One 2.5 Mbit/s ingest to N viewers: slotcast's stream node (HTTP-FLV, fMP4, LL-HLS) against nginx-rtmp (RTMP, HLS) in the same run"
)]
struct Args {
    /// Viewer counts, comma-separated.
    #[arg(long, default_value = "100,500,1000,2000", value_delimiter = ',')]
    n: Vec<usize>,
    /// Measured seconds per N and protocol (after connecting and settling).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds between the last viewer playing and the start of the measurement.
    #[arg(long, default_value_t = 4)]
    settle: u64,
    /// Latency probes per protocol.
    #[arg(long, default_value_t = 5)]
    probes: usize,
    /// Seconds the latency probes run (the first 4 s are not counted).
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
    /// A viewer further behind its live edge than this is behind.
    #[arg(long, default_value_t = 2000)]
    behind_ms: i64,
    /// The slotcastd binary (built with `cargo build --release -p slotcastd`).
    #[arg(long)]
    slotcastd: Option<PathBuf>,
    /// Only nginx (no slotcast side).
    #[arg(long)]
    nginx_only: bool,
    /// Where the encoded source is cached (default $HOME/.cache/slotcast/bench).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Check the FLV/fMP4/TS parsers and frame keys against ffmpeg remuxes of the source,
    /// then exit.
    #[arg(long)]
    check_parsers: bool,
    /// Parse a captured stream (.flv, .mp4 or .ts), print its frames and how many match
    /// the source, then exit.
    #[arg(long)]
    parse: Option<PathBuf>,
    /// Play one HTTP-FLV (.flv) or fMP4 (.mp4) URL for 5 s as a viewer does, print what it
    /// got, then exit.
    #[arg(long)]
    view: Option<String>,
    /// Publish the source to rtmp://HOST:PORT/APP/KEY for 60 s, then exit.
    #[arg(long)]
    publish: Option<String>,
    /// Measure the idle channel (one publisher, no viewer) only, then exit.
    #[arg(long)]
    idle_only: bool,
    /// slotcastd runs under `valgrind --tool=callgrind` (a `--slotcastd` wrapper that
    /// execs it): its counters are zeroed when an idle window starts and dumped when it
    /// ends, for instruction counts of exactly that window (`callgrind_annotate`).
    #[arg(long)]
    callgrind: bool,
    /// Instead of the comparison with nginx: fan-out through an edge node against the
    /// origin alone, with a center on this (empty) PostgreSQL database.
    #[arg(long)]
    edge_db: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The publishers run on a runtime of their own, so that thousands of busy viewers on
    // the main runtime cannot delay the ingest.
    let ingest_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ingest")
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = rt.block_on(run(args, ingest_rt.handle().clone()));
    ingest_rt.shutdown_background();
    rt.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cache_dir(args: &Args) -> PathBuf {
    args.cache.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
            .join(".cache/slotcast/bench")
    })
}

async fn run(args: Args, ingest_rt: tokio::runtime::Handle) -> Res<()> {
    let path = source::ensure(&cache_dir(&args))?;
    let src = Arc::new(source::load(&path)?);
    if args.check_parsers {
        return check_parsers(&src);
    }
    if let Some(p) = &args.parse {
        return parse_capture(&src, p);
    }
    if let Some(url) = &args.view {
        return view(url).await;
    }
    if let Some(url) = &args.publish {
        let rest = url.strip_prefix("rtmp://").ok_or("an rtmp:// URL")?;
        let (host, path) = rest.split_once('/').ok_or("rtmp://HOST:PORT/APP/KEY")?;
        let (app, key) = path.rsplit_once('/').ok_or("rtmp://HOST:PORT/APP/KEY")?;
        let addr = host.parse().map_err(|e| format!("{host}: {e}"))?;
        let ingest = Ingest { rt: ingest_rt, src };
        let log = ingest.publish(addr, app, key).await?;
        println!("publishing");
        tokio::time::sleep(Duration::from_secs(60)).await;
        println!(
            "sent {} ms of media; {:?}",
            log.media_ms.load(Ordering::Relaxed),
            log.ended.lock().expect("lock")
        );
        return Ok(());
    }
    let max_n = args.n.iter().copied().max().unwrap_or(0);
    let scratch =
        Scratch(std::env::temp_dir().join(format!("slotcast-fanout-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).map_err(|e| e.to_string())?;
    let ingest = Ingest {
        rt: ingest_rt,
        src: Arc::clone(&src),
    };
    let tck = procs::clk_tck();
    let clock = Arc::new(Clock::new());
    if let Some(db) = &args.edge_db {
        return edge::run(&args, db, &scratch.0, &ingest, &clock, tck).await;
    }
    let started = Instant::now();
    println!(
        "fanout: source {} ({:.2} Mbit/s, {} s loop); N = {:?}; {} s measured per N and protocol; \
         {} latency probes per protocol; behind = more than {} ms behind the live edge or disconnected; \
         {} cores",
        src.path.display(),
        src.mbps(),
        src.loop_ms / 1000,
        args.n,
        args.seconds,
        args.probes,
        args.behind_ms,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // slotcast first: booking takes a minute to reach its slot, nginx is measured meanwhile.
    let mut slot = None;
    let mut slot_missing = None;
    if args.nginx_only {
        slot_missing = Some("not run (--nginx-only)".to_owned());
    } else {
        match start_slotcast(&args, &scratch.0, max_n).await {
            Ok(s) => slot = Some(s),
            Err(e) => slot_missing = Some(e),
        }
    }
    if let Some(e) = &slot_missing {
        println!("slotcast: {e}");
    }

    let nginx = Nginx::start(&scratch.0.join("nginx"), max_n + args.probes * 2 + 8)?;
    let ngx_log = ingest.publish(nginx.rtmp, "live", "bench").await?;
    println!(
        "nginx {} (1 worker): RTMP {} HTTP {}; publishing",
        nginx_version(),
        nginx.rtmp,
        nginx.http
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rtmp_target = Target::Rtmp {
        addr: nginx.rtmp,
        app: "live".into(),
        name: "bench".into(),
    };
    let mut lat = Vec::new();
    lat.push(
        probe_streams(
            "nginx RTMP play",
            vec![rtmp_target.clone(); args.probes],
            &ngx_log,
            &clock,
            &args,
        )
        .await,
    );
    let hls_url = format!("http://{}/hls/bench.m3u8", nginx.http);
    lat.push(probe_hls("nginx HLS", &hls_url, &ngx_log, &args).await);

    // Before the connect window slotcastd's channels have filler and nobody watching.
    if let Some(s) = &slot {
        idle_filler(&nginx, s, &args, tck).await;
    }
    // slotcast's ingest, once its connect window is open.
    let mut slot_log = None;
    let mut notes = Vec::new();
    if let Some(s) = &mut slot {
        match go_live(s, &ingest, &clock, &mut notes).await {
            Ok(log) => slot_log = Some(log),
            Err(e) => {
                println!("slotcast: {e}");
                slot_missing = Some(e);
            }
        }
    }
    if let (Some(s), Some(_)) = (&slot, &slot_log) {
        idle(&nginx, s, &args, tck).await;
        if args.idle_only {
            return Ok(());
        }
    }
    if let (Some(s), Some(log)) = (&slot, &slot_log) {
        let urls = product::play_urls(&s.base, &s.program.slug, args.probes * 3).await?;
        let (flv, rest) = urls.split_at(args.probes);
        let (mse, hls) = rest.split_at(args.probes);
        let t = |u: &product::PlayUrls, mp4: bool| {
            let (addr, path) = (
                s.d.http,
                product::path_of(if mp4 { &u.mse } else { &u.flv }),
            );
            if mp4 {
                Target::Mp4 { addr, path }
            } else {
                Target::Flv { addr, path }
            }
        };
        lat.push(
            probe_streams(
                "slotcast HTTP-FLV",
                flv.iter().map(|u| t(u, false)).collect(),
                log,
                &clock,
                &args,
            )
            .await,
        );
        lat.push(
            probe_streams(
                "slotcast fMP4",
                mse.iter().map(|u| t(u, true)).collect(),
                log,
                &clock,
                &args,
            )
            .await,
        );
        let hls_urls: Vec<String> = hls.iter().map(|u| u.hls.clone()).collect();
        lat.push(probe_ll_hls("slotcast LL-HLS", &hls_urls, log, &clock, &args).await);
    }

    // Fan-out per N.
    let mut runs = Vec::new();
    let mut bases = std::collections::HashMap::new();
    for &n in &args.n {
        let nginx_run = fanout_run(
            "nginx",
            "RTMP",
            n,
            vec![rtmp_target.clone(); n],
            &|| nginx.pids(),
            &ngx_log,
            &clock,
            &args,
            tck,
        )
        .await;
        runs.push(first_base(&mut bases, nginx_run));
        if let (Some(s), Some(log)) = (&slot, &slot_log) {
            for mp4 in [false, true] {
                let r = match product::play_urls(&s.base, &s.program.slug, n).await {
                    Ok(urls) => {
                        let targets = urls
                            .iter()
                            .map(|u| {
                                let path = product::path_of(if mp4 { &u.mse } else { &u.flv });
                                if mp4 {
                                    Target::Mp4 {
                                        addr: s.d.http,
                                        path,
                                    }
                                } else {
                                    Target::Flv {
                                        addr: s.d.http,
                                        path,
                                    }
                                }
                            })
                            .collect();
                        fanout_run(
                            "slotcast",
                            if mp4 { "fMP4" } else { "HTTP-FLV" },
                            n,
                            targets,
                            &|| s.d.pids(),
                            log,
                            &clock,
                            &args,
                            tck,
                        )
                        .await
                    }
                    Err(e) => Run::failed("slotcast", if mp4 { "fMP4" } else { "HTTP-FLV" }, n, e),
                };
                runs.push(first_base(&mut bases, r));
            }
        }
        print_n(&runs, n, &src, &args);
    }
    ngx_log.stop.store(true, Ordering::Relaxed);
    if let Some(l) = &slot_log {
        l.stop.store(true, Ordering::Relaxed);
    }

    let report = report(
        &runs,
        &lat,
        &src,
        &args,
        slot_missing.as_deref(),
        &notes,
        started.elapsed(),
    );
    println!("{report}");
    drop(nginx);
    drop(slot);
    Ok(())
}

/// The cost of a channel nobody watches: CPU seconds per second of each server over
/// `args.seconds`, both receiving the same ingest, nobody playing (slotcast records the
/// program meanwhile; nginx writes its HLS).
async fn idle(nginx: &Nginx, s: &Slot, args: &Args, tck: f64) {
    let (ngx_ms, ours_ms, secs) = cpu_ms_per_s(
        nginx,
        s,
        Duration::from_secs(args.seconds),
        tck,
        args.callgrind,
    )
    .await;
    println!(
        "idle channel (one publisher, no viewer, {secs:.0} s): nginx-rtmp {ngx_ms:.1} ms CPU per s, \
         slotcast {ours_ms:.1} ms CPU per s ({:.2}× nginx's)",
        ours_ms / ngx_ms.max(1e-9)
    );
    println!("RESULT fanout.idle.slotcast.cpu_ms_per_s={ours_ms:.1}   (nginx rtmp {ngx_ms:.1})");
}

/// The cost of channels with filler and no viewer: slotcastd until a second before the
/// connect window opens (its channels — the demo ones and the bench's — have filler,
/// nobody publishes or watches) against nginx-rtmp with its publisher and no
/// player over the same seconds. Skipped when the window opens in less than 6 s.
async fn idle_filler(nginx: &Nginx, s: &Slot, args: &Args, tck: f64) {
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    let Ok(wait) = u64::try_from(s.program.connect_from - 1 - now) else {
        return;
    };
    if wait < 6 {
        return;
    }
    let (ngx_ms, ours_ms, secs) =
        cpu_ms_per_s(nginx, s, Duration::from_secs(wait), tck, args.callgrind).await;
    println!(
        "idle channels with filler (no publisher, no viewer, {secs:.0} s): nginx-rtmp (one \
         publisher, no player) {ngx_ms:.1} ms CPU per s, slotcast {ours_ms:.1} ms CPU per s \
         ({:.2}× nginx's)",
        ours_ms / ngx_ms.max(1e-9)
    );
    println!(
        "RESULT fanout.idle_filler.slotcast.cpu_ms_per_s={ours_ms:.1}   (nginx rtmp {ngx_ms:.1})"
    );
}

/// CPU milliseconds per second of nginx and of slotcastd over the next `window`, and the
/// seconds measured.
async fn cpu_ms_per_s(
    nginx: &Nginx,
    s: &Slot,
    window: Duration,
    tck: f64,
    callgrind: bool,
) -> (f64, f64, f64) {
    let (ngx, ours) = (nginx.pids(), s.d.pids());
    let callgrind_control = |arg: &str| {
        if callgrind {
            let pid = s.d.server.pid().to_string();
            let out = std::process::Command::new("callgrind_control")
                .args([arg, &pid])
                .output();
            if !out.is_ok_and(|o| o.status.success()) {
                println!("callgrind_control {arg} {pid} failed");
            }
        }
    };
    callgrind_control("--zero");
    let before = (procs::cpu_ticks(&ngx), procs::cpu_ticks(&ours));
    let t = Instant::now();
    tokio::time::sleep(window).await;
    callgrind_control("--dump");
    let secs = t.elapsed().as_secs_f64();
    let per_s = |ticks: u64| ticks as f64 / tck / secs * 1000.0;
    let ngx_ms = per_s(procs::cpu_ticks(&ngx) - before.0);
    let ours_ms = per_s(procs::cpu_ticks(&ours) - before.1);
    (ngx_ms, ours_ms, secs)
}

/// Memory is counted from each server's RSS before its first fan-out run (with the ingest
/// running): freed memory an allocator keeps would otherwise hide in a later run's
/// starting point. An upper bound of the memory viewers cost.
fn first_base(bases: &mut std::collections::HashMap<&'static str, u64>, mut r: Run) -> Run {
    if r.ok() {
        let b = *bases.entry(r.server).or_insert(r.rss_base_kib);
        r.rss_base_kib = b.min(r.rss_base_kib);
    }
    r
}

fn nginx_version() -> String {
    std::process::Command::new("/usr/sbin/nginx")
        .arg("-v")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .replace("nginx version: ", "")
        })
        .unwrap_or_default()
}

/// slotcastd running with a confirmed program.
struct Slot {
    d: Slotcastd,
    base: String,
    program: product::Program,
}

/// The slotcastd binary to measure.
fn slotcastd_bin(args: &Args) -> Res<PathBuf> {
    let bin = args.slotcastd.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("release/slotcastd")
    });
    if !bin.exists() {
        return Err(format!(
            "{} not found (cargo build --release -p slotcastd)",
            bin.display()
        ));
    }
    Ok(bin)
}

async fn start_slotcast(args: &Args, dir: &Path, max_n: usize) -> Res<Slot> {
    let bin = slotcastd_bin(args)?;
    let d = Slotcastd::start(
        &bin,
        &dir.join("slotcast"),
        product::OPERATOR,
        product::PASSWORD,
    )?;
    let base = format!("http://{}", d.http);
    // Long enough for every run: latency phases, then 3 runs per N.
    let secs = 120
        + 2 * args.latency_seconds
        + args.n.len() as u64 * 3 * (args.seconds + args.settle + 30);
    let minutes = (secs.div_ceil(60) as u32).clamp(5, 36);
    let capacity = (max_n + args.probes * 3 + 100).max(2100) as u32;
    let program = product::book(&base, &d.data, capacity, minutes, Duration::from_secs(20))
        .await
        .map_err(|e| format!("product flow: {e}; slotcastd log:\n{}", d.log_tail()))?;
    println!(
        "slotcast: slotcastd on HTTP {} RTMP {}; channel {} (capacity {capacity}, 2500 kbit/s), \
         program {} booked for {minutes} min, confirmed with the e-mailed key",
        d.http, d.rtmp, program.channel, program.slug
    );
    Ok(Slot { d, base, program })
}

/// Waits for the connect window, publishes with the reservation key (as an encoder
/// would, before the start), waits for the start and checks that HTTP-FLV and the fMP4
/// stream carry the published frames. When the fMP4 stream does not, publishes once more
/// after the start and says so in `notes`.
async fn go_live(
    s: &mut Slot,
    ingest: &Ingest,
    clock: &Arc<Clock>,
    notes: &mut Vec<String>,
) -> Res<Arc<SendLog>> {
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    let wait = s.program.connect_from + 1 - now;
    if wait > 0 {
        println!("slotcast: waiting {wait} s for the connect window");
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
    if !s.d.server.alive() {
        return Err(format!("slotcastd exited; its log:\n{}", s.d.log_tail()));
    }
    let publish = || async {
        ingest
            .publish(s.d.rtmp, "live", &s.program.key)
            .await
            .map_err(|e| {
                format!(
                    "publish to rtmp://{}/live/<reservation key> failed: {e}",
                    s.d.rtmp
                )
            })
    };
    let mut log = publish().await?;
    // Viewers get the publisher's media from the start (filler before it).
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    let wait = (s.program.start + 2 - now).max(3);
    println!("slotcast: publishing; the program starts in {wait} s");
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    let flv = plays(s, false, &log, clock).await?;
    if let Err(e) = plays(s, true, &log, clock).await {
        let note = format!(
            "with the publisher connected before the start (in the connect window), {e}; \
             the bench published again after the start to measure fMP4 and LL-HLS"
        );
        println!("slotcast: {note}");
        notes.push(note);
        log.stop.store(true, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(5);
        while log.is_running() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        log = publish().await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        plays(s, false, &log, clock).await?;
        plays(s, true, &log, clock).await?;
    }
    println!(
        "slotcast: live (publishing with the reservation key; HTTP-FLV and fMP4 carry the published frames, {flv} matched)"
    );
    Ok(log)
}

/// Plays the channel for up to 10 s over HTTP-FLV or fMP4 with a fresh play token; Ok
/// (frames matched) once 10 of the publisher's frames arrived.
async fn plays(s: &Slot, mp4: bool, log: &Arc<SendLog>, clock: &Arc<Clock>) -> Res<usize> {
    let url = product::play_urls(&s.base, &s.program.slug, 1).await?;
    let stat = Arc::new(Stat::new());
    let probe = Arc::new(Probe::new(log.clone(), Duration::ZERO));
    let (addr, what) = (s.d.http, if mp4 { "mp4" } else { "flv" });
    let target = if mp4 {
        Target::Mp4 {
            addr,
            path: product::path_of(&url[0].mse),
        }
    } else {
        Target::Flv {
            addr,
            path: product::path_of(&url[0].flv),
        }
    };
    let task = tokio::spawn(viewer::run(
        target,
        stat.clone(),
        clock.clone(),
        Some(probe.clone()),
        None,
    ));
    let matched = || probe.latencies.lock().expect("lock").len();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until && matched() < 10 {
        if stat.state.load(Ordering::Relaxed) > PLAYING {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    if matched() < 10 {
        let e = stat.error.lock().expect("lock").clone();
        return Err(format!(
            "GET /live/{}.{what} did not carry the published frames within 10 s \
             ({} bytes, {} frames, {} of them the publisher's{})",
            s.program.channel,
            stat.bytes.load(Ordering::Relaxed),
            stat.frames.load(Ordering::Relaxed),
            matched(),
            e.map_or(String::new(), |e| format!("; {e}"))
        ));
    }
    Ok(matched())
}

/// Latency figures of one protocol.
struct Lat {
    name: &'static str,
    matched: usize,
    unmatched: u64,
    p50: f64,
    p95: f64,
    max: f64,
    error: Option<String>,
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn lat_of(name: &'static str, probes: &[Arc<Probe>], stats: &[Arc<Stat>]) -> Lat {
    let mut all: Vec<f64> = probes
        .iter()
        .flat_map(|p| p.latencies.lock().expect("lock").clone())
        .collect();
    all.sort_by(f64::total_cmp);
    let unmatched = probes
        .iter()
        .map(|p| p.unmatched.load(Ordering::Relaxed))
        .sum();
    let error = stats
        .iter()
        .find_map(|s| s.error.lock().expect("lock").clone())
        .filter(|_| all.is_empty());
    let l = Lat {
        name,
        matched: all.len(),
        unmatched,
        p50: pct(&all, 0.5),
        p95: pct(&all, 0.95),
        max: all.last().copied().unwrap_or(f64::NAN),
        error,
    };
    println!(
        "latency {name:<18} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} frames matched, {} not){}",
        l.p50,
        l.p95,
        l.max,
        l.matched,
        l.unmatched,
        l.error
            .as_deref()
            .map_or(String::new(), |e| format!("  error: {e}"))
    );
    l
}

/// How long a fan-out viewer waits after a short read (see `viewer::run`).
const PACE: Duration = Duration::from_millis(50);

const WARM: Duration = Duration::from_secs(4);

/// Runs `n` latency probes, each started by `spawn(i, probe, stat)`, for
/// `--latency-seconds`, and sums up what they measured.
async fn probe_with<F>(
    name: &'static str,
    n: usize,
    log: &Arc<SendLog>,
    args: &Args,
    mut spawn: impl FnMut(usize, Arc<Probe>, Arc<Stat>) -> F,
) -> Lat
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut probes = Vec::new();
    let mut stats = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let p = Arc::new(Probe::new(log.clone(), WARM));
        let s = Arc::new(Stat::new());
        tasks.push(tokio::spawn(spawn(i, p.clone(), s.clone())));
        probes.push(p);
        stats.push(s);
    }
    tokio::time::sleep(Duration::from_secs(args.latency_seconds)).await;
    for t in &tasks {
        t.abort();
    }
    lat_of(name, &probes, &stats)
}

async fn probe_streams(
    name: &'static str,
    targets: Vec<Target>,
    log: &Arc<SendLog>,
    clock: &Arc<Clock>,
    args: &Args,
) -> Lat {
    let mut targets = targets.into_iter();
    probe_with(name, targets.len(), log, args, |_, p, s| {
        let t = targets.next().expect("one target per probe");
        viewer::run(t, s, clock.clone(), Some(p), None)
    })
    .await
}

async fn probe_hls(name: &'static str, url: &str, log: &Arc<SendLog>, args: &Args) -> Lat {
    probe_with(name, args.probes, log, args, |_, p, s| {
        viewer::hls_ts(url.to_owned(), HLS_POLL, s, p)
    })
    .await
}

/// How often the nginx HLS probe reloads its playlist: far more often than a player
/// (which waits about a target duration), so polling adds little to nginx's figure.
const HLS_POLL: Duration = Duration::from_millis(100);

async fn probe_ll_hls(
    name: &'static str,
    urls: &[String],
    log: &Arc<SendLog>,
    clock: &Arc<Clock>,
    args: &Args,
) -> Lat {
    probe_with(name, urls.len(), log, args, |i, p, s| {
        viewer::ll_hls(urls[i].clone(), s, clock.clone(), p)
    })
    .await
}

/// One fan-out run's figures.
struct Run {
    server: &'static str,
    proto: &'static str,
    n: usize,
    playing: usize,
    seconds: f64,
    delivered_mbps: f64,
    cpu_s: f64,
    rss_base_kib: u64,
    rss_peak_kib: u64,
    behind: usize,
    client_cpu_s: f64,
    error: Option<String>,
}

impl Run {
    fn failed(server: &'static str, proto: &'static str, n: usize, e: String) -> Self {
        Run {
            server,
            proto,
            n,
            playing: 0,
            seconds: 0.0,
            delivered_mbps: 0.0,
            cpu_s: 0.0,
            rss_base_kib: 0,
            rss_peak_kib: 0,
            behind: n,
            client_cpu_s: 0.0,
            error: Some(e),
        }
    }

    fn ok(&self) -> bool {
        self.delivered_mbps > 0.0
    }

    /// CPU seconds per delivered Gbit.
    fn cpu_per_gbit(&self) -> f64 {
        self.cpu_s / (self.delivered_mbps * self.seconds / 1000.0)
    }

    /// Extra resident memory per viewer, KiB.
    fn extra_kib(&self) -> f64 {
        self.rss_peak_kib.saturating_sub(self.rss_base_kib) as f64 / self.n as f64
    }
}

#[allow(clippy::too_many_arguments)]
async fn fanout_run(
    server: &'static str,
    proto: &'static str,
    n: usize,
    targets: Vec<Target>,
    pids: &dyn Fn() -> Vec<u32>,
    log: &Arc<SendLog>,
    clock: &Arc<Clock>,
    args: &Args,
    tck: f64,
) -> Run {
    if !log.is_running() {
        let why = log.ended.lock().expect("lock").clone().unwrap_or_default();
        return Run::failed(server, proto, n, format!("the ingest ended: {why}"));
    }
    let pids = pids();
    let rss_base = procs::rss_kib(&pids);
    let peak = Arc::new(AtomicU64::new(rss_base));
    let sampler = {
        let (pids, peak) = (pids.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(procs::rss_kib(&pids), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // Connect in waves of 100 every 50 ms (a listen backlog is finite).
    let mut stats = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (i, t) in targets.into_iter().enumerate() {
        if i > 0 && i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = Arc::new(Stat::new());
        tasks.push(tokio::spawn(viewer::run(
            t,
            s.clone(),
            clock.clone(),
            None,
            Some(PACE),
        )));
        stats.push(s);
    }
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let waiting = stats
            .iter()
            .filter(|s| s.state.load(Ordering::Relaxed) == viewer::CONNECTING)
            .count();
        if waiting == 0 || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let playing = stats
        .iter()
        .filter(|s| s.state.load(Ordering::Relaxed) == PLAYING)
        .count();

    let bytes = |stats: &[Arc<Stat>]| -> u64 {
        stats.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum()
    };
    clock.measuring.store(true, Ordering::Relaxed);
    let (b0, c0, me0, t0) = (
        bytes(&stats),
        procs::cpu_ticks(&pids),
        self_cpu(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (b1, c1, me1, t1) = (
        bytes(&stats),
        procs::cpu_ticks(&pids),
        self_cpu(),
        Instant::now(),
    );
    clock.measuring.store(false, Ordering::Relaxed);
    let seconds = (t1 - t0).as_secs_f64();
    let behind = stats
        .iter()
        .filter(|s| {
            s.state.load(Ordering::Relaxed) != PLAYING
                || s.max_lag.load(Ordering::Relaxed) > args.behind_ms
                || s.lag_now(clock) > args.behind_ms
        })
        .count();
    let error = stats
        .iter()
        .find_map(|s| s.error.lock().expect("lock").clone());
    for t in &tasks {
        t.abort();
    }
    sampler.abort();
    let rss_peak = peak.load(Ordering::Relaxed);
    let r = Run {
        server,
        proto,
        n,
        playing,
        seconds,
        delivered_mbps: (b1 - b0) as f64 * 8.0 / seconds / 1e6,
        cpu_s: (c1 - c0) as f64 / tck,
        rss_base_kib: rss_base,
        rss_peak_kib: rss_peak,
        behind,
        client_cpu_s: (me1 - me0) / tck,
        error,
    };
    println!(
        "{server:<8} {proto:<8} N={n:<5} playing {playing:>5}  {:>8.1} Mbit/s  CPU {:>6.2} s ({:>6.3} s/Gbit)  \
         RSS {:>7.1} → {:>7.1} MiB (+{:>6.1} KiB/viewer from this run's start)  behind {behind:>5}  client CPU {:.1} s{}",
        r.delivered_mbps,
        r.cpu_s,
        r.cpu_per_gbit(),
        rss_base as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
        r.extra_kib(),
        r.client_cpu_s,
        r.error
            .as_deref()
            .map_or(String::new(), |e| format!("  first error: {e}"))
    );
    // Let the server notice the closed connections before the next run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r
}

/// This process's CPU ticks (the viewers and publishers).
fn self_cpu() -> f64 {
    procs::cpu_ticks(&[std::process::id()]) as f64
}

fn print_n(runs: &[Run], n: usize, src: &Source, args: &Args) {
    let mut out = String::new();
    table_n(&mut out, runs, n, src, args);
    println!("{out}");
}

fn fmt(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "—".into()
    }
}

fn table_n(out: &mut String, runs: &[Run], n: usize, src: &Source, args: &Args) {
    let rows: Vec<&Run> = runs.iter().filter(|r| r.n == n).collect();
    let goal = goal_for(n);
    let base = rows.iter().copied().find(|r| r.server == "nginx" && r.ok());
    let _ = writeln!(
        out,
        "\nN = {n} viewers (ingest {:.2} Mbit/s: {:.0} Mbit/s if every viewer keeps up; {} s measured)\n",
        src.mbps(),
        src.mbps() * n as f64,
        args.seconds
    );
    let _ = writeln!(
        out,
        "| server, protocol | delivered Mbit/s | CPU s per Gbit | Gbit per CPU s vs nginx (goal ≥ {goal}) | peak RSS MiB | extra KiB per viewer (upper bound) | KiB per added viewer since the last N (goal ≤ 32) | vs nginx | behind{} |",
        if n <= 2000 { " (goal 0)" } else { "" }
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        if !r.ok() {
            let _ = writeln!(
                out,
                "| {} {} | — | — | — | — | — | — | — | {} of {} (failed: {}) |",
                r.server,
                r.proto,
                r.behind,
                r.n,
                r.error.as_deref().unwrap_or("?")
            );
            continue;
        }
        let (eff, mem) = match base {
            Some(b) if r.server != "nginx" => {
                let eff = b.cpu_per_gbit() / r.cpu_per_gbit();
                let mem = r.extra_kib() / b.extra_kib();
                (
                    format!("**{}** {}", fmt(eff, 2), mark(eff >= goal)),
                    format!("{}×", fmt(mem, 2)),
                )
            }
            Some(_) => ("1 (baseline)".into(), "1 (baseline)".into()),
            None => ("—".into(), "—".into()),
        };
        let extra = r.extra_kib();
        let behind_goal = if n <= 2000 && r.server != "nginx" {
            format!(" {}", mark(r.behind == 0))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} {} | {:.0} ({:.0} % of N × ingest{}) | {:.3} | {eff} | {:.1} | {:.1} | {} | {mem} | {} of {}{behind_goal} |",
            r.server,
            r.proto,
            r.delivered_mbps,
            100.0 * r.delivered_mbps / (src.mbps() * n as f64),
            match base {
                Some(b) if r.server != "nginx" => {
                    format!(", {}× nginx", fmt(r.delivered_mbps / b.delivered_mbps, 2))
                }
                _ => String::new(),
            },
            r.cpu_per_gbit(),
            r.rss_peak_kib as f64 / 1024.0,
            extra,
            match added_kib(runs, r) {
                Some(k) if r.server != "nginx" => format!("{k:.1} {}", mark(k <= 32.0)),
                Some(k) => format!("{k:.1}"),
                None => "—".into(),
            },
            r.behind,
            r.n,
        );
    }
}

/// The throughput goal at `n` viewers: 1.5× nginx's up to 500, 2× from 1000.
fn goal_for(n: usize) -> f64 {
    if n >= 1000 { 2.0 } else { 1.5 }
}

/// Memory per viewer added since the previous N of the same server and protocol: the
/// slope of peak RSS, which leaves out what a channel holds once whatever its audience
/// (the feeds, bounded at 4 MiB each, fill within the first run).
fn added_kib(runs: &[Run], r: &Run) -> Option<f64> {
    let prev = runs
        .iter()
        .filter(|p| p.server == r.server && p.proto == r.proto && p.n < r.n && p.ok())
        .max_by_key(|p| p.n)?;
    Some((r.rss_peak_kib as f64 - prev.rss_peak_kib as f64) / (r.n - prev.n) as f64)
}

fn mark(ok: bool) -> &'static str {
    if ok { "✔" } else { "✘" }
}

fn report(
    runs: &[Run],
    lat: &[Lat],
    src: &Source,
    args: &Args,
    slot_missing: Option<&str>,
    notes: &[String],
    took: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n======== fanout summary ({:.0} s) ========",
        took.as_secs_f64()
    );
    if let Some(e) = slot_missing {
        let _ = writeln!(out, "slotcast side not measured: {e}");
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    for &n in &args.n {
        table_n(&mut out, runs, n, src, args);
    }
    let _ = writeln!(
        out,
        "\nGlass-to-glass latency (publisher's send of a video frame → the frame complete at a probe; {} probes per protocol, {} s, first {} s not counted)\n",
        args.probes,
        args.latency_seconds,
        WARM.as_secs()
    );
    let _ = writeln!(
        out,
        "| protocol | p50 ms | p95 ms | max ms | frames matched | baseline | p95 vs baseline | goal (p95) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let find = |name: &str| lat.iter().find(|l| l.name == name);
    for l in lat {
        let (base, goal) = match l.name {
            "slotcast HTTP-FLV" | "slotcast fMP4" => (find("nginx RTMP play"), Some(500.0)),
            "slotcast LL-HLS" => (find("nginx HLS"), Some(2500.0)),
            _ => (None, None),
        };
        let ratio = base.map_or("baseline".into(), |b| format!("{}×", fmt(l.p95 / b.p95, 2)));
        let goal = goal.map_or(String::new(), |g: f64| {
            format!("≤ {g:.0} ms {}", mark(l.p95 <= g))
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ({} unmatched){} | {} | {ratio} | {goal} |",
            l.name,
            fmt(l.p50, 1),
            fmt(l.p95, 1),
            fmt(l.max, 1),
            l.matched,
            l.unmatched,
            l.error
                .as_deref()
                .map_or(String::new(), |e| format!(" — {e}")),
            base.map_or("—", |b| b.name),
        );
    }
    let _ = writeln!(out);
    for r in runs {
        let key = format!(
            "fanout.{}.{}.n{}",
            r.server,
            r.proto.to_ascii_lowercase().replace('-', ""),
            r.n
        );
        let _ = writeln!(out, "RESULT {key}.mbps={:.1}", r.delivered_mbps);
        let _ = writeln!(
            out,
            "RESULT {key}.cpu_s_per_gbit={}",
            fmt(r.cpu_per_gbit(), 3)
        );
        let _ = writeln!(
            out,
            "RESULT {key}.extra_kib_per_viewer={:.1}",
            r.extra_kib()
        );
        if let Some(k) = added_kib(runs, r) {
            let _ = writeln!(out, "RESULT {key}.kib_per_added_viewer={k:.1}");
        }
        let _ = writeln!(out, "RESULT {key}.behind={}", r.behind);
        let _ = writeln!(out, "RESULT {key}.playing={}", r.playing);
    }
    for l in lat {
        let key = l.name.to_ascii_lowercase().replace([' ', '-'], "_");
        let _ = writeln!(out, "RESULT fanout.latency.{key}.p95_ms={}", fmt(l.p95, 0));
    }
    out
}

/// One viewer for 5 s.
async fn view(url: &str) -> Res<()> {
    let u = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let addr = u
        .socket_addrs(|| Some(80))
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or("no address")?;
    let path = product::path_of(url);
    let target = if u.path().ends_with(".mp4") {
        Target::Mp4 { addr, path }
    } else {
        Target::Flv { addr, path }
    };
    let (stat, clock) = (Arc::new(Stat::new()), Arc::new(Clock::new()));
    let task = tokio::spawn(viewer::run(target, stat.clone(), clock.clone(), None, None));
    tokio::time::sleep(Duration::from_secs(5)).await;
    task.abort();
    println!(
        "{} bytes, {} frames, state {}, lag now {} ms, error {:?}",
        stat.bytes.load(Ordering::Relaxed),
        stat.frames.load(Ordering::Relaxed),
        stat.state.load(Ordering::Relaxed),
        stat.lag_now(&clock),
        stat.error.lock().expect("lock")
    );
    Ok(())
}

/// Parses a capture of a stream as a viewer or probe would.
fn parse_capture(src: &Source, path: &Path) -> Res<()> {
    use media::{Event, FlvParser, Mp4Parser, TsDemux};
    let keys: std::collections::HashSet<u64> = src.media.iter().filter_map(|t| t.key).collect();
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut found = Vec::new();
    let mut times = Vec::new();
    let mut on = |Event::Video { media_ms, keys }| {
        times.push(media_ms);
        found.extend(keys);
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("flv") => {
            let mut p = FlvParser::new(true);
            for piece in data.chunks(4096) {
                p.feed(piece, &mut on)?;
            }
        }
        Some("ts") => {
            let mut d = TsDemux::default();
            d.feed(&data, &mut found);
            d.flush(&mut found);
        }
        _ => {
            let mut p = Mp4Parser::new(true);
            for piece in data.chunks(4096) {
                p.feed(piece, &mut on)?;
            }
            println!("boxes: {}", p.boxes);
        }
    }
    let hit = found.iter().filter(|k| keys.contains(k)).count();
    println!(
        "{} video events (media ms {:?} … {:?}), {} frames keyed, {hit} match the source",
        times.len(),
        times.first(),
        times.last(),
        found.len()
    );
    Ok(())
}

/// Remuxes the source with ffmpeg to fragmented MP4 and MPEG-TS and checks that the
/// parsers find its frames and that the keys match the FLV's.
fn check_parsers(src: &Source) -> Res<()> {
    use media::{Event, FlvParser, Mp4Parser, TsDemux};
    use std::collections::HashSet;
    let keys: HashSet<u64> = src.media.iter().filter_map(|t| t.key).collect();
    let frames = src.media.iter().filter(|t| t.key.is_some()).count();
    println!(
        "source: {frames} video frames, {} distinct keys",
        keys.len()
    );
    let dir = Scratch(std::env::temp_dir().join(format!("fanout-check-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(|e| e.to_string())?;
    let remux = |out: &Path, extra: &[&str]| -> Res<Vec<u8>> {
        let st = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&src.path)
            .args(["-t", "10", "-c", "copy"])
            .args(extra)
            .arg(out)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("ffmpeg remux to {}: {st}", out.display()));
        }
        std::fs::read(out).map_err(|e| e.to_string())
    };
    let count = |found: &[u64], what: &str, min: usize| -> Res<()> {
        let hit = found.iter().filter(|k| keys.contains(k)).count();
        println!(
            "{what}: {} frames keyed, {hit} match the source",
            found.len()
        );
        if hit < min {
            return Err(format!(
                "{what}: only {hit} of {} frames match",
                found.len()
            ));
        }
        Ok(())
    };
    // FLV, fed in odd pieces.
    let flv = std::fs::read(&src.path).map_err(|e| e.to_string())?;
    let mut p = FlvParser::new(true);
    let mut found = Vec::new();
    let mut last_ms = 0;
    for piece in flv.chunks(7777) {
        p.feed(piece, &mut |Event::Video { media_ms, keys }| {
            found.extend(keys);
            last_ms = media_ms;
        })?;
    }
    count(&found, "FLV", frames * 99 / 100)?;
    println!("FLV: last frame at {last_ms} ms");
    // Fragmented MP4 (one fragment per GOP, audio and video in each moof).
    let mp4 = remux(
        &dir.0.join("a.mp4"),
        &[
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
            "-f",
            "mp4",
        ],
    )?;
    for keep in [true, false] {
        let mut p = Mp4Parser::new(keep);
        let mut found = Vec::new();
        let mut times = Vec::new();
        for piece in mp4.chunks(5000) {
            p.feed(piece, &mut |Event::Video { media_ms, keys }| {
                found.extend(keys);
                times.push(media_ms);
            })?;
        }
        println!("fMP4 (keep {keep}): fragment end times {times:?}");
        if keep {
            count(&found, "fMP4", 240)?;
        } else if times.len() < 4 {
            return Err("fMP4: fragments not found".into());
        }
    }
    // MPEG-TS (Annex-B).
    let ts = remux(&dir.0.join("a.ts"), &["-f", "mpegts"])?;
    let mut d = TsDemux::default();
    let mut found = Vec::new();
    for piece in ts.chunks(1000) {
        d.feed(piece, &mut found);
    }
    d.flush(&mut found);
    count(&found, "MPEG-TS", 240)?;
    Ok(())
}
