//! One channel at run time: its hub, admission, LL-HLS packager and recorder behind one
//! lock, the feeds its connection-based viewers read, and the director task that decides
//! what is on air.
//!
//! Each tag that reaches viewers is encoded once per channel — an FLV tag, a per-frame
//! fMP4 fragment — into the [`Output`] feeds; viewers read them through cursors under a
//! read lock of their own, never the channel's lock. A feed is encoded only while it has
//! a [`Reader`] (see [`Lane`]): an idle channel, or a preview nobody watches, encodes
//! nothing. Likewise the LL-HLS packager takes media only while someone requested its
//! playlists or parts lately ([`Channel::want_hls`]), and while none of these (nor the
//! broadcaster's preview) has anyone, the publisher's connection is read in naps
//! ([`Interest`]). One pacer task per channel wakes
//! readers at most once per [`write_interval`](crate::StreamConfig::write_interval), so
//! each viewer gets what arrived meanwhile in one write.
//!
//! The director owns the booked window: before the start a publisher's media reaches
//! only the broadcaster's preview; from the start to the end viewers get the program (or
//! the "be right back" slate while the publisher is away); at the end they get the filler
//! again; at the end of the connect window the publisher is cut. It sleeps until the next
//! of these instants or the next filler tag — timers, not polling — and wakes early for
//! control messages (publisher connected or gone, reservation revoked, clock changed, the
//! first viewer came). While the channel has no viewer the filler and the slate pause.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use slotcast_domain::{CurveBuilder, ProgramStats, ReservationId};
use slotcast_media::Full;
use slotcast_media::admission::{Admission, Admitted};
use slotcast_media::feed::{Encoding, Feed, FeedConfig, Lane, SHARED};
use slotcast_media::filler::FillerPlayer;
use slotcast_media::flv::{FlvError, Tag, parse_flv};
use slotcast_media::hls::{Lookup, Packager, PackagerConfig};
use slotcast_media::hub::{Hub, HubConfig, HubEvent, ViewerId};
use tokio::sync::{Notify, mpsc, watch};

use crate::direct::DirectViewer;
use crate::director::{self, ProgramState, Source, Step};
use crate::error::StreamError;
use crate::record::Recorder;
use crate::{ChannelInfo, Grant, LiveStats, RecordingState, StreamNode};

/// Ingest rate over a sliding second.
#[derive(Debug, Default)]
struct Meter {
    since: Option<Instant>,
    bytes: u64,
    frames: u32,
    bitrate_kbps: u32,
    fps: f32,
}

impl Meter {
    fn add(&mut self, tag: &Tag, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.bytes += tag.data.len() as u64;
        if tag.kind == slotcast_media::TagKind::Video {
            self.frames += 1;
        }
        let span = now.duration_since(since);
        if span >= Duration::from_secs(1) {
            let secs = span.as_secs_f64();
            self.bitrate_kbps = (self.bytes as f64 * 8.0 / 1000.0 / secs) as u32;
            self.fps = (f64::from(self.frames) / secs) as f32;
            *self = Meter {
                since: Some(now),
                bitrate_kbps: self.bitrate_kbps,
                fps: self.fps,
                ..Meter::default()
            };
        }
    }
}

/// Totals of the program on air, measured between its start and its end. Viewer time
/// is what the admission counter records of each seat (taken, last seen) within the
/// program's window; the peak and the time on air are sampled at every change.
#[derive(Debug)]
struct Tally {
    peak: usize,
    sessions: HashSet<u64>,
    viewer_ms: u128,
    started: Instant,
    last_sample: Instant,
    bytes_at_start: u64,
    on_air_ms: u128,
    curve: CurveBuilder,
}

const MAX_TALLIED_SESSIONS: usize = 1 << 20;

impl Tally {
    /// Starts with the viewers already `watching` (they came before the start).
    fn new(now: Instant, bytes_out: u64, watching: impl Iterator<Item = u64>) -> Tally {
        Tally {
            peak: 0,
            sessions: watching.take(MAX_TALLIED_SESSIONS).collect(),
            viewer_ms: 0,
            started: now,
            last_sample: now,
            bytes_at_start: bytes_out,
            on_air_ms: 0,
            curve: CurveBuilder::default(),
        }
    }

