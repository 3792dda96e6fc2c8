//! What viewers parse, incrementally and without keeping the stream: FLV tags, ISO BMFF
//! boxes (moov/moof/mdat) and MPEG-TS video PES; and the key that matches a received
//! video frame to the frame the publisher sent — a hash of the frame's first VCL NAL unit,
//! which is the same bytes in an FLV tag (AVCC), an fMP4 sample (AVCC) and a TS PES
//! (Annex-B).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The key of a frame: a hash of its first VCL NAL unit (types 1–5) without trailing
/// zero bytes, or `None` when it has none.
pub fn vcl_key<'a>(nals: impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    for nal in nals {
        let Some(&h) = nal.first() else { continue };
        if (1..=5).contains(&(h & 0x1F)) {
            let mut end = nal.len();
            while end > 1 && nal[end - 1] == 0 {
                end -= 1;
            }
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            nal[..end].hash(&mut hasher);
            return Some(hasher.finish());
        }
    }
    None
}

/// NAL units of AVCC data (4-byte big-endian lengths).
pub fn avcc_nals(mut b: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if b.len() < 4 + n {
            return None;
        }
        let nal = &b[4..4 + n];
        b = &b[4 + n..];
        Some(nal)
    })
}

/// NAL units of Annex-B data (split at 00 00 01).
pub fn annexb_nals(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    // Skip to the first start code.
    let first = find_start(b, 0);
    pos = first.map_or(b.len(), |p| p + 3).max(pos);
    std::iter::from_fn(move || {
        if pos >= b.len() {
            return None;
        }
        let next = find_start(b, pos);
        let end = next.unwrap_or(b.len());
        let nal = &b[pos..end];
        pos = next.map_or(b.len(), |p| p + 3);
        Some(nal)
    })
}

