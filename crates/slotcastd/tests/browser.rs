//! The viewer pages in a real headless Chromium (WebDriver, Debian's `chromium-driver`)
//! against the whole server with real ffmpeg publishing: the countdown and the start by
//! itself, the password form, a full channel, the end and the replay, framing, and every
//! page at phone and desktop size with screenshots and an axe-core scan.
//!
//! The server's clock is a manual one that a task moves on in real time from a chosen
//! instant, so the page's countdown (which counts in the browser) and the server agree.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use slotcast_domain::Timestamp;
use slotcast_domain::jiff::SignedDuration;
use slotcast_testkit::browser::{Browser, axe_source, screenshot_dir};

/// Moves the world's clock on in real time from `from` until dropped.
struct Ticking(Arc<AtomicBool>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn tick(w: &Arc<World>, from: Timestamp) -> Ticking {
    let stop = Arc::new(AtomicBool::new(false));
    let (w, done) = (w.clone(), stop.clone());
    w.set(from);
    tokio::spawn(async move {
        let began = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if done.load(Ordering::Relaxed) {
                break;
            }
            let elapsed = SignedDuration::try_from(began.elapsed()).unwrap();
            w.set(from + elapsed);
        }
    });
    Ticking(stop)
}

/// The video shows a picture `arguments[0]` pixels wide and has played 3 s of it.
const VIDEO_PLAYS: &str = "const v = document.getElementById('video'); \
    if (!v || v.currentTime <= 0 || v.videoWidth !== arguments[0]) return false; \
    window.__first = window.__first ?? v.currentTime; \
    return v.currentTime - window.__first >= 3 ? {t: v.currentTime, w: v.videoWidth, h: v.videoHeight} : false";

