//! Tests of the fragmenter and the scanner: box structure checked by an independent box
//! walker written here, timing, cutting rules, bounds, and a round trip through the
//! scanner; real media from the ffmpeg-made fixture (`tests/data/testsrc.flv`).

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::flv::{Tag, TagKind, parse_flv};

const FIXTURE: &[u8] = include_bytes!("../../tests/data/testsrc.flv");

pub(crate) fn fixture_tags() -> Vec<Tag> {
    parse_flv(FIXTURE).expect("fixture parses").1
}

/// The fixture's AVC sequence header tag body (320x240 High profile).
pub(crate) fn avc_header() -> Bytes {
    fixture_tags()
        .into_iter()
        .find(|t| t.kind == TagKind::Video && t.data.get(1) == Some(&0))
        .expect("video sequence header")
        .data
}

/// AAC LC sequence header: 44.1 kHz stereo.
pub(crate) fn aac_header_44k() -> Bytes {
    Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10])
}

/// AAC LC sequence header: 48 kHz stereo.
pub(crate) fn aac_header_48k() -> Bytes {
    Bytes::from_static(&[0xaf, 0x00, 0x11, 0x90])
}

/// A legacy AVC frame tag body: header, then one fake length-prefixed NAL unit whose
/// bytes identify the frame (`marker`) and whose size is `size` bytes in total.
pub(crate) fn avc_frame(key: bool, cts_ms: i32, marker: u8, size: usize) -> Bytes {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 0x01];
    v.extend_from_slice(&cts_ms.to_be_bytes()[1..]);
    let nal = size.max(5) - 4;
    v.extend_from_slice(&(nal as u32).to_be_bytes());
    v.push(if key { 0x65 } else { 0x41 });
    v.resize(5 + 4 + nal, marker);
    Bytes::from(v)
}

pub(crate) fn aac_frame(marker: u8, size: usize) -> Bytes {
    let mut v = vec![0xaf, 0x01];
    v.resize(2 + size.max(1), marker);
    Bytes::from(v)
}

/// Headers, then `duration_ms` of 25 fps video (keyframe every `gop_ms`) and AAC at
/// 44.1 kHz (1024-sample frames, timestamps in ms as FLV rounds them), interleaved by
/// time, starting at `start_ms`.
pub(crate) fn av_stream(start_ms: u32, duration_ms: u32, gop_ms: u32, audio: bool) -> Vec<Tag> {
    let mut tags = vec![Tag::video(start_ms, avc_header())];
    if audio {
        tags.push(Tag::audio(start_ms, aac_header_44k()));
    }
    let mut media = Vec::new();
    let mut t = 0;
    let mut n = 0u32;
    while t < duration_ms {
        let key = t % gop_ms == 0;
        media.push(Tag::video(
            start_ms + t,
            avc_frame(key, 40, (n % 251) as u8, 300),
        ));
        n += 1;
        t = n * 40;
    }
    if audio {
        let mut k = 0u64;
        loop {
            let ts = (k * 1024 * 1000 / 44100) as u32;
            if ts >= duration_ms {
                break;
            }
            media.push(Tag::audio(start_ms + ts, aac_frame((k % 251) as u8, 100)));
            k += 1;
        }
    }
    media.sort_by_key(|t| t.timestamp_ms);
    tags.extend(media);
    tags
}

pub(crate) fn run(config: FragmenterConfig, tags: &[Tag], flush: bool) -> Vec<Output> {
    let mut f = Fragmenter::new(config);
    let mut out = Vec::new();
    for tag in tags {
        f.handle_tag(tag);
        while let Some(o) = f.poll_output() {
            out.push(o);
        }
    }
    if flush {
        f.flush();
        while let Some(o) = f.poll_output() {
            out.push(o);
        }
    }
    out
}

fn fragments(outputs: &[Output]) -> Vec<&Fragment> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Fragment(f) => Some(f),
            Output::Init(_) => None,
        })
        .collect()
}

fn inits(outputs: &[Output]) -> Vec<&Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Init(b) => Some(b),
            Output::Fragment(_) => None,
        })
        .collect()
}

// ---- An independent box walker, for checking what the writer produced. ----

#[derive(Debug)]
struct Bx {
    kind: String,
    start: usize,
    /// Offset of the payload (after the header).
    body: usize,
    end: usize,
    children: Vec<Bx>,
}

impl Bx {
    fn child(&self, kind: &str) -> &Bx {
        self.children
            .iter()
            .find(|c| c.kind == kind)
            .unwrap_or_else(|| panic!("{} has no {kind}", self.kind))
    }
    fn all(&self, kind: &str) -> Vec<&Bx> {
        self.children.iter().filter(|c| c.kind == kind).collect()
    }
    fn path(&self, path: &[&str]) -> &Bx {
        path.iter().fold(self, |b, k| b.child(k))
    }
}

/// Payload bytes to skip before the children of container-like boxes.
fn children_offset(kind: &str) -> Option<usize> {
    match kind {
        "moov" | "trak" | "mdia" | "minf" | "stbl" | "mvex" | "moof" | "traf" | "dinf" => Some(0),
        "stsd" | "dref" => Some(8),
        "avc1" | "hvc1" => Some(78),
        "mp4a" => Some(28),
        _ => None,
    }
}

fn walk(data: &[u8], start: usize, end: usize) -> Vec<Bx> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
        assert!(size >= 8, "box {kind} at {pos} has size {size}");
        assert!(pos + size <= end, "box {kind} at {pos} overruns its parent");
        let children = match children_offset(&kind) {
            Some(skip) => walk(data, pos + 8 + skip, pos + size),
            None => Vec::new(),
        };
        out.push(Bx {
            kind,
            start: pos,
            body: pos + 8,
            end: pos + size,
            children,
        });
        pos += size;
    }
    assert_eq!(pos, end, "children do not fill their parent exactly");
    out
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(d[at..at + 4].try_into().unwrap())
}

fn be64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().unwrap())
}

