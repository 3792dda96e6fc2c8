//! Indexing a fragmented MP4 file: top-level boxes, init segments, fragments and VOD
//! segments. Untrusted input: every size is checked against its container and the file,
//! loops are bounded by the bytes they read, and nothing is allocated from a size field.

use std::ops::Range;

use super::{Fmp4Error, VIDEO_STALL_MS, fourcc_text};

/// The largest `moov` or `moof` box the scanner loads (16 MiB); larger ones are refused
/// with [`Fmp4Error::BoxTooLarge`]. `mdat` payloads are never loaded, whatever their size.
pub const MAX_LOADED_BOX: u64 = 16 << 20;

/// The VOD segment target used by [`scan_fragments`] and [`FileScanner::finish`] (ms).
pub const DEFAULT_VOD_SEGMENT_MS: u32 = 2_000;

/// What a track carries, from its `hdlr` box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    /// Handler `vide`.
    Video,
    /// Handler `soun`.
    Audio,
    /// Another handler type.
    Other([u8; 4]),
}

/// One track of an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInfo {
    /// `track_ID`.
    pub id: u32,
    /// What it carries.
    pub kind: TrackKind,
    /// Ticks per second of its media time.
    pub timescale: u32,
    /// `trex` default sample duration (ticks).
    pub default_duration: u32,
    /// `trex` default sample flags.
    pub default_flags: u32,
}

/// One init segment (`ftyp` + `moov`) and the period of the file it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitInfo {
    /// Byte range: from the `ftyp` (or the `moov` if there is no `ftyp`) to the end of the
    /// `moov`.
    pub range: Range<u64>,
    /// The tracks with a non-zero timescale.
    pub tracks: Vec<TrackInfo>,
}

impl InitInfo {
    /// The track that times fragments by default: the first video track, else the first
    /// audio track. A fragment without it, or whose video lags its audio by more than
    /// [`VIDEO_STALL_MS`], is timed by its audio (see [`FragmentInfo::track_id`]).
    pub fn leading_track(&self) -> Option<&TrackInfo> {
        self.first_of(TrackKind::Video)
            .or_else(|| self.first_of(TrackKind::Audio))
    }

    fn first_of(&self, kind: TrackKind) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.kind == kind)
    }

    fn track(&self, id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.id == id)
    }
}

/// One `moof` + `mdat` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Byte range from the start of the `moof` to the end of the `mdat`.
    pub range: Range<u64>,
    /// Index into [`FileIndex::inits`] of the init segment it belongs to.
    pub init: usize,
    /// The `mfhd` sequence number.
    pub sequence: u32,
    /// The track its times are from, by the rule the [`Fragmenter`](super::Fragmenter)
    /// follows for [`Fragment::start_ms`](super::Fragment::start_ms): the init's first
    /// video track, unless the fragment has no samples of it or its first video sample
    /// decodes more than [`VIDEO_STALL_MS`] before the audio (its first audio sample, or
    /// without one the end of the audio before it): then the init's first audio track. A
    /// fragment with neither is timed by the first track it has. A fragment of stale
    /// video alone starts where the audio ends, with a duration of 0.
    pub track_id: u32,
    /// That track's timescale.
    pub timescale: u32,
    /// Decode time of its first sample (ticks; `tfdt`, or the previous fragment's end).
    pub start: u64,
    /// Sum of its sample durations (ticks).
    pub duration: u64,
    /// Whether a decoder can start here: its first video sample is a sync sample, or (no
    /// video in it) its first audio sample (or that of the first track it has) is.
    pub independent: bool,
}

impl FragmentInfo {
    /// Start in milliseconds (rounded down).
    pub fn start_ms(&self) -> u64 {
        ticks_to_ms(self.start, self.timescale)
    }

    /// End (start + duration) in milliseconds (rounded down).
    pub fn end_ms(&self) -> u64 {
        ticks_to_ms(self.start.saturating_add(self.duration), self.timescale)
    }

    /// Duration in milliseconds: `end_ms - start_ms`, so consecutive fragments add up.
    pub fn duration_ms(&self) -> u64 {
        self.end_ms().saturating_sub(self.start_ms())
    }
}

