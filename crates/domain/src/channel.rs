//! A channel's settings as an operator sets them: a name, how many viewers it seats, the
//! bitrate it carries, the price of a slot and the stream node that serves it. The bounds
//! keep a typing slip (a bitrate in bit/s, a price in major units) from becoming a channel
//! nobody can watch or afford.

use crate::money::{Currency, Money};
use crate::request::{FieldErrors, text};
use std::ops::RangeInclusive;

/// Longest channel name, in characters.
pub const NAME_MAX: usize = 40;
/// Longest stream node name, in characters.
pub const STREAM_NODE_MAX: usize = 40;
/// Concurrent viewers a channel may seat.
pub const CAPACITY: RangeInclusive<u32> = 1..=1_000_000;
/// Bitrates a channel may carry, in kbit/s.
pub const BITRATE_KBPS: RangeInclusive<u32> = 100..=100_000;
/// Prices of one slot, in the currency's minor unit.
pub const TARIFF_MINOR: RangeInclusive<i64> = 0..=1_000_000_000;
/// The stream node of a channel that names none: the one in this process.
pub const DEFAULT_STREAM_NODE: &str = "local";

/// Channel settings as the client sent them (decoded, not yet trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDraft {
    /// Unique name, e.g. `small`.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Price per slot in minor units of `currency`.
    pub tariff_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The stream node serving it; `None` is [`DEFAULT_STREAM_NODE`].
    pub stream_node: Option<String>,
}

/// Settings that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// Name, trimmed.
    pub name: String,
    /// Most concurrent viewers.
    pub capacity: u32,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Price per slot.
    pub tariff: Money,
    /// The stream node that serves it, trimmed.
    pub stream_node: String,
}

impl ChannelDraft {
    /// Checks every field, reporting every problem at once under the API's field names
    /// (`name`, `capacity`, `bitrate_kbps`, `tariff_minor`, `currency`, `stream_node`).
    pub fn validate(&self) -> Result<ChannelSettings, FieldErrors> {
        let mut errs = FieldErrors::default();
        let name = text(&mut errs, "name", Some(&self.name), NAME_MAX, false, true);
        let bounds = |r: &RangeInclusive<_>| format!("must be {} to {}", r.start(), r.end());
        if !CAPACITY.contains(&self.capacity) {
            errs.add("capacity", bounds(&CAPACITY));
        }
        if !BITRATE_KBPS.contains(&self.bitrate_kbps) {
            errs.add("bitrate_kbps", bounds(&BITRATE_KBPS));
        }
        if !TARIFF_MINOR.contains(&self.tariff_minor) {
            errs.add(
                "tariff_minor",
                format!("must be {} to {}", TARIFF_MINOR.start(), TARIFF_MINOR.end()),
            );
        }
        let currency = Currency::parse(&self.currency)
            .map_err(|e| errs.add("currency", e.to_string()))
            .ok();
        // Only an absent node takes the default; a blank one is a mistake to report.
        let stream_node = text(
            &mut errs,
            "stream_node",
            Some(self.stream_node.as_deref().unwrap_or(DEFAULT_STREAM_NODE)),
            STREAM_NODE_MAX,
            false,
            true,
        );
        errs.into_result(|| ChannelSettings {
            name: name.expect("checked"),
            capacity: self.capacity,
            bitrate_kbps: self.bitrate_kbps,
            tariff: Money::new(self.tariff_minor, currency.expect("checked")),
            stream_node: stream_node.expect("checked"),
        })
    }
}

