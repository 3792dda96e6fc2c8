//! The FLV / RTMP media model: tags, payload classification, the AVC configuration and SPS
//! readers, the HTTP-FLV writer and a strict FLV reader.
//!
//! An RTMP audio, video or data message payload is byte for byte the body of an FLV tag, so
//! one [`Tag`] type serves ingest (RTMP), fan-out ([`crate::hub`]) and HTTP-FLV delivery.
//! Every parser here takes untrusted bytes and returns an [`FlvError`] instead of panicking;
//! they are fuzz targets.

mod avc;
mod classify;
mod error;
mod reader;
mod writer;

pub(crate) use avc::unescape;
pub use avc::{AvcConfig, Sps, avc_dimensions, parse_avc_config, parse_sps};
pub use classify::{
    AudioCodec, AudioInfo, AudioPacketType, FrameType, VideoCodec, VideoInfo, VideoPacketType,
    audio_info, is_metadata, script_name, strip_set_data_frame, video_info,
};
pub use error::FlvError;
pub use reader::{FlvHeader, FlvReader, parse_flv};
pub use writer::{FlvWriter, TagFraming, set_tag_timestamp};

use bytes::Bytes;

/// Bytes an FLV tag adds around its body: the 11-byte tag header and the 4-byte
/// PreviousTagSize that follows it.
pub const TAG_FRAMING_LEN: usize = 11 + 4;

/// Largest tag body FLV can describe (its data size field is 24 bits); RTMP message lengths
/// have the same limit.
pub const MAX_TAG_DATA_LEN: usize = 0x00FF_FFFF;

/// What an FLV tag (or RTMP message) carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// Audio (FLV tag type 8, RTMP message type 8).
    Audio,
    /// Video (FLV tag type 9, RTMP message type 9).
    Video,
    /// Script data, i.e. AMF0 metadata such as `onMetaData` (FLV tag type 18, RTMP 18).
    Script,
}

impl TagKind {
    /// The FLV tag type (and RTMP message type id) of this kind.
    pub fn type_id(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }

    /// The kind for an FLV tag type, `None` for types FLV does not define.
    pub fn from_type_id(id: u8) -> Option<TagKind> {
        match id {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        }
    }
}

/// One FLV tag: a kind, a timestamp and the tag body.
///
/// `data` is the FLV tag body, which is also the RTMP message payload (for video it starts
/// with the frame-type/codec byte). Cloning a tag is cheap: the body is a shared [`Bytes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// Audio, video or script data.
    pub kind: TagKind,
    /// Decode timestamp in milliseconds (FLV's 32-bit timestamp).
    pub timestamp_ms: u32,
    /// The tag body.
    pub data: Bytes,
    /// Set by the [`crate::hub::Hub`] on the first tag a viewer receives from a new
    /// timeline (after a publisher ↔ filler switch), so that segmenters can mark an
    /// `EXT-X-DISCONTINUITY`. Writers ignore it and readers leave it `false`.
    pub discontinuity: bool,
}

impl Tag {
    /// A tag without the discontinuity mark.
    pub fn new(kind: TagKind, timestamp_ms: u32, data: impl Into<Bytes>) -> Tag {
        Tag {
            kind,
            timestamp_ms,
            data: data.into(),
            discontinuity: false,
        }
    }

    /// An audio tag.
    pub fn audio(timestamp_ms: u32, data: impl Into<Bytes>) -> Tag {
        Tag::new(TagKind::Audio, timestamp_ms, data)
    }

    /// A video tag.
    pub fn video(timestamp_ms: u32, data: impl Into<Bytes>) -> Tag {
        Tag::new(TagKind::Video, timestamp_ms, data)
    }

    /// A script-data tag.
    pub fn script(timestamp_ms: u32, data: impl Into<Bytes>) -> Tag {
        Tag::new(TagKind::Script, timestamp_ms, data)
    }

    /// Size of this tag in an FLV stream: body plus [`TAG_FRAMING_LEN`].
    pub fn flv_len(&self) -> usize {
        self.data.len() + TAG_FRAMING_LEN
    }
}
