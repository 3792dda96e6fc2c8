//! Real-decoder tests: what the fragmenter, the LL-HLS packager and the VOD playlist
//! produce is read back by ffprobe/ffmpeg.
//!
//! The fixture `tests/data/testsrc.flv` was made with ffmpeg 5.1 (4 s, 320x240 at 25 fps,
//! a keyframe every second, B-frames, AAC at 44.1 kHz):
//!
//! ```sh
//! ffmpeg -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
//!   -t 4 -c:v libx264 -g 25 -bf 2 -preset veryfast -crf 32 -pix_fmt yuv420p \
//!   -c:a aac -b:a 48k -f flv tests/data/testsrc.flv
//! ```
//!
//! Without ffprobe/ffmpeg the tests print a note and pass, except with `CI=true`, where
//! they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use slotcast_media::flv::{Tag, TagKind, VideoPacketType, parse_flv, video_info};
use slotcast_media::fmp4::{FragmenterConfig, Output, file_chunks, scan_fragments};
use slotcast_media::hls::{Lookup, Packager, PackagerConfig, Resource, parse_resource};
use slotcast_media::{Fragmenter, vod_playlist};

const FIXTURE: &[u8] = include_bytes!("data/testsrc.flv");
const VIDEO_FRAMES: usize = 100;

fn tags() -> Vec<Tag> {
    parse_flv(FIXTURE).expect("fixture parses").1
}

/// Whether ffmpeg and ffprobe can run; fails the test under `CI=true` if not.
#[allow(clippy::print_stderr)]
fn tools_available() -> bool {
    let ok = ["ffprobe", "ffmpeg"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ffprobe/ffmpeg are required with CI=true"
        );
        eprintln!("note: ffprobe/ffmpeg not found, skipping the real-decoder test");
    }
    ok
}

/// A fresh directory for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slotcast-media-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("run tool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn ffprobe(path: &Path, args: &[&str]) -> String {
    let mut all = vec!["-v", "error"];
    all.extend_from_slice(args);
    all.push(path.to_str().unwrap());
    run("ffprobe", &all).trim().to_owned()
}

/// The one distinct non-empty line of `out` (ffprobe lists HLS streams once per program
/// and once more on their own).
fn single_line(out: &str) -> String {
    let mut lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.dedup();
    assert_eq!(lines.len(), 1, "expected one summary line: {out:?}");
    lines[0].to_owned()
}

/// `width,height,decoded frames` of the first video stream.
fn video_summary(path: &Path) -> String {
    single_line(&ffprobe(
        path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ],
    ))
}

/// `codec,sample rate,decoded frames` of the first audio stream.
fn audio_summary(path: &Path) -> String {
    single_line(&ffprobe(
        path,
        &[
            "-count_frames",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name,sample_rate,nb_read_frames",
            "-of",
            "csv=p=0",
        ],
    ))
}

/// Presentation times (s) of the decoded video frames, in output order.
fn video_pts(path: &Path) -> Vec<f64> {
    ffprobe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
        ],
    )
    .lines()
    .map(|l| l.trim().trim_end_matches(','))
    .filter(|l| !l.is_empty())
    .map(|l| l.parse().expect("pts"))
    .collect()
}

/// Decodes every stream to nothing; errors fail the test.
fn decode_all(path: &Path) {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg: {stderr}"
    );
}

fn audio_frames(tags: &[Tag]) -> usize {
    tags.iter()
        .filter(|t| t.kind == TagKind::Audio && t.data.get(1) == Some(&1))
        .count()
}

fn fragment(config: FragmenterConfig, tags: &[Tag]) -> Vec<Output> {
    let mut f = Fragmenter::new(config);
    let mut out = Vec::new();
    for t in tags {
        f.handle_tag(t);
        out.extend(std::iter::from_fn(|| f.poll_output()));
    }
    f.flush();
    out.extend(std::iter::from_fn(|| f.poll_output()));
    out
}

