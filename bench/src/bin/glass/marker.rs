//! The marker clip and the script that reads it off the screen.
//!
//! Every frame of the clip carries its frame number in the top 80 rows of the 1280 × 720
//! picture: 16 blocks of 80 × 80, white for 1 and black for 0 — bits 0–11 the frame
//! number, bits 12–15 a check nibble — over ffmpeg's `testsrc2` (moving content, so the
//! encoder works as on a real picture). H.264 without B-frames (decode order is display
//! order, so the n-th video tag of the FLV is frame n), a keyframe every 2 s as OBS sends
//! by default, 2.4 Mbit/s like `fanout`'s source, AAC audio.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds of the clip; the publisher loops it (frame numbers repeat every loop).
pub const SECONDS: u32 = 60;
pub const FPS: u32 = 25;
/// Blocks across the top band (12 number bits and 4 check bits).
const BLOCKS: u32 = 16;
const BLOCK: u32 = 80;

/// The ffmpeg filter that draws the band.
fn filter() -> String {
    let mut f = format!(
        "testsrc2=size=1280x720:rate={FPS},drawbox=x=0:y=0:w=1280:h={BLOCK}:color=black:t=fill"
    );
    let chk = "mod(mod(n,16)+3*mod(floor(n/16),16)+5*mod(floor(n/256),16)+7,16)";
    for i in 0..BLOCKS {
        let bit = if i < 12 {
            format!("mod(floor(n/{}),2)", 1u32 << i)
        } else {
            format!("mod(floor(({chk})/{}),2)", 1u32 << (i - 12))
        };
        f.push_str(&format!(
            ",drawbox=x={}:y=0:w={BLOCK}:h={BLOCK}:color=white:t=fill:enable='{bit}'",
            i * BLOCK
        ));
    }
    f
}

/// The cached clip (an FLV the publisher sends), encoding it first if missing.
pub fn ensure(cache: &Path) -> Result<PathBuf, String> {
    let path = cache.join(format!(
        "glass-marker-720p{FPS}-h264-nobf-g50-2400k-aac96k-{SECONDS}s-v1.flv"
    ));
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("create {}: {e}", cache.display()))?;
    let tmp = path.with_extension("part.flv");
    eprintln!(
        "glass: encoding the {SECONDS} s marker clip once with ffmpeg into {}",
        path.display()
    );
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(filter())
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &SECONDS.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "main",
            "-bf",
            "0",
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
        ])
        .arg(&tmp)
        .status()
        .map_err(|e| format!("run ffmpeg: {e}"))?;
    if !status.success() {
        return Err(format!("ffmpeg failed: {status}"));
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("rename the clip: {e}"))?;
    Ok(path)
}

/// Installs, once per document, a `requestVideoFrameCallback` loop on the page's
/// `<video>`: each presented frame's top band is drawn onto a small canvas, its blocks
/// read, and `[frame, expectedDisplayTime, presentationTime, mediaTime]` pushed to
/// `window.__glass.frames` (times as `performance.timeOrigin + …`, milliseconds). True once
/// installed; false while there is no video element yet.
pub const INSTALL: &str = r#"
if (window.__glass) return true;
const v = document.getElementById('video') || document.querySelector('video');
if (!v || !v.requestVideoFrameCallback) return false;
const W = 320, H = 20, N = 16;
const c = document.createElement('canvas');
c.width = W; c.height = H;
const g = c.getContext('2d', { willReadFrequently: true });
const G = window.__glass = { frames: [], misread: 0, callbacks: 0, error: null };
performance.setResourceTimingBufferSize(100000);
const read = () => {
  const d = g.getImageData(0, 0, W, H).data;
  let n = 0, chk = 0;
  for (let i = 0; i < N; i++) {
    const o = ((H >> 1) * W + i * (W / N) + (W / N / 2)) * 4;
    const lum = (d[o] + d[o + 1] + d[o + 2]) / 3;
    if (lum > 64 && lum < 192) return -1;
    const bit = lum >= 128 ? 1 : 0;
    if (i < 12) n |= bit << i; else chk |= bit << (i - 12);
  }
  const want = ((n & 15) + 3 * ((n >> 4) & 15) + 5 * ((n >> 8) & 15) + 7) % 16;
  return chk === want ? n : -1;
};
const tick = (now, m) => {
  G.callbacks++;
  try {
    if (v.videoWidth > 0) {
      g.drawImage(v, 0, 0, v.videoWidth, v.videoHeight * 80 / 720, 0, 0, W, H);
      const n = read();
      if (n < 0) G.misread++;
      else G.frames.push([n, performance.timeOrigin + m.expectedDisplayTime,
                          performance.timeOrigin + m.presentationTime, m.mediaTime]);
    }
  } catch (e) { G.error = String(e); }
  v.requestVideoFrameCallback(tick);
};
v.requestVideoFrameCallback(tick);
return true;
"#;

/// Takes what the loop recorded since the last call.
pub const TAKE: &str = r#"
const G = window.__glass;
if (!G) return null;
const f = G.frames; G.frames = [];
const m = G.misread; G.misread = 0;
const v = document.getElementById('video') || document.querySelector('video');
return { frames: f, misread: m, callbacks: G.callbacks, error: G.error,
         media_error: v && v.error ? `${v.error.code} ${v.error.message}` : null,
         src: v ? v.currentSrc : '', t: v ? v.currentTime : 0,
         behind: v && v.buffered.length ? v.buffered.end(v.buffered.length - 1) - v.currentTime : null };
"#;

/// The browser's clock: `performance.timeOrigin + performance.now()`, the time base of the
/// frames' times.
pub const NOW: &str = "return performance.timeOrigin + performance.now();";

#[cfg(test)]
mod tests {
    /// The check nibble of frame number `n`, as the script computes it.
    fn check(n: u32) -> u32 {
        ((n & 15) + 3 * ((n >> 4) & 15) + 5 * ((n >> 8) & 15) + 7) % 16
    }

    #[test]
    fn check_nibble_matches_the_filter() {
        // Frame 37: nibbles 5, 2, 0 → 5 + 6 + 0 + 7 = 18 → 2.
        assert_eq!(check(37), 2);
        assert!(super::filter().contains("enable='mod(floor(n/2048),2)'"));
    }
}
