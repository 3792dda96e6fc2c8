//! What connection-based viewers (HTTP-FLV, the fMP4 stream) read: a broadcast log of
//! media encoded once per channel, sans-IO.
//!
//! The channel encodes each tag once — an FLV tag, an fMP4 fragment — and appends it to a
//! [`Feed`]; every viewer reads the same shared [`Bytes`] through its own [`Cursor`]. The
//! feed keeps no per-viewer state, so a viewer costs a cursor whatever it does, and the
//! feed's memory is bounded by [`FeedConfig::max_bytes`] however many viewers there are.
//!
//! Some units are *sync points* (a video keyframe; any frame of an audio-only source) and
//! carry a *prefix*: what a viewer must get before it can start there (the FLV sequence
//! headers, the fMP4 init segment). A new viewer starts at the latest sync point the feed
//! holds, prefix first, or waits for the first one.
//!
//! Units older than the byte bound are forgotten. A viewer whose next unit was forgotten
//! has *lagged*: it skips to the latest sync point (prefix first) and goes on from there.
//! One that lags [`FeedConfig::max_lags`] times, each within [`FeedConfig::lag_window_ms`]
//! of media time of the previous, is dropped.
//!
//! Every unit carries the *label* of what was on when it was appended ([`Feed::set_label`]):
//! [`SHARED`] for the channel's own content (filler, slates), a program's id for that
//! program. A cursor made [`Cursor::for_program`] reads shared units and its program's
//! only: before its program it skips other programs' units (rejoining at a later sync
//! point), and once it has read its program, another program's unit ends it
//! ([`Read::Ended`]), so no viewer ever gets a frame of a program it holds no grant for.
//!
//! [`FlvEncoder`] and [`Mp4Encoder`] turn the tags of a [`Hub`] viewer into feed units. A
//! [`Lane`] runs one of them only while its feed has readers: nobody reading costs nothing
//! (no hub viewer, no encoding, no units kept), and the first reader starts it again from
//! the hub's cached GOP, so it gets a picture at once.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use crate::flv::{FlvWriter, Tag, TagKind, audio_info, is_metadata, set_tag_timestamp, video_info};
use crate::fmp4::{Fragmenter, FragmenterConfig, Output};
use crate::hub::{Hub, ViewerId};

/// What one unit costs against [`FeedConfig::max_bytes`] beyond its bytes, so that floods
/// of tiny units are bounded too.
const UNIT_OVERHEAD: usize = 64;

/// The label of the channel's own content (filler, slates), which every viewer reads.
pub const SHARED: u64 = 0;

/// Limits of a [`Feed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// Bytes of units kept (plus [`UNIT_OVERHEAD`] each). It should hold a whole GOP, or
    /// new viewers wait for the next keyframe instead of starting at once.
    pub max_bytes: usize,
    /// A viewer that lags this many times in a row is dropped; 0 never drops.
    pub max_lags: u32,
    /// Lags count as "in a row" when each follows the previous one within this much media
    /// time (ms).
    pub lag_window_ms: u64,
}

impl Default for FeedConfig {
    /// About 4 s at 8 Mbit/s, 13 s at 2.5 Mbit/s.
    fn default() -> Self {
        FeedConfig {
            max_bytes: 4 << 20,
            max_lags: 3,
            lag_window_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug)]
struct Unit {
    ts: u64,
    label: u64,
    data: Bytes,
    /// For sync points: what goes before `data` when a viewer starts here.
    prefix: Option<Bytes>,
}

/// A broadcast log of encoded units. See the [module documentation](self).
#[derive(Debug)]
pub struct Feed {
    config: FeedConfig,
    units: VecDeque<Unit>,
    /// Sequence number of `units[0]`.
    first: u64,
    bytes: usize,
    last_sync: Option<u64>,
    label: u64,
}

/// A viewer's place in a [`Feed`].
#[derive(Clone, Debug, Default)]
pub struct Cursor {
    /// The next unit; `None` before the first sync point.
    next: Option<u64>,
    /// Joins only at a sync point at or after this unit (after skipping other programs').
    floor: u64,
    /// `None`: reads every unit; `Some(p)`: shared units and program `p`'s.
    program: Option<u64>,
    /// Whether it has read a unit of its program.
    seen_program: bool,
    lags: u32,
    last_lag: Option<u64>,
    resyncs: u64,
}

impl Cursor {
    /// A new viewer's cursor that reads every unit: it starts at the latest sync point.
    pub fn new() -> Cursor {
        Cursor::default()
    }