#[test]
fn recordings_decode_with_the_same_frames_and_times_as_the_source() {
    if !tools_available() {
        return;
    }
    let dir = temp_dir("recording");
    let tags = tags();
    let video_tags = tags
        .iter()
        .filter(|t| {
            t.kind == TagKind::Video
                && video_info(&t.data).is_ok_and(|i| i.packet == VideoPacketType::Frame)
        })
        .count();
    assert_eq!(video_tags, VIDEO_FRAMES);
    let flv = dir.join("source.flv");
    std::fs::write(&flv, FIXTURE).unwrap();
    let source_pts = video_pts(&flv);
    assert_eq!(source_pts.len(), VIDEO_FRAMES);

    for (name, config) in [
        ("parts.mp4", FragmenterConfig::default()),
        ("per-frame.mp4", FragmenterConfig::per_frame()),
    ] {
        let outputs = fragment(config, &tags);
        let path = dir.join(name);
        std::fs::write(&path, file_chunks(&outputs).concat()).unwrap();
        assert_eq!(
            video_summary(&path),
            format!("320,240,{VIDEO_FRAMES}"),
            "{name}"
        );
        assert_eq!(
            audio_summary(&path),
            format!("aac,44100,{}", audio_frames(&tags)),
            "{name}"
        );
        decode_all(&path);
        // Composition offsets survive: every frame is presented when the FLV says.
        let pts = video_pts(&path);
        assert_eq!(pts.len(), source_pts.len(), "{name}");
        for (a, b) in pts.iter().zip(&source_pts) {
            assert!((a - b).abs() < 1e-6, "{name}: pts {a} vs {b}");
        }
        assert!(
            pts.windows(2).all(|w| w[1] > w[0]),
            "{name}: presentation order"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Takes the parts from `next` on that are ready, moving to the next segment when one
/// ends.
fn capture_parts(packager: &Packager, next: &mut (u64, u32), parts: &mut Vec<Vec<u8>>) {
    loop {
        match packager.part(next.0, next.1) {
            Lookup::Ready(chunks) => {
                parts.push(chunks.concat());
                next.1 += 1;
            }
            Lookup::Gone
                if next.1 > 0 && matches!(packager.part(next.0 + 1, 0), Lookup::Ready(_)) =>
            {
                *next = (next.0 + 1, 0);
            }
            _ => break,
        }
    }
}

#[test]
fn live_hls_parts_and_segments_decode() {
    if !tools_available() {
        return;
    }
    let dir = temp_dir("live-hls");
    let tags = tags();
    let mut packager = Packager::new(PackagerConfig::default());
    // Capture every part as it appears, as a viewer following the live edge would.
    let mut parts = Vec::new();
    let mut next = (0u64, 0u32);
    for t in &tags {
        packager.handle_tag(t);
        capture_parts(&packager, &mut next, &mut parts);
    }
    packager.finish();
    capture_parts(&packager, &mut next, &mut parts);
    let playlist = packager.playlist("");
    // Write every resource the playlist names, looked up through the URI parser.
    let mut names: Vec<String> = Vec::new();
    for line in playlist.lines() {
        if let Some(start) = line.find("URI=\"") {
            let rest = &line[start + 5..];
            names.push(rest[..rest.find('"').unwrap()].to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            names.push(line.to_owned());
        }
    }
    assert!(names.iter().any(|n| n.starts_with("seg-")));
    for name in &names {
        let bytes = match parse_resource(name).expect("a name we write parses") {
            Resource::Init(n) => packager.init(n).expect("init kept").to_vec(),
            Resource::Segment(msn) => match packager.segment(msn) {
                Lookup::Ready(c) => c.concat(),
                other => panic!("segment {msn}: {other:?}"),
            },
            Resource::Part { msn, part } => match packager.part(msn, part) {
                Lookup::Ready(c) => c.concat(),
                other => panic!("part {msn}.{part}: {other:?}"),
            },
            Resource::Entry | Resource::Playlist => unreachable!(),
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let m3u8 = dir.join("index.m3u8");
    std::fs::write(&m3u8, &playlist).unwrap();
    assert_eq!(video_summary(&m3u8), format!("320,240,{VIDEO_FRAMES}"));
    assert_eq!(
        audio_summary(&m3u8),
        format!("aac,44100,{}", audio_frames(&tags))
    );
    decode_all(&m3u8);

    // The parts captured live, after the init segment, are one playable stream too (a
    // low-latency player appends exactly these).
    assert_eq!(parts.len() as u64, packager.stats().parts);
    let mut stream = packager.init(0).unwrap().to_vec();
    for p in &parts {
        stream.extend_from_slice(p);
    }
    let joined = dir.join("parts.mp4");
    std::fs::write(&joined, stream).unwrap();
    assert_eq!(video_summary(&joined), format!("320,240,{VIDEO_FRAMES}"));
    decode_all(&joined);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vod_playlists_of_whole_and_truncated_recordings_decode() {
    if !tools_available() {
        return;
    }
    let dir = temp_dir("vod");
    let tags = tags();
    let outputs = fragment(FragmenterConfig::default(), &tags);
    let file = file_chunks(&outputs).concat();
    std::fs::write(dir.join("rec.mp4"), &file).unwrap();
    let index = scan_fragments(&file).unwrap();
    let m3u8 = dir.join("rec.m3u8");
    std::fs::write(&m3u8, vod_playlist(&index, "rec.mp4", "")).unwrap();
    assert_eq!(video_summary(&m3u8), format!("320,240,{VIDEO_FRAMES}"));
    decode_all(&m3u8);

    // A recording cut inside its last fragment (a crash): the playlist leaves that
    // fragment out and everything before it plays.
    let last = index.fragments.last().unwrap().range.clone();
    let cut = (last.start + last.end) / 2;
    std::fs::write(dir.join("cut.mp4"), &file[..cut as usize]).unwrap();
    let cut_index = scan_fragments(&file[..cut as usize]).unwrap();
    assert_eq!(cut_index.truncated_at, Some(last.start));
    let Some(Output::Fragment(last_fragment)) = outputs.last() else {
        panic!("last output is a fragment")
    };
    // 25 fps: the frames the cut fragment held.
    let last_frames = last_fragment.duration_ms as usize / 40;
    assert!(last_frames > 0);
    let cut_m3u8 = dir.join("cut.m3u8");
    std::fs::write(&cut_m3u8, vod_playlist(&cut_index, "cut.mp4", "")).unwrap();
    assert_eq!(
        video_summary(&cut_m3u8),
        format!("320,240,{}", VIDEO_FRAMES - last_frames)
    );
    decode_all(&cut_m3u8);
    let _ = std::fs::remove_dir_all(&dir);
}
