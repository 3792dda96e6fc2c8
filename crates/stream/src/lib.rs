//! # slotcast-stream — the stream node
//!
//! This crate owns the I/O of slotcast's media server: the RTMP ingest socket and its
//! sessions ([`rtmp`]), one task per channel that decides what is on air and plays the
//! filler ([`channel`]), the HTTP delivery routes — HTTP-FLV, the fMP4 stream for MSE and
//! LL-HLS ([`http`]; live HTTP-FLV and fMP4 viewers, once admitted, are written by their
//! channel's pacer instead of an HTTP task each, [`direct`]) — the recording of programs
//! ([`record`]), the generation of test-card filler with ffmpeg ([`filler`]) and the
//! operators' filler uploads, re-encoded with ffmpeg into a channel's playlist
//! ([`workshop`]).
//!
//! Every media decision is made by the sans-IO machines of `slotcast-media` (hub,
//! fragmenter, packager, admission, filler player); this crate feeds them bytes, timers and
//! sockets. It talks to the center only through [`PublishAuthority`] (may this key publish
//! now?) and the play tokens of `slotcast_domain::token`, signed by the center and checked
//! here with its public key alone (without a database, once per viewer: then the viewer
//! plays in a [`session`]), and it answers the center through [`StreamNode`]'s queries
//! (viewers, live statistics, program totals, recordings, cut a cancelled program) and
//! its [`StreamNode::report`] with plain values only, so that a network can sit between
//! the two (role `stream` sends the report with every heartbeat). It owns its files
//! (recordings, filler) and serves the replays itself ([`vod`]). As an edge node it
//! relays programs placed on another node ([`relay`]), their LL-HLS mirrored from it
//! ([`mirror`]). Wall-clock decisions
//! (the booked window, a program's end) use the injected [`Clock`]; media timing uses
//! monotonic time. Refusals to viewers are [`PlayError`]s.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use slotcast_domain::{ChannelId, Clock, ProgramStats, ReservationId, Timestamp};

pub mod channel;
pub mod config;
pub mod direct;
mod director;
pub mod error;
pub mod filler;
pub mod http;
pub mod mirror;
pub mod record;
pub mod relay;
pub mod rtmp;
pub mod session;
pub mod vod;
pub mod workshop;

pub use config::StreamConfig;
pub use error::{PlayError, StreamError};
pub use relay::RelaySource;

use channel::Channel;

/// A channel as the stream node needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Its id.
    pub id: ChannelId,
    /// Its name (the path segment of its playback URLs).
    pub name: String,
    /// Viewers admitted at most.
    pub capacity: u32,
    /// The channel's nominal bitrate (kbit/s), announced to HLS players.
    pub bitrate_kbps: u32,
}

/// The center's yes to a publish: which program, on which channel, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The reservation the key belongs to.
    pub reservation: ReservationId,
    /// Its channel.
    pub channel: ChannelId,
    /// Viewers get the program from here …
    pub start: Timestamp,
    /// … to here, then the filler.
    pub end: Timestamp,
    /// The publisher is cut off here (end of the connect window).
    pub cut_at: Timestamp,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No reservation has this key.
    #[error("unknown reservation key")]
    UnknownKey,
    /// The reservation exists but may not publish now (state or window), with the reason.
    #[error("{0}")]
    NotNow(String),
    /// The center could not answer.
    #[error("the center is unavailable: {0}")]
    Unavailable(String),
}

/// The center's side of ingest: may this key publish now? On a yes the center has
/// recorded that the program went live.
#[async_trait]
pub trait PublishAuthority: Send + Sync + std::fmt::Debug {
    /// Decides for `key` at the center's clock.
    async fn authorize(&self, key: &str) -> Result<Grant, Refusal>;
}