    /// Milliseconds from the start to `now`.
    fn since_start(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// Accounts the time since the last sample at the air state it had, and the peak.
    fn sample(&mut self, now: Instant, viewers: usize, on_air: bool) {
        let dt = now.saturating_duration_since(self.last_sample).as_millis();
        if on_air {
            self.on_air_ms += dt;
        }
        self.last_sample = now;
        self.peak = self.peak.max(viewers);
        let at = self.since_start(now);
        self.curve
            .record(at, u32::try_from(viewers).unwrap_or(u32::MAX));
    }

    fn admitted(&mut self, session: u64) {
        if self.sessions.len() < MAX_TALLIED_SESSIONS {
            self.sessions.insert(session);
        }
    }

    /// A seat taken at `from` and last seen at `to` ended: its time within the program.
    fn watched(&mut self, from: Instant, to: Instant) {
        self.viewer_ms += to
            .saturating_duration_since(from.max(self.started))
            .as_millis();
    }

    /// The totals at `now`, with the seats still held (`taken` instants) watching until
    /// now.
    fn finish(
        mut self,
        now: Instant,
        taken: impl Iterator<Item = Instant>,
        bytes_out: u64,
    ) -> ProgramStats {
        for from in taken {
            self.watched(from, now);
        }
        let end = self.since_start(now);
        ProgramStats {
            curve: self.curve.finish(end),
            peak_viewers: self.peak as u32,
            unique_viewers: self.sessions.len() as u32,
            viewer_minutes: (self.viewer_ms / 60_000) as u64,
            bytes_out: bytes_out.saturating_sub(self.bytes_at_start),
            seconds_on_air: (self.on_air_ms / 1000) as u64,
        }
    }
}

/// What connection-based viewers of a channel (or of a broadcaster's preview) read: the
/// media encoded once as HTTP-FLV and as the fMP4 stream.
#[derive(Debug)]
pub(crate) struct Output {
    flv: RwLock<Feed>,
    mp4: RwLock<Feed>,
    /// The [`Reader`]s of `flv` and `mp4`.
    readers: [AtomicUsize; 2],
    /// Woken when there is something new to read, or when the output closes.
    pub(crate) wake: Notify,
    /// Told of new data; the pacer wakes readers at most once per `interval`.
    pending: Notify,
    interval: Duration,
    closed: AtomicBool,
    /// Live viewers the pacer writes itself (see [`crate::direct`]).
    direct: Mutex<Vec<DirectViewer>>,
}

impl Output {
    /// A new output whose readers are woken at most every `interval` (by a task that
    /// ends when the output closes).
    fn new(interval: Duration) -> Arc<Output> {
        let out = Arc::new(Output {
            flv: RwLock::new(Feed::new(FeedConfig::default())),
            mp4: RwLock::new(Feed::new(FeedConfig::default())),
            readers: Default::default(),
            wake: Notify::new(),
            pending: Notify::new(),
            interval,
            closed: AtomicBool::new(false),
            direct: Mutex::new(Vec::new()),
        });
        if !interval.is_zero() {
            tokio::spawn(pace(out.clone()));
        }
        out
    }

    fn feed(&self, encoding: Encoding) -> &RwLock<Feed> {
        match encoding {
            Encoding::Flv => &self.flv,
            Encoding::Mp4 => &self.mp4,
        }
    }

    fn readers(&self, encoding: Encoding) -> &AtomicUsize {
        &self.readers[usize::from(encoding == Encoding::Mp4)]
    }

    fn has_readers(&self) -> bool {
        self.readers.iter().any(|r| r.load(Ordering::Acquire) > 0)
    }

    /// Encodes what `hub` queued for those of its feeds that have readers (and starts or
    /// stops their `lanes` by that), then wakes the readers if a frame came.
    fn fill(&self, lanes: &mut [Lane; 2], hub: &mut Hub) {
        let mut wake = false;
        for lane in lanes {
            let wanted = self.readers(lane.encoding()).load(Ordering::Acquire) > 0;
            if wanted || lane.is_running() {
                let mut feed = self.feed(lane.encoding()).write().expect("feed lock");
                lane.set_wanted(wanted, hub, &mut feed);
                wake |= lane.drain(hub, &mut feed);
            }
        }
        if wake {
            self.ready();
        }
    }

    /// Before the label of the feeds changes: see [`Lane::flush`].
    fn relabel(&self, lanes: &mut [Lane; 2], label: u64) {
        for lane in lanes {
            let mut feed = self.feed(lane.encoding()).write().expect("feed lock");
            lane.flush(&mut feed);
            feed.set_label(label);
        }
    }

    /// There is something new for readers.
    fn ready(&self) {
        if self.interval.is_zero() {
            self.wake.notify_waiters();
        } else {
            self.pending.notify_one();
        }
    }

    /// Whether a pacer wakes the readers (and can write viewers itself).
    pub(crate) fn paced(&self) -> bool {
        !self.interval.is_zero()
    }

    /// Adds a viewer for the pacer to write, at once.
    pub(crate) fn join(&self, viewer: DirectViewer) {
        self.direct.lock().expect("direct lock").push(viewer);
        self.pending.notify_one();
    }

    /// Has the pacer look at its viewers now (the node was fenced).
    pub(crate) fn nudge(&self) {
        self.pending.notify_one();
    }

    /// Writes the pacer's viewers, closing those that are done; when it must look at
    /// them again even if nothing new comes.
    fn write_direct(&self, scratch: &mut BytesMut) -> Option<tokio::time::Instant> {
        let mut direct = self.direct.lock().expect("direct lock");
        let now = Instant::now();
        direct.retain_mut(|v| v.write(scratch, now));
        direct.iter().map(DirectViewer::wake_at).min()
    }

    /// Whether nothing more will come (the preview's program ended).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_waiters();
        self.pending.notify_one();
    }
}

/// The lanes that fill an [`Output`]'s feeds, stopped.
fn lanes() -> [Lane; 2] {
    [Lane::new(Encoding::Flv), Lane::new(Encoding::Mp4)]
}

/// One reader of one feed of an [`Output`], counted while it lives: the feed is encoded
/// only while it has readers.
#[derive(Debug)]
pub(crate) struct Reader {
    pub(crate) out: Arc<Output>,
    encoding: Encoding,
}

impl Reader {
    /// Counts a reader of `out`'s `encoding` feed; the channel then starts its lane
    /// ([`Output::fill`]) before the reader reads.
    fn new(out: Arc<Output>, encoding: Encoding) -> Reader {
        out.readers(encoding).fetch_add(1, Ordering::AcqRel);
        Reader { out, encoding }
    }

