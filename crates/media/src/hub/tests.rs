use super::*;
use crate::flv::TagKind;
use proptest::prelude::*;

/// Baseline 1280x720 SPS (no VUI), see flv::avc tests for how such bytes are built.
const SPS_720P: [u8; 9] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe4];

fn vhdr(tag: u8) -> Tag {
    let mut d = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 9];
    d.extend_from_slice(&SPS_720P);
    d.extend_from_slice(&[1, 0, 2, 0x68, tag]);
    Tag::video(0, d)
}
fn key(ts: u32, tag: u8) -> Tag {
    Tag::video(ts, vec![0x17, 1, 0, 0, 0, tag])
}
fn inter(ts: u32, tag: u8) -> Tag {
    Tag::video(ts, vec![0x27, 1, 0, 0, 0, tag])
}
fn ahdr(tag: u8) -> Tag {
    Tag::audio(0, vec![0xaf, 0, 0x12, tag])
}
fn audio(ts: u32, tag: u8) -> Tag {
    Tag::audio(ts, vec![0xaf, 1, tag])
}
fn amf(s: &str) -> Vec<u8> {
    let mut v = vec![2];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}
fn meta(tag: u8) -> Tag {
    let mut d = amf("@setDataFrame");
    d.extend_from_slice(&amf("onMetaData"));
    d.push(tag);
    Tag::script(0, d)
}

fn drain(hub: &mut Hub, id: ViewerId) -> Vec<Tag> {
    std::iter::from_fn(|| hub.poll_viewer(id)).collect()
}

/// (kind, timestamp, last byte) of each tag: enough to tell the test tags apart.
fn summary(tags: &[Tag]) -> Vec<(TagKind, u32, u8)> {
    tags.iter()
        .map(|t| (t.kind, t.timestamp_ms, *t.data.last().unwrap()))
        .collect()
}

fn events(hub: &mut Hub) -> Vec<HubEvent> {
    std::iter::from_fn(|| hub.poll_event()).collect()
}

use TagKind::{Audio as A, Script as S, Video as V};

#[test]
fn late_joiner_starts_at_the_cached_keyframe() {
    let mut hub = Hub::new(HubConfig::default());
    let early = hub.add_viewer();
    for tag in [
        meta(1),
        vhdr(2),
        ahdr(3),
        key(1000, 10),
        audio(1010, 11),
        inter(1033, 12),
    ] {
        hub.handle_tag(tag);
    }
    assert!(hub.is_live());
    assert_eq!(hub.video_dimensions(), Some((1280, 720)));
    hub.handle_tag(key(1066, 20));
    hub.handle_tag(inter(1100, 21));
    hub.handle_tag(audio(1110, 22));

    let late = hub.add_viewer();
    let got = drain(&mut hub, late);
    assert_eq!(
        summary(&got),
        [
            (S, 0, 1),
            (V, 0, 2),
            (A, 0, 3),
            (V, 0, 20),
            (V, 34, 21),
            (A, 44, 22)
        ]
    );
    // Metadata arrives without the @setDataFrame wrapper.
    assert_eq!(crate::flv::script_name(&got[0].data), Some("onMetaData"));
    assert!(got.iter().all(|t| !t.discontinuity));

    // The early viewer got everything from the first keyframe on.
    let got = drain(&mut hub, early);
    assert_eq!(got.len(), 3 + 6);
    assert_eq!(summary(&got)[3], (V, 0, 10));
    assert_eq!(summary(&got)[8], (A, 110, 22));

    hub.handle_tag(inter(1133, 23));
    assert_eq!(summary(&drain(&mut hub, late)), [(V, 67, 23)]);
    assert_eq!(summary(&drain(&mut hub, early)), [(V, 133, 23)]);
}

#[test]
fn tags_before_the_first_keyframe_are_discarded() {
    let mut hub = Hub::new(HubConfig::default());
    let v = hub.add_viewer();
    hub.handle_tag(vhdr(1));
    hub.handle_tag(inter(0, 2));
    hub.handle_tag(audio(5, 3));
    assert!(!hub.is_live());
    assert_eq!(hub.poll_viewer(v), None);
    hub.handle_tag(key(40, 4));
    assert_eq!(summary(&drain(&mut hub, v)), [(V, 0, 1), (V, 0, 4)]);
    assert_eq!(hub.stats().tags_discarded, 2);
    assert_eq!(
        events(&mut hub),
        [HubEvent::SourceLive {
            discontinuity: false,
            audio_only: false
        }]
    );
}

