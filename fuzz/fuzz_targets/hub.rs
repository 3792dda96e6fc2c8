//! One channel's fan-out (`slotcast_media::Hub`) driven by an arbitrary sequence of
//! operations: tags of any kind, timestamp and body (well-formed AVC/AAC/metadata tags as
//! well as raw bytes), source changes, viewers added, removed and polled, events polled,
//! under an arbitrary (small) configuration.
//!
//! After every operation: the bytes held stay within `HubConfig::retained_bound`, every
//! viewer's queue within its budget, the viewer count matches the viewers not removed or
//! dropped, and the counters match what was done. Every tag a viewer receives is
//! well-formed (unreadable tags are never forwarded, `@setDataFrame` is stripped) and
//! each viewer's timestamps never go backwards.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_media::flv::{audio_info, is_metadata, script_name, video_info};
use slotcast_media::{Hub, HubConfig, HubEvent, Tag, TagKind, ViewerId};

/// AVC sequence headers (tag bodies) that ffmpeg's libx264 wrote for 64x48 and 66x50
/// test pictures.
const AVC_HEADER_64X48: &str = "170000000001f4000affe1001767f4000a9196847b0110000003001000000300a0f1226a01000568ce0f1920fff8f800";
const AVC_HEADER_66X50: &str = "17000000000164000affe1001a6764000aace4149e22230110000003001000000300a0f122512001000668ebe3cb22c0fdf8f800";
const AAC_HEADER: &[u8] = &[0xaf, 0x00, 0x15, 0x88, 0x56, 0xe5, 0x00];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn amf0_string(s: &str) -> Vec<u8> {
    let mut out = vec![2];
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

#[derive(Arbitrary, Debug)]
enum Body<'a> {
    /// A raw body of any kind.
    Raw { kind: u8, data: &'a [u8] },
    AvcHeader { second: bool },
    AvcKeyframe { pad: u16 },
    AvcInter { pad: u16 },
    AvcEnd,
    AacHeader,
    AacFrame { pad: u16 },
    /// A legacy (non-AAC) audio frame.
    Mp3Frame { pad: u16 },
    Metadata { wrapped: bool, pad: u16 },
    CuePoint { pad: u16 },
    Command,
}

#[derive(Arbitrary, Debug)]
enum Time {
    Same,
    Forward(u16),
    Back(u16),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    Tag { time: Time, body: Body<'a> },
    SourceChange,
    AddViewer,
    RemoveViewer(u8),
    Poll { viewer: u8, max: u8 },
    PollAll,
    PollEvents,
}

#[derive(Arbitrary, Debug)]
struct Config {
    max_gop_bytes: u16,
    viewer_queue_bytes: u16,
    max_header_bytes: u16,
    max_lags: u8,
    lag_window_ms: u16,
    switch_gap_ms: u16,
    max_timestamp_jump_ms: u16,
    audio_only_after_ms: u16,
    max_events: u8,
    scale: u8,
}

impl Config {
    /// Byte budgets up to ~1 MiB, times up to ~65 s: output timestamps grow by at most
    /// ~65 s per operation, so no viewer's 32-bit timeline wraps within one input.
    fn hub_config(&self) -> HubConfig {
        let scale = 1usize << (self.scale % 5);
        HubConfig {
            max_gop_bytes: usize::from(self.max_gop_bytes) * scale,
            viewer_queue_bytes: usize::from(self.viewer_queue_bytes) * scale,
            max_header_bytes: usize::from(self.max_header_bytes),
            max_lags: u32::from(self.max_lags % 6),
            lag_window_ms: u32::from(self.lag_window_ms),
            switch_gap_ms: u32::from(self.switch_gap_ms % 2000),
            max_timestamp_jump_ms: u32::from(self.max_timestamp_jump_ms),
            audio_only_after_ms: u32::from(self.audio_only_after_ms % 5000),
            max_events: usize::from(self.max_events % 32),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    config: Config,
    ops: Vec<Op<'a>>,
}

fn padded(mut head: Vec<u8>, pad: u16) -> Vec<u8> {
    let n = usize::from(pad % 6000);
    head.extend((0..n).map(|i| i as u8));
    head
}

fn body(b: &Body<'_>) -> (TagKind, Vec<u8>) {
    match b {
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
        Body::AvcKeyframe { pad } => (TagKind::Video, padded(vec![0x17, 1, 0, 0, 0], *pad)),
        Body::AvcInter { pad } => (TagKind::Video, padded(vec![0x27, 1, 0, 0, 0x28], *pad)),
        Body::AvcEnd => (TagKind::Video, vec![0x17, 2, 0, 0, 0]),
        Body::AacHeader => (TagKind::Audio, AAC_HEADER.to_vec()),
        Body::AacFrame { pad } => (TagKind::Audio, padded(vec![0xaf, 1], *pad)),
        Body::Mp3Frame { pad } => (TagKind::Audio, padded(vec![0x2f], *pad)),
        Body::Metadata { wrapped, pad } => {
            let mut head = if *wrapped {
                amf0_string("@setDataFrame")
            } else {
                Vec::new()
            };
            head.extend(amf0_string("onMetaData"));
            (TagKind::Script, padded(head, *pad))
        }
        Body::CuePoint { pad } => (TagKind::Script, padded(amf0_string("onCuePoint"), *pad)),
        Body::Command => (TagKind::Video, vec![0x57, 0]),
    }
}

struct Viewer {
    id: ViewerId,
    gone: bool,
    last_ts: Option<u32>,
}

struct Harness {
    hub: Hub,
    viewers: Vec<Viewer>,
    tags_in: u64,
    tags_out: u64,
    source_changes: u64,
    input_ts: u32,
}

impl Harness {
    fn poll(&mut self, index: usize, max: usize) {
        let Some(v) = self.viewers.get_mut(index) else {
            return;
        };
        for _ in 0..max {
            let Some(tag) = self.hub.poll_viewer(v.id) else {
                break;
            };
            assert!(!v.gone, "{} polled a tag after it was removed", v.id);
            self.tags_out += 1;
            if let Some(last) = v.last_ts {
                assert!(
                    tag.timestamp_ms >= last,
                    "{}: timestamp went back from {last} to {}",
                    v.id,
                    tag.timestamp_ms
                );
            }
            v.last_ts = Some(tag.timestamp_ms);
            check_delivered(&tag, self.hub.config());
        }
    }

    fn check(&mut self) {
        let config = self.hub.config().clone();
        let mut alive = 0;
        for v in &mut self.viewers {
            if v.gone {
                assert!(!self.hub.has_viewer(v.id));
                assert_eq!(self.hub.queued_bytes(v.id), None);
                continue;
            }
            if !self.hub.has_viewer(v.id) {
                // Dropped for lagging.
                v.gone = true;
                continue;
            }
            alive += 1;
            let queued = self.hub.queued_bytes(v.id).expect("viewer is there");
            assert!(
                queued <= config.viewer_queue_bytes,
                "{} holds {queued} bytes, budget {}",
                v.id,
                config.viewer_queue_bytes
            );
        }
        assert_eq!(self.hub.viewer_count(), alive, "viewer count");
        let retained = self.hub.retained_bytes();
        let bound = config.retained_bound(self.hub.viewer_count());
        assert!(retained <= bound, "retains {retained} bytes, bound {bound}");
        let stats = self.hub.stats();
        assert_eq!(stats.tags_in, self.tags_in);
        assert_eq!(stats.tags_out, self.tags_out);
        assert_eq!(stats.source_changes, self.source_changes);
        assert_eq!(stats.viewers, alive);
        assert!(stats.peak_viewers >= alive);
    }
}

/// What a viewer receives is always readable: the hub discards what it cannot classify.
fn check_delivered(tag: &Tag, config: &HubConfig) {
    match tag.kind {
        TagKind::Video => {
            let info = video_info(&tag.data).expect("forwarded an unreadable video tag");
            if info.is_sequence_header() {
                assert!(tag.data.len() <= config.max_header_bytes);
            }
        }
        TagKind::Audio => {
            let info = audio_info(&tag.data).expect("forwarded an unreadable audio tag");
            if info.is_sequence_header() {
                assert!(tag.data.len() <= config.max_header_bytes);
            }
        }
        TagKind::Script => {
            if is_metadata(&tag.data) {
                assert_eq!(
                    script_name(&tag.data),
                    Some("onMetaData"),
                    "forwarded metadata still wrapped in @setDataFrame"
                );
                assert!(tag.data.len() <= config.max_header_bytes);
            }
        }
    }
}

fn run(input: Input<'_>) {
    let mut h = Harness {
        hub: Hub::new(input.config.hub_config()),
        viewers: Vec::new(),
        tags_in: 0,
        tags_out: 0,
        source_changes: 0,
        input_ts: 0,
    };
    for op in input.ops.iter().take(3000) {
        match op {
            Op::Tag { time, body: b } => {
                h.input_ts = match *time {
                    Time::Same => h.input_ts,
                    Time::Forward(d) => h.input_ts.wrapping_add(u32::from(d)),
                    Time::Back(d) => h.input_ts.wrapping_sub(u32::from(d)),
                    Time::Raw(ts) => ts,
                };
                let (kind, data) = body(b);
                h.hub.handle_tag(Tag::new(kind, h.input_ts, data));
                h.tags_in += 1;
            }
            Op::SourceChange => {
                h.hub.handle_source_change();
                h.source_changes += 1;
            }
            Op::AddViewer => {
                let id = h.hub.add_viewer();
                assert!(h.viewers.iter().all(|v| v.id != id), "viewer id {id} reused");
                h.viewers.push(Viewer {
                    id,
                    gone: false,
                    last_ts: None,
                });
            }
            Op::RemoveViewer(i) => {
                if !h.viewers.is_empty() {
                    let n = h.viewers.len();
                    let v = &mut h.viewers[usize::from(*i) % n];
                    let present = h.hub.has_viewer(v.id);
                    assert_eq!(h.hub.remove_viewer(v.id), present);
                    assert!(!h.hub.has_viewer(v.id));
                    v.gone = true;
                }
            }
            Op::Poll { viewer, max } => {
                if !h.viewers.is_empty() {
                    let i = usize::from(*viewer) % h.viewers.len();
                    h.poll(i, usize::from(*max));
                }
            }
            Op::PollAll => {
                for i in 0..h.viewers.len() {
                    h.poll(i, usize::MAX);
                }
            }
            Op::PollEvents => {
                while let Some(event) = h.hub.poll_event() {
                    if let HubEvent::ViewerDropped { id, .. } = event {
                        assert!(!h.hub.has_viewer(id), "{id} dropped but still served");
                    }
                }
            }
        }
        h.check();
    }
    for i in 0..h.viewers.len() {
        h.poll(i, usize::MAX);
        let v = &h.viewers[i];
        if !v.gone {
            assert_eq!(h.hub.queued_bytes(v.id), Some(0), "drained viewer still holds bytes");
        }
    }
    h.check();
}

fuzz_target!(|input: Input<'_>| run(input));
