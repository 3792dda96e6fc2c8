//! One channel's fan-out, sans-IO: tags in from the current source, tags out per viewer.
//!
//! The [`Hub`] keeps the latest sequence headers and metadata and a GOP cache (the tags
//! since the last keyframe), so a late joiner starts at the cached keyframe. Each viewer has
//! a bounded queue of shared [`Bytes`] bodies: when a tag would overflow a viewer's byte
//! budget the viewer is *lagging* — its queue is cleared and it is resynced at the next
//! keyframe, headers first; a viewer that keeps lagging is dropped. No queue grows without
//! bound, whatever the input: [`HubConfig::retained_bound`] caps the bytes the hub holds.
//!
//! Sources (the publisher, the filler, the "be right back" slate) follow one another on
//! one output timeline. After [`Hub::handle_source_change`] the new source's tags are held
//! back until its first keyframe; then every viewer gets the new sequence headers (the first
//! one marked [`Tag::discontinuity`]) and that keyframe, with timestamps rebased so each
//! viewer's timeline continues without going backwards.
//!
//! Time here is media time (tag timestamps); the hub never reads a clock. The I/O edge calls
//! [`Hub::handle_tag`] for each ingested tag, [`Hub::poll_viewer`] when a viewer's socket is
//! writable and [`Hub::poll_event`] to learn about dropped and resynced viewers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;

use crate::flv::{
    Tag, TagKind, VideoCodec, audio_info, avc_dimensions, is_metadata, strip_set_data_frame,
    video_info,
};

#[cfg(test)]
mod tests;

/// What one queued tag costs against a byte budget beyond its body: FLV framing plus the
/// queue entry itself, so that floods of tiny tags are bounded too.
pub const ENTRY_OVERHEAD: usize = 64;

fn cost(len: usize) -> usize {
    len + ENTRY_OVERHEAD
}

/// Limits and policies of a [`Hub`]. Byte figures count tag bodies plus
/// [`ENTRY_OVERHEAD`] per tag; bodies are shared between the GOP cache and all viewers, so
/// the memory actually used is far below the sum of the budgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Largest GOP the cache holds. A GOP that grows past it is dropped from the cache (the
    /// headers stay) and caching restarts at the next keyframe; late joiners wait for it.
    pub max_gop_bytes: usize,
    /// Byte budget of each viewer's queue. It should hold the headers plus a whole cached
    /// GOP, or late joiners wait for the next keyframe instead of starting from the cache.
    pub viewer_queue_bytes: usize,
    /// Largest sequence header or metadata tag kept; larger ones are discarded.
    pub max_header_bytes: usize,
    /// A viewer that lags this many times in a row is dropped; 0 never drops (always
    /// resyncs).
    pub max_lags: u32,
    /// Lags count as "in a row" when each follows the previous one within this much media
    /// time (milliseconds of the output timeline).
    pub lag_window_ms: u32,
    /// Gap (ms) between the last timestamp sent and the first tag of the next source, or
    /// across a timestamp jump within a source: about one frame.
    pub switch_gap_ms: u32,
    /// A timestamp step (either direction) larger than this, within one source, is treated
    /// as a reset of the source's clock and bridged with `switch_gap_ms`.
    pub max_timestamp_jump_ms: u32,
    /// A source that has sent this many milliseconds of audio and no video at all is treated
    /// as audio-only: it starts on an audio frame instead of waiting for a keyframe.
    pub audio_only_after_ms: u32,
    /// Events kept for [`Hub::poll_event`]; beyond it the oldest are discarded (and
    /// counted in [`HubStats::events_lost`]).
    pub max_events: usize,
}

impl Default for HubConfig {
    /// Sized for a 2 s GOP at up to 8 Mbit/s.
    fn default() -> Self {
        HubConfig {
            max_gop_bytes: 2 << 20,
            viewer_queue_bytes: 3 << 20,
            max_header_bytes: 64 << 10,
            max_lags: 3,
            lag_window_ms: 30_000,
            switch_gap_ms: 40,
            max_timestamp_jump_ms: 10_000,
            audio_only_after_ms: 1_000,
            max_events: 1024,
        }
    }
}

