use super::*;
use crate::flv::parse_flv;
use crate::fmp4::tests::{aac_header_44k, av_stream};
use proptest::prelude::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Everything `cursor` reads now, as text: prefixes in brackets.
fn read_all(feed: &Feed, cursor: &mut Cursor, max: usize) -> (Read, String) {
    let mut out = String::new();
    let read = feed.read(cursor, max, |p| match p {
        Piece::Prefix(x) => out.push_str(&format!("[{}]", std::str::from_utf8(x).unwrap())),
        Piece::Unit { data, .. } => out.push_str(std::str::from_utf8(data).unwrap()),
    });
    (read, out)
}

#[test]
fn a_new_viewer_waits_for_a_sync_point_then_starts_at_the_latest_with_its_prefix() {
    let mut feed = Feed::new(FeedConfig::default());
    let mut early = Cursor::new();
    feed.push(0, b("x"));
    assert_eq!(
        read_all(&feed, &mut early, 1 << 20),
        (Read::Wait, String::new())
    );
    feed.push_sync(10, b("H1"), b("K1"));
    feed.push(20, b("a"));
    feed.push_sync(30, b("H2"), b("K2"));
    feed.push(40, b("b"));
    let (read, got) = read_all(&feed, &mut early, 1 << 20);
    assert_eq!((read, got.as_str()), (Read::Sent, "[H2]K2b"));
    // Live from here: no prefix again, every unit in order.
    feed.push(50, b("c"));
    feed.push_sync(60, b("H3"), b("K3"));
    assert_eq!(read_all(&feed, &mut early, 1 << 20).1, "cK3");
    assert_eq!(
        read_all(&feed, &mut early, 1 << 20),
        (Read::Wait, String::new())
    );

    let mut late = Cursor::new();
    assert_eq!(read_all(&feed, &mut late, 1 << 20).1, "[H3]K3");
}

/// Filler (shared), then program 1, then program 2 back to back, then filler.
#[test]
fn a_program_viewer_reads_shared_units_and_its_program_only() {
    let mut feed = Feed::new(FeedConfig::default());
    let mut one = Cursor::for_program(1);
    let mut two = Cursor::for_program(2);
    let mut all = Cursor::new();
    feed.push_sync(0, b("Hf"), b("F0"));
    feed.push(10, b("f"));
    assert_eq!(read_all(&feed, &mut one, 1 << 20).1, "[Hf]F0f");
    assert_eq!(read_all(&feed, &mut two, 1 << 20).1, "[Hf]F0f");
    feed.set_label(1);
    feed.push_sync(20, b("H1"), b("A0"));
    feed.push(30, b("a"));
    // Program 1's viewer gets it; program 2's skips it and waits.
    assert_eq!(
        read_all(&feed, &mut one, 1 << 20),
        (Read::Sent, "A0a".into())
    );
    assert_eq!(
        read_all(&feed, &mut two, 1 << 20),
        (Read::Wait, String::new())
    );
    feed.push_sync(40, b("H1"), b("A1"));
    assert_eq!(
        read_all(&feed, &mut two, 1 << 20),
        (Read::Wait, String::new())
    );
    // A new viewer of program 2 does not start at program 1's keyframe either.
    let mut late_two = Cursor::for_program(2);
    assert_eq!(
        read_all(&feed, &mut late_two, 1 << 20),
        (Read::Wait, String::new())
    );
    feed.set_label(2);
    feed.push(45, b("x"));
    feed.push_sync(50, b("H2"), b("B0"));
    feed.push(60, b("b"));
    // Program 1's viewer ends at the first unit of program 2, with program 1's last
    // units sent first.
    assert_eq!(
        read_all(&feed, &mut one, 1 << 20),
        (Read::Sent, "A1".into())
    );
    assert_eq!(
        read_all(&feed, &mut one, 1 << 20),
        (Read::Ended, String::new())
    );
    assert_eq!(
        read_all(&feed, &mut one, 1 << 20),
        (Read::Ended, String::new())
    );
    // Program 2's viewers join at its first keyframe, headers first; never "x" before it.
    assert_eq!(
        read_all(&feed, &mut two, 1 << 20),
        (Read::Sent, "[H2]B0b".into())
    );
    assert_eq!(read_all(&feed, &mut late_two, 1 << 20).1, "[H2]B0b");
    feed.set_label(SHARED);
    feed.push_sync(70, b("Hf"), b("F1"));
    assert_eq!(read_all(&feed, &mut two, 1 << 20).1, "F1");
    // A cursor for everything reads it all.
    assert_eq!(read_all(&feed, &mut all, 1 << 20).1, "[Hf]F1");
}

#[test]
fn a_read_stops_near_max_but_always_makes_progress() {
    let mut feed = Feed::new(FeedConfig::default());
    feed.push_sync(0, b(""), b("aaaa"));
    feed.push(1, b("bbbb"));
    feed.push(2, b("cccc"));
    let mut c = Cursor::new();
    assert_eq!(read_all(&feed, &mut c, 1).1, "[]aaaa");
    assert_eq!(read_all(&feed, &mut c, 5).1, "bbbbcccc");
}