fn small_config() -> HubConfig {
    HubConfig {
        max_gop_bytes: 2_000,
        viewer_queue_bytes: 1_000,
        max_lags: 3,
        lag_window_ms: 1_000,
        ..HubConfig::default()
    }
}

fn big(ts: u32, keyframe: bool) -> Tag {
    let mut d = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    d.resize(200, 0xee);
    Tag::video(ts, d)
}

#[test]
fn lagging_viewer_is_resynced_at_the_next_keyframe() {
    let mut hub = Hub::new(small_config());
    hub.handle_tag(vhdr(1));
    hub.handle_tag(big(0, true));
    events(&mut hub);
    let slow = hub.add_viewer();
    let fast = hub.add_viewer();
    for i in 1..10 {
        hub.handle_tag(big(i * 40, false));
        drain(&mut hub, fast);
        assert!(hub.queued_bytes(slow).unwrap() <= 1_000);
    }
    assert_eq!(hub.stats().lags, 1);
    assert!(events(&mut hub).is_empty());
    // The slow viewer's queue was cleared when it overflowed and stays empty until the
    // next keyframe.
    let before = drain(&mut hub, slow);
    assert!(before.is_empty(), "{:?}", summary(&before));
    hub.handle_tag(big(400, true));
    assert_eq!(events(&mut hub), [HubEvent::ViewerResynced { id: slow }]);
    let got = drain(&mut hub, slow);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data, vhdr(1).data);
    assert!(video_info(&got[1].data).unwrap().is_keyframe());
    // Its timeline still starts where it joined.
    assert_eq!(got[1].timestamp_ms, 400);
    assert_eq!(hub.stats().resyncs, 1);
    assert_eq!(drain(&mut hub, fast).len(), 1);
}

#[test]
fn viewer_lagging_again_and_again_is_dropped() {
    let mut hub = Hub::new(small_config());
    hub.handle_tag(vhdr(1));
    let stuck = hub.add_viewer();
    let mut ts = 0;
    // Keyframe every 5 tags: each GOP overflows the never-drained queue.
    while hub.has_viewer(stuck) {
        hub.handle_tag(big(ts, ts % 200 == 0));
        ts += 40;
        assert!(ts < 10_000, "never dropped");
    }
    let evs = events(&mut hub);
    assert_eq!(
        evs.last(),
        Some(&HubEvent::ViewerDropped {
            id: stuck,
            reason: DropReason::Lagging { lags: 3 }
        })
    );
    assert_eq!(hub.poll_viewer(stuck), None);
    assert_eq!(hub.stats().viewers_dropped, 1);
    assert_eq!(hub.stats().viewers, 0);
}

#[test]
fn lags_far_apart_do_not_add_up() {
    let mut hub = Hub::new(small_config());
    hub.handle_tag(vhdr(1));
    let v = hub.add_viewer();
    hub.handle_tag(big(0, true));
    drain(&mut hub, v);
    let mut ts = 40;
    for round in 0..5 {
        // Stall: the fourth 264-byte tag overflows the 1000-byte budget.
        for _ in 0..4 {
            hub.handle_tag(big(ts, false));
            ts += 40;
        }
        assert_eq!(hub.stats().lags, round + 1);
        // Resync, then keep up for longer than the lag window.
        hub.handle_tag(big(ts, true));
        ts += 40;
        for _ in 0..40 {
            drain(&mut hub, v);
            hub.handle_tag(big(ts, false));
            ts += 40;
        }
        drain(&mut hub, v);
    }
    assert!(hub.has_viewer(v));
    assert_eq!(hub.stats().lags, 5);
    assert_eq!(hub.stats().resyncs, 5);
}