#[derive(Debug, PartialEq)]
struct TrunSample {
    duration: u32,
    size: u32,
    flags: Option<u32>,
    cto: Option<i32>,
}

#[derive(Debug)]
struct TrafView {
    track_id: u32,
    tfhd_flags: u32,
    base_time: u64,
    data_offset: i32,
    samples: Vec<TrunSample>,
}

fn traf_view(d: &[u8], traf: &Bx) -> TrafView {
    let tfhd = traf.child("tfhd");
    let tfdt = traf.child("tfdt");
    let trun = traf.child("trun");
    assert_eq!(d[tfdt.body], 1, "tfdt version 1 (64-bit time)");
    let flags = be32(d, trun.body) & 0xff_ffff;
    let count = be32(d, trun.body + 4) as usize;
    assert!(flags & 1 != 0, "trun has a data offset");
    let data_offset = be32(d, trun.body + 8) as i32;
    let mut pos = trun.body + 12;
    let mut samples = Vec::new();
    for _ in 0..count {
        let mut field = |present: bool| {
            present.then(|| {
                let v = be32(d, pos);
                pos += 4;
                v
            })
        };
        let duration = field(flags & 0x100 != 0).expect("per-sample duration");
        let size = field(flags & 0x200 != 0).expect("per-sample size");
        let flags_v = field(flags & 0x400 != 0);
        let cto = field(flags & 0x800 != 0).map(|v| v as i32);
        samples.push(TrunSample {
            duration,
            size,
            flags: flags_v,
            cto,
        });
    }
    assert_eq!(pos, trun.end, "trun entries fill the box");
    TrafView {
        track_id: be32(d, tfhd.body + 4),
        tfhd_flags: be32(d, tfhd.body) & 0xff_ffff,
        base_time: be64(d, tfdt.body + 4),
        data_offset,
        samples,
    }
}

fn fragment_view(f: &Fragment) -> (Vec<u8>, Vec<Bx>, Vec<TrafView>) {
    let bytes = f.to_vec();
    let top = walk(&bytes, 0, bytes.len());
    assert_eq!(
        top.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>(),
        ["moof", "mdat"]
    );
    let trafs = top[0]
        .all("traf")
        .into_iter()
        .map(|t| traf_view(&bytes, t))
        .collect();
    (bytes, top, trafs)
}

// ---- Init segment ----

#[test]
fn init_segment_has_both_tracks_with_their_configurations() {
    let tags = av_stream(0, 200, 1000, true);
    let out = run(FragmenterConfig::default(), &tags, false);
    let Some(Output::Init(init)) = out.first() else {
        panic!("first output is not an init segment: {out:?}");
    };
    let top = walk(init, 0, init.len());
    assert_eq!(
        top.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>(),
        ["ftyp", "moov"]
    );
    let moov = &top[1];
    assert_eq!(
        moov.children
            .iter()
            .map(|b| b.kind.as_str())
            .collect::<Vec<_>>(),
        ["mvhd", "trak", "trak", "mvex"]
    );
    let traks = moov.all("trak");
    // Video: track 1, 320x240, 90 kHz, avcC = the record from the FLV sequence header.
    let v = traks[0];
    let tkhd = v.child("tkhd");
    assert_eq!(be32(init, tkhd.body + 12), VIDEO_TRACK_ID);
    assert_eq!(be32(init, tkhd.end - 8) >> 16, 320);
    assert_eq!(be32(init, tkhd.end - 4) >> 16, 240);
    let mdhd = v.path(&["mdia", "mdhd"]);
    assert_eq!(be32(init, mdhd.body + 12), 90_000);
    assert_eq!(&init[v.path(&["mdia", "hdlr"]).body + 8..][..4], b"vide");
    let stbl = v.path(&["mdia", "minf", "stbl"]);
    for empty in ["stts", "stsc", "stsz", "stco"] {
        assert!(stbl.all(empty).len() == 1, "{empty} present");
    }
    let avc1 = stbl.path(&["stsd", "avc1"]);
    assert_eq!(
        u16::from_be_bytes([init[avc1.body + 24], init[avc1.body + 25]]),
        320
    );
    let avcc = avc1.child("avcC");
    assert_eq!(&init[avcc.body..avcc.end], &avc_header()[5..]);
    // Audio: track 2, 44.1 kHz timescale, esds carrying the AudioSpecificConfig.
    let a = traks[1];
    assert_eq!(be32(init, a.child("tkhd").body + 12), AUDIO_TRACK_ID);
    assert_eq!(be32(init, a.path(&["mdia", "mdhd"]).body + 12), 44_100);
    assert_eq!(&init[a.path(&["mdia", "hdlr"]).body + 8..][..4], b"soun");
    let esds = a.path(&["mdia", "minf", "stbl", "stsd", "mp4a", "esds"]);
    let esds_body = &init[esds.body..esds.end];
    assert!(
        esds_body.windows(4).any(|w| w == [0x05, 0x02, 0x12, 0x10]),
        "DecoderSpecificInfo with the ASC: {esds_body:02x?}"
    );
    let trex = moov.child("mvex").all("trex");
    assert_eq!(
        trex.iter()
            .map(|t| be32(init, t.body + 4))
            .collect::<Vec<_>>(),
        [VIDEO_TRACK_ID, AUDIO_TRACK_ID]
    );
    // Our scanner reads the same.
    let index = scan_fragments(init).unwrap();
    assert_eq!(index.inits[0].range, 0..init.len() as u64);
    let tracks: Vec<_> = index.inits[0]
        .tracks
        .iter()
        .map(|t| (t.id, t.kind, t.timescale))
        .collect();
    assert_eq!(
        tracks,
        [(1, TrackKind::Video, 90_000), (2, TrackKind::Audio, 44_100)]
    );
}

