//! Box writing: the init segment (`ftyp` + `moov`) and fragment headers (`moof` + the
//! `mdat` header). Sample data is never copied here; the caller appends it.

use bytes::Bytes;

use super::codec::{AudioConfig, VideoConfig, VideoFormat};
use super::{AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};

/// `sample_depends_on = 2` (an I-frame, depends on nothing).
pub(crate) const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
pub(crate) const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// The unity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// A byte buffer with nested boxes whose sizes are filled in when they close.
#[derive(Default)]
pub(crate) struct BoxBuf {
    pub(crate) buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxBuf {
    pub(crate) fn new() -> BoxBuf {
        BoxBuf::default()
    }

    /// Opens a box; [`BoxBuf::end`] closes the innermost open box.
    pub(crate) fn start(&mut self, box_type: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.bytes(box_type);
    }

    /// Opens a full box (with version and flags).
    pub(crate) fn start_full(&mut self, box_type: &[u8; 4], version: u8, flags: u32) {
        self.start(box_type);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    pub(crate) fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            let size = u32::try_from(self.buf.len() - start).unwrap_or(u32::MAX);
            self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// The init segment for the given tracks.
pub(crate) fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Bytes {
    let mut b = BoxBuf::new();
    b.start(b"ftyp");
    b.bytes(b"iso6");
    b.u32(0);
    for brand in [b"iso6", b"cmfc", b"isom", b"mp41"] {
        b.bytes(brand);
    }
    b.end();

    b.start(b"moov");
    b.start_full(b"mvhd", 0, 0);
    b.u32(0); // creation_time
    b.u32(0); // modification_time
    b.u32(1000); // timescale
    b.u32(0); // duration: unknown, given by the fragments
    b.u32(0x0001_0000); // rate 1.0
    b.u16(0x0100); // volume 1.0
    b.zeros(2 + 8);
    for m in MATRIX {
        b.u32(m);
    }
    b.zeros(24); // pre_defined
    b.u32(AUDIO_TRACK_ID.max(VIDEO_TRACK_ID) + 1); // next_track_ID
    b.end();
    if let Some(v) = video {
        video_trak(&mut b, v);
    }
    if let Some(a) = audio {
        audio_trak(&mut b, a);
    }
    b.start(b"mvex");
    for (present, id) in [
        (video.is_some(), VIDEO_TRACK_ID),
        (audio.is_some(), AUDIO_TRACK_ID),
    ] {
        if present {
            b.start_full(b"trex", 0, 0);
            b.u32(id);
            b.u32(1); // default_sample_description_index
            b.u32(0); // default_sample_duration
            b.u32(0); // default_sample_size
            b.u32(0); // default_sample_flags
            b.end();
        }
    }
    b.end(); // mvex
    b.end(); // moov
    Bytes::from(b.buf)
}

fn tkhd(b: &mut BoxBuf, id: u32, audio: bool, width: u32, height: u32) {
    // Flags: track_enabled | track_in_movie.
    b.start_full(b"tkhd", 0, 0x000003);
    b.u32(0);
    b.u32(0);
    b.u32(id);
    b.u32(0); // reserved
    b.u32(0); // duration
    b.zeros(8);
    b.u16(0); // layer
    b.u16(0); // alternate_group
    b.u16(if audio { 0x0100 } else { 0 }); // volume
    b.u16(0);
    for m in MATRIX {
        b.u32(m);
    }
    // 16.16 fixed point; sizes beyond 65535 pixels are not representable.
    b.u32(width.min(0xffff) << 16);
    b.u32(height.min(0xffff) << 16);
    b.end();
}

fn mdhd_hdlr(b: &mut BoxBuf, timescale: u32, handler: &[u8; 4], name: &str) {
    b.start_full(b"mdhd", 0, 0);
    b.u32(0);
    b.u32(0);
    b.u32(timescale);
    b.u32(0);
    b.u16(0x55c4); // language "und"
    b.u16(0);
    b.end();
    b.start_full(b"hdlr", 0, 0);
    b.u32(0); // pre_defined
    b.bytes(handler);
    b.zeros(12);
    b.bytes(name.as_bytes());
    b.u8(0);
    b.end();
}

/// `dinf` and the empty sample tables around a sample description written by `entry`.
fn dinf_stbl(b: &mut BoxBuf, entry: impl FnOnce(&mut BoxBuf)) {
    b.start(b"dinf");
    b.start_full(b"dref", 0, 0);
    b.u32(1);
    b.start_full(b"url ", 0, 1); // self-contained
    b.end();
    b.end();
    b.end();
    b.start(b"stbl");
    b.start_full(b"stsd", 0, 0);
    b.u32(1);
    entry(b);
    b.end();
    for t in [b"stts", b"stsc", b"stco"] {
        b.start_full(t, 0, 0);
        b.u32(0);
        b.end();
    }
    b.start_full(b"stsz", 0, 0);
    b.u32(0);
    b.u32(0);
    b.end();
    b.end();
}

fn video_trak(b: &mut BoxBuf, v: &VideoConfig) {
    b.start(b"trak");
    tkhd(b, VIDEO_TRACK_ID, false, v.width, v.height);
    b.start(b"mdia");
    mdhd_hdlr(b, VIDEO_TIMESCALE, b"vide", "VideoHandler");
    b.start(b"minf");
    b.start_full(b"vmhd", 0, 1);
    b.zeros(8);
    b.end();
    dinf_stbl(b, |b| {
        let (entry, config) = match v.format {
            VideoFormat::Avc => (b"avc1", b"avcC"),
            VideoFormat::Hevc => (b"hvc1", b"hvcC"),
        };
        b.start(entry);
        b.zeros(6);
        b.u16(1); // data_reference_index
        b.zeros(16); // pre_defined, reserved
        b.u16(u16::try_from(v.width).unwrap_or(u16::MAX));
        b.u16(u16::try_from(v.height).unwrap_or(u16::MAX));
        b.u32(0x0048_0000); // 72 dpi
        b.u32(0x0048_0000);
        b.u32(0);
        b.u16(1); // frame_count
        b.zeros(32); // compressorname
        b.u16(0x0018); // depth
        b.u16(0xffff); // pre_defined = -1
        b.start(config);
        b.bytes(&v.record);
        b.end();
        b.end();
    });
    b.end(); // minf
    b.end(); // mdia
    b.end(); // trak
}

fn audio_trak(b: &mut BoxBuf, a: &AudioConfig) {
    b.start(b"trak");
    tkhd(b, AUDIO_TRACK_ID, true, 0, 0);
    b.start(b"mdia");
    mdhd_hdlr(b, a.sample_rate, b"soun", "SoundHandler");
    b.start(b"minf");
    b.start_full(b"smhd", 0, 0);
    b.zeros(4);
    b.end();
    dinf_stbl(b, |b| {
        b.start(b"mp4a");
        b.zeros(6);
        b.u16(1); // data_reference_index
        b.zeros(8);
        b.u16(a.channels);
        b.u16(16); // samplesize
        b.u32(0);
        // 16.16 fixed point; rates above 65535 Hz do not fit and are left to the esds.
        b.u32(if a.sample_rate <= 0xffff {
            a.sample_rate << 16
        } else {
            0
        });
        esds(b, &a.asc);
        b.end();
    });
    b.end();
    b.end();
    b.end();
}

/// An MPEG-4 descriptor header: tag and expandable size.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    // At most 4 bytes of 7 bits each; our bodies are far smaller.
    let mut groups = Vec::with_capacity(4);
    let mut rest = len.min(0x0fff_ffff);
    loop {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    groups.reverse();
    let last = groups.len() - 1;
    for (i, g) in groups.iter().enumerate() {
        out.push(if i < last { g | 0x80 } else { *g });
    }
    out.extend_from_slice(body);
}

fn esds(b: &mut BoxBuf, asc: &[u8]) {
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd = vec![
        0x40, // objectTypeIndication: MPEG-4 audio
        0x15, // streamType audio (5) << 2 | upStream 0 | reserved 1
        0, 0, 0, // bufferSizeDB
        0, 0, 0, 0, // maxBitrate
        0, 0, 0, 0, // avgBitrate
    ];
    dcd.extend_from_slice(&dsi);
    let mut es = vec![0, 0, 0]; // ES_ID 0, flags 0
    descriptor(&mut es, 0x04, &dcd);
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    let mut full = Vec::new();
    descriptor(&mut full, 0x03, &es);
    b.start_full(b"esds", 0, 0);
    b.bytes(&full);
    b.end();
}

/// One sample as the fragment header describes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SampleEntry {
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) sync: bool,
    pub(crate) composition_offset: i32,
}

/// One track's run of samples in a fragment.
pub(crate) struct Run<'a> {
    pub(crate) track_id: u32,
    pub(crate) base_decode_time: u64,
    pub(crate) samples: &'a [SampleEntry],
    /// Whether per-sample flags and composition offsets are written (video); audio uses
    /// a default flag for every sample and no offsets.
    pub(crate) video: bool,
}