#[test]
fn source_switch_sends_new_headers_with_continuous_timestamps() {
    let mut hub = Hub::new(HubConfig::default());
    for tag in [
        meta(1),
        vhdr(2),
        ahdr(3),
        key(5000, 4),
        audio(5020, 5),
        inter(5040, 6),
    ] {
        hub.handle_tag(tag);
    }
    let v = hub.add_viewer();
    assert_eq!(drain(&mut hub, v).len(), 6);
    events(&mut hub);

    hub.handle_source_change();
    assert!(!hub.is_live());
    let joiner = hub.add_viewer();
    // The filler's own timeline starts anywhere; its tags before a keyframe are dropped.
    hub.handle_tag(inter(90, 7));
    hub.handle_tag(audio(95, 8));
    hub.handle_tag(vhdr(9));
    hub.handle_tag(ahdr(10));
    assert_eq!(hub.poll_viewer(v), None);
    hub.handle_tag(key(100, 11));
    hub.handle_tag(audio(110, 12));
    hub.handle_tag(inter(133, 13));

    let got = drain(&mut hub, v);
    // The metadata is kept from the first source (the filler sent none); the first tag of
    // the new timeline carries the discontinuity mark; timestamps go on after 40 + gap.
    assert_eq!(
        summary(&got),
        [
            (S, 80, 1),
            (V, 80, 9),
            (A, 80, 10),
            (V, 80, 11),
            (A, 90, 12),
            (V, 113, 13)
        ]
    );
    let marks: Vec<bool> = got.iter().map(|t| t.discontinuity).collect();
    assert_eq!(marks, [true, false, false, false, false, false]);
    assert_eq!(
        events(&mut hub),
        [HubEvent::SourceLive {
            discontinuity: true,
            audio_only: false
        }]
    );
    // A viewer that joined during the switch sees no discontinuity: it starts there.
    let got = drain(&mut hub, joiner);
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|t| !t.discontinuity));
    assert_eq!(got[0].timestamp_ms, 0);
    assert_eq!(hub.stats().tags_discarded, 2);
    assert_eq!(hub.stats().source_changes, 1);
}

#[test]
fn discontinuity_mark_survives_a_lag() {
    let mut hub = Hub::new(small_config());
    hub.handle_tag(vhdr(1));
    hub.handle_tag(big(0, true));
    let v = hub.add_viewer();
    drain(&mut hub, v);
    hub.handle_source_change();
    hub.handle_tag(big(0, true));
    // Overflow the queue before the viewer reads the marked header.
    for i in 1..8 {
        hub.handle_tag(big(i * 40, false));
    }
    assert_eq!(hub.stats().lags, 1);
    hub.handle_tag(big(320, true));
    let got = drain(&mut hub, v);
    assert!(got[0].discontinuity);
    assert_eq!(got.iter().filter(|t| t.discontinuity).count(), 1);
}

#[test]
fn oversized_gop_is_not_cached() {
    let mut hub = Hub::new(small_config());
    hub.handle_tag(vhdr(1));
    for i in 0..12 {
        hub.handle_tag(big(i * 40, i == 0));
    }
    assert_eq!(hub.stats().gop_overflows, 1);
    let v = hub.add_viewer();
    assert_eq!(hub.poll_viewer(v), None);
    hub.handle_tag(big(480, true));
    let got = drain(&mut hub, v);
    assert_eq!(got.len(), 2);
    assert!(video_info(&got[1].data).unwrap().is_keyframe());
    assert!(hub.retained_bytes() <= hub.config().retained_bound(1));
}

#[test]
fn gop_larger_than_the_viewer_budget_makes_joiners_wait() {
    let mut hub = Hub::new(HubConfig {
        max_gop_bytes: 5_000,
        viewer_queue_bytes: 1_000,
        ..HubConfig::default()
    });
    hub.handle_tag(vhdr(1));
    for i in 0..6 {
        hub.handle_tag(big(i * 40, i == 0));
    }
    let v = hub.add_viewer();
    assert_eq!(hub.poll_viewer(v), None);
    hub.handle_tag(big(240, true));
    assert_eq!(drain(&mut hub, v).len(), 2);
    assert_eq!(hub.stats().lags, 0);
}