#[test]
fn codecs_string_names_the_configuration() {
    let mut f = Fragmenter::new(FragmenterConfig::default());
    assert_eq!(f.codecs(), None);
    f.handle_tag(&Tag::video(0, avc_header()));
    f.handle_tag(&Tag::audio(0, aac_header_44k()));
    let record = &avc_header()[5..];
    let expected = format!(
        "avc1.{:02x}{:02x}{:02x},mp4a.40.2",
        record[1], record[2], record[3]
    );
    assert_eq!(f.codecs(), Some(expected));
}

// ---- Fragments ----

#[test]
fn data_offsets_point_at_each_tracks_first_sample_and_sizes_add_up() {
    let tags = av_stream(0, 400, 1000, true);
    let out = run(FragmenterConfig::per_frame(), &tags, true);
    let frags = fragments(&out);
    assert!(frags.len() >= 9);
    for f in frags {
        let (bytes, top, trafs) = fragment_view(f);
        let (moof, mdat) = (&top[0], &top[1]);
        assert_eq!(bytes.len(), f.len());
        let total: u32 = trafs.iter().flat_map(|t| &t.samples).map(|s| s.size).sum();
        assert_eq!(
            mdat.end - mdat.body,
            total as usize,
            "mdat holds exactly the samples"
        );
        let mut expected_offset = mdat.body - moof.start;
        for t in &trafs {
            assert_eq!(t.data_offset as usize, expected_offset);
            assert_eq!(t.tfhd_flags & 0x02_0000, 0x02_0000, "default-base-is-moof");
            expected_offset += t.samples.iter().map(|s| s.size as usize).sum::<usize>();
        }
        // The chunks after the header are the samples themselves, zero-copy: each is
        // the tag body minus its FLV header.
        let sample_chunks = &f.chunks[1..];
        assert_eq!(f.chunks[0].len(), mdat.body);
        let sizes: Vec<usize> = trafs
            .iter()
            .flat_map(|t| &t.samples)
            .map(|s| s.size as usize)
            .collect();
        assert_eq!(
            sample_chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            sizes
        );
        for chunk in sample_chunks {
            let from_a_tag = tags.iter().any(|t| {
                let range = t.data.as_ptr() as usize..t.data.as_ptr() as usize + t.data.len();
                range.contains(&(chunk.as_ptr() as usize))
            });
            assert!(from_a_tag, "sample chunk is a slice of a tag body");
        }
        // The first video sample in mdat is the NAL unit of the first video frame.
        if let Some(v) = trafs.iter().find(|t| t.track_id == VIDEO_TRACK_ID) {
            let at = moof.start + v.data_offset as usize;
            assert_eq!(be32(&bytes, at) as usize + 4, v.samples[0].size as usize);
        }
    }
}

#[test]
fn durations_composition_offsets_and_decode_times() {
    let mut tags = vec![Tag::video(0, avc_header()), Tag::audio(0, aac_header_44k())];
    // DTS 0, 40, 80, 120 with composition offsets 80, -40, 0, 40 ms.
    let video = [
        (0, true, 80),
        (40, false, -40),
        (80, false, 0),
        (120, false, 40),
    ];
    for (i, (ts, key, cto)) in video.into_iter().enumerate() {
        tags.push(Tag::video(ts, avc_frame(key, cto, i as u8, 50)));
    }
    // AAC at ms timestamps as FLV rounds them.
    for (i, ts) in [0, 23, 46, 70, 93, 116].into_iter().enumerate() {
        tags.push(Tag::audio(ts, aac_frame(i as u8, 20)));
    }
    tags.sort_by_key(|t| t.timestamp_ms);
    let out = run(
        FragmenterConfig {
            fragment_ms: 10_000,
            ..FragmenterConfig::default()
        },
        &tags,
        true,
    );
    let frags = fragments(&out);
    assert_eq!(frags.len(), 1, "one fragment holds everything after flush");
    let (_, _, trafs) = fragment_view(frags[0]);
    let v = &trafs[0];
    assert_eq!(v.track_id, VIDEO_TRACK_ID);
    assert_eq!(v.base_time, 0);
    assert_eq!(
        v.samples.iter().map(|s| s.duration).collect::<Vec<_>>(),
        [3600, 3600, 3600, 3600],
        "40 ms at 90 kHz; the last one repeats the previous duration"
    );
    assert_eq!(
        v.samples.iter().map(|s| s.cto.unwrap()).collect::<Vec<_>>(),
        [7200, -3600, 0, 3600]
    );
    assert_eq!(
        v.samples
            .iter()
            .map(|s| s.flags.unwrap())
            .collect::<Vec<_>>(),
        [0x0200_0000, 0x0101_0000, 0x0101_0000, 0x0101_0000]
    );
    let a = &trafs[1];
    assert_eq!(a.track_id, AUDIO_TRACK_ID);
    assert_eq!(a.tfhd_flags & 0x20, 0x20, "audio uses default sample flags");
    // ms → 44.1 kHz ticks: 0, 1014, 2028, 3087, 4101, 5115: durations are the exact
    // differences, so the track time never drifts from the FLV timestamps.
    assert_eq!(
        a.samples.iter().map(|s| s.duration).collect::<Vec<_>>(),
        [1014, 1014, 1059, 1014, 1014, 1014]
    );
    assert!(
        a.samples
            .iter()
            .all(|s| s.flags.is_none() && s.cto.is_none())
    );
    assert_eq!(frags[0].start_ms, 0);
    assert_eq!(frags[0].duration_ms, 160);
    assert!(frags[0].independent);
}

#[test]
fn later_fragments_have_increasing_sequence_numbers_and_decode_times() {
    let tags = av_stream(5_000, 3_000, 1000, true);
    let out = run(FragmenterConfig::default(), &tags, true);
    let frags = fragments(&out);
    let mut last_end = None;
    for (i, f) in frags.iter().enumerate() {
        let (bytes, top, trafs) = fragment_view(f);
        assert_eq!(be32(&bytes, top[0].child("mfhd").body + 4), i as u32 + 1);
        assert_eq!(f.sequence, i as u32 + 1);
        let v = &trafs[0];
        assert_eq!(v.base_time, f.start_ms * 90);
        if let Some(end) = last_end {
            assert_eq!(f.start_ms, end, "fragments are contiguous");
        }
        last_end = Some(f.end_ms());
    }
    assert_eq!(frags[0].start_ms, 5_000);
    assert_eq!(last_end, Some(8_000));
}

