//! The whole server in-process for end-to-end tests (`live.rs`, `browser.rs`): the center
//! and the stream node as role `all` runs them, on SQLite or PostgreSQL in a temp dir, a
//! manual clock for the booked window, real ffmpeg publishing with the reservation key,
//! real HTTP for the API and the viewers.

#![allow(dead_code)]

#[path = "../../../center/tests/common/smtp.rs"]
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slotcast_domain::{Clock, ReservationId, Timestamp};
use slotcast_media::flv::{FlvReader, TagKind, avc_dimensions, video_info};
use slotcast_testkit::media::{frames, publisher_sized, tool};
use slotcast_testkit::{ManualClock, TempDir};
use slotcastd::config::Config;
use slotcastd::server::{self, Running};

/// The filler and the slate are 640x360 (a 400 kbit/s channel); programs are 320x240.
pub const FILLER: (u32, u32) = (640, 360);
pub const PROGRAM: (u32, u32) = (320, 240);
pub const PASSWORD: &str = "open sesame";

pub fn t0() -> Timestamp {
    "2026-11-21T12:00:00Z".parse().unwrap()
}

/// Warnings and errors the server logs, captured for the whole test process (one global
/// subscriber; each test looks for lines naming its own files).
pub fn server_log() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOG: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .try_init();
        buf
    })
    .clone()
}

/// A child process killed when dropped (a failing test leaves no ffmpeg behind).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server, its clock and an HTTP client.
pub struct World {
    pub run: Running,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
    pub channel: String,
    pub http: reqwest::Client,
    pub _pg: Option<slotcast_testkit::pg::TempPg>,
    /// The SMTP sink the server sends to ([`world_smtp`]); `None`: the file outbox.
    pub inbox: Option<smtp::Inbox>,
}

/// The database a world runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A confirmed booking.
pub struct Booking {
    pub id: i64,
    pub key: String,
    pub slug: String,
    /// The broadcaster's bearer token.
    pub owner: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// End of the connect window.
    pub connect_to: Timestamp,
}

/// Starts the server with one channel `channel` (capacity 5, 400 kbit/s), 5-minute
/// slots and a connect window of start − 60 s … end + 60 s; `None` when ffmpeg is missing
/// (outside CI).
pub async fn world(channel: &str) -> Option<World> {
    world_on(channel, Db::Sqlite).await
}

/// [`world`] on `db` (PostgreSQL: a database of its own on `SLOTCAST_TEST_PG`).
pub async fn world_on(channel: &str, db: Db) -> Option<World> {
    start_world(channel, db, false).await
}

/// [`world`] sending its e-mail to a real SMTP server (an in-process sink on loopback).
pub async fn world_smtp(channel: &str) -> Option<World> {
    start_world(channel, Db::Sqlite, true).await
}

async fn start_world(channel: &str, db: Db, smtp: bool) -> Option<World> {
    if !tool("ffmpeg") || !tool("ffprobe") {
        return None;
    }
    let sink = smtp.then(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for SMTP");
        let port = l.local_addr().unwrap().port();
        (smtp::start_smtp(l), port)
    });
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(slotcast_testkit::pg::TempPg::create().await?),
    };
    let dir = TempDir::new("live");
    let http_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // Through the operator's route (environment overrides), so the configuration is
    // validated as the server's own would be.
    let env = [
        ("DATA_DIR", dir.path().join("data").display().to_string()),
        // A port known before the start, so that the play URLs the server gives out (its
        // public URL) reach this listener, as a browser needs.
        ("HTTP__LISTEN", format!("127.0.0.1:{http_port}")),
        ("PUBLIC_URL", format!("http://127.0.0.1:{http_port}")),
        ("RTMP__LISTEN", "127.0.0.1:0".into()),
        ("SLOTS__MINUTES", "5".into()),
        ("SLOTS__CONFIRM_LEAD_MINUTES", "10".into()),
        ("SLOTS__CONNECT_BEFORE_SECONDS", "60".into()),
        ("SLOTS__CONNECT_AFTER_SECONDS", "60".into()),
        // Made here, small and before the start, so the test does not wait for it.
        ("FILLER__AUTO_GENERATE", "false".into()),
        (
            "CHANNELS",
            format!(
                r#"[{{name = "{channel}", capacity = 5, bitrate_kbps = 400, tariff_per_slot = 100}}]"#
            ),
        ),
    ]
    .map(|(k, v)| (format!("SLOTCAST__{k}"), v))
    .into_iter()
    .chain(
        pg.as_ref()
            .map(|pg| ("SLOTCAST__DATABASE__URL".to_owned(), pg.url.clone())),
    )
    .chain(sink.iter().flat_map(|(_, port)| {
        [
            ("MAIL__TRANSPORT", "smtp".to_owned()),
            ("MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
            ("MAIL__SMTP__PORT", port.to_string()),
            ("MAIL__SMTP__TLS", "none".to_owned()),
        ]
        .map(|(k, v)| (format!("SLOTCAST__{k}"), v))
    }));
    let cfg = Config::load(None, env).expect("a valid configuration");
    let sc = server::stream_config(&cfg);
    let spec = slotcast_stream::filler::FillerSpec {
        channel: channel.into(),
        bitrate_kbps: 400,
        seconds: 4,
    };
    tokio::task::spawn_blocking(move || {
        slotcast_stream::filler::generate(Path::new("ffmpeg"), &sc.filler_dir, &sc.slate_dir, &spec)
    })
    .await
    .unwrap()
    .expect("filler generated");
    let clock = Arc::new(ManualClock::new(t0()));
    let run = server::start(&cfg, Some(clock.clone() as Arc<dyn Clock>))
        .await
        .expect("server starts");
    Some(World {
        run,
        clock,
        dir,
        channel: channel.into(),
        http: reqwest::Client::new(),
        _pg: pg,
        inbox: sink.map(|(inbox, _)| inbox),
    })
}

