//! Decoder configurations as the init segment needs them: the AVC and HEVC configuration
//! records (carried verbatim into `avcC`/`hvcC`, read for the picture size and the RFC 6381
//! codec string) and the AAC AudioSpecificConfig (read for sample rate and channels).

use bytes::Bytes;

use crate::flv::{avc_dimensions, parse_avc_config, unescape};

/// The video coding format of a [`VideoConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoFormat {
    /// H.264, sample entry `avc1` with an `avcC` box.
    Avc,
    /// H.265, sample entry `hvc1` with an `hvcC` box.
    Hevc,
}

/// A video decoder configuration: what goes into the `stsd` of the video track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    /// The coding format.
    pub format: VideoFormat,
    /// The `AVCDecoderConfigurationRecord` or `HEVCDecoderConfigurationRecord`.
    pub record: Bytes,
    /// Picture width in pixels (0 if the SPS could not be read).
    pub width: u32,
    /// Picture height in pixels (0 if the SPS could not be read).
    pub height: u32,
}

impl VideoConfig {
    /// Reads an `AVCDecoderConfigurationRecord`; `None` if it is malformed.
    pub fn avc(record: Bytes) -> Option<VideoConfig> {
        parse_avc_config(&record).ok()?;
        let (width, height) = avc_dimensions(&record).unwrap_or((0, 0));
        Some(VideoConfig {
            format: VideoFormat::Avc,
            record,
            width,
            height,
        })
    }

    /// Reads an `HEVCDecoderConfigurationRecord`; `None` if it is malformed.
    pub fn hevc(record: Bytes) -> Option<VideoConfig> {
        let sps = hevc_record_sps(&record)?;
        let (width, height) = sps.and_then(hevc_sps_dimensions).unwrap_or((0, 0));
        Some(VideoConfig {
            format: VideoFormat::Hevc,
            record,
            width,
            height,
        })
    }

    /// The RFC 6381 codec string, e.g. `avc1.64001f` or `hvc1.1.6.L93.B0`.
    pub fn codec_string(&self) -> String {
        let r = &self.record;
        match self.format {
            VideoFormat::Avc => match r.get(1..4) {
                Some(p) => format!("avc1.{:02x}{:02x}{:02x}", p[0], p[1], p[2]),
                None => "avc1".to_owned(),
            },
            VideoFormat::Hevc => {
                let Some(p) = r.get(1..13) else {
                    return "hvc1".to_owned();
                };
                let space = ["", "A", "B", "C"][usize::from(p[0] >> 6)];
                let tier = if p[0] & 0x20 != 0 { 'H' } else { 'L' };
                let profile = p[0] & 0x1f;
                let compat = u32::from_be_bytes([p[1], p[2], p[3], p[4]]).reverse_bits();
                let mut s = format!("hvc1.{space}{profile}.{compat:x}.{tier}{}", p[11]);
                let constraints = &p[5..11];
                let used = constraints
                    .iter()
                    .rposition(|&c| c != 0)
                    .map_or(0, |i| i + 1);
                for c in &constraints[..used] {
                    s.push_str(&format!(".{c:X}"));
                }
                s
            }
        }
    }
}

/// An AAC decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig, carried into the `esds` box.
    pub asc: Bytes,
    /// The audio object type (2 = AAC LC, 5 = SBR, 29 = PS, …).
    pub object_type: u8,
    /// The sample rate in Hz (of the core coder for SBR), also the track's timescale.
    pub sample_rate: u32,
    /// Channel count for the sample entry (2 when the configuration leaves it open).
    pub channels: u16,
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AudioConfig {
    /// Reads an AAC AudioSpecificConfig; `None` if it is malformed.
    pub fn aac(asc: Bytes) -> Option<AudioConfig> {
        let mut r = BitReader::new(&asc);
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        let index = r.bits(4)?;
        let sample_rate = if index == 15 {
            r.bits(24)?
        } else {
            *AAC_RATES.get(index as usize)?
        };
        let channel_config = r.bits(4)?;
        if object_type == 0 || sample_rate == 0 {
            return None;
        }
        let channels = match channel_config {
            1..=6 => channel_config as u16,
            7 => 8,
            _ => 2,
        };
        Some(AudioConfig {
            asc,
            object_type: u8::try_from(object_type).ok()?,
            sample_rate,
            channels,
        })
    }

    /// The RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// MSB-first bit reader over a byte slice.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, pos: 0 }
    }

    /// Up to 32 bits.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v: u32 = 0;
        for _ in 0..n.min(32) {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Exp-Golomb unsigned, up to 31 leading zeros.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

/// Checks the structure of an `HEVCDecoderConfigurationRecord` and returns its first SPS
/// NAL unit (if any). `None` if the record is malformed.
fn hevc_record_sps(record: &[u8]) -> Option<Option<&[u8]>> {
    if record.len() < 23 || record[0] != 1 {
        return None;
    }
    let arrays = usize::from(record[22]);
    let mut pos = 23;
    let mut sps = None;
    for _ in 0..arrays {
        let nal_type = record.get(pos)? & 0x3f;
        let count = u16::from_be_bytes([*record.get(pos + 1)?, *record.get(pos + 2)?]);
        pos += 3;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([
                *record.get(pos)?,
                *record.get(pos + 1)?,
            ]));
            let unit = record.get(pos + 2..pos + 2 + len)?;
            if nal_type == 33 && sps.is_none() {
                sps = Some(unit);
            }
            pos += 2 + len;
        }
    }
    Some(sps)
}

