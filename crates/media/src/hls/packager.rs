//! The LL-HLS packager of one channel: fragments grouped into parts and segments, a
//! sliding window, the playlist, and the lookups behind blocking requests.

use std::collections::VecDeque;
use std::fmt::Write as _;

use bytes::Bytes;

use super::BlockingRequest;
use super::playlist::{rounded_secs, secs, with_query};
pub use crate::feed::SHARED;
use crate::flv::Tag;
use crate::fmp4::{Fragment, Fragmenter, FragmenterConfig, Output};

/// How a [`Packager`] cuts and keeps media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackagerConfig {
    /// Part target duration (ms); parts never exceed it when frame durations are steady.
    /// Also `PART-TARGET`; `PART-HOLD-BACK` is three times it.
    pub part_ms: u32,
    /// Segment target duration (ms); segments start on the first keyframe after it.
    pub segment_ms: u32,
    /// A segment without a keyframe is cut anyway after this long (ms).
    pub max_segment_ms: u32,
    /// Complete segments kept and listed.
    pub window_segments: usize,
    /// A segment is closed anyway when its parts reach this many bytes (the next part
    /// starts a new segment), bounding memory whatever the source sends.
    pub max_segment_bytes: usize,
    /// A segment is closed anyway when it has this many parts.
    pub max_parts_per_segment: usize,
}

impl Default for PackagerConfig {
    /// 500 ms parts, 2 s segments, 6 segments kept, 32 MiB and 64 parts per segment at
    /// most.
    fn default() -> Self {
        PackagerConfig {
            part_ms: 500,
            segment_ms: 2_000,
            max_segment_ms: 10_000,
            window_segments: 6,
            max_segment_bytes: 32 << 20,
            max_parts_per_segment: 64,
        }
    }
}

/// The answer to a blocking playlist reload ([`Packager::ready`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The playlist has what was asked for (or the stream ended): answer now.
    Ready,
    /// Not yet: wait for [`Packager::version`] to change and ask again.
    Wait,
    /// More than two segments (or the Advance Part Limit) beyond the live edge: answer
    /// 400 Bad Request, as the specification requires.
    TooFarAhead,
}

/// The answer to a part or segment request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Here are its bytes, to be sent in order.
    Ready(Vec<Bytes>),
    /// It is being made (the part the preload hint names, or the segment in progress):
    /// wait for [`Packager::version`] to change and ask again.
    Wait,
    /// It no longer exists or never will: 404 Not Found.
    Gone,
}

/// Counters of a [`Packager`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackagerStats {
    /// Parts made.
    pub parts: u64,
    /// Segments completed.
    pub segments: u64,
    /// Segments closed early by the byte or part limits.
    pub forced_segments: u64,
}

#[derive(Clone, Debug)]
struct Part {
    chunks: Vec<Bytes>,
    duration_ms: u32,
    independent: bool,
}

#[derive(Clone, Debug)]
struct Segment {
    msn: u64,
    /// What it shows: [`SHARED`] (filler, slates) or a program (see [`Packager::set_label`]).
    label: u64,
    init: u32,
    discontinuity: bool,
    parts: Vec<Part>,
    duration_ms: u64,
    bytes: usize,
}

impl Segment {
    fn chunks(&self) -> Vec<Bytes> {
        self.parts
            .iter()
            .flat_map(|p| p.chunks.iter().cloned())
            .collect()
    }
}

/// One channel's LL-HLS state: see the [module](super) documentation.
#[derive(Debug)]
pub struct Packager {
    config: PackagerConfig,
    fragmenter: Fragmenter,
    /// Complete segments, oldest first.
    segments: VecDeque<Segment>,
    /// The segment in progress.
    current: Option<Segment>,
    next_msn: u64,
    discontinuity_sequence: u64,
    /// Init segments still referenced, by version, oldest first.
    inits: VecDeque<(u32, Bytes)>,
    next_init: u32,
    version: u64,
    target_duration: u64,
    ended: bool,
    stats: PackagerStats,
    label: u64,
    /// [`Packager::pause`] was called and no tag came since.
    paused: bool,
    /// Added to the timestamps of the tags taken since the last pause, so that the
    /// timeline goes on where it stopped (ms).
    shift_ms: u32,
}

