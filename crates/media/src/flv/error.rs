//! The one error type of the FLV model.

/// Why FLV bytes, a tag payload, an AVC configuration record or an SPS could not be read or
/// written. Offsets are byte offsets from the start of the input being parsed (for
/// [`super::FlvReader`], from the start of the stream), so a report names the exact spot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The input ended inside a structure.
    #[error("truncated {what} at offset {offset}: need {needed} bytes, have {available}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where the structure starts.
        offset: u64,
        /// Bytes the structure needs from `offset`.
        needed: usize,
        /// Bytes that were available from `offset`.
        available: usize,
    },
    /// The stream does not start with the `FLV` signature.
    #[error("not an FLV stream: signature {found:02x?} instead of \"FLV\"")]
    BadSignature {
        /// The first three bytes found.
        found: [u8; 3],
    },
    /// An FLV version other than 1.
    #[error("unsupported FLV version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The FLV header is malformed (reserved flag bits set or a data offset other than 9).
    #[error("malformed FLV header: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// A PreviousTagSize field does not match the tag before it.
    #[error("PreviousTagSize at offset {offset} is {found}, expected {expected}")]
    BadPreviousTagSize {
        /// Offset of the PreviousTagSize field.
        offset: u64,
        /// The size the preceding tag implies.
        expected: u32,
        /// The value found.
        found: u32,
    },
    /// A tag type that is not audio (8), video (9) or script data (18).
    #[error("unknown FLV tag type {tag_type} at offset {offset}")]
    UnknownTagType {
        /// Offset of the tag header.
        offset: u64,
        /// The tag type byte (without the filter bit).
        tag_type: u8,
    },
    /// A tag with the filter (encryption) bit set, which we do not support.
    #[error("encrypted (filtered) FLV tag at offset {offset}")]
    FilteredTag {
        /// Offset of the tag header.
        offset: u64,
    },
    /// A tag whose StreamID is not 0, as FLV requires.
    #[error("FLV tag at offset {offset} has stream id {stream_id}, expected 0")]
    NonZeroStreamId {
        /// Offset of the tag header.
        offset: u64,
        /// The stream id found.
        stream_id: u32,
    },
    /// A tag body longer than FLV's 24-bit size field can express.
    #[error("tag body of {len} bytes exceeds FLV's limit of 16 MiB - 1")]
    TagTooLarge {
        /// The body length.
        len: usize,
    },
    /// An AVCDecoderConfigurationRecord that cannot be read.
    #[error("invalid AVC configuration record at offset {offset}: {reason}")]
    InvalidAvcConfig {
        /// Offset inside the record.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A sequence parameter set that cannot be read.
    #[error("invalid H.264 SPS at bit {bit_offset}: {reason}")]
    InvalidSps {
        /// Bit offset inside the SPS RBSP (emulation prevention bytes removed).
        bit_offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl FlvError {
    pub(crate) fn truncated(
        what: &'static str,
        offset: u64,
        needed: usize,
        available: usize,
    ) -> Self {
        FlvError::Truncated {
            what,
            offset,
            needed,
            available,
        }
    }
}