/// The picture size a channel's own video (filler, slate) is made at for its bitrate:
/// 640×360 up to 1.2 Mbit/s, 1280×720 up to 3 Mbit/s, else 1920×1080.
pub fn picture_size(bitrate_kbps: u32) -> (u32, u32) {
    match bitrate_kbps {
        0..=1200 => (640, 360),
        1201..=3000 => (1280, 720),
        _ => (1920, 1080),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ChannelDraft {
        ChannelDraft {
            name: " small ".into(),
            capacity: 100,
            bitrate_kbps: 2_500,
            tariff_minor: 500,
            currency: "eur".into(),
            stream_node: None,
        }
    }

    fn error(d: ChannelDraft, field: &str) -> Option<String> {
        d.validate().err().and_then(|e| e.0.get(field).cloned())
    }

    #[test]
    fn good_settings_are_normalised() {
        let s = draft().validate().unwrap();
        assert_eq!(
            s,
            ChannelSettings {
                name: "small".into(),
                capacity: 100,
                bitrate_kbps: 2_500,
                tariff: Money::new(500, Currency::parse("EUR").unwrap()),
                stream_node: "local".into(),
            }
        );
        let s = ChannelDraft {
            stream_node: Some(" node-2 ".into()),
            ..draft()
        }
        .validate()
        .unwrap();
        assert_eq!(s.stream_node, "node-2");
    }

    #[test]
    fn capacity_bounds() {
        let at = |capacity| {
            error(
                ChannelDraft {
                    capacity,
                    ..draft()
                },
                "capacity",
            )
        };
        assert_eq!(at(0).as_deref(), Some("must be 1 to 1000000"));
        assert_eq!(at(1), None);
        assert_eq!(at(1_000_000), None);
        assert_eq!(at(1_000_001).as_deref(), Some("must be 1 to 1000000"));
    }

    #[test]
    fn bitrate_bounds() {
        let at = |bitrate_kbps| {
            error(
                ChannelDraft {
                    bitrate_kbps,
                    ..draft()
                },
                "bitrate_kbps",
            )
        };
        assert_eq!(at(99).as_deref(), Some("must be 100 to 100000"));
        assert_eq!(at(100), None);
        assert_eq!(at(100_000), None);
        assert_eq!(at(100_001).as_deref(), Some("must be 100 to 100000"));
    }

    #[test]
    fn tariff_bounds() {
        let at = |tariff_minor| {
            error(
                ChannelDraft {
                    tariff_minor,
                    ..draft()
                },
                "tariff_minor",
            )
        };
        assert_eq!(at(-1).as_deref(), Some("must be 0 to 1000000000"));
        assert_eq!(at(0), None, "a free channel");
        assert_eq!(at(1_000_000_000), None);
        assert_eq!(
            at(1_000_000_001).as_deref(),
            Some("must be 0 to 1000000000")
        );
    }

    #[test]
    fn currency_is_an_iso_code() {
        let at = |c: &str| {
            error(
                ChannelDraft {
                    currency: c.into(),
                    ..draft()
                },
                "currency",
            )
        };
        assert_eq!(at("JPY"), None);
        assert_eq!(
            at("EURO").as_deref(),
            Some("currency must be a three-letter ISO 4217 code such as EUR or JPY, got \"EURO\"")
        );
        assert!(at("").is_some());
    }

    #[test]
    fn name_and_stream_node_bounds() {
        let name = |n: String| error(ChannelDraft { name: n, ..draft() }, "name");
        assert_eq!(name("n".repeat(40)), None);
        assert_eq!(
            name("n".repeat(41)).as_deref(),
            Some("is too long (max 40 characters)")
        );
        assert_eq!(name("  ".into()).as_deref(), Some("is required"));
        assert_eq!(
            name("a\u{0}b".into()).as_deref(),
            Some("contains control characters")
        );
        let node = |n: &str| {
            error(
                ChannelDraft {
                    stream_node: Some(n.into()),
                    ..draft()
                },
                "stream_node",
            )
        };
        assert_eq!(node(&"s".repeat(40)), None);
        assert_eq!(
            node(&"s".repeat(41)).as_deref(),
            Some("is too long (max 40 characters)")
        );
        assert_eq!(node("").as_deref(), Some("is required"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = ChannelDraft {
            name: String::new(),
            capacity: 0,
            bitrate_kbps: 0,
            tariff_minor: -5,
            currency: "€".into(),
            stream_node: Some(String::new()),
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            e.0.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "bitrate_kbps",
                "capacity",
                "currency",
                "name",
                "stream_node",
                "tariff_minor"
            ]
        );
    }

    #[test]
    fn a_channels_own_video_is_sized_by_its_bitrate() {
        assert_eq!(super::picture_size(400), (640, 360));
        assert_eq!(super::picture_size(1200), (640, 360));
        assert_eq!(super::picture_size(2500), (1280, 720));
        assert_eq!(super::picture_size(4000), (1920, 1080));
    }
}
