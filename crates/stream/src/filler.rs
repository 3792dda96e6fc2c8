//! Test-card filler and "be right back" slates made with ffmpeg, pre-encoded to a
//! channel's format (`slotcastd filler generate`).
//!
//! Channels play `<filler_dir>/<channel>/*.flv` in name order between programs and
//! `<slate_dir>/<channel>.flv` while a publisher is away inside its window. Operators may
//! put their own files there; they must be H.264 + AAC FLV with regular keyframes at the
//! channel's bitrate. Files are written under a temporary name and renamed, so a channel
//! never loads half a file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::StreamError;

/// The font used for captions when present (Debian's fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// What to make for one channel.
#[derive(Debug, Clone)]
pub struct FillerSpec {
    /// Channel name (directory and caption).
    pub channel: String,
    /// Video + audio bitrate to aim for.
    pub bitrate_kbps: u32,
    /// Length of the filler loop.
    pub seconds: u32,
}

impl FillerSpec {
    /// Picture size for the bitrate: 360p up to 1.2 Mbit/s, 720p up to 3 Mbit/s, else 1080p.
    pub fn size(&self) -> (u32, u32) {
        match self.bitrate_kbps {
            0..=1200 => (640, 360),
            1201..=3000 => (1280, 720),
            _ => (1920, 1080),
        }
    }
}

/// The files written for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The filler loop.
    pub filler: PathBuf,
    /// The slate.
    pub slate: PathBuf,
}

fn caption(text: &str) -> String {
    if !Path::new(FONT).exists() {
        return String::new();
    }
    let safe: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " -_.".contains(*c))
        .collect();
    format!(
        ",drawtext=fontfile={FONT}:text='{safe}':fontcolor=white:fontsize=h/14:box=1:boxcolor=black@0.6:x=(w-text_w)/2:y=h-2*text_h"
    )
}

fn encode(
    ffmpeg: &Path,
    video: &str,
    audio: &str,
    spec: &FillerSpec,
    out: &Path,
) -> Result<(), StreamError> {
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(StreamError::io(dir))?;
    let tmp = out.with_extension("flv.part");
    let audio_kbps = 96.min(spec.bitrate_kbps / 4).max(32);
    let video_kbps = spec.bitrate_kbps.saturating_sub(audio_kbps).max(100);
    let status = Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", video])
        .args(["-f", "lavfi", "-i", audio])
        .args(["-t", &spec.seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args([
            "-profile:v",
            "main",
            "-bf",
            "0",
            "-g",
            "50",
            "-keyint_min",
            "50",
        ])
        .args(["-sc_threshold", "0"])
        .args(["-b:v", &format!("{video_kbps}k")])
        .args(["-maxrate", &format!("{video_kbps}k")])
        .args(["-bufsize", &format!("{}k", video_kbps * 2)])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            &format!("{audio_kbps}k"),
            "-ar",
            "48000",
            "-ac",
            "2",
        ])
        .args(["-f", "flv"])
        .arg(&tmp)
        .status()
        .map_err(|source| StreamError::Spawn {
            program: ffmpeg.to_owned(),
            source,
        })?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(StreamError::Ffmpeg {
            status,
            output: out.to_owned(),
        });
    }
    std::fs::rename(&tmp, out).map_err(StreamError::io(out))
}

/// Makes the test-card filler and the slate of one channel with `ffmpeg`.
pub fn generate(
    ffmpeg: &Path,
    filler_dir: &Path,
    slate_dir: &Path,
    spec: &FillerSpec,
) -> Result<Generated, StreamError> {
    if spec.channel.is_empty()
        || spec.channel.contains(['/', '\\'])
        || spec.channel.starts_with('.')
    {
        return Err(StreamError::ChannelName(spec.channel.clone()));
    }
    let (w, h) = spec.size();
    let filler = filler_dir.join(&spec.channel).join("testcard.flv");
    let slate = slate_dir.join(format!("{}.flv", spec.channel));
    let video = format!(
        "testsrc2=size={w}x{h}:rate=25{}",
        caption(&format!("slotcast - {} - no program on air", spec.channel))
    );
    encode(
        ffmpeg,
        &video,
        "sine=frequency=440:sample_rate=48000,volume=0.1",
        spec,
        &filler,
    )?;
    let video = format!(
        "smptehdbars=size={w}x{h}:rate=25{}",
        caption("Be right back")
    );
    let slate_spec = FillerSpec {
        seconds: spec.seconds.min(4),
        ..spec.clone()
    };
    encode(
        ffmpeg,
        &video,
        "anullsrc=channel_layout=stereo:sample_rate=48000",
        &slate_spec,
        &slate,
    )?;
    Ok(Generated { filler, slate })
}

/// `ffmpeg` on the `PATH`, if any.
pub fn find_ffmpeg() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join("ffmpeg"))
        .find(|p| p.is_file())
}
