//! A strict FLV reader, incremental (push bytes, pull tags) so that a load generator can
//! read an HTTP-FLV response as it arrives, and fuzzable.

use bytes::{Buf, BytesMut};

use super::writer::FILE_HEADER_LEN;
use super::{FlvError, TAG_FRAMING_LEN, Tag, TagKind};

/// What the FLV header says about the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvHeader {
    /// The "audio tags present" flag.
    pub has_audio: bool,
    /// The "video tags present" flag.
    pub has_video: bool,
}

/// Reads an FLV stream incrementally: [`FlvReader::push`] bytes as they arrive, then call
/// [`FlvReader::poll_tag`] until it returns `Ok(None)`.
///
/// Strict: the signature, version 1, zero reserved header bits, a data offset of 9, a zero
/// PreviousTagSize0, known tag types, no filter bit, stream id 0 and every PreviousTagSize
/// are checked. After an error the reader keeps returning that error.
#[derive(Debug, Default)]
pub struct FlvReader {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    header: Option<FlvHeader>,
    failed: Option<FlvError>,
}

impl FlvReader {
    /// A reader at the start of a stream.
    pub fn new() -> FlvReader {
        FlvReader::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The stream header, once it has been read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes received but not yet returned as tags.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete tag, `Ok(None)` if more bytes are needed.
    pub fn poll_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.next_tag();
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn next_tag(&mut self) -> Result<Option<Tag>, FlvError> {
        if self.header.is_none() {
            if self.buf.len() < FILE_HEADER_LEN {
                // Check what we have early, so a wrong stream fails at once.
                if self.buf.len() >= 3 && &self.buf[..3] != b"FLV" {
                    return Err(FlvError::BadSignature {
                        found: [self.buf[0], self.buf[1], self.buf[2]],
                    });
                }
                return Ok(None);
            }
            self.header = Some(parse_header(&self.buf[..FILE_HEADER_LEN])?);
            self.advance(FILE_HEADER_LEN);
        }
        if self.buf.len() < 11 {
            return Ok(None);
        }
        let h = &self.buf[..11];
        let offset = self.offset;
        if h[0] & 0x20 != 0 {
            return Err(FlvError::FilteredTag { offset });
        }
        // The top two bits are reserved for FMS and must be 0.
        let type_id = h[0] & 0x1f;
        let Some(kind) = TagKind::from_type_id(type_id).filter(|_| h[0] & 0xc0 == 0) else {
            return Err(FlvError::UnknownTagType {
                offset,
                tag_type: h[0],
            });
        };
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
        let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let stream_id = u32::from_be_bytes([0, h[8], h[9], h[10]]);
        if stream_id != 0 {
            return Err(FlvError::NonZeroStreamId { offset, stream_id });
        }
        let body = size as usize;
        if self.buf.len() < body + TAG_FRAMING_LEN {
            return Ok(None);
        }
        let t = 11 + body;
        let previous = u32::from_be_bytes([
            self.buf[t],
            self.buf[t + 1],
            self.buf[t + 2],
            self.buf[t + 3],
        ]);
        if previous != size + 11 {
            return Err(FlvError::BadPreviousTagSize {
                offset: offset + t as u64,
                expected: size + 11,
                found: previous,
            });
        }
        self.advance(11);
        let data = self.buf.split_to(body).freeze();
        self.offset += body as u64;
        self.advance(4);
        Ok(Some(Tag::new(kind, timestamp_ms, data)))
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }

    /// Fails if the stream stopped in the middle of the header or a tag.
    pub fn finish(&self) -> Result<(), FlvError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.header.is_none() {
            return Err(FlvError::truncated(
                "FLV header",
                0,
                FILE_HEADER_LEN,
                self.buf.len(),
            ));
        }
        if !self.buf.is_empty() {
            let needed = if self.buf.len() < 11 {
                11
            } else {
                u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize
                    + TAG_FRAMING_LEN
            };
            return Err(FlvError::truncated(
                "FLV tag",
                self.offset,
                needed,
                self.buf.len(),
            ));
        }
        Ok(())
    }
}

fn parse_header(h: &[u8]) -> Result<FlvHeader, FlvError> {
    if &h[..3] != b"FLV" {
        return Err(FlvError::BadSignature {
            found: [h[0], h[1], h[2]],
        });
    }
    if h[3] != 1 {
        return Err(FlvError::UnsupportedVersion { version: h[3] });
    }
    if h[4] & !0x05 != 0 {
        return Err(FlvError::BadHeader {
            reason: "reserved flag bits set",
        });
    }
    if u32::from_be_bytes([h[5], h[6], h[7], h[8]]) != 9 {
        return Err(FlvError::BadHeader {
            reason: "data offset is not 9",
        });
    }
    let previous = u32::from_be_bytes([h[9], h[10], h[11], h[12]]);
    if previous != 0 {
        return Err(FlvError::BadPreviousTagSize {
            offset: 9,
            expected: 0,
            found: previous,
        });
    }
    Ok(FlvHeader {
        has_audio: h[4] & 0x04 != 0,
        has_video: h[4] & 0x01 != 0,
    })
}

