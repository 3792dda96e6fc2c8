//! Tests of the packager (golden playlists, window, discontinuities, lookups, blocking
//! decisions), the request parsers and the VOD playlist.

use proptest::prelude::*;

use super::playlist::with_query;
use super::*;
use crate::flv::Tag;
use crate::fmp4::tests::{aac_header_48k, av_stream};
use crate::fmp4::{
    FileIndex, Fragmenter, FragmenterConfig, InitInfo, Output, VodSegment, file_chunks,
    scan_fragments,
};

fn packager_with(tags: &[Tag]) -> Packager {
    let mut p = Packager::new(PackagerConfig::default());
    for t in tags {
        p.handle_tag(t);
    }
    p
}

fn concat(lookup: Lookup) -> Vec<u8> {
    match lookup {
        Lookup::Ready(chunks) => chunks.concat(),
        other => panic!("not ready: {other:?}"),
    }
}

/// 5 s of 25 fps video with a keyframe every second, plus AAC.
fn five_seconds() -> Packager {
    packager_with(&av_stream(0, 5_000, 1000, true))
}

#[test]
fn live_playlist_golden() {
    let p = five_seconds();
    let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"init-0.mp4?token=abc\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.0.mp4?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.480,URI=\"part-0.1.mp4?token=abc\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.2.mp4?token=abc\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.3.mp4?token=abc\"
#EXT-X-PART:DURATION=0.080,URI=\"part-0.4.mp4?token=abc\"
#EXTINF:2.000,
seg-0.mp4?token=abc
#EXT-X-PART:DURATION=0.480,URI=\"part-1.0.mp4?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.480,URI=\"part-1.1.mp4?token=abc\"
#EXT-X-PART:DURATION=0.480,URI=\"part-1.2.mp4?token=abc\"
#EXT-X-PART:DURATION=0.480,URI=\"part-1.3.mp4?token=abc\"
#EXT-X-PART:DURATION=0.080,URI=\"part-1.4.mp4?token=abc\"
#EXTINF:2.000,
seg-1.mp4?token=abc
#EXT-X-PART:DURATION=0.480,URI=\"part-2.0.mp4?token=abc\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.480,URI=\"part-2.1.mp4?token=abc\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.2.mp4?token=abc\"
";
    assert_eq!(p.playlist("token=abc"), expected);
    // Without a query, URIs are bare.
    assert!(p.playlist("").contains("\nseg-1.mp4\n"));
}

#[test]
fn finished_playlist_golden() {
    let mut p = packager_with(&av_stream(0, 2_500, 1000, false));
    p.finish();
    let expected = "\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-MAP:URI=\"init-0.mp4\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.480,URI=\"part-0.1.mp4\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.2.mp4\"
#EXT-X-PART:DURATION=0.480,URI=\"part-0.3.mp4\"
#EXT-X-PART:DURATION=0.080,URI=\"part-0.4.mp4\"
#EXTINF:2.000,
seg-0.mp4
#EXT-X-PART:DURATION=0.480,URI=\"part-1.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.040,URI=\"part-1.1.mp4\"
#EXTINF:0.520,
seg-1.mp4
#EXT-X-ENDLIST
";
    assert_eq!(p.playlist(""), expected);
}

#[test]
fn parts_and_segments_are_the_fragments_bytes() {
    let tags = av_stream(0, 5_000, 1000, true);
    let p = packager_with(&tags);
    // The same tags through a bare fragmenter with the packager's settings.
    let mut f = Fragmenter::new(FragmenterConfig::default());
    let mut outputs = Vec::new();
    for t in &tags {
        f.handle_tag(t);
        outputs.extend(std::iter::from_fn(|| f.poll_output()));
    }
    let Output::Init(init) = &outputs[0] else {
        panic!("no init first")
    };
    assert_eq!(p.init(0).as_ref(), Some(init));
    assert_eq!(p.init(1), None);
    let frags: Vec<Vec<u8>> = outputs[1..]
        .iter()
        .map(|o| file_chunks([o]).concat())
        .collect();
    let parts: Vec<Vec<u8>> = [(0, 5), (1, 5), (2, 2)]
        .iter()
        .flat_map(|&(msn, n)| (0..n).map(move |i| (msn, i)))
        .map(|(msn, i)| concat(p.part(msn, i)))
        .collect();
    assert_eq!(parts, frags);
    assert_eq!(concat(p.segment(1)), frags[5..10].concat());
    let index = scan_fragments(&[init.to_vec(), concat(p.segment(0))].concat()).unwrap();
    assert_eq!(index.fragments.len(), 5);
    assert!(index.fragments[0].independent);
}