    pub(crate) fn feed(&self) -> &RwLock<Feed> {
        self.out.feed(self.encoding)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The lane stops at the next tag the channel encodes.
        self.out
            .readers(self.encoding)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// Wakes the readers of `out` when it has something new, at most once per interval,
/// until it closes.
async fn pace(out: Arc<Output>) {
    let mut last = tokio::time::Instant::now();
    let mut scratch = BytesMut::new();
    let mut look_at = None;
    while !out.is_closed() {
        match look_at {
            Some(at) => tokio::select! {
                () = out.pending.notified() => {}
                () = tokio::time::sleep_until(at) => {}
            },
            None => out.pending.notified().await,
        }
        tokio::time::sleep_until(last + out.interval).await;
        out.wake.notify_waiters();
        look_at = out.write_direct(&mut scratch);
        last = tokio::time::Instant::now();
    }
    out.direct.lock().expect("direct lock").clear();
}

/// Whether anyone receives now what a publisher sends: the program's viewers (over
/// any protocol, relays to other nodes included) while it is on air, the broadcaster's
/// preview at any time. The channel keeps it with every tag and when a viewer comes; the
/// publisher's connection reads it: while nobody receives the media, it reads in naps
/// instead of at every packet (see [`crate::rtmp`]). The recording does not count: it
/// takes the media a nap later just as well.
#[derive(Debug)]
pub(crate) struct Interest {
    watched: AtomicBool,
    /// The task of the connection while it naps.
    napper: Mutex<Option<Waker>>,
}

impl Default for Interest {
    fn default() -> Interest {
        Interest {
            watched: AtomicBool::new(true),
            napper: Mutex::new(None),
        }
    }
}

impl Interest {
    pub(crate) fn watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }

    /// Whether anyone receives the media now; the napping connection wakes when someone
    /// starts to.
    pub(crate) fn set(&self, watched: bool) {
        if watched != self.watched.swap(watched, Ordering::AcqRel)
            && watched
            && let Some(w) = self.napper.lock().expect("napper lock").take()
        {
            w.wake();
        }
    }

    /// Wakes `waker` when someone starts to watch; whether someone already does.
    pub(crate) fn wake_on_watch(&self, waker: &Waker) -> bool {
        *self.napper.lock().expect("napper lock") = Some(waker.clone());
        self.watched()
    }
}

/// The publisher of the current program.
#[derive(Debug)]
struct Publisher {
    session: u64,
    /// Dropping or sending on it cuts the RTMP session.
    cut: watch::Sender<Option<String>>,
    interest: Arc<Interest>,
}

/// The program whose grant the channel holds: from the first publish to the cut.
#[derive(Debug)]
struct Program {
    grant: Grant,
    publisher: Option<Publisher>,
    /// The broadcaster's preview: every tag of the publisher, whatever the time, through
    /// a hub (for switches between publisher sessions) into an FLV and an fMP4 feed.
    preview: Hub,
    preview_lanes: [Lane; 2],
    preview_out: Arc<Output>,
    meter: Meter,
    dimensions: Option<(u32, u32)>,
    tally: Option<Tally>,
    recorder: Option<Recorder>,
    recording: RecordingState,
    /// Whether this node records it (its origin does; an edge that relays it does not).
    record: bool,
    begun: bool,
    ended: bool,
    /// The publisher's latest metadata and sequence headers: the hub gets them again when
    /// it switches to this publisher (they were sent while the filler was on).
    headers: [Option<Tag>; 3],
}

/// Which of [`Program::headers`] a tag replaces, if it is a header.
fn header_slot(tag: &Tag) -> Option<usize> {
    use slotcast_media::flv::{audio_info, is_metadata, video_info};
    match tag.kind {
        slotcast_media::TagKind::Script => is_metadata(&tag.data).then_some(0),
        slotcast_media::TagKind::Video => video_info(&tag.data)
            .is_ok_and(|i| i.is_sequence_header())
            .then_some(1),
        slotcast_media::TagKind::Audio => audio_info(&tag.data)
            .is_ok_and(|i| i.is_sequence_header())
            .then_some(2),
    }
}

/// The mutable state of a channel, behind one lock.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) hub: Hub,
    pub(crate) admission: Admission,
    /// Grants whose seat ended since the last report (bounded).
    left: Vec<u64>,
    pub(crate) hls: Packager,
    /// The packager's hub viewer while someone plays LL-HLS (see [`Channel::want_hls`]).
    hls_viewer: Option<ViewerId>,
    /// Until when the packager takes media without another request.
    hls_until: Instant,
    /// How long it does after a request.
    hls_keep: Duration,
    /// What fills `live` while it has readers.
    live_lanes: [Lane; 2],
    live: Arc<Output>,
    source: Source,
    /// What the current source shows: [`SHARED`] (filler) or a program's label (its
    /// publisher, or the slate in its window).
    label: u64,
    /// Programs holding a grant: the one on air, the one that just ended (its publisher
    /// may stay until the cut) and the next one (previewing before its start).
    programs: Vec<Program>,
}

impl Program {
    fn state(&self) -> ProgramState {
        ProgramState {
            reservation: self.grant.reservation,
            start: self.grant.start,
            end: self.grant.end,
            cut_at: self.grant.cut_at,
            publisher: self.publisher.as_ref().map(|p| p.session),
            begun: self.begun,
            ended: self.ended,
        }
    }
}

impl Core {
    /// Whether anyone receives what is on air (HTTP-FLV, fMP4, LL-HLS).
    fn watched(&self) -> bool {
        self.hls_viewer.is_some() || self.live.has_readers()
    }

