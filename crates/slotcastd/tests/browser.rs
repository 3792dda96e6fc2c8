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
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Timestamp};
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
    setup_on(channel, false).await
}

/// [`setup`], the server sending e-mail to a real SMTP server when `smtp`.
async fn setup_on(channel: &str, smtp: bool) -> Option<(Arc<World>, Browser, Guard)> {
    let guard = ONE_AT_A_TIME.lock().await;
    let w = Arc::new(if smtp {
        world_smtp(channel).await?
    } else {
        world(channel).await?
    });
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

    // Through a proxy that holds the stream back, or asked to: LL-HLS, part by part.
    br.size(1280, 900).await;
    br.goto(&w.url(&format!("/programs/{}?via=hls", b.slug)))
        .await;
    let playing = until_playing(&br, "the video plays over LL-HLS").await;
    assert_eq!(playing["w"], PROGRAM.0, "{playing}");
    let hls = br
        .exec(
            "const n = performance.getEntriesByType('resource').map(e => e.name); \
             return {parts: n.filter(x => x.includes('/part-')).length, \
                     blocking: n.filter(x => x.includes('_HLS_msn=')).length, \
                     stream: n.filter(x => x.split('?')[0].endsWith('/live/br-start.mp4')).length, \
                     src: document.getElementById('video').src}",
            json!([]),
        )
        .await;
    assert!(hls["parts"].as_u64() > Some(3), "{hls}");
    assert!(hls["blocking"].as_u64() > Some(3), "{hls}");
    assert_eq!(hls["stream"], 0, "{hls}");
    assert!(hls["src"].as_str().unwrap().starts_with("blob:"), "{hls}");
    br.screenshot(&screenshot_dir(), "program-on-air-ll-hls")
        .await;
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
    scan_pages(&br, &w, &axe, &pages).await;
}

/// Opens every `(name, path)` of `pages` at 375×667 and 1280×900: a screenshot of each
/// (`{name}-375`, `{name}-desktop`), no sideways scroll, no serious or critical axe-core
/// finding.
async fn scan_pages<P: AsRef<str>>(br: &Browser, w: &World, axe: &str, pages: &[(&str, P)]) {
    let mut problems = Vec::new();
    for (width, height, size) in [(375, 667, "375"), (1280, 900, "desktop")] {
        br.size(width, height).await;
        for (name, path) in pages {
            br.goto(&w.url(path.as_ref())).await;
            br.screenshot(&screenshot_dir(), &format!("{name}-{size}"))
                .await;
            let overflow = br
                .exec(
                    "return document.documentElement.scrollWidth > window.innerWidth + 1",
                    json!([]),
                )
                .await;
            assert_eq!(overflow, false, "{name} scrolls sideways at {size}");
            for p in br.accessibility_problems(axe).await {
                problems.push(format!("{name} at {size}: {p}"));
            }
        }
    }
    assert!(problems.is_empty(), "accessibility: {problems:#?}");
}

/// Sets the fields of the page's form `form` (a CSS selector) from `values` (name →
/// value; `true` ticks a checkbox or chooses a radio button).
async fn fill(br: &Browser, form: &str, values: Value) {
    br.exec(
        "const f = document.querySelector(arguments[0]); \
         for (const [name, v] of Object.entries(arguments[1])) { \
           const els = f.querySelectorAll(`[name=\"${name}\"]`); \
           if (!els.length) throw new Error('no field ' + name); \
           for (const el of els) { \
             if (el.type === 'radio') el.checked = el.value === v; \
             else if (el.type === 'checkbox') el.checked = v === true; \
             else el.value = v; \
             el.dispatchEvent(new Event('input', {bubbles: true})); } }",
        json!([form, values]),
    )
    .await;
}

/// The page passes the axe-core scan (no serious or critical finding).
async fn accessible(br: &Browser, name: &str) {
    let Some(axe) = axe_source() else { return };
    let problems = br.accessibility_problems(&axe).await;
    assert!(problems.is_empty(), "{name}: {problems:#?}");
}

