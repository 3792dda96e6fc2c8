//! Fragmented MP4: `scan_fragments` on arbitrary bytes, and the `Fragmenter`'s output for
//! an arbitrary tag sequence scanned back.
//!
//! - An index of arbitrary bytes is consistent: ranges inside the input, in file order and
//!   not overlapping, every fragment after its init segment, the VOD segments an exact
//!   partition of the fragments, `valid_len` and `truncated_at` inside the input.
//! - A file the fragmenter wrote scans back to exactly its outputs: one init per `Init`,
//!   one fragment per `Fragment` at its byte offset with its sequence number, independence
//!   and times; nothing truncated. Cut anywhere, it scans to the fragments that end before
//!   the cut (or, cut inside the first init segment, to an error).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_media::fmp4::{FileIndex, Fragmenter, FragmenterConfig, Output, scan_fragments};
use slotcast_media::{Tag, TagKind};

/// AVC sequence headers (tag bodies) that ffmpeg's libx264 wrote for 64x48 and 66x50
/// test pictures.
const AVC_HEADER_64X48: &str = "170000000001f4000affe1001767f4000a9196847b0110000003001000000300a0f1226a01000568ce0f1920fff8f800";
const AVC_HEADER_66X50: &str = "17000000000164000affe1001a6764000aace4149e22230110000003001000000300a0f122512001000668ebe3cb22c0fdf8f800";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    Raw { kind: u8, data: &'a [u8] },
    AvcHeader { second: bool },
    AvcFrame { key: bool, cts: i16, len: u16 },
    /// AAC LC headers: 8 kHz mono (as ffmpeg wrote it), 44.1 kHz or 48 kHz stereo.
    AacHeader { rate: u8 },
    AacFrame { len: u16 },
    HevcFrame { key: bool, len: u8 },
}

#[derive(Arbitrary, Debug)]
struct Step<'a> {
    dt: i16,
    discontinuity: bool,
    body: Body<'a>,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    data: &'a [u8],
    fragment_ms: u16,
    segment_ms: u16,
    max_segment_ms: u16,
    max_fragment_ms: u16,
    max_fragment_bytes: u32,
    cut: u32,
    steps: Vec<Step<'a>>,
}

fn tag(ts: u32, step: &Step<'_>) -> Tag {
    let (kind, data) = match &step.body {
        Body::Raw { kind, data } => {
            let kind = match kind % 3 {
                0 => TagKind::Audio,
                1 => TagKind::Video,
                _ => TagKind::Script,
            };
            (kind, data.to_vec())
        }
        Body::AvcHeader { second } => (
            TagKind::Video,
            unhex(if *second {
                AVC_HEADER_66X50
            } else {
                AVC_HEADER_64X48
            }),
        ),
        Body::AvcFrame { key, cts, len } => {
            let cts = i32::from(*cts).to_be_bytes();
            let mut d = vec![if *key { 0x17 } else { 0x27 }, 1, cts[1], cts[2], cts[3]];
            // One NAL unit with a 4-byte length prefix.
            let n = usize::from(*len % 4000) + 1;
            d.extend_from_slice(&(n as u32).to_be_bytes());
            d.push(if *key { 0x65 } else { 0x41 });
            d.extend((1..n).map(|i| i as u8));
            (TagKind::Video, d)
        }
        Body::AacHeader { rate } => {
            let asc: &[u8] = match rate % 3 {
                0 => &[0x15, 0x88],
                1 => &[0x12, 0x10],
                _ => &[0x11, 0x90],
            };
            let mut d = vec![0xaf, 0];
            d.extend_from_slice(asc);
            (TagKind::Audio, d)
        }
        Body::AacFrame { len } => {
            let mut d = vec![0xaf, 1];
            d.extend((0..usize::from(*len % 2000) + 1).map(|i| i as u8));
            (TagKind::Audio, d)
        }
        Body::HevcFrame { key, len } => {
            let mut d = vec![if *key { 0x91 } else { 0xa1 }];
            d.extend_from_slice(b"hvc1\0\0\0");
            d.extend((0..usize::from(*len)).map(|i| i as u8));
            (TagKind::Video, d)
        }
    };
    let mut t = Tag::new(kind, ts, data);
    t.discontinuity = step.discontinuity;
    t
}