/// The `moof` box and the `mdat` header for `runs`, whose sample data follows the
/// header in the order of `runs`.
pub(crate) fn fragment_header(sequence: u32, runs: &[Run<'_>]) -> Bytes {
    let mut b = BoxBuf::new();
    let mut offset_fields = Vec::with_capacity(runs.len());
    b.start(b"moof");
    b.start_full(b"mfhd", 0, 0);
    b.u32(sequence);
    b.end();
    for run in runs {
        b.start(b"traf");
        // default-base-is-moof, plus default-sample-flags for audio.
        let tfhd_flags = if run.video { 0x02_0000 } else { 0x02_0020 };
        b.start_full(b"tfhd", 0, tfhd_flags);
        b.u32(run.track_id);
        if !run.video {
            b.u32(FLAGS_SYNC);
        }
        b.end();
        b.start_full(b"tfdt", 1, 0);
        b.u64(run.base_decode_time);
        b.end();
        // data-offset, sample-duration, sample-size; video adds sample-flags and
        // sample-composition-time-offsets (version 1: signed).
        let (version, flags) = if run.video {
            (1, 0x000f01)
        } else {
            (0, 0x000301)
        };
        b.start_full(b"trun", version, flags);
        b.u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
        offset_fields.push(b.len());
        b.u32(0); // data_offset, patched below
        for s in run.samples {
            b.u32(s.duration);
            b.u32(s.size);
            if run.video {
                b.u32(if s.sync { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                b.u32(s.composition_offset as u32);
            }
        }
        b.end(); // trun
        b.end(); // traf
    }
    b.end(); // moof
    let data_len: u64 = runs
        .iter()
        .flat_map(|r| r.samples.iter())
        .map(|s| u64::from(s.size))
        .sum();
    let moof_len = b.len() as u64;
    let mdat_header_len: u64 = if data_len + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let mut data_offset = moof_len + mdat_header_len;
    for (run, field) in runs.iter().zip(offset_fields) {
        let v = i32::try_from(data_offset).unwrap_or(i32::MAX);
        b.buf[field..field + 4].copy_from_slice(&v.to_be_bytes());
        data_offset += run.samples.iter().map(|s| u64::from(s.size)).sum::<u64>();
    }
    if mdat_header_len == 16 {
        b.u32(1);
        b.bytes(b"mdat");
        b.u64(data_len + 16);
    } else {
        b.u32((data_len + 8) as u32);
        b.bytes(b"mdat");
    }
    Bytes::from(b.buf)
}
