//! The HTTP-FLV writer: the FLV file header and tag framing around shared tag bodies.

use bytes::{BufMut, Bytes, BytesMut};

use super::{FlvError, MAX_TAG_DATA_LEN, TAG_FRAMING_LEN, Tag};

/// The bytes FLV puts around one tag body: the 11-byte tag header before it and the 4-byte
/// PreviousTagSize after it.
///
/// Writing `header`, the shared body and `trailer` with a vectored write sends a tag to a
/// viewer without copying the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagFraming {
    /// Tag type, 24-bit data size, 24-bit timestamp, extended timestamp byte, stream id 0.
    pub header: [u8; 11],
    /// PreviousTagSize: 11 + the body length.
    pub trailer: [u8; 4],
}

impl TagFraming {
    /// The framing of `tag`; fails if its body does not fit FLV's 24-bit size.
    pub fn for_tag(tag: &Tag) -> Result<TagFraming, FlvError> {
        let len = tag.data.len();
        if len > MAX_TAG_DATA_LEN {
            return Err(FlvError::TagTooLarge { len });
        }
        let size = (len as u32).to_be_bytes();
        let ts = tag.timestamp_ms.to_be_bytes();
        let header = [
            tag.kind.type_id(),
            size[1],
            size[2],
            size[3],
            // The lower 24 bits, then the upper 8 bits in the "extended" byte.
            ts[1],
            ts[2],
            ts[3],
            ts[0],
            0,
            0,
            0,
        ];
        let trailer = (len as u32 + 11).to_be_bytes();
        Ok(TagFraming { header, trailer })
    }
}

/// Rewrites the timestamp of the framed tag that `tag` starts with (its 11-byte header,
/// lower 24 bits then the extended byte); does nothing to a shorter slice.
pub fn set_tag_timestamp(tag: &mut [u8], timestamp_ms: u32) {
    if let Some(field) = tag.get_mut(4..8) {
        let ts = timestamp_ms.to_be_bytes();
        field.copy_from_slice(&[ts[1], ts[2], ts[3], ts[0]]);
    }
}

/// Produces an HTTP-FLV byte stream: [`FlvWriter::header`] once, then one
/// [`FlvWriter::tag`] (or [`FlvWriter::framing`]) per tag. It only formats bytes; sending
/// them is the caller's business.
#[derive(Clone, Debug, Default)]
pub struct FlvWriter {
    bytes_written: u64,
}

/// Length of the FLV header plus PreviousTagSize0.
pub(crate) const FILE_HEADER_LEN: usize = 9 + 4;

impl FlvWriter {
    /// A writer that has written nothing yet.
    pub fn new() -> FlvWriter {
        FlvWriter::default()
    }

    /// The 9-byte FLV header (`FLV`, version 1, the audio/video flags, data offset 9)
    /// followed by PreviousTagSize0.
    pub fn header(&mut self, has_audio: bool, has_video: bool) -> Bytes {
        let mut out = BytesMut::with_capacity(FILE_HEADER_LEN);
        out.put_slice(b"FLV");
        out.put_u8(1);
        out.put_u8(if has_audio { 0x04 } else { 0 } | if has_video { 0x01 } else { 0 });
        out.put_u32(9);
        out.put_u32(0);
        self.bytes_written += FILE_HEADER_LEN as u64;
        out.freeze()
    }

    /// One tag, framed, as a single buffer (the body is copied; see
    /// [`FlvWriter::framing`] to avoid that).
    pub fn tag(&mut self, tag: &Tag) -> Result<Bytes, FlvError> {
        let mut out = BytesMut::with_capacity(tag.flv_len());
        self.write_tag(tag, &mut out)?;
        Ok(out.freeze())
    }

    /// Appends one framed tag to `out`.
    pub fn write_tag(&mut self, tag: &Tag, out: &mut BytesMut) -> Result<(), FlvError> {
        let framing = self.framing(tag)?;
        out.reserve(tag.flv_len());
        out.put_slice(&framing.header);
        out.put_slice(&tag.data);
        out.put_slice(&framing.trailer);
        Ok(())
    }

    /// The framing of one tag, for writing header, shared body and trailer without copying
    /// the body. Counts the whole tag as written.
    pub fn framing(&mut self, tag: &Tag) -> Result<TagFraming, FlvError> {
        let framing = TagFraming::for_tag(tag)?;
        self.bytes_written += (tag.data.len() + TAG_FRAMING_LEN) as u64;
        Ok(framing)
    }

    /// Bytes produced so far (header and tags).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::TagKind;

    #[test]
    fn header_bytes() {
        let mut w = FlvWriter::new();
        assert_eq!(&w.header(true, true)[..], b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
        assert_eq!(w.header(false, true)[4], 0x01);
        assert_eq!(w.header(true, false)[4], 0x04);
        assert_eq!(w.bytes_written(), 39);
    }

    #[test]
    fn tag_bytes_with_extended_timestamp() {
        let mut w = FlvWriter::new();
        let tag = Tag::video(0x1234_5678, &b"\x17\x01\0\0\0ab"[..]);
        let bytes = w.tag(&tag).unwrap();
        assert_eq!(&bytes[..11], &[9, 0, 0, 7, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
        assert_eq!(&bytes[11..18], b"\x17\x01\0\0\0ab");
        assert_eq!(&bytes[18..], &[0, 0, 0, 18]);
        assert_eq!(w.bytes_written(), 22);
        let framing = TagFraming::for_tag(&Tag::new(TagKind::Script, 5, Bytes::new())).unwrap();
        assert_eq!(framing.header[0], 18);
        assert_eq!(framing.trailer, [0, 0, 0, 11]);
    }

    #[test]
    fn oversized_body_is_refused() {
        let tag = Tag::audio(0, vec![0u8; MAX_TAG_DATA_LEN + 1]);
        assert_eq!(
            FlvWriter::new().tag(&tag),
            Err(FlvError::TagTooLarge {
                len: MAX_TAG_DATA_LEN + 1
            })
        );
        let tag = Tag::audio(0, vec![0u8; MAX_TAG_DATA_LEN]);
        assert!(FlvWriter::new().tag(&tag).is_ok());
    }
}
