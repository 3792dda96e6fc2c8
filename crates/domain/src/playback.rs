//! The playback URL layout, defined once: the center hands these URLs out (play grants,
//! previews, downloads) and the stream node routes exactly these paths. Only the parts
//! both sides agree on live here; neither side builds a playback path by hand.
//!
//! | what | path |
//! |---|---|
//! | live HTTP-FLV | `/live/<channel>.flv?token=` |
//! | live fMP4 (MSE) | `/live/<channel>.mp4?token=` |
//! | live LL-HLS | `/live/<channel>/index.m3u8?token=` → media playlist `…/media.m3u8?session=` |
//! | replay HLS VOD | `/vod/<slug>/index.m3u8?token=` → `…/media.m3u8?session=` |
//! | replay file (byte ranges) | `/vod/<slug>/recording.mp4?token=` (`&download=1`: as an attachment) |
//! | preview (HTTP-FLV) | `/preview/<reservation>.flv?token=` |
//! | a channel's filler (operator) | `/filler/<channel id>?token=`: `GET` files and jobs, `POST …&name=` an upload, `DELETE …&file=` a file |
//!
//! A token admits (see [`crate::token`]); an HLS player is then handed a session id in its
//! media playlist's URL, so it keeps playing after the token's short lifetime.

use crate::ReservationId;

/// Route of live HTTP-FLV and fMP4 (`<channel>.flv`, `<channel>.mp4`).
pub const LIVE_FILE_ROUTE: &str = "/live/{file}";
/// Route of live LL-HLS resources (`index.m3u8`, `media.m3u8`, parts, segments, inits).
pub const LIVE_HLS_ROUTE: &str = "/live/{channel}/{file}";
/// Route of replays (`index.m3u8`, `media.m3u8`, `recording.mp4`).
pub const VOD_ROUTE: &str = "/vod/{program}/{file}";
/// Route of the broadcaster's preview (`<reservation>.flv` or `.mp4`).
pub const PREVIEW_ROUTE: &str = "/preview/{file}";

/// Route of a channel's filler on a node: list (`GET`), upload (`POST`), remove a file
/// (`DELETE`).
pub const FILLER_ROUTE: &str = "/filler/{channel}";
/// Largest filler upload, checked by the center and by the node.
pub const FILLER_MAX_BYTES: u64 = 1 << 30;

/// The entry playlist of HLS (live and replay): answers a multivariant playlist naming
/// [`MEDIA_PLAYLIST`] with a session.
pub const ENTRY_PLAYLIST: &str = "index.m3u8";
/// The media playlist an HLS session reloads.
pub const MEDIA_PLAYLIST: &str = "media.m3u8";
/// A replay's recording.
pub const RECORDING_FILE: &str = "recording.mp4";

/// The URLs of one play grant, for each kind of player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayUrls {
    /// The first-party browser player (MSE): the live fMP4 stream, or the recording.
    pub mse: String,
    /// HLS players: LL-HLS live, or HLS VOD of the recording.
    pub hls: String,
    /// VLC, ffplay, flv.js: HTTP-FLV live, or the recording (there is no FLV of it).
    pub flv: String,
}

/// Where to play `channel` live with `token`; `base` is the public URL (no trailing `/`).
pub fn live(base: &str, channel: &str, token: &str) -> PlayUrls {
    let at = format!("{base}/live/{channel}");
    PlayUrls {
        mse: format!("{at}.mp4?token={token}"),
        hls: format!("{at}/{ENTRY_PLAYLIST}?token={token}"),
        flv: format!("{at}.flv?token={token}"),
    }
}

/// Where to replay the program `slug` with `token`.
pub fn replay(base: &str, slug: &str, token: &str) -> PlayUrls {
    let at = format!("{base}/vod/{slug}");
    PlayUrls {
        mse: format!("{at}/{RECORDING_FILE}?token={token}"),
        hls: format!("{at}/{ENTRY_PLAYLIST}?token={token}"),
        flv: format!("{at}/{RECORDING_FILE}?token={token}"),
    }
}

/// The broadcaster's download of the recording of `slug` (a replay token).
pub fn download(base: &str, slug: &str, token: &str) -> String {
    format!("{base}/vod/{slug}/{RECORDING_FILE}?token={token}&download=1")
}

/// A channel's filler on the node at `base` (the query — `token`, and `name` or `file` —
/// is added by the caller, encoded).
pub fn filler(base: &str, channel: crate::ChannelId) -> String {
    format!("{base}/filler/{}", channel.0)
}

/// The broadcaster's preview of `reservation` with a preview token.
pub fn preview(base: &str, reservation: ReservationId, token: &str) -> String {
    format!("{base}/preview/{}.flv?token={token}", reservation.0)
}

/// The broadcaster's preview of `reservation` as an fMP4 stream (for MSE).
pub fn preview_mse(base: &str, reservation: ReservationId, token: &str) -> String {
    format!("{base}/preview/{}.mp4?token={token}", reservation.0)
}

/// The value of `name` in a raw query string (`a=1&b=2`), undecoded: tokens and session
/// ids are URL-safe and never need decoding.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_routes() {
        let u = live("http://tv", "small", "T");
        assert_eq!(u.flv, "http://tv/live/small.flv?token=T");
        assert_eq!(u.mse, "http://tv/live/small.mp4?token=T");
        assert_eq!(u.hls, "http://tv/live/small/index.m3u8?token=T");
        let r = replay("http://tv", "abc", "T");
        assert_eq!(r.hls, "http://tv/vod/abc/index.m3u8?token=T");
        assert_eq!(r.mse, "http://tv/vod/abc/recording.mp4?token=T");
        assert_eq!(
            download("http://tv", "abc", "T"),
            "http://tv/vod/abc/recording.mp4?token=T&download=1"
        );
        assert_eq!(
            preview("http://tv", ReservationId(7), "T"),
            "http://tv/preview/7.flv?token=T"
        );
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("a=1&token=xy&b"), "token"), Some("xy"));
        assert_eq!(query_param(Some("xtoken=1"), "token"), None);
        assert_eq!(query_param(Some("token"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }
}
