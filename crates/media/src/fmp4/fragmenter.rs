//! The fragmenter: FLV tags in, init segments and `moof`+`mdat` fragments out.
//!
//! A sample's duration is the next sample's DTS minus its own, so the last sample of each
//! track is *held* until the next one of that track arrives (or [`Fragmenter::flush`]).
//! Fragment boundaries are decided when a sample of the *leading* track arrives: video when
//! the source sends video, otherwise audio (also when video has stalled for
//! [`VIDEO_STALL_MS`] while audio goes on). Audio samples are added to the fragment that is
//! open when their duration becomes known, so a fragment's audio may start a few
//! milliseconds before its first video frame; each track has its own `tfdt`, so players
//! see exact times.
//!
//! Which track leads the cutting depends on the stream's recent past, which a file does
//! not record; which track *times* a fragment ([`Fragment::start_ms`]) depends only on the
//! fragment, by the rule the scanner applies to the file, so live and VOD times agree.

use std::collections::VecDeque;

use bytes::Bytes;

use super::codec::{AudioConfig, VideoConfig, VideoFormat};
use super::reader::{ticks_to_ms, timed_by_audio};
use super::writer::{Run, SampleEntry, fragment_header, init_segment};
use super::{AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use crate::flv::{
    AudioCodec, AudioPacketType, Tag, TagKind, VideoCodec, VideoPacketType, audio_info, video_info,
};

/// When the newest audio sample is this much (ms) ahead of the newest video sample, the
/// video is considered stalled and audio leads fragment boundaries until video resumes.
/// Likewise a fragment whose first video sample is more than this much older than the
/// audio is timed by its audio ([`Fragment::start_ms`]).
pub const VIDEO_STALL_MS: u64 = 2_000;

/// Video sample duration (ms) assumed on [`Fragmenter::flush`] when none is known.
const DEFAULT_VIDEO_DURATION_MS: u32 = 33;

/// AAC samples per frame, the duration assumed for a flushed audio sample.
const AAC_FRAME_SAMPLES: u32 = 1024;

/// How a [`Fragmenter`] cuts fragments and segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmenterConfig {
    /// Target fragment duration (ms). 0: one fragment per video frame (with the audio up to
    /// it), or per audio frame for audio-only sources — the low-latency MSE stream.
    /// Otherwise a fragment closes before the sample that would take it past this duration
    /// (so fragments stay at or under it, as LL-HLS parts must), and at segment boundaries.
    pub fragment_ms: u32,
    /// Target segment duration (ms): a fragment that starts with a video keyframe at least
    /// this long (less half a frame) after the segment's start begins a new segment
    /// ([`Fragment::starts_segment`]). Audio-only sources cut segments by duration alone.
    pub segment_ms: u32,
    /// A segment without a keyframe is cut anyway after this long (ms), so that a source
    /// with rare keyframes cannot make a segment grow without bound.
    pub max_segment_ms: u32,
    /// A fragment is closed anyway when it spans this long (ms), whatever the tracks do.
    pub max_fragment_ms: u32,
    /// A fragment is closed anyway when its samples reach this many bytes. Capped at
    /// 1 GiB.
    pub max_fragment_bytes: usize,
}

impl Default for FragmenterConfig {
    /// Parts of 500 ms in segments of 2 s: LL-HLS.
    fn default() -> Self {
        FragmenterConfig {
            fragment_ms: 500,
            segment_ms: 2_000,
            max_segment_ms: 10_000,
            max_fragment_ms: 10_000,
            max_fragment_bytes: 8 << 20,
        }
    }
}

impl FragmenterConfig {
    /// One fragment per video frame, for the low-latency MSE stream; segments of 2 s are
    /// still marked.
    pub fn per_frame() -> FragmenterConfig {
        FragmenterConfig {
            fragment_ms: 0,
            ..FragmenterConfig::default()
        }
    }
}

