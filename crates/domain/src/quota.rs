//! The monthly quota: how many slots one member may hold per calendar month of the
//! service's time zone. A slot counts in the month its start falls in, seen in that zone,
//! so a booking across local midnight at a month's end counts in both months, and DST
//! shifts move month boundaries in UTC exactly as people see them.

use crate::slot::SlotRange;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// A calendar month in the service's zone, e.g. `2026-03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MonthKey {
    /// Year.
    pub year: i16,
    /// Month, 1..=12.
    pub month: i8,
}

/// A text that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a month is written YYYY-MM, got {0:?}")]
pub struct MonthKeyError(pub String);

impl MonthKey {
    /// The month in which `t` falls in `tz`.
    pub fn of(t: Timestamp, tz: &TimeZone) -> Self {
        let d = t.to_zoned(tz.clone()).date();
        Self {
            year: d.year(),
            month: d.month(),
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Self, MonthKeyError> {
        let err = || MonthKeyError(s.to_owned());
        let (y, m) = s.split_once('-').ok_or_else(err)?;
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if y.len() != 4 || m.len() != 2 || !digits(y) || !digits(m) {
            return Err(err());
        }
        let year: i16 = y.parse().map_err(|_| err())?;
        // Months whose bounds exist in every time zone.
        if !(1000..=9998).contains(&year) {
            return Err(err());
        }
        let month: i8 = m.parse().map_err(|_| err())?;
        Date::new(year, month, 1).map_err(|_| err())?;
        Ok(Self { year, month })
    }

    /// The month's first day.
    pub fn first_day(&self) -> Date {
        Date::new(self.year, self.month, 1).expect("valid month")
    }

    /// The month before.
    pub fn previous(&self) -> Self {
        match self.month {
            1 => Self {
                year: self.year - 1,
                month: 12,
            },
            m => Self {
                year: self.year,
                month: m - 1,
            },
        }
    }

    /// First instant of the month and first instant of the next month, in UTC.
    pub fn bounds(&self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        let first = Date::new(self.year, self.month, 1).expect("valid month");
        let next = first.last_of_month().tomorrow().expect("in range");
        let at = |d: Date| {
            d.to_zoned(tz.clone())
                .expect("a day always has a first instant")
                .timestamp()
        };
        (at(first), at(next))
    }
}

impl fmt::Display for MonthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// How many slots of `range` fall in each month, in month order.
pub fn slots_by_month(range: &SlotRange, tz: &TimeZone) -> Vec<(MonthKey, u32)> {
    let mut out: Vec<(MonthKey, u32)> = Vec::new();
    for s in range.slot_starts() {
        let m = MonthKey::of(s, tz);
        match out.last_mut() {
            Some((last, n)) if *last == m => *n += 1,
            _ => out.push((m, 1)),
        }
    }
    out
}

/// A booking that would take a member over the monthly quota.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("monthly quota exceeded for {month}: {requested} slots requested, {used} of {max} already used, {} left", max.saturating_sub(*used))]
pub struct QuotaExceeded {
    /// The month over quota.
    pub month: MonthKey,
    /// Slots already held that month.
    pub used: u32,
    /// Slots requested in that month.
    pub requested: u32,
    /// The quota.
    pub max: u32,
}

/// Checks one month's usage against the quota.
pub fn check(month: MonthKey, used: u32, requested: u32, max: u32) -> Result<(), QuotaExceeded> {
    if used.saturating_add(requested) <= max {
        Ok(())
    } else {
        Err(QuotaExceeded {
            month,
            used,
            requested,
            max,
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_month_before_crosses_the_year() {
        let jan = MonthKey::parse("2027-01").unwrap();
        assert_eq!(jan.previous().to_string(), "2026-12");
        assert_eq!(jan.previous().previous().to_string(), "2026-11");
        assert_eq!(jan.first_day().to_string(), "2027-01-01");
    }

    use super::*;
    use crate::slot::SlotLength;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn month_boundaries_follow_the_zone_across_dst() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // Winter (CET, +1): March begins at 23:00 UTC on 28 February.
        assert_eq!(
            MonthKey::of(ts("2026-02-28T22:50:00Z"), &berlin).to_string(),
            "2026-02"
        );
        assert_eq!(
            MonthKey::of(ts("2026-02-28T23:00:00Z"), &berlin).to_string(),
            "2026-03"
        );
        // After the spring change (CEST, +2): April begins at 22:00 UTC on 31 March.
        assert_eq!(
            MonthKey::of(ts("2026-03-31T21:50:00Z"), &berlin).to_string(),
            "2026-03"
        );
        assert_eq!(
            MonthKey::of(ts("2026-03-31T22:00:00Z"), &berlin).to_string(),
            "2026-04"
        );
        let (from, to) = MonthKey::parse("2026-03").unwrap().bounds(&berlin);
        assert_eq!(from, ts("2026-02-28T23:00:00Z"));
        assert_eq!(to, ts("2026-03-31T22:00:00Z"));
        // March in Berlin is one hour shorter than 31 days.
        assert_eq!(to.duration_since(from).as_hours(), 31 * 24 - 1);
    }

    #[test]
    fn a_booking_across_the_month_end_counts_in_both_months() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let r = SlotRange::new(ts("2026-03-31T21:40:00Z"), 4, SlotLength::DEFAULT).unwrap();
        let by = slots_by_month(&r, &berlin);
        assert_eq!(
            by,
            vec![
                (MonthKey::parse("2026-03").unwrap(), 2),
                (MonthKey::parse("2026-04").unwrap(), 2)
            ]
        );
    }

    #[test]
    fn quota_check_names_what_is_left() {
        let m = MonthKey::parse("2026-03").unwrap();
        assert!(check(m, 28, 2, 30).is_ok());
        let e = check(m, 28, 3, 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "monthly quota exceeded for 2026-03: 3 slots requested, 28 of 30 already used, 2 left"
        );
    }

    #[test]
    fn month_key_parsing() {
        assert!(MonthKey::parse("2026-13").is_err());
        assert!(MonthKey::parse("2026-3").is_err());
        assert!(MonthKey::parse("x").is_err());
    }
}