impl HubConfig {
    /// The most bytes (as counted for budgets) a hub with `viewers` viewers retains: current
    /// and pending headers, the GOP cache and every viewer queue at its budget.
    pub fn retained_bound(&self, viewers: usize) -> usize {
        6 * cost(self.max_header_bytes) + self.max_gop_bytes + viewers * self.viewer_queue_bytes
    }
}

/// Identifies a viewer of one hub. Never reused by that hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewerId(u64);

impl ViewerId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ViewerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "viewer#{}", self.0)
    }
}

/// Why the hub dropped a viewer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// It lagged `lags` times in a row (see [`HubConfig::max_lags`]).
    Lagging {
        /// Lags in the row that ended it.
        lags: u32,
    },
}

/// Something the I/O edge should know about, from [`Hub::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// A viewer fell behind, lost its backlog and has been restarted at a keyframe.
    ViewerResynced {
        /// The viewer.
        id: ViewerId,
    },
    /// A viewer was removed; the edge should close its connection.
    ViewerDropped {
        /// The viewer.
        id: ViewerId,
        /// Why.
        reason: DropReason,
    },
    /// A source's first keyframe (or, for an audio-only source, first audio frame) arrived
    /// and its tags now reach viewers.
    SourceLive {
        /// Whether it replaced an earlier source (viewers see a discontinuity).
        discontinuity: bool,
        /// Whether the source started without video.
        audio_only: bool,
    },
}

/// Counters for live statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Viewers now.
    pub viewers: usize,
    /// Most viewers at once.
    pub peak_viewers: usize,
    /// Tag body bytes handed out by [`Hub::poll_viewer`].
    pub bytes_out: u64,
    /// Tags handed out by [`Hub::poll_viewer`].
    pub tags_out: u64,
    /// Tags received by [`Hub::handle_tag`].
    pub tags_in: u64,
    /// Tags received and discarded: unreadable, oversized headers, or a new source's tags
    /// before its first keyframe.
    pub tags_discarded: u64,
    /// Video keyframes received (and used).
    pub keyframes: u64,
    /// Times a viewer lagged (its queue was cleared).
    pub lags: u64,
    /// Times a lagging viewer was resynced.
    pub resyncs: u64,
    /// Viewers dropped for lagging.
    pub viewers_dropped: u64,
    /// GOPs too large for the cache.
    pub gop_overflows: u64,
    /// Calls to [`Hub::handle_source_change`].
    pub source_changes: u64,
    /// Events discarded because nobody polled them.
    pub events_lost: u64,
}

/// A tag inside the hub: timestamp on the hub's output timeline.
#[derive(Clone, Debug)]
struct Item {
    kind: TagKind,
    ts: u64,
    data: Bytes,
    discontinuity: bool,
}

impl Item {
    fn cost(&self) -> usize {
        cost(self.data.len())
    }
}

#[derive(Clone, Debug, Default)]
struct Headers {
    metadata: Option<Bytes>,
    video: Option<Bytes>,
    audio: Option<Bytes>,
}

impl Headers {
    fn iter(&self) -> impl Iterator<Item = (TagKind, &Bytes)> {
        [
            (TagKind::Script, &self.metadata),
            (TagKind::Video, &self.video),
            (TagKind::Audio, &self.audio),
        ]
        .into_iter()
        .filter_map(|(kind, data)| data.as_ref().map(|d| (kind, d)))
    }

    fn cost(&self) -> usize {
        self.iter().map(|(_, d)| cost(d.len())).sum()
    }

    fn items(&self, ts: u64) -> impl Iterator<Item = Item> + '_ {
        self.iter().map(move |(kind, data)| Item {
            kind,
            ts,
            data: data.clone(),
            discontinuity: false,
        })
    }

    /// The headers `newer` has replace ours; the ones it lacks are kept.
    fn merge(&mut self, newer: Headers) {
        if newer.metadata.is_some() {
            self.metadata = newer.metadata;
        }
        if newer.video.is_some() {
            self.video = newer.video;
        }
        if newer.audio.is_some() {
            self.audio = newer.audio;
        }
    }

    fn slot(&mut self, class: Class) -> &mut Option<Bytes> {
        match class {
            Class::VideoHeader => &mut self.video,
            Class::AudioHeader => &mut self.audio,
            _ => &mut self.metadata,
        }
    }
}