fn check_index(index: &FileIndex, len: u64) {
    assert!(!index.inits.is_empty(), "an index without an init segment");
    let mut end = 0;
    for init in &index.inits {
        assert!(init.range.start >= end && init.range.start <= init.range.end);
        end = init.range.end;
    }
    assert!(end <= len);
    let mut end = 0;
    for f in &index.fragments {
        assert!(f.range.start >= end, "fragments overlap or go back");
        assert!(f.range.start < f.range.end && f.range.end <= len);
        assert!(f.init < index.inits.len());
        assert!(index.inits[f.init].range.end <= f.range.start, "fragment before its init");
        assert!(f.start_ms() <= f.end_ms());
        end = f.range.end;
    }
    let mut next = 0;
    for s in &index.segments {
        assert_eq!(s.fragments.start, next, "segments skip or repeat fragments");
        assert!(s.fragments.start < s.fragments.end);
        next = s.fragments.end;
        let first = &index.fragments[s.fragments.start];
        let last = &index.fragments[s.fragments.end - 1];
        assert_eq!(s.range, first.range.start..last.range.end);
        assert_eq!(s.init, first.init);
        assert_eq!(s.independent, first.independent);
    }
    assert_eq!(next, index.fragments.len(), "segments do not cover the fragments");
    assert!(index.valid_len() <= len);
    assert!(index.truncated_at.is_none_or(|t| t <= len));
}

fn run(input: Input<'_>) {
    // Arbitrary bytes.
    let scanned = scan_fragments(input.data);
    assert_eq!(scan_fragments(input.data), scanned, "scan is not deterministic");
    if let Ok(index) = &scanned {
        check_index(index, input.data.len() as u64);
    }

    // Fragmenter output of arbitrary tags.
    let config = FragmenterConfig {
        fragment_ms: u32::from(input.fragment_ms % 3000),
        segment_ms: u32::from(input.segment_ms % 8000),
        max_segment_ms: u32::from(input.max_segment_ms),
        max_fragment_ms: u32::from(input.max_fragment_ms),
        max_fragment_bytes: input.max_fragment_bytes as usize % (1 << 20),
    };
    let mut fragmenter = Fragmenter::new(config);
    let mut outputs = Vec::new();
    let mut ts: u32 = 0;
    for step in input.steps.iter().take(500) {
        ts = ts.saturating_add_signed(i32::from(step.dt));
        fragmenter.handle_tag(&tag(ts, step));
        while let Some(out) = fragmenter.poll_output() {
            outputs.push(out);
        }
    }
    fragmenter.flush();
    while let Some(out) = fragmenter.poll_output() {
        outputs.push(out);
    }
    let stats = fragmenter.stats();
    let fragments: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Fragment(f) => Some(f),
            Output::Init(_) => None,
        })
        .collect();
    let inits = outputs.len() - fragments.len();
    assert_eq!(stats.fragments, fragments.len() as u64);
    assert_eq!(stats.inits, inits as u64);
    let Some(Output::Init(first_init)) = outputs.first() else {
        assert!(outputs.is_empty(), "output before the first init segment");
        return;
    };
    let file: Vec<u8> = outputs.iter().flat_map(|o| o.chunks().concat()).collect();
    let index = scan_fragments(&file).expect("the fragmenter's file scans");
    check_index(&index, file.len() as u64);
    assert_eq!(index.inits.len(), inits, "init segments");
    assert_eq!(index.fragments.len(), fragments.len(), "fragments");
    assert_eq!(index.truncated_at, None);
    assert_eq!(index.skipped, 0);
    assert_eq!(index.valid_len(), file.len() as u64);
    let mut offset = 0u64;
    let mut k = 0;
    for out in &outputs {
        let len = out.len() as u64;
        if let Output::Fragment(f) = out {
            let info = &index.fragments[k];
            assert_eq!(info.range, offset..offset + len, "fragment {k} position");
            assert_eq!(info.sequence, f.sequence);
            assert_eq!(info.independent, f.independent);
            assert!(info.start_ms().abs_diff(f.start_ms) <= 1, "start {k}: {info:?} {f:?}");
            k += 1;
        }
        offset += len;
    }

    // Cut short anywhere.
    let cut = input.cut as usize % (file.len() + 1);
    match scan_fragments(&file[..cut]) {
        Ok(part) => {
            let complete = index
                .fragments
                .iter()
                .take_while(|f| f.range.end <= cut as u64)
                .count();
            assert_eq!(part.fragments, index.fragments[..complete], "cut at {cut}");
        }
        Err(e) => assert!(
            cut < first_init.len(),
            "cut at {cut} after the first init segment: {e:?}"
        ),
    }
}

fuzz_target!(|input: Input<'_>| run(input));