    /// A new viewer's cursor that reads the shared units and those labelled `program`.
    pub fn for_program(program: u64) -> Cursor {
        Cursor {
            program: Some(program),
            ..Cursor::default()
        }
    }

    fn may_read(&self, label: u64) -> bool {
        label == SHARED || self.program.is_none_or(|p| p == label)
    }

    /// Times this viewer lagged and was resynced.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }
}

/// One piece of a viewer's output, from [`Feed::read`].
#[derive(Clone, Copy, Debug)]
pub enum Piece<'a> {
    /// A sync point's prefix, before the first unit read after a join or a resync.
    Prefix(&'a Bytes),
    /// A unit with its media timestamp (ms).
    Unit {
        /// Its media time.
        ts: u64,
        /// Its bytes.
        data: &'a Bytes,
    },
}

impl<'a> Piece<'a> {
    /// Its bytes.
    pub fn bytes(self) -> &'a Bytes {
        match self {
            Piece::Prefix(data) | Piece::Unit { data, .. } => data,
        }
    }
}

/// What [`Feed::read`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Pieces were emitted.
    Sent,
    /// Nothing to read yet: wait for the next unit.
    Wait,
    /// The viewer lagged once too often: close its connection.
    Dropped {
        /// Lags in the row that ended it.
        lags: u32,
    },
    /// Another program followed the viewer's own: close its connection.
    Ended,
}

impl Feed {
    /// An empty feed.
    pub fn new(config: FeedConfig) -> Feed {
        Feed {
            config,
            units: VecDeque::new(),
            first: 0,
            bytes: 0,
            last_sync: None,
            label: SHARED,
        }
    }

    /// What units appended from now on belong to: [`SHARED`] or a program's id.
    pub fn set_label(&mut self, label: u64) {
        self.label = label;
    }

    /// Bytes held (as [`FeedConfig::max_bytes`] counts them).
    pub fn retained_bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets every unit (nobody reads them); sequence numbers go on, the label stays.
    pub fn clear(&mut self) {
        self.first += self.units.len() as u64;
        self.units.clear();
        self.bytes = 0;
        self.last_sync = None;
    }

    /// Appends a unit viewers can only get after what precedes it.
    pub fn push(&mut self, ts: u64, data: Bytes) {
        self.append(Unit {
            ts,
            label: self.label,
            data,
            prefix: None,
        });
    }

    /// Appends a sync point: a viewer may start here with `prefix`, then `data`.
    pub fn push_sync(&mut self, ts: u64, prefix: Bytes, data: Bytes) {
        self.last_sync = Some(self.first + self.units.len() as u64);
        self.append(Unit {
            ts,
            label: self.label,
            data,
            prefix: Some(prefix),
        });
    }

    fn cost(unit: &Unit) -> usize {
        unit.data.len() + UNIT_OVERHEAD
    }

    fn append(&mut self, unit: Unit) {
        self.bytes += Self::cost(&unit);
        self.units.push_back(unit);
        while self.bytes > self.config.max_bytes && self.units.len() > 1 {
            let old = self.units.pop_front().expect("more than one unit");
            self.bytes -= Self::cost(&old);
            self.first += 1;
        }
        if self.last_sync.is_some_and(|s| s < self.first) {
            self.last_sync = None;
        }
    }