#[test]
fn per_frame_mode_makes_one_fragment_per_video_frame() {
    let tags = av_stream(0, 1_000, 1000, true);
    let out = run(FragmenterConfig::per_frame(), &tags, true);
    let frags = fragments(&out);
    assert_eq!(frags.len(), 25);
    let mut audio_samples = 0;
    for (i, f) in frags.iter().enumerate() {
        let (_, _, trafs) = fragment_view(f);
        assert_eq!(trafs[0].track_id, VIDEO_TRACK_ID);
        assert_eq!(trafs[0].samples.len(), 1);
        assert_eq!(f.start_ms, i as u64 * 40);
        assert_eq!(f.independent, i == 0);
        audio_samples += trafs.get(1).map_or(0, |a| a.samples.len());
    }
    assert_eq!(
        audio_samples, 44,
        "every audio frame of the second is carried"
    );
}

/// Splits fragments into segments by `starts_segment`.
fn segments_of<'a>(frags: &[&'a Fragment]) -> Vec<Vec<&'a Fragment>> {
    let mut out: Vec<Vec<&Fragment>> = Vec::new();
    for f in frags {
        if f.starts_segment || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().push(f);
    }
    out
}

#[test]
fn segments_start_at_the_first_keyframe_after_two_seconds_and_parts_stay_under_target() {
    let tags = av_stream(0, 10_000, 1000, true);
    let out = run(FragmenterConfig::default(), &tags, true);
    let frags = fragments(&out);
    let segments = segments_of(&frags);
    assert_eq!(segments.len(), 5);
    for (i, seg) in segments.iter().enumerate() {
        assert!(seg[0].independent, "segment {i} starts with a keyframe");
        assert_eq!(seg[0].start_ms, i as u64 * 2000);
        let duration: u32 = seg.iter().map(|f| f.duration_ms).sum();
        assert_eq!(duration, 2000);
        for (j, part) in seg.iter().enumerate() {
            assert!(
                part.duration_ms <= 500,
                "part {i}.{j} is {} ms",
                part.duration_ms
            );
            if j + 1 < seg.len() {
                assert!(
                    part.duration_ms >= 425,
                    "part {i}.{j} is {} ms",
                    part.duration_ms
                );
                assert!(!seg[j + 1].starts_segment);
            }
        }
    }
    // With a keyframe every 3 s, segments last 3 s.
    let tags = av_stream(0, 9_000, 3000, false);
    let out = run(FragmenterConfig::default(), &tags, true);
    let frags = fragments(&out);
    let durations: Vec<u32> = segments_of(&frags)
        .iter()
        .map(|s| s.iter().map(|f| f.duration_ms).sum())
        .collect();
    assert_eq!(durations, [3000, 3000, 3000]);
}

#[test]
fn audio_only_streams_cut_by_duration() {
    let mut tags = vec![Tag::audio(0, aac_header_44k())];
    for k in 0..(44100 * 5 / 1024) {
        tags.push(Tag::audio(
            (k * 1024 * 1000 / 44100) as u32,
            aac_frame(1, 50),
        ));
    }
    let out = run(FragmenterConfig::default(), &tags, true);
    assert_eq!(inits(&out).len(), 1);
    let frags = fragments(&out);
    assert!(frags.iter().all(|f| f.independent && f.duration_ms <= 500));
    let segments = segments_of(&frags);
    assert!(segments.len() >= 2);
    for seg in &segments[..segments.len() - 1] {
        let d: u32 = seg.iter().map(|f| f.duration_ms).sum();
        assert!((1980..=2030).contains(&d), "audio segment of {d} ms");
    }
}

#[test]
fn a_stale_video_header_does_not_stop_audio_only_sources_from_fragmenting() {
    // The hub keeps the last video header when an audio-only source follows a video one.
    let mut tags = vec![Tag::video(0, avc_header()), Tag::audio(0, aac_header_44k())];
    for k in 0..200u64 {
        tags.push(Tag::audio(
            (k * 1024 * 1000 / 44100) as u32,
            aac_frame(1, 50),
        ));
    }
    let out = run(FragmenterConfig::default(), &tags, false);
    let frags = fragments(&out);
    assert!(frags.len() >= 8, "audio leads: {} fragments", frags.len());
    assert!(frags.iter().all(|f| f.duration_ms <= 500));
}

#[test]
fn a_discontinuity_with_a_new_configuration_flushes_and_emits_a_new_init() {
    let first = av_stream(0, 3_000, 1000, true);
    // The new source: same video, 48 kHz audio; the hub marks its first tag.
    let mut second = av_stream(3_040, 3_000, 1000, false);
    second.insert(1, Tag::audio(3_040, aac_header_48k()));
    second[0].discontinuity = true;
    let tags: Vec<Tag> = first.iter().chain(&second).cloned().collect();
    let out = run(FragmenterConfig::default(), &tags, true);
    assert_eq!(inits(&out).len(), 2);
    let init_positions: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Output::Init(_)))
        .map(|(i, _)| i)
        .collect();
    let second_init = init_positions[1];
    let before = fragments(&out[..second_init]);
    let after = fragments(&out[second_init..]);
    // Everything of the first source came out before the new init, its last frame too.
    assert_eq!(before.last().unwrap().end_ms(), 3_000);
    assert!(before.iter().all(|f| !f.discontinuity));
    assert!(after[0].discontinuity && after[0].starts_segment && after[0].independent);
    assert_eq!(after[0].start_ms, 3_040);
    assert!(after[1..].iter().all(|f| !f.discontinuity));
    // The new init has the 48 kHz audio track.
    let Output::Init(init) = &out[second_init] else {
        unreachable!()
    };
    let index = scan_fragments(init).unwrap();
    assert_eq!(index.inits[0].tracks[1].timescale, 48_000);
}