    /// Someone came to watch what is on air: its publisher reads at once.
    fn rouse(&self) {
        let Source::Publisher(session) = self.source else {
            return;
        };
        if let Some(x) = self
            .programs
            .iter()
            .filter_map(|p| p.publisher.as_ref())
            .find(|x| x.session == session)
        {
            x.interest.set(true);
        }
    }

    fn program(&mut self, id: ReservationId) -> Option<&mut Program> {
        self.programs.iter_mut().find(|p| p.grant.reservation == id)
    }

    fn take_program(&mut self, id: ReservationId) -> Option<Program> {
        let i = self
            .programs
            .iter()
            .position(|p| p.grant.reservation == id)?;
        Some(self.programs.remove(i))
    }

    /// Brings the running tallies up to `now`: the seats that ended meanwhile, the time on
    /// air and the peak.
    fn tally(&mut self, now: Instant) {
        let viewers = self.admission.len();
        let on_air = matches!(self.source, Source::Publisher(_));
        while let Some(seat) = self.admission.poll_ended() {
            if self.left.len() < 100_000 {
                self.left.push(seat.session);
            }
            for t in self.programs.iter_mut().filter_map(|p| p.tally.as_mut()) {
                t.watched(seat.admitted_at, seat.last_seen);
            }
        }
        for t in self.programs.iter_mut().filter_map(|p| p.tally.as_mut()) {
            t.sample(now, viewers, on_air);
        }
    }

    /// `session` was admitted at `now`: a viewer of the running programs.
    fn admitted(&mut self, session: u64, now: Instant) {
        for t in self.programs.iter_mut().filter_map(|p| p.tally.as_mut()) {
            t.admitted(session);
        }
        self.tally(now);
    }

    /// The totals of `tally` at `now`.
    fn totals(&self, tally: Tally, now: Instant, bytes_out: u64) -> ProgramStats {
        tally.finish(now, self.admission.seats().map(|(_, at)| at), bytes_out)
    }
}

impl Core {
    /// Feeds one tag of the current source to the hub and what drains it synchronously
    /// (the live feeds, the LL-HLS packager and the recorder). Returns whether the
    /// packager has something new (LL-HLS requests waiting on [`Channel::data`]).
    #[must_use]
    fn push(&mut self, tag: Tag) -> bool {
        let hls_version = self.hls.version();
        self.hub.handle_tag(tag);
        self.drain_hls();
        self.live.fill(&mut self.live_lanes, &mut self.hub);
        let hub = &mut self.hub;
        for p in &mut self.programs {
            if let Some(rec) = p.recorder.as_mut() {
                rec.drain(hub);
            }
        }
        while let Some(event) = self.hub.poll_event() {
            if let HubEvent::ViewerDropped { id, reason } = event {
                tracing::info!(viewer = %id, ?reason, "viewer dropped");
                metrics::counter!("slotcast_stream_viewers_dropped_total").increment(1);
            }
        }
        if self.hls.version() != hls_version && self.hls_until < Instant::now() {
            self.stop_hls();
        }
        self.hls.version() != hls_version
    }

    /// Hands the packager what the hub queued for it, if it takes media.
    fn drain_hls(&mut self) {
        if let Some(viewer) = self.hls_viewer {
            while let Some(t) = self.hub.poll_viewer(viewer) {
                self.hls.handle_tag(&t);
            }
        }
    }

    /// Nobody played LL-HLS for a while: no more parts until someone does.
    fn stop_hls(&mut self) {
        if let Some(viewer) = self.hls_viewer.take() {
            self.hub.remove_viewer(viewer);
            self.hls.pause();
            tracing::debug!("LL-HLS packaging paused: no request");
        }
    }

    /// Switches to source `to`, which shows `label`. What the encoders hold back of the
    /// old source goes out under the old label first, so that no viewer of one program
    /// gets a frame of another.
    fn switch(&mut self, to: Source, label: u64) {
        if self.source != to {
            tracing::debug!(from = ?self.source, ?to, label, "source switch");
            self.source = to;
            self.hub.handle_source_change();
            if self.watched() {
                self.rouse();
            }
        }
        if self.label != label {
            self.live.relabel(&mut self.live_lanes, label);
            self.hls.set_label(label);
            self.label = label;
        }
    }
}

/// Control messages to the director.
#[derive(Debug)]
pub(crate) enum Ctl {
    Tick,
    Revoke(ReservationId),
}

/// A seat held by a connection-based viewer (HTTP-FLV, fMP4); released on drop.
#[derive(Debug)]
pub(crate) struct Seat {
    channel: Arc<Channel>,
    session: u64,
}

impl Seat {
    /// Its channel.
    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut core = self.channel.core.lock().expect("channel lock");
        core.admission.disconnect(self.session, now);
        core.tally(now);
        self.channel.publish_viewers(&core);
    }
}

/// One channel. See the [module documentation](self).
#[derive(Debug)]
pub struct Channel {
    node: Weak<StreamNode>,
    info: RwLock<ChannelInfo>,
    pub(crate) core: Mutex<Core>,
    /// What HTTP-FLV and fMP4 viewers read.
    pub(crate) live: Arc<Output>,
    /// Woken whenever the LL-HLS packager has something new (requests wait for parts).
    pub(crate) data: Notify,
    ctl: mpsc::UnboundedSender<Ctl>,
    /// Bytes sent to viewers over every protocol.
    pub(crate) bytes_out: AtomicU64,
    /// `slotcast_channel_bytes_out_total` of this channel (looked up once per name).
    bytes_counter: RwLock<metrics::Counter>,
    filler: Mutex<FillerPlayer>,
    slate: Mutex<FillerPlayer>,
}