    /// Emits what `cursor` has not read yet, up to about `max` bytes (at least one unit),
    /// and moves it on.
    pub fn read(&self, cursor: &mut Cursor, max: usize, mut emit: impl FnMut(Piece<'_>)) -> Read {
        let end = self.first + self.units.len() as u64;
        let mut next = match cursor.next {
            Some(n) if n >= self.first => n,
            Some(_) => {
                // What it was to read next is gone.
                let now = self.units.back().map_or(0, |u| u.ts);
                let in_a_row = cursor
                    .last_lag
                    .is_some_and(|last| now.saturating_sub(last) <= self.config.lag_window_ms);
                cursor.lags = if in_a_row { cursor.lags + 1 } else { 1 };
                cursor.last_lag = Some(now);
                cursor.resyncs += 1;
                cursor.next = None;
                if self.config.max_lags != 0 && cursor.lags >= self.config.max_lags {
                    return Read::Dropped { lags: cursor.lags };
                }
                return self.read(cursor, max, emit);
            }
            None => {
                let Some(sync) = self.last_sync.filter(|&s| s >= cursor.floor) else {
                    return Read::Wait;
                };
                let unit = &self.units[(sync - self.first) as usize];
                if !cursor.may_read(unit.label) {
                    return Read::Wait;
                }
                emit(Piece::Prefix(unit.prefix.as_ref().expect("sync point")));
                sync
            }
        };
        if next == end {
            cursor.next = Some(next);
            return Read::Wait;
        }
        let mut sent = 0;
        while next < end && (sent == 0 || sent < max) {
            let unit = &self.units[(next - self.first) as usize];
            if !cursor.may_read(unit.label) {
                if cursor.seen_program {
                    cursor.next = Some(next);
                    return if sent == 0 { Read::Ended } else { Read::Sent };
                }
                // Its program has not come yet: skip this one, join at a later sync point.
                cursor.next = None;
                cursor.floor = next + 1;
                return if sent == 0 { Read::Wait } else { Read::Sent };
            }
            cursor.seen_program |= unit.label != SHARED;
            emit(Piece::Unit {
                ts: unit.ts,
                data: &unit.data,
            });
            sent += unit.data.len();
            next += 1;
        }
        cursor.next = Some(next);
        Read::Sent
    }
}

/// Which header slot (metadata, video, audio) a tag fills, if it is a header.
fn header_slot(tag: &Tag) -> Option<usize> {
    match tag.kind {
        TagKind::Script => is_metadata(&tag.data).then_some(0),
        TagKind::Video => video_info(&tag.data)
            .is_ok_and(|i| i.is_sequence_header())
            .then_some(1),
        TagKind::Audio => audio_info(&tag.data)
            .is_ok_and(|i| i.is_sequence_header())
            .then_some(2),
    }
}

/// Encodes tags as FLV tags into a [`Feed`]. Timestamps are the hub viewer's; each reader
/// rebases them with [`FlvViewer`].
#[derive(Debug, Default)]
pub struct FlvEncoder {
    /// The latest metadata, video and audio sequence headers, framed with timestamp 0.
    headers: [Option<Bytes>; 3],
    /// `headers` concatenated: the prefix of sync points.
    prefix: Bytes,
}

impl FlvEncoder {
    /// An encoder that has seen no header yet.
    pub fn new() -> FlvEncoder {
        FlvEncoder::default()
    }

    /// Appends `tag` to `feed`; a tag FLV cannot frame (over 16 MiB) is skipped.
    pub fn push(&mut self, feed: &mut Feed, tag: &Tag) {
        let Ok(framed) = FlvWriter::new().tag(tag) else {
            return;
        };
        let ts = u64::from(tag.timestamp_ms);
        if let Some(slot) = header_slot(tag) {
            let mut zero = BytesMut::from(&framed[..]);
            set_tag_timestamp(&mut zero, 0);
            self.headers[slot] = Some(zero.freeze());
            self.prefix = self.headers.iter().flatten().flatten().copied().collect();
            feed.push(ts, framed);
            return;
        }
        let sync = match tag.kind {
            TagKind::Video => video_info(&tag.data).is_ok_and(|i| i.is_keyframe()),
            // Audio-only: every audio frame is a place to start.
            TagKind::Audio => self.headers[1].is_none(),
            TagKind::Script => false,
        };
        if sync {
            feed.push_sync(ts, self.prefix.clone(), framed);
        } else {
            feed.push(ts, framed);
        }
    }
}

/// One HTTP-FLV viewer's writer: the FLV file header, then the feed's tags with
/// timestamps rebased to start at 0 for this viewer.
#[derive(Debug, Default)]
pub struct FlvViewer {
    base: Option<u64>,
}

impl FlvViewer {
    /// A viewer that has read nothing yet.
    pub fn new() -> FlvViewer {
        FlvViewer::default()
    }

    /// The FLV file header, sent once before anything else.
    pub fn file_header() -> Bytes {
        FlvWriter::new().header(true, true)
    }

    /// Appends `piece` to `out`, rebasing tag timestamps.
    pub fn write(&mut self, piece: Piece<'_>, out: &mut BytesMut) {
        match piece {
            Piece::Prefix(p) => out.put_slice(p),
            Piece::Unit { ts, data } => {
                let base = *self.base.get_or_insert(ts);
                let at = out.len();
                out.put_slice(data);
                // 32-bit FLV time wraps after 49.7 days of one viewer's session.
                set_tag_timestamp(&mut out[at..], ts.wrapping_sub(base) as u32);
            }
        }
    }
}

/// Encodes tags as fMP4 (one fragment per video frame, the low-latency MSE stream) into a
/// [`Feed`]: init segments as units of their own and as the prefix of every independent
/// fragment.
#[derive(Debug)]
pub struct Mp4Encoder {
    fragmenter: Fragmenter,
    init: Option<Bytes>,
}

impl Default for Mp4Encoder {
    fn default() -> Self {
        Mp4Encoder::new()
    }
}

impl Mp4Encoder {
    /// An encoder with the per-frame fragmenter.
    pub fn new() -> Mp4Encoder {
        Mp4Encoder {
            fragmenter: Fragmenter::new(FragmenterConfig::per_frame()),
            init: None,
        }
    }

