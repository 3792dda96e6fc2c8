//! The H.264 configuration readers on arbitrary bytes: `parse_avc_config`, `parse_sps` and
//! `avc_dimensions`.
//!
//! - An accepted configuration record, written back in the ISO/IEC 14496-15 layout, must
//!   equal the bytes that were read (reserved bits aside) and parse to the same record.
//! - An accepted SPS has a sane picture size and the header bytes it was given.
//! - `avc_dimensions` must be exactly "first SPS of the record, parsed", both on the input
//!   as a record and on the input as an SPS wrapped in a record built here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotcast_media::flv::{AvcConfig, avc_dimensions, parse_avc_config, parse_sps};

/// Serialises a record the way the specification lays it out.
fn write_record(c: &AvcConfig<'_>) -> Vec<u8> {
    let mut out = vec![
        1,
        c.profile,
        c.compatibility,
        c.level,
        0xfc | (c.nal_length_size - 1),
        0xe0 | c.sps.len() as u8,
    ];
    for unit in &c.sps {
        out.extend_from_slice(&(unit.len() as u16).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out.push(c.pps.len() as u8);
    for unit in &c.pps {
        out.extend_from_slice(&(unit.len() as u16).to_be_bytes());
        out.extend_from_slice(unit);
    }
    out
}

fn check_record(data: &[u8]) {
    let Ok(config) = parse_avc_config(data) else {
        return;
    };
    assert!((1..=4).contains(&config.nal_length_size));
    assert_eq!(config.sps.len(), usize::from(data[5] & 0x1f), "SPS count");
    assert!(config.pps.len() <= 255);
    assert_eq!(config.first_sps(), config.sps.first().copied());
    let written = write_record(&config);
    assert!(written.len() <= data.len(), "record longer than its input");
    let mut expected = data[..written.len()].to_vec();
    expected[4] |= 0xfc; // reserved bits
    expected[5] |= 0xe0;
    assert_eq!(written, expected, "record does not round-trip");
    let again = parse_avc_config(&written).expect("a written record parses");
    assert_eq!(again, config);

    // avc_dimensions is "first SPS, parsed".
    let dims = avc_dimensions(data);
    match config.first_sps().map(parse_sps) {
        Some(Ok(sps)) => assert_eq!(dims, Ok((sps.width, sps.height))),
        _ => assert!(dims.is_err(), "dimensions without a readable SPS"),
    }
}

fn check_sps(nal: &[u8]) {
    let sps = parse_sps(nal);
    if let Ok(sps) = sps {
        assert_eq!(nal[0] & 0x1f, 7, "accepted a NAL unit that is not an SPS");
        // The first two payload bytes can never be emulation prevention bytes.
        assert_eq!(sps.profile_idc, nal[1]);
        assert_eq!(sps.constraint_flags, nal[2]);
        assert!((1..=65_536).contains(&sps.width), "width {}", sps.width);
        assert!((1..=65_536).contains(&sps.height), "height {}", sps.height);
        assert!(sps.chroma_format_idc <= 3);
        assert!((8..=14).contains(&sps.bit_depth_luma));
    }
    // The same SPS inside a record built here.
    if nal.len() <= usize::from(u16::MAX) {
        let mut record = vec![
            1,
            nal.get(1).copied().unwrap_or(0),
            nal.get(2).copied().unwrap_or(0),
            nal.get(3).copied().unwrap_or(0),
            0xff,
            0xe1,
        ];
        record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        record.extend_from_slice(nal);
        record.push(0);
        assert_eq!(
            avc_dimensions(&record),
            sps.map(|s| (s.width, s.height)),
            "avc_dimensions disagrees with parse_sps"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check_record(data);
    check_sps(data);
    // A record usually sits behind a 5-byte AVC video header in a tag body.
    if data.len() > 5 {
        check_record(&data[5..]);
    }
});