/// Clicks what `selector` finds and waits for the next page to be `path` (a prefix).
async fn click_to(br: &Browser, selector: &str, path: &str) {
    br.exec(
        "window.__left = true; document.querySelector(arguments[0]).click()",
        json!([selector]),
    )
    .await;
    let script = format!(
        "return !window.__left && document.readyState === 'complete' && location.pathname.startsWith({})",
        json!(path)
    );
    br.until(
        &format!("the page {path}"),
        &script,
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcaster_registers_books_confirms_and_goes_live_from_the_page_settings() {
    let Some((w, br, _one)) = setup_on("br-journey", true).await else {
        return;
    };
    let clock = tick(&w, t0());
    // Register as a premium member.
    br.goto(&w.url("/register")).await;
    fill(
        &br,
        "form.form",
        json!({"tier": "premium", "email": "cas@example.org", "display_name": "Cas",
            "password": "a long enough password", "card_number": "4242 4242 4242 4242",
            "exp_month": "12", "exp_year": "2031", "holder": "Cas Ter", "terms": true}),
    )
    .await;
    br.screenshot(&screenshot_dir(), "register-filled-desktop")
        .await;
    click_to(&br, "form.form button[type=submit]", "/my").await;
    assert!(br.text().await.contains("Welcome to slotcast"));

    // Reserve by clicking two free slots in the grid: the form and the fee follow.
    br.goto(&w.url("/my/reserve")).await;
    let cell = |start: &str| format!("a[data-channel='br-journey'][data-start='{start}']");
    for start in ["2026-11-21T12:05:00Z", "2026-11-21T12:10:00Z"] {
        br.exec(
            "document.querySelector(arguments[0]).click()",
            json!([cell(start)]),
        )
        .await;
    }
    let chosen = br
        .exec(
            "const f = document.getElementById('booking'); \
             return {channel: f.channel.value, start: f.start.value, slots: f.slots.value, \
                     fee: document.getElementById('fee').innerText, \
                     marked: document.querySelectorAll('#slots td.chosen').length}",
            json!([]),
        )
        .await;
    assert_eq!(chosen["channel"], "br-journey", "{chosen}");
    assert_eq!(chosen["start"], "2026-11-21T12:05:00Z", "{chosen}");
    assert_eq!(chosen["slots"], "2", "{chosen}");
    assert_eq!(chosen["marked"], 2, "{chosen}");
    assert!(chosen["fee"].as_str().unwrap().contains("200"), "{chosen}");
    fill(
        &br,
        "#booking",
        json!({"title": "My first show", "genre": "Talk", "outline": "Hello, world",
            "invitees": "friend@example.org"}),
    )
    .await;
    br.screenshot(&screenshot_dir(), "reserve-chosen-desktop")
        .await;
    accessible(&br, "reserve with a run chosen").await;
    click_to(&br, "#booking button[value=review]", "/my/reserve").await;
    let review = br.text().await;
    assert!(review.contains("Review your reservation"), "{review}");
    assert!(review.contains("200"), "the fee: {review}");
    assert!(review.contains("cas@example.org"), "{review}");
    br.screenshot(&screenshot_dir(), "review-desktop").await;
    accessible(&br, "the review").await;
    fill(&br, "form.review", json!({"terms": true})).await;
    click_to(&br, "form.review button[value=book]", "/my/reservations/").await;
    assert!(br.text().await.contains("Check your e-mail"));
    let id: i64 = br
        .exec("return location.pathname.split('/')[3]", json!([]))
        .await
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // The key arrives by e-mail; confirming on the page shows the clocks and OBS settings.
    let key = w.key_from_mail(id).await;
    fill(&br, "form[action$='/confirm']", json!({"key": key})).await;
    click_to(&br, "form[action$='/confirm'] button", "/my/reservations/").await;
    assert!(br.text().await.contains("Confirmed."));
    let offset = br
        .until(
            "the clock offset measured",
            "const o = document.getElementById('offset-value'); return o.dataset.offsetMs !== undefined && {ms: Number(o.dataset.offsetMs), text: o.innerText, browser: Date.now()}",
            Duration::from_secs(10),
        )
        .await;
    // The service runs on the test's clock, days behind this machine's: the page says so.
    let expected = offset["browser"].as_f64().unwrap() - w.clock.now().as_millisecond() as f64;
    let measured = offset["ms"].as_f64().unwrap();
    assert!(
        (measured - expected).abs() < 2000.0,
        "{offset} vs {expected}"
    );
    assert!(
        offset["text"].as_str().unwrap().contains("ahead"),
        "{offset}"
    );
    let obs = br
        .exec(
            "return {server: document.querySelector('code.server').innerText, \
                     key: document.getElementById('stream-key').textContent}",
            json!([]),
        )
        .await;
    assert_eq!(obs["key"], key.as_str(), "{obs}");
    let server = obs["server"].as_str().unwrap().to_owned();
    assert_eq!(server, format!("rtmp://{}/live", w.run.rtmp), "{obs}");
    br.exec(
        "document.querySelector('details.key').open = true",
        json!([]),
    )
    .await;
    br.screenshot(&screenshot_dir(), "reservation-confirmed-desktop")
        .await;
    accessible(&br, "the connection settings").await;

    // ffmpeg publishes with what the page showed. Before the start the dashboard shows
    // the preview; at the start the program is on air, and a second browser watching
    // shows in the viewer count.
    drop(clock);
    let start: Timestamp = "2026-11-21T12:05:00Z".parse().unwrap();
    let clock = tick(&w, start - SignedDuration::from_secs(30));
    let publisher = Proc(
        slotcast_testkit::media::publisher_sized(&format!("{server}/{key}"), 150, PROGRAM)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ffmpeg runs"),
    );
    br.goto(&w.url(&format!("/my/reservations/{id}/live")))
        .await;
    let preview = br
        .until(
            "the preview plays",
            "const v = document.getElementById('preview-video');              return v.currentTime > 1 && {w: v.videoWidth, air: document.getElementById('dash-air').dataset.onAir}",
            Duration::from_secs(40),
        )
        .await;
    assert_eq!(preview["w"], PROGRAM.0, "{preview}");
    assert_eq!(
        preview["air"], "false",
        "the preview comes before the start: {preview}"
    );
    br.screenshot(&screenshot_dir(), "dashboard-before-start-desktop")
        .await;
    let state = br
        .until(
            "on air",
            "const a = document.getElementById('dash-air');              return a.dataset.onAir === 'true' && {viewers: document.getElementById('dash-viewers').innerText,                elapsed: document.getElementById('dash-elapsed').innerText,                remaining: document.getElementById('dash-remaining').innerText,                picture: document.getElementById('dash-picture').innerText}",
            Duration::from_secs(90),
        )
        .await;
    assert_eq!(state["viewers"], "0", "{state}");
    assert!(
        state["picture"].as_str().unwrap().starts_with("320×240"),
        "{state}"
    );
    let remaining = state["remaining"].as_str().unwrap();
    assert!(
        remaining.starts_with("0:09:") || remaining == "0:10:00",
        "{state}"
    );
    let slug: String = br
        .exec(
            "return document.querySelector('a[href^=\"/programs/\"]').getAttribute('href').split('/')[2]",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let second = Browser::start(1280, 900).await.expect("a second browser");
    second.goto(&w.url(&format!("/programs/{slug}"))).await;
    until_playing(&second, "the second browser watches").await;
    br.until(
        "the viewer count rises",
        "return Number(document.getElementById('dash-viewers').innerText) >= 1",
        Duration::from_secs(20),
    )
    .await;
    br.screenshot(&screenshot_dir(), "dashboard-on-air-desktop")
        .await;
    accessible(&br, "the dashboard on air").await;
    br.size(375, 667).await;
    br.screenshot(&screenshot_dir(), "dashboard-on-air-375")
        .await;
    br.size(1280, 900).await;

    // The title changes: what changes is shown first; the invitee gets one e-mail.
    br.goto(&w.url(&format!("/my/reservations/{id}/change")))
        .await;
    fill(&br, "form.form", json!({"title": "My first show, live"})).await;
    click_to(&br, "form.form button[value=review]", "/my/reservations/").await;
    let diff = br.text().await;
    assert!(diff.contains("My first show, live"), "{diff}");
    br.screenshot(&screenshot_dir(), "change-review-desktop")
        .await;
    accessible(&br, "the change review").await;
    click_to(&br, "form.form button[value=save]", "/my/reservations/").await;
    assert!(br.text().await.contains("Saved."));
    let changes = || {
        w.mails()
            .into_iter()
            .filter(|m| m.contains("friend@example.org") && m.contains("My first show, live"))
            .count()
    };
    until("the change e-mail", || changes() >= 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(changes(), 1, "one change e-mail for the invitee");

    // After the end, my channel shows the program's figures and the chart.
    drop(second);
    drop(clock);
    drop(publisher);
    w.set("2026-11-21T12:16:00Z".parse().unwrap());
    let started = Instant::now();
    loop {
        br.goto(&w.url("/my")).await;
        let text = br.text().await;
        if text.contains("Peak viewers") {
            assert!(text.contains("COMPLETED"), "{text}");
            let peak = br
                .exec(
                    "return Math.max(...[...document.querySelectorAll('.viewers-chart td.num')].map((td) => Number(td.textContent))) \
                     + (document.querySelector('.viewers-chart svg path.line') ? 0 : -100)",
                    json!([]),
                )
                .await;
            assert!(
                peak.as_f64().unwrap() >= 1.0,
                "the chart shows the viewer: {peak}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no figures: {text}"
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    br.screenshot(&screenshot_dir(), "my-channel-desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_page_at_phone_and_desktop_size_passes_the_accessibility_scan() {
    let Some((w, br, _one)) = setup("br-member").await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let b = w.booked("password").await;
    let token = b.owner.clone();
    let pending = w
        .post(
            "/api/v1/reservations",
            Some(&token),
            json!({"channel": "br-member", "start": "2026-11-21T13:00:00Z", "slots": 2,
                "visibility": "public", "title": "Later today", "invitees": ["friend@example.org"]}),
        )
        .await;
    let pending = pending.body["id"].as_i64().unwrap();
    let clock = tick(&w, t0());
    // Sign in through the page.
    br.goto(&w.url("/login")).await;
    fill(
        &br,
        "form.form",
        json!({"email": "caster@example.org", "password": "a long enough password"}),
    )
    .await;
    click_to(&br, "form.form button", "/my").await;
    let pages = [
        ("my", "/my".to_owned()),
        ("reserve", "/my/reserve".to_owned()),
        (
            "reservation-awaiting",
            format!("/my/reservations/{pending}"),
        ),
        (
            "reservation-confirmed",
            format!("/my/reservations/{}", b.id),
        ),
        ("change", format!("/my/reservations/{}/change", b.id)),
        ("cancel", format!("/my/reservations/{}/cancel", b.id)),
        ("dashboard", format!("/my/reservations/{}/live", b.id)),
        ("account", "/account".to_owned()),
        ("account-ja", "/account?lang=ja".to_owned()),
        ("terms", "/terms?lang=en".to_owned()),
        ("register", "/register".to_owned()),
        ("login", "/login".to_owned()),
    ];
    scan_pages(&br, &w, &axe, &pages).await;

    // Unconfirmed past its deadline (start − 10 min here), the reservation shows expired.
    drop(clock);
    let _clock = tick(&w, "2026-11-21T12:50:30Z".parse().unwrap());
    let started = Instant::now();
    loop {
        br.goto(&w.url(&format!("/my/reservations/{pending}")))
            .await;
        if br.text().await.contains("EXPIRED") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not expired");
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    br.goto(&w.url("/my")).await;
    let my = br.text().await;
    assert!(
        my.contains("Expired and cancelled") && my.contains("EXPIRED"),
        "{my}"
    );
    br.screenshot(&screenshot_dir(), "my-expired-desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_the_service_from_the_console() {
    let Some((w, br, _one)) = setup("br-operator").await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let b = w.booked("public").await;
    w.operator("op@example.org").await;
    let _clock = tick(&w, t0());
    br.goto(&w.url("/login")).await;
    fill(
        &br,
        "form.form",
        json!({"email": "op@example.org", "password": "operator password"}),
    )
    .await;
    click_to(&br, "form.form button", "/my").await;

    // A new channel, which the reservation grid then shows.
    br.goto(&w.url("/operator/channels")).await;
    fill(
        &br,
        "#channel-form form",
        json!({"name": "late-night", "capacity": "3", "bitrate_kbps": "800",
            "tariff_minor": "50", "currency": "JPY", "stream_node": "local"}),
    )
    .await;
    click_to(&br, "#channel-form button", "/operator/channels").await;
    assert!(br.text().await.contains("late-night"));
    br.goto(&w.url("/my/reserve")).await;
    let heads = br
        .exec(
            "return [...document.querySelectorAll('#slots thead th[data-channel]')].map((th) => th.dataset.channel)",
            json!([]),
        )
        .await;
    assert!(
        heads.as_array().unwrap().contains(&json!("late-night")),
        "{heads}"
    );

    // Waive the charge of a program the service failed: the page and the export say so.
    br.goto(&w.url("/operator/billing?month=2026-11")).await;
    fill(
        &br,
        &format!("#charge-{} form", b.id),
        json!({"reason": "the stream node failed"}),
    )
    .await;
    click_to(
        &br,
        &format!("#charge-{} form button", b.id),
        "/operator/billing",
    )
    .await;
    let page = br.text().await;
    assert!(page.contains("The charge is waived."), "{page}");
    let csv = br
        .exec_async(
            "const done = arguments[arguments.length - 1];              fetch('/api/v1/billing/export.csv?month=2026-11').then((r) => r.text()).then(done)",
            json!([]),
        )
        .await;
    assert!(csv.as_str().unwrap().contains(",waived,"), "{csv}");

    // Pick a program: it shows on /pickup and first on today's live.
    br.goto(&w.url(&format!("/programs/{}", b.slug))).await;
    click_to(&br, "form.operator button", "/programs/").await;
    br.goto(&w.url("/pickup")).await;
    assert!(br.text().await.contains("Show on br-operator"));
    br.goto(&w.url("/")).await;
    let first = br
        .exec(
            "return document.querySelector('ul.programs li.program h3 a').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(first, json!(format!("/programs/{}", b.slug)));

    // A video uploaded for the channel's filler is re-encoded to the channel's format and
    // joins its playlist; removed, it leaves it.
    let clip = w.dir.path().join("Spring sale.mp4");
    slotcast_testkit::media::clip(&clip, 3, (1280, 720));
    let channel = w
        .run
        .center
        .store
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "br-operator")
        .unwrap()
        .id
        .0;
    let filler_page = format!("/operator/channels/{channel}/filler");
    br.goto(&w.url(&filler_page)).await;
    br.choose_file("#file", &clip).await;
    click_to(&br, "#filler-upload button", "/operator/channels/").await;
    br.until(
        "the upload in the playlist",
        "return [...document.querySelectorAll('ol.playlist code')].some((c) => c.textContent === 'Springsale.flv')",
        Duration::from_secs(90),
    )
    .await;
    br.screenshot(&screenshot_dir(), "operator-filler-desktop")
        .await;
    let made = w.dir.path().join("data/filler/br-operator/Springsale.flv");
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&made)
        .output()
        .expect("ffprobe runs");
    let streams = String::from_utf8_lossy(&probe.stdout).into_owned();
    assert!(
        streams.contains("h264,640,360") && streams.contains("aac"),
        "{streams}"
    );
    br.exec(
        "document.querySelector('ol.playlist form:has(input[value=\"Springsale.flv\"]) button').click()",
        json!([]),
    )
    .await;
    br.until(
        "the file removed",
        "return document.readyState === 'complete' && location.search.includes('done=removed') \
         && ![...document.querySelectorAll('ol.playlist code')].some((c) => c.textContent === 'Springsale.flv')",
        Duration::from_secs(20),
    )
    .await;
    assert!(!made.exists());

    // Every console page at phone and desktop size, with the accessibility scan.
    let pages = [
        ("operator", "/operator"),
        ("operator-channels", "/operator/channels"),
        ("operator-schedule", "/operator/schedule?date=2026-11-21"),
        ("operator-members", "/operator/members?q=example"),
        ("operator-billing", "/operator/billing?month=2026-11"),
        ("operator-outbox", "/operator/outbox"),
        ("operator-ja", "/operator?lang=ja"),
        ("operator-filler", filler_page.as_str()),
    ];
    scan_pages(&br, &w, &axe, &pages).await;
}