#[test]
fn audio_only_source_starts_after_the_grace_period() {
    let mut hub = Hub::new(HubConfig::default());
    let v = hub.add_viewer();
    hub.handle_tag(ahdr(1));
    let mut ts = 7_000;
    while ts < 7_000 + 1_000 {
        hub.handle_tag(audio(ts, 2));
        ts += 23;
    }
    assert!(!hub.is_live());
    hub.handle_tag(audio(ts, 3));
    assert!(hub.is_live());
    assert_eq!(summary(&drain(&mut hub, v)), [(A, 0, 1), (A, 0, 3)]);
    assert_eq!(
        events(&mut hub),
        [HubEvent::SourceLive {
            discontinuity: false,
            audio_only: true
        }]
    );
    // Late joiners start at the next audio frame.
    let late = hub.add_viewer();
    hub.handle_tag(audio(ts + 23, 4));
    assert_eq!(summary(&drain(&mut hub, late)), [(A, 0, 1), (A, 0, 4)]);
    // Video appearing later starts at its first keyframe.
    hub.handle_tag(vhdr(5));
    hub.handle_tag(inter(ts + 30, 6));
    hub.handle_tag(key(ts + 60, 7));
    let got = summary(&drain(&mut hub, v));
    assert_eq!(got, [(A, 23, 4), (V, 23, 5), (V, 60, 7)]);
}

#[test]
fn timestamps_survive_wrap_jumps_and_jitter() {
    let mut hub = Hub::new(HubConfig::default());
    let v = hub.add_viewer();
    hub.handle_tag(vhdr(1));
    hub.handle_tag(key(u32::MAX - 39, 2));
    hub.handle_tag(inter(u32::MAX, 3));
    hub.handle_tag(inter(39, 4)); // wrapped: 40 ms later
    hub.handle_tag(audio(30, 5)); // interleaving jitter: clamped, never backwards
    hub.handle_tag(inter(3_600_000, 6)); // a jump of an hour: bridged with the gap
    hub.handle_tag(inter(3_600_040, 7));
    let got = summary(&drain(&mut hub, v));
    assert_eq!(
        got,
        [
            (V, 0, 1),
            (V, 0, 2),
            (V, 39, 3),
            (V, 79, 4),
            (A, 79, 5),
            (V, 119, 6),
            (V, 159, 7)
        ]
    );
}

#[test]
fn header_changes_are_forwarded_and_invalidate_the_cache() {
    let mut hub = Hub::new(HubConfig::default());
    hub.handle_tag(vhdr(1));
    hub.handle_tag(key(0, 2));
    let v = hub.add_viewer();
    drain(&mut hub, v);
    // Repeating the same header keeps the cache.
    hub.handle_tag(vhdr(1));
    let joiner = hub.add_viewer();
    assert_eq!(summary(&drain(&mut hub, joiner)), [(V, 0, 1), (V, 0, 2)]);
    hub.handle_tag(vhdr(9));
    hub.handle_tag(inter(40, 3));
    assert_eq!(
        summary(&drain(&mut hub, v)),
        [(V, 0, 1), (V, 0, 9), (V, 40, 3)]
    );
    let late = hub.add_viewer();
    assert_eq!(hub.poll_viewer(late), None);
    hub.handle_tag(key(80, 4));
    assert_eq!(summary(&drain(&mut hub, late)), [(V, 0, 9), (V, 0, 4)]);
}

#[test]
fn bad_and_oversized_tags_are_discarded() {
    let mut hub = Hub::new(HubConfig {
        max_header_bytes: 100,
        ..HubConfig::default()
    });
    let v = hub.add_viewer();
    hub.handle_tag(Tag::video(0, vec![0x17, 1]));
    hub.handle_tag(Tag::audio(0, Vec::new()));
    let mut huge = vhdr(1);
    let mut d = huge.data.to_vec();
    d.resize(101, 0);
    huge.data = d.into();
    hub.handle_tag(huge);
    hub.handle_tag(key(0, 1));
    assert_eq!(summary(&drain(&mut hub, v)), [(V, 0, 1)]);
    assert_eq!(hub.stats().tags_discarded, 3);
}