impl Packager {
    /// A packager with the given configuration.
    pub fn new(config: PackagerConfig) -> Packager {
        let fragmenter = Fragmenter::new(FragmenterConfig {
            fragment_ms: config.part_ms.max(1),
            segment_ms: config.segment_ms,
            max_segment_ms: config.max_segment_ms,
            ..FragmenterConfig::default()
        });
        let target_duration = u64::from(config.segment_ms).div_ceil(1000).max(1);
        Packager {
            config,
            fragmenter,
            segments: VecDeque::new(),
            current: None,
            next_msn: 0,
            discontinuity_sequence: 0,
            inits: VecDeque::new(),
            next_init: 0,
            version: 0,
            target_duration,
            ended: false,
            stats: PackagerStats::default(),
            label: SHARED,
            paused: false,
            shift_ms: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PackagerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> PackagerStats {
        self.stats
    }

    /// The fragmenter (for its statistics and codecs string).
    pub fn fragmenter(&self) -> &Fragmenter {
        &self.fragmenter
    }

    /// Changes whenever a part, segment or init segment is added or the stream ends; the
    /// I/O edge re-runs waiting lookups when it changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether [`Packager::finish`] was called (the playlist has `EXT-X-ENDLIST`).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether there is at least one part (before that the playlist lists nothing).
    pub fn has_media(&self) -> bool {
        !self.segments.is_empty() || self.current.as_ref().is_some_and(|c| !c.parts.is_empty())
    }

    /// Bytes of media held: parts of the window and the segment in progress, init
    /// segments, and what the fragmenter holds back.
    pub fn retained_bytes(&self) -> usize {
        self.segments
            .iter()
            .chain(self.current.iter())
            .map(|s| s.bytes)
            .sum::<usize>()
            + self.inits.iter().map(|(_, b)| b.len()).sum::<usize>()
            + self.fragmenter.pending_bytes()
    }

    /// What the media taken from now on belongs to: [`SHARED`] or a program's id. What the
    /// fragmenter holds back is cut off first, so a segment never mixes two labels.
    pub fn set_label(&mut self, label: u64) {
        if label == self.label {
            return;
        }
        self.complete();
        self.label = label;
    }

    /// The label of segment `msn`, while it is in the window or in progress.
    pub fn label_of(&self, msn: u64) -> Option<u64> {
        self.segments
            .iter()
            .chain(self.current.iter())
            .find(|s| s.msn == msn)
            .map(|s| s.label)
    }

    /// Whether a segment labelled `label` is in the window or in progress.
    pub fn has_label(&self, label: u64) -> bool {
        self.segments
            .iter()
            .chain(self.current.iter())
            .any(|s| s.label == label)
    }

    /// The label of the segment in progress (or of what comes next).
    pub fn edge_label(&self) -> u64 {
        self.current.as_ref().map_or(self.label, |s| s.label)
    }

    /// Whether init segment `n` belongs to media an audience (see [`Packager::playlist_for`])
    /// may see.
    pub fn init_for(&self, n: u32, audience: Option<u64>) -> Option<Bytes> {
        let visible = self
            .segments
            .iter()
            .chain(self.current.iter())
            .any(|s| s.init == n && may_see(audience, s.label));
        if visible { self.init(n) } else { None }
    }

    /// Takes one tag of the channel (as a hub viewer receives it). The first after
    /// [`Packager::pause`] starts a discontinuity, and its timeline goes on where the
    /// packager's stopped, whatever it started from.
    pub fn handle_tag(&mut self, tag: &Tag) {
        if std::mem::take(&mut self.paused) {
            let end = u32::try_from(self.fragmenter.end_ms()).unwrap_or(u32::MAX);
            self.shift_ms = end.wrapping_sub(tag.timestamp_ms);
            self.fragmenter.handle_tag(&Tag {
                discontinuity: true,
                timestamp_ms: end,
                ..tag.clone()
            });
        } else if self.shift_ms != 0 {
            self.fragmenter.handle_tag(&Tag {
                timestamp_ms: tag.timestamp_ms.wrapping_add(self.shift_ms),
                ..tag.clone()
            });
        } else {
            self.fragmenter.handle_tag(tag);
        }
        self.drain();
    }

    /// Stops taking media for a while (nobody plays it): what the fragmenter holds
    /// becomes the last part and the segment in progress is completed, without ending
    /// the playlist. Media taken again (from another hub viewer, with a timeline of its
    /// own) starts a new segment marked as a discontinuity, its timeline shifted to go on
    /// from this one's end.
    pub fn pause(&mut self) {
        self.complete();
        self.paused = true;
    }

    /// Ends the stream: what the fragmenter holds becomes the last part, the segment in
    /// progress is completed, and the playlist gets `EXT-X-ENDLIST`.
    pub fn finish(&mut self) {
        self.complete();
        self.ended = true;
    }

    /// What the fragmenter holds becomes the last part; the segment in progress is
    /// completed.
    fn complete(&mut self) {
        self.fragmenter.flush();
        self.drain();
        self.close_segment();
        self.version += 1;
    }

    fn drain(&mut self) {
        while let Some(output) = self.fragmenter.poll_output() {
            match output {
                Output::Init(init) => {
                    self.inits.push_back((self.next_init, init));
                    self.next_init = self.next_init.wrapping_add(1);
                    self.version += 1;
                }
                Output::Fragment(f) => self.add_part(f),
            }
        }
    }

    fn add_part(&mut self, f: Fragment) {
        let Some(&(init, _)) = self.inits.back() else {
            return;
        };
        self.ended = false;
        let new_segment = match &self.current {
            None => true,
            Some(c) => {
                let forced = c.bytes >= self.config.max_segment_bytes
                    || c.parts.len() >= self.config.max_parts_per_segment;
                if forced && !f.starts_segment {
                    self.stats.forced_segments += 1;
                }
                f.starts_segment || f.discontinuity || c.init != init || forced
            }
        };
        if new_segment {
            self.close_segment();
            self.current = Some(Segment {
                msn: self.next_msn,
                label: self.label,
                init,
                discontinuity: f.discontinuity,
                parts: Vec::new(),
                duration_ms: 0,
                bytes: 0,
            });
            self.next_msn += 1;
        }
        let len = f.len();
        if let Some(c) = &mut self.current {
            c.duration_ms += u64::from(f.duration_ms);
            c.bytes += len;
            c.parts.push(Part {
                chunks: f.chunks,
                duration_ms: f.duration_ms,
                independent: f.independent,
            });
        }
        self.stats.parts += 1;
        self.version += 1;
    }

    fn close_segment(&mut self) {
        let Some(segment) = self.current.take() else {
            return;
        };
        if segment.parts.is_empty() {
            return;
        }
        self.target_duration = self.target_duration.max(rounded_secs(segment.duration_ms));
        self.segments.push_back(segment);
        self.stats.segments += 1;
        while self.segments.len() > self.config.window_segments.max(1) {
            if let Some(old) = self.segments.pop_front()
                && old.discontinuity
            {
                self.discontinuity_sequence += 1;
            }
        }
        // Keep the init segments the window still refers to, and the newest.
        while self.inits.len() > 1
            && let Some(&(v, _)) = self.inits.front()
            && !self.referenced(v)
        {
            self.inits.pop_front();
        }
        self.version += 1;
    }

    fn referenced(&self, init: u32) -> bool {
        self.segments
            .iter()
            .chain(self.current.iter())
            .any(|s| s.init == init)
    }

    /// The init segment version `n`, while it is referenced.
    pub fn init(&self, n: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(v, _)| *v == n)
            .map(|(_, b)| b.clone())
    }

    /// Media sequence number of the segment in progress (the next one if none is), and
    /// its part count.
    fn edge(&self) -> (u64, usize) {
        match &self.current {
            Some(c) => (c.msn, c.parts.len()),
            None => (self.next_msn, 0),
        }
    }

    /// The Advance Part Limit of RFC 8216bis: 3 / PART-TARGET parts below one second.
    fn advance_part_limit(&self) -> u64 {
        if self.config.part_ms < 1000 {
            3000 / u64::from(self.config.part_ms.max(1))
        } else {
            3
        }
    }

    /// Whether a blocking playlist request can be answered now.
    pub fn ready(&self, request: &BlockingRequest) -> Readiness {
        if self.ended {
            return Readiness::Ready;
        }
        let (edge_msn, edge_parts) = self.edge();
        // "More than two segments after the last one in the playlist": the last complete
        // segment is edge_msn - 1.
        if request.msn > edge_msn + 1 {
            return Readiness::TooFarAhead;
        }
        let Some(part) = request.part.map(u64::from) else {
            return if request.msn < edge_msn {
                Readiness::Ready
            } else {
                Readiness::Wait
            };
        };
        if request.msn < edge_msn {
            let parts_in_msn = self
                .segments
                .iter()
                .find(|s| s.msn == request.msn)
                .map(|s| s.parts.len() as u64);
            let later_exists = edge_parts > 0 || request.msn + 1 < edge_msn;
            return match parts_in_msn {
                Some(n) if part >= n && !later_exists => Readiness::Wait,
                _ => Readiness::Ready,
            };
        }
        let limit = self.advance_part_limit();
        let edge_parts = edge_parts as u64;
        if request.msn == edge_msn {
            if part < edge_parts {
                Readiness::Ready
            } else if part - edge_parts >= limit {
                Readiness::TooFarAhead
            } else {
                Readiness::Wait
            }
        } else if part + 1 > limit {
            Readiness::TooFarAhead
        } else {
            Readiness::Wait
        }
    }

    /// Part `part` of segment `msn`.
    pub fn part(&self, msn: u64, part: u32) -> Lookup {
        let index = part as usize;
        if let Some(s) = self.segments.iter().find(|s| s.msn == msn) {
            return match s.parts.get(index) {
                Some(p) => Lookup::Ready(p.chunks.clone()),
                None => Lookup::Gone,
            };
        }
        if self.ended {
            return Lookup::Gone;
        }
        let limit = self.advance_part_limit();
        let (edge_msn, edge_parts) = self.edge();
        if let Some(c) = self.current.as_ref().filter(|c| c.msn == msn)
            && let Some(p) = c.parts.get(index)
        {
            return Lookup::Ready(p.chunks.clone());
        }
        let waitable = if msn == edge_msn {
            u64::from(part) >= edge_parts as u64 && u64::from(part) - (edge_parts as u64) < limit
        } else {
            msn == edge_msn + 1 && u64::from(part) < limit
        };
        if waitable { Lookup::Wait } else { Lookup::Gone }
    }

    /// Complete segment `msn`, as the chunks of its parts.
    pub fn segment(&self, msn: u64) -> Lookup {
        if let Some(s) = self.segments.iter().find(|s| s.msn == msn) {
            return Lookup::Ready(s.chunks());
        }
        if !self.ended && self.current.as_ref().is_some_and(|c| c.msn == msn) {
            return Lookup::Wait;
        }
        Lookup::Gone
    }

    /// The media playlist. Every URI gets `query` appended (e.g. `token=…`, without
    /// `?`). Before the first part it lists no segment; the I/O edge may rather wait with
    /// [`Packager::ready`] for `_HLS_msn=0&_HLS_part=0`.
    pub fn playlist(&self, query: &str) -> String {
        self.playlist_for(query, None)
    }

    /// The media playlist as `audience` may see it: `None` sees everything; `Some(p)` sees
    /// shared segments and program `p`'s, and the list starts after the newest segment of
    /// another program (with no preload hint while another program is being made), so
    /// neither the names nor the bytes of another program reach it.
    pub fn playlist_for(&self, query: &str, audience: Option<u64>) -> String {
        let c = &self.config;
        let all: Vec<&Segment> = self.segments.iter().chain(self.current.iter()).collect();
        let skip = all
            .iter()
            .rposition(|s| !may_see(audience, s.label))
            .map_or(0, |i| i + 1);
        let skipped_discontinuities = all[..skip.min(self.segments.len())]
            .iter()
            .filter(|s| s.discontinuity)
            .count() as u64;
        let segments = &all[skip.min(self.segments.len())..self.segments.len()];
        let current = self
            .current
            .as_ref()
            .filter(|_| skip <= self.segments.len());
        let mut out = String::new();
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:9");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            secs(3 * u64::from(c.part_ms))
        );
        let _ = writeln!(
            out,
            "#EXT-X-PART-INF:PART-TARGET={}",
            secs(u64::from(c.part_ms))
        );
        let first_msn = segments
            .first()
            .copied()
            .or(current)
            .map_or(self.next_msn, |s| s.msn);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence + skipped_discontinuities
        );
        // Parts are listed for the segments ending within three target durations of the
        // live edge, and for the segment in progress.
        let parts_window_ms = 3 * 1000 * self.target_duration;
        let mut from_edge_ms = current.map_or(0, |c| c.duration_ms);
        let mut list_parts = vec![false; segments.len()];
        for (i, s) in segments.iter().enumerate().rev() {
            list_parts[i] = from_edge_ms < parts_window_ms;
            from_edge_ms += s.duration_ms;
        }
        let mut init = None;
        let mut head = |out: &mut String, s: &Segment| {
            if s.discontinuity {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            if init != Some(s.init) {
                let uri = with_query(&format!("init-{}.mp4", s.init), query);
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{uri}\"");
                init = Some(s.init);
            }
        };
        let parts = |out: &mut String, s: &Segment| {
            for (i, p) in s.parts.iter().enumerate() {
                let uri = with_query(&format!("part-{}.{i}.mp4", s.msn), query);
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={},URI=\"{uri}\"",
                    secs(u64::from(p.duration_ms))
                );
                let _ = writeln!(
                    out,
                    "{}",
                    if p.independent {
                        ",INDEPENDENT=YES"
                    } else {
                        ""
                    }
                );
            }
        };
        for (s, &with_parts) in segments.iter().zip(&list_parts) {
            head(&mut out, s);
            if with_parts {
                parts(&mut out, s);
            }
            let _ = writeln!(out, "#EXTINF:{},", secs(s.duration_ms));
            let _ = writeln!(out, "{}", with_query(&format!("seg-{}.mp4", s.msn), query));
        }
        if let Some(s) = current {
            head(&mut out, s);
            parts(&mut out, s);
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        } else if may_see(audience, self.edge_label()) {
            let (msn, n) = self.edge();
            let uri = with_query(&format!("part-{msn}.{n}.mp4"), query);
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"");
        }
        out
    }
}

/// Whether `audience` (`None`: everyone) may see media labelled `label`.
fn may_see(audience: Option<u64>, label: u64) -> bool {
    label == SHARED || audience.is_none_or(|a| a == label)
}
