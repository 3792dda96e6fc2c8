//! `glass` — glass-to-glass latency in a real headless Chromium playing the program
//! page's own player (issue 15, goal 2: fMP4/MSE p95 ≤ 0.5 s, LL-HLS p95 ≤ 2.0 s), against
//! nginx-rtmp's HLS played by the same Chromium in the same invocation.
//!
//! The source is a clip whose every frame shows its frame number as a row of black and
//! white blocks (see `glass/marker.rs`), encoded once by ffmpeg and cached. `fanout`'s RTMP
//! publisher sends it in real time, looping, and logs when each frame left. In the
//! browser, a `requestVideoFrameCallback` loop on the page's `<video>` draws each presented
//! frame's top band onto a canvas, reads the frame number and records the frame's
//! `expectedDisplayTime`. Browser and bench run on one machine; the browser's clock
//! (`performance.timeOrigin + performance.now()`) is tied to the bench's monotonic clock by
//! the round trip of a script call with the smallest delay (its half is the error bound,
//! printed). A frame's latency is when Chromium expected to show it minus when the
//! publisher handed it to the socket. The first `--warm` seconds of each path are not
//! counted.
//!
//! Paths, each in a fresh browser:
//! - **nginx HLS** (the baseline): nginx with libnginx-mod-rtmp (`fanout`'s configuration:
//!   1 s fragments, 4 s playlist) gets the same publish; a bare page with
//!   `<video src=…m3u8>` plays it with Chromium's built-in HLS support.
//! - **slotcast fMP4/MSE**: slotcastd (release, SQLite, one-minute slots) is driven through
//!   the product — operator, channel, premium member, booking, the key from the e-mail
//!   outbox, confirmation — and the publisher goes live with the reservation key; the
//!   browser opens `/programs/{slug}` and the page's player (`player.js`, `mse.js`) plays
//!   as it does for any viewer: in Chromium, the live fMP4 stream through MSE.
//! - **slotcast LL-HLS**: the same page with `?via=hls`, so the player plays the grant's
//!   LL-HLS through MSE itself (`llhls.js`: blocking playlist reloads, part by part) — what
//!   it does by itself when a proxy holds the fMP4 stream back.
//! - **slotcast native HLS**: the same page, with `MediaSource` removed before the page's
//!   scripts run (DevTools `Page.addScriptToEvaluateOnNewDocument`), so the player takes
//!   its fallback for browsers without MSE — `video.src` = the grant's LL-HLS playlist (the
//!   path Safari on iOS takes), played by Chromium's built-in HLS support, which is not
//!   Safari's: its requests, summed up below, show whether it used the low-latency
//!   extensions.
//!
//! Figures: p50, p95 and max of the frames' latency, frames matched, and each p95 as a
//! ratio against the baseline's. `expectedDisplayTime` is the compositor's estimate of
//! when the frame reaches the screen (headless Chromium has no physical display). For the
//! HLS paths, their requests (Resource Timing) are summed up: playlist loads, blocking
//! reloads (`_HLS_msn`), parts and whole segments. Screenshots of
//! the playing pages go to `--shots`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[allow(dead_code)]
#[path = "fanout/amf.rs"]
mod amf;
#[path = "fanout/ingest.rs"]
mod ingest;
#[path = "glass/marker.rs"]
mod marker;
#[allow(dead_code)]
#[path = "fanout/media.rs"]
mod media;
#[path = "glass/origin.rs"]
mod origin;
#[allow(dead_code)]
#[path = "fanout/procs.rs"]
mod procs;
#[allow(dead_code)]
#[path = "fanout/product.rs"]
mod product;
#[allow(dead_code)]
#[path = "fanout/publish.rs"]
mod publish;
#[allow(dead_code)]
#[path = "fanout/rtmp.rs"]
mod rtmp;
#[allow(dead_code)]
#[path = "fanout/source.rs"]
mod source;
#[allow(dead_code)]
#[path = "fanout/viewer.rs"]
mod viewer;
#[path = "glass/webdriver.rs"]
mod webdriver;