/// What a tag means to the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    VideoHeader,
    AudioHeader,
    Metadata,
    /// A video keyframe: a sync point.
    Keyframe,
    /// Video that depends on earlier frames.
    VideoFrame,
    AudioFrame,
    /// Anything else that can be forwarded as is (cue points, command frames, …).
    Other,
    Invalid,
}

impl Class {
    fn is_header(self) -> bool {
        matches!(
            self,
            Class::VideoHeader | Class::AudioHeader | Class::Metadata
        )
    }
}

fn classify(tag: &Tag) -> Class {
    use crate::flv::VideoPacketType as V;
    match tag.kind {
        TagKind::Video => match video_info(&tag.data) {
            Err(_) => Class::Invalid,
            Ok(info) if info.is_sequence_header() => Class::VideoHeader,
            Ok(info) if info.is_keyframe() => Class::Keyframe,
            Ok(info) => match info.packet {
                V::Command | V::Metadata => Class::Other,
                _ => Class::VideoFrame,
            },
        },
        TagKind::Audio => match audio_info(&tag.data) {
            Err(_) => Class::Invalid,
            Ok(info) if info.is_sequence_header() => Class::AudioHeader,
            Ok(_) => Class::AudioFrame,
        },
        TagKind::Script if is_metadata(&tag.data) => Class::Metadata,
        TagKind::Script => Class::Other,
    }
}

/// The current source and how its timestamps map onto the output timeline.
#[derive(Clone, Debug, Default)]
struct Source {
    /// Whether its first sync point arrived (its tags reach viewers).
    live: bool,
    /// Whether it has sent any video (then it starts and resyncs on keyframes).
    has_video: bool,
    /// Whether a keyframe arrived since it went live (dependent frames wait for one).
    video_synced: bool,
    /// Its first audio timestamp while not yet live, to detect audio-only sources.
    first_audio: Option<u32>,
    /// Its last input timestamp and where that landed on the output timeline (before
    /// clamping): the next tag lands at `last_mapped + (ts - last_in)`.
    last_in: u32,
    last_mapped: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Join,
    Resync,
    Switch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Live,
    /// Waiting for the next sync point to receive the headers and that tag.
    Waiting(Wait),
}

#[derive(Debug)]
struct Viewer {
    queue: VecDeque<Item>,
    queued: usize,
    state: State,
    /// Output timestamp of its first tag; what it receives is rebased to start at 0.
    base: Option<u64>,
    lags: u32,
    last_lag: Option<u64>,
    /// Mark the next tag queued as a discontinuity.
    discontinuity_pending: bool,
}

impl Viewer {
    fn new() -> Viewer {
        Viewer {
            queue: VecDeque::new(),
            queued: 0,
            state: State::Waiting(Wait::Join),
            base: None,
            lags: 0,
            last_lag: None,
            discontinuity_pending: false,
        }
    }

    /// Queues `item`, which the caller has checked fits.
    fn push(&mut self, mut item: Item) {
        if self.discontinuity_pending {
            item.discontinuity = true;
            self.discontinuity_pending = false;
        }
        self.base.get_or_insert(item.ts);
        self.queued += item.cost();
        self.queue.push_back(item);
    }

    fn fits(&self, cost: usize, budget: usize) -> bool {
        self.queued + cost <= budget
    }
}

/// One channel's fan-out. See the [module documentation](self).
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    headers: Headers,
    /// Headers received while no source was live; they replace `headers` when one goes
    /// live. A source that sends no header of a kind keeps the latest one received.
    pending: Headers,
    gop: VecDeque<Item>,
    gop_bytes: usize,
    /// Whether `gop` holds everything since its first item, a keyframe.
    gop_valid: bool,
    source: Source,
    /// Whether some source went live before (the next one is a discontinuity).
    had_source: bool,
    last_out: Option<u64>,
    viewers: BTreeMap<ViewerId, Viewer>,
    next_viewer: u64,
    events: VecDeque<HubEvent>,
    stats: HubStats,
    dimensions: Option<(u32, u32)>,
}