/// Whether a fragment is timed by its audio rather than its video: the one rule both the
/// fragmenter and the scanner apply, so that
/// [`Fragment::start_ms`](super::Fragment::start_ms) and [`FragmentInfo::start_ms`] agree.
/// `video_ms` is the decode time of the fragment's first video sample, `audio_ms` where
/// the audio is: its first audio sample, or if it has none, the end of the audio before it
/// since the last init segment (ms, as [`ticks_to_ms`] makes them of the file's ticks;
/// `None` when there is no such sample).
///
/// Video times a fragment unless it lags the audio by more than [`VIDEO_STALL_MS`]: then
/// its video samples are old frames (a stall, or a source whose video timestamps run
/// behind its audio), and timing the fragment by them would put it seconds before the
/// fragments around it, so VOD segments cut by these times would overlap and add up to
/// more than the recording.
pub(super) fn timed_by_audio(video_ms: Option<u64>, audio_ms: Option<u64>) -> bool {
    match (video_ms, audio_ms) {
        (Some(v), Some(a)) => a > v.saturating_add(VIDEO_STALL_MS),
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

pub(super) fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    if timescale == 0 {
        return 0;
    }
    (u128::from(ticks) * 1000 / u128::from(timescale)) as u64
}

/// A run of consecutive fragments served as one HLS VOD segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VodSegment {
    /// Byte range, from its first fragment's start to its last fragment's end.
    pub range: Range<u64>,
    /// Indexes into [`FileIndex::fragments`].
    pub fragments: Range<usize>,
    /// Index into [`FileIndex::inits`].
    pub init: usize,
    /// Start (ms).
    pub start_ms: u64,
    /// Duration (ms): end of its last fragment minus start of its first.
    pub duration_ms: u64,
    /// Whether it starts with a sync sample.
    pub independent: bool,
    /// Whether it starts a new period (another init segment than the one before).
    pub discontinuity: bool,
}

/// The index of a fragmented MP4 file: what [`FileScanner`] and [`scan_fragments`] build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileIndex {
    /// The init segments in file order; a file we wrote has one unless the codec
    /// configuration changed while recording.
    pub inits: Vec<InitInfo>,
    /// The complete fragments in file order.
    pub fragments: Vec<FragmentInfo>,
    /// The fragments grouped into VOD segments (see [`FileIndex::regroup`]).
    pub segments: Vec<VodSegment>,
    /// Where unusable trailing bytes start (a box running past the end of the file, a
    /// `moof` without its `mdat`), if any: the mark of a recording cut short.
    pub truncated_at: Option<u64>,
    /// Fragments skipped: a `moof` not followed by an `mdat`, or before any init segment.
    pub skipped: u64,
}

impl FileIndex {
    /// Groups the fragments into VOD segments of about `target_ms`: a segment ends before
    /// an independent fragment once it lasts at least 90 % of `target_ms`, before a new
    /// init segment, and (without independent fragments) once it lasts 3 × `target_ms`.
    pub fn regroup(&mut self, target_ms: u32) {
        let target = u64::from(target_ms.max(1));
        let mut segments: Vec<VodSegment> = Vec::new();
        for (i, f) in self.fragments.iter().enumerate() {
            let extend = segments.last().is_some_and(|s| {
                s.init == f.init
                    && if f.independent {
                        s.duration_ms * 10 < target * 9
                    } else {
                        s.duration_ms < 3 * target
                    }
            });
            match segments.last_mut() {
                Some(s) if extend => {
                    s.range.end = f.range.end;
                    s.fragments.end = i + 1;
                    s.duration_ms = f.end_ms().saturating_sub(s.start_ms);
                }
                last => {
                    let discontinuity = last.is_some_and(|s| s.init != f.init);
                    segments.push(VodSegment {
                        range: f.range.clone(),
                        fragments: i..i + 1,
                        init: f.init,
                        start_ms: f.start_ms(),
                        duration_ms: f.duration_ms(),
                        independent: f.independent,
                        discontinuity,
                    });
                }
            }
        }
        self.segments = segments;
    }