use clap::Parser;
use ingest::{Ingest, Scratch};
use procs::{Nginx, Slotcastd};
use publish::SendLog;
use serde_json::{Value, json};
use slotcast_bench::Res;
use source::Source;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use webdriver::{Driver, Session};

#[derive(Debug, Parser)]
#[command(
    about = "Glass-to-glass latency in headless Chromium playing slotcast's program page (fMP4/MSE, LL-HLS) against nginx-rtmp's HLS, in the same run"
)]
struct Args {
    /// Measured seconds per path (after playback started and --warm).
    #[arg(long, default_value_t = 25)]
    seconds: u64,
    /// Seconds of playback not counted at the start of each path.
    #[arg(long, default_value_t = 5)]
    warm: u64,
    /// The slotcastd binary (default $CARGO_TARGET_DIR/release/slotcastd).
    #[arg(long)]
    slotcastd: Option<PathBuf>,
    /// Where the marker clip is cached (default $HOME/.cache/slotcast/bench).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Where the screenshots go (glass-<path>.png).
    #[arg(long, default_value = "/tmp")]
    shots: PathBuf,
    /// Only the baseline (no slotcast side).
    #[arg(long)]
    nginx_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The publisher runs on a runtime of its own, so that the bench's own work (browser
    // calls, the baseline's page server) never delays a frame.
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
            eprintln!("glass: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stops a publisher and waits (briefly) for its session to end.
async fn stop(log: &SendLog) {
    log.stop.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(3);
    while log.is_running() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The publisher's key of each frame number (`None` where two frames share one).
fn frame_keys(src: &Source) -> Res<Vec<Option<u64>>> {
    let frame_ms = 1000 / marker::FPS;
    let n = (marker::SECONDS * marker::FPS) as usize;
    let mut keys = vec![None; n];
    let mut seen = HashSet::new();
    let mut dup = HashSet::new();
    // Without B-frames the i-th video frame of the file is frame i (the file's video may
    // start a little after 0, behind the audio's priming).
    let video: Vec<_> = src.media.iter().filter(|t| t.key.is_some()).collect();
    let first = video.first().map_or(0, |t| t.ts);
    for (i, t) in video.iter().enumerate() {
        let Some(k) = t.key else { continue };
        if t.ts - first != i as u32 * frame_ms {
            return Err(format!(
                "video frame {i} at {} ms is off the {} fps grid",
                t.ts,
                marker::FPS
            ));
        }
        if i < n {
            keys[i] = Some(k);
        }
        if !seen.insert(k) {
            dup.insert(k);
        }
    }
    for k in &mut keys {
        if k.is_some_and(|k| dup.contains(&k)) {
            *k = None;
        }
    }
    let known = keys.iter().filter(|k| k.is_some()).count();
    if known < n * 9 / 10 {
        return Err(format!("only {known} of {n} frames have a distinct key"));
    }
    Ok(keys)
}

async fn run(args: Args, ingest_rt: tokio::runtime::Handle) -> Res<()> {
    let started = Instant::now();
    let cache = args.cache.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
            .join(".cache/slotcast/bench")
    });
    let path = marker::ensure(&cache)?;
    let src = Arc::new(source::load(&path)?);
    let keys = frame_keys(&src)?;
    let scratch =
        Scratch(std::env::temp_dir().join(format!("slotcast-glass-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).map_err(|e| e.to_string())?;
    let ingest = Ingest {
        rt: ingest_rt,
        src: Arc::clone(&src),
    };
    // Every time the bench handles is milliseconds since this instant.
    let anchor = Instant::now();
    println!(
        "glass: marker clip {} ({:.2} Mbit/s, {} s loop, {} frames keyed); {} s measured per path after {} s warm-up; \
         {} cores",
        src.path.display(),
        src.mbps(),
        src.loop_ms / 1000,
        keys.iter().filter(|k| k.is_some()).count(),
        args.seconds,
        args.warm,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // slotcast first: the booking takes up to a minute to reach its slot; the baseline is
    // measured meanwhile.
    let mut notes = Vec::new();
    let mut slot = None;
    if args.nginx_only {
        notes.push("slotcast not run (--nginx-only)".to_owned());
    } else {
        match start_slotcast(&args, &scratch.0).await {
            Ok(s) => slot = Some(s),
            Err(e) => {
                println!("slotcast: {e}");
                notes.push(format!("slotcast not measured: {e}"));
            }
        }
    }
    let driver = Driver::start().await?;
    let mut lats = Vec::new();

    // Baseline: nginx-rtmp's HLS in Chromium's own HLS player.
    lats.push(
        match baseline(&args, &scratch.0, &ingest, &driver, &keys, anchor).await {
            Ok(l) => l,
            Err(e) => Lat::failed("nginx HLS", e),
        },
    );

    if let Some(s) = &mut slot {
        match go_live(s, &ingest).await {
            Ok(log) => {
                let page = format!("{}/programs/{}", s.base, s.program.slug);
                let paths = [
                    ("slotcast fMP4/MSE", page.clone(), None),
                    ("slotcast LL-HLS", format!("{page}?via=hls"), None),
                    ("slotcast native HLS", page, Some(HIDE_MSE)),
                ];
                for (name, page, before) in paths {
                    lats.push(
                        path_run(name, &page, before, &args, &driver, &log, &keys, anchor).await,
                    );
                }
                stop(&log).await;
            }
            Err(e) => {
                println!("slotcast: {e}");
                notes.push(format!("slotcast not measured: {e}"));
            }
        }
    }
    drop(driver);
    drop(slot);
    println!("{}", report(&lats, &notes, &args, started.elapsed()));
    Ok(())
}

/// What the native HLS path runs before the page's scripts: a browser without Media Source
/// Extensions, as Safari on iOS.
const HIDE_MSE: &str = "delete window.MediaSource; delete window.ManagedMediaSource;";

async fn baseline(
    args: &Args,
    dir: &std::path::Path,
    ingest: &Ingest,
    driver: &Driver,
    keys: &[Option<u64>],
    anchor: Instant,
) -> Res<Lat> {
    let nginx = Nginx::start(&dir.join("nginx"), 8)?;
    let log = ingest.publish(nginx.rtmp, "live", "bench").await?;
    let page = origin::start(nginx.http).await?;
    println!(
        "nginx: RTMP {} HTTP {} (fragments 1 s, playlist 4 s); publishing; page http://{page}/",
        nginx.rtmp, nginx.http
    );
    // Chromium's HLS gives up on a playlist that is not there yet: wait for two segments.
    let http = viewer::http_client();
    let playlist = format!("http://{}/hls/bench.m3u8", nginx.http);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let segments = match http.get(&playlist).send().await {
            Ok(r) if r.status().is_success() => {
                r.text().await.map_or(0, |t| t.matches("#EXTINF").count())
            }
            _ => 0,
        };
        if segments >= 2 {
            break;
        }
        if Instant::now() > until {
            return Err(format!("{playlist} did not list 2 segments within 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let l = path_run(
        "nginx HLS",
        &format!("http://{page}/"),
        None,
        args,
        driver,
        &log,
        keys,
        anchor,
    )
    .await;
    stop(&log).await;
    drop(nginx);
    Ok(l)
}

/// slotcastd running with a confirmed program.
struct Slot {
    d: Slotcastd,
    base: String,
    program: product::Program,
}

async fn start_slotcast(args: &Args, dir: &std::path::Path) -> Res<Slot> {
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
    let d = Slotcastd::start(
        &bin,
        &dir.join("slotcast"),
        product::OPERATOR,
        product::PASSWORD,
    )?;
    let base = format!("http://{}", d.http);
    let minutes = 6;
    let program = product::book(&base, &d.data, 100, minutes, Duration::from_secs(20))
        .await
        .map_err(|e| format!("product flow: {e}; slotcastd log:\n{}", d.log_tail()))?;
    println!(
        "slotcast: slotcastd on HTTP {} RTMP {}; channel {} (capacity 100, 2500 kbit/s), \
         program {} booked for {minutes} min from {}, confirmed with the e-mailed key",
        d.http,
        d.rtmp,
        program.channel,
        program.slug,
        slotcast_domain::jiff::Timestamp::from_second(program.start)
            .map_or_else(|_| program.start.to_string(), |t| t.to_string()),
    );
    Ok(Slot { d, base, program })
}

/// Waits for the connect window, publishes with the reservation key (as an encoder
/// would, before the start) and waits for the start.
async fn go_live(s: &mut Slot, ingest: &Ingest) -> Res<Arc<SendLog>> {
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    let wait = s.program.connect_from + 1 - now;
    if wait > 0 {
        println!("slotcast: waiting {wait} s for the connect window");
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
    if !s.d.server.alive() {
        return Err(format!("slotcastd exited; its log:\n{}", s.d.log_tail()));
    }
    let log = ingest
        .publish(s.d.rtmp, "live", &s.program.key)
        .await
        .map_err(|e| format!("publish with the reservation key: {e}"))?;
    let now = slotcast_domain::jiff::Timestamp::now().as_second();
    let wait = (s.program.start + 2 - now).max(2);
    println!("slotcast: publishing with the reservation key; the program starts in {wait} s");
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    Ok(log)
}

/// What one measured window saw.
struct Window {
    /// Latencies of the matched frames, ms, sorted.
    ms: Vec<f64>,
    /// Frames shown whose marker did not read (filler, a torn or smeared frame).
    misread: u64,
    /// Frames read whose send was not found or lay outside 0–30 s before.
    unmatched: u64,
    /// Frames the publisher sent during the window (25 per second).
    expected: u64,
    /// Mean of the media buffered ahead of the playhead, s.
    ahead_s: f64,
    /// What the `<video>` played (its `currentSrc`).
    src: String,
}

impl Window {
    fn pct(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.ms.len() as f64).ceil() as usize;
        self.ms[rank.clamp(1, self.ms.len()) - 1]
    }

    fn max(&self) -> f64 {
        self.ms.last().copied().unwrap_or(f64::NAN)
    }

    fn line(&self) -> String {
        format!(
            "p50 {:.0} ms  p95 {:.0} ms  max {:.0} ms  ({} frames matched of {} sent; {} misread, {} unmatched; \
             {:.2} s buffered ahead)",
            self.pct(0.5),
            self.pct(0.95),
            self.max(),
            self.ms.len(),
            self.expected,
            self.misread,
            self.unmatched,
            self.ahead_s,
        )
    }
}

/// One path's figures, as the page's player plays.
struct Lat {
    name: &'static str,
    main: Option<Window>,
    /// The built-in HLS player's requests, summed up.
    hls: Option<String>,
    /// Why the page was reloaded before it played (the video's errors).
    reloads: Vec<String>,
    /// Half the smallest round trip of the clock tie (the clock error bound), ms.
    clock_err_ms: f64,
    /// How far the browser's clock moved against the bench's during the path, ms.
    drift_ms: f64,
    error: Option<String>,
}

impl Lat {
    fn failed(name: &'static str, e: String) -> Self {
        println!("{name}: {e}");
        Lat {
            name,
            main: None,
            hls: None,
            reloads: Vec::new(),
            clock_err_ms: f64::NAN,
            drift_ms: f64::NAN,
            error: Some(e),
        }
    }

    fn p95(&self) -> f64 {
        self.main.as_ref().map_or(f64::NAN, |w| w.pct(0.95))
    }
}

/// Milliseconds since `anchor` (negative before it).
fn ms_since(anchor: Instant, t: Instant) -> f64 {
    match t.checked_duration_since(anchor) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(anchor - t).as_secs_f64() * 1000.0,
    }
}

/// The browser's clock minus the bench's (ms since `anchor`), from the script round trip
/// with the smallest delay; and half that round trip.
async fn tie_clocks(s: &Session, anchor: Instant) -> Res<(f64, f64)> {
    let mut best = (f64::NAN, f64::INFINITY);
    for _ in 0..20 {
        let t0 = Instant::now();
        let v = s.exec(marker::NOW, json!([])).await?;
        let t1 = Instant::now();
        let b = v.as_f64().ok_or_else(|| format!("browser clock: {v}"))?;
        let rtt = (t1 - t0).as_secs_f64() * 1000.0;
        if rtt < best.1 {
            best = (b - (ms_since(anchor, t0) + rtt / 2.0), rtt);
        }
    }
    Ok((best.0, best.1 / 2.0))
}

/// Opens `page` in a fresh browser (after `before` ran in it, if given), waits for marker
/// frames on screen, skips `--warm` seconds and measures `--seconds`.
#[allow(clippy::too_many_arguments)]
async fn path_run(
    name: &'static str,
    page: &str,
    before: Option<&str>,
    args: &Args,
    driver: &Driver,
    log: &SendLog,
    keys: &[Option<u64>],
    anchor: Instant,
) -> Lat {
    let s = match driver.session(1280, 900).await {
        Ok(s) => s,
        Err(e) => return Lat::failed(name, e),
    };
    let l = match measure(name, &s, page, before, args, log, keys, anchor).await {
        Ok(l) => l,
        Err(e) => Lat::failed(name, e),
    };
    s.close().await;
    l
}

/// The HLS requests of the page (Resource Timing): a browser's built-in HLS (initiator
/// `video`) or the player's own (`fetch`). `None` when there were none.
async fn hls_requests(s: &Session) -> Res<Option<String>> {
    let v = s
        .exec(
            "return performance.getEntriesByType('resource')\
               .filter(e => ['video', 'fetch'].includes(e.initiatorType))\
               .map(e => e.name).filter(n => /\\.m3u8|\\.ts$|\\/(part|seg)-/.test(n.split('?')[0]))",
            json!([]),
        )
        .await?;
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(None);
    }
    let path = |n: &str| n.split('?').next().unwrap_or("").to_owned();
    let playlists = names.iter().filter(|n| path(n).ends_with(".m3u8")).count();
    let blocking = names.iter().filter(|n| n.contains("_HLS_msn=")).count();
    let parts = names
        .iter()
        .filter(|n| !path(n).ends_with(".m3u8") && path(n).contains("part"))
        .count();
    let segments = names.len() - playlists - parts;
    Ok(Some(format!(
        "{playlists} playlist loads ({blocking} blocking with _HLS_msn), {parts} parts, {segments} segments"
    )))
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    name: &'static str,
    s: &Session,
    page: &str,
    before: Option<&str>,
    args: &Args,
    log: &SendLog,
    keys: &[Option<u64>],
    anchor: Instant,
) -> Res<Lat> {
    if let Some(js) = before {
        s.before_page_scripts(js).await?;
    }
    s.goto(page).await?;
    // Marker frames on screen; a page whose video failed is reloaded (as a viewer would)
    // at most twice, and the report says so.
    let until = Instant::now() + Duration::from_secs(45);
    let mut last = Value::Null;
    let mut reloads = Vec::new();
    loop {
        if s.exec(marker::INSTALL, json!([])).await? == json!(true) {
            last = s.exec(marker::TAKE, json!([])).await?;
            if last["frames"].as_array().is_some_and(|f| !f.is_empty()) {
                break;
            }
            if let Some(e) = last["media_error"].as_str()
                && reloads.len() < 2
            {
                println!("{name}: the video failed ({e}); reloading the page");
                reloads.push(e.to_owned());
                tokio::time::sleep(Duration::from_secs(1)).await;
                s.goto(page).await?;
                continue;
            }
        }
        if !log.is_running() {
            return Err(format!(
                "the publisher stopped: {}",
                log.ended.lock().expect("lock").clone().unwrap_or_default()
            ));
        }
        if Instant::now() > until {
            let overlay = s
                .exec(
                    "const o = document.getElementById('overlay'); return o ? o.innerText : ''",
                    json!([]),
                )
                .await
                .unwrap_or(Value::Null);
            return Err(format!(
                "no marker frame on screen within 45 s (last {last}; overlay {overlay})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (offset, clock_err_ms) = tie_clocks(s, anchor).await?;
    println!(
        "{name}: playing {}; clocks tied within ±{clock_err_ms:.1} ms; warming up {} s",
        last["src"], args.warm
    );
    let w = Meter {
        s,
        log,
        keys,
        anchor,
        offset,
    };
    let main = w
        .window(
            Duration::from_secs(args.warm),
            Duration::from_secs(args.seconds),
        )
        .await?;
    println!("{name}: {}", main.line());
    let shot = args.shots.join(format!(
        "glass-{}.png",
        name.to_ascii_lowercase()
            .replace(['/', ' '], "-")
            .replace("--", "-")
    ));
    match s.screenshot(&shot).await {
        Ok(()) => println!("{name}: screenshot {}", shot.display()),
        Err(e) => println!("{name}: no screenshot: {e}"),
    }
    let (offset2, _) = tie_clocks(s, anchor).await?;
    let hls = hls_requests(s).await?;
    if let Some(h) = &hls {
        println!("{name}: the video element's requests: {h}");
    }
    Ok(Lat {
        name,
        main: Some(main),
        hls,
        reloads,
        clock_err_ms,
        drift_ms: offset2 - offset,
        error: None,
    })
}

/// Turns what the page recorded into latencies.
struct Meter<'a> {
    s: &'a Session,
    log: &'a SendLog,
    keys: &'a [Option<u64>],
    anchor: Instant,
    /// The browser's clock minus the bench's, ms.
    offset: f64,
}

impl Meter<'_> {
    /// Discards `warm`, then measures `seconds`.
    async fn window(&self, warm: Duration, seconds: Duration) -> Res<Window> {
        let warm_until = Instant::now() + warm;
        while Instant::now() < warm_until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            frames(&self.s.exec(marker::TAKE, json!([])).await?)?;
        }
        let mut w = Window {
            ms: Vec::new(),
            misread: 0,
            unmatched: 0,
            expected: 0,
            ahead_s: f64::NAN,
            src: String::new(),
        };
        let mut seen = HashSet::new();
        let mut ahead = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < seconds {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let v = self.s.exec(marker::TAKE, json!([])).await?;
            w.misread += v["misread"].as_u64().unwrap_or(0);
            if let Some(a) = v["behind"].as_f64() {
                ahead.push(a);
            }
            if let Some(src) = v["src"].as_str() {
                src.clone_into(&mut w.src);
            }
            for (n, shown) in frames(&v)? {
                // The frame's latest send: the clip loops every 60 s, far longer than any
                // latency measured here, and the page is read every 0.5 s.
                let sent = self
                    .keys
                    .get(n as usize)
                    .copied()
                    .flatten()
                    .and_then(|k| self.log.sent(k));
                let Some(sent) = sent else {
                    w.unmatched += 1;
                    continue;
                };
                let lat = (shown - self.offset) - ms_since(self.anchor, sent);
                if !(0.0..30_000.0).contains(&lat) {
                    w.unmatched += 1;
                    continue;
                }
                if seen.insert(sent) {
                    w.ms.push(lat);
                }
            }
        }
        w.expected = (t0.elapsed().as_secs_f64() * f64::from(marker::FPS)).round() as u64;
        w.ms.sort_by(f64::total_cmp);
        if !ahead.is_empty() {
            w.ahead_s = ahead.iter().sum::<f64>() / ahead.len() as f64;
        }
        Ok(w)
    }
}

/// The frames in what `marker::TAKE` returned: (frame number, expected display time).
fn frames(v: &Value) -> Res<Vec<(u32, f64)>> {
    if let Some(e) = v["error"].as_str() {
        return Err(format!("the frame reader failed: {e}"));
    }
    Ok(v["frames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| Some((f[0].as_u64()? as u32, f[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default())
}

fn fmt(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "—".into()
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "✔" } else { "✘" }
}

fn played(w: &Window) -> String {
    let src = if w.src.starts_with("blob:") {
        "MSE (blob:)".to_owned()
    } else {
        w.src.split('?').next().unwrap_or("").to_owned()
    };
    format!("{src}; {} s buffered ahead on average", fmt(w.ahead_s, 2))
}

fn report(lats: &[Lat], notes: &[String], args: &Args, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n======== glass summary ({:.0} s) ========",
        took.as_secs_f64()
    );
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(
        out,
        "\nGlass-to-glass latency in headless Chromium (publisher's send of a frame → Chromium's expected display time of it, \
         frame number read off the screen; {} s per path after {} s warm-up)\n",
        args.seconds, args.warm
    );
    let _ = writeln!(
        out,
        "| path | p50 ms | p95 ms | max ms | frames matched / sent | p95 vs nginx HLS | goal (p95) | played | clock error, drift |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let base = lats
        .iter()
        .find(|l| l.name == "nginx HLS" && l.main.as_ref().is_some_and(|w| !w.ms.is_empty()));
    for l in lats {
        let goal = match l.name {
            "slotcast fMP4/MSE" => Some(500.0),
            "slotcast LL-HLS" => Some(2000.0),
            _ => None,
        };
        let ratio = match base {
            Some(b) if l.name != b.name => format!("{}×", fmt(l.p95() / b.p95(), 2)),
            Some(_) => "1 (baseline)".into(),
            None => "—".into(),
        };
        let goal = goal.map_or(String::new(), |g: f64| {
            format!("≤ {g:.0} ms {}", mark(l.p95() <= g))
        });
        match (&l.main, &l.error) {
            (Some(w), _) => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} / {} ({} misread, {} unmatched) | {ratio} | {goal} | {} | ±{} ms, {} ms |",
                    l.name,
                    fmt(w.pct(0.5), 0),
                    fmt(w.pct(0.95), 0),
                    fmt(w.max(), 0),
                    w.ms.len(),
                    w.expected,
                    w.misread,
                    w.unmatched,
                    played(w)
                        + &l.hls
                            .as_ref()
                            .map_or(String::new(), |h| format!("; requests: {h}"))
                        + &if l.reloads.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; played after {} reload(s): {}",
                                l.reloads.len(),
                                l.reloads.join(", ")
                            )
                        },
                    fmt(l.clock_err_ms, 1),
                    fmt(l.drift_ms, 1),
                );
            }
            (None, e) => {
                let _ = writeln!(
                    out,
                    "| {} | — | — | — | — | — | {goal} | failed: {} | — |",
                    l.name,
                    e.as_deref().unwrap_or("?")
                );
            }
        }
    }
    let _ = writeln!(out);
    for l in lats {
        let key = l
            .name
            .to_ascii_lowercase()
            .replace("fmp4/mse", "mse")
            .replace([' ', '-', '/'], "_");
        let w = l.main.as_ref();
        let p = |q: f64| fmt(w.map_or(f64::NAN, |w| w.pct(q)), 0);
        let _ = writeln!(out, "RESULT glass.{key}.p50_ms={}", p(0.5));
        let _ = writeln!(out, "RESULT glass.{key}.p95_ms={}", p(0.95));
        let _ = writeln!(
            out,
            "RESULT glass.{key}.frames={}",
            w.map_or(0, |w| w.ms.len())
        );
        if let Some(b) = base
            && l.name != b.name
        {
            let _ = writeln!(
                out,
                "RESULT glass.{key}.p95_vs_nginx_hls={}",
                fmt(l.p95() / b.p95(), 2)
            );
        }
    }
    out
}