#[test]
fn counters() {
    let mut hub = Hub::new(HubConfig::default());
    let a = hub.add_viewer();
    let b = hub.add_viewer();
    hub.handle_tag(vhdr(1));
    hub.handle_tag(key(0, 2));
    hub.handle_tag(key(40, 3));
    assert!(hub.remove_viewer(b));
    assert!(!hub.remove_viewer(b));
    assert!(!hub.has_viewer(b));
    assert_eq!(hub.poll_viewer(b), None);
    let bytes: usize = drain(&mut hub, a).iter().map(|t| t.data.len()).sum();
    let stats = hub.stats();
    assert_eq!(stats.viewers, 1);
    assert_eq!(stats.peak_viewers, 2);
    assert_eq!(stats.keyframes, 2);
    assert_eq!(stats.tags_in, 3);
    assert_eq!(stats.tags_out, 3);
    assert_eq!(stats.bytes_out, bytes as u64);
    assert_eq!(a.to_string(), "viewer#0");
    assert_eq!(b.get(), 1);
}

#[test]
fn unpolled_events_are_bounded() {
    let mut hub = Hub::new(HubConfig {
        max_lags: 1,
        max_events: 2,
        ..small_config()
    });
    hub.handle_tag(vhdr(1));
    hub.handle_tag(big(0, true));
    for _ in 0..5 {
        hub.add_viewer();
    }
    for i in 1..10 {
        hub.handle_tag(big(i * 40, false));
    }
    assert_eq!(hub.stats().viewers_dropped, 5);
    assert_eq!(events(&mut hub).len(), 2);
    assert_eq!(hub.stats().events_lost, 4);
}

// ---------------------------------------------------------------------------------------
// Property test: random sources, viewers and polling.

/// What a generated tag is; its payload ends with a unique 8-byte id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum K {
    VHdr,
    AHdr,
    Meta,
    Key,
    Inter,
    Audio,
    Cue,
    Junk,
}

#[derive(Clone, Debug)]
enum Op {
    Tag {
        k: K,
        size: usize,
        dt: i64,
    },
    /// A new source; it sends its headers first (with or without video).
    Switch {
        video: bool,
        start: u32,
    },
    Add,
    Remove(usize),
    Poll {
        viewer: usize,
        max: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        1 => Just(K::VHdr),
        1 => Just(K::AHdr),
        1 => Just(K::Meta),
        2 => Just(K::Key),
        10 => Just(K::Inter),
        10 => Just(K::Audio),
        1 => Just(K::Cue),
        1 => Just(K::Junk),
    ];
    let dt = prop_oneof![
        20 => 0i64..60,
        2 => -20i64..0,
        1 => Just(60_000i64),
    ];
    prop_oneof![
        24 => (kind, 0usize..1_500, dt).prop_map(|(k, size, dt)| Op::Tag { k, size, dt }),
        1 => (any::<bool>(), any::<u32>()).prop_map(|(video, start)| Op::Switch { video, start }),
        3 => Just(Op::Add),
        1 => (0usize..8).prop_map(Op::Remove),
        12 => (0usize..8, 0usize..30).prop_map(|(viewer, max)| Op::Poll { viewer, max }),
    ]
}

/// What the test knows about every tag it sent, by id.
#[derive(Clone, Copy, Debug)]
struct Sent {
    k: K,
    generation: u32,
    /// For inter frames: the video frame sent just before in the same source.
    prev_video: Option<u64>,
    /// The latest headers sent before this tag.
    video_header: Option<u64>,
    audio_header: Option<u64>,
}

#[derive(Debug, Default)]
struct Watch {
    id: Option<ViewerId>,
    /// Drained after every step; must never lag.
    diligent: bool,
    got_any: bool,
    last_ts: Option<u32>,
    video_header: Option<u64>,
    audio_header: Option<u64>,
    last_video: Option<u64>,
    last_frame_generation: Option<u32>,
    marked_since_last_frame: bool,
    expect_header_next: bool,
}

struct Harness {
    hub: Hub,
    sent: Vec<Sent>,
    generation: u32,
    in_ts: u32,
    prev_video: Option<u64>,
    video_header: Option<u64>,
    audio_header: Option<u64>,
    watches: Vec<Watch>,
}

