//! HLS: the LL-HLS live [`Packager`] of one channel and the VOD playlist of a recording.
//!
//! # Live (LL-HLS, RFC 8216bis, fMP4/CMAF)
//! The [`Packager`] owns a [`Fragmenter`](crate::fmp4::Fragmenter) cutting *parts* of about
//! [`PackagerConfig::part_ms`] (default 500 ms) grouped into *segments* of about
//! [`PackagerConfig::segment_ms`] (default 2 s) that start on keyframes. It keeps the last
//! [`PackagerConfig::window_segments`] complete segments plus the one in progress, as the
//! shared [`Bytes`](bytes::Bytes) of their parts, and renders the media playlist.
//!
//! 500 ms parts rather than 333 ms: two requests a second per viewer instead of three on a
//! small stream node, for about half a second more latency (PART-HOLD-BACK is three part
//! targets: 1.5 s).
//!
//! Resource names, relative to the playlist (`/live/<channel>/index.m3u8`):
//!
//! | name | what |
//! |---|---|
//! | `index.m3u8` | the entry: a multivariant playlist naming `media.m3u8` ([`multivariant_playlist`]) |
//! | `media.m3u8` | the media playlist |
//! | `init-<n>.mp4` | init segment version `n` (0, 1, … — a new one after each codec change) |
//! | `seg-<msn>.mp4` | complete segment with media sequence number `msn` |
//! | `part-<msn>.<i>.mp4` | part `i` (0-based) of segment `msn` |
//!
//! Numbers are plain decimal without leading zeros; [`parse_resource`] accepts exactly
//! these names. Every URI in a playlist carries the caller's query suffix (the viewer's
//! play session).
//!
//! Media is labelled with what it shows ([`Packager::set_label`]: the channel's filler, or
//! a program), and [`Packager::playlist_for`] lists only what one program's viewers may
//! see.
//!
//! `EXT-X-TARGETDURATION` is the segment target rounded up, raised (never lowered) if a
//! longer segment was made (a source with keyframes further apart, or none). Parts are
//! listed for the segments within three target durations of the live edge.
//!
//! Blocking playlist reloads are decided, not awaited, here: the I/O edge parses the
//! request with [`parse_blocking_request`], asks [`Packager::ready`], and while the answer
//! is [`Readiness::Wait`] waits for its owner's notification that [`Packager::version`]
//! changed. Parts and segments are looked up the same way ([`Packager::part`],
//! [`Packager::segment`]).
//!
//! # VOD
//! [`vod_playlist`] serves a recording (an fMP4 file indexed by
//! [`FileScanner`](crate::fmp4::FileScanner)) as byte ranges of that one file.

mod packager;
mod playlist;
mod request;

#[cfg(test)]
mod tests;

pub use packager::{Lookup, Packager, PackagerConfig, PackagerStats, Readiness};
pub use playlist::{multivariant_playlist, vod_playlist};
pub use request::{BlockingRequest, Resource, parse_blocking_request, parse_resource};

/// Why an HLS request could not be understood. The I/O edge answers 400 Bad Request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HlsError {
    /// A delivery directive's value is not a decimal integer in range.
    #[error("{param} must be a decimal integer")]
    InvalidNumber {
        /// `_HLS_msn` or `_HLS_part`.
        param: &'static str,
    },
    /// A delivery directive appears twice.
    #[error("{param} appears more than once")]
    Duplicate {
        /// The directive.
        param: &'static str,
    },
    /// `_HLS_part` without `_HLS_msn`, which the specification forbids.
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
    /// `_HLS_skip` with a value other than `YES` or `v2`.
    #[error("_HLS_skip must be YES or v2")]
    InvalidSkip,
    /// A parameter starting with `_HLS_` that the specification does not define.
    #[error("unknown delivery directive {name:?}")]
    UnknownDirective {
        /// Its name (at most 40 characters of it).
        name: String,
    },
}
