//! Fragmented MP4 (ISO BMFF / CMAF): the [`Fragmenter`] that turns FLV tags into an init
//! segment and `moof`+`mdat` fragments, and the [`FileScanner`] that indexes a fragmented
//! MP4 file for byte-range playback.
//!
//! # Writing
//! The [`Fragmenter`] takes [`Tag`](crate::flv::Tag)s as one viewer of the
//! [`Hub`](crate::hub::Hub) receives them (sequence headers, then a keyframe, then frames)
//! and hands out [`Output`]s: an [`Output::Init`] (`ftyp` + `moov`) whenever the codec
//! configuration changes, then [`Output::Fragment`]s. H.264 (legacy FLV and enhanced RTMP
//! `avc1`), H.265 (enhanced RTMP `hvc1`, or the legacy codec id 12) and AAC are supported;
//! other codecs are skipped and counted in [`FragmenterStats`].
//!
//! Track ids are fixed: [`VIDEO_TRACK_ID`] and [`AUDIO_TRACK_ID`], whichever tracks are
//! present. Video uses a 90 kHz timescale ([`VIDEO_TIMESCALE`]), audio its sample rate.
//! Sample bytes are never copied: a [`Fragment`] is a header chunk followed by slices of
//! the tag bodies, so many viewers can share one fragment.
//!
//! A file is `init, fragment, fragment, …` written in order ([`Output::chunks`]); it is a
//! valid fragmented MP4 for ffmpeg, VLC and browsers. If the configuration changes during
//! a recording, the new init segment is written in line and starts a new *period*: the
//! [`FileScanner`] understands that (and [`crate::hls::vod_playlist`] marks a
//! discontinuity there), plain MP4 players only play the first period.
//!
//! # Reading
//! [`FileScanner`] walks the top-level boxes of a file we wrote, sans-IO: it says which
//! byte range it wants next ([`FileScanner::wanted`]), loads only `moov` and `moof` boxes
//! (never `mdat` payloads) and builds a [`FileIndex`]: init ranges, fragments with times and
//! independence, and VOD segments. A file cut short by a crash is fine: the incomplete last
//! fragment is left out. [`scan_fragments`] does the same over a slice in memory. Both take
//! untrusted input and never panic; work and memory are bounded by the input size and
//! [`MAX_LOADED_BOX`].

mod codec;
mod fragmenter;
mod reader;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

pub use codec::{AudioConfig, VideoConfig, VideoFormat};
pub use fragmenter::{
    Fragment, Fragmenter, FragmenterConfig, FragmenterStats, Output, VIDEO_STALL_MS, file_chunks,
};
pub use reader::{
    DEFAULT_VOD_SEGMENT_MS, FileIndex, FileScanner, FragmentInfo, InitInfo, MAX_LOADED_BOX,
    TrackInfo, TrackKind, VodSegment, scan_fragments,
};

/// Track id of the video track in everything the [`Fragmenter`] writes.
pub const VIDEO_TRACK_ID: u32 = 1;

/// Track id of the audio track in everything the [`Fragmenter`] writes.
pub const AUDIO_TRACK_ID: u32 = 2;

/// Timescale (ticks per second) of the video track: 90 kHz, as MPEG systems use.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Why a fragmented MP4 file could not be indexed. Offsets are byte offsets from the
/// start of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// A box header is malformed: a size smaller than its header, or a child box that does
    /// not fit in its parent.
    #[error("invalid box {box_type} at offset {offset}: {reason}")]
    InvalidBox {
        /// Where the box starts.
        offset: u64,
        /// The box type, printable (non-ASCII bytes escaped).
        box_type: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `moov` or `moof` larger than [`MAX_LOADED_BOX`], which we refuse to load.
    #[error("{box_type} box at offset {offset} is {size} bytes, more than we load")]
    BoxTooLarge {
        /// Where the box starts.
        offset: u64,
        /// The box type.
        box_type: String,
        /// Its declared size.
        size: u64,
    },
    /// The file has no complete `moov` before its first fragment (or none at all), so it
    /// cannot be played.
    #[error("no complete init segment (ftyp + moov) found")]
    NoInit,
    /// A `moov` declares no audio or video track we can index.
    #[error("moov at offset {offset} has no usable track")]
    NoTracks {
        /// Where the `moov` starts.
        offset: u64,
    },
    /// [`FileScanner::push`] got bytes for another offset than the one it asked for.
    #[error("pushed bytes at offset {got}, but the scanner wants offset {wanted}")]
    UnexpectedOffset {
        /// The offset the scanner asked for.
        wanted: u64,
        /// The offset given.
        got: u64,
    },
}

/// A box type as text for messages: ASCII as is, other bytes escaped.
pub(crate) fn fourcc_text(t: &[u8; 4]) -> String {
    t.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}
