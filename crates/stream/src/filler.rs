//! Test-card filler and "be right back" slates made with ffmpeg, pre-encoded to a
//! channel's format (`slotcastd filler generate`), and operators' own videos re-encoded
//! to it ([`transcode`]).
//!
//! Channels play `<filler_dir>/<channel>/*.flv` in name order between programs and
//! `<slate_dir>/<channel>.flv` while a publisher is away inside its window. Operators may
//! put their own files there; they must be H.264 + AAC FLV with regular keyframes at the
//! channel's bitrate. Files are written under a temporary name and renamed, so a channel
//! never loads half a file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    /// Picture size for the bitrate (`slotcast_domain::channel::picture_size`).
    pub fn size(&self) -> (u32, u32) {
        slotcast_domain::channel::picture_size(self.bitrate_kbps)
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

/// The output side of every filler encode: H.264 (main, no B-frames, a keyframe every
/// 2 s at 25 fps) and AAC at the spec's bitrate, as FLV.
fn output_args(spec: &FillerSpec) -> Vec<String> {
    let audio_kbps = 96.min(spec.bitrate_kbps / 4).max(32);
    let video_kbps = spec.bitrate_kbps.saturating_sub(audio_kbps).max(100);
    [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-profile:v",
        "main",
        "-bf",
        "0",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        "-b:v".into(),
        format!("{video_kbps}k"),
        "-maxrate".into(),
        format!("{video_kbps}k"),
        "-bufsize".into(),
        format!("{}k", video_kbps * 2),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{audio_kbps}k"),
        "-ar".into(),
        "48000".into(),
        "-ac".into(),
        "2".into(),
        "-f".into(),
        "flv".into(),
    ])
    .collect()
}

/// Runs ffmpeg with `inputs` into `out` (through a temporary name, renamed at the end, so
/// a channel never loads half a file); with `progress`, reports the percent of `seconds`
/// done as ffmpeg goes.
fn run(
    ffmpeg: &Path,
    inputs: &[String],
    spec: &FillerSpec,
    out: &Path,
    progress: Option<&mut dyn FnMut(u8)>,
) -> Result<(), StreamError> {
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(StreamError::io(dir))?;
    let tmp = out.with_extension("flv.part");
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(inputs)
        .args(["-t", &spec.seconds.to_string()])
        .args(output_args(spec))
        .arg(&tmp);
    let spawn = |source| StreamError::Spawn {
        program: ffmpeg.to_owned(),
        source,
    };
    let status = match progress {
        None => cmd.status().map_err(spawn)?,
        Some(report) => {
            let mut child = cmd
                .args(["-progress", "pipe:1", "-nostats"])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(spawn)?;
            let total_us = u64::from(spec.seconds.max(1)) * 1_000_000;
            if let Some(stdout) = child.stdout.take() {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(us) = line
                        .strip_prefix("out_time_us=")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        report(u8::try_from((us * 100 / total_us).min(99)).unwrap_or(99));
                    }
                }
            }
            child.wait().map_err(spawn)?
        }
    };
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(StreamError::Ffmpeg {
            status,
            output: out.to_owned(),
        });
    }
    std::fs::rename(&tmp, out).map_err(StreamError::io(out))
}

fn encode(
    ffmpeg: &Path,
    video: &str,
    audio: &str,
    spec: &FillerSpec,
    out: &Path,
) -> Result<(), StreamError> {
    let inputs = ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio].map(str::to_owned);
    run(ffmpeg, &inputs, spec, out, None)
}

/// What ffprobe says of a video: its length in seconds and whether it has sound.
fn probe(ffmpeg: &Path, source: &Path) -> Result<(f64, bool), StreamError> {
    let ffprobe = ffmpeg.with_file_name("ffprobe");
    let out = Command::new(&ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(source)
        .output()
        .map_err(|source| StreamError::Spawn {
            program: ffprobe.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let duration = text
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.trim().parse::<f64>().ok());
    let video = text.lines().any(|l| l == "codec_type=video");
    match duration {
        Some(d) if out.status.success() && video && d > 0.0 => {
            Ok((d, text.lines().any(|l| l == "codec_type=audio")))
        }
        _ => Err(StreamError::NotAVideo(source.to_owned())),
    }
}

/// Re-encodes an operator's video `source` to a channel's format — the picture size of
/// its bitrate (letterboxed), 25 fps, H.264 + AAC FLV with a keyframe every 2 s, silence
/// where it has no sound — at most `spec.seconds` of it, into `out`; `progress` gets the
/// percent done.
pub fn transcode(
    ffmpeg: &Path,
    source: &Path,
    spec: &FillerSpec,
    out: &Path,
    progress: &mut dyn FnMut(u8),
) -> Result<(), StreamError> {
    let (seconds, sound) = probe(ffmpeg, source)?;
    let (w, h) = spec.size();
    let spec = FillerSpec {
        // Whole seconds, at least one, at most the channel's limit.
        seconds: spec.seconds.min(seconds.ceil().max(1.0) as u32),
        ..spec.clone()
    };
    let filter = format!(
        "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25"
    );
    let mut inputs: Vec<String> = vec!["-i".into(), source.display().to_string()];
    if !sound {
        inputs.extend(
            [
                "-f",
                "lavfi",
                "-i",
                "anullsrc=channel_layout=stereo:sample_rate=48000",
            ]
            .map(str::to_owned),
        );
    }
    inputs.extend(["-map".into(), "0:v:0".into(), "-vf".into(), filter]);
    inputs.extend(["-map".into(), if sound { "0:a:0" } else { "1:a:0" }.into()]);
    run(ffmpeg, &inputs, &spec, out, Some(progress))?;
    progress(100);
    Ok(())
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