    /// Feeds `tag` to the fragmenter and appends what it completes to `feed`.
    pub fn push(&mut self, feed: &mut Feed, tag: &Tag) {
        self.fragmenter.handle_tag(tag);
        self.drain(feed, u64::from(tag.timestamp_ms));
    }

    /// Appends what the fragmenter holds back (the last frame, whose duration the next
    /// one would tell): before the feed's label changes, so that the last frame of one
    /// program is not labelled with the next.
    pub fn flush(&mut self, feed: &mut Feed) {
        self.fragmenter.flush();
        self.drain(feed, 0);
    }

    fn drain(&mut self, feed: &mut Feed, ts: u64) {
        while let Some(out) = self.fragmenter.poll_output() {
            let data = concat(out.chunks());
            match out {
                Output::Init(_) => {
                    feed.push(ts, data.clone());
                    self.init = Some(data);
                }
                Output::Fragment(f) => match &self.init {
                    Some(init) if f.independent => feed.push_sync(f.start_ms, init.clone(), data),
                    _ => feed.push(f.start_ms, data),
                },
            }
        }
    }
}

/// What a [`Lane`] encodes into its feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// FLV tags ([`FlvEncoder`]).
    Flv,
    /// Per-frame fMP4 fragments ([`Mp4Encoder`]).
    Mp4,
}

#[derive(Debug)]
enum Encoder {
    Flv(FlvEncoder),
    Mp4(Box<Mp4Encoder>),
}

/// What fills one [`Feed`] from a [`Hub`], while the feed has readers: a hub viewer of its
/// own and an encoder. See the [module documentation](self).
#[derive(Debug)]
pub struct Lane {
    encoding: Encoding,
    running: Option<(ViewerId, Encoder)>,
    /// Audio tags encoded since readers were last told to wake.
    audio_run: u32,
}

impl Lane {
    /// A stopped lane.
    pub fn new(encoding: Encoding) -> Lane {
        Lane {
            encoding,
            running: None,
            audio_run: 0,
        }
    }

    /// What it encodes.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Whether it is encoding.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Runs while `wanted` (the feed has readers): started, it gets the hub's headers and
    /// cached GOP (from its next [`Lane::drain`]); stopped, its hub viewer goes and `feed`
    /// forgets its units, which nobody would read in time. A hub viewer the hub dropped is
    /// replaced.
    pub fn set_wanted(&mut self, wanted: bool, hub: &mut Hub, feed: &mut Feed) {
        match &self.running {
            Some((id, _)) if wanted && hub.has_viewer(*id) => return,
            Some((id, _)) => {
                hub.remove_viewer(*id);
                self.running = None;
                feed.clear();
            }
            None => {}
        }
        if wanted {
            let encoder = match self.encoding {
                Encoding::Flv => Encoder::Flv(FlvEncoder::new()),
                Encoding::Mp4 => Encoder::Mp4(Box::default()),
            };
            self.running = Some((hub.add_viewer(), encoder));
        }
    }

    /// Encodes what the hub queued for it into `feed`. Returns whether readers should be
    /// woken: after a video frame (with the audio before it), or every 4 audio-only frames.
    pub fn drain(&mut self, hub: &mut Hub, feed: &mut Feed) -> bool {
        let Some((id, encoder)) = &mut self.running else {
            return false;
        };
        let mut wake = false;
        while let Some(tag) = hub.poll_viewer(*id) {
            match encoder {
                Encoder::Flv(e) => e.push(feed, &tag),
                Encoder::Mp4(e) => e.push(feed, &tag),
            }
            self.audio_run += 1;
            if tag.kind != TagKind::Audio || self.audio_run >= 4 {
                wake = true;
                self.audio_run = 0;
            }
        }
        wake
    }

    /// Appends what the encoder holds back: before `feed`'s label changes (see
    /// [`Mp4Encoder::flush`]).
    pub fn flush(&mut self, feed: &mut Feed) {
        if let Some((_, Encoder::Mp4(e))) = &mut self.running {
            e.flush(feed);
        }
    }
}

fn concat(chunks: &[Bytes]) -> Bytes {
    match chunks {
        [one] => one.clone(),
        _ => {
            let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                out.put_slice(c);
            }
            out.freeze()
        }
    }
}

#[cfg(test)]
mod tests;
