//! The agent: it reads a stored connection profile, keeps time by the server's clock
//! (this machine's clock corrected by the measured offset), reminds the broadcaster before
//! the start, **connects by itself** when the connect window opens (a pre-recorded file at
//! its start), pushing through ffmpeg from a test pattern, a file or a capture device with
//! optional effects, **fails over** between the profile's ingest endpoints and reconnects
//! after a drop while the window lasts, and stops at the end. While it runs it shows what
//! the server measures (the live event stream) on the terminal dashboard
//! ([`crate::dashboard`], where `e` takes an offered extension), or in lines without a
//! terminal.

use std::io::{IsTerminal, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use age::armor::ArmoredReader;
use serde_json::Value;
use slotcast_domain::Timestamp;

use tokio::sync::mpsc;

use crate::api::Api;
use crate::dashboard::{Action, Status};
use crate::local::DataDir;
use crate::{Error, Result, clock};

/// What the agent pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A test pattern with a tone.
    Test,
    /// A pre-recorded file, played from the program's start.
    File(String),
    /// A capture device (Video4Linux, e.g. `/dev/video0`).
    Device(String),
}

impl Source {
    /// `test`, `file:PATH` or `device:PATH`.
    pub fn parse(s: &str) -> Result<Source> {
        match s.split_once(':') {
            None if s == "test" => Ok(Source::Test),
            Some(("file", p)) if !p.is_empty() => Ok(Source::File(p.to_owned())),
            Some(("device", p)) if !p.is_empty() => Ok(Source::Device(p.to_owned())),
            _ => Err(Error::Input(format!(
                "--source is test, file:PATH or device:PATH, not {s:?}"
            ))),
        }
    }
}

/// A preset effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The time of day in a corner.
    Clock,
    /// The program's title along the bottom.
    Title,
    /// Black and white.
    Mono,
}

impl Effect {
    /// `clock`, `title` or `mono`.
    pub fn parse(s: &str) -> Result<Effect> {
        match s {
            "clock" => Ok(Effect::Clock),
            "title" => Ok(Effect::Title),
            "mono" => Ok(Effect::Mono),
            _ => Err(Error::Input(format!(
                "--effect is clock, title or mono, not {s:?}"
            ))),
        }
    }
}

/// The part of a connection profile the agent uses.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The reservation.
    pub reservation: i64,
    /// The stream key.
    pub key: String,
    /// The program's title.
    pub title: String,
    /// The channel's name and bitrate.
    pub channel: String,
    /// kbit/s.
    pub bitrate_kbps: u32,
    /// When the program starts and ends, and the key works.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// The connect window.
    pub connect_from: Timestamp,
    /// The connect window's end.
    pub connect_to: Timestamp,
    /// Ingest endpoints, preferred first.
    pub ingest: Vec<String>,
}

/// Reads the profile of `reservation` stored in `dir` (decrypted with the device key).
pub fn plan(dir: &DataDir, reservation: i64) -> Result<Plan> {
    let path = dir.profile_path(reservation);
    let armored = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Input(format!(
                "no connection profile for reservation {reservation} here: run `slotcast confirm {reservation}` or `slotcast profile {reservation}`"
            ))
        } else {
            Error::Local { path: path.clone(), source: e }
        }
    })?;
    let identity = dir.device_key()?;
    let broken = |why: String| Error::Local {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    };
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
        .map_err(|e| broken(e.to_string()))?;
    let mut json = String::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| broken(format!("not for this device's key: {e}")))?
        .take(1 << 20)
        .read_to_string(&mut json)
        .map_err(|e| broken(e.to_string()))?;
    let p: Value = serde_json::from_str(&json).map_err(|e| broken(e.to_string()))?;
    let ts = |k: &str| {
        p[k].as_str()
            .and_then(|s| s.parse::<Timestamp>().ok())
            .ok_or_else(|| broken(format!("the profile has no {k}")))
    };
    let mut ingest: Vec<(u64, String)> = p["ingest"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["protocol"] == "rtmp")
        .filter_map(|e| Some((e["priority"].as_u64()?, e["url"].as_str()?.to_owned())))
        .collect();
    ingest.sort();
    Ok(Plan {
        reservation,
        key: p["reservation_key"].as_str().unwrap_or("").to_owned(),
        title: p["program"]["title"].as_str().unwrap_or("").to_owned(),
        channel: p["channel"]["name"].as_str().unwrap_or("").to_owned(),
        bitrate_kbps: u32::try_from(p["channel"]["bitrate_kbps"].as_u64().unwrap_or(1000))
            .unwrap_or(1000),
        start: ts("start")?,
        end: ts("end")?,
        connect_from: ts("connect_from")?,
        connect_to: ts("connect_to")?,
        ingest: ingest.into_iter().map(|(_, u)| u).collect(),
    })
}