impl Hub {
    /// An empty hub waiting for its first source.
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            config,
            headers: Headers::default(),
            pending: Headers::default(),
            gop: VecDeque::new(),
            gop_bytes: 0,
            gop_valid: false,
            source: Source::default(),
            had_source: false,
            last_out: None,
            viewers: BTreeMap::new(),
            next_viewer: 0,
            events: VecDeque::new(),
            stats: HubStats::default(),
            dimensions: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Whether the current source is live (its first keyframe arrived); `false` after
    /// [`Hub::handle_source_change`] until then.
    pub fn is_live(&self) -> bool {
        self.source.live
    }

    /// Width and height of the current AVC video, from its sequence header.
    pub fn video_dimensions(&self) -> Option<(u32, u32)> {
        self.dimensions
    }

    /// Counters for statistics.
    pub fn stats(&self) -> HubStats {
        HubStats {
            viewers: self.viewers.len(),
            ..self.stats
        }
    }

    /// Viewers now.
    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// Bytes (as budgets count them) held now: headers, GOP cache and viewer queues.
    pub fn retained_bytes(&self) -> usize {
        self.headers.cost()
            + self.pending.cost()
            + self.gop_bytes
            + self.viewers.values().map(|v| v.queued).sum::<usize>()
    }

    /// The next source's tags follow: hold them back until its first keyframe, then switch
    /// every viewer to it (new headers, discontinuity mark, continuous timestamps). Call it
    /// when the publisher connects or disconnects, or the filler starts or stops.
    pub fn handle_source_change(&mut self) {
        self.stats.source_changes += 1;
        self.source = Source::default();
        // Headers already pending (from a source that never went live) stay: the rule is
        // "the latest header of each kind", whichever source sent it.
        self.clear_gop();
    }

    /// One tag from the current source.
    pub fn handle_tag(&mut self, tag: Tag) {
        self.stats.tags_in += 1;
        let class = classify(&tag);
        let data = if class == Class::Metadata {
            strip_set_data_frame(&tag.data)
        } else {
            tag.data
        };
        if class == Class::Invalid
            || (class.is_header() && data.len() > self.config.max_header_bytes)
        {
            self.stats.tags_discarded += 1;
            return;
        }
        if !self.source.live && !self.before_live(class, tag.timestamp_ms, &data) {
            return;
        }
        // Header timestamps carry no timing (publishers often send 0 mid-stream), so they
        // take the current output time and leave the source's mapping alone.
        let ts = if class.is_header() {
            self.last_out.unwrap_or(0)
        } else {
            self.map_timestamp(tag.timestamp_ms)
        };
        let item = Item {
            kind: tag.kind,
            ts,
            data,
            discontinuity: false,
        };
        match class {
            Class::VideoHeader | Class::AudioHeader | Class::Metadata => {
                self.update_header(class, item.data.clone());
                self.deliver(item, false);
            }
            Class::Keyframe => {
                self.source.has_video = true;
                self.source.video_synced = true;
                self.stats.keyframes += 1;
                self.clear_gop();
                self.gop_valid = true;
                self.cache(&item);
                self.deliver(item, true);
            }
            Class::VideoFrame => {
                self.source.has_video = true;
                if !self.source.video_synced {
                    self.stats.tags_discarded += 1;
                    return;
                }
                self.cache(&item);
                self.deliver(item, false);
            }
            Class::AudioFrame if !self.source.has_video => {
                // Audio-only: every audio frame is a sync point and nothing is cached.
                self.deliver(item, true);
            }
            Class::AudioFrame | Class::Other => {
                self.cache(&item);
                self.deliver(item, false);
            }
            Class::Invalid => {}
        }
    }

    /// Handles a tag of a source that is not live yet; returns whether it makes the source
    /// live (and should then be processed as a live tag).
    fn before_live(&mut self, class: Class, ts: u32, data: &Bytes) -> bool {
        match class {
            Class::VideoHeader | Class::AudioHeader | Class::Metadata => {
                if class == Class::VideoHeader {
                    self.source.has_video = true;
                }
                *self.pending.slot(class) = Some(data.clone());
                false
            }
            Class::Keyframe => {
                self.go_live(ts, false);
                true
            }
            Class::AudioFrame if !self.source.has_video => {
                let first = *self.source.first_audio.get_or_insert(ts);
                let span = i64::from(ts.wrapping_sub(first) as i32);
                if span >= i64::from(self.config.audio_only_after_ms) {
                    self.go_live(ts, true);
                    true
                } else {
                    self.stats.tags_discarded += 1;
                    false
                }
            }
            Class::VideoFrame => {
                self.source.has_video = true;
                self.stats.tags_discarded += 1;
                false
            }
            _ => {
                self.stats.tags_discarded += 1;
                false
            }
        }
    }