    /// Total duration of the segments (ms).
    pub fn duration_ms(&self) -> u64 {
        self.segments.iter().map(|s| s.duration_ms).sum()
    }

    /// End of the last complete fragment: the usable length of the file.
    pub fn valid_len(&self) -> u64 {
        let init_end = self.inits.last().map_or(0, |i| i.range.end);
        self.fragments
            .last()
            .map_or(init_end, |f| f.range.end.max(init_end))
    }
}

/// Indexes a whole fragmented MP4 file held in memory. See [`FileScanner`].
pub fn scan_fragments(data: &[u8]) -> Result<FileIndex, Fmp4Error> {
    let mut scanner = FileScanner::new(data.len() as u64);
    while let Some(range) = scanner.wanted() {
        let chunk = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(s, e)| data.get(s..e))
            .unwrap_or(&[]);
        scanner.push(range.start, chunk)?;
    }
    scanner.finish()
}

#[derive(Clone, Copy, Debug)]
enum Want {
    Header,
    Body {
        box_type: [u8; 4],
        header_len: u64,
        size: u64,
    },
}

/// A moof waiting for its mdat.
#[derive(Clone, Debug)]
struct PendingMoof {
    offset: u64,
    sequence: u32,
    trafs: Vec<Traf>,
}

#[derive(Clone, Debug, Default)]
struct Traf {
    track_id: u32,
    base_time: Option<u64>,
    duration: u64,
    samples: u64,
    first_flags: Option<u32>,
}

/// One traf of a complete fragment, with the times of its track.
struct TimedTraf<'a> {
    track: &'a TrackInfo,
    /// Decode time of its first sample (ticks).
    start: u64,
    /// Sum of its sample durations (ticks).
    duration: u64,
    /// Whether its first sample is a sync sample.
    independent: bool,
}

/// Sans-IO indexer of a fragmented MP4 file of known length.
///
/// Ask [`FileScanner::wanted`] for the byte range to read next, read it and give it to
/// [`FileScanner::push`]; repeat until `wanted` returns `None`, then call
/// [`FileScanner::finish`]. It reads box headers (16 bytes) and whole `moov`/`moof` boxes
/// only, skipping `mdat` payloads, so indexing a long recording reads a small fraction of
/// it.
#[derive(Clone, Debug)]
pub struct FileScanner {
    file_len: u64,
    pos: u64,
    want: Want,
    done: bool,
    ftyp_at: Option<u64>,
    moof: Option<PendingMoof>,
    /// Next decode time per track id, for fragments without `tfdt`.
    next_time: Vec<(u32, u64)>,
    index: FileIndex,
}

impl FileScanner {
    /// A scanner for a file of `file_len` bytes.
    pub fn new(file_len: u64) -> FileScanner {
        FileScanner {
            file_len,
            pos: 0,
            want: Want::Header,
            done: file_len == 0,
            ftyp_at: None,
            moof: None,
            next_time: Vec::new(),
            index: FileIndex::default(),
        }
    }

    /// The byte range to read next, `None` when the scan is over.
    pub fn wanted(&self) -> Option<Range<u64>> {
        if self.done {
            return None;
        }
        Some(match self.want {
            Want::Header => self.pos..self.file_len.min(self.pos + 16),
            Want::Body { size, .. } => self.pos..self.pos + size,
        })
    }

    /// Takes the bytes of the range [`FileScanner::wanted`] returned, read from
    /// `offset`. Fewer bytes than asked (a file that shrank) end the scan there, as a
    /// truncated file.
    pub fn push(&mut self, offset: u64, data: &[u8]) -> Result<(), Fmp4Error> {
        let Some(range) = self.wanted() else {
            return Ok(());
        };
        if offset != range.start {
            return Err(Fmp4Error::UnexpectedOffset {
                wanted: range.start,
                got: offset,
            });
        }
        let len = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        let Some(data) = data.get(..len) else {
            self.truncate();
            return Ok(());
        };
        match self.want {
            Want::Header => self.header(data),
            Want::Body {
                box_type,
                header_len,
                size,
            } => {
                let payload = data.get(header_len as usize..).unwrap_or(&[]);
                let start = self.pos;
                match &box_type {
                    b"moov" => self.moov(start, payload, header_len)?,
                    _ => self.moof(start, payload, header_len)?,
                }
                self.pos = start + size;
                self.want = Want::Header;
                self.done = self.pos >= self.file_len;
                Ok(())
            }
        }
    }