/// The font drawtext uses, when present.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The ffmpeg command that pushes `source` with `effects` to `url` for `plan`.
pub fn ffmpeg(plan: &Plan, source: &Source, effects: &[Effect], url: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
    match source {
        Source::Test => {
            let (w, h) = slotcast_domain::channel::picture_size(plan.bitrate_kbps);
            c.args([
                "-re",
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc2=size={w}x{h}:rate=25"),
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
        }
        Source::File(path) => {
            c.args(["-re", "-i", path]);
        }
        Source::Device(path) => {
            c.args(["-f", "v4l2", "-i", path]).args([
                "-f",
                "lavfi",
                "-i",
                "anullsrc=channel_layout=stereo:sample_rate=44100",
            ]);
        }
    }
    let font = if std::path::Path::new(FONT).exists() {
        format!("fontfile={FONT}:")
    } else {
        String::new()
    };
    let safe_title: String = plan
        .title
        .chars()
        .filter(|c| c.is_alphanumeric() || " -_.!?".contains(*c))
        .collect();
    let filters: Vec<String> = effects
        .iter()
        .map(|e| match e {
            Effect::Mono => "hue=s=0".to_owned(),
            Effect::Clock => format!(
                "drawtext={font}text='%{{localtime\\:%H\\\\\\:%M\\\\\\:%S}}':fontcolor=white:fontsize=h/12:box=1:boxcolor=black@0.5:x=w-tw-10:y=10"
            ),
            Effect::Title => format!(
                "drawtext={font}text='{safe_title}':fontcolor=white:fontsize=h/14:box=1:boxcolor=black@0.5:x=(w-tw)/2:y=h-th-20"
            ),
        })
        .collect();
    if !filters.is_empty() {
        c.args(["-vf", &filters.join(",")]);
    }
    let audio_kbps = 96.min(plan.bitrate_kbps / 4).max(32);
    let video_kbps = plan.bitrate_kbps.saturating_sub(audio_kbps).max(100);
    c.args([
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
    ])
    .args(["-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50"])
    .args([
        "-b:v",
        &format!("{video_kbps}k"),
        "-maxrate",
        &format!("{video_kbps}k"),
    ])
    .args(["-bufsize", &format!("{}k", video_kbps * 2)])
    .args([
        "-c:a",
        "aac",
        "-b:a",
        &format!("{audio_kbps}k"),
        "-ar",
        "44100",
    ])
    .args(["-f", "flv", url])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

/// The corrected clock: this machine's time plus the measured offset.
#[derive(Debug, Clone, Copy)]
struct Corrected {
    offset_ms: f64,
}

impl Corrected {
    fn now(&self) -> Timestamp {
        let local = Timestamp::now().as_millisecond() as f64;
        Timestamp::from_millisecond((local + self.offset_ms) as i64)
            .unwrap_or_else(|_| Timestamp::now())
    }
}

/// The agent's options.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to push.
    pub source: Source,
    /// Effects.
    pub effects: Vec<Effect>,
    /// Minutes before the start to remind.
    pub remind_minutes: u32,
    /// Show the terminal dashboard (when there is a terminal).
    pub dashboard: bool,
}

/// Where the agent reports: lines on stdout, or the terminal dashboard.
enum Out {
    Log,
    Ui(Arc<Mutex<Status>>),
}

impl Out {
    /// A line of the agent's log with the server's time, or the dashboard's news.
    #[allow(clippy::print_stdout)]
    fn say(&self, clock: &Corrected, line: &str) {
        match self {
            Out::Log => println!("{:.0} {line}", clock.now()),
            Out::Ui(s) => {
                if let Ok(mut s) = s.lock() {
                    s.news = line.to_owned();
                }
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        if let Out::Ui(s) = self
            && let Ok(mut s) = s.lock()
        {
            f(&mut s);
        }
    }
}

/// A live event as a log line.
fn event_line(e: &Value, reservation: i64) -> String {
    format!(
        "{} · viewers {} · {} kbit/s · {}{}",
        if e["on_air"] == true {
            "ON AIR"
        } else if e["publishing"] == true {
            "sending (not on air yet)"
        } else {
            "not sending"
        },
        e["viewers"],
        e["bitrate_kbps"],
        picture(e),
        match e["offer_slots"].as_u64() {
            Some(n) if n > 0 =>
                format!(" · extension offered: up to {n} slots (`slotcast extend {reservation}`)"),
            _ => String::new(),
        }
    )
}

fn picture(e: &Value) -> String {
    match (e["width"].as_u64(), e["height"].as_u64()) {
        (Some(w), Some(h)) => format!("{w}x{h} {:.0} fps", e["fps"].as_f64().unwrap_or(0.0)),
        _ => "no picture".into(),
    }
}

/// What the agent's waits and pushes hear about meanwhile.
struct Inputs {
    events: mpsc::Receiver<Value>,
    actions: mpsc::Receiver<Action>,
    last_line: String,
    said: tokio::time::Instant,
}

/// What happened while waiting.
enum Heard {
    Nothing,
    Quit,
}

impl Inputs {
    /// Waits up to `d` for an event or a key, and deals with it.
    async fn listen(&mut self, d: Duration, ctx: &mut Ctx<'_>) -> Heard {
        tokio::select! {
            Some(e) = self.events.recv() => {
                let line = event_line(&e, ctx.plan.reservation);
                ctx.out.update(|s| {
                    s.on_air = e["on_air"] == true;
                    s.publishing = e["publishing"] == true;
                    s.viewers = e["viewers"].as_u64().unwrap_or(0);
                    s.bitrate_kbps = e["bitrate_kbps"].as_u64().unwrap_or(0);
                    s.picture = picture(&e);
                    s.offer_slots = e["offer_slots"].as_u64().unwrap_or(0);
                });
                if matches!(ctx.out, Out::Log)
                    && (line != self.last_line || self.said.elapsed() > Duration::from_secs(10))
                {
                    self.said = tokio::time::Instant::now();
                    self.last_line = line.clone();
                    ctx.out.say(ctx.clock, &line);
                }
                Heard::Nothing
            }
            Some(a) = self.actions.recv() => match a {
                Action::Quit => Heard::Quit,
                Action::Extend => {
                    let id = ctx.plan.reservation;
                    match ctx.api.post(&format!("/reservations/{id}/extend"), serde_json::json!({"slots": 1})).await {
                        Ok(r) => {
                            if let Some(end) = r["end"].as_str().and_then(|e| e.parse::<Timestamp>().ok()) {
                                ctx.plan.end = end;
                                ctx.out.update(|s| s.end = Some(end));
                                ctx.out.say(ctx.clock, &format!("extended: the program now ends {end:.0}"));
                            }
                        }
                        Err(e) => ctx.out.say(ctx.clock, &format!("not extended: {e}")),
                    }
                    Heard::Nothing
                }
            },
            () = tokio::time::sleep(d) => Heard::Nothing,
        }
    }

    /// Waits until `t` on the corrected clock; `false` when the broadcaster quit.
    async fn until(&mut self, t: Timestamp, ctx: &mut Ctx<'_>) -> bool {
        loop {
            let left = t.as_millisecond() - ctx.clock.now().as_millisecond();
            if left <= 0 {
                return true;
            }
            let d = Duration::from_millis(left.unsigned_abs().min(500));
            if let Heard::Quit = self.listen(d, ctx).await {
                return false;
            }
        }
    }
}

/// The agent's state shared by its steps.
struct Ctx<'a> {
    api: &'a Api,
    clock: &'a Corrected,
    plan: Plan,
    out: Out,
}

/// Runs the agent for `reservation` until its program ends (or `q` on the dashboard).
pub async fn run(api: &Api, dir: &DataDir, reservation: i64, o: &Options) -> Result<()> {
    let plan = plan(dir, reservation)?;
    if plan.ingest.is_empty() {
        return Err(Error::Input(
            "the profile names no RTMP ingest endpoint".into(),
        ));
    }
    if let Source::File(p) = &o.source
        && !std::path::Path::new(p).is_file()
    {
        return Err(Error::Input(format!("no file {p}")));
    }
    let measured = clock::measure(api, 4).await?;
    let clock = Corrected {
        offset_ms: measured.server_ahead_ms,
    };
    if clock.now() >= plan.connect_to {
        return Err(Error::Input(format!(
            "reservation {reservation}'s connect window closed at {:.0}",
            plan.connect_to
        )));
    }
    let (act_tx, act_rx) = mpsc::channel(4);
    let (out, ui) = if std::io::stdout().is_terminal() && o.dashboard {
        let status = Arc::new(Mutex::new(Status {
            program: plan.title.clone(),
            channel: plan.channel.clone(),
            start: Some(plan.start),
            end: Some(plan.end),
            offset_ms: measured.server_ahead_ms,
            ..Status::default()
        }));
        let ui = crate::dashboard::start(status.clone(), act_tx);
        (Out::Ui(status), Some(ui))
    } else {
        drop(act_tx);
        (Out::Log, None)
    };
    let mut inputs = Inputs {
        events: live_events(api, reservation),
        actions: act_rx,
        last_line: String::new(),
        said: tokio::time::Instant::now(),
    };
    let mut ctx = Ctx {
        api,
        clock: &clock,
        plan,
        out,
    };
    let done = agent(&mut ctx, &mut inputs, o, &measured).await;
    ctx.out.update(|s| s.done = true);
    if let Some(ui) = ui {
        let _ = ui.join();
    }
    done
}

async fn agent(
    ctx: &mut Ctx<'_>,
    inputs: &mut Inputs,
    o: &Options,
    measured: &clock::Offset,
) -> Result<()> {
    let clock = ctx.clock;
    let plan = ctx.plan.clone();
    ctx.out.say(
        clock,
        &format!(
            "agent for reservation {} \"{}\" on {}: starts {:.0}, ends {:.0}; clock offset {:+.3} s (± {:.3} s)",
            plan.reservation,
            plan.title,
            plan.channel,
            plan.start,
            plan.end,
            measured.server_ahead_ms / 1000.0,
            measured.error_ms / 1000.0
        ),
    );
    let remind_at =
        plan.start - slotcast_domain::jiff::SignedDuration::from_mins(i64::from(o.remind_minutes));
    if clock.now() < remind_at {
        ctx.out
            .say(clock, &format!("waiting; a reminder at {remind_at:.0}"));
        if !inputs.until(remind_at, ctx).await {
            return Ok(());
        }
    }
    if clock.now() < plan.start {
        let text = format!("\"{}\" starts at {:.0}", plan.title, plan.start);
        ctx.out.say(clock, &format!("reminder: {text}"));
        let _ = Command::new("notify-send")
            .args(["slotcast", &text])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    // A file plays from the start; a live source connects when the window opens.
    let connect_at = match o.source {
        Source::File(_) => plan.start - slotcast_domain::jiff::SignedDuration::from_secs(2),
        _ => plan.connect_from,
    }
    .max(plan.connect_from);
    if clock.now() < connect_at {
        ctx.out
            .say(clock, &format!("connecting at {connect_at:.0}"));
        if !inputs.until(connect_at, ctx).await {
            return Ok(());
        }
    }
    let mut endpoint = 0usize;
    while clock.now() < ctx.plan.end {
        let base = plan.ingest[endpoint % plan.ingest.len()].clone();
        let url = format!("{}/{}", base.trim_end_matches('/'), plan.key);
        ctx.out.say(clock, &format!("connecting to {base}"));
        ctx.out.update(|s| s.endpoint.clone_from(&base));
        let mut child: Child = ffmpeg(&plan, &o.source, &o.effects, &url)
            .spawn()
            .map_err(|e| Error::Input(format!("cannot run ffmpeg: {e}")))?;
        let started = tokio::time::Instant::now();
        let outcome = loop {
            if clock.now() >= ctx.plan.end {
                break None;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                break Some((status, err));
            }
            if let Heard::Quit = inputs.listen(Duration::from_millis(250), ctx).await {
                break None;
            }
        };
        match outcome {
            None => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Some((status, err)) => {
                let why = err.lines().last().unwrap_or("").trim().to_owned();
                let sep = if why.is_empty() { "" } else { ": " };
                ctx.out
                    .say(clock, &format!("{base} dropped ({status}{sep}{why})"));
                // A connection that failed at once moves to the next endpoint; a drop after
                // a while tries the same one again first.
                if started.elapsed() < Duration::from_secs(10) {
                    endpoint += 1;
                }
                inputs.listen(Duration::from_secs(1), ctx).await;
            }
        }
    }
    ctx.out.say(clock, "the program has ended; the agent stops");
    Ok(())
}

/// The server's live events about the program (on air, viewers, bitrate, picture,
/// extension offers), reconnecting when the stream breaks.
fn live_events(api: &Api, reservation: i64) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(16);
    let api = api.clone();
    tokio::spawn(async move {
        loop {
            let Ok(mut stream) = api
                .events(&format!("/reservations/{reservation}/live"))
                .await
            else {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            };
            while let Some(e) = stream.next_event().await {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}