/// One `moof` + `mdat`, as shared chunks: the header (the `moof` and the `mdat` box
/// header) first, then zero-copy slices of the tag bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The bytes, to be written in order.
    pub chunks: Vec<Bytes>,
    /// The `mfhd` sequence number (1, 2, … per fragmenter).
    pub sequence: u32,
    /// DTS (ms) of the first sample of the track that times the fragment: video, unless
    /// the fragment has no video or its first video sample is more than
    /// [`VIDEO_STALL_MS`] older than the audio (its first audio sample, or without one the
    /// end of the audio before it since the init segment), then audio; a fragment of such
    /// stale video alone starts where the audio ends and lasts 0 ms. The scanner times the
    /// file by the same rule ([`FragmentInfo::track_id`](super::FragmentInfo::track_id)),
    /// so a recording's VOD segments have these times.
    pub start_ms: u64,
    /// Duration (ms) of that track's samples.
    pub duration_ms: u32,
    /// Whether a decoder can start here: it starts with a video keyframe, or has no video.
    pub independent: bool,
    /// The first fragment of a new source (after [`Tag::discontinuity`]) or of a new
    /// codec configuration.
    pub discontinuity: bool,
    /// The first fragment of a segment (see [`FragmenterConfig::segment_ms`]).
    pub starts_segment: bool,
}

impl Fragment {
    /// Total size in bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// Whether there are no bytes (never true for a fragment the fragmenter made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// End (ms) of the track that times the fragment: `start_ms + duration_ms`.
    pub fn end_ms(&self) -> u64 {
        self.start_ms + u64::from(self.duration_ms)
    }

    /// The bytes in one buffer (copies; for tests and small tools).
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// What a [`Fragmenter`] produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// An init segment (`ftyp` + `moov`) for the fragments that follow.
    Init(Bytes),
    /// A fragment.
    Fragment(Fragment),
}

impl Output {
    /// The bytes, as chunks to be written in order.
    pub fn chunks(&self) -> &[Bytes] {
        match self {
            Output::Init(b) => std::slice::from_ref(b),
            Output::Fragment(f) => &f.chunks,
        }
    }

