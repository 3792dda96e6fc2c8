//! The H.264 decoder configuration: the `AVCDecoderConfigurationRecord` an AVC sequence
//! header carries (ISO/IEC 14496-15 §5.3.3.1) and the sequence parameter set inside it
//! (ITU-T H.264 §7.3.2.1.1), read far enough to know the picture size.

use super::FlvError;

/// What [`parse_avc_config`] reads from an `AVCDecoderConfigurationRecord`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig<'a> {
    /// `AVCProfileIndication` (66 = Baseline, 77 = Main, 100 = High, …).
    pub profile: u8,
    /// `profile_compatibility` (the constraint flags).
    pub compatibility: u8,
    /// `AVCLevelIndication` (31 = level 3.1, …).
    pub level: u8,
    /// Length in bytes of the NAL unit length prefix in coded frames (1, 2 or 4).
    pub nal_length_size: u8,
    /// The sequence parameter set NAL units, header byte included.
    pub sps: Vec<&'a [u8]>,
    /// The picture parameter set NAL units, header byte included.
    pub pps: Vec<&'a [u8]>,
}

impl<'a> AvcConfig<'a> {
    /// The first SPS, which decides the stream's picture size.
    pub fn first_sps(&self) -> Option<&'a [u8]> {
        self.sps.first().copied()
    }
}

/// Reads an `AVCDecoderConfigurationRecord` (the payload of an AVC sequence header, i.e.
/// the tag body after [`super::VideoInfo::header_len`]).
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig<'_>, FlvError> {
    let invalid = |offset: usize, reason| FlvError::InvalidAvcConfig {
        offset: offset as u64,
        reason,
    };
    if record.len() < 6 {
        return Err(FlvError::truncated(
            "AVC configuration record",
            0,
            6,
            record.len(),
        ));
    }
    if record[0] != 1 {
        return Err(invalid(0, "configurationVersion is not 1"));
    }
    let mut config = AvcConfig {
        profile: record[1],
        compatibility: record[2],
        level: record[3],
        nal_length_size: (record[4] & 0x03) + 1,
        sps: Vec::new(),
        pps: Vec::new(),
    };
    let mut pos = 6;
    let sps_count = usize::from(record[5] & 0x1f);
    let mut sps = Vec::with_capacity(sps_count);
    read_units(
        record,
        &mut pos,
        sps_count,
        "SPS in AVC configuration record",
        &mut sps,
    )?;
    config.sps = sps;
    let Some(&pps_count) = record.get(pos) else {
        return Err(FlvError::truncated(
            "AVC configuration record",
            pos as u64,
            1,
            0,
        ));
    };
    pos += 1;
    let mut pps = Vec::with_capacity(usize::from(pps_count));
    read_units(
        record,
        &mut pos,
        usize::from(pps_count),
        "PPS in AVC configuration record",
        &mut pps,
    )?;
    config.pps = pps;
    // High-profile records may continue with chroma format and bit depth fields; the SPS
    // carries the same information, so we stop here.
    Ok(config)
}

/// Reads `count` length-prefixed NAL units starting at `*pos`.
fn read_units<'a>(
    record: &'a [u8],
    pos: &mut usize,
    count: usize,
    what: &'static str,
    out: &mut Vec<&'a [u8]>,
) -> Result<(), FlvError> {
    for _ in 0..count {
        let Some(len) = record.get(*pos..*pos + 2) else {
            return Err(FlvError::truncated(
                what,
                *pos as u64,
                2,
                record.len() - *pos,
            ));
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let start = *pos + 2;
        let Some(unit) = record.get(start..start + len) else {
            return Err(FlvError::truncated(
                what,
                start as u64,
                len,
                record.len() - start,
            ));
        };
        out.push(unit);
        *pos = start + len;
    }
    Ok(())
}

/// What [`parse_sps`] reads from an H.264 sequence parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The constraint flags byte.
    pub constraint_flags: u8,
    /// `level_idc` (31 = level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc` (0 = monochrome, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4).
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 for most streams).
    pub bit_depth_luma: u8,
    /// Whether every picture is a frame (no field coding).
    pub frame_mbs_only: bool,
    /// Displayed width in pixels, after cropping.
    pub width: u32,
    /// Displayed height in pixels, after cropping.
    pub height: u32,
}

/// Largest picture dimension we accept, in macroblocks (65 536 pixels): far beyond any
/// level, small enough that the arithmetic cannot overflow.
const MAX_MBS: u64 = 4096;