    fn truncate(&mut self) {
        let at = self.moof.take().map_or(self.pos, |m| m.offset);
        self.index.truncated_at = Some(at);
        self.done = true;
    }

    fn header(&mut self, h: &[u8]) -> Result<(), Fmp4Error> {
        let remaining = self.file_len - self.pos;
        if h.len() < 8 {
            // Fewer than 8 bytes left: a box header cut short.
            self.truncate();
            return Ok(());
        }
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let box_type = [h[4], h[5], h[6], h[7]];
        let (size, header_len) = match size32 {
            0 => (remaining, 8),
            1 => match h.get(8..16) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0; 8])), 16),
                None => {
                    self.truncate();
                    return Ok(());
                }
            },
            n => (u64::from(n), 8),
        };
        if size < header_len {
            return Err(invalid(self.pos, &box_type, "size smaller than its header"));
        }
        if size > remaining {
            self.truncate();
            return Ok(());
        }
        match &box_type {
            b"moov" | b"moof" => {
                if size > MAX_LOADED_BOX {
                    return Err(Fmp4Error::BoxTooLarge {
                        offset: self.pos,
                        box_type: fourcc_text(&box_type),
                        size,
                    });
                }
                if &box_type == b"moof" && self.moof.take().is_some() {
                    self.index.skipped += 1;
                }
                self.want = Want::Body {
                    box_type,
                    header_len,
                    size,
                };
                return Ok(());
            }
            b"ftyp" => {
                self.ftyp_at = Some(self.pos);
                if self.moof.take().is_some() {
                    self.index.skipped += 1;
                }
            }
            b"mdat" => {
                if let Some(moof) = self.moof.take() {
                    self.fragment(moof, self.pos + size);
                }
            }
            _ => {
                if self.moof.take().is_some() {
                    self.index.skipped += 1;
                }
            }
        }
        self.pos += size;
        self.done = self.pos >= self.file_len;
        Ok(())
    }

    fn moov(&mut self, offset: u64, payload: &[u8], header_len: u64) -> Result<(), Fmp4Error> {
        let mut tracks = Vec::new();
        let mut trex = Vec::new();
        for_each_child(payload, offset + header_len, &mut |t, body, at| {
            match &t {
                b"trak" => {
                    if let Some(track) = parse_trak(body, at)? {
                        tracks.push(track);
                    }
                }
                b"mvex" => for_each_child(body, at, &mut |t, body, at| {
                    if &t == b"trex" {
                        let mut c = Cursor::new(body, at, b"trex");
                        c.skip(4)?; // version, flags
                        let id = c.u32()?;
                        c.skip(4)?; // default_sample_description_index
                        let duration = c.u32()?;
                        c.skip(4)?; // default_sample_size
                        let flags = c.u32()?;
                        trex.push((id, duration, flags));
                    }
                    Ok(())
                })?,
                _ => {}
            }
            Ok(())
        })?;
        for track in &mut tracks {
            if let Some(&(_, duration, flags)) = trex.iter().find(|(id, _, _)| *id == track.id) {
                track.default_duration = duration;
                track.default_flags = flags;
            }
        }
        tracks.retain(|t| t.timescale > 0);
        if !tracks
            .iter()
            .any(|t| matches!(t.kind, TrackKind::Video | TrackKind::Audio))
        {
            return Err(Fmp4Error::NoTracks { offset });
        }
        let start = self.ftyp_at.take().unwrap_or(offset);
        let end = offset + header_len + payload.len() as u64;
        self.index.inits.push(InitInfo {
            range: start..end,
            tracks,
        });
        self.next_time.clear();
        Ok(())
    }

    fn moof(&mut self, offset: u64, payload: &[u8], header_len: u64) -> Result<(), Fmp4Error> {
        let mut sequence = 0;
        let mut trafs = Vec::new();
        for_each_child(payload, offset + header_len, &mut |t, body, at| {
            match &t {
                b"mfhd" => {
                    let mut c = Cursor::new(body, at, b"mfhd");
                    c.skip(4)?;
                    sequence = c.u32()?;
                }
                b"traf" => trafs.push(parse_traf(body, at)?),
                _ => {}
            }
            Ok(())
        })?;
        self.moof = Some(PendingMoof {
            offset,
            sequence,
            trafs,
        });
        Ok(())
    }

    /// A moof and its mdat are complete.
    fn fragment(&mut self, moof: PendingMoof, end: u64) {
        let Some(init_index) = self.index.inits.len().checked_sub(1) else {
            self.index.skipped += 1;
            return;
        };
        let init = &self.index.inits[init_index];
        // Each track's first traf in the moof, with its times; unknown tracks are ignored.
        let mut timed: Vec<TimedTraf<'_>> = Vec::new();
        for traf in &moof.trafs {
            let Some(track) = init.track(traf.track_id) else {
                continue;
            };
            if timed.iter().any(|t| t.track.id == track.id) {
                continue;
            }
            let duration = if traf.duration == 0 && traf.samples > 0 {
                traf.samples
                    .saturating_mul(u64::from(track.default_duration))
            } else {
                traf.duration
            };
            let start = traf
                .base_time
                .or_else(|| {
                    self.next_time
                        .iter()
                        .find(|(id, _)| *id == track.id)
                        .map(|(_, t)| *t)
                })
                .unwrap_or(0);
            let independent = match traf.first_flags {
                Some(flags) => flags & 0x0001_0000 == 0,
                None => track.default_flags & 0x0001_0000 == 0,
            };
            timed.push(TimedTraf {
                track,
                start,
                duration,
                independent,
            });
        }
        let of = |kind: TrackKind| {
            let id = init.first_of(kind)?.id;
            timed.iter().find(|t| t.track.id == id)
        };
        let (video, audio) = (of(TrackKind::Video), of(TrackKind::Audio));
        let audio_track = init.first_of(TrackKind::Audio);
        // Where the audio is: its first sample here, else the end of the audio before.
        let audio_at = audio.map(|t| t.start).or_else(|| {
            let id = audio_track?.id;
            self.next_time
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, t)| *t)
        });
        let video_ms = video.map(|t| ticks_to_ms(t.start, t.track.timescale));
        let audio_ms = audio_at
            .zip(audio_track)
            .map(|(t, a)| ticks_to_ms(t, a.timescale));
        let timing = if timed_by_audio(video_ms, audio_ms) {
            // A fragment of stale video only sits, without duration, where the audio is.
            audio_track
                .zip(audio_at)
                .map(|(track, at)| audio.map_or((track, at, 0), |t| (track, t.start, t.duration)))
        } else {
            video.map(|t| (t.track, t.start, t.duration))
        };
        let Some((track, start, duration)) =
            timing.or_else(|| timed.first().map(|t| (t.track, t.start, t.duration)))
        else {
            self.index.skipped += 1;
            return;
        };
        let (track_id, timescale) = (track.id, track.timescale);
        let independent = video
            .or(audio)
            .or(timed.first())
            .is_none_or(|t| t.independent);
        for t in &timed {
            let next = t.start.saturating_add(t.duration);
            match self.next_time.iter_mut().find(|(id, _)| *id == t.track.id) {
                Some(s) => s.1 = next,
                None => self.next_time.push((t.track.id, next)),
            }
        }
        self.index.fragments.push(FragmentInfo {
            range: moof.offset..end,
            init: init_index,
            sequence: moof.sequence,
            track_id,
            timescale,
            start,
            duration,
            independent,
        });
    }

    /// Ends the scan. Fails if no init segment was found.
    pub fn finish(mut self) -> Result<FileIndex, Fmp4Error> {
        if let Some(moof) = self.moof.take() {
            self.index.truncated_at.get_or_insert(moof.offset);
        }
        if self.index.inits.is_empty() {
            return Err(Fmp4Error::NoInit);
        }
        self.index.regroup(DEFAULT_VOD_SEGMENT_MS);
        Ok(self.index)
    }
}