fn bytes_counter(channel: &str) -> metrics::Counter {
    metrics::counter!("slotcast_channel_bytes_out_total", "channel" => channel.to_string())
}

fn load_playlist(paths: Vec<std::path::PathBuf>) -> FillerPlayer {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| parse_flv(&b).map_err(|e: FlvError| e.to_string()))
        {
            Ok((_, tags)) => files.push(tags),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "filler file skipped"),
        }
    }
    FillerPlayer::new(files)
}

/// The filler playlist and the slate of channel `name`.
fn load_filler(config: &crate::StreamConfig, name: &str) -> (FillerPlayer, FillerPlayer) {
    let filler = load_playlist(flv_files(&config.filler_dir.join(name)));
    let slate = load_playlist(
        Some(config.slate_dir.join(format!("{name}.flv")))
            .filter(|p| p.exists())
            .into_iter()
            .collect(),
    );
    if filler.is_empty() {
        tracing::warn!(channel = %name, "no filler: viewers see nothing between programs (see `slotcastd filler generate`)");
    }
    (filler, slate)
}

/// The `.flv` files of `dir` in name order (a channel's filler playlist).
pub(crate) fn flv_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "flv"))
        .collect();
    paths.sort();
    paths
}

impl Channel {
    pub(crate) fn start(node: Arc<StreamNode>, info: ChannelInfo) -> Arc<Channel> {
        let hub = Hub::new(HubConfig::default());
        let live = Output::new(node.config.write_interval);
        let packager = Packager::new(PackagerConfig {
            part_ms: node.config.hls_part_ms,
            segment_ms: node.config.hls_segment_ms,
            ..PackagerConfig::default()
        });
        let (filler, slate) = load_filler(&node.config, &info.name);
        let counter = bytes_counter(&info.name);
        let (tx, rx) = mpsc::unbounded_channel();
        let ch = Arc::new(Channel {
            node: Arc::downgrade(&node),
            core: Mutex::new(Core {
                hub,
                admission: Admission::new(info.capacity as usize, node.config.hls_idle()),
                hls: packager,
                hls_viewer: None,
                hls_until: Instant::now(),
                hls_keep: node.config.hls_idle(),
                live_lanes: lanes(),
                live: live.clone(),
                source: Source::Nothing,
                label: SHARED,
                programs: Vec::new(),
                left: Vec::new(),
            }),
            info: RwLock::new(info),
            live,
            data: Notify::new(),
            ctl: tx,
            bytes_out: AtomicU64::new(0),
            bytes_counter: RwLock::new(counter),
            filler: Mutex::new(filler),
            slate: Mutex::new(slate),
        });
        tokio::spawn(direct(ch.clone(), rx));
        ch
    }

    pub(crate) fn id(&self) -> slotcast_domain::ChannelId {
        self.info.read().expect("info lock").id
    }

    pub(crate) fn name(&self) -> String {
        self.info.read().expect("info lock").name.clone()
    }

    /// The channel's nominal bitrate (kbit/s).
    pub(crate) fn bitrate_kbps(&self) -> u32 {
        self.info.read().expect("info lock").bitrate_kbps
    }

    pub(crate) fn update(&self, info: ChannelInfo) {
        let capacity = info.capacity as usize;
        if info.name != self.name() {
            *self.bytes_counter.write().expect("counter lock") = bytes_counter(&info.name);
        }
        *self.info.write().expect("info lock") = info;
        self.core
            .lock()
            .expect("channel lock")
            .admission
            .set_capacity(capacity);
    }