/// Reads an H.264 SPS NAL unit (header byte included, emulation prevention bytes as on
/// the wire).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, FlvError> {
    let Some(&header) = nal.first() else {
        return Err(FlvError::truncated("SPS NAL unit", 0, 1, 0));
    };
    if header & 0x1f != 7 {
        return Err(FlvError::InvalidSps {
            bit_offset: 0,
            reason: "NAL unit type is not 7 (SPS)",
        });
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue_max(31, "seq_parameter_set_id above 31")?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc above 3")? as u8;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8 above 6")? as u8;
        r.ue_max(6, "bit_depth_chroma_minus8 above 6")?;
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag: skip the lists, they do not affect size.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue_max(12, "log2_max_frame_num_minus4 above 12")?;
    match r.ue_max(2, "pic_order_cnt_type above 2")? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 above 12")?;
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle above 255")?;
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame[i]
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let height_mbs = height_map_units * field_factor;
    if width_mbs > MAX_MBS || height_mbs > MAX_MBS {
        return Err(r.invalid("picture size out of range"));
    }
    let mut width = width_mbs * 16;
    let mut height = height_mbs * 16;
    if r.flag()? {
        // frame_cropping_flag: offsets count in crop units that depend on chroma sampling.
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (unit_x, unit_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let crop_x = (left + right) * unit_x;
        let crop_y = (top + bottom) * unit_y;
        if crop_x >= width || crop_y >= height {
            return Err(r.invalid("cropping removes the whole picture"));
        }
        width -= crop_x;
        height -= crop_y;
    }
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        frame_mbs_only,
        // Both are at most MAX_MBS * 16, well inside u32.
        width: width as u32,
        height: height as u32,
    })
}