fn payload(k: K, size: usize, id: u64) -> Tag {
    let (kind, mut data) = match k {
        K::VHdr => (TagKind::Video, vec![0x17, 0, 0, 0, 0]),
        K::Key => (TagKind::Video, vec![0x17, 1, 0, 0, 0]),
        K::Inter => (TagKind::Video, vec![0x27, 1, 0, 0, 0]),
        K::AHdr => (TagKind::Audio, vec![0xaf, 0]),
        K::Audio => (TagKind::Audio, vec![0xaf, 1]),
        K::Meta => (TagKind::Script, amf("onMetaData")),
        K::Cue => (TagKind::Script, amf("onCuePoint")),
        K::Junk => (TagKind::Video, vec![]),
    };
    if k == K::Junk {
        return Tag::new(kind, 0, data);
    }
    data.resize(data.len() + size, 0x55);
    data.extend_from_slice(&id.to_be_bytes());
    Tag::new(kind, 0, data)
}

fn id_of(tag: &Tag) -> u64 {
    let d = &tag.data[tag.data.len() - 8..];
    u64::from_be_bytes(d.try_into().unwrap())
}

impl Harness {
    fn new(config: HubConfig) -> Harness {
        Harness {
            hub: Hub::new(config),
            sent: Vec::new(),
            generation: 0,
            in_ts: 0,
            prev_video: None,
            video_header: None,
            audio_header: None,
            watches: Vec::new(),
        }
    }

    fn send(&mut self, k: K, size: usize, dt: i64) {
        self.in_ts = (i64::from(self.in_ts) + dt).rem_euclid(1 << 32) as u32;
        let id = self.sent.len() as u64;
        let mut tag = payload(k, size, id);
        tag.timestamp_ms = self.in_ts;
        match k {
            K::VHdr => self.video_header = Some(id),
            K::AHdr => self.audio_header = Some(id),
            _ => {}
        }
        self.sent.push(Sent {
            k,
            generation: self.generation,
            prev_video: if k == K::Inter { self.prev_video } else { None },
            video_header: self.video_header,
            audio_header: self.audio_header,
        });
        if matches!(k, K::Key | K::Inter) {
            self.prev_video = Some(id);
        }
        self.hub.handle_tag(tag);
    }

    fn switch(&mut self, video: bool, start: u32) {
        self.hub.handle_source_change();
        self.generation += 1;
        self.prev_video = None;
        self.in_ts = start;
        self.send(K::Meta, 10, 0);
        if video {
            self.send(K::VHdr, 30, 0);
        }
        self.send(K::AHdr, 4, 0);
    }

    fn add(&mut self, diligent: bool) {
        let id = self.hub.add_viewer();
        self.watches.push(Watch {
            id: Some(id),
            diligent,
            ..Watch::default()
        });
    }