#[test]
fn a_discontinuity_with_the_same_configuration_marks_without_a_new_init() {
    let first = av_stream(0, 2_000, 1000, true);
    let mut second = av_stream(2_040, 2_000, 1000, true);
    second[0].discontinuity = true;
    let tags: Vec<Tag> = first.iter().chain(&second).cloned().collect();
    let out = run(FragmenterConfig::default(), &tags, true);
    assert_eq!(inits(&out).len(), 1);
    let frags = fragments(&out);
    let marked: Vec<u64> = frags
        .iter()
        .filter(|f| f.discontinuity)
        .map(|f| f.start_ms)
        .collect();
    assert_eq!(marked, [2_040]);
    // A hub resync repeats identical headers without a mark: nothing changes.
    let third = av_stream(4_040, 1_000, 1000, true);
    let tags: Vec<Tag> = first.iter().chain(&third).cloned().collect();
    let out = run(FragmenterConfig::default(), &tags, true);
    assert_eq!(inits(&out).len(), 1);
    assert!(fragments(&out).iter().all(|f| !f.discontinuity));
}

#[test]
fn without_keyframes_segments_are_cut_anyway_and_memory_stays_bounded() {
    let config = FragmenterConfig::default();
    let mut f = Fragmenter::new(config.clone());
    f.handle_tag(&Tag::video(0, avc_header()));
    let mut frags = Vec::new();
    let mut peak = 0;
    for n in 0..(60 * 25) {
        // One keyframe, then 60 s of 40 kB inter frames.
        f.handle_tag(&Tag::video(n * 40, avc_frame(n == 0, 0, 7, 40_000)));
        peak = peak.max(f.pending_bytes());
        while let Some(o) = f.poll_output() {
            if let Output::Fragment(fr) = o {
                frags.push(fr);
            }
        }
    }
    // Parts still close at 500 ms: about 13 frames are ever held.
    assert!(peak <= 14 * 40_100, "peak {peak}");
    let refs: Vec<&Fragment> = frags.iter().collect();
    let segments = segments_of(&refs);
    assert!(segments.len() >= 5, "{} segments", segments.len());
    for seg in &segments[..segments.len() - 1] {
        let d: u32 = seg.iter().map(|f| f.duration_ms).sum();
        assert!(d <= config.max_segment_ms, "segment of {d} ms");
    }
    assert!(f.stats().forced >= 4);
    assert!(segments[1..].iter().all(|s| !s[0].independent));
}

#[test]
fn oversized_frames_close_fragments_at_the_byte_cap() {
    let config = FragmenterConfig {
        fragment_ms: 5_000,
        max_fragment_bytes: 1 << 20,
        ..FragmenterConfig::default()
    };
    let mut f = Fragmenter::new(config);
    f.handle_tag(&Tag::video(0, avc_header()));
    let mut sizes = Vec::new();
    for n in 0..100 {
        f.handle_tag(&Tag::video(n * 40, avc_frame(n % 50 == 0, 0, 1, 200_000)));
        assert!(f.pending_bytes() <= (1 << 20) + 2 * 200_100);
        while let Some(o) = f.poll_output() {
            sizes.push(o.len());
        }
    }
    let fragment_sizes = &sizes[1..];
    assert!(fragment_sizes.len() >= 15);
    assert!(fragment_sizes.iter().all(|&s| s < (1 << 20) + 210_000));
}

#[test]
fn flush_emits_the_held_samples_with_the_previous_duration() {
    let tags = av_stream(0, 400, 1000, true);
    let held = run(FragmenterConfig::default(), &tags, false);
    let flushed = run(FragmenterConfig::default(), &tags, true);
    let end = |out: &[Output]| fragments(out).last().map_or(0, |f| f.end_ms());
    assert!(end(&held) < 400);
    assert_eq!(end(&flushed), 400, "the last frame (360 ms) lasts 40 ms");
    // Audio-only flush with no previous duration: 1024 samples.
    let out = run(
        FragmenterConfig::default(),
        &[
            Tag::audio(0, aac_header_44k()),
            Tag::audio(0, aac_frame(1, 10)),
        ],
        true,
    );
    let (_, _, trafs) = fragment_view(fragments(&out)[0]);
    assert_eq!(trafs[0].samples[0].duration, 1024);
}

#[test]
fn unsupported_and_invalid_tags_are_skipped_and_counted() {
    let mut f = Fragmenter::new(FragmenterConfig::default());
    f.handle_tag(&Tag::video(0, vec![0x14, 0x00, 0x01])); // VP6 frame
    f.handle_tag(&Tag::video(0, b"\x90av01\x81\x00".to_vec())); // AV1 SequenceStart
    f.handle_tag(&Tag::audio(0, vec![0x2f, 0xff, 0xfb])); // MP3
    f.handle_tag(&Tag::video(0, vec![0x17, 0x01])); // truncated AVC header
    f.handle_tag(&Tag::video(0, vec![0x17, 0x00, 0, 0, 0, 0x02])); // bad avcC
    f.handle_tag(&Tag::video(0, avc_frame(true, 0, 1, 20))); // frame before any header
    f.handle_tag(&Tag::audio(0, vec![0xaf, 0x00, 0x00])); // bad AudioSpecificConfig
    f.handle_tag(&Tag::script(0, vec![0x02, 0x00]));
    let s = f.stats();
    assert_eq!(s.unsupported, 3);
    assert_eq!(s.invalid, 3);
    assert_eq!(s.no_config, 1);
    f.flush();
    assert_eq!(f.poll_output(), None);
    // After a real header, frames flow again.
    f.handle_tag(&Tag::video(0, avc_header()));
    f.handle_tag(&Tag::video(0, avc_frame(true, 0, 1, 20)));
    f.flush();
    assert!(matches!(f.poll_output(), Some(Output::Init(_))));
    assert!(matches!(f.poll_output(), Some(Output::Fragment(_))));
}

