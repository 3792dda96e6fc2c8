//! Slots: the booking unit. A slot is `SlotLength` long and starts on the clock grid
//! (a whole multiple of its length since the Unix epoch, which for lengths dividing an
//! hour means :00, :10, :20 … in every zone with a whole-hour or half-hour offset).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Length of one slot in minutes; must divide 60 so that every hour holds whole slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SlotLength(u32);

/// A slot length that does not divide an hour.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("slot length must be one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60 minutes, got {0}")]
pub struct SlotLengthError(pub u32);

impl SlotLength {
    /// The default: 10 minutes.
    pub const DEFAULT: SlotLength = SlotLength(10);

    /// Accepts minute counts in 1..=60 that divide 60.
    pub fn from_minutes(minutes: u32) -> Result<Self, SlotLengthError> {
        if (1..=60).contains(&minutes) && 60 % minutes == 0 {
            Ok(Self(minutes))
        } else {
            Err(SlotLengthError(minutes))
        }
    }

    /// Minutes per slot.
    pub fn minutes(self) -> u32 {
        self.0
    }

    /// Seconds per slot.
    pub fn seconds(self) -> i64 {
        i64::from(self.0) * 60
    }

    /// The slot length as a duration.
    pub fn duration(self) -> SignedDuration {
        SignedDuration::from_secs(self.seconds())
    }

    /// Whether `t` is on the slot grid.
    pub fn is_aligned(self, t: Timestamp) -> bool {
        t.subsec_nanosecond() == 0 && t.as_second().rem_euclid(self.seconds()) == 0
    }

    /// The start of the slot containing `t`.
    pub fn floor(self, t: Timestamp) -> Timestamp {
        let s = t.as_second();
        // At the very edge of representable time the grid point may not exist: then `t`.
        Timestamp::from_second(s - s.rem_euclid(self.seconds())).unwrap_or(t)
    }

    /// The first slot start at or after `t`.
    pub fn ceil(self, t: Timestamp) -> Timestamp {
        let f = self.floor(t);
        if f == t { f } else { f + self.duration() }
    }
}

impl Default for SlotLength {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u32> for SlotLength {
    type Error = SlotLengthError;
    fn try_from(m: u32) -> Result<Self, Self::Error> {
        Self::from_minutes(m)
    }
}

impl From<SlotLength> for u32 {
    fn from(l: SlotLength) -> u32 {
        l.0
    }
}

/// Consecutive slots starting at an aligned instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotRange {
    start: Timestamp,
    count: u32,
    len: SlotLength,
}

/// A range that is not on the grid or empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SlotRangeError {
    /// The start is not on the slot grid.
    #[error("start {start} is not aligned to {minutes}-minute slots")]
    Misaligned {
        /// The offending start.
        start: Timestamp,
        /// Slot length in minutes.
        minutes: u32,
    },
    /// Zero slots.
    #[error("a reservation needs at least one slot")]
    Empty,
    /// So far from now that its times cannot be represented.
    #[error("start {start} is out of range")]
    OutOfRange {
        /// The offending start.
        start: Timestamp,
    },
}

impl SlotRange {
    /// A range of `count` slots from `start`.
    pub fn new(start: Timestamp, count: u32, len: SlotLength) -> Result<Self, SlotRangeError> {
        if !len.is_aligned(start) {
            return Err(SlotRangeError::Misaligned {
                start,
                minutes: len.minutes(),
            });
        }
        if count == 0 {
            return Err(SlotRangeError::Empty);
        }
        // The deadlines and windows around it (a day either side is plenty) must exist.
        let span = SignedDuration::from_secs(len.seconds() * i64::from(count) + 86_400);
        if start.checked_add(span).is_err() || start.checked_sub(span).is_err() {
            return Err(SlotRangeError::OutOfRange { start });
        }
        Ok(Self { start, count, len })
    }

    /// First instant of the range.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// Instant just after the last slot.
    pub fn end(&self) -> Timestamp {
        self.start + SignedDuration::from_secs(self.len.seconds() * i64::from(self.count))
    }

    /// Number of slots.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The slot length.
    pub fn len(&self) -> SlotLength {
        self.len
    }

    /// Start of every slot in the range.
    pub fn slot_starts(&self) -> impl Iterator<Item = Timestamp> + '_ {
        (0..i64::from(self.count))
            .map(move |i| self.start + SignedDuration::from_secs(i * self.len.seconds()))
    }

    /// Whether the two ranges share at least one instant.
    pub fn overlaps(&self, other: &SlotRange) -> bool {
        self.start < other.end() && other.start < self.end()
    }

    /// The `extra` slots right after this range.
    pub fn following(&self, extra: u32) -> Result<SlotRange, SlotRangeError> {
        SlotRange::new(self.end(), extra, self.len)
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} .. {} ({} slots)", self.start, self.end(), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn lengths_must_divide_an_hour() {
        for ok in [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] {
            assert!(SlotLength::from_minutes(ok).is_ok(), "{ok}");
        }
        for bad in [0, 7, 25, 45, 90, 120] {
            assert!(SlotLength::from_minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn alignment_floor_and_ceil() {
        let l = SlotLength::DEFAULT;
        assert!(l.is_aligned(ts("2026-03-01T10:20:00Z")));
        assert!(!l.is_aligned(ts("2026-03-01T10:25:00Z")));
        assert!(!l.is_aligned(ts("2026-03-01T10:20:00.5Z")));
        assert_eq!(
            l.floor(ts("2026-03-01T10:29:59Z")),
            ts("2026-03-01T10:20:00Z")
        );
        assert_eq!(
            l.ceil(ts("2026-03-01T10:20:01Z")),
            ts("2026-03-01T10:30:00Z")
        );
        assert_eq!(
            l.ceil(ts("2026-03-01T10:20:00Z")),
            ts("2026-03-01T10:20:00Z")
        );
    }

    #[test]
    fn ranges() {
        let l = SlotLength::DEFAULT;
        let r = SlotRange::new(ts("2026-03-01T23:50:00Z"), 3, l).unwrap();
        assert_eq!(r.end(), ts("2026-03-02T00:20:00Z"));
        assert_eq!(r.slot_starts().count(), 3);
        let next = r.following(1).unwrap();
        assert!(!r.overlaps(&next));
        assert!(r.overlaps(&SlotRange::new(r.start(), 1, l).unwrap()));
        assert!(SlotRange::new(ts("2026-03-01T23:55:00Z"), 1, l).is_err());
        assert_eq!(
            SlotRange::new(ts("2026-03-01T23:50:00Z"), 0, l),
            Err(SlotRangeError::Empty)
        );
    }
}