    fn poll(&mut self, w: usize, max: usize) -> Result<(), TestCaseError> {
        let Some(id) = self.watches[w].id else {
            return Ok(());
        };
        for _ in 0..max {
            let Some(tag) = self.hub.poll_viewer(id) else {
                break;
            };
            let watch = &mut self.watches[w];
            // (c) timestamps never decrease.
            if let Some(last) = watch.last_ts {
                prop_assert!(
                    tag.timestamp_ms >= last,
                    "timestamp went back: {last} -> {}",
                    tag.timestamp_ms
                );
            }
            watch.last_ts = Some(tag.timestamp_ms);
            let sent = self.sent[id_of(&tag) as usize];
            // (b) a viewer's output, and its output after a resync, starts with headers.
            let is_header = matches!(sent.k, K::VHdr | K::AHdr | K::Meta);
            if !watch.got_any || watch.expect_header_next {
                prop_assert!(is_header, "{:?} first after (re)sync", sent.k);
                watch.got_any = true;
                watch.expect_header_next = false;
            }
            if tag.discontinuity {
                watch.marked_since_last_frame = true;
            }
            match sent.k {
                K::VHdr => watch.video_header = Some(id_of(&tag)),
                K::AHdr => watch.audio_header = Some(id_of(&tag)),
                K::Key | K::Inter | K::Audio => {
                    // Every frame is decodable: the viewer holds the headers it was coded
                    // with and, for an inter frame, the frame before it.
                    if sent.k == K::Audio {
                        prop_assert_eq!(watch.audio_header, sent.audio_header);
                    } else {
                        prop_assert_eq!(watch.video_header, sent.video_header);
                    }
                    if sent.k == K::Inter {
                        prop_assert!(sent.prev_video.is_some(), "inter frame before any keyframe");
                        prop_assert_eq!(
                            watch.last_video,
                            sent.prev_video,
                            "broken reference chain"
                        );
                    }
                    if sent.k != K::Audio {
                        watch.last_video = Some(id_of(&tag));
                    }
                    // A frame of a new source comes after a discontinuity mark.
                    if let Some(g) = watch.last_frame_generation
                        && g != sent.generation
                    {
                        prop_assert!(watch.marked_since_last_frame, "source switch without mark");
                    }
                    watch.last_frame_generation = Some(sent.generation);
                    watch.marked_since_last_frame = false;
                }
                K::Meta | K::Cue | K::Junk => {}
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        while let Some(event) = self.hub.poll_event() {
            match event {
                HubEvent::ViewerDropped { id, .. } => {
                    let w = self.watches.iter_mut().find(|w| w.id == Some(id)).unwrap();
                    prop_assert!(!w.diligent, "a viewer that keeps up was dropped");
                    w.id = None;
                    prop_assert!(!self.hub.has_viewer(id));
                }
                HubEvent::ViewerResynced { id } => {
                    let w = self.watches.iter_mut().find(|w| w.id == Some(id)).unwrap();
                    prop_assert!(!w.diligent, "a viewer that keeps up was resynced");
                    w.expect_header_next = true;
                }
                HubEvent::SourceLive { .. } => {}
            }
        }
        let budget = self.hub.config().viewer_queue_bytes;
        for w in &self.watches {
            if let Some(id) = w.id {
                // (a) no queue exceeds its budget.
                prop_assert!(self.hub.queued_bytes(id).unwrap() <= budget);
            }
        }
        // (d) total retained bytes stay under the configured bound.
        let bound = self.hub.config().retained_bound(self.hub.viewer_count());
        prop_assert!(self.hub.retained_bytes() <= bound);
        for w in 0..self.watches.len() {
            if self.watches[w].diligent {
                self.poll(w, usize::MAX)?;
            }
        }
        Ok(())
    }
}

fn prop_config() -> HubConfig {
    HubConfig {
        max_gop_bytes: 20_000,
        viewer_queue_bytes: 25_000,
        max_header_bytes: 2_000,
        max_lags: 3,
        lag_window_ms: 2_000,
        audio_only_after_ms: 500,
        max_events: 64,
        ..HubConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fan_out_invariants_hold_for_any_input(
        start in any::<u32>(),
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mut h = Harness::new(prop_config());
        h.add(true);
        h.switch(true, start);
        h.check()?;
        for op in ops {
            match op {
                Op::Tag { k, size, dt } => {
                    // Headers stay under max_header_bytes so none is discarded.
                    let size = if matches!(k, K::VHdr | K::AHdr | K::Meta) { size.min(1_000) } else { size };
                    h.send(k, size, dt);
                }
                Op::Switch { video, start } => h.switch(video, start),
                Op::Add => h.add(false),
                Op::Remove(i) => {
                    let live: Vec<usize> = (0..h.watches.len())
                        .filter(|&w| h.watches[w].id.is_some() && !h.watches[w].diligent)
                        .collect();
                    if !live.is_empty() {
                        let w = live[i % live.len()];
                        let id = h.watches[w].id.take().unwrap();
                        prop_assert!(h.hub.remove_viewer(id));
                    }
                }
                Op::Poll { viewer, max } => {
                    if !h.watches.is_empty() {
                        let w = viewer % h.watches.len();
                        h.poll(w, max)?;
                    }
                }
            }
            h.check()?;
        }
        let stats = h.hub.stats();
        prop_assert!(stats.peak_viewers >= stats.viewers);
        prop_assert_eq!(stats.viewers, h.watches.iter().filter(|w| w.id.is_some()).count());
    }
}