    /// Total size in bytes.
    pub fn len(&self) -> usize {
        self.chunks().iter().map(Bytes::len).sum()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The chunks of a fragmented MP4 file made of `outputs` in order (init segments and
/// fragments as they came): what a recording writes.
pub fn file_chunks<'a>(outputs: impl IntoIterator<Item = &'a Output>) -> Vec<Bytes> {
    outputs
        .into_iter()
        .flat_map(|o| o.chunks().iter().cloned())
        .collect()
}

/// Counters of a [`Fragmenter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmenterStats {
    /// Tags given to [`Fragmenter::handle_tag`].
    pub tags_in: u64,
    /// Audio and video samples taken into fragments.
    pub samples: u64,
    /// Tags of codecs we cannot put in MP4 (VP6, AV1, MP3, Opus, …), headers and frames.
    pub unsupported: u64,
    /// Unreadable tags: truncated headers, malformed decoder configurations, empty frames.
    pub invalid: u64,
    /// Frames dropped because no matching sequence header came before them.
    pub no_config: u64,
    /// Init segments produced.
    pub inits: u64,
    /// Fragments produced.
    pub fragments: u64,
    /// Fragments closed early by [`FragmenterConfig::max_fragment_bytes`] or
    /// [`FragmenterConfig::max_fragment_ms`], and segments cut without a keyframe by
    /// [`FragmenterConfig::max_segment_ms`].
    pub forced: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

#[derive(Clone, Debug)]
struct Sample {
    dts_ms: u64,
    /// DTS in track ticks.
    ticks: u64,
    duration: u32,
    duration_ms: u32,
    composition_offset: i32,
    sync: bool,
    data: Bytes,
}

#[derive(Clone, Debug, Default)]
struct TrackState {
    /// The newest sample, whose duration is not known yet.
    held: Option<Sample>,
    /// Samples of the open fragment.
    samples: Vec<Sample>,
    /// Bytes in `samples`.
    bytes: usize,
    /// The last duration computed (ticks, ms), used when flushing.
    last_duration: Option<(u32, u32)>,
    /// The newest DTS (ms); later samples are clamped to it so time never goes back.
    last_dts_ms: Option<u64>,
}

/// Flags of the fragment being gathered.
#[derive(Clone, Copy, Debug, Default)]
struct OpenFlags {
    starts_segment: bool,
    discontinuity: bool,
}

/// Turns one viewer's FLV tags into fragmented MP4 (see the [`fmp4`](super) module).
///
/// A sample's duration is the next sample's DTS minus its own, so the last sample of each
/// track is held back until the next one of that track arrives. Fragment boundaries are
/// decided when a sample of the leading track arrives: video when the source sends video,
/// audio otherwise (and while video has stalled for [`VIDEO_STALL_MS`]). Each track has
/// its own `tfdt`, so a fragment's audio may start a few milliseconds before its video.
///
/// Sans-IO: feed tags with [`Fragmenter::handle_tag`], take [`Output`]s with
/// [`Fragmenter::poll_output`], call [`Fragmenter::flush`] at the end of the stream.
#[derive(Debug)]
pub struct Fragmenter {
    config: FragmenterConfig,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// The configuration changed since the last init segment.
    init_due: bool,
    current_init: Option<Bytes>,
    vt: TrackState,
    at: TrackState,
    sequence: u32,
    open: OpenFlags,
    segment_start_ms: Option<u64>,
    /// A video frame arrived since the last restart (source change or new configuration).
    video_seen: bool,
    /// End (ticks) of the audio in the fragments since the last init segment: where the
    /// audio is for a fragment without any (see [`Fragment::start_ms`]).
    audio_end_ticks: Option<u64>,
    out: VecDeque<Output>,
    stats: FragmenterStats,
}

impl Fragmenter {
    /// A fragmenter with the given configuration. Limits are made consistent: at most
    /// 1 GiB per fragment, `max_segment_ms` at least `segment_ms`, and no zero caps.
    pub fn new(mut config: FragmenterConfig) -> Fragmenter {
        config.max_fragment_bytes = config.max_fragment_bytes.clamp(1, 1 << 30);
        config.max_segment_ms = config.max_segment_ms.max(config.segment_ms).max(1);
        config.max_fragment_ms = config.max_fragment_ms.max(1);
        Fragmenter {
            config,
            video: None,
            audio: None,
            init_due: false,
            current_init: None,
            vt: TrackState::default(),
            at: TrackState::default(),
            sequence: 0,
            open: OpenFlags {
                starts_segment: true,
                discontinuity: false,
            },
            segment_start_ms: None,
            video_seen: false,
            audio_end_ticks: None,
            out: VecDeque::new(),
            stats: FragmenterStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FragmenterConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> FragmenterStats {
        self.stats
    }

    /// The current video configuration, if any.
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.as_ref()
    }

    /// The current audio configuration, if any.
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    /// The last init segment produced.
    pub fn current_init(&self) -> Option<&Bytes> {
        self.current_init.as_ref()
    }

    /// The RFC 6381 codecs of the current configuration, comma-separated (for an MSE
    /// `addSourceBuffer` type or an HLS `CODECS` attribute), e.g. `avc1.64001f,mp4a.40.2`.
    pub fn codecs(&self) -> Option<String> {
        let list: Vec<String> = self
            .video
            .iter()
            .map(VideoConfig::codec_string)
            .chain(self.audio.iter().map(AudioConfig::codec_string))
            .collect();
        (!list.is_empty()).then(|| list.join(","))
    }

    /// Sample bytes held back (not yet in an output): bounded by
    /// [`FragmenterConfig::max_fragment_bytes`] plus one sample per track.
    pub fn pending_bytes(&self) -> usize {
        [&self.vt, &self.at]
            .iter()
            .map(|t| t.bytes + t.held.as_ref().map_or(0, |s| s.data.len()))
            .sum()
    }

    /// Where the timeline of what it took ends (ms): the newest sample plus its duration
    /// (0 before any sample). A source continuing the stream after a gap starts here.
    pub fn end_ms(&self) -> u64 {
        [&self.vt, &self.at]
            .into_iter()
            .filter_map(|t| {
                let last = t.last_duration.map_or(0, |(_, ms)| u64::from(ms));
                t.last_dts_ms.map(|d| d + last)
            })
            .max()
            .unwrap_or(0)
    }

    /// The next output, oldest first. Outputs queue up until polled: poll after each
    /// [`Fragmenter::handle_tag`] and [`Fragmenter::flush`].
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Takes one tag. Script data is ignored; unreadable or unsupported tags are counted
    /// in [`FragmenterStats`] and skipped.
    pub fn handle_tag(&mut self, tag: &Tag) {
        self.stats.tags_in += 1;
        if tag.discontinuity {
            self.restart(true);
        }
        match tag.kind {
            TagKind::Video => self.video_tag(tag),
            TagKind::Audio => self.audio_tag(tag),
            TagKind::Script => {}
        }
    }

    /// Emits everything held back: the last sample of each track (with the previous
    /// sample's duration, or a default) and the open fragment. Call it at the end of the
    /// stream.
    pub fn flush(&mut self) {
        let video_default = (
            DEFAULT_VIDEO_DURATION_MS * (VIDEO_TIMESCALE / 1000),
            DEFAULT_VIDEO_DURATION_MS,
        );
        let rate = self.audio.as_ref().map_or(48_000, |a| a.sample_rate);
        let audio_default = (
            AAC_FRAME_SAMPLES,
            u32::try_from(u64::from(AAC_FRAME_SAMPLES) * 1000 / u64::from(rate.max(1)))
                .unwrap_or(0),
        );
        for (track, default) in [(&mut self.vt, video_default), (&mut self.at, audio_default)] {
            if let Some(mut h) = track.held.take() {
                let (d, d_ms) = track.last_duration.unwrap_or(default);
                h.duration = d;
                h.duration_ms = d_ms;
                track.bytes += h.data.len();
                track.samples.push(h);
            }
        }
        self.close_fragment();
    }

    /// Ends the current run: flushes, and the next fragment starts a segment (marked as a
    /// discontinuity if `discontinuity` and something was produced before).
    fn restart(&mut self, discontinuity: bool) {
        self.flush();
        self.open.starts_segment = true;
        if discontinuity && self.stats.inits > 0 {
            self.open.discontinuity = true;
        }
        self.segment_start_ms = None;
        self.video_seen = false;
    }

    fn video_tag(&mut self, tag: &Tag) {
        let Ok(info) = video_info(&tag.data) else {
            self.stats.invalid += 1;
            return;
        };
        let payload = tag.data.slice(info.header_len.min(tag.data.len())..);
        let format = match info.codec {
            VideoCodec::Avc => Some(VideoFormat::Avc),
            VideoCodec::Hevc => Some(VideoFormat::Hevc),
            _ => None,
        };
        match info.packet {
            VideoPacketType::SequenceHeader => {
                let config = match format {
                    Some(VideoFormat::Avc) => VideoConfig::avc(payload),
                    Some(VideoFormat::Hevc) => VideoConfig::hevc(payload),
                    None => {
                        // A codec we cannot carry: the old configuration no longer applies.
                        self.stats.unsupported += 1;
                        self.set_video(None);
                        return;
                    }
                };
                match config {
                    Some(c) => self.set_video(Some(c)),
                    None => self.stats.invalid += 1,
                }
            }
            VideoPacketType::Frame => {
                let Some(format) = format else {
                    self.stats.unsupported += 1;
                    return;
                };
                if self.video.as_ref().map(|v| v.format) != Some(format) {
                    self.stats.no_config += 1;
                    return;
                }
                if payload.is_empty() {
                    self.stats.invalid += 1;
                    return;
                }
                self.emit_init_if_due();
                let dts_ms = clamp_dts(&mut self.vt, tag.timestamp_ms);
                let ticks_per_ms = VIDEO_TIMESCALE / 1000;
                let sample = Sample {
                    dts_ms,
                    ticks: dts_ms.saturating_mul(u64::from(ticks_per_ms)),
                    duration: 0,
                    duration_ms: 0,
                    composition_offset: info.composition_time_ms.saturating_mul(90),
                    sync: info.is_keyframe(),
                    data: payload,
                };
                self.video_seen = true;
                self.push_sample(Kind::Video, sample);
            }
            // End of sequence, metadata and command frames carry no picture.
            _ => {}
        }
    }

    fn audio_tag(&mut self, tag: &Tag) {
        let Ok(info) = audio_info(&tag.data) else {
            self.stats.invalid += 1;
            return;
        };
        if info.codec != AudioCodec::Aac {
            self.stats.unsupported += 1;
            if info.is_sequence_header() {
                self.set_audio(None);
            }
            return;
        }
        let payload = tag.data.slice(info.header_len.min(tag.data.len())..);
        match info.packet {
            AudioPacketType::SequenceHeader => match AudioConfig::aac(payload) {
                Some(c) => self.set_audio(Some(c)),
                None => self.stats.invalid += 1,
            },
            AudioPacketType::Frame => {
                let Some(rate) = self.audio.as_ref().map(|a| a.sample_rate) else {
                    self.stats.no_config += 1;
                    return;
                };
                if payload.is_empty() {
                    self.stats.invalid += 1;
                    return;
                }
                self.emit_init_if_due();
                let dts_ms = clamp_dts(&mut self.at, tag.timestamp_ms);
                let sample = Sample {
                    dts_ms,
                    ticks: dts_ms.saturating_mul(u64::from(rate)) / 1000,
                    duration: 0,
                    duration_ms: 0,
                    composition_offset: 0,
                    sync: true,
                    data: payload,
                };
                self.push_sample(Kind::Audio, sample);
            }
            _ => {}
        }
    }

    fn set_video(&mut self, config: Option<VideoConfig>) {
        if self.video != config {
            self.restart(true);
            self.video = config;
            self.init_due = true;
        }
    }

    fn set_audio(&mut self, config: Option<AudioConfig>) {
        if self.audio != config {
            self.restart(true);
            self.audio = config;
            self.init_due = true;
        }
    }

    fn emit_init_if_due(&mut self) {
        if !self.init_due || (self.video.is_none() && self.audio.is_none()) {
            return;
        }
        self.init_due = false;
        self.audio_end_ticks = None;
        let init = init_segment(self.video.as_ref(), self.audio.as_ref());
        self.current_init = Some(init.clone());
        self.stats.inits += 1;
        self.out.push_back(Output::Init(init));
    }

    fn track(&self, kind: Kind) -> &TrackState {
        match kind {
            Kind::Video => &self.vt,
            Kind::Audio => &self.at,
        }
    }

    fn track_mut(&mut self, kind: Kind) -> &mut TrackState {
        match kind {
            Kind::Video => &mut self.vt,
            Kind::Audio => &mut self.at,
        }
    }

    /// The track whose samples decide fragment boundaries.
    fn leading(&self) -> Kind {
        match (&self.video, &self.audio) {
            (Some(_), Some(_)) => {
                if !self.video_seen {
                    return Kind::Audio;
                }
                match (self.vt.last_dts_ms, self.at.last_dts_ms) {
                    (Some(v), Some(a)) if a > v.saturating_add(VIDEO_STALL_MS) => Kind::Audio,
                    _ => Kind::Video,
                }
            }
            (None, Some(_)) => Kind::Audio,
            _ => Kind::Video,
        }
    }

    fn push_sample(&mut self, kind: Kind, sample: Sample) {
        self.stats.samples += 1;
        let track = self.track_mut(kind);
        if let Some(mut held) = track.held.take() {
            let d = sample.ticks.saturating_sub(held.ticks);
            let d_ms = sample.dts_ms.saturating_sub(held.dts_ms);
            held.duration = u32::try_from(d).unwrap_or(u32::MAX);
            held.duration_ms = u32::try_from(d_ms).unwrap_or(u32::MAX);
            track.last_duration = Some((held.duration, held.duration_ms));
            track.bytes += held.data.len();
            track.samples.push(held);
        }
        if let Some(starts_segment) = self.close_decision(kind, &sample) {
            self.close_fragment();
            if starts_segment {
                self.open.starts_segment = true;
                self.segment_start_ms = None;
            }
        }
        if self.segment_start_ms.is_none() && kind == self.leading() {
            self.segment_start_ms = Some(sample.dts_ms);
        }
        self.track_mut(kind).held = Some(sample);
    }

    /// Whether the open fragment closes before `next` (a new sample of `kind`), and if so
    /// whether the next fragment starts a segment.
    fn close_decision(&mut self, kind: Kind, next: &Sample) -> Option<bool> {
        let first = [&self.vt, &self.at]
            .iter()
            .filter_map(|t| t.samples.first().map(|s| s.dts_ms))
            .min()?;
        let c = &self.config;
        let segment_elapsed = self
            .segment_start_ms
            .map_or(0, |start| next.dts_ms.saturating_sub(start));
        if kind == self.leading() {
            let track = self.track(kind);
            if let Some(first_leading) = track.samples.first() {
                let elapsed = next.dts_ms.saturating_sub(first_leading.dts_ms);
                let last = track.last_duration.map_or(0, |d| u64::from(d.1));
                let can_start_segment = kind == Kind::Audio || next.sync;
                if can_start_segment && segment_elapsed + last / 2 >= u64::from(c.segment_ms) {
                    return Some(true);
                }
                if segment_elapsed >= u64::from(c.max_segment_ms) {
                    self.stats.forced += 1;
                    return Some(true);
                }
                let target = u64::from(c.fragment_ms);
                if target == 0 || elapsed >= target || elapsed + last > target {
                    return Some(false);
                }
            }
        }
        let bytes = self.vt.bytes + self.at.bytes;
        let span = next.dts_ms.saturating_sub(first);
        if bytes >= self.config.max_fragment_bytes || span >= u64::from(self.config.max_fragment_ms)
        {
            self.stats.forced += 1;
            return Some(segment_elapsed >= u64::from(self.config.max_segment_ms));
        }
        None
    }

    /// Turns the gathered samples into a fragment (nothing if there are none).
    fn close_fragment(&mut self) {
        let video = std::mem::take(&mut self.vt.samples);
        let audio = std::mem::take(&mut self.at.samples);
        self.vt.bytes = 0;
        self.at.bytes = 0;
        if video.is_empty() && audio.is_empty() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1).max(1);
        // Timed by the rule the scanner applies to the file (its `tfdt`s), not by which
        // track leads the cutting right now: the two must agree, and the samples of a
        // track that lags by more than a stall would time the fragment in the past.
        let rate = self.audio.as_ref().map_or(0, |a| a.sample_rate);
        let audio_before = self.audio_end_ticks;
        if let Some(first) = audio.first() {
            let total: u64 = audio.iter().map(|s| u64::from(s.duration)).sum();
            self.audio_end_ticks = Some(first.ticks.saturating_add(total));
        }
        let video_ms = video.first().map(|s| ticks_to_ms(s.ticks, VIDEO_TIMESCALE));
        let audio_at = audio.first().map(|s| s.ticks).or(audio_before);
        let audio_ms = audio_at.map(|t| ticks_to_ms(t, rate));
        let span = |samples: &[Sample]| match (samples.first(), samples.last()) {
            (Some(f), Some(l)) => (f.dts_ms, l.dts_ms + u64::from(l.duration_ms)),
            _ => (0, 0),
        };
        let (start_ms, end_ms) = if !timed_by_audio(video_ms, audio_ms) {
            span(&video)
        } else if audio.is_empty() {
            // Stale video alone sits, without duration, where the audio ends.
            let at = audio_ms.unwrap_or(0);
            (at, at)
        } else {
            span(&audio)
        };
        let entries = |samples: &[Sample]| -> Vec<SampleEntry> {
            samples
                .iter()
                .map(|s| SampleEntry {
                    duration: s.duration,
                    size: u32::try_from(s.data.len()).unwrap_or(u32::MAX),
                    sync: s.sync,
                    composition_offset: s.composition_offset,
                })
                .collect()
        };
        let video_entries = entries(&video);
        let audio_entries = entries(&audio);
        let mut runs = Vec::with_capacity(2);
        if let Some(first) = video.first() {
            runs.push(Run {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: first.ticks,
                samples: &video_entries,
                video: true,
            });
        }
        if let Some(first) = audio.first() {
            runs.push(Run {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: first.ticks,
                samples: &audio_entries,
                video: false,
            });
        }
        let header = fragment_header(self.sequence, &runs);
        let mut chunks = Vec::with_capacity(1 + video.len() + audio.len());
        chunks.push(header);
        chunks.extend(video.iter().chain(audio.iter()).map(|s| s.data.clone()));
        let fragment = Fragment {
            chunks,
            sequence: self.sequence,
            start_ms,
            duration_ms: u32::try_from(end_ms.saturating_sub(start_ms)).unwrap_or(u32::MAX),
            independent: video.first().is_none_or(|s| s.sync),
            discontinuity: self.open.discontinuity,
            starts_segment: self.open.starts_segment,
        };
        self.open = OpenFlags::default();
        self.stats.fragments += 1;
        self.out.push_back(Output::Fragment(fragment));
    }
}

/// The tag's timestamp, never earlier than the track's previous one.
fn clamp_dts(track: &mut TrackState, ts: u32) -> u64 {
    let dts = track
        .last_dts_ms
        .map_or(u64::from(ts), |l| l.max(u64::from(ts)));
    track.last_dts_ms = Some(dts);
    dts
}