#[test]
fn enhanced_rtmp_hevc_and_avc_get_their_sample_entries() {
    // A minimal HEVCDecoderConfigurationRecord (Main, level 93, no parameter sets).
    let mut record = vec![
        1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc,
    ];
    record.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]);
    let mut tags = vec![Tag::video(0, [b"\x90hvc1".as_slice(), &record].concat())];
    for n in 0..5u32 {
        // CodedFrames (with a composition time of 40 ms), keyframe first.
        let head: &[u8] = if n == 0 { b"\x91hvc1" } else { b"\xa1hvc1" };
        tags.push(Tag::video(
            n * 40,
            [head, &[0, 0, 40], &[0, 0, 0, 2, 0x26, n as u8]].concat(),
        ));
    }
    let mut f = Fragmenter::new(FragmenterConfig::per_frame());
    for t in &tags {
        f.handle_tag(t);
    }
    f.flush();
    assert_eq!(f.codecs().as_deref(), Some("hvc1.1.6.L93.90"));
    let Some(Output::Init(init)) = f.poll_output() else {
        panic!("no init")
    };
    let top = walk(&init, 0, init.len());
    let stsd = top[1].path(&["trak", "mdia", "minf", "stbl", "stsd"]);
    let hvcc = stsd.path(&["hvc1", "hvcC"]);
    assert_eq!(&init[hvcc.body..hvcc.end], &record[..]);
    let mut frags = Vec::new();
    while let Some(Output::Fragment(fr)) = f.poll_output() {
        frags.push(fr);
    }
    assert_eq!(frags.len(), 5);
    let (_, _, trafs) = fragment_view(&frags[0]);
    assert_eq!(trafs[0].samples[0].cto, Some(3600));
    assert_eq!(
        trafs[0].samples[0].size, 6,
        "the payload after the 8-byte header"
    );
    assert!(frags[0].independent && !frags[1].independent);

    // AVC by FourCC, with CodedFramesX (no composition time).
    let record = &avc_header()[5..];
    let mut f = Fragmenter::new(FragmenterConfig::per_frame());
    f.handle_tag(&Tag::video(0, [b"\x90avc1".as_slice(), record].concat()));
    f.handle_tag(&Tag::video(0, b"\x93avc1\x00\x00\x00\x01\x65".to_vec()));
    f.flush();
    let Some(Output::Init(init)) = f.poll_output() else {
        panic!("no init")
    };
    let top = walk(&init, 0, init.len());
    let avcc = top[1].path(&["trak", "mdia", "minf", "stbl", "stsd", "avc1", "avcC"]);
    assert_eq!(&init[avcc.body..avcc.end], record);
    let Some(Output::Fragment(fr)) = f.poll_output() else {
        panic!("no fragment")
    };
    let (_, _, trafs) = fragment_view(&fr);
    assert_eq!(trafs[0].samples[0].size, 5);
    assert_eq!(trafs[0].samples[0].cto, Some(0));
}

// ---- Scanner ----

fn file_of(outputs: &[Output]) -> Vec<u8> {
    file_chunks(outputs).concat()
}

#[test]
fn scanner_round_trips_the_fragmenter_output() {
    let tags = fixture_tags();
    let out = run(FragmenterConfig::default(), &tags, true);
    let file = file_of(&out);
    let index = scan_fragments(&file).unwrap();
    let init_len = inits(&out)[0].len() as u64;
    assert_eq!(index.inits.len(), 1);
    assert_eq!(index.inits[0].range, 0..init_len);
    let frags = fragments(&out);
    assert_eq!(index.fragments.len(), frags.len());
    let mut offset = init_len;
    for (info, f) in index.fragments.iter().zip(&frags) {
        assert_eq!(info.range, offset..offset + f.len() as u64);
        offset = info.range.end;
        assert_eq!(info.start_ms(), f.start_ms);
        assert_eq!(info.duration_ms(), u64::from(f.duration_ms));
        assert_eq!(info.independent, f.independent);
        assert_eq!(info.sequence, f.sequence);
        assert_eq!((info.track_id, info.timescale), (VIDEO_TRACK_ID, 90_000));
    }
    assert_eq!(index.truncated_at, None);
    assert_eq!(index.valid_len(), file.len() as u64);
    // Segments: the fixture has a keyframe every second, so 2 s segments of whole GOPs.
    let durations: Vec<u64> = index.segments.iter().map(|s| s.duration_ms).collect();
    assert_eq!(durations, [2000, 2000]);
    assert!(
        index
            .segments
            .iter()
            .all(|s| s.independent && !s.discontinuity)
    );
    assert_eq!(index.segments[0].range.start, init_len);
    assert_eq!(index.segments[1].range.end, file.len() as u64);
    assert_eq!(
        index.segments[0].range.end, index.segments[1].range.start,
        "segments are adjacent"
    );
}

#[test]
fn scanner_indexes_periods_after_a_configuration_change() {
    let first = av_stream(0, 4_000, 1000, true);
    let mut second = av_stream(4_040, 4_000, 1000, false);
    second.insert(1, Tag::audio(4_040, aac_header_48k()));
    second[0].discontinuity = true;
    let tags: Vec<Tag> = first.iter().chain(&second).cloned().collect();
    let out = run(FragmenterConfig::default(), &tags, true);
    let index = scan_fragments(&file_of(&out)).unwrap();
    assert_eq!(index.inits.len(), 2);
    let disc: Vec<(usize, u64, bool)> = index
        .segments
        .iter()
        .map(|s| (s.init, s.start_ms, s.discontinuity))
        .collect();
    assert_eq!(
        disc,
        [
            (0, 0, false),
            (0, 2000, false),
            (1, 4040, true),
            (1, 6040, false)
        ]
    );
}

