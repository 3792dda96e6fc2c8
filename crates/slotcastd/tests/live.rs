//! The stream node's center-facing features end to end: the whole server in-process (the
//! center and the stream node wired as role `all` runs them, `slotcastd::server::start`)
//! on SQLite in a temp dir, with a manual clock for the booked window, real ffmpeg
//! publishing RTMP with the reservation key, real HTTP (reqwest, ffprobe) for the REST API,
//! the live statistics (SSE), the preview, playback, replay, download and `/metrics`.
//!
//! Each test books on a channel of its own name: the Prometheus recorder is one per
//! process, so per-channel gauges of parallel tests never mix.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{ReservationId, Timestamp};
use slotcast_testkit::media::frames;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Features 17 and 19–21, the broadcaster's side: before the start only the preview has
/// the program (viewers get the filler); from the start the owner's live statistics
/// report it on air with its picture, rate and viewers, nobody else may read them, and
/// `/metrics` shows the channel's viewers and on-air state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_before_the_start_then_live_statistics_for_the_owner_and_channel_metrics() {
    let Some(w) = world("preview").await else {
        return;
    };
    let b = w.booked("public").await;
    let other = w.member("someone@example.org", true).await;
    w.set(b.start - SignedDuration::from_secs(50));
    let _publisher = w.publish(&b.key, 55);
    let mut events = w.live_events(&b).await;
    let e = until_publishing(&mut events).await;
    assert_eq!(e["on_air"], false, "not before the start: {e}");
    assert_eq!(e["status"], "live", "the first publish makes it live: {e}");

    // A viewer who tunes in early sees the filler.
    let early = w.viewer(&b, None).await;
    early
        .until_showing(FILLER, "the filler before the start")
        .await;

    // The broadcaster's preview has the program now.
    let r = w
        .post(
            &format!("/api/v1/reservations/{}/preview", b.id),
            Some(&b.owner),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let preview = w.local(r.body["url"].as_str().unwrap());
    assert!(
        preview.contains(&format!("/preview/{}.flv?token=", b.id)),
        "{preview}"
    );
    let p = probe(preview.clone()).await;
    assert!(program_probe(&p), "the preview decodes the program: {p}");
    // Another member gets no preview; a viewer's play token does not open it.
    let r = w
        .post(
            &format!("/api/v1/reservations/{}/preview", b.id),
            Some(&other),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let play = w.play(&b, None).await;
    let viewer_token = play.body["token"].as_str().unwrap();
    let r = w
        .http
        .get(w.url(&format!("/preview/{}.flv?token={viewer_token}", b.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "wrong_kind", "{body}");
    // All the while (three seconds of preview), the early viewer saw no program.
    {
        let seen = early.seen.lock().unwrap();
        assert!(!seen.dims.contains(&PROGRAM), "{seen:?}");
        assert!(!seen.closed && seen.video_frames > 0, "{seen:?}");
    }

    // The start: the program reaches viewers.
    w.set(b.start);
    early
        .until_showing(PROGRAM, "the program from the start")
        .await;
    let second = w.viewer(&b, None).await;
    second
        .until_showing(PROGRAM, "the program for a new viewer")
        .await;
    let e = events
        .until("on air with two viewers and a measured rate", |e| {
            e["on_air"] == true
                && e["viewers"] == 2
                && e["fps"].as_f64().unwrap_or(0.0) > 0.0
                && e["bitrate_kbps"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert_eq!(e["publishing"], true, "{e}");
    assert_eq!(
        (e["width"].as_u64(), e["height"].as_u64()),
        (Some(320), Some(240)),
        "{e}"
    );
    let fps = e["fps"].as_f64().unwrap();
    assert!((15.0..=35.0).contains(&fps), "about 25 fps: {e}");
    assert_eq!(e["recording"], "recording", "{e}");
    assert_eq!(e["started_at"], "2026-11-21T12:30:00.000Z", "{e}");
    assert_eq!(e["ends_at"], "2026-11-21T12:35:00.000Z", "{e}");
    assert_eq!(e["status"], "live", "{e}");
    let server_time: Timestamp = e["server_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(server_time, b.start, "the server's (manual) clock: {e}");

    // Only the owner reads the statistics.
    let path = format!("/api/v1/reservations/{}/live", b.id);
    let r = w.get(&path, Some(&other)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let r = w.get(&path, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);

    // The channel's gauges, labelled with its name.
    w.until_metric("slotcast_channel_viewers", 2.0).await;
    w.until_metric("slotcast_channel_on_air", 1.0).await;
    // A viewer leaves: the owner sees it.
    drop(second);
    events
        .until("one viewer left", |e| {
            e["viewers"] == 1 && e["on_air"] == true
        })
        .await;
}

/// `slotcast_channel_viewers` follows viewers who leave, as the live statistics do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewers_gauge_follows_a_viewer_who_leaves() {
    let Some(w) = world("leave").await else {
        return;
    };
    let b = w.booked("public").await;
    w.set(b.start);
    let first = w.viewer(&b, None).await;
    let second = w.viewer(&b, None).await;
    first.until_showing(FILLER, "the filler").await;
    w.until_metric("slotcast_channel_viewers", 2.0).await;
    drop(second);
    w.until_metric("slotcast_channel_viewers", 1.0).await;
    drop(first);
    w.until_metric("slotcast_channel_viewers", 0.0).await;
}

/// A live HTTP-FLV or fMP4 viewer admitted on its connection's first request is written
/// by its channel (`slotcast_stream::direct`): the answer is delimited by closing the
/// connection, not chunked by the HTTP server, and carries the stream from its first
/// byte; on a connection that served another request first, the HTTP server streams it.
/// A refused request still gets the HTTP server's answer in the API's shape, and a
/// viewer who leaves frees its seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_viewers_are_written_by_their_channel_and_refusals_answered_over_http() {
    let Some(w) = world("direct").await else {
        return;
    };
    let b = w.booked("public").await;
    w.set(b.start);
    let grant = w.play(&b, None).await;
    assert_eq!(grant.status, StatusCode::OK, "{:?}", grant.body);
    let mut open = Vec::new();
    for (key, content_type, magic) in [
        ("flv", "video/x-flv", &b"FLV"[..]),
        ("mse", "video/mp4", &b"ftyp"[..]),
    ] {
        let url = w.local(grant.body["urls"][key].as_str().unwrap());
        // A fresh connection: a live request is taken only as a connection's first.
        let fresh = reqwest::Client::builder().build().unwrap();
        let mut res = fresh.get(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let h = res.headers();
        assert_eq!(h["content-type"], content_type);
        assert_eq!(h["connection"], "close");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.get("transfer-encoding").is_none(), "{h:?}");
        let mut got = Vec::new();
        while got.len() < 8 {
            got.extend_from_slice(&res.chunk().await.unwrap().expect("stream bytes"));
        }
        assert!(
            got.windows(magic.len()).take(8).any(|w| w == magic),
            "{key} starts {:?}",
            &got[..8]
        );
        open.push(res);
    }
    // On a connection that made another request first, the HTTP server streams it.
    let _ = w.play(&b, None).await;
    let mut served = w
        .http
        .get(w.local(grant.body["urls"]["flv"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["transfer-encoding"], "chunked");
    assert!(served.chunk().await.unwrap().unwrap().starts_with(b"FLV"));
    open.push(served);
    // One grant holds one seat, however many connections it plays on.
    w.until_metric("slotcast_channel_viewers", 1.0).await;
    let wrong = w
        .http
        .get(w.url(&format!("/live/{}.flv?token=not-a-token", w.channel)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "token_invalid", "{body}");
    drop(open);
    w.until_metric("slotcast_channel_viewers", 0.0).await;
}

/// Features 22 and the completed program's statistics: after the end the recording
/// replays as HLS VOD under the program's visibility (a password program here), the
/// program is listed `on_demand`, the broadcaster downloads the original with byte
/// ranges, and the reservation keeps peak and unique viewers, viewer-minutes, bytes and
/// seconds on air.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_end_the_recording_replays_downloads_and_the_totals_are_kept() {
    let Some(w) = world("replay").await else {
        return;
    };
    let b = w.booked("password").await;
    let other = w.member("someone@example.org", true).await;
    w.set(b.start - SignedDuration::from_secs(30));
    let publisher = w.publish(&b.key, 58);
    let mut events = w.live_events(&b).await;
    until_publishing(&mut events).await;
    w.set(b.start);
    let on_air = Instant::now();
    events.until("on air", |e| e["on_air"] == true).await;
    let r = w.play(&b, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    // Three viewers watch for 22 s: over 60 viewer-seconds, one viewer-minute.
    let watching = Instant::now();
    let viewers = [
        w.viewer(&b, Some(PASSWORD)).await,
        w.viewer(&b, Some(PASSWORD)).await,
        w.viewer(&b, Some(PASSWORD)).await,
    ];
    for v in &viewers {
        v.until_showing(PROGRAM, "the program").await;
    }
    let listed = w.get("/api/v1/programs?date=2026-11-21", None).await;
    assert_eq!(listed.body[0]["state"], "on_air", "{:?}", listed.body);
    events.until("three viewers", |e| e["viewers"] == 3).await;
    let left = Duration::from_secs(22).saturating_sub(watching.elapsed());
    tokio::time::sleep(left).await; // the measured quantity is real watching time
    // The end: viewers get the filler, the recording is closed.
    w.set(b.end);
    let aired = on_air.elapsed();
    for v in &viewers {
        v.until_showing(FILLER, "the filler after the end").await;
    }
    events
        .until("the recording done", |e| {
            e["on_air"] == false && e["recording"] == "done"
        })
        .await;
    // The connect window closes: the publisher is cut and the reservation completes.
    w.set(b.connect_to);
    w.until_status(&b, "completed").await;
    drop(publisher);
    let received: u64 = viewers.iter().map(Viewer::bytes).sum();
    drop(viewers);

    // The totals, as the scheduler stored them at completion.
    let stats = w.stats(&b).await;
    assert_eq!(
        (stats.peak_viewers, stats.unique_viewers),
        (3, 3),
        "{stats:?}"
    );
    assert!((1..=2).contains(&stats.viewer_minutes), "{stats:?}");
    assert!(
        stats.bytes_out > 100_000 && stats.bytes_out <= received,
        "{stats:?}, viewers received {received}"
    );
    let aired = aired.as_secs();
    assert!(
        stats.seconds_on_air + 3 >= aired && stats.seconds_on_air <= aired + 1,
        "{stats:?}, on air for {aired} s"
    );
    // … shown to the broadcaster with the reservation …
    let r = w
        .get(&format!("/api/v1/reservations/{}", b.id), Some(&b.owner))
        .await;
    assert_eq!(
        r.body["stats"],
        json!({"peak_viewers": stats.peak_viewers, "unique_viewers": stats.unique_viewers,
            "viewer_minutes": stats.viewer_minutes, "bytes_out": stats.bytes_out,
            "seconds_on_air": stats.seconds_on_air}),
        "{:?}",
        r.body
    );
    // … and in the summary e-mail.
    let deadline = Instant::now() + Duration::from_secs(10);
    let summary = loop {
        if let Some(m) = w
            .mails()
            .into_iter()
            .find(|m| m.contains("Program summary"))
        {
            break m;
        }
        assert!(Instant::now() < deadline, "no summary e-mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(summary.contains("3 (capacity 5)"), "{summary}");

    // Listed as a replay, and played with the program's visibility: the password.
    let listed = w.get("/api/v1/programs?date=2026-11-21", None).await;
    assert_eq!(listed.body[0]["slug"], b.slug.as_str(), "{:?}", listed.body);
    assert_eq!(listed.body[0]["state"], "on_demand", "{:?}", listed.body);
    let one = w.get(&format!("/api/v1/programs/{}", b.slug), None).await;
    assert_eq!(one.body["state"], "on_demand", "{:?}", one.body);
    let r = w.play(&b, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("password_required"))
    );
    let r = w.play(&b, Some("not it")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let r = w.play(&b, Some(PASSWORD)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let hls = w.local(r.body["urls"]["hls"].as_str().unwrap());
    assert!(
        hls.contains(&format!("/vod/{}/index.m3u8?token=", b.slug)),
        "{hls}"
    );
    // The entry opens a replay session; the media playlist is served within it.
    let media = w.variant(&hls).await;
    assert!(media.contains("/media.m3u8?session="), "{media}");
    let playlist = w.http.get(&media).send().await.unwrap();
    assert_eq!(playlist.status(), StatusCode::OK);
    let playlist = playlist.text().await.unwrap();
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    assert!(playlist.contains("recording.mp4?session="), "{playlist}");
    let p = probe(hls.clone()).await;
    assert!(program_probe(&p), "the replay decodes: {p}");
    let no_token = hls.split('?').next().unwrap();
    let r = w.http.get(no_token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The original, for the broadcaster only, whole and in ranges: the center sends the
    // owner to the stream node with a replay grant.
    let api_path = format!("/api/v1/reservations/{}/recording", b.id);
    assert_eq!(
        w.get(&api_path, Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );
    let to_node = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(w.url(&api_path))
        .bearer_auth(&b.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(to_node.status(), StatusCode::SEE_OTHER);
    let location = to_node.headers()["location"].to_str().unwrap();
    assert!(
        location.contains(&format!("/vod/{}/recording.mp4?token=", b.slug))
            && location.ends_with("&download=1"),
        "{location}"
    );
    let download_url = w.local(location);
    let path = download_url.strip_prefix(&w.url("")).unwrap().to_owned();
    let res = w
        .http
        .get(w.url(&path))
        .bearer_auth(&b.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "video/mp4");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("slotcast-{}.mp4", b.id))
    );
    let whole = res.bytes().await.unwrap();
    assert_eq!(whole, std::fs::read(w.recording_path(&b)).unwrap());
    let len = whole.len();
    assert!(len > 100_000, "{len} bytes");
    let download = w.dir.path().join("download.mp4");
    std::fs::write(&download, &whole).unwrap();
    let p = probe(download.display().to_string()).await;
    assert!(program_probe(&p), "the download decodes: {p}");
    for (range, from, to) in [
        ("bytes=0-99".to_owned(), 0, 100),
        ("bytes=1000-1999".to_owned(), 1000, 2000),
        ("bytes=-100".to_owned(), len - 100, len),
        (format!("bytes={}-", len - 10), len - 10, len),
    ] {
        let res = w
            .http
            .get(w.url(&path))
            .bearer_auth(&b.owner)
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {from}-{}/{len}", to - 1).as_str(),
            "{range}"
        );
        assert_eq!(res.bytes().await.unwrap(), whole[from..to], "{range}");
    }
    let res = w
        .http
        .get(w.url(&path))
        .bearer_auth(&b.owner)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

/// A full disk (the recording file is `/dev/full`: every write fails with ENOSPC) stops
/// the recording, not the stream: viewers keep the program, the owner's live statistics
/// say the recording failed and why, the failure is logged and counted in `/metrics`,
/// and no broken replay is offered afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_recording_and_the_stream_goes_on() {
    let Some(w) = world("fulldisk").await else {
        return;
    };
    let b = w.booked("public").await;
    let path = w.recording_path(&b);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let failures = |m: &str| {
        m.lines()
            .find_map(|l| {
                l.strip_prefix("slotcast_recording_failures_total ")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let before = failures(&w.metrics().await);
    let log = server_log();

    w.set(b.start - SignedDuration::from_secs(30));
    let _publisher = w.publish(&b.key, 50);
    let mut events = w.live_events(&b).await;
    until_publishing(&mut events).await;
    w.set(b.start);
    let viewer = w.viewer(&b, None).await;
    viewer.until_showing(PROGRAM, "the program").await;
    let e = events
        .until("the recording failed", |e| {
            e["recording"]
                .as_str()
                .is_some_and(|r| r.starts_with("failed"))
        })
        .await;
    let why = e["recording"].as_str().unwrap();
    assert!(
        why.contains("No space left on device") || why.contains("os error 28"),
        "the reason is the full disk: {e}"
    );
    assert_eq!(e["on_air"], true, "{e}");
    assert!(failures(&w.metrics().await) >= before + 1.0);
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.lines().any(|l| l.contains("ERROR")
            && l.contains("recording stopped: the stream goes on")
            && l.contains(&path.display().to_string())),
        "the failure is logged with the file: {logged}"
    );

    // The stream goes on: the viewer keeps receiving frames, a new one decodes it.
    let (bytes, frames) = (viewer.bytes(), viewer.frames());
    let play = w.play(&b, None).await;
    let p = probe(w.local(play.body["urls"]["flv"].as_str().unwrap())).await;
    assert!(program_probe(&p), "a new viewer decodes the program: {p}");
    until("the first viewer's stream to go on", || {
        viewer.bytes() > bytes + 10_000 && viewer.frames() >= frames + 25
    })
    .await;
    assert_eq!(viewer.last(), Some(PROGRAM));
    events
        .until("still on air, recording failed", |e| {
            e["on_air"] == true
                && e["fps"].as_f64().unwrap_or(0.0) > 0.0
                && e["recording"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("failed"))
        })
        .await;

    // Afterwards: no download, no replay; the program is simply over.
    w.set(b.end);
    events
        .until("off air, still failed", |e| {
            e["on_air"] == false
                && e["recording"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("failed"))
        })
        .await;
    w.set(b.connect_to);
    w.until_status(&b, "completed").await;
    let r = w
        .get(
            &format!("/api/v1/reservations/{}/recording", b.id),
            Some(&b.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    let one = w.get(&format!("/api/v1/programs/{}", b.slug), None).await;
    assert_eq!(one.body["state"], "ended", "{:?}", one.body);
    let r = w.play(&b, None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("ended"))
    );
}

/// Cancelling a live program: the RTMP publisher is cut at once (ffmpeg exits), viewers
/// go back to the filler on the same connection, and the key no longer publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_live_program_cuts_the_publisher_and_viewers_get_the_filler() {
    let Some(w) = world("cancel").await else {
        return;
    };
    let b = w.booked("public").await;
    w.set(b.start - SignedDuration::from_secs(30));
    let mut publisher = w.publish(&b.key, 58);
    let mut events = w.live_events(&b).await;
    until_publishing(&mut events).await;
    w.set(b.start + SignedDuration::from_secs(60));
    let viewer = w.viewer(&b, None).await;
    viewer.until_showing(PROGRAM, "the program").await;
    w.until_metric("slotcast_channel_on_air", 1.0).await;

    let r = w
        .api(
            Method::DELETE,
            &format!("/api/v1/reservations/{}", b.id),
            Some(&b.owner),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "cancelled", "{:?}", r.body);
    let cancelled = Instant::now();
    until("ffmpeg to be cut", || {
        publisher.0.try_wait().unwrap().is_some()
    })
    .await;
    assert!(
        cancelled.elapsed() < Duration::from_secs(5),
        "cut after {:?}",
        cancelled.elapsed()
    );
    viewer
        .until_showing(FILLER, "the filler after the cancel")
        .await;
    assert!(
        !viewer.seen.lock().unwrap().closed,
        "the viewer stays connected"
    );
    w.until_metric("slotcast_channel_on_air", 0.0).await;
    events
        .until("off air", |e| {
            e["on_air"] == false && e["publishing"] == false && e["status"] == "cancelled"
        })
        .await;
    // The key of a cancelled reservation is refused at once.
    let mut again = w.publish(&b.key, 20);
    let begun = Instant::now();
    until("the second publish to be refused", || {
        again.0.try_wait().unwrap().is_some()
    })
    .await;
    assert!(begun.elapsed() < Duration::from_secs(10));
    assert!(!again.0.wait().unwrap().success());
    assert_eq!(viewer.last(), Some(FILLER));
}

/// A viewer who tuned in before the start (watching the filler, waiting) and stayed for
/// the whole program is one of its viewers: counted in the peak and in the unique viewers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_waiting_before_the_start_counts_as_a_unique_viewer() {
    let Some(w) = world("early").await else {
        return;
    };
    let b = w.booked("public").await;
    w.set(b.start - SignedDuration::from_secs(30));
    let _publisher = w.publish(&b.key, 30);
    let mut events = w.live_events(&b).await;
    until_publishing(&mut events).await;
    let early = w.viewer(&b, None).await;
    early
        .until_showing(FILLER, "the filler before the start")
        .await;
    w.set(b.start);
    early.until_showing(PROGRAM, "the program").await;
    let late = w.viewer(&b, None).await;
    late.until_showing(PROGRAM, "the program").await;
    w.set(b.end);
    events
        .until("the recording done", |e| e["recording"] == "done")
        .await;
    w.set(b.connect_to);
    w.until_status(&b, "completed").await;
    let stats = w.stats(&b).await;
    assert_eq!(
        (stats.peak_viewers, stats.unique_viewers),
        (2, 2),
        "{stats:?}"
    );
}

/// An LL-HLS player in a play session: every 300 ms it reloads the media playlist and
/// fetches the newest part it lists, recording every answer's status.
struct HlsPlayer {
    statuses: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HlsPlayer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HlsPlayer {
    fn start(http: reqwest::Client, media: String) -> HlsPlayer {
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let out = statuses.clone();
        let task = tokio::spawn(async move {
            let base = reqwest::Url::parse(&media).unwrap();
            loop {
                let res = http.get(&media).send().await.unwrap();
                out.lock().unwrap().push(res.status().as_u16());
                let text = res.text().await.unwrap_or_default();
                let part = text
                    .lines()
                    .rev()
                    .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
                    .find_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
                    .map(str::to_owned);
                if let Some(part) = part {
                    let url = base.join(&part).unwrap();
                    let res = http.get(url).send().await.unwrap();
                    let ok = res.status().as_u16();
                    let _ = res.bytes().await;
                    out.lock().unwrap().push(ok);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        HlsPlayer { statuses, task }
    }

    /// The statuses answered since the last call.
    fn take(&self) -> Vec<u16> {
        std::mem::take(&mut *self.statuses.lock().unwrap())
    }
}

/// Waits until the node has the publisher of `b` with a picture.
async fn until_node_publishing(w: &World, b: &Booking) {
    until("the publisher at the node", || {
        w.run
            .node
            .live(ReservationId(b.id))
            .is_some_and(|s| s.publishing && s.width.is_some())
    })
    .await;
}

/// Issue 9: a play grant is for one program. Public A is followed on the same channel by
/// secret B (at another picture size): A's viewer never receives a frame of B and is
/// closed when B begins; during B, A's live token is refused on every protocol, and so
/// is A's LL-HLS session; B's viewer who came during A got nothing of A; a replay token
/// does not play live and a live token does not open the replay.
async fn a_live_grant_plays_its_own_program_and_no_other(db: Db) {
    const SECRET_B: (u32, u32) = (480, 270);
    let name = match db {
        Db::Sqlite => "onlyown-lite",
        Db::Postgres => "onlyown-pg",
    };
    let Some(w) = world_on(name, db).await else {
        return;
    };
    let owner = w.member("caster@example.org", true).await;
    let a = w
        .booked_as(&owner, "2026-11-21T12:30:00Z", 1, "public")
        .await;
    let b = w
        .booked_as(&owner, "2026-11-21T12:35:00Z", 1, "secret")
        .await;
    assert_eq!(a.end, b.start);
    w.set(a.start - SignedDuration::from_secs(50));
    let _pa = w.publish(&a.key, 120);
    until_node_publishing(&w, &a).await;
    // Late in A, with B's connect window open.
    w.set(b.start - SignedDuration::from_secs(40));
    until("A on air", || {
        w.run
            .node
            .live(ReservationId(a.id))
            .is_some_and(|s| s.on_air)
    })
    .await;
    let grant_a = w.play(&a, None).await;
    assert_eq!(grant_a.status, StatusCode::OK, "{:?}", grant_a.body);
    let url_a = |kind: &str| w.local(grant_a.body["urls"][kind].as_str().unwrap());
    let viewer_a = watch(&w.http, &url_a("flv")).await;
    viewer_a.until_showing(PROGRAM, "A").await;
    let hls_a = w.variant(&url_a("hls")).await;
    let r = w.http.get(&hls_a).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("#EXT-X-PART:"));

    // B's broadcaster connects (its preview only); a viewer of B arrives during A and
    // gets nothing of A.
    let _pb = w.publish_sized(&b.key, 120, SECRET_B);
    until_node_publishing(&w, &b).await;
    let grant_b = w.play(&b, Some(PASSWORD)).await;
    assert_eq!(grant_b.status, StatusCode::OK, "{:?}", grant_b.body);
    let viewer_b = watch(
        &w.http,
        &w.local(grant_b.body["urls"]["flv"].as_str().unwrap()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(viewer_b.last(), None, "B's viewer saw nothing of A");
    assert_eq!(viewer_b.frames(), 0);

    // A ends, B begins at once.
    w.set(b.start);
    viewer_b.until_showing(SECRET_B, "B").await;
    until("A's viewer closed", || viewer_a.seen.lock().unwrap().closed).await;
    let seen_a = viewer_a.seen.lock().unwrap().dims.clone();
    assert!(
        !seen_a.contains(&SECRET_B),
        "A's viewer got B's picture: {seen_a:?}"
    );
    assert_eq!(seen_a.last(), Some(&PROGRAM), "{seen_a:?}");

    // Eight seconds into B: A's live token is refused on every protocol, A's HLS
    // session too.
    w.set(b.start + SignedDuration::from_secs(8));
    for kind in ["flv", "mse", "hls"] {
        let r = w.http.get(url_a(kind)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{kind}");
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "program_ended", "{kind}: {body}");
    }
    let r = w.http.get(&hls_a).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let p = probe(url_a("flv")).await;
    assert_eq!(frames(&p), 0, "ffprobe got nothing with A's token: {p}");

    // A completes: its replay is granted; a replay token is no live token, a live token
    // no replay token.
    w.set(a.connect_to);
    w.until_status(&a, "completed").await;
    let replay = w.play(&a, None).await;
    assert_eq!(replay.status, StatusCode::OK, "{:?}", replay.body);
    assert_eq!(replay.body["kind"], "replay");
    let replay_token = replay.body["token"].as_str().unwrap();
    let live_with_replay = w.url(&format!("/live/{}.flv?token={replay_token}", w.channel));
    let r = w.http.get(&live_with_replay).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["error"]["code"],
        "wrong_kind"
    );
    let live_token = grant_a.body["token"].as_str().unwrap();
    let vod_with_live = w.url(&format!("/vod/{}/index.m3u8?token={live_token}", a.slug));
    let r = w.http.get(&vod_with_live).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).unwrap()["error"]["code"],
        "wrong_kind"
    );
    let media = w
        .variant(&w.local(replay.body["urls"]["hls"].as_str().unwrap()))
        .await;
    assert_eq!(
        w.http.get(&media).send().await.unwrap().status(),
        StatusCode::OK
    );
    // B plays on for its viewer.
    let before = viewer_b.frames();
    until("B's viewer goes on", || viewer_b.frames() > before + 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_live_grant_plays_its_own_program_and_no_other() {
    a_live_grant_plays_its_own_program_and_no_other(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_live_grant_plays_its_own_program_and_no_other() {
    a_live_grant_plays_its_own_program_and_no_other(Db::Postgres).await;
}

/// Issue 9: an LL-HLS viewer and an HTTP-FLV viewer watch a ten-minute program to its end
/// on the one five-minute token they got at the start (the service clock runs ten
/// minutes while they play); both are closed after the end; an HLS viewer who stops
/// polling frees its seat within three target durations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_and_flv_viewers_play_a_long_program_to_its_end_on_one_token() {
    let Some(w) = world("long").await else {
        return;
    };
    let owner = w.member("caster@example.org", true).await;
    let b = w
        .booked_as(&owner, "2026-11-21T12:30:00Z", 2, "public")
        .await;
    assert_eq!(b.end, b.start + SignedDuration::from_mins(10));
    w.set(b.start - SignedDuration::from_secs(50));
    let _p = w.publish(&b.key, 120);
    until_node_publishing(&w, &b).await;
    w.set(b.start);
    let grant = w.play(&b, None).await;
    assert_eq!(grant.status, StatusCode::OK, "{:?}", grant.body);
    let expires: Timestamp = grant.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, b.start + SignedDuration::from_mins(5));
    let flv = watch(
        &w.http,
        &w.local(grant.body["urls"]["flv"].as_str().unwrap()),
    )
    .await;
    flv.until_showing(PROGRAM, "the program").await;
    let media = w
        .variant(&w.local(grant.body["urls"]["hls"].as_str().unwrap()))
        .await;
    let hls = HlsPlayer::start(w.http.clone(), media.clone());
    w.until_metric("slotcast_channel_viewers", 1.0).await;
    // Nine and a half minutes of service time in 30-second steps.
    for step in 1..=19 {
        w.set(b.start + SignedDuration::from_secs(30 * step));
        let frames = flv.frames();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let got = hls.take();
        assert!(
            !got.is_empty() && got.iter().all(|&s| s == 200),
            "at +{} s the HLS player got {got:?}",
            30 * step
        );
        assert!(
            flv.frames() > frames,
            "HTTP-FLV plays on at +{} s",
            30 * step
        );
        assert!(!flv.seen.lock().unwrap().closed);
    }
    // A second HLS viewer (a fresh grant) who stops polling frees its seat.
    let other = w.play(&b, None).await;
    let entry = w.local(other.body["urls"]["hls"].as_str().unwrap());
    let _ = w.variant(&entry).await;
    w.until_metric("slotcast_channel_viewers", 2.0).await;
    let stopped = Instant::now();
    w.until_metric("slotcast_channel_viewers", 1.0).await;
    assert!(
        stopped.elapsed() < Duration::from_secs(9),
        "{:?}",
        stopped.elapsed()
    );
    // After the end and the linger, both players are closed: the HLS session is told
    // the program ended, then is gone.
    w.set(b.end + SignedDuration::from_secs(20));
    until("the FLV viewer closed", || flv.seen.lock().unwrap().closed).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(hls.take().contains(&403));
    let r = w.http.get(&media).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