/// What the broadcaster sees about a program while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveStats {
    /// Whether the publisher's media reaches viewers now.
    pub on_air: bool,
    /// Whether a publisher is connected (it may be before the start: preview only).
    pub publishing: bool,
    /// Viewers admitted on the channel.
    pub viewers: u32,
    /// Ingest bitrate over the last seconds.
    pub bitrate_kbps: u32,
    /// Picture width, when known.
    pub width: Option<u32>,
    /// Picture height, when known.
    pub height: Option<u32>,
    /// Video frames per second over the last seconds.
    pub fps: f32,
    /// Whether the recording is running, and why not when it stopped.
    pub recording: RecordingState,
}

/// What a node tells the center about itself ([`StreamNode::report`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReport {
    /// Viewers admitted per channel.
    pub viewers: Vec<(ChannelId, u32)>,
    /// Per channel, the grants of the viewers admitted (each holds a seat) and of those
    /// who left since the last report.
    pub seats: Vec<(ChannelId, Vec<u64>, Vec<u64>)>,
    /// Live statistics per program held by a channel, with the channel.
    pub live: Vec<(ReservationId, ChannelId, LiveStats)>,
    /// Totals of ended programs, until the center acknowledges them.
    pub finished: Vec<(ReservationId, ProgramStats)>,
    /// Finished recordings and their sizes, newest first.
    pub recordings: Vec<(ReservationId, u64)>,
}

/// The state of a program's recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum RecordingState {
    /// Not started (the program is not on air yet).
    #[default]
    Idle,
    /// Writing.
    Recording,
    /// Complete.
    Done,
    /// Stopped by an error (disk full, …); the stream went on.
    Failed(String),
}

/// Failed publish keys per address, in fixed windows, bounded in memory.
#[derive(Debug)]
struct KeyFailures {
    limit: u32,
    window: Duration,
    entries: HashMap<IpAddr, (u32, Instant)>,
}

impl KeyFailures {
    const MAX_ADDRESSES: usize = 65_536;