/// Headers, then 25 fps video (keyframe every second) and 44.1 kHz AAC as a source sends
/// them, in the order of a send clock running from 0 to `duration_ms`: a frame sent at
/// `t` carries the timestamp `video_ts(t)` (`None`: not sent), audio is continuous from
/// `audio_start_ms`.
fn skewed_av_stream(
    duration_ms: u32,
    audio_start_ms: u32,
    video_ts: impl Fn(u32) -> Option<u32>,
) -> Vec<Tag> {
    let mut media = Vec::new();
    for n in 0..duration_ms / 40 {
        let t = n * 40;
        if let Some(ts) = video_ts(t) {
            let frame = avc_frame(t % 1000 == 0, 0, (n % 251) as u8, 300);
            media.push((t, Tag::video(ts, frame)));
        }
    }
    for k in 0.. {
        let t = (k * 1024 * 1000 / 44100) as u32;
        if t >= duration_ms {
            break;
        }
        media.push((
            t,
            Tag::audio(audio_start_ms + t, aac_frame((k % 251) as u8, 100)),
        ));
    }
    media.sort_by_key(|(t, _)| *t);
    let mut tags = vec![Tag::video(0, avc_header()), Tag::audio(0, aac_header_44k())];
    tags.extend(media.into_iter().map(|(_, tag)| tag));
    tags
}

/// The fragmenter's and the scanner's times for each fragment of `out`, checked equal:
/// `(start_ms, end_ms, track_id)` per fragment.
fn agreed_times(out: &[Output]) -> Vec<(u64, u64, u32)> {
    let index = scan_fragments(&file_of(out)).unwrap();
    let frags = fragments(out);
    assert_eq!(index.fragments.len(), frags.len());
    index
        .fragments
        .iter()
        .zip(&frags)
        .map(|(info, f)| {
            // Audio ticks are whole samples, so the file's time may be 1 ms lower.
            assert!(
                info.start_ms().abs_diff(f.start_ms) <= 1,
                "fragment {}: scanned {info:?}, written start {} duration {}",
                f.sequence,
                f.start_ms,
                f.duration_ms
            );
            assert!(info.end_ms().abs_diff(f.end_ms()) <= 1, "{info:?} {f:?}");
            assert_eq!(info.independent, f.independent);
            (f.start_ms, f.end_ms(), info.track_id)
        })
        .collect()
}

/// Fuzz finding 5 (`fuzz/corpus/fmp4_reader/start-ms-disagrees-with-scan`): a source
/// whose video timestamps run 32.5 s behind its audio. Audio leads the cutting, so the
/// fragmenter timed each fragment by its audio (41797 ms) while the scanner timed the
/// same fragment by the stale video in it (9284 ms). Both now time it by its audio.
#[test]
fn a_fragment_whose_video_lags_its_audio_by_more_than_a_stall_is_timed_by_its_audio() {
    let tags = skewed_av_stream(6_000, 41_797, |t| Some(9_284 + t));
    for config in [FragmenterConfig::default(), FragmenterConfig::per_frame()] {
        let out = run(config, &tags, true);
        let times = agreed_times(&out);
        assert!(times.len() > 5);
        // Every fragment has audio here, so every one is timed by it: in order and
        // back to back, as the audio is.
        assert_eq!(times[0].0, 41_797);
        for w in times.windows(2) {
            assert_eq!(w[0].2, AUDIO_TRACK_ID);
            assert!(w[1].0.abs_diff(w[0].1) <= 1, "contiguous: {w:?}");
        }
        let index = scan_fragments(&file_of(&out)).unwrap();
        let total: u64 = index.segments.iter().map(|s| s.duration_ms).sum();
        assert!(total.abs_diff(6_000) < 50, "the recording lasts {total} ms");
    }
}

/// A lag under the stall threshold keeps video timing, on both sides.
#[test]
fn a_fragment_whose_video_lags_its_audio_less_than_a_stall_is_timed_by_its_video() {
    let tags = skewed_av_stream(4_000, 1_900, Some);
    let out = run(FragmenterConfig::default(), &tags, true);
    let times = agreed_times(&out);
    assert!(times.iter().all(|t| t.2 == VIDEO_TRACK_ID), "{times:?}");
    assert_eq!(times[0].0, 0);
}

/// Video freezes for 5 s while audio goes on, then resumes. The last frame before the
/// freeze only gets its duration (5 s) when video resumes, and lands in a fragment whose
/// audio is 5 s later: timed by that frame, the fragment went 5 s back in time and the
/// VOD segments counted the freeze twice. Timed by its audio, the fragments stay in time
/// order. (The fragment open when the freeze starts is still timed by its video, as the
/// stall is not known yet: the timeline has a gap there, never an overlap.)
#[test]
fn fragments_stay_in_time_order_across_a_video_stall() {
    let tags = skewed_av_stream(10_000, 0, |t| (!(2_000..7_000).contains(&t)).then_some(t));
    for config in [FragmenterConfig::default(), FragmenterConfig::per_frame()] {
        let out = run(config, &tags, true);
        let times = agreed_times(&out);
        for w in times.windows(2) {
            assert!(w[1].0 + 25 >= w[0].1, "time goes back: {w:?}");
            assert!(w[1].0 <= w[0].1 + VIDEO_STALL_MS + 25, "a gap: {w:?}");
        }
        let resumed = times.iter().position(|t| t.0 >= 7_000).unwrap();
        assert_eq!(times[resumed - 1].2, AUDIO_TRACK_ID, "{times:?}");
        assert_eq!(times[resumed].2, VIDEO_TRACK_ID, "{times:?}");
        let index = scan_fragments(&file_of(&out)).unwrap();
        let total: u64 = index.segments.iter().map(|s| s.duration_ms).sum();
        assert!(total <= 10_050, "the recording lasts {total} ms");
    }
}

