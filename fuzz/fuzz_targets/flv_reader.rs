//! The strict FLV reader on arbitrary bytes.
//!
//! - `parse_flv` and the incremental `FlvReader`, fed the same bytes in chunks of random
//!   sizes, must agree: the same header and tags, or the same error.
//! - An accepted stream is canonical (the reader checks every framing field), so writing
//!   its tags back with `FlvWriter` must reproduce the input byte for byte, and reading
//!   that again must give the same tags.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotcast_media::flv::{FlvError, FlvHeader, FlvReader, parse_flv};
use slotcast_media::{FlvWriter, Tag};

/// A small deterministic generator (xorshift64*), seeded from the input, so the chunk
/// boundaries vary with the input and a crash reproduces from the input alone.
struct Rng(u64);

impl Rng {
    fn seeded(data: &[u8]) -> Rng {
        // FNV-1a over the input, never zero.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A chunk length, mostly tiny (to split headers), sometimes large.
    fn chunk(&mut self) -> usize {
        let r = self.next();
        match r % 4 {
            0 => 1,
            1 => 1 + (r >> 8) as usize % 16,
            2 => 1 + (r >> 8) as usize % 300,
            _ => 1 + (r >> 8) as usize % 8192,
        }
    }
}

fn incremental(data: &[u8]) -> Result<(FlvHeader, Vec<Tag>), FlvError> {
    let mut rng = Rng::seeded(data);
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    let mut rest = data;
    let mut failure = None;
    'feed: while !rest.is_empty() {
        let n = rng.chunk().min(rest.len());
        reader.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match reader.poll_tag() {
                Ok(Some(tag)) => tags.push(tag),
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if let Some(err) = failure {
        // Errors are sticky, whatever arrives after them.
        reader.push(rest);
        assert_eq!(reader.poll_tag(), Err(err.clone()), "error not sticky");
        assert_eq!(reader.finish(), Err(err.clone()), "finish forgot the error");
        return Err(err);
    }
    reader.finish()?;
    assert_eq!(reader.buffered(), 0);
    assert_eq!(reader.offset(), data.len() as u64, "offset after a whole stream");
    let header = reader.header().expect("finish succeeded, so the header was read");
    Ok((header, tags))
}

fn write(header: FlvHeader, tags: &[Tag]) -> Vec<u8> {
    let mut w = FlvWriter::new();
    let mut out = w.header(header.has_audio, header.has_video).to_vec();
    for tag in tags {
        out.extend_from_slice(&w.tag(tag).expect("a tag that was read fits FLV"));
    }
    assert_eq!(w.bytes_written(), out.len() as u64, "bytes_written");
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = parse_flv(data);
    let pieces = incremental(data);
    assert_eq!(whole, pieces, "parse_flv and FlvReader disagree");

    let Ok((header, tags)) = whole else {
        return;
    };
    assert!(tags.iter().all(|t| !t.discontinuity), "reader set a discontinuity mark");
    let rewritten = write(header, &tags);
    assert_eq!(rewritten, data, "writing the tags back changed the stream");
    let (header2, tags2) = parse_flv(&rewritten).expect("the writer's output reads back");
    assert_eq!(header2, header);
    assert_eq!(tags2, tags);
});