    /// The source's first sync point (input timestamp `ts`) arrived.
    fn go_live(&mut self, ts: u32, audio_only: bool) {
        let pending = std::mem::take(&mut self.pending);
        if let Some(video) = &pending.video {
            self.dimensions = dimensions_of(video);
        }
        self.headers.merge(pending);
        let first = self
            .last_out
            .map_or(0, |last| last + u64::from(self.config.switch_gap_ms));
        self.source.live = true;
        self.source.last_in = ts;
        self.source.last_mapped = first as i64;
        let discontinuity = self.had_source;
        self.had_source = true;
        for viewer in self.viewers.values_mut() {
            if discontinuity && viewer.base.is_some() {
                viewer.discontinuity_pending = true;
            }
            if viewer.state == State::Live {
                // It keeps what is queued from the old source, then gets the new headers
                // and sync point.
                viewer.state = State::Waiting(Wait::Switch);
            }
        }
        self.push_event(HubEvent::SourceLive {
            discontinuity,
            audio_only,
        });
    }

    /// Maps an input timestamp of the live source onto the output timeline, which never
    /// goes backwards.
    fn map_timestamp(&mut self, ts: u32) -> u64 {
        let floor = self.last_out.unwrap_or(0) as i64;
        // Wrapping difference: survives the source's 32-bit timestamp wrapping around.
        let step = i64::from(ts.wrapping_sub(self.source.last_in) as i32);
        let mapped = if step.unsigned_abs() > u64::from(self.config.max_timestamp_jump_ms) {
            floor + i64::from(self.config.switch_gap_ms)
        } else {
            self.source.last_mapped + step
        };
        self.source.last_in = ts;
        self.source.last_mapped = mapped;
        let out = mapped.max(floor) as u64;
        self.last_out = Some(out);
        out
    }

    fn update_header(&mut self, class: Class, data: Bytes) {
        let slot = self.headers.slot(class);
        let changed = slot.as_ref() != Some(&data);
        *slot = Some(data);
        if class == Class::VideoHeader {
            self.source.has_video = true;
            if changed {
                self.dimensions = self.headers.video.as_ref().and_then(dimensions_of);
            }
        }
        if changed && class != Class::Metadata {
            // The cached frames belong to the old configuration; late joiners must wait for
            // a keyframe of the new one.
            self.clear_gop();
        }
    }

    fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_valid = false;
    }

    /// Appends to the GOP cache, if it is caching.
    fn cache(&mut self, item: &Item) {
        if !self.gop_valid {
            return;
        }
        if self.gop_bytes + item.cost() > self.config.max_gop_bytes {
            self.clear_gop();
            self.stats.gop_overflows += 1;
            return;
        }
        self.gop_bytes += item.cost();
        self.gop.push_back(item.clone());
    }

    /// Hands `item` to every viewer: appended for live viewers, and when it is a sync point,
    /// headers plus `item` for waiting ones.
    fn deliver(&mut self, item: Item, sync_point: bool) {
        let budget = self.config.viewer_queue_bytes;
        let headers_cost = self.headers.cost();
        let mut lagged = Vec::new();
        for (&id, viewer) in &mut self.viewers {
            match viewer.state {
                State::Live => {
                    if viewer.fits(item.cost(), budget) {
                        viewer.push(item.clone());
                    } else {
                        lagged.push(id);
                    }
                }
                State::Waiting(wait) if sync_point => {
                    if viewer.fits(headers_cost + item.cost(), budget) {
                        for header in self.headers.items(item.ts) {
                            viewer.push(header);
                        }
                        viewer.push(item.clone());
                        viewer.state = State::Live;
                        if wait == Wait::Resync {
                            self.stats.resyncs += 1;
                            self.events.push_back(HubEvent::ViewerResynced { id });
                        }
                    } else {
                        lagged.push(id);
                    }
                }
                State::Waiting(_) => {}
            }
        }
        for id in lagged {
            self.lag(id, item.ts);
        }
        self.trim_events();
    }

    /// `id` could not take a tag at output time `now`: clear its queue and resync it, or drop
    /// it if it keeps lagging.
    fn lag(&mut self, id: ViewerId, now: u64) {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return;
        };
        self.stats.lags += 1;
        let in_a_row = viewer
            .last_lag
            .is_some_and(|last| now.saturating_sub(last) <= u64::from(self.config.lag_window_ms));
        viewer.lags = if in_a_row { viewer.lags + 1 } else { 1 };
        viewer.last_lag = Some(now);
        if viewer.queue.iter().any(|item| item.discontinuity) {
            // The mark was not delivered yet; it goes on the first tag after the resync.
            viewer.discontinuity_pending = true;
        }
        viewer.queue.clear();
        viewer.queued = 0;
        viewer.state = State::Waiting(Wait::Resync);
        if self.config.max_lags != 0 && viewer.lags >= self.config.max_lags {
            let lags = viewer.lags;
            self.viewers.remove(&id);
            self.stats.viewers_dropped += 1;
            self.push_event(HubEvent::ViewerDropped {
                id,
                reason: DropReason::Lagging { lags },
            });
        }
    }

    fn push_event(&mut self, event: HubEvent) {
        self.events.push_back(event);
        self.trim_events();
    }

    fn trim_events(&mut self) {
        while self.events.len() > self.config.max_events {
            self.events.pop_front();
            self.stats.events_lost += 1;
        }
    }

    /// A new viewer. It starts with the headers and the cached GOP when there is one (and
    /// it fits its budget), otherwise at the next keyframe.
    pub fn add_viewer(&mut self) -> ViewerId {
        let id = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let mut viewer = Viewer::new();
        if let Some(first) = self
            .gop
            .front()
            .filter(|_| self.source.live && self.gop_valid)
        {
            let ts = first.ts;
            if viewer.fits(
                self.headers.cost() + self.gop_bytes,
                self.config.viewer_queue_bytes,
            ) {
                for header in self.headers.items(ts) {
                    viewer.push(header);
                }
                for item in &self.gop {
                    viewer.push(item.clone());
                }
                viewer.state = State::Live;
            }
        }
        self.viewers.insert(id, viewer);
        self.stats.peak_viewers = self.stats.peak_viewers.max(self.viewers.len());
        id
    }

    /// Removes a viewer (its connection closed); `false` if it was not there.
    pub fn remove_viewer(&mut self, id: ViewerId) -> bool {
        self.viewers.remove(&id).is_some()
    }

    /// Whether the viewer is still served (not removed or dropped).
    pub fn has_viewer(&self, id: ViewerId) -> bool {
        self.viewers.contains_key(&id)
    }

    /// Bytes (as the budget counts them) queued for a viewer.
    pub fn queued_bytes(&self, id: ViewerId) -> Option<usize> {
        self.viewers.get(&id).map(|v| v.queued)
    }

    /// The next tag for a viewer, `None` when nothing is queued (or the viewer is gone).
    /// Timestamps are rebased so that each viewer's stream starts at 0.
    pub fn poll_viewer(&mut self, id: ViewerId) -> Option<Tag> {
        let viewer = self.viewers.get_mut(&id)?;
        let item = viewer.queue.pop_front()?;
        viewer.queued -= item.cost();
        self.stats.bytes_out += item.data.len() as u64;
        self.stats.tags_out += 1;
        let base = viewer.base.unwrap_or(item.ts);
        Some(Tag {
            kind: item.kind,
            // Wraps after 49.7 days of one viewer's session, as FLV's timestamps do.
            timestamp_ms: item.ts.saturating_sub(base) as u32,
            data: item.data,
            discontinuity: item.discontinuity,
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<HubEvent> {
        self.events.pop_front()
    }
}

/// Picture size from a video sequence header tag body, for AVC.
fn dimensions_of(video_header: &Bytes) -> Option<(u32, u32)> {
    let info = video_info(video_header).ok()?;
    if info.codec != VideoCodec::Avc {
        return None;
    }
    avc_dimensions(&video_header[info.header_len..]).ok()
}