fn invalid(offset: u64, box_type: &[u8; 4], reason: &'static str) -> Fmp4Error {
    Fmp4Error::InvalidBox {
        offset,
        box_type: fourcc_text(box_type),
        reason,
    }
}

/// What [`for_each_child`] calls with each child box: type, payload, payload offset.
type ChildFn<'a> = dyn FnMut([u8; 4], &[u8], u64) -> Result<(), Fmp4Error> + 'a;

/// Calls `f(type, payload, payload_offset)` for each box in `data`, which starts at file
/// offset `base`.
fn for_each_child(data: &[u8], base: u64, f: &mut ChildFn<'_>) -> Result<(), Fmp4Error> {
    let mut pos = 0usize;
    while pos < data.len() {
        let at = base + pos as u64;
        let rest = &data[pos..];
        let Some(h) = rest.get(..8) else {
            return Err(invalid(at, b"????", "box header cut short by its parent"));
        };
        let box_type = [h[4], h[5], h[6], h[7]];
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (size, header_len) = match size32 {
            0 => (rest.len() as u64, 8usize),
            1 => match rest.get(8..16) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0; 8])), 16),
                None => return Err(invalid(at, &box_type, "large size cut short")),
            },
            n => (u64::from(n), 8),
        };
        if size < header_len as u64 {
            return Err(invalid(at, &box_type, "size smaller than its header"));
        }
        if size > rest.len() as u64 {
            return Err(invalid(at, &box_type, "box does not fit in its parent"));
        }
        let size = size as usize;
        f(box_type, &rest[header_len..size], at + header_len as u64)?;
        pos += size;
    }
    Ok(())
}