#[test]
fn lookups_wait_for_the_hinted_part_and_forget_old_ones() {
    let p = five_seconds();
    // Segment 2 is in progress with parts 0 and 1; the hint names 2.2.
    assert!(matches!(p.part(2, 1), Lookup::Ready(_)));
    assert_eq!(p.part(2, 2), Lookup::Wait);
    assert_eq!(
        p.part(2, 7),
        Lookup::Wait,
        "within the Advance Part Limit (6)"
    );
    assert_eq!(p.part(2, 8), Lookup::Gone);
    assert_eq!(
        p.part(3, 0),
        Lookup::Wait,
        "the next segment may start next"
    );
    assert_eq!(p.part(3, 6), Lookup::Gone);
    assert_eq!(p.part(1, 5), Lookup::Gone, "segment 1 has parts 0..=4");
    assert_eq!(p.part(9, 0), Lookup::Gone);
    assert!(matches!(p.segment(1), Lookup::Ready(_)));
    assert_eq!(p.segment(2), Lookup::Wait);
    assert_eq!(p.segment(3), Lookup::Gone);
}

#[test]
fn blocking_reload_decisions() {
    let p = five_seconds();
    let r = |msn, part| p.ready(&BlockingRequest { msn, part });
    use Readiness::*;
    // Whole segments: 0 and 1 are complete, 2 is in progress.
    assert_eq!(r(1, None), Ready);
    assert_eq!(r(2, None), Wait);
    assert_eq!(r(3, None), Wait, "two segments after the last complete one");
    assert_eq!(r(4, None), TooFarAhead);
    // Parts.
    assert_eq!(r(0, Some(0)), Ready);
    assert_eq!(r(1, Some(4)), Ready);
    assert_eq!(r(1, Some(9)), Ready, "a later part (2.0) exists");
    assert_eq!(r(2, Some(1)), Ready);
    assert_eq!(r(2, Some(2)), Wait);
    assert_eq!(r(2, Some(7)), Wait);
    assert_eq!(r(2, Some(8)), TooFarAhead);
    assert_eq!(r(3, Some(5)), Wait);
    assert_eq!(r(3, Some(6)), TooFarAhead);
    assert_eq!(r(4, Some(0)), TooFarAhead);
}

#[test]
fn waiting_requests_become_ready_as_media_arrives() {
    let tags = av_stream(0, 8_000, 1000, true);
    let mut p = Packager::new(PackagerConfig::default());
    // Before any media: the first part is waited for, far requests are refused.
    let first = BlockingRequest {
        msn: 0,
        part: Some(0),
    };
    assert_eq!(p.ready(&first), Readiness::Wait);
    assert_eq!(p.part(0, 0), Lookup::Wait);
    assert!(!p.has_media());
    let want = BlockingRequest {
        msn: 2,
        part: Some(2),
    };
    let mut became_ready_at = None;
    let mut hinted = false;
    let mut versions = vec![p.version()];
    for t in &tags {
        let parts_before = p.stats().parts;
        p.handle_tag(t);
        if p.stats().parts != parts_before {
            assert!(
                p.version() > *versions.last().unwrap(),
                "a new part bumps the version"
            );
        }
        versions.push(p.version());
        if became_ready_at.is_none() && p.ready(&want) == Readiness::Ready {
            became_ready_at = Some(t.timestamp_ms);
            assert!(matches!(p.part(2, 2), Lookup::Ready(_)));
        }
        if became_ready_at.is_none()
            && p.playlist("")
                .contains("PRELOAD-HINT:TYPE=PART,URI=\"part-2.2.mp4\"")
        {
            assert_eq!(p.part(2, 2), Lookup::Wait, "the hinted part is awaited");
            hinted = true;
        }
    }
    assert!(hinted);
    assert!(versions.windows(2).all(|w| w[0] <= w[1]));
    // Part 2.2 covers 4960..5440 and is complete when the frame at 5440 arrives.
    assert_eq!(became_ready_at, Some(5_440));
    // A hint that the segment end overtakes: segment 2 closed with 5 parts, so 2.5
    // will never exist.
    assert_eq!(p.part(2, 5), Lookup::Gone);
    p.finish();
    assert_eq!(
        p.ready(&BlockingRequest {
            msn: 99,
            part: None
        }),
        Readiness::Ready
    );
    let list = p.playlist("");
    assert!(list.ends_with("#EXT-X-ENDLIST\n"));
    assert!(!list.contains("PRELOAD-HINT"));
    assert_eq!(p.part(4, 0), Lookup::Gone);
}