fn find_start(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < b.len() {
        if b[i + 2] > 1 {
            i += 3;
        } else if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// The key of an FLV video tag body (AVC NALU packets only).
pub fn flv_video_key(body: &[u8]) -> Option<u64> {
    if body.len() > 5 && body[0] & 0x0F == 7 && body[1] == 1 {
        vcl_key(avcc_nals(&body[5..]))
    } else {
        None
    }
}

/// What a parser reports.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// A video frame or fragment is complete: its (end) media time in milliseconds and,
    /// when frames are kept, the keys of its frames.
    Video { media_ms: i64, keys: Vec<u64> },
}

// ---------------------------------------------------------------- FLV

enum FlvState {
    Header { need: usize },
    TagHeader { have: usize },
    Body { left: usize },
    PrevSize { left: usize },
}

/// Incremental FLV reader: counts and discards, or keeps video bodies to key them.
pub struct FlvParser {
    state: FlvState,
    hdr: [u8; 11],
    keep: bool,
    body: Vec<u8>,
    /// Tags seen.
    pub tags: u64,
}

impl FlvParser {
    pub fn new(keep: bool) -> Self {
        Self {
            state: FlvState::Header { need: 13 },
            hdr: [0; 11],
            keep,
            body: Vec::new(),
            tags: 0,
        }
    }

    fn tag_type(&self) -> u8 {
        self.hdr[0] & 0x1F
    }

    fn tag_ms(&self) -> i64 {
        let h = &self.hdr;
        i64::from(u32::from_be_bytes([h[7], h[4], h[5], h[6]]))
    }

    /// Feeds bytes; calls `on` for each finished video tag.
    pub fn feed(&mut self, mut data: &[u8], on: &mut impl FnMut(Event)) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.state {
                FlvState::Header { need } => {
                    if *need == 13 && data[0] != b'F' {
                        return Err("not an FLV stream".into());
                    }
                    let n = (*need).min(data.len());
                    *need -= n;
                    data = &data[n..];
                    if *need == 0 {
                        self.state = FlvState::TagHeader { have: 0 };
                    }
                }
                FlvState::TagHeader { have } => {
                    let n = (11 - *have).min(data.len());
                    self.hdr[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == 11 {
                        let h = &self.hdr;
                        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
                        if !matches!(self.tag_type(), 8 | 9 | 18) {
                            return Err(format!("FLV tag of type {}", h[0]));
                        }
                        self.body.clear();
                        self.state = FlvState::Body { left: size };
                        if size == 0 {
                            self.finish_tag(on);
                        }
                    }
                }
                FlvState::Body { left } => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    let done = *left == 0;
                    if self.keep && self.tag_type() == 9 {
                        self.body.extend_from_slice(&data[..n]);
                    } else if self.tag_type() == 9 && self.body.len() < 2 {
                        // Frame type and packet type, to skip sequence headers.
                        let k = (2 - self.body.len()).min(n);
                        self.body.extend_from_slice(&data[..k]);
                    }
                    data = &data[n..];
                    if done {
                        self.finish_tag(on);
                    }
                }
                FlvState::PrevSize { left } => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    data = &data[n..];
                    if *left == 0 {
                        self.state = FlvState::TagHeader { have: 0 };
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_tag(&mut self, on: &mut impl FnMut(Event)) {
        self.tags += 1;
        self.state = FlvState::PrevSize { left: 4 };
        if self.tag_type() == 9 && self.body.len() >= 2 && self.body[1] == 1 {
            let keys = if self.keep {
                flv_video_key(&self.body).into_iter().collect()
            } else {
                Vec::new()
            };
            on(Event::Video {
                media_ms: self.tag_ms(),
                keys,
            });
        }
    }
}

// ---------------------------------------------------------------- ISO BMFF

/// Incremental reader of a fragmented MP4 stream's top-level boxes. `moov` and `moof`
/// are read whole (small); `mdat` is skipped, or kept to key its video samples.
pub struct Mp4Parser {
    hdr: [u8; 16],
    have: usize,
    /// Current box: type, bytes of it left (after the header), whether it is kept.
    cur: Option<([u8; 4], u64, bool)>,
    keep_mdat: bool,
    moof: Vec<u8>,
    mdat_start: usize,
    mdat_hdr: Vec<u8>,
    body: Vec<u8>,
    /// Video track id and timescale, from `moov`.
    video: Option<(u32, u32)>,
    trex: HashMap<u32, (u32, u32)>,
    /// The last `moof`'s video fragment: end time (timescale units).
    frag_end: Option<u64>,
    /// Boxes seen.
    pub boxes: u64,
}

/// A video run of a `moof`: decode time at its end, and sample (offset from moof start,
/// size) list.
struct VideoRun {
    end: u64,
    samples: Vec<(usize, usize)>,
}

impl Mp4Parser {
    pub fn new(keep_mdat: bool) -> Self {
        Self {
            hdr: [0; 16],
            have: 0,
            cur: None,
            keep_mdat,
            moof: Vec::new(),
            mdat_start: 0,
            mdat_hdr: Vec::new(),
            body: Vec::new(),
            video: None,
            trex: HashMap::new(),
            frag_end: None,
            boxes: 0,
        }
    }

    /// Feeds bytes; calls `on` when a video fragment's `mdat` is complete.
    pub fn feed(&mut self, mut data: &[u8], on: &mut impl FnMut(Event)) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.cur {
                None => {
                    let want = if self.have >= 8 && read_u32(&self.hdr, 0) == 1 {
                        16
                    } else {
                        8
                    };
                    let n = (want - self.have).min(data.len());
                    self.hdr[self.have..self.have + n].copy_from_slice(&data[..n]);
                    self.have += n;
                    data = &data[n..];
                    if self.have < 8 || (self.have == 8 && read_u32(&self.hdr, 0) == 1) {
                        continue;
                    }
                    let size = match read_u32(&self.hdr, 0) {
                        1 => u64::from_be_bytes(self.hdr[8..16].try_into().expect("8 bytes")),
                        0 => u64::MAX,
                        s => u64::from(s),
                    };
                    let hl = self.have as u64;
                    if size < hl {
                        return Err(format!("MP4 box of size {size}"));
                    }
                    let kind: [u8; 4] = self.hdr[4..8].try_into().expect("4 bytes");
                    let left = if size == u64::MAX {
                        u64::MAX
                    } else {
                        size - hl
                    };
                    let keep = match &kind {
                        b"moov" | b"moof" => true,
                        b"mdat" => self.keep_mdat,
                        _ => false,
                    };
                    if keep && left > 64 << 20 {
                        return Err(format!(
                            "MP4 {} box of {left} bytes",
                            String::from_utf8_lossy(&kind)
                        ));
                    }
                    if &kind == b"moof" {
                        self.moof.clear();
                        self.moof.extend_from_slice(&self.hdr[..self.have]);
                    }
                    if &kind == b"mdat" {
                        self.mdat_start = self.moof.len() + self.have;
                        self.mdat_hdr.clear();
                        self.mdat_hdr.extend_from_slice(&self.hdr[..self.have]);
                    }
                    self.body.clear();
                    self.have = 0;
                    self.cur = Some((kind, left, keep));
                    if left == 0 {
                        self.finish(on)?;
                    }
                }
                Some((_, left, keep)) => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let done = *left == 0;
                    if *keep {
                        self.body.extend_from_slice(&data[..n]);
                    }
                    data = &data[n..];
                    if done {
                        self.finish(on)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, on: &mut impl FnMut(Event)) -> Result<(), String> {
        let (kind, _, _) = self.cur.take().expect("a box");
        self.boxes += 1;
        match &kind {
            b"moov" => self.parse_moov()?,
            b"moof" => {
                self.moof.extend_from_slice(&self.body);
                self.frag_end = None;
                if let Some(run) = self.video_run()? {
                    self.frag_end = Some(run.end);
                }
            }
            b"mdat" => {
                if let (Some(end), Some((_, scale))) = (self.frag_end.take(), self.video) {
                    let mut keys = Vec::new();
                    if self.keep_mdat {
                        let mut frag = std::mem::take(&mut self.moof);
                        frag.extend_from_slice(&self.mdat_hdr);
                        frag.extend_from_slice(&self.body);
                        if let Some(run) = self.video_run_in(&frag)? {
                            for (off, size) in run.samples {
                                if let Some(s) = frag.get(off..off + size) {
                                    keys.extend(vcl_key(avcc_nals(s)));
                                }
                            }
                        }
                        self.moof = frag;
                    }
                    on(Event::Video {
                        media_ms: (end as i128 * 1000 / i128::from(scale.max(1))) as i64,
                        keys,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn parse_moov(&mut self) -> Result<(), String> {
        let moov = std::mem::take(&mut self.body);
        for (kind, b) in boxes(&moov) {
            match kind {
                b"trak" => {
                    let mut id = None;
                    let mut scale = None;
                    let mut video = false;
                    for (k, b) in boxes(b) {
                        if k == b"tkhd" && !b.is_empty() {
                            id = Some(read_u32(b, if b[0] == 1 { 20 } else { 12 }));
                        }
                        if k == b"mdia" {
                            for (k, b) in boxes(b) {
                                if k == b"mdhd" && !b.is_empty() {
                                    scale = Some(read_u32(b, if b[0] == 1 { 20 } else { 12 }));
                                }
                                if k == b"hdlr" && b.len() >= 12 {
                                    video = &b[8..12] == b"vide";
                                }
                            }
                        }
                    }
                    if let (true, Some(id), Some(scale)) = (video, id, scale) {
                        self.video = Some((id, scale));
                    }
                }
                b"mvex" => {
                    for (k, b) in boxes(b) {
                        if k == b"trex" && b.len() >= 24 {
                            self.trex
                                .insert(read_u32(b, 4), (read_u32(b, 12), read_u32(b, 16)));
                        }
                    }
                }
                _ => {}
            }
        }
        if self.video.is_none() {
            return Err("the MP4 stream has no video track".into());
        }
        Ok(())
    }

    fn video_run(&self) -> Result<Option<VideoRun>, String> {
        self.video_run_in(&self.moof)
    }

    /// The video track's run in `frag` (a moof box, perhaps followed by its mdat).
    fn video_run_in(&self, frag: &[u8]) -> Result<Option<VideoRun>, String> {
        let Some((vid, _)) = self.video else {
            return Ok(None);
        };
        let moof = boxes(frag).next().map(|(_, b)| b).unwrap_or(&[]);
        for (k, traf) in boxes(moof) {
            if k != b"traf" {
                continue;
            }
            let mut track = 0;
            let (mut def_dur, mut def_size) = (0, 0);
            let mut base: Option<u64> = None;
            let mut tfdt = 0u64;
            let mut samples = Vec::new();
            let mut total = 0u64;
            for (k, b) in boxes(traf) {
                match k {
                    b"tfhd" if b.len() >= 8 => {
                        let flags = read_u32(b, 0) & 0xFF_FFFF;
                        track = read_u32(b, 4);
                        (def_dur, def_size) = self.trex.get(&track).copied().unwrap_or((0, 0));
                        let mut p = 8;
                        if flags & 1 != 0 {
                            base = Some(u64::from_be_bytes(
                                b.get(p..p + 8).ok_or("short tfhd")?.try_into().expect("8"),
                            ));
                            p += 8;
                        }
                        if flags & 2 != 0 {
                            p += 4;
                        }
                        if flags & 8 != 0 {
                            def_dur = read_u32(b, p);
                            p += 4;
                        }
                        if flags & 0x10 != 0 {
                            def_size = read_u32(b, p);
                        }
                    }
                    b"tfdt" if b.len() >= 8 => {
                        tfdt = if b[0] == 1 && b.len() >= 12 {
                            u64::from_be_bytes(b[4..12].try_into().expect("8"))
                        } else {
                            u64::from(read_u32(b, 4))
                        };
                    }
                    b"trun" if b.len() >= 8 => {
                        let flags = read_u32(b, 0) & 0xFF_FFFF;
                        let count = read_u32(b, 4) as usize;
                        let mut p = 8;
                        let mut off = base.map_or(0, |x| x as usize);
                        if flags & 1 != 0 {
                            off = off.wrapping_add(read_u32(b, p) as i32 as isize as usize);
                            p += 4;
                        } else {
                            off = usize::MAX;
                        }
                        if flags & 4 != 0 {
                            p += 4;
                        }
                        let per = 4 * [0x100, 0x200, 0x400, 0x800]
                            .iter()
                            .filter(|f| flags & **f != 0)
                            .count();
                        if b.len() < p + per * count {
                            return Err("short trun".into());
                        }
                        for _ in 0..count {
                            let mut q = p;
                            let mut dur = def_dur;
                            let mut size = def_size;
                            if flags & 0x100 != 0 {
                                dur = read_u32(b, q);
                                q += 4;
                            }
                            if flags & 0x200 != 0 {
                                size = read_u32(b, q);
                            }
                            total += u64::from(dur);
                            samples.push((off, size as usize));
                            if off != usize::MAX {
                                off += size as usize;
                            }
                            p += per;
                        }
                    }
                    _ => {}
                }
            }
            if track == vid {
                // Without a data offset the samples start at the mdat payload.
                if samples.first().is_some_and(|s| s.0 == usize::MAX) {
                    let mut off = self.mdat_start;
                    for s in &mut samples {
                        s.0 = off;
                        off += s.1;
                    }
                }
                return Ok(Some(VideoRun {
                    end: tfdt + total,
                    samples,
                }));
            }
        }
        Ok(None)
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_be_bytes(x.try_into().expect("4")))
}

/// The boxes inside `b`: (type, payload).
fn boxes(mut b: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 8 {
            return None;
        }
        let size = read_u32(b, 0) as usize;
        let (hl, size) = match size {
            1 if b.len() >= 16 => (
                16,
                u64::from_be_bytes(b[8..16].try_into().expect("8")) as usize,
            ),
            0 => (8, b.len()),
            s => (8, s),
        };
        if size < hl || size > b.len() {
            return None;
        }
        let kind: &[u8; 4] = b[4..8].try_into().expect("4");
        let payload = &b[hl..size];
        b = &b[size..];
        Some((kind, payload))
    })
}

// ---------------------------------------------------------------- MPEG-TS

/// Demuxes the H.264 stream of an MPEG-TS (as nginx-rtmp's HLS writes it) into frames and
/// keys them.
#[derive(Default)]
pub struct TsDemux {
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    pes: Vec<u8>,
    carry: Vec<u8>,
}

impl TsDemux {
    /// Feeds bytes (any split); returns keys of the frames whose PES completed.
    pub fn feed(&mut self, data: &[u8], keys: &mut Vec<u64>) {
        self.carry.extend_from_slice(data);
        let mut pos = 0;
        while self.carry.len() - pos >= 188 {
            if self.carry[pos] != 0x47 {
                pos += 1;
                continue;
            }
            let pkt: [u8; 188] = self.carry[pos..pos + 188].try_into().expect("188");
            self.packet(&pkt, keys);
            pos += 188;
        }
        self.carry.drain(..pos);
    }

    /// The end of a segment: the last PES is complete.
    pub fn flush(&mut self, keys: &mut Vec<u64>) {
        self.finish_pes(keys);
        self.carry.clear();
    }

    fn finish_pes(&mut self, keys: &mut Vec<u64>) {
        let p = std::mem::take(&mut self.pes);
        if p.len() > 9 && p[0..3] == [0, 0, 1] {
            let start = 9 + usize::from(p[8]);
            if let Some(es) = p.get(start..) {
                keys.extend(vcl_key(annexb_nals(es)));
            }
        }
        self.pes = p;
        self.pes.clear();
    }

    fn packet(&mut self, p: &[u8; 188], keys: &mut Vec<u64>) {
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || off >= 188 {
            return;
        }
        let payload = &p[off..];
        if pid == 0 || Some(pid) == self.pmt_pid {
            if !pusi {
                return;
            }
            let ptr = usize::from(payload[0]);
            let Some(sec) = payload.get(1 + ptr..) else {
                return;
            };
            if sec.len() < 12 {
                return;
            }
            let len = ((usize::from(sec[1]) & 0x0F) << 8) | usize::from(sec[2]);
            let end = (3 + len).min(sec.len()).saturating_sub(4);
            if pid == 0 {
                let mut i = 8;
                while i + 4 <= end {
                    let prog = u16::from_be_bytes([sec[i], sec[i + 1]]);
                    if prog != 0 {
                        self.pmt_pid = Some(u16::from_be_bytes([sec[i + 2], sec[i + 3]]) & 0x1FFF);
                    }
                    i += 4;
                }
            } else {
                let info = ((usize::from(sec[10]) & 0x0F) << 8) | usize::from(sec[11]);
                let mut i = 12 + info;
                while i + 5 <= end {
                    let st = sec[i];
                    let epid = u16::from_be_bytes([sec[i + 1], sec[i + 2]]) & 0x1FFF;
                    let es_info = ((usize::from(sec[i + 3]) & 0x0F) << 8) | usize::from(sec[i + 4]);
                    if st == 0x1B {
                        self.video_pid = Some(epid);
                    }
                    i += 5 + es_info;
                }
            }
        } else if Some(pid) == self.video_pid {
            if pusi {
                self.finish_pes(keys);
            }
            if pusi || !self.pes.is_empty() {
                self.pes.extend_from_slice(payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_frame_has_the_same_key_in_avcc_and_annexb() {
        let sps = [0x67u8, 1, 2, 3];
        let slice = [0x65u8, 9, 8, 7, 0, 3, 1];
        let mut avcc = Vec::new();
        for n in [&sps[..], &slice[..]] {
            avcc.extend_from_slice(&(n.len() as u32).to_be_bytes());
            avcc.extend_from_slice(n);
        }
        let mut annexb = vec![0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1];
        annexb.extend_from_slice(&sps);
        annexb.extend_from_slice(&[0, 0, 1]);
        annexb.extend_from_slice(&slice);
        annexb.extend_from_slice(&[0, 0]);
        let k = vcl_key(avcc_nals(&avcc));
        assert!(k.is_some());
        assert_eq!(k, vcl_key(annexb_nals(&annexb)));
        let mut tag = vec![0x17, 1, 0, 0, 0];
        tag.extend_from_slice(&avcc);
        assert_eq!(flv_video_key(&tag), k);
    }

    #[test]
    fn flv_in_pieces() {
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (ty, ts, body) in [
            (9u8, 40u32, vec![0x17, 0, 0, 0, 0]),
            (8, 50, vec![0xAF, 1]),
            (9, 80, vec![0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 5]),
        ] {
            s.push(ty);
            s.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            s.extend_from_slice(&ts.to_be_bytes()[1..]);
            s.push((ts >> 24) as u8);
            s.extend_from_slice(&[0, 0, 0]);
            s.extend_from_slice(&body);
            s.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        }
        for keep in [false, true] {
            let mut p = FlvParser::new(keep);
            let mut ev = Vec::new();
            for b in s.chunks(3) {
                p.feed(b, &mut |e| ev.push(e)).unwrap();
            }
            assert_eq!(p.tags, 3);
            // The sequence header is not a frame.
            assert_eq!(ev.len(), 1);
            let Event::Video { media_ms, keys } = &ev[0];
            assert_eq!(*media_ms, 80);
            assert_eq!(keys.len(), usize::from(keep));
        }
    }
}