#[test]
fn a_viewer_that_falls_off_the_feed_resyncs_at_the_latest_sync_point_then_is_dropped() {
    let config = FeedConfig {
        max_bytes: 3 * (100 + UNIT_OVERHEAD),
        max_lags: 3,
        lag_window_ms: 1000,
    };
    let mut feed = Feed::new(config);
    let unit = |c: char| Bytes::from(c.to_string().repeat(100));
    let mut slow = Cursor::new();
    feed.push_sync(0, b("H"), unit('k'));
    assert_eq!(feed.read(&mut slow, 1 << 20, |_| ()), Read::Sent);
    let mut ts = 0;
    for round in 1..=3 {
        // Four units arrive, the feed keeps three: the slow viewer's next one is gone.
        for c in ['a', 'b', 'K', 'c'] {
            ts += 10;
            if c == 'K' {
                feed.push_sync(ts, b("H"), unit(c));
            } else {
                feed.push(ts, unit(c));
            }
        }
        assert!(feed.retained_bytes() <= 3 * (100 + UNIT_OVERHEAD));
        let (read, got) = read_all(&feed, &mut slow, 1 << 20);
        if round < 3 {
            assert_eq!(read, Read::Sent);
            assert_eq!(got, format!("[H]{}{}", "K".repeat(100), "c".repeat(100)));
            assert_eq!(slow.resyncs(), round);
        } else {
            assert_eq!(read, Read::Dropped { lags: 3 });
        }
    }
}

#[test]
fn lags_far_apart_in_media_time_do_not_add_up() {
    let config = FeedConfig {
        max_bytes: 2 * (1 + UNIT_OVERHEAD),
        max_lags: 2,
        lag_window_ms: 100,
    };
    let mut feed = Feed::new(config);
    let mut c = Cursor::new();
    feed.push_sync(0, b(""), b("k"));
    assert_eq!(feed.read(&mut c, 1 << 20, |_| ()), Read::Sent);
    let mut ts = 0;
    for _ in 0..5 {
        for _ in 0..3 {
            ts += 500;
            feed.push_sync(ts, b(""), b("k"));
        }
        assert_eq!(feed.read(&mut c, 1 << 20, |_| ()), Read::Sent);
    }
    assert_eq!(c.resyncs(), 5);
}

#[test]
fn flv_viewers_get_headers_then_a_keyframe_with_their_own_timestamps_from_zero() {
    let mut feed = Feed::new(FeedConfig::default());
    let mut enc = FlvEncoder::new();
    let tags = av_stream(5000, 4000, 2000, true);
    let mut early = Cursor::new();
    let mut early_out = BytesMut::from(&FlvViewer::file_header()[..]);
    let mut early_w = FlvViewer::new();
    for tag in &tags {
        enc.push(&mut feed, tag);
        feed.read(&mut early, 1 << 20, |p| early_w.write(p, &mut early_out));
    }
    let mut late = Cursor::new();
    let mut late_out = BytesMut::from(&FlvViewer::file_header()[..]);
    let mut late_w = FlvViewer::new();
    feed.read(&mut late, 1 << 20, |p| late_w.write(p, &mut late_out));

    for (out, first_media) in [(early_out, 5000), (late_out, 7000)] {
        let (_, got) = parse_flv(&out).expect("a valid FLV stream");
        let kinds: Vec<_> = got.iter().take(2).map(|t| t.kind).collect();
        assert_eq!(kinds, [TagKind::Video, TagKind::Audio], "headers first");
        let first = &got[2];
        assert!(video_info(&first.data).unwrap().is_keyframe());
        assert_eq!(first.timestamp_ms, 0);
        // Every tag of the source is there from the keyframe on, shifted by the same base.
        let expected: Vec<u32> = tags
            .iter()
            .filter(|t| t.timestamp_ms >= first_media && header_slot(t).is_none())
            .map(|t| t.timestamp_ms - first_media)
            .collect();
        let rebased: Vec<u32> = got[2..].iter().map(|t| t.timestamp_ms).collect();
        assert_eq!(rebased, expected);
    }
}

#[test]
fn audio_only_flv_starts_on_any_audio_frame() {
    let mut feed = Feed::new(FeedConfig::default());
    let mut enc = FlvEncoder::new();
    enc.push(&mut feed, &Tag::audio(0, aac_header_44k()));
    enc.push(&mut feed, &Tag::audio(23, vec![0xaf, 1, 9]));
    let mut c = Cursor::new();
    let mut out = BytesMut::new();
    let mut w = FlvViewer::new();
    assert_eq!(
        feed.read(&mut c, 1 << 20, |p| w.write(p, &mut out)),
        Read::Sent
    );
    assert_eq!(out.len(), 2 * 15 + 4 + 3);
}

