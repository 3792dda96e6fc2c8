//! The ingest: a 2.5 Mbit/s H.264 + AAC FLV encoded once by ffmpeg and cached, read into
//! memory as tags the publisher sends.

use super::media::flv_video_key;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds of the encoded source (the publisher loops it).
pub const SECONDS: u32 = 60;

/// One FLV tag of the source.
pub struct Tag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    /// Milliseconds from the start of the file.
    pub ts: u32,
    pub body: Vec<u8>,
    /// For video frames (not sequence headers): the key latency probes match.
    pub key: Option<u64>,
}

/// The parsed source.
pub struct Source {
    pub path: PathBuf,
    /// `onMetaData` (the script tag body), sent once.
    pub meta: Option<Vec<u8>>,
    /// AVC and AAC sequence headers, sent once before the media.
    pub headers: Vec<Tag>,
    /// Audio and video frames in file order.
    pub media: Vec<Tag>,
    /// Length of one loop in milliseconds (timestamps go on across loops).
    pub loop_ms: u32,
    pub bytes: u64,
}

/// The ffmpeg arguments of the source, also part of its cache name.
fn encode_args(out: &Path) -> Vec<String> {
    let s = SECONDS.to_string();
    [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &s,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        "2400k",
        "-maxrate",
        "2500k",
        "-bufsize",
        "2500k",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ac",
        "2",
        "-f",
        "flv",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([out.display().to_string()])
    .collect()
}

/// The cached source, encoding it first if it is not there.
pub fn ensure(cache: &Path) -> Result<PathBuf, String> {
    let path = cache.join(format!(
        "testsrc2-720p25-h264-2400k-aac96k-{SECONDS}s-v1.flv"
    ));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
    let tmp = path.with_extension("part.flv");
    eprintln!(
        "fanout: encoding the {SECONDS} s source once with ffmpeg into {}",
        path.display()
    );
    let status = Command::new("ffmpeg")
        .args(encode_args(&tmp))
        .status()
        .map_err(|e| format!("run ffmpeg: {e}"))?;
    if !status.success() {
        return Err(format!("ffmpeg failed: {status}"));
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename the source: {e}"))?;
    Ok(path)
}

/// Reads an FLV file into tags.
pub fn load(path: &Path) -> Result<Source, String> {
    let f = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    if f.len() < 13 || &f[..3] != b"FLV" {
        return Err(format!("{} is not an FLV file", path.display()));
    }
    let mut pos = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) as usize + 4;
    let mut src = Source {
        path: path.to_owned(),
        meta: None,
        headers: Vec::new(),
        media: Vec::new(),
        loop_ms: 0,
        bytes: f.len() as u64,
    };
    let (mut last_video, mut last_audio) = (0u32, 0u32);
    while pos + 11 <= f.len() {
        let h = &f[pos..pos + 11];
        let kind = h[0] & 0x1F;
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let Some(body) = f.get(pos + 11..pos + 11 + size) else {
            break;
        };
        let body = body.to_vec();
        pos += 11 + size + 4;
        match kind {
            18 if src.meta.is_none() => src.meta = Some(body),
            9 if body.len() > 1 && body[1] == 0 => src.headers.push(Tag {
                kind,
                ts: 0,
                body,
                key: None,
            }),
            8 if body.len() > 1 && body[0] >> 4 == 10 && body[1] == 0 => src.headers.push(Tag {
                kind,
                ts: 0,
                body,
                key: None,
            }),
            8 | 9 => {
                if kind == 9 {
                    last_video = ts;
                } else {
                    last_audio = ts;
                }
                let key = if kind == 9 {
                    flv_video_key(&body)
                } else {
                    None
                };
                src.media.push(Tag {
                    kind,
                    ts,
                    body,
                    key,
                });
            }
            _ => {}
        }
    }
    let frames = src.media.iter().filter(|t| t.key.is_some()).count();
    if frames < 100 {
        return Err(format!("{} has only {frames} video frames", path.display()));
    }
    // The next frame after the last one: one frame interval (25 fps) after it.
    src.loop_ms = (last_video + 40).max(last_audio + 22);
    Ok(src)
}

impl Source {
    /// Average bit rate in Mbit/s.
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / f64::from(self.loop_ms) / 1000.0
    }
}