    pub(crate) fn reload_filler(&self) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let (filler, slate) = load_filler(&node.config, &self.name());
        *self.filler.lock().expect("filler") = filler;
        *self.slate.lock().expect("slate") = slate;
        // Whatever plays now starts again with the new files.
        self.core.lock().expect("channel lock").source = Source::Nothing;
        self.tick();
    }

    pub(crate) fn viewers(&self) -> u32 {
        self.core.lock().expect("channel lock").admission.len() as u32
    }

    pub(crate) fn tick(&self) {
        let _ = self.ctl.send(Ctl::Tick);
    }

    pub(crate) fn revoke(&self, reservation: ReservationId) {
        let _ = self.ctl.send(Ctl::Revoke(reservation));
    }

    /// A seat for a connection-based viewer of `session`, or `Full`.
    pub(crate) fn connect(self: &Arc<Self>, session: u64) -> Result<Seat, Full> {
        let now = Instant::now();
        let mut core = self.core.lock().expect("channel lock");
        core.tally(now);
        let first = core.admission.is_empty();
        core.admission.connect(session, now)?;
        core.admitted(session, now);
        self.publish_viewers(&core);
        if first {
            // The director paused the filler while nobody watched.
            self.tick();
        }
        Ok(Seat {
            channel: self.clone(),
            session,
        })
    }

    /// A request of an LL-HLS viewer: keeps or takes its seat.
    pub(crate) fn admit(&self, session: u64) -> Result<Admitted, Full> {
        let now = Instant::now();
        let mut core = self.core.lock().expect("channel lock");
        core.tally(now);
        let admitted = core.admission.admit(session, now)?;
        core.admitted(session, now);
        self.publish_viewers(&core);
        if admitted == Admitted::New {
            // The director sleeps until the next seat expiry (and pauses the filler while
            // nobody watches).
            self.tick();
        }
        Ok(admitted)
    }

    /// Whether the recording of `reservation` is being written here.
    pub(crate) fn recording(&self, reservation: ReservationId) -> bool {
        let core = self.core.lock().expect("channel lock");
        core.programs
            .iter()
            .any(|p| p.grant.reservation == reservation && p.recorder.is_some())
    }

    /// The LL-HLS variant: peak bandwidth (bit/s, from the ingest rate, with headroom) and
    /// codecs, as far as known.
    pub(crate) fn hls_variant(&self) -> (u64, Option<String>) {
        let core = self.core.lock().expect("channel lock");
        let kbps = core
            .programs
            .iter()
            .map(|p| p.meter.bitrate_kbps)
            .max()
            .unwrap_or(0)
            .max(self.info.read().expect("info lock").bitrate_kbps);
        (u64::from(kbps) * 1200, core.hls.fragmenter().codecs())
    }

    /// A reader of the channel's `encoding` feed, which starts at the hub's cached
    /// keyframe.
    pub(crate) fn read_live(&self, encoding: Encoding) -> Reader {
        let reader = Reader::new(self.live.clone(), encoding);
        let mut core = self.core.lock().expect("channel lock");
        core.rouse();
        let Core {
            live,
            live_lanes,
            hub,
            ..
        } = &mut *core;
        live.fill(live_lanes, hub);
        reader
    }

    /// A reader of the broadcaster's preview of `reservation` in `encoding`, if it is
    /// publishing here.
    pub(crate) fn read_preview(
        &self,
        reservation: ReservationId,
        encoding: Encoding,
    ) -> Option<Reader> {
        let mut core = self.core.lock().expect("channel lock");
        let p = core.program(reservation)?;
        let reader = Reader::new(p.preview_out.clone(), encoding);
        if let Some(x) = &p.publisher {
            x.interest.set(true);
        }
        p.preview_out.fill(&mut p.preview_lanes, &mut p.preview);
        Some(reader)
    }

    fn publish_viewers(&self, core: &Core) {
        metrics::gauge!("slotcast_channel_viewers", "channel" => self.name())
            .set(core.admission.len() as f64);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        self.bytes_counter
            .read()
            .expect("counter lock")
            .increment(bytes as u64);
    }

    /// The grants of the viewers admitted now, and of those who left since the last call.
    pub(crate) fn seats(&self) -> (Vec<u64>, Vec<u64>) {
        let mut core = self.core.lock().expect("channel lock");
        core.tally(Instant::now());
        let left = std::mem::take(&mut core.left);
        (core.admission.sessions().collect(), left)
    }

    /// The programs the channel holds now (on air, waiting for their start, or just ended).
    pub(crate) fn programs(&self) -> Vec<ReservationId> {
        let core = self.core.lock().expect("channel lock");
        core.programs.iter().map(|p| p.grant.reservation).collect()
    }

    pub(crate) fn live_stats(&self, reservation: ReservationId) -> Option<LiveStats> {
        let core = self.core.lock().expect("channel lock");
        let p = core
            .programs
            .iter()
            .find(|p| p.grant.reservation == reservation)?;
        Some(LiveStats {
            on_air: p
                .publisher
                .as_ref()
                .is_some_and(|x| core.source == Source::Publisher(x.session)),
            publishing: p.publisher.is_some(),
            viewers: core.admission.len() as u32,
            bitrate_kbps: p.meter.bitrate_kbps,
            width: p.dimensions.map(|d| d.0),
            height: p.dimensions.map(|d| d.1),
            fps: p.meter.fps,
            recording: p
                .recorder
                .as_ref()
                .map_or(p.recording.clone(), Recorder::state),
        })
    }

    /// A publisher with `grant` for this channel wants in (an RTMP publisher, or the
    /// relay of the program from its origin: then `record` is false, the origin records).
    /// Refused while another publisher of the same program is connected. The channel
    /// keeps `interest` (whether anyone receives its media) from then on.
    pub(crate) fn attach_publisher(
        &self,
        grant: &Grant,
        session: u64,
        cut: watch::Sender<Option<String>>,
        interest: Arc<Interest>,
        record: bool,
    ) -> Result<(), StreamError> {
        let mut core = self.core.lock().expect("channel lock");
        let publisher = Publisher {
            session,
            cut,
            interest,
        };
        match core.program(grant.reservation) {
            Some(p) if p.publisher.is_some() => {
                return Err(StreamError::AlreadyPublishing);
            }
            Some(p) => {
                p.grant = grant.clone();
                p.publisher = Some(publisher);
                p.preview.handle_source_change();
            }
            None => {
                core.programs.push(Program {
                    grant: grant.clone(),
                    publisher: Some(publisher),
                    preview: Hub::new(HubConfig::default()),
                    preview_lanes: lanes(),
                    // The broadcaster's own check: every frame at once.
                    preview_out: Output::new(Duration::ZERO),
                    meter: Meter::default(),
                    dimensions: None,
                    tally: None,
                    recorder: None,
                    recording: RecordingState::Idle,
                    record,
                    begun: false,
                    ended: false,
                    headers: Default::default(),
                });
            }
        }
        drop(core);
        self.tick();
        Ok(())
    }

    /// Someone plays the channel's LL-HLS: the packager takes media until nobody has for
    /// [`StreamConfig::hls_idle`](crate::StreamConfig::hls_idle). When it did not, it
    /// starts again from the hub's cached GOP (after a discontinuity), so that a first
    /// player gets parts at once: no part is made while nobody plays.
    pub(crate) fn want_hls(&self) {
        let mut core = self.core.lock().expect("channel lock");
        core.hls_until = Instant::now() + core.hls_keep;
        if core.hls_viewer.is_some() {
            return;
        }
        let version = core.hls.version();
        core.hls_viewer = Some(core.hub.add_viewer());
        core.rouse();
        core.drain_hls();
        if core.hls.version() != version {
            drop(core);
            self.data.notify_waiters();
        }
    }

    pub(crate) fn hls_part(&self, msn: u64, part: u32) -> Lookup {
        self.core.lock().expect("channel lock").hls.part(msn, part)
    }

    pub(crate) fn hls_segment(&self, msn: u64) -> Lookup {
        self.core.lock().expect("channel lock").hls.segment(msn)
    }

    /// The publisher `session` went away (closed, failed or cut).
    pub(crate) fn detach_publisher(&self, session: u64) {
        let mut core = self.core.lock().expect("channel lock");
        for p in &mut core.programs {
            if p.publisher.as_ref().is_some_and(|x| x.session == session) {
                p.publisher = None;
            }
        }
        drop(core);
        self.tick();
    }

    /// One tag from the publisher `session`.
    pub(crate) fn publisher_tag(&self, session: u64, tag: Tag) {
        let now = Instant::now();
        let mut core = self.core.lock().expect("channel lock");
        let on_air = core.source == Source::Publisher(session);
        let watched = on_air && core.watched();
        let Some(p) = core
            .programs
            .iter_mut()
            .find(|p| p.publisher.as_ref().is_some_and(|x| x.session == session))
        else {
            return;
        };
        if let Some(x) = &p.publisher {
            x.interest.set(watched || p.preview_out.has_readers());
        }
        p.meter.add(&tag, now);
        if let Some(slot) = header_slot(&tag) {
            p.headers[slot] = Some(tag.clone());
        }
        p.preview.handle_tag(tag.clone());
        p.preview_out.fill(&mut p.preview_lanes, &mut p.preview);
        while p.preview.poll_event().is_some() {}
        if let Some(d) = p.preview.video_dimensions() {
            p.dimensions = Some(d);
        }
        if on_air && core.push(tag) {
            drop(core);
            self.data.notify_waiters();
        }
    }

    fn finish_program(&self, core: &mut Core, mut p: Program) {
        p.preview_out.close();
        if let Some(mut rec) = p.recorder.take() {
            rec.finish(&mut core.hub);
        }
        if let (Some(t), Some(node)) = (p.tally.take(), self.node.upgrade()) {
            let stats = core.totals(t, Instant::now(), self.bytes_out.load(Ordering::Relaxed));
            tracing::info!(reservation = %p.grant.reservation, ?stats, "program ended");
            node.program_finished(p.grant.reservation, stats);
        }
        if let Some(publisher) = p.publisher.take() {
            let _ = publisher
                .cut
                .send(Some("the connect window closed".to_string()));
        }
    }
}

