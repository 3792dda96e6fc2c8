//! Playlist text: helpers shared by the live packager and the VOD playlist of a recording.

use std::fmt::Write as _;

use crate::fmp4::FileIndex;

/// Milliseconds as decimal seconds with three decimals: `2000` → `2.000`.
pub(crate) fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Seconds rounded to the nearest integer (halves up), as EXTINF is compared with the
/// target duration.
pub(crate) fn rounded_secs(ms: u64) -> u64 {
    (ms + 500) / 1000
}

/// `uri` with the caller's query appended (`?` or `&` as needed). Characters that cannot
/// stand in a quoted playlist attribute or a URI line (quotes, `#`, spaces, controls,
/// non-ASCII) are percent-encoded; `%` is kept, so an already encoded query stays as is.
pub(crate) fn with_query(uri: &str, query: &str) -> String {
    let mut out = String::with_capacity(uri.len() + query.len() + 1);
    escape_into(&mut out, uri);
    if !query.is_empty() {
        out.push(if uri.contains('?') { '&' } else { '?' });
        escape_into(&mut out, query);
    }
    out
}

fn escape_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'"' && b != b'#' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The entry playlist of a live channel or a replay: one variant, `media_uri` (already
/// carrying its query), with its peak bandwidth and, when known, its codecs. Players then
/// reload `media_uri` only, so what it carries (a play session) is what keeps them playing.
pub fn multivariant_playlist(media_uri: &str, bandwidth_bps: u64, codecs: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", bandwidth_bps.max(1));
    if let Some(c) = codecs.filter(|c| c.bytes().all(|b| b.is_ascii_graphic() && b != b'"')) {
        let _ = write!(out, ",CODECS=\"{c}\"");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", with_query(media_uri, ""));
    out
}

/// An HLS VOD playlist serving the recording `file_uri` (indexed as `index`) by byte
/// ranges: one `EXT-X-MAP` per init segment and one `EXT-X-BYTERANGE` per segment of
/// [`FileIndex::segments`], a discontinuity where the init segment changes, and
/// `EXT-X-ENDLIST`. Every URI carries `query` (e.g. `token=…`, without `?`).
pub fn vod_playlist(index: &FileIndex, file_uri: &str, query: &str) -> String {
    let uri = with_query(file_uri, query);
    let target = index
        .segments
        .iter()
        .map(|s| rounded_secs(s.duration_ms))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:7");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:0");
    if index.segments.iter().all(|s| s.independent) {
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    }
    let mut init = None;
    for segment in &index.segments {
        if segment.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if init != Some(segment.init) {
            if let Some(i) = index.inits.get(segment.init) {
                let _ = writeln!(
                    out,
                    "#EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{}@{}\"",
                    i.range.end - i.range.start,
                    i.range.start
                );
            }
            init = Some(segment.init);
        }
        let _ = writeln!(out, "#EXTINF:{},", secs(segment.duration_ms));
        let _ = writeln!(
            out,
            "#EXT-X-BYTERANGE:{}@{}",
            segment.range.end - segment.range.start,
            segment.range.start
        );
        let _ = writeln!(out, "{uri}");
    }
    let _ = writeln!(out, "#EXT-X-ENDLIST");
    out
}