/// Reads a complete FLV stream. Tag bodies are slices of one copy of `input`.
pub fn parse_flv(input: &[u8]) -> Result<(FlvHeader, Vec<Tag>), FlvError> {
    let mut reader = FlvReader::new();
    reader.push(input);
    let mut tags = Vec::new();
    while let Some(tag) = reader.poll_tag()? {
        tags.push(tag);
    }
    reader.finish()?;
    let header = reader
        .header()
        .ok_or_else(|| FlvError::truncated("FLV header", 0, FILE_HEADER_LEN, input.len()))?;
    Ok((header, tags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::FlvWriter;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut w = FlvWriter::new();
        let mut out = w.header(true, true).to_vec();
        out.extend_from_slice(
            &w.tag(&Tag::script(0, &b"\x02\x00\x0aonMetaData"[..]))
                .unwrap(),
        );
        out.extend_from_slice(&w.tag(&Tag::video(0, &b"\x17\x00\0\0\0"[..])).unwrap());
        out.extend_from_slice(&w.tag(&Tag::audio(0x0100_0000, &b"\xaf\x01!"[..])).unwrap());
        out
    }

    #[test]
    fn reads_what_the_writer_wrote() {
        let (header, tags) = parse_flv(&sample()).unwrap();
        assert!(header.has_audio && header.has_video);
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[2].timestamp_ms, 0x0100_0000);
        assert_eq!(tags[2].kind, TagKind::Audio);
    }

    #[test]
    fn incremental_reading_byte_by_byte() {
        let bytes = sample();
        let mut reader = FlvReader::new();
        let mut tags = Vec::new();
        for b in &bytes {
            reader.push(std::slice::from_ref(b));
            while let Some(tag) = reader.poll_tag().unwrap() {
                tags.push(tag);
            }
        }
        reader.finish().unwrap();
        assert_eq!(tags, parse_flv(&bytes).unwrap().1);
        assert_eq!(reader.offset(), bytes.len() as u64);
    }

    #[test]
    fn strictness() {
        let good = sample();
        let mut bad = good.clone();
        bad[0] = b'G';
        assert!(matches!(
            parse_flv(&bad),
            Err(FlvError::BadSignature { .. })
        ));
        let mut bad = good.clone();
        bad[3] = 2;
        assert_eq!(
            parse_flv(&bad),
            Err(FlvError::UnsupportedVersion { version: 2 })
        );
        let mut bad = good.clone();
        bad[4] = 0x07;
        assert!(matches!(parse_flv(&bad), Err(FlvError::BadHeader { .. })));
        let mut bad = good.clone();
        bad[8] = 10;
        assert!(matches!(parse_flv(&bad), Err(FlvError::BadHeader { .. })));
        let mut bad = good.clone();
        bad[12] = 1;
        assert!(matches!(
            parse_flv(&bad),
            Err(FlvError::BadPreviousTagSize { offset: 9, .. })
        ));
        // First tag starts at 13.
        let mut bad = good.clone();
        bad[13] = 7;
        assert_eq!(
            parse_flv(&bad),
            Err(FlvError::UnknownTagType {
                offset: 13,
                tag_type: 7
            })
        );
        let mut bad = good.clone();
        bad[13] |= 0x20;
        assert_eq!(parse_flv(&bad), Err(FlvError::FilteredTag { offset: 13 }));
        let mut bad = good.clone();
        bad[23] = 1;
        assert!(matches!(
            parse_flv(&bad),
            Err(FlvError::NonZeroStreamId { offset: 13, .. })
        ));
        // The first tag's PreviousTagSize: 13 + 11 + 13-byte body.
        let mut bad = good.clone();
        bad[13 + 11 + 13 + 3] ^= 1;
        assert!(matches!(
            parse_flv(&bad),
            Err(FlvError::BadPreviousTagSize {
                offset: 37,
                expected: 24,
                found: 25
            })
        ));
        let truncated = &good[..good.len() - 1];
        assert!(matches!(
            parse_flv(truncated),
            Err(FlvError::Truncated { .. })
        ));
        assert!(matches!(
            parse_flv(&good[..5]),
            Err(FlvError::Truncated { .. })
        ));
    }

    #[test]
    fn errors_are_sticky() {
        let mut reader = FlvReader::new();
        reader.push(b"NOT AN FLV STREAM");
        let err = reader.poll_tag().unwrap_err();
        reader.push(&sample());
        assert_eq!(reader.poll_tag().unwrap_err(), err);
        assert_eq!(reader.finish().unwrap_err(), err);
    }

    fn tag_strategy() -> impl Strategy<Value = Tag> {
        (
            prop_oneof![
                Just(TagKind::Audio),
                Just(TagKind::Video),
                Just(TagKind::Script)
            ],
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(kind, ts, data)| Tag::new(kind, ts, Bytes::from(data)))
    }

    proptest! {
        #[test]
        fn writer_then_reader_round_trips(
            has_audio: bool,
            has_video: bool,
            tags in proptest::collection::vec(tag_strategy(), 0..40),
            split in 0usize..4096,
        ) {
            let mut w = FlvWriter::new();
            let mut bytes = w.header(has_audio, has_video).to_vec();
            for tag in &tags {
                bytes.extend_from_slice(&w.tag(tag).unwrap());
            }
            prop_assert_eq!(w.bytes_written(), bytes.len() as u64);
            let (header, parsed) = parse_flv(&bytes).unwrap();
            prop_assert_eq!(header, FlvHeader { has_audio, has_video });
            prop_assert_eq!(&parsed, &tags);

            // The same through the incremental reader, split at an arbitrary point.
            let split = split.min(bytes.len());
            let mut reader = FlvReader::new();
            reader.push(&bytes[..split]);
            let mut incremental = Vec::new();
            while let Some(tag) = reader.poll_tag().unwrap() {
                incremental.push(tag);
            }
            reader.push(&bytes[split..]);
            while let Some(tag) = reader.poll_tag().unwrap() {
                incremental.push(tag);
            }
            reader.finish().unwrap();
            prop_assert_eq!(incremental, tags);
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_flv(&data);
            let mut with_header = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
            with_header.extend_from_slice(&data);
            let _ = parse_flv(&with_header);
        }
    }
}