/// The director: one task per channel. See the [module documentation](self).
async fn direct(ch: Arc<Channel>, mut rx: mpsc::UnboundedReceiver<Ctl>) {
    loop {
        let Some(node) = ch.node.upgrade() else {
            return;
        };
        let next = step(&ch, &node);
        drop(node);
        let sleep = tokio::time::sleep_until(next);
        tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(Ctl::Tick) => {}
                Some(Ctl::Revoke(id)) => revoke(&ch, id),
            },
            () = sleep => {}
        }
    }
}

fn revoke(ch: &Channel, id: ReservationId) {
    let mut core = ch.core.lock().expect("channel lock");
    if let Some(mut p) = core.take_program(id) {
        if let Some(publisher) = p.publisher.take() {
            let _ = publisher
                .cut
                .send(Some("the reservation was cancelled".into()));
        }
        tracing::info!(reservation = %id, channel = %ch.name(), "program revoked: publisher cut");
        // A cancelled program keeps no totals.
        p.tally = None;
        ch.finish_program(&mut core, p);
    }
}

/// Applies the director's [`Plan`](director::Plan) at the node's clock; returns when to
/// wake next.
fn step(ch: &Arc<Channel>, node: &StreamNode) -> tokio::time::Instant {
    let now_wall = node.now();
    let now = Instant::now();
    let mut wake = tokio::time::Instant::now() + Duration::from_secs(3600);
    let mut core = ch.core.lock().expect("channel lock");
    if core.admission.expire(now) > 0 {
        ch.publish_viewers(&core);
    }
    if let Some(t) = core.admission.poll_timeout() {
        wake = wake.min(tokio::time::Instant::from_std(t));
    }
    // Account the time since the last sample before anything changes.
    core.tally(now);
    let states: Vec<ProgramState> = core.programs.iter().map(Program::state).collect();
    let slate = !ch.slate.lock().expect("slate").is_empty();
    let watched = !core.admission.is_empty();
    let plan = director::plan(now_wall, &states, slate, core.source, watched);
    if let Some(at) = plan.wake {
        wake = wake.min(node.instant_of(at));
    }
    let bytes_out = ch.bytes_out.load(Ordering::Relaxed);
    let mut start_recording = None;
    for step in plan.steps {
        match step {
            Step::Finish(id) => {
                if let Some(p) = core.take_program(id) {
                    ch.finish_program(&mut core, p);
                }
            }
            Step::End(id) => {
                // Account up to the end, then stop the recording and the tally.
                let Core { programs, hub, .. } = &mut *core;
                let Some(p) = programs.iter_mut().find(|p| p.grant.reservation == id) else {
                    continue;
                };
                p.ended = true;
                if let Some(mut rec) = p.recorder.take() {
                    rec.finish(hub);
                    p.recording = rec.state();
                }
                if let Some(t) = p.tally.take() {
                    let stats = core.totals(t, now, bytes_out);
                    node.program_finished(id, stats);
                }
            }
            Step::Begin(id) => {
                let watching: Vec<u64> = core.admission.sessions().collect();
                if let Some(p) = core.program(id) {
                    p.begun = true;
                    p.tally = Some(Tally::new(now, bytes_out, watching.into_iter()));
                    // After the switch below, so that it starts with the program's keyframe.
                    start_recording = Some(id);
                }
            }
        }
    }
    let want = plan.source;
    let before = core.source;
    let mut hls_changed = false;
    core.switch(want, plan.label);
    if before != want
        && let Source::Publisher(session) = want
    {
        let headers: Vec<Tag> = core
            .programs
            .iter()
            .filter(|p| p.publisher.as_ref().is_some_and(|x| x.session == session))
            .flat_map(|p| p.headers.iter().flatten().cloned())
            .collect();
        for tag in headers {
            hls_changed |= core.push(tag);
        }
    }
    if before != want {
        let mut filler = ch.filler.lock().expect("filler");
        let mut slate = ch.slate.lock().expect("slate");
        filler.stop();
        slate.stop();
        match want {
            Source::Filler => filler.start(now),
            Source::Slate => slate.start(now),
            _ => {}
        }
        metrics::gauge!("slotcast_channel_on_air", "channel" => ch.name())
            .set(f64::from(u8::from(matches!(want, Source::Publisher(_)))));
    }
    if let Some(id) = start_recording {
        let Core { programs, hub, .. } = &mut *core;
        if let Some(p) = programs
            .iter_mut()
            .find(|p| p.grant.reservation == id && p.record)
        {
            match Recorder::start(&node.config, id, hub) {
                Ok(rec) => {
                    p.recorder = Some(rec);
                    p.recording = RecordingState::Recording;
                }
                Err(e) => {
                    tracing::error!(reservation = %id, error = %e, "recording not started");
                    metrics::counter!("slotcast_recording_failures_total").increment(1);
                    p.recording = RecordingState::Failed(e.to_string());
                }
            }
        }
    }
    // Due filler or slate tags.
    for player in [&ch.filler, &ch.slate] {
        let mut player = player.lock().expect("player");
        while let Some(tag) = player.poll_tag(now) {
            hls_changed |= core.push(tag);
        }
        if let Some(t) = player.poll_timeout() {
            wake = wake.min(tokio::time::Instant::from_std(t));
        }
    }
    drop(core);
    if hls_changed {
        ch.data.notify_waiters();
    }
    wake
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use bytes::Bytes;
    use slotcast_domain::jiff::SignedDuration;
    use slotcast_domain::{ChannelId, Timestamp};
    use slotcast_media::TagKind;
    use slotcast_testkit::{ManualClock, TempDir};

    use super::*;
    use crate::{ChannelInfo, PublishAuthority, Refusal, StreamConfig};

    #[derive(Debug)]
    struct NoKeys;

    #[async_trait]
    impl PublishAuthority for NoKeys {
        async fn authorize(&self, _key: &str) -> Result<Grant, Refusal> {
            Err(Refusal::UnknownKey)
        }
    }

    #[tokio::test]
    async fn a_publisher_is_watched_only_while_someone_receives_its_media() {
        let dir = TempDir::new("interest");
        let start: Timestamp = "2026-11-21T12:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(start + SignedDuration::from_secs(1)));
        let key = slotcast_domain::token::SigningKey::from_bytes(&[9; 32]).verifying_key();
        let node = StreamNode::new(
            StreamConfig::under(dir.path()),
            clock,
            Arc::new(NoKeys),
            key,
        );
        node.set_channels(vec![ChannelInfo {
            id: ChannelId(1),
            name: "c".into(),
            capacity: 10,
            bitrate_kbps: 400,
        }]);
        let ch = node.channel(ChannelId(1)).unwrap();
        let grant = Grant {
            reservation: ReservationId(7),
            channel: ChannelId(1),
            start,
            end: start + SignedDuration::from_mins(10),
            cut_at: start + SignedDuration::from_mins(13),
        };
        let interest = Arc::new(Interest::default());
        let (cut, _cut_rx) = watch::channel(None);
        ch.attach_publisher(&grant, 1, cut, interest.clone(), true)
            .unwrap();
        while ch.core.lock().unwrap().source != Source::Publisher(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let tag = || Tag::new(TagKind::Audio, 0, Bytes::from_static(&[0xaf, 1, 0]));

        // On air, nobody watching (the recording does not count).
        ch.publisher_tag(1, tag());
        assert!(!interest.watched());
        // A viewer makes it watched at once, before the next tag; its leaving, at the next.
        let reader = ch.read_live(Encoding::Mp4);
        assert!(interest.watched());
        drop(reader);
        ch.publisher_tag(1, tag());
        assert!(!interest.watched());
        // So does the broadcaster's preview.
        let preview = ch.read_preview(ReservationId(7), Encoding::Flv).unwrap();
        assert!(interest.watched());
        ch.publisher_tag(1, tag());
        assert!(interest.watched());
        drop(preview);
        ch.publisher_tag(1, tag());
        assert!(!interest.watched());
        // And an LL-HLS player.
        ch.want_hls();
        assert!(interest.watched());
        ch.publisher_tag(1, tag());
        assert!(interest.watched());
    }
}