/// A reply of the REST API.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl World {
    /// Sets the shared clock; the stream node's channels re-plan at once.
    pub fn set(&self, t: Timestamp) {
        self.clock.set(t);
        self.run.node.clock_changed();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.run.http)
    }

    /// A URL the server gave out (with its configured public base) on this test's
    /// listener.
    pub fn local(&self, url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let path = &rest[rest.find('/').unwrap_or(rest.len())..];
        self.url(path)
    }

    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let bytes = res.bytes().await.unwrap();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.api(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.api(Method::POST, path, token, Some(body)).await
    }

    /// Registers and signs in; the bearer token.
    pub async fn member(&self, email: &str, premium: bool) -> String {
        let mut body = json!({"email": email, "password": "a long enough password",
            "display_name": email.split('@').next().unwrap(),
            "tier": if premium {"premium"} else {"general"}});
        if premium {
            body["payment"] = json!({"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "holder": "Test Person"});
        }
        let r = self.post("/api/v1/members", None, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = self
            .post(
                "/api/v1/sessions",
                None,
                json!({"email": email, "password": "a long enough password"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// An operator account (as `slotcastd admin create-operator` makes one), password
    /// `operator password`.
    pub async fn operator(&self, email: &str) {
        let c = &self.run.center;
        c.store
            .create_member(slotcast_store::NewMember {
                email: slotcast_domain::EmailAddress::parse(email).unwrap(),
                password_hash: slotcast_center::secrets::hash_password("operator password")
                    .unwrap(),
                display_name: "Op".into(),
                tier: slotcast_store::Tier::General,
                role: slotcast_store::Role::Operator,
                payment: None,
                created_at: c.clock.now(),
            })
            .await
            .unwrap();
    }

    /// A premium member books one slot at t0 + 30 min, reads the key from the e-mail the
    /// server wrote and confirms.
    pub async fn booked(&self, visibility: &str) -> Booking {
        let owner = self.member("caster@example.org", true).await;
        self.booked_as(&owner, "2026-11-21T12:30:00Z", 1, visibility)
            .await
    }

    /// `owner` books `slots` slots from `start` and confirms with the e-mailed key.
    pub async fn booked_as(
        &self,
        owner: &str,
        start: &str,
        slots: u32,
        visibility: &str,
    ) -> Booking {
        let owner = owner.to_owned();
        let mut body = json!({"channel": self.channel, "start": start, "slots": slots,
            "visibility": visibility, "title": format!("Show on {} at {start}", self.channel)});
        if visibility != "public" {
            body["viewer_password"] = json!(PASSWORD);
        }
        let r = self.post("/api/v1/reservations", Some(&owner), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let key = self.key_from_mail(id).await;
        let r = self
            .post(
                &format!("/api/v1/reservations/{id}/confirm"),
                Some(&owner),
                json!({"reservation_key": key}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let r = self
            .get(&format!("/api/v1/reservations/{id}"), Some(&owner))
            .await;
        assert_eq!(r.body["status"], "confirmed", "{:?}", r.body);
        let ts = |v: &Value| v.as_str().unwrap().parse::<Timestamp>().unwrap();
        Booking {
            id,
            key,
            slug: r.body["slug"].as_str().unwrap().to_owned(),
            owner,
            start: ts(&r.body["start"]),
            end: ts(&r.body["end"]),
            connect_to: ts(&r.body["connect_window"]["to"]),
        }
    }

    /// Every e-mail sent so far (to the SMTP sink, or the `.eml` files the file transport
    /// wrote), as text.
    pub fn mails(&self) -> Vec<String> {
        if let Some(inbox) = &self.inbox {
            return inbox
                .lock()
                .unwrap()
                .iter()
                .map(|m| decode_mail(&m.data))
                .collect();
        }
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("data/outbox")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .map(|raw| decode_mail(&raw))
            .collect()
    }

    /// The reservation key, from the acceptance e-mail.
    pub async fn key_from_mail(&self, id: i64) -> String {
        let wanted = format!("#{id}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for m in self.mails() {
                if m.contains("reservation key") && m.contains(&wanted) {
                    // It names the ingest the server really listens on.
                    let ingest = format!(":{}/live/", self.run.rtmp.port());
                    assert!(m.contains(&ingest), "{ingest} in {m}");
                    return m
                        .split_whitespace()
                        .find(|w| {
                            w.len() == 32
                                && w.bytes()
                                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
                        })
                        .unwrap_or_else(|| panic!("no key in {m}"))
                        .to_owned();
                }
            }
            assert!(Instant::now() < deadline, "no key e-mail for #{id}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// ffmpeg publishing a 320x240, 25 fps test pattern and a tone with `key`.
    pub fn publish(&self, key: &str, secs: u32) -> Proc {
        self.publish_sized(key, secs, PROGRAM)
    }

    /// [`World::publish`] at another picture size.
    pub fn publish_sized(&self, key: &str, secs: u32, dims: (u32, u32)) -> Proc {
        let child = publisher_sized(&format!("rtmp://{}/live/{key}", self.run.rtmp), secs, dims)
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg runs");
        Proc(child)
    }

    /// A play grant for the program (as any viewer gets it).
    pub async fn play(&self, b: &Booking, password: Option<&str>) -> Reply {
        let body = match password {
            Some(p) => json!({"password": p}),
            None => json!({}),
        };
        self.post(&format!("/api/v1/programs/{}/play", b.slug), None, body)
            .await
    }

    /// A viewer of the channel's HTTP-FLV stream with a fresh play grant.
    pub async fn viewer(&self, b: &Booking, password: Option<&str>) -> Viewer {
        let r = self.play(b, password).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let url = self.local(r.body["urls"]["flv"].as_str().unwrap());
        assert!(
            url.contains(&format!("/live/{}.flv?token=", self.channel)),
            "{url}"
        );
        watch(&self.http, &url).await
    }

    /// The owner's live statistics stream.
    pub async fn live_events(&self, b: &Booking) -> Events {
        let res = self
            .http
            .get(self.url(&format!("/api/v1/reservations/{}/live", b.id)))
            .bearer_auth(&b.owner)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Events {
            res,
            buf: String::new(),
        }
    }

    /// `/metrics` in the Prometheus text format.
    pub async fn metrics(&self) -> String {
        let res = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    /// The value of the sample `name{channel="<this channel>"}`, if exported.
    pub async fn channel_metric(&self, name: &str) -> Option<f64> {
        let prefix = format!("{name}{{channel=\"{}\"}} ", self.channel);
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
    }

    /// Polls `what` until it holds (10 s at most).
    pub async fn until_metric(&self, name: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.channel_metric(name).await;
            if got == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is {got:?}, want {want}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the reservation's status (the scheduler runs once a second).
    pub async fn until_status(&self, b: &Booking, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self
                .get(&format!("/api/v1/reservations/{}", b.id), Some(&b.owner))
                .await;
            if r.body["status"] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status {} instead of {want}",
                r.body["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The media playlist an HLS entry playlist (`index.m3u8?token=`) names: a play
    /// session's URL.
    pub async fn variant(&self, entry: &str) -> String {
        let res = self.http.get(entry).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{entry}");
        let text = res.text().await.unwrap();
        assert!(text.contains("#EXT-X-STREAM-INF:BANDWIDTH="), "{text}");
        let uri = text
            .lines()
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("no variant in {text}"));
        reqwest::Url::parse(entry)
            .unwrap()
            .join(uri)
            .unwrap()
            .to_string()
    }

    /// The totals the scheduler stored at completion.
    pub async fn stats(&self, b: &Booking) -> slotcast_domain::ProgramStats {
        self.run
            .center
            .store
            .program_stats(ReservationId(b.id))
            .await
            .unwrap()
            .expect("statistics kept")
    }

    pub fn recording_path(&self, b: &Booking) -> PathBuf {
        self.run.node.config().recording_path(ReservationId(b.id))
    }
}

/// Undoes the transfer encodings of an `.eml` well enough to read its text: quoted-
/// printable soft breaks and escapes, and base64 bodies of text parts.
pub fn decode_mail(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw)
        .replace("=\r\n", "")
        .replace("=3D", "=");
    let mut out = text.clone();
    // Base64 parts: runs of base64 lines after a blank line.
    for block in text.split("\r\n\r\n") {
        let lines: Vec<&str> = block.lines().collect();
        let b64 = !lines.is_empty()
            && lines.iter().all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            });
        if b64 && let Some(decoded) = base64_decode(&lines.concat()) {
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&decoded));
        }
    }
    out
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The owner's SSE stream of live statistics.
pub struct Events {
    pub res: reqwest::Response,
    pub buf: String,
}

impl Events {
    /// The next `live` event's data.
    pub async fn next(&mut self) -> Value {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..i + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).expect("JSON event");
                }
                continue;
            }
            let chunk = self
                .res
                .chunk()
                .await
                .expect("event stream")
                .expect("the event stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The first event that satisfies `f` (within 20 s); panics with the last one.
    pub async fn until(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = Value::Null;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.next()).await {
                Ok(e) if f(&e) => return e,
                Ok(e) => last = e,
                Err(_) => panic!("no live event with {what}; the last: {last}"),
            }
        }
    }
}

/// What one HTTP-FLV viewer received: the picture sizes of the sequence headers in
/// order, bytes, and whether the connection ended.
#[derive(Debug, Default)]
pub struct Seen {
    pub dims: Vec<(u32, u32)>,
    pub bytes: u64,
    pub video_frames: u64,
    pub closed: bool,
}

pub struct Viewer {
    pub seen: Arc<Mutex<Seen>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Viewer {
    pub fn last(&self) -> Option<(u32, u32)> {
        self.seen.lock().unwrap().dims.last().copied()
    }

    pub fn bytes(&self) -> u64 {
        self.seen.lock().unwrap().bytes
    }

    pub fn frames(&self) -> u64 {
        self.seen.lock().unwrap().video_frames
    }

    /// Waits until the latest sequence header shows `dims` (15 s at most).
    pub async fn until_showing(&self, dims: (u32, u32), what: &str) {
        until(what, || self.last() == Some(dims)).await;
    }
}

/// Connects an HTTP-FLV viewer and reads it in the background.
pub async fn watch(http: &reqwest::Client, url: &str) -> Viewer {
    let mut res = http.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let mut reader = FlvReader::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            out.lock().unwrap().bytes += chunk.len() as u64;
            reader.push(&chunk);
            while let Ok(Some(tag)) = reader.poll_tag() {
                if tag.kind != TagKind::Video {
                    continue;
                }
                let Ok(info) = video_info(&tag.data) else {
                    continue;
                };
                let mut seen = out.lock().unwrap();
                if info.is_sequence_header() {
                    if let Ok(d) = avc_dimensions(&tag.data[info.header_len..]) {
                        seen.dims.push(d);
                    }
                } else {
                    seen.video_frames += 1;
                }
            }
        }
        out.lock().unwrap().closed = true;
    });
    Viewer { seen, task }
}

pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`probe`](slotcast_testkit::media::probe) off the runtime.
pub async fn probe(url: String) -> String {
    tokio::task::spawn_blocking(move || slotcast_testkit::media::probe(&url, &[]))
        .await
        .unwrap()
}

pub fn program_probe(p: &str) -> bool {
    p.starts_with(&format!("{},{},", PROGRAM.0, PROGRAM.1)) && frames(p) >= 25
}

/// Waits for the publisher's media to reach the center's view of the program.
pub async fn until_publishing(events: &mut Events) -> Value {
    events
        .until("publishing and a picture size", |e| {
            e["publishing"] == true && e["width"].is_u64()
        })
        .await
}