/// The displayed picture size of an AVC stream, from its `AVCDecoderConfigurationRecord`.
pub fn avc_dimensions(avc_config: &[u8]) -> Result<(u32, u32), FlvError> {
    let config = parse_avc_config(avc_config)?;
    let sps = config.first_sps().ok_or(FlvError::InvalidAvcConfig {
        offset: 5,
        reason: "no SPS",
    })?;
    let sps = parse_sps(sps)?;
    Ok((sps.width, sps.height))
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`), giving the RBSP (H.264 and
/// H.265 alike).
pub(crate) fn unescape(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), FlvError> {
    let mut last: i64 = 8;
    let mut next: i64 = 8;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(r.invalid("delta_scale out of range"));
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Reads bits most-significant first, with H.264's exp-Golomb codes.
struct BitReader<'a> {
    data: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn invalid(&self, reason: &'static str) -> FlvError {
        FlvError::InvalidSps {
            bit_offset: self.pos,
            reason,
        }
    }

    fn flag(&mut self) -> Result<bool, FlvError> {
        let byte = usize::try_from(self.pos / 8).unwrap_or(usize::MAX);
        let Some(&b) = self.data.get(byte) else {
            return Err(self.invalid("SPS ends early"));
        };
        let bit = (b >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, FlvError> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.flag()?);
        }
        Ok(v as u32)
    }

    /// Unsigned exp-Golomb code.
    fn ue(&mut self) -> Result<u32, FlvError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(self.invalid("exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        let value = (1u64 << zeros) - 1 + rest;
        u32::try_from(value).map_err(|_| self.invalid("exp-Golomb value above u32"))
    }

    fn ue_max(&mut self, max: u32, reason: &'static str) -> Result<u32, FlvError> {
        let v = self.ue()?;
        if v > max {
            return Err(self.invalid(reason));
        }
        Ok(v)
    }

    /// Signed exp-Golomb code.
    fn se(&mut self) -> Result<i64, FlvError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes bits most-significant first, with exp-Golomb codes, then escapes the result
    /// as an SPS NAL unit: the inverse of what the parser does, written independently.
    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
            self
        }
        fn flag(&mut self, b: bool) -> &mut Self {
            self.bits.push(b);
            self
        }
        fn ue(&mut self, v: u64) -> &mut Self {
            // v + 1 written in binary, preceded by (its bit length - 1) zeros.
            let x = v + 1;
            let len = 64 - x.leading_zeros();
            self.u(len - 1, 0);
            self.u(len, x)
        }
        fn se(&mut self, v: i64) -> &mut Self {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u64)
        }
        /// rbsp_trailing_bits, then bytes, then emulation prevention, after a NAL header.
        fn sps_nal(&mut self) -> Vec<u8> {
            self.flag(true);
            while !self.bits.len().is_multiple_of(8) {
                self.flag(false);
            }
            let rbsp: Vec<u8> = self
                .bits
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |acc, &b| (acc << 1) | u8::from(b)))
                .collect();
            let mut nal = vec![0x67];
            let mut zeros = 0;
            for b in rbsp {
                if zeros == 2 && b <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                nal.push(b);
            }
            nal
        }
    }

    fn record(sps: &[u8]) -> Vec<u8> {
        let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let mut r = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(sps);
        r.push(1);
        r.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        r.extend_from_slice(&pps);
        r
    }

    /// Baseline 1280x720: 80x45 macroblocks, no cropping, POC type 2.
    fn baseline_720p() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, 66).u(8, 0xc0).u(8, 31); // profile, constraints, level 3.1
        w.ue(0); // sps id
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(2); // pic_order_cnt_type
        w.ue(1); // max_num_ref_frames
        w.flag(false); // gaps
        w.ue(79).ue(44); // 80 x 45 macroblocks
        w.flag(true); // frame_mbs_only
        w.flag(true); // direct_8x8_inference
        w.flag(false); // no cropping
        w.flag(false); // no VUI
        w.sps_nal()
    }

    /// High 1920x1080: 120x68 macroblocks (1088 lines), cropped by 8 lines at the bottom
    /// (4 crop units of 2 lines for 4:2:0), with scaling lists and POC type 1.
    fn high_1080p() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.u(8, 100).u(8, 0).u(8, 40);
        w.ue(0); // sps id
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(0).ue(0); // bit depths 8
        w.flag(false); // transform bypass
        w.flag(true); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i == 0 || i == 6;
            w.flag(present);
            if present {
                // nextScale: 8+5=13, 13-3=10, 10+127=137, 137-128=9, then 9-9=0 ends
                // the list early (the rest of its 16 or 64 entries repeat the last).
                w.se(5).se(-3).se(127).se(-128).se(-9);
            }
        }
        w.ue(2); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type 1
        w.flag(false);
        w.se(-2).se(1);
        w.ue(2).se(3).se(-4); // two offset_for_ref_frame
        w.ue(4); // max_num_ref_frames
        w.flag(false);
        w.ue(119).ue(67);
        w.flag(true); // frame_mbs_only
        w.flag(true);
        w.flag(true); // cropping
        w.ue(0).ue(0).ue(0).ue(4);
        w.flag(false);
        w.sps_nal()
    }

    #[test]
    fn baseline_720p_dimensions() {
        let sps = baseline_720p();
        let parsed = parse_sps(&sps).unwrap();
        assert_eq!((parsed.width, parsed.height), (1280, 720));
        assert_eq!(parsed.profile_idc, 66);
        assert_eq!(parsed.level_idc, 31);
        assert_eq!(avc_dimensions(&record(&sps)).unwrap(), (1280, 720));
    }

    #[test]
    fn high_1080p_with_scaling_lists_and_cropping() {
        let sps = high_1080p();
        let parsed = parse_sps(&sps).unwrap();
        assert_eq!((parsed.width, parsed.height), (1920, 1080));
        assert_eq!(parsed.chroma_format_idc, 1);
        let rec = record(&sps);
        let config = parse_avc_config(&rec).unwrap();
        assert_eq!(config.profile, 100);
        assert_eq!(config.level, 40);
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(config.pps.len(), 1);
        assert_eq!(avc_dimensions(&rec).unwrap(), (1920, 1080));
    }

    #[test]
    fn interlaced_and_444_cropping_units() {
        // Main, interlaced 720x576: 45 x 18 map units of two fields, left/right crop 2 px
        // each (crop unit 2 for 4:2:0), top crop 1 unit = 4 lines when field coded.
        let mut w = BitWriter::default();
        w.u(8, 77)
            .u(8, 0)
            .u(8, 30)
            .ue(0)
            .ue(0)
            .ue(0)
            .ue(4)
            .ue(2)
            .flag(false);
        w.ue(44).ue(17).flag(false).flag(true).flag(true);
        w.flag(true).ue(1).ue(1).ue(1).ue(0).flag(false);
        let sps = parse_sps(&w.sps_nal()).unwrap();
        assert!(!sps.frame_mbs_only);
        assert_eq!((sps.width, sps.height), (716, 572));

        // High 4:4:4 (244), chroma_format_idc 3: crop unit 1 in both directions.
        let mut w = BitWriter::default();
        w.u(8, 244).u(8, 0).u(8, 40).ue(0);
        w.ue(3).flag(false).ue(2).ue(2).flag(false).flag(false);
        w.ue(0).ue(0).ue(0).ue(1).flag(false);
        w.ue(119).ue(67).flag(true).flag(true);
        w.flag(true).ue(1).ue(1).ue(0).ue(8).flag(false);
        let sps = parse_sps(&w.sps_nal()).unwrap();
        assert_eq!(sps.bit_depth_luma, 10);
        assert_eq!((sps.width, sps.height), (1918, 1080));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        // A huge max_num_ref_frames code is a run of zero bits, which the escaper must
        // break up with 0x03 bytes.
        let mut w = BitWriter::default();
        w.u(8, 66)
            .u(8, 0)
            .u(8, 0)
            .ue(0)
            .ue(0)
            .ue(2)
            .ue((1 << 24) - 1)
            .flag(false);
        w.ue(0).ue(0).flag(true).flag(true).flag(false).flag(false);
        let nal = w.sps_nal();
        assert!(nal.windows(3).any(|win| win == [0, 0, 3]), "{nal:02x?}");
        assert_eq!(parse_sps(&nal).unwrap().width, 16);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(parse_sps(&[]).is_err());
        assert!(matches!(
            parse_sps(&[0x68, 1, 2]),
            Err(FlvError::InvalidSps { .. })
        ));
        let mut sps = baseline_720p();
        sps.truncate(6);
        assert!(parse_sps(&sps).is_err());
        assert!(parse_avc_config(&[1, 66, 0, 31, 0xff]).is_err());
        assert!(matches!(
            parse_avc_config(&[0, 66, 0, 31, 0xff, 0xe1, 0, 1, 0x67, 0]),
            Err(FlvError::InvalidAvcConfig { .. })
        ));
        // SPS length runs past the end.
        assert!(matches!(
            parse_avc_config(&[1, 66, 0, 31, 0xff, 0xe1, 0, 9, 0x67]),
            Err(FlvError::Truncated { .. })
        ));
        // Record without SPS.
        assert!(avc_dimensions(&[1, 66, 0, 31, 0xff, 0xe0, 0]).is_err());
        // Cropping larger than the picture.
        let mut w = BitWriter::default();
        w.u(8, 66)
            .u(8, 0)
            .u(8, 0)
            .ue(0)
            .ue(0)
            .ue(2)
            .ue(0)
            .flag(false);
        w.ue(0)
            .ue(0)
            .flag(true)
            .flag(true)
            .flag(true)
            .ue(4)
            .ue(4)
            .ue(0)
            .ue(0);
        assert!(parse_sps(&w.sps_nal()).is_err());
    }

    proptest! {
        #[test]
        fn sps_and_config_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_sps(&data);
            let _ = parse_avc_config(&data);
            let _ = avc_dimensions(&data);
            let mut nal = vec![0x67];
            nal.extend_from_slice(&data);
            let _ = parse_sps(&nal);
        }

        #[test]
        fn any_frame_size_round_trips(w_mbs in 1u64..=256, h_mbs in 1u64..=256, crop_r in 0u64..8, crop_b in 0u64..8) {
            let mut w = BitWriter::default();
            w.u(8, 100).u(8, 0).u(8, 51).ue(0).ue(1).ue(0).ue(0).flag(false).flag(false);
            w.ue(0).ue(0).ue(0).ue(1).flag(false);
            w.ue(w_mbs - 1).ue(h_mbs - 1).flag(true).flag(true);
            let crop = crop_r * 2 < w_mbs * 16 && crop_b * 2 < h_mbs * 16 && (crop_r + crop_b) > 0;
            w.flag(crop);
            if crop {
                w.ue(0).ue(crop_r).ue(0).ue(crop_b);
            }
            w.flag(false);
            let sps = parse_sps(&w.sps_nal()).unwrap();
            let (cr, cb) = if crop { (crop_r, crop_b) } else { (0, 0) };
            prop_assert_eq!(u64::from(sps.width), w_mbs * 16 - 2 * cr);
            prop_assert_eq!(u64::from(sps.height), h_mbs * 16 - 2 * cb);
        }
    }
}
