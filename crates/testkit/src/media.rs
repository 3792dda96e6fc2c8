//! The real media tools of the stream tests: ffmpeg publishing a test pattern, ffprobe
//! decoding what a server sends.

use std::process::{Command, Stdio};

use crate::real_part_missing;

/// Whether `name` (ffmpeg, ffprobe) runs; if not, the test fails in CI and is skipped
/// loudly elsewhere (see [`real_part_missing`]).
pub fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        real_part_missing(name, "not on PATH");
    }
    ok
}

/// ffmpeg publishing a 320x240, 25 fps test pattern (a keyframe a second) and a tone to
/// `rtmp_url` in real time for `secs`; the caller picks what happens to stderr and spawns.
pub fn publisher(rtmp_url: &str, secs: u32) -> Command {
    publisher_sized(rtmp_url, secs, (320, 240))
}

/// [`publisher`] with another picture size (tests tell programs apart by it).
pub fn publisher_sized(rtmp_url: &str, secs: u32, (width, height): (u32, u32)) -> Command {
    let mut c = Command::new("ffmpeg");
    let source = format!("testsrc=size={width}x{height}:rate=25");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &source])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        ])
        .args(["-f", "flv", rtmp_url])
        .stdout(Stdio::null());
    c
}

/// Makes `path`: an MP4 of `secs` seconds of a `width`×`height` test pattern and a tone,
/// as an operator might upload for filler.
pub fn clip(path: &std::path::Path, secs: u32, (width, height): (u32, u32)) {
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=30"))
        .args(["-f", "lavfi", "-i", "sine=frequency=660:sample_rate=44100"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success(), "ffmpeg made no clip");
}

/// ffprobe's `width,height,nb_read_frames` of the first video stream of `url` over its
/// first three seconds, followed by anything ffprobe complained about.
pub fn probe(url: &str, extra: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "15000000"])
        .args(extra)
        .args(["-select_streams", "v:0", "-count_frames"])
        .args(["-read_intervals", "%+3"])
        .args(["-show_entries", "stream=width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(url)
        .output()
        .expect("ffprobe runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// The frame count of a [`probe`] answer (0 if it has none).
pub fn frames(probe: &str) -> u32 {
    probe
        .lines()
        .next()
        .and_then(|l| l.split(',').nth(2))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