/// Reads big-endian fields of one box's payload, failing with the box's name.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    offset: u64,
    box_type: &'static [u8; 4],
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], offset: u64, box_type: &'static [u8; 4]) -> Cursor<'a> {
        Cursor {
            data,
            pos: 0,
            offset,
            box_type,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fmp4Error> {
        let end = self.pos.saturating_add(n);
        let Some(b) = self.data.get(self.pos..end) else {
            return Err(invalid(self.offset, self.box_type, "contents cut short"));
        };
        self.pos = end;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), Fmp4Error> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, Fmp4Error> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Fmp4Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, Fmp4Error> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

fn parse_trak(trak: &[u8], offset: u64) -> Result<Option<TrackInfo>, Fmp4Error> {
    let mut id = None;
    let mut timescale = 0;
    let mut kind = None;
    for_each_child(trak, offset, &mut |t, body, at| {
        match &t {
            b"tkhd" => {
                let mut c = Cursor::new(body, at, b"tkhd");
                let version = c.u8()?;
                c.skip(3)?;
                c.skip(if version == 1 { 16 } else { 8 })?;
                id = Some(c.u32()?);
            }
            b"mdia" => for_each_child(body, at, &mut |t, body, at| {
                match &t {
                    b"mdhd" => {
                        let mut c = Cursor::new(body, at, b"mdhd");
                        let version = c.u8()?;
                        c.skip(3)?;
                        c.skip(if version == 1 { 16 } else { 8 })?;
                        timescale = c.u32()?;
                    }
                    b"hdlr" => {
                        let mut c = Cursor::new(body, at, b"hdlr");
                        c.skip(8)?;
                        let h = c.take(4)?;
                        kind = Some(match h {
                            b"vide" => TrackKind::Video,
                            b"soun" => TrackKind::Audio,
                            _ => TrackKind::Other([h[0], h[1], h[2], h[3]]),
                        });
                    }
                    _ => {}
                }
                Ok(())
            })?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(match (id, kind) {
        (Some(id), Some(kind)) => Some(TrackInfo {
            id,
            kind,
            timescale,
            default_duration: 0,
            default_flags: 0,
        }),
        _ => None,
    })
}

fn parse_traf(traf: &[u8], offset: u64) -> Result<Traf, Fmp4Error> {
    let mut out = Traf::default();
    let mut default_duration = None;
    let mut default_flags = None;
    // tfhd comes first in a well-formed traf, but we collect the runs and apply the
    // defaults afterwards so the order does not matter.
    let mut runs: Vec<Trun> = Vec::new();
    for_each_child(traf, offset, &mut |t, body, at| {
        match &t {
            b"tfhd" => {
                let mut c = Cursor::new(body, at, b"tfhd");
                let flags = c.u32()? & 0x00ff_ffff;
                out.track_id = c.u32()?;
                if flags & 0x01 != 0 {
                    c.skip(8)?; // base_data_offset
                }
                if flags & 0x02 != 0 {
                    c.skip(4)?; // sample_description_index
                }
                if flags & 0x08 != 0 {
                    default_duration = Some(c.u32()?);
                }
                if flags & 0x10 != 0 {
                    c.skip(4)?; // default_sample_size
                }
                if flags & 0x20 != 0 {
                    default_flags = Some(c.u32()?);
                }
            }
            b"tfdt" => {
                let mut c = Cursor::new(body, at, b"tfdt");
                let version = c.u8()?;
                c.skip(3)?;
                out.base_time = Some(if version == 1 {
                    c.u64()?
                } else {
                    u64::from(c.u32()?)
                });
            }
            b"trun" => runs.push(parse_trun(body, at)?),
            _ => {}
        }
        Ok(())
    })?;
    for (i, run) in runs.into_iter().enumerate() {
        out.samples = out.samples.saturating_add(run.count);
        let implicit = (run.count - run.with_duration)
            .saturating_mul(u64::from(default_duration.unwrap_or(0)));
        out.duration = out
            .duration
            .saturating_add(run.explicit_duration)
            .saturating_add(implicit);
        if i == 0 && run.count > 0 {
            out.first_flags = run.first_flags.or(run.sample_flags).or(default_flags);
        }
    }
    Ok(out)
}

/// What a `trun` says about timing and sync.
struct Trun {
    count: u64,
    /// Sum of the explicit sample durations.
    explicit_duration: u64,
    /// Samples with an explicit duration (all or none).
    with_duration: u64,
    /// `first_sample_flags`.
    first_flags: Option<u32>,
    /// The first sample's own flags.
    sample_flags: Option<u32>,
}

fn parse_trun(body: &[u8], offset: u64) -> Result<Trun, Fmp4Error> {
    let mut c = Cursor::new(body, offset, b"trun");
    let flags = c.u32()? & 0x00ff_ffff;
    let count = u64::from(c.u32()?);
    if flags & 0x001 != 0 {
        c.skip(4)?; // data_offset
    }
    let first_flags = if flags & 0x004 != 0 {
        Some(c.u32()?)
    } else {
        None
    };
    let fields = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count() as u64;
    let entry = fields * 4;
    if entry == 0 {
        return Ok(Trun {
            count,
            explicit_duration: 0,
            with_duration: 0,
            first_flags,
            sample_flags: None,
        });
    }
    // Each sample has `entry` bytes in the box, so the loop below is bounded by its size.
    if count.saturating_mul(entry) > c.remaining() as u64 {
        return Err(invalid(offset, b"trun", "sample count exceeds the box"));
    }
    let mut total = 0u64;
    let mut sample_flags = None;
    for i in 0..count {
        if flags & 0x100 != 0 {
            total += u64::from(c.u32()?);
        }
        if flags & 0x200 != 0 {
            c.skip(4)?;
        }
        if flags & 0x400 != 0 {
            let f = c.u32()?;
            if i == 0 {
                sample_flags = Some(f);
            }
        }
        if flags & 0x800 != 0 {
            c.skip(4)?;
        }
    }
    Ok(Trun {
        count,
        explicit_duration: total,
        with_duration: if flags & 0x100 != 0 { count } else { 0 },
        first_flags,
        sample_flags,
    })
}