/// Waits until the video has played 3 s of the program's picture.
async fn until_playing(br: &Browser, what: &str) -> Value {
    br.exec("window.__first = undefined", json!([])).await;
    let started = Instant::now();
    loop {
        let v = br.exec(VIDEO_PLAYS, json!([PROGRAM.0])).await;
        if v.is_object() {
            return v;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let seen = br
                .exec("const v = document.getElementById('video'); return v && {t: v.currentTime, w: v.videoWidth, overlay: document.getElementById('overlay').innerText}", json!([]))
                .await;
            panic!("{what}: not within 60 s (the video: {seen})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One browser test at a time: two Chromiums decoding video beside two servers and their
/// publishers would starve each other on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Guard = tokio::sync::MutexGuard<'static, ()>;

async fn setup(channel: &str) -> Option<(Arc<World>, Browser, Guard)> {
    let guard = ONE_AT_A_TIME.lock().await;
    let w = Arc::new(world(channel).await?);
    let br = Browser::start(1280, 900).await?;
    let mse = br
        .exec(
            r#"return MediaSource.isTypeSupported('video/mp4; codecs="avc1.42C01E,mp4a.40.2"')"#,
            json!([]),
        )
        .await;
    assert_eq!(mse, true, "this Chromium cannot play H.264 through MSE");
    Some((w, br, guard))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_page_counts_down_and_plays_by_itself_at_the_start() {
    let Some((w, br, _one)) = setup("br-start").await else {
        return;
    };
    let b = w.booked("public").await;
    let _clock = tick(&w, b.start - SignedDuration::from_secs(15));
    let _publisher = w.publish(&b.key, 90);
    br.goto(&w.url(&format!("/programs/{}", b.slug))).await;
    let shown = br
        .until(
            "the countdown",
            "const c = document.getElementById('countdown'); return c && !c.hidden && c.innerText",
            Duration::from_secs(5),
        )
        .await;
    assert!(shown.as_str().unwrap().contains("00:00:1"), "{shown}");
    br.screenshot(&screenshot_dir(), "program-before-start-desktop")
        .await;
    let playing = until_playing(&br, "the video plays from the start").await;
    assert_eq!(playing["w"], PROGRAM.0, "{playing}");
    assert_eq!(playing["h"], PROGRAM.1, "{playing}");
    br.until(
        "the badge says ON AIR",
        "return document.getElementById('badge').innerText === 'ON AIR'",
        Duration::from_secs(10),
    )
    .await;
    let panel = br.text().await;
    assert!(panel.contains("Watching now"), "{panel}");
    br.until(
        "the latency shown",
        "const l = document.getElementById('latency-box'); return !l.hidden && document.getElementById('latency').innerText.endsWith(' s')",
        Duration::from_secs(10),
    )
    .await;
    br.screenshot(&screenshot_dir(), "program-on-air-desktop")
        .await;
    br.size(375, 667).await;
    br.screenshot(&screenshot_dir(), "program-on-air-375").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_program_plays_after_the_right_password_only() {
    let Some((w, br, _one)) = setup("br-password").await else {
        return;
    };
    let b = w.booked("password").await;
    let _clock = tick(&w, b.start + SignedDuration::from_secs(2));
    let _publisher = w.publish(&b.key, 60);
    br.goto(&w.url(&format!("/programs/{}", b.slug))).await;
    assert!(
        br.exec("return !document.getElementById('player')", json!([]))
            .await
            == true
    );
    let submit = "document.getElementById('password').value = arguments[0]; \
                  document.querySelector('form.password').submit();";
    br.exec(submit, json!(["not it"])).await;
    br.until(
        "the wrong password message",
        "return document.querySelector('.error')?.innerText",
        Duration::from_secs(10),
    )
    .await;
    assert!(br.text().await.contains("That password is not right"));
    br.screenshot(&screenshot_dir(), "program-wrong-password-375")
        .await;
    br.exec(submit, json!([PASSWORD])).await;
    until_playing(&br, "the video plays after the right password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_says_so_and_plays_when_a_seat_frees() {
    let Some((w, br, _one)) = setup("br-full").await else {
        return;
    };
    let b = w.booked("public").await;
    let _clock = tick(&w, b.start + SignedDuration::from_secs(2));
    let _publisher = w.publish(&b.key, 90);
    // The channel holds 5: five viewers take every seat.
    let mut seats = Vec::new();
    for _ in 0..5 {
        seats.push(w.viewer(&b, None).await);
    }
    br.goto(&w.url(&format!("/programs/{}", b.slug))).await;
    br.until(
        "the channel-full message",
        "return !document.getElementById('full-box').hidden",
        Duration::from_secs(15),
    )
    .await;
    assert!(br.text().await.contains("The channel is full"));
    br.screenshot(&screenshot_dir(), "program-full-desktop")
        .await;
    drop(seats.pop());
    until_playing(&br, "the video plays once a seat is free").await;
    assert!(
        br.exec(
            "return document.getElementById('full-box').hidden",
            json!([])
        )
        .await
            == true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_shows_program_ended_and_then_the_replay_plays_from_the_start() {
    let Some((w, br, _one)) = setup("br-end").await else {
        return;
    };
    let b = w.booked("public").await;
    let end = b.end;
    let clock = tick(&w, end - SignedDuration::from_secs(20));
    let publisher = w.publish(&b.key, 90);
    let mut events = w.live_events(&b).await;
    br.goto(&w.url(&format!("/programs/{}", b.slug))).await;
    until_playing(&br, "the video plays before the end").await;
    br.until(
        "program ended",
        "return document.getElementById('overlay').innerText.includes('The program has ended')",
        Duration::from_secs(40),
    )
    .await;
    br.screenshot(&screenshot_dir(), "program-ended-desktop")
        .await;
    events
        .until("the recording done", |e| {
            e["on_air"] == false && e["recording"] == "done"
        })
        .await;
    drop(clock);
    w.set(b.connect_to);
    w.until_status(&b, "completed").await;
    drop(publisher);
    let _clock = tick(&w, b.connect_to);
    let replay = br
        .until(
            "the replay plays",
            "const v = document.getElementById('video'); \
             return v.src.includes('/vod/') && v.currentTime > 1 ? v.currentTime : false",
            Duration::from_secs(60),
        )
        .await;
    assert!(replay.as_f64().unwrap() < 20.0, "from the start: {replay}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_embed_page_can_be_framed() {
    let Some((w, br, _one)) = setup("br-frame").await else {
        return;
    };
    let b = w.booked("public").await;
    let _clock = tick(&w, b.start - SignedDuration::from_secs(600));
    br.goto(&w.url(&format!("/programs/{}/embed", b.slug)))
        .await;
    let framed = br
        .exec_async(
            "const done = arguments[arguments.length - 1]; const out = {}; let left = 2;\
             for (const [name, src] of [['embed', arguments[0]], ['page', arguments[1]]]) {\
               const f = document.createElement('iframe'); f.src = src;\
               f.onload = () => { let d = null; try { d = f.contentDocument; } catch (e) {}\
                 out[name] = !!(d && d.getElementById('video')); if (--left === 0) done(out); };\
               document.body.appendChild(f); }",
            json!([
                format!("/programs/{}/embed", b.slug),
                format!("/programs/{}", b.slug)
            ]),
        )
        .await;
    assert_eq!(framed, json!({"embed": true, "page": false}), "{framed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_at_phone_and_desktop_size_passes_the_accessibility_scan() {
    let Some((w, br, _one)) = setup("br-pages").await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let public = w.booked("public").await;
    let owner = public.owner.clone();
    let protected = w
        .booked_as(&owner, "2026-11-21T13:00:00Z", 2, "password")
        .await;
    let _clock = tick(&w, public.start - SignedDuration::from_secs(600));
    let pages = [
        ("today", "/?lang=en".to_owned()),
        ("guide", "/guide".to_owned()),
        ("guide-day-ja", "/guide/2026-11-21?lang=ja".to_owned()),
        ("program", format!("/programs/{}", public.slug)),
        (
            "program-password",
            format!("/programs/{}?lang=en", protected.slug),
        ),
        ("embed", format!("/programs/{}/embed", public.slug)),
        ("about", "/about".to_owned()),
        ("not-found", "/no/such/page".to_owned()),
    ];
    let mut problems = Vec::new();
    for (width, height, size) in [(375, 667, "375"), (1280, 900, "desktop")] {
        br.size(width, height).await;
        for (name, path) in &pages {
            br.goto(&w.url(path)).await;
            br.screenshot(&screenshot_dir(), &format!("{name}-{size}"))
                .await;
            let overflow = br
                .exec(
                    "return document.documentElement.scrollWidth > window.innerWidth + 1",
                    json!([]),
                )
                .await;
            assert_eq!(overflow, false, "{name} scrolls sideways at {size}");
            for p in br.accessibility_problems(&axe).await {
                problems.push(format!("{name} at {size}: {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "accessibility: {problems:#?}");
}