#[test]
fn a_new_source_is_a_discontinuity_with_its_own_map_and_slides_out() {
    let first = av_stream(0, 4_000, 1000, true);
    let mut second = av_stream(4_040, 20_000, 1000, true);
    second[1] = Tag::audio(4_040, aac_header_48k());
    second[0].discontinuity = true;
    let mut p = Packager::new(PackagerConfig::default());
    for t in first.iter().chain(&second[..60]) {
        p.handle_tag(t);
    }
    let list = p.playlist("t=1");
    let expected = "\
#EXTINF:2.000,
seg-1.mp4?t=1
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-1.mp4?t=1\"
#EXT-X-PART:DURATION=0.480,URI=\"part-2.0.mp4?t=1\",INDEPENDENT=YES
";
    assert!(list.contains(expected), "{list}");
    assert!(list.contains("#EXT-X-MAP:URI=\"init-0.mp4?t=1\"\n"));
    assert!(p.init(0).is_some() && p.init(1).is_some());
    for t in &second[60..] {
        p.handle_tag(t);
    }
    // 0, 1 (first source), 2..=10 (second, 2 s each) complete, 11 in progress; 6 kept.
    let list = p.playlist("");
    assert!(list.contains("#EXT-X-MEDIA-SEQUENCE:5\n"), "{list}");
    assert!(list.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
    assert!(!list.contains("#EXT-X-DISCONTINUITY\n"));
    assert_eq!(list.matches("#EXTINF:").count(), 6);
    assert!(list.contains("#EXT-X-MAP:URI=\"init-1.mp4\"\n"));
    assert!(!list.contains("init-0"));
    assert_eq!(p.init(0), None, "an init no segment refers to is dropped");
    assert!(p.init(1).is_some());
    assert_eq!(p.part(4, 0), Lookup::Gone);
    assert_eq!(p.segment(4), Lookup::Gone);
    assert!(matches!(p.segment(5), Lookup::Ready(_)));
    // Parts are listed only within three target durations (6 s) of the live edge.
    assert!(!list.contains("part-7.0.mp4"), "{list}");
    assert!(list.contains("part-8.0.mp4"));
    assert!(list.contains("part-11.0.mp4"));
}

#[test]
fn a_pause_completes_the_segment_and_what_comes_after_is_a_discontinuity() {
    let mut p = packager_with(&av_stream(0, 3_000, 1000, true));
    let before = p.version();
    p.pause();
    assert!(p.version() > before, "waiting requests look again");
    let paused = p.playlist("");
    assert!(!paused.contains("#EXT-X-ENDLIST"), "{paused}");
    // A player blocking for the next part gets it when media comes again.
    assert!(
        paused.ends_with("seg-1.mp4\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-2.0.mp4\"\n"),
        "{paused}"
    );
    assert_eq!(paused.matches("#EXTINF:").count(), 2, "{paused}");
    assert!(!paused.contains("#EXT-X-DISCONTINUITY\n"));
    // Taken again from a new hub viewer: headers, then a timeline from 0.
    for t in &av_stream(0, 2_000, 1000, true) {
        p.handle_tag(t);
    }
    let resumed = p.playlist("");
    assert!(
        resumed.contains("seg-1.mp4\n#EXT-X-DISCONTINUITY\n"),
        "{resumed}"
    );
    assert_eq!(resumed.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(resumed.contains("part-2.0.mp4"), "{resumed}");
    assert!(matches!(p.segment(1), Lookup::Ready(_)));
    // The timeline goes on: the new segment's first fragment starts where the old ended.
    let Lookup::Ready(chunks) = p.part(2, 0) else {
        panic!("part 2.0 is ready")
    };
    let part = chunks.concat();
    let tfdt = part
        .windows(4)
        .position(|w| w == b"tfdt")
        .expect("a tfdt box")
        + 4;
    let version = part[tfdt];
    let dts = if version == 1 {
        u64::from_be_bytes(part[tfdt + 4..tfdt + 12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(
            part[tfdt + 4..tfdt + 8].try_into().unwrap(),
        ))
    };
    // 90 kHz ticks: the first 3 s ended with an audio frame of 23 ms at 2.995 s.
    assert!((3_000 * 90..3_030 * 90).contains(&dts), "{dts}");
}

/// Filler (shared), then program 7, then program 8 back to back: each program's
/// audience sees shared segments and its own, never a name of the other's.
#[test]
fn each_audience_sees_the_shared_segments_and_its_program_only() {
    let filler = av_stream(0, 2_000, 1000, true);
    let mut seven = av_stream(2_040, 6_000, 1000, true);
    seven[0].discontinuity = true;
    let mut eight = av_stream(6_040, 9_000, 1000, true);
    eight[1] = Tag::audio(6_040, aac_header_48k());
    eight[0].discontinuity = true;
    let mut p = Packager::new(PackagerConfig::default());
    for t in &filler {
        p.handle_tag(t);
    }
    p.set_label(7);
    for t in &seven {
        p.handle_tag(t);
    }
    // While 7 is being made, 8's audience sees nothing (the list starts after 7's newest
    // segment) and no preload hint; everyone sees the filler before 7.
    let for_eight = p.playlist_for("", Some(8));
    assert!(!for_eight.contains("#EXTINF"), "{for_eight}");
    assert!(!for_eight.contains("#EXT-X-PART:"), "{for_eight}");
    assert!(!for_eight.contains("PRELOAD-HINT"), "{for_eight}");
    assert!(p.playlist_for("", Some(7)).contains("seg-0.mp4"));
    let seg_of_seven = (0..10).find(|&m| p.label_of(m) == Some(7)).unwrap();
    assert!(!for_eight.contains(&format!("seg-{seg_of_seven}.mp4")));
    assert!(!for_eight.contains(&format!("part-{seg_of_seven}.")));
    let for_seven = p.playlist_for("", Some(7));
    assert!(for_seven.contains(&format!("part-{seg_of_seven}.0.mp4")));
    assert!(for_seven.contains("PRELOAD-HINT"));
    p.set_label(8);
    for t in &eight {
        p.handle_tag(t);
    }
    // Now 8's list starts after the last segment of 7; 7's audience gets neither 8's
    // segments nor a hint into them.
    let for_eight = p.playlist_for("", Some(8));
    let for_seven = p.playlist_for("", Some(7));
    let first_of_eight = (0..20).find(|&m| p.label_of(m) == Some(8)).unwrap();
    assert!(
        for_eight.contains(&format!("#EXT-X-MEDIA-SEQUENCE:{first_of_eight}\n")),
        "{for_eight}"
    );
    assert!(
        for_eight.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
        "{for_eight}"
    );
    assert!(!for_seven.contains("PRELOAD-HINT"), "{for_seven}");
    assert!(
        !for_seven.contains(&format!("-{first_of_eight}.")),
        "{for_seven}"
    );
    assert_eq!(p.edge_label(), 8);
    // Init segments follow the same rule; everyone sees everything without an audience.
    let init_of_eight = p.playlist("").matches("#EXT-X-MAP").count() as u32 - 1;
    assert!(p.init_for(init_of_eight, Some(8)).is_some());
    assert!(p.init_for(init_of_eight, Some(7)).is_none());
    assert!(p.playlist("").contains(&format!("seg-{seg_of_seven}.mp4")));
}

#[test]
fn memory_stays_bounded_over_a_long_stream() {
    use crate::fmp4::tests::{aac_frame, aac_header_44k, avc_frame, avc_header};
    // Ten minutes at 25 fps with 20 kB frames (about 1 MB per segment) and AAC. Frame
    // bodies are shared, as the hub shares them.
    let key = avc_frame(true, 0, 1, 20_000);
    let inter = avc_frame(false, 0, 2, 20_000);
    let sound = aac_frame(3, 200);
    let mut p = Packager::new(PackagerConfig::default());
    p.handle_tag(&Tag::video(0, avc_header()));
    p.handle_tag(&Tag::audio(0, aac_header_44k()));
    let mut peak = 0;
    let mut audio_k = 0u64;
    for n in 0..(600 * 25) {
        let ts = n * 40;
        while audio_k * 1024 * 1000 / 44100 < u64::from(ts) {
            p.handle_tag(&Tag::audio(
                (audio_k * 1024 * 1000 / 44100) as u32,
                sound.clone(),
            ));
            audio_k += 1;
        }
        let frame = if n % 25 == 0 { &key } else { &inter };
        p.handle_tag(&Tag::video(ts, frame.clone()));
        peak = peak.max(p.retained_bytes());
    }
    assert!(peak > 6 << 20, "the window does hold six segments: {peak}");
    assert!(peak < 8 << 20, "peak {peak}");
    assert_eq!(p.playlist("").matches("#EXTINF:").count(), 6);
    assert_eq!(p.stats().segments, 299);

    // A source without keyframes and a small byte limit: segments are closed by size.
    let config = PackagerConfig {
        max_segment_bytes: 64 << 10,
        ..PackagerConfig::default()
    };
    let mut p = Packager::new(config);
    p.handle_tag(&Tag::video(0, avc_header()));
    p.handle_tag(&Tag::video(0, avc_frame(true, 0, 1, 5_000)));
    let inter = avc_frame(false, 0, 1, 5_000);
    let mut peak = 0;
    for n in 1..1500u32 {
        p.handle_tag(&Tag::video(n * 40, inter.clone()));
        peak = peak.max(p.retained_bytes());
    }
    assert!(p.stats().forced_segments > 50);
    // Six segments and the one in progress, each at most the limit plus one part.
    assert!(peak < 8 * (128 << 10), "peak {peak}");
}

// ---- Request parsers ----

#[test]
fn blocking_request_parser_accepts_the_directives() {
    let ok = |q: &str| parse_blocking_request(q).unwrap();
    let req = |msn, part| Some(BlockingRequest { msn, part });
    assert_eq!(ok(""), None);
    assert_eq!(ok("token=abc"), None);
    assert_eq!(ok("token=a&b&&c="), None);
    assert_eq!(ok("_HLS_msn=5"), req(5, None));
    assert_eq!(ok("token=x&_HLS_msn=5&_HLS_part=2"), req(5, Some(2)));
    assert_eq!(ok("_HLS_part=0&_HLS_msn=0"), req(0, Some(0)));
    assert_eq!(ok("_HLS_msn=7&_HLS_skip=YES"), req(7, None));
    assert_eq!(ok("_HLS_skip=v2&_HLS_msn=7"), req(7, None));
    assert_eq!(ok("_HLS_msn=007"), req(7, None));
    assert_eq!(
        ok("_HLS_msn=18446744073709551615&_HLS_part=4294967295"),
        req(u64::MAX, Some(u32::MAX))
    );
}

#[test]
fn blocking_request_parser_rejects_malformed_queries() {
    let err = |q: &str| parse_blocking_request(q).unwrap_err();
    let msn = HlsError::InvalidNumber { param: "_HLS_msn" };
    let part = HlsError::InvalidNumber { param: "_HLS_part" };
    for q in [
        "_HLS_msn=",
        "_HLS_msn",
        "_HLS_msn=-1",
        "_HLS_msn=+1",
        "_HLS_msn=1.0",
        "_HLS_msn= 1",
        "_HLS_msn=0x10",
        "_HLS_msn=1%32",
        "_HLS_msn=18446744073709551616",
        "_HLS_msn=123456789012345678901",
    ] {
        assert_eq!(err(q), msn, "{q}");
    }
    assert_eq!(err("_HLS_msn=1&_HLS_part=4294967296"), part);
    assert_eq!(err("_HLS_msn=1&_HLS_part=x"), part);
    assert_eq!(
        err("_HLS_msn=1&_HLS_msn=1"),
        HlsError::Duplicate { param: "_HLS_msn" }
    );
    assert_eq!(
        err("_HLS_msn=1&_HLS_part=1&_HLS_part=2"),
        HlsError::Duplicate { param: "_HLS_part" }
    );
    assert_eq!(err("_HLS_part=1"), HlsError::PartWithoutMsn);
    assert_eq!(err("token=x&_HLS_part=1"), HlsError::PartWithoutMsn);
    assert_eq!(err("_HLS_msn=1&_HLS_skip=NO"), HlsError::InvalidSkip);
    assert_eq!(err("_HLS_msn=1&_HLS_skip"), HlsError::InvalidSkip);
    assert_eq!(
        err("_HLS_msn=1&_HLS_MSN=2"),
        HlsError::UnknownDirective {
            name: "_HLS_MSN".into()
        }
    );
    let long = format!("_HLS_{}=1", "x".repeat(100));
    match err(&long) {
        HlsError::UnknownDirective { name } => assert_eq!(name.len(), 40),
        other => panic!("{other:?}"),
    }
}

#[test]
fn resource_names_parse_strictly() {
    let cases = [
        ("index.m3u8", Some(Resource::Entry)),
        ("media.m3u8", Some(Resource::Playlist)),
        ("init-0.mp4", Some(Resource::Init(0))),
        ("init-12.mp4", Some(Resource::Init(12))),
        ("seg-0.mp4", Some(Resource::Segment(0))),
        (
            "seg-18446744073709551615.mp4",
            Some(Resource::Segment(u64::MAX)),
        ),
        ("part-3.0.mp4", Some(Resource::Part { msn: 3, part: 0 })),
        ("part-12.34.mp4", Some(Resource::Part { msn: 12, part: 34 })),
    ];
    for (name, expected) in cases {
        assert_eq!(parse_resource(name), expected, "{name}");
    }
    for bad in [
        "",
        "index.m3u",
        "INDEX.m3u8",
        "index.m3u8?x",
        "init-.mp4",
        "init-01.mp4",
        "init--1.mp4",
        "init-+1.mp4",
        "init-1.mp4x",
        "init-4294967296.mp4",
        "seg-1",
        "seg-1.MP4",
        "seg-1 .mp4",
        "seg-18446744073709551616.mp4",
        "seg-1.2.mp4",
        "part-1.mp4",
        "part-1.2.3.mp4",
        "part-1..mp4",
        "part-.1.mp4",
        "part-01.1.mp4",
        "part-1.01.mp4",
        "../seg-1.mp4",
        "seg-١.mp4",
    ] {
        assert_eq!(parse_resource(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(s in ".{0,64}") {
        let _ = parse_resource(&s);
        let _ = parse_blocking_request(&s);
    }

    #[test]
    fn parsers_never_panic_on_near_misses(
        prefix in prop::sample::select(vec!["_HLS_msn=", "_HLS_part=", "part-", "seg-", "init-"]),
        rest in "[0-9.&=_a-zA-Z-]{0,30}",
    ) {
        let s = format!("{prefix}{rest}");
        let _ = parse_resource(&s);
        let _ = parse_blocking_request(&s);
    }

    #[test]
    fn resource_names_round_trip(msn in any::<u64>(), part in any::<u32>(), which in 0u8..5) {
        let r = match which {
            0 => Resource::Playlist,
            4 => Resource::Entry,
            1 => Resource::Init(part),
            2 => Resource::Segment(msn),
            _ => Resource::Part { msn, part },
        };
        prop_assert_eq!(parse_resource(&r.name()), Some(r));
    }
}

// ---- URIs and VOD ----

#[test]
fn queries_are_escaped_for_playlists() {
    assert_eq!(with_query("seg-1.mp4", ""), "seg-1.mp4");
    assert_eq!(
        with_query("seg-1.mp4", "token=a.b_c-d~e%2F"),
        "seg-1.mp4?token=a.b_c-d~e%2F"
    );
    assert_eq!(
        with_query("rec.mp4?x=1", "t=\"a\" b\n#é"),
        "rec.mp4?x=1&t=%22a%22%20b%0A%23%C3%A9"
    );
}

#[test]
fn vod_playlist_golden() {
    let seg =
        |range: std::ops::Range<u64>, init, start_ms, duration_ms, discontinuity| VodSegment {
            range,
            fragments: 0..1,
            init,
            start_ms,
            duration_ms,
            independent: true,
            discontinuity,
        };
    let index = FileIndex {
        inits: vec![
            InitInfo {
                range: 0..1000,
                tracks: Vec::new(),
            },
            InitInfo {
                range: 50_000..51_000,
                tracks: Vec::new(),
            },
        ],
        fragments: Vec::new(),
        segments: vec![
            seg(1000..21_000, 0, 0, 2000, false),
            seg(21_000..40_000, 0, 2000, 1960, false),
            seg(51_000..70_000, 1, 4000, 2480, true),
        ],
        truncated_at: None,
        skipped: 0,
    };
    let expected = "\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"rec.mp4?token=a%20b\",BYTERANGE=\"1000@0\"
#EXTINF:2.000,
#EXT-X-BYTERANGE:20000@1000
rec.mp4?token=a%20b
#EXTINF:1.960,
#EXT-X-BYTERANGE:19000@21000
rec.mp4?token=a%20b
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"rec.mp4?token=a%20b\",BYTERANGE=\"1000@50000\"
#EXTINF:2.480,
#EXT-X-BYTERANGE:19000@51000
rec.mp4?token=a%20b
#EXT-X-ENDLIST
";
    assert_eq!(vod_playlist(&index, "rec.mp4", "token=a b"), expected);
}

#[test]
fn vod_playlist_of_a_real_recording_covers_every_fragment_once() {
    let tags = av_stream(0, 9_000, 1000, true);
    let mut f = Fragmenter::new(FragmenterConfig::per_frame());
    let mut outputs = Vec::new();
    for t in &tags {
        f.handle_tag(t);
        outputs.extend(std::iter::from_fn(|| f.poll_output()));
    }
    f.flush();
    outputs.extend(std::iter::from_fn(|| f.poll_output()));
    let file: Vec<u8> = file_chunks(&outputs).concat();
    let index = scan_fragments(&file).unwrap();
    let list = vod_playlist(&index, "r.mp4", "");
    let ranges: Vec<(u64, u64)> = list
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .map(|r| {
            let (len, at) = r.split_once('@').unwrap();
            (at.parse().unwrap(), len.parse().unwrap())
        })
        .collect();
    let init_len = index.inits[0].range.end;
    assert!(list.contains(&format!("BYTERANGE=\"{init_len}@0\"")));
    let mut next = init_len;
    for (at, len) in &ranges {
        assert_eq!(*at, next, "segments follow each other");
        next = at + len;
    }
    assert_eq!(next, file.len() as u64);
    // 2 s segments (of 50 one-frame fragments), the last one 1 s.
    assert_eq!(ranges.len(), 5);
    assert!(list.contains("#EXTINF:2.000,"));
    assert!(list.contains("#EXTINF:1.000,"));
}