    fn blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.entries.get(&ip) {
            Some(&(n, since)) if now.duration_since(since) < self.window => n >= self.limit,
            Some(_) => {
                self.entries.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn fail(&mut self, ip: IpAddr, now: Instant) {
        if self.entries.len() >= Self::MAX_ADDRESSES {
            let window = self.window;
            self.entries
                .retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let e = self.entries.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= self.window {
            *e = (0, now);
        }
        e.0 += 1;
    }
}

/// The stream node: channels, ingest, delivery. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct StreamNode {
    config: StreamConfig,
    clock: Arc<dyn Clock>,
    authority: Arc<dyn PublishAuthority>,
    /// The center's public key: play tokens are checked with it (the node cannot make one).
    token_key: slotcast_domain::token::VerifyingKey,
    channels: RwLock<HashMap<ChannelId, Arc<Channel>>>,
    /// Program totals measured at the end of each program, until the center acknowledges them.
    finished: Mutex<BTreeMap<ReservationId, ProgramStats>>,
    key_failures: Mutex<KeyFailures>,
    sessions: Mutex<session::Sessions>,
    /// Filler uploads being re-encoded, and the last ones done.
    jobs: Mutex<workshop::Jobs>,
    /// Programs pulled from their origin (on an edge node).
    relays: Mutex<relay::Relays>,
    /// This process's secret for the LL-HLS media access keys (see [`http`]).
    media_key: [u8; 32],
    /// Set while the node's lease has run out ([`StreamNode::fence`]).
    fenced: std::sync::atomic::AtomicBool,
}

impl StreamNode {
    /// A node with no channels yet (see [`StreamNode::set_channels`]).
    pub fn new(
        config: StreamConfig,
        clock: Arc<dyn Clock>,
        authority: Arc<dyn PublishAuthority>,
        token_key: slotcast_domain::token::VerifyingKey,
    ) -> Arc<StreamNode> {
        Arc::new(StreamNode {
            key_failures: Mutex::new(KeyFailures {
                limit: config.max_key_failures,
                window: config.key_failure_window,
                entries: HashMap::new(),
            }),
            config,
            clock,
            authority,
            token_key,
            channels: RwLock::new(HashMap::new()),
            finished: Mutex::new(BTreeMap::new()),
            sessions: Mutex::new(session::Sessions::default()),
            jobs: Mutex::new(workshop::Jobs::default()),
            relays: Mutex::default(),
            fenced: Default::default(),
            media_key: {
                use rand::Rng as _;
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            },
        })
    }

    /// The settings.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Creates the channels it does not have yet (loading their filler) and updates the
    /// others (capacity, name). Must be called inside a tokio runtime.
    pub fn set_channels(self: &Arc<Self>, list: Vec<ChannelInfo>) {
        let mut channels = self.channels.write().expect("channels lock");
        for info in list {
            match channels.get(&info.id) {
                Some(ch) => ch.update(info),
                None => {
                    let ch = Channel::start(self.clone(), info.clone());
                    channels.insert(info.id, ch);
                }
            }
        }
    }

    fn channel(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels
            .read()
            .expect("channels lock")
            .get(&id)
            .cloned()
    }

    fn all_channels(&self) -> Vec<Arc<Channel>> {
        self.channels
            .read()
            .expect("channels lock")
            .values()
            .cloned()
            .collect()
    }

    /// Reloads every channel's filler playlist and slate from disk (after
    /// `slotcastd filler generate` or an operator's change).
    pub fn reload_filler(&self) {
        for c in self.all_channels() {
            c.reload_filler();
        }
    }

    /// Viewers admitted on a channel now.
    pub fn viewers(&self, channel: ChannelId) -> u32 {
        self.channel(channel).map_or(0, |c| c.viewers())
    }

    /// Everything the center asks about, at once: viewers of every channel, live
    /// statistics of every program the channels hold, the totals of ended programs not yet
    /// acknowledged and the newest finished recordings (at most `recordings`). A node that
    /// is not in the center's process sends this with each lease renewal.
    pub fn report(&self, recordings: usize) -> NodeReport {
        let mut report = NodeReport::default();
        let channels: Vec<(ChannelId, Arc<Channel>)> = self
            .channels
            .read()
            .expect("channels lock")
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect();
        for (id, c) in channels {
            report.viewers.push((id, c.viewers()));
            let (admitted, left) = c.seats();
            report.seats.push((id, admitted, left));
            for r in c.programs() {
                if let Some(s) = c.live_stats(r) {
                    report.live.push((r, id, s));
                }
            }
        }
        report.finished = self
            .finished
            .lock()
            .expect("finished lock")
            .iter()
            .map(|(r, s)| (*r, s.clone()))
            .collect();
        report.recordings = self.newest_recordings(recordings);
        report
    }

    /// The newest finished recordings and their sizes.
    fn newest_recordings(&self, most: usize) -> Vec<(ReservationId, u64)> {
        let Ok(dir) = std::fs::read_dir(&self.config.recordings_dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, ReservationId, u64)> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let id = name.to_str()?.strip_suffix(".mp4")?.parse::<i64>().ok()?;
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, ReservationId(id), meta.len()))
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        // A file still being written is not a recording yet.
        let recording: Vec<ReservationId> = self
            .all_channels()
            .iter()
            .flat_map(|c| c.programs().into_iter().filter(|r| c.recording(*r)))
            .collect();
        found
            .into_iter()
            .filter(|(_, r, _)| !recording.contains(r))
            .take(most)
            .map(|(_, r, bytes)| (r, bytes))
            .collect()
    }

    /// Live statistics of a program, when it is (or was just) on a channel of this node.
    pub fn live(&self, reservation: ReservationId) -> Option<LiveStats> {
        self.all_channels()
            .iter()
            .find_map(|c| c.live_stats(reservation))
    }