/// Picture size from an H.265 SPS NAL unit (ITU-T H.265 §7.3.2.2), after the conformance
/// window.
fn hevc_sps_dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.bits(1)?; // temporal_id_nesting
    // profile_tier_level: general profile (88 bits) and level (8 bits).
    r.skip(96)?;
    let mut sub_profile = [false; 8];
    let mut sub_level = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        sub_profile[i] = r.bits(1)? == 1;
        sub_level[i] = r.bits(1)? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for i in 0..max_sub_layers_minus1 {
        if sub_profile[i] {
            r.skip(88)?;
        }
        if sub_level[i] {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bits(1)?; // separate_colour_plane_flag
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if r.bits(1)? == 1 {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        crop_w = sub_w * (left + right);
        crop_h = sub_h * (top + bottom);
    }
    let w = u64::from(width).checked_sub(crop_w)?;
    let h = u64::from(height).checked_sub(crop_h)?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_configs() {
        // AAC LC, 44.1 kHz (index 4), stereo.
        let a = AudioConfig::aac(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((a.object_type, a.sample_rate, a.channels), (2, 44100, 2));
        assert_eq!(a.codec_string(), "mp4a.40.2");
        // HE-AAC (5), 24 kHz core (index 6), mono.
        let he = AudioConfig::aac(Bytes::from_static(&[0x2b, 0x08])).unwrap();
        assert_eq!((he.object_type, he.sample_rate, he.channels), (5, 24000, 1));
        // Explicit rate (index 15) of 12345 Hz.
        let rate = 12345u32;
        let bits: u64 = (2u64 << 35) | (15u64 << 31) | (u64::from(rate) << 7) | (2 << 3);
        let explicit = bits.to_be_bytes();
        let e = AudioConfig::aac(Bytes::copy_from_slice(&explicit[3..])).unwrap();
        assert_eq!(e.sample_rate, 12345);
        // Reserved rate index 13, object type 0, too short.
        assert!(AudioConfig::aac(Bytes::from_static(&[0x16, 0x90])).is_none());
        assert!(AudioConfig::aac(Bytes::from_static(&[0x02, 0x10])).is_none());
        assert!(AudioConfig::aac(Bytes::from_static(&[0x12])).is_none());
    }

    /// A Main-profile `HEVCDecoderConfigurationRecord` holding one SPS.
    fn hvcc_with_sps(sps: &[u8]) -> Vec<u8> {
        let mut r = vec![
            1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc,
        ];
        r.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 1]);
        r.push(0x80 | 33);
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(sps);
        r
    }

    #[test]
    fn hevc_record_and_codec_string() {
        // A hand-assembled SPS: vps 0, max_sub_layers_minus1 0, nesting 1, 96 bits of
        // profile_tier_level (zeros except level), sps id 0, chroma 1, 1920x1088, conformance
        // window bottom 4 (→ 1080 lines).
        let mut bits = String::new();
        bits.push_str("0000"); // vps id
        bits.push_str("000"); // max_sub_layers_minus1
        bits.push('1');
        bits.push_str(&"0".repeat(88));
        bits.push_str("01011101"); // level 93
        bits.push('1'); // sps id ue(0)
        bits.push_str("010"); // chroma_format_idc ue(1)
        let ue = |v: u32| {
            let x = v + 1;
            let n = 32 - x.leading_zeros();
            format!("{}{:b}", "0".repeat(n as usize - 1), x)
        };
        bits.push_str(&ue(1920));
        bits.push_str(&ue(1088));
        bits.push('1'); // conformance window
        bits.push_str(&ue(0));
        bits.push_str(&ue(0));
        bits.push_str(&ue(0));
        bits.push_str(&ue(4));
        while !bits.len().is_multiple_of(8) {
            bits.push('0');
        }
        let mut sps = vec![0x42, 0x01];
        for chunk in bits.as_bytes().chunks(8) {
            sps.push(u8::from_str_radix(std::str::from_utf8(chunk).unwrap(), 2).unwrap());
        }
        let record = hvcc_with_sps(&sps);
        let v = VideoConfig::hevc(Bytes::from(record.clone())).unwrap();
        assert_eq!((v.width, v.height), (1920, 1080));
        assert_eq!(v.codec_string(), "hvc1.1.6.L93.90");
        // Truncated records are refused; a record without SPS is accepted without size.
        assert!(VideoConfig::hevc(Bytes::from(record[..record.len() - 1].to_vec())).is_none());
        let mut no_sps = record[..23].to_vec();
        no_sps[22] = 0;
        let v = VideoConfig::hevc(Bytes::from(no_sps)).unwrap();
        assert_eq!((v.width, v.height), (0, 0));
    }

    #[test]
    fn unescape_removes_emulation_prevention() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