#[test]
fn a_truncated_last_fragment_is_left_out() {
    let out = run(
        FragmenterConfig::default(),
        &av_stream(0, 3_000, 1000, true),
        true,
    );
    let file = file_of(&out);
    let full = scan_fragments(&file).unwrap();
    let last = full.fragments.last().unwrap().range.clone();
    let step = ((last.end - last.start) / 23).max(1) as usize;
    for cut in (last.start as usize + 1..last.end as usize).step_by(step) {
        let index = scan_fragments(&file[..cut]).unwrap();
        assert_eq!(index.fragments, full.fragments[..full.fragments.len() - 1]);
        assert_eq!(index.truncated_at, Some(last.start), "cut at {cut}");
        assert_eq!(index.valid_len(), last.start);
    }
    // Cut exactly at a fragment boundary: nothing is missing, nothing truncated.
    let index = scan_fragments(&file[..last.start as usize]).unwrap();
    assert_eq!(index.truncated_at, None);
    // Zeros after the data (a preallocated file): a box of size 0 runs to the end.
    let mut padded = file.clone();
    padded.extend_from_slice(&[0; 100]);
    let index = scan_fragments(&padded).unwrap();
    assert_eq!(index.fragments, full.fragments);
    // Without a complete init there is nothing to play.
    let init_end = full.inits[0].range.end as usize;
    assert_eq!(
        scan_fragments(&file[..init_end - 1]),
        Err(Fmp4Error::NoInit)
    );
    assert_eq!(scan_fragments(&[]), Err(Fmp4Error::NoInit));
}

#[test]
fn the_scanner_reads_box_headers_not_media() {
    let out = run(
        FragmenterConfig::default(),
        &av_stream(0, 3_000, 1000, true),
        true,
    );
    let file = file_of(&out);
    let mut scanner = FileScanner::new(file.len() as u64);
    let mut read = 0;
    while let Some(r) = scanner.wanted() {
        let chunk = &file[r.start as usize..r.end as usize];
        read += chunk.len();
        scanner.push(r.start, chunk).unwrap();
    }
    let index = scanner.finish().unwrap();
    assert_eq!(index.fragments.len(), 8);
    assert!(read < file.len() / 2, "read {read} of {}", file.len());
    // Bytes for the wrong offset are refused.
    let mut scanner = FileScanner::new(file.len() as u64);
    assert_eq!(
        scanner.push(8, &file[8..24]),
        Err(Fmp4Error::UnexpectedOffset { wanted: 0, got: 8 })
    );
}

#[test]
fn huge_size_fields_are_refused_without_allocating() {
    // A moov claiming 3 GiB in a file that long: refused at the header.
    let mut scanner = FileScanner::new(3 << 30);
    let mut header = Vec::new();
    header.extend_from_slice(&(3u32 << 30).to_be_bytes());
    header.extend_from_slice(b"moov");
    header.extend_from_slice(&[0; 8]);
    assert!(matches!(
        scanner.push(0, &header),
        Err(Fmp4Error::BoxTooLarge { .. })
    ));
    // A trun claiming 2^32-1 samples in a small box.
    let out = run(
        FragmenterConfig::default(),
        &av_stream(0, 1_000, 1000, false),
        true,
    );
    let mut file = file_of(&out);
    let trun = file.windows(4).position(|w| w == b"trun").unwrap();
    file[trun + 8..trun + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        scan_fragments(&file),
        Err(Fmp4Error::InvalidBox { reason, .. }) if reason.contains("sample count")
    ));
    // A box smaller than its header.
    let mut bad = file_of(&out);
    let moof = bad.windows(4).position(|w| w == b"moof").unwrap() - 4;
    bad[moof..moof + 4].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(
        scan_fragments(&bad),
        Err(Fmp4Error::InvalidBox { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scanning_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = scan_fragments(&data);
    }

    #[test]
    fn scanning_damaged_files_never_panics(
        cut in 0usize..20_000,
        flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 0..8),
    ) {
        let out = run(FragmenterConfig::default(), &av_stream(0, 1_500, 1000, true), true);
        let mut file = file_of(&out);
        for (at, v) in flips {
            if let Some(b) = file.get_mut(at) {
                *b = v;
            }
        }
        file.truncate(cut.min(file.len()));
        let _ = scan_fragments(&file);
    }

    #[test]
    fn random_tag_sequences_never_panic_and_the_output_scans_back(
        steps in proptest::collection::vec((0u8..12, 0u32..700, any::<bool>(), 0usize..40), 0..120),
    ) {
        let mut ts = 0u32;
        let mut tags = Vec::new();
        for (kind, dt, flag, size) in steps {
            ts = ts.saturating_add(dt).saturating_sub(if flag { 300 } else { 0 });
            let mut tag = match kind {
                0 => Tag::video(ts, avc_header()),
                1 => Tag::audio(ts, aac_header_44k()),
                2 => Tag::audio(ts, aac_header_48k()),
                3 | 4 => Tag::video(ts, avc_frame(flag, dt as i32 - 350, 1, size)),
                5 | 6 => Tag::audio(ts, aac_frame(2, size)),
                7 => Tag::video(ts, vec![0x17, 0x01, 0, 0, 0][..size.min(5)].to_vec()),
                8 => Tag::video(ts, b"\x91hvc1\x00\x00\x00abc".to_vec()),
                9 => Tag::audio(ts, vec![0xaf; size % 3]),
                10 => Tag::script(ts, vec![0x02; size]),
                _ => Tag::video(ts, vec![0x17, 0x00, 0, 0, 0, 1, 2, 3][..size.min(8)].to_vec()),
            };
            tag.discontinuity = flag && kind % 5 == 0;
            tags.push(tag);
        }
        let out = run(FragmenterConfig::default(), &tags, true);
        let fragment_count = fragments(&out).len();
        if let Some(first_init) = out.iter().position(|o| matches!(o, Output::Init(_))) {
            prop_assert!(out[..first_init].is_empty(), "nothing before the first init");
            let index = scan_fragments(&file_of(&out)).unwrap();
            prop_assert_eq!(index.fragments.len(), fragment_count);
            prop_assert_eq!(index.inits.len(), inits(&out).len());
            prop_assert_eq!(index.truncated_at, None);
        } else {
            prop_assert_eq!(fragment_count, 0);
        }
    }
}