    /// The totals of a program that ended; they stay until the center acknowledges them.
    pub fn program_stats(&self, reservation: ReservationId) -> Option<ProgramStats> {
        let finished = self.finished.lock().expect("finished lock");
        finished.get(&reservation).cloned()
    }

    /// The center stored a program's totals: forget them.
    pub fn ack_program_stats(&self, reservation: ReservationId) {
        self.finished
            .lock()
            .expect("finished lock")
            .remove(&reservation);
    }

    fn program_finished(&self, reservation: ReservationId, stats: ProgramStats) {
        let mut finished = self.finished.lock().expect("finished lock");
        if finished.len() >= 10_000 {
            // The center acknowledges totals within minutes; never grow without bound: the
            // oldest reservation's go first.
            finished.pop_first();
        }
        finished.insert(reservation, stats);
    }

    /// A reservation was cancelled (or otherwise lost its right to publish): its
    /// publisher is cut at once and viewers go back to the filler.
    pub fn revoke(&self, reservation: ReservationId) {
        for c in self.all_channels() {
            c.revoke(reservation);
        }
    }

    /// The node's lease ran out without a renewal: the center may have placed its channels
    /// on another node and freed its viewers' seats, so it must serve them no more. Every
    /// publisher is cut (a broadcaster's tool then goes on through its backup endpoint),
    /// every live viewer is closed, every play session ends, and nobody is admitted until
    /// [`StreamNode::unfence`].
    pub fn fence(&self) {
        self.fenced.store(true, std::sync::atomic::Ordering::SeqCst);
        self.sessions.lock().expect("sessions lock").clear();
        for c in self.all_channels() {
            for r in c.programs() {
                c.revoke(r);
            }
            c.live.wake.notify_waiters();
            c.live.nudge();
        }
    }

    /// The lease is renewed again: the node serves viewers of the channels placed on it.
    pub fn unfence(&self) {
        self.fenced
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    fn fenced(&self) -> bool {
        self.fenced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The clock was changed (tests with a manual clock): every channel recomputes its
    /// timers, and every live viewer its closing time.
    pub fn clock_changed(&self) {
        for c in self.all_channels() {
            c.tick();
            c.live.wake.notify_waiters();
        }
    }

    /// The size of the finished recording of `reservation`, if there is one (not while it
    /// is still being written).
    pub fn recording(&self, reservation: ReservationId) -> Option<u64> {
        let path = self.recording_file(reservation).ok()?;
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    /// The finished recording of `reservation`.
    fn recording_file(&self, reservation: ReservationId) -> Result<std::path::PathBuf, PlayError> {
        if self.all_channels().iter().any(|c| c.recording(reservation)) {
            return Err(PlayError::RecordingInProgress);
        }
        let path = self.config.recording_path(reservation);
        if path.is_file() {
            Ok(path)
        } else {
            Err(PlayError::NotFound("recording"))
        }
    }

    fn mint_session(
        &self,
        claims: slotcast_domain::token::PlayClaims,
        idle: Duration,
    ) -> Result<String, PlayError> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .mint(claims, idle, Instant::now())
            .ok_or(PlayError::Busy)
    }

    fn session(&self, id: &str) -> Result<session::Session, PlayError> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .touch(id, Instant::now())
            .map(|s| s.clone())
            .ok_or(PlayError::SessionExpired)
    }

    fn saw_program(&self, id: &str) {
        if let Some(s) = self
            .sessions
            .lock()
            .expect("sessions lock")
            .touch(id, Instant::now())
        {
            s.seen_program = true;
        }
    }

    fn end_session(&self, id: &str) {
        self.sessions.lock().expect("sessions lock").end(id);
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The monotonic instant at which wall-clock `at` will be reached by the node's clock.
    fn instant_of(&self, at: Timestamp) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let delta = at.duration_since(self.now());
        match Duration::try_from(delta) {
            Ok(d) => now + d.min(Duration::from_secs(86_400 * 365)),
            Err(_) => now,
        }
    }
}
