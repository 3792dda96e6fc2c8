//! Classification of arbitrary tag bodies: `video_info`, `audio_info`, `script_name`,
//! `is_metadata` and `strip_set_data_frame`.
//!
//! Each must only fail when the body is shorter than the header its first byte announces,
//! report a header length inside the body, and agree with the byte layout the FLV and
//! enhanced-RTMP specifications give (checked here independently of the parser).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use slotcast_media::flv::{
    AudioPacketType, FlvError, FrameType, VideoCodec, VideoPacketType, audio_info, is_metadata,
    script_name, strip_set_data_frame, video_info,
};

/// Sign-extended 24-bit big-endian value.
fn si24(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8
}

/// The AMF0 string at `at`, as the format defines it: marker 2, u16 length, bytes.
fn amf0_string(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = data.get(at..)?;
    if rest.len() < 3 || rest[0] != 2 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
    let s = rest.get(3..3 + len)?;
    Some((s, at + 3 + len))
}

fn check_video(data: &[u8]) {
    match video_info(data) {
        Err(e) => {
            assert!(matches!(e, FlvError::Truncated { .. }), "video_info: {e:?}");
            assert!(data.len() < 8, "video_info refused {} bytes", data.len());
        }
        Ok(info) => {
            assert!(
                matches!(info.header_len, 1 | 5 | 8),
                "header_len {}",
                info.header_len
            );
            assert!(info.header_len <= data.len(), "header_len past the body");
            assert_eq!(info.enhanced, data[0] & 0x80 != 0, "enhanced flag");
            if info.is_keyframe() {
                assert_eq!(info.packet, VideoPacketType::Frame);
                assert!(matches!(
                    info.frame_type,
                    FrameType::Key | FrameType::GeneratedKey
                ));
            }
            if info.frame_type == FrameType::Command {
                assert_eq!(info.packet, VideoPacketType::Command);
            }
            if !info.enhanced {
                let bits = data[0] >> 4;
                let codec_id = data[0] & 0x0f;
                if bits != 5 && (codec_id == 7 || codec_id == 12) {
                    assert_eq!(info.header_len, 5);
                    assert_eq!(info.composition_time_ms, si24(&data[2..5]), "legacy CTS");
                    assert_eq!(info.codec == VideoCodec::Avc, codec_id == 7);
                } else {
                    assert_eq!(info.header_len, 1);
                    assert_eq!(info.composition_time_ms, 0);
                }
            } else if info.header_len == 8 {
                assert!(matches!(info.codec, VideoCodec::Avc | VideoCodec::Hevc));
                assert_eq!(info.composition_time_ms, si24(&data[5..8]), "enhanced CTS");
            } else if info.header_len == 5 {
                let fourcc = &data[1..5];
                match info.codec {
                    VideoCodec::Avc => assert_eq!(fourcc, b"avc1"),
                    VideoCodec::Hevc => assert_eq!(fourcc, b"hvc1"),
                    VideoCodec::Av1 => assert_eq!(fourcc, b"av01"),
                    VideoCodec::Vp9 => assert_eq!(fourcc, b"vp09"),
                    VideoCodec::FourCc(f) => assert_eq!(&f, fourcc),
                    other => panic!("codec {other:?} with a FourCC header"),
                }
            }
        }
    }
}

fn check_audio(data: &[u8]) {
    match audio_info(data) {
        Err(e) => {
            assert!(matches!(e, FlvError::Truncated { .. }), "audio_info: {e:?}");
            assert!(data.len() < 5, "audio_info refused {} bytes", data.len());
        }
        Ok(info) => {
            assert!(matches!(info.header_len, 1 | 2 | 5));
            assert!(info.header_len <= data.len(), "header_len past the body");
            assert_eq!(info.enhanced, data[0] >> 4 == 9, "enhanced flag");
            if !info.enhanced && data[0] >> 4 == 10 {
                assert_eq!(info.header_len, 2);
                assert_eq!(info.is_sequence_header(), data[1] == 0);
            }
            if info.enhanced && info.header_len == 5 {
                assert_eq!(
                    info.packet == AudioPacketType::SequenceHeader,
                    data[0] & 0x0f == 0
                );
            }
        }
    }
}

fn check_script(data: &[u8]) {
    let first = amf0_string(data, 0);
    let name = script_name(data);
    match (name, first) {
        (Some(name), Some((raw, _))) => assert_eq!(name.as_bytes(), raw, "script_name"),
        (None, Some((raw, _))) => assert!(std::str::from_utf8(raw).is_err(), "name missed"),
        (Some(name), None) => panic!("script_name {name:?} where there is no AMF0 string"),
        (None, None) => {}
    }
    let second = first.and_then(|(_, next)| amf0_string(data, next));
    let expect_metadata = match first {
        Some((b"onMetaData", _)) => true,
        Some((b"@setDataFrame", _)) => matches!(second, Some((b"onMetaData", _))),
        _ => false,
    };
    assert_eq!(is_metadata(data), expect_metadata, "is_metadata");

    let body = Bytes::copy_from_slice(data);
    let stripped = strip_set_data_frame(&body);
    match first {
        Some((b"@setDataFrame", next)) => {
            assert_eq!(&stripped[..], &data[next..], "strip_set_data_frame");
            if expect_metadata {
                assert_eq!(script_name(&stripped), Some("onMetaData"));
            }
        }
        _ => assert_eq!(stripped, body, "strip_set_data_frame changed another payload"),
    }
    // No copy: the result is a view of the same buffer.
    let range = body.as_ptr() as usize..=body.as_ptr() as usize + body.len();
    assert!(stripped.is_empty() || range.contains(&(stripped.as_ptr() as usize)));
}

fuzz_target!(|data: &[u8]| {
    check_video(data);
    check_audio(data);
    check_script(data);
});