#[test]
fn mp4_viewers_start_with_the_init_segment_at_an_independent_fragment() {
    let mut feed = Feed::new(FeedConfig::default());
    let mut enc = Mp4Encoder::new();
    for tag in av_stream(0, 5000, 2000, true) {
        enc.push(&mut feed, &tag);
    }
    let mut c = Cursor::new();
    let mut pieces = Vec::new();
    feed.read(&mut c, 1 << 20, |p| {
        pieces.push(match p {
            Piece::Prefix(x) => x.clone(),
            Piece::Unit { data, .. } => data.clone(),
        })
    });
    assert_eq!(&pieces[0][4..8], b"ftyp", "the init segment comes first");
    assert_eq!(&pieces[1][4..8], b"moof");
    // The latest independent fragment: the keyframe at 4000 ms (tfdt in 90 kHz units).
    let tfdt = pieces[1]
        .windows(4)
        .position(|w| w == b"tfdt")
        .expect("tfdt");
    let version = pieces[1][tfdt + 4];
    let decode = if version == 1 {
        u64::from_be_bytes(pieces[1][tfdt + 8..tfdt + 16].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(
            pieces[1][tfdt + 8..tfdt + 12].try_into().unwrap(),
        ))
    };
    assert_eq!(decode, 4000 * 90);
}

proptest! {
    /// Whatever is pushed and however viewers read, the feed stays within its bound and a
    /// viewer that is not dropped reads units in order, never one twice.
    #[test]
    fn bounded_and_in_order(
        ops in proptest::collection::vec((0u8..4, 1usize..300), 1..400),
    ) {
        let config = FeedConfig { max_bytes: 2000, max_lags: 0, lag_window_ms: 1000 };
        let mut feed = Feed::new(config);
        let mut cursors = [Cursor::new(), Cursor::new()];
        let mut last = [None::<u64>, None];
        let mut ts = 0u64;
        let mut biggest = 0;
        for (op, len) in ops {
            match op {
                0 | 1 => {
                    ts += 1;
                    biggest = biggest.max(len);
                    let data = Bytes::from(ts.to_be_bytes().repeat(len.div_ceil(8)));
                    if op == 0 {
                        feed.push(ts, data);
                    } else {
                        feed.push_sync(ts, Bytes::new(), data);
                    }
                }
                v => {
                    let i = usize::from(v - 2);
                    let read = feed.read(&mut cursors[i], len * 8, |p| {
                        if let Piece::Unit { ts, .. } = p {
                            assert!(last[i].is_none_or(|l| ts > l));
                            last[i] = Some(ts);
                        }
                    });
                    prop_assert_ne!(read, Read::Dropped { lags: 0 });
                }
            }
            prop_assert!(feed.retained_bytes() <= 2000 + biggest + 8 + UNIT_OVERHEAD);
        }
    }
}

/// The hub gets `tags`; the lane runs while `wanted`, as the stream node drives it.
fn through_lane(
    hub: &mut crate::hub::Hub,
    lane: &mut Lane,
    feed: &mut Feed,
    tags: &[Tag],
    wanted: bool,
) {
    for tag in tags {
        hub.handle_tag(tag.clone());
        lane.set_wanted(wanted, hub, feed);
        lane.drain(hub, feed);
    }
}

#[test]
fn a_lane_encodes_only_while_read_and_a_new_reader_starts_at_the_hubs_cached_keyframe() {
    for encoding in [Encoding::Flv, Encoding::Mp4] {
        let mut hub = crate::hub::Hub::new(crate::hub::HubConfig::default());
        let mut feed = Feed::new(FeedConfig::default());
        let mut lane = Lane::new(encoding);
        let tags = av_stream(0, 6000, 2000, true);
        let split = |from, to| -> Vec<Tag> {
            tags.iter()
                .filter(|t| (from..to).contains(&t.timestamp_ms))
                .cloned()
                .collect()
        };
        // Nobody reads: no hub viewer, nothing encoded, nothing kept.
        through_lane(&mut hub, &mut lane, &mut feed, &split(0, 3000), false);
        assert!(!lane.is_running());
        assert_eq!((hub.viewer_count(), feed.retained_bytes()), (0, 0));

        // A reader comes between two keyframes: it gets the GOP from 2000 ms at once.
        lane.set_wanted(true, &mut hub, &mut feed);
        lane.drain(&mut hub, &mut feed);
        let mut reader = Cursor::new();
        let mut first = Vec::new();
        assert_eq!(
            feed.read(&mut reader, 1 << 20, |p| first.push(p.bytes().clone())),
            Read::Sent,
            "{encoding:?}"
        );
        assert!(
            matches!(first.len(), 20..=80),
            "{encoding:?}: {}",
            first.len()
        );
        // Then it follows live.
        through_lane(&mut hub, &mut lane, &mut feed, &split(3000, 6000), true);
        assert_eq!(feed.read(&mut reader, 1 << 20, |_| ()), Read::Sent);

        // The last reader went: the hub viewer and the units go.
        lane.set_wanted(false, &mut hub, &mut feed);
        assert_eq!((hub.viewer_count(), feed.retained_bytes()), (0, 0));
        assert_eq!(feed.read(&mut Cursor::new(), 1 << 20, |_| ()), Read::Wait);
    }
}
