//! The tunable rules of a service, built by the edge from configuration and passed into
//! every domain decision.

use crate::slot::SlotLength;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// What happens to the charge when a confirmed reservation is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelCharge {
    /// The full fee is still charged (the default: the slots were held for the member).
    Full,
    /// The charge is voided.
    None,
}

/// Every tunable rule of a booking.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Length of one slot.
    pub slot: SlotLength,
    /// Most slots one reservation may hold.
    pub max_slots_per_reservation: u32,
    /// Confirm deadline before the start (default 6 h).
    pub confirm_lead: SignedDuration,
    /// Confirm grace for bookings made after the regular deadline (default 15 min).
    pub late_grace: SignedDuration,
    /// Connect window opens this long before the start (default 5 min).
    pub connect_before: SignedDuration,
    /// Connect window closes this long after the end (default 3 min).
    pub connect_after: SignedDuration,
    /// Confirmation reminder this long before the deadline (default 1 h).
    pub confirm_reminder_before: SignedDuration,
    /// Start reminder this long before the start (default 10 min).
    pub start_reminder_before: SignedDuration,
    /// Extension offer this long before the end (default 10 min).
    pub extension_offer_before: SignedDuration,
    /// Slots per member per calendar month in `time_zone`.
    pub quota_slots_per_month: u32,
    /// The service's time zone, for months, days and what people see.
    pub time_zone: TimeZone,
    /// Allowed genres; empty means any genre text is accepted.
    pub genres: Vec<String>,
    /// Charge for a cancellation after confirmation.
    pub cancel_charge: CancelCharge,
    /// How far ahead bookings are taken, and availability and programs shown (default 90
    /// days): beyond it nothing is bookable, so nobody can hold slots in every future month.
    pub horizon_days: u32,
}

impl Policy {
    /// The first instant beyond the booking horizon, seen at `now`.
    pub fn horizon_end(&self, now: Timestamp) -> Timestamp {
        now.saturating_add(SignedDuration::from_hours(
            24 * i64::from(self.horizon_days),
        ))
        .unwrap_or(Timestamp::MAX)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            slot: SlotLength::DEFAULT,
            max_slots_per_reservation: 36,
            confirm_lead: SignedDuration::from_hours(6),
            late_grace: SignedDuration::from_mins(15),
            connect_before: SignedDuration::from_mins(5),
            connect_after: SignedDuration::from_mins(3),
            confirm_reminder_before: SignedDuration::from_hours(1),
            start_reminder_before: SignedDuration::from_mins(10),
            extension_offer_before: SignedDuration::from_mins(10),
            quota_slots_per_month: 30,
            time_zone: TimeZone::UTC,
            genres: Vec::new(),
            cancel_charge: CancelCharge::Full,
            horizon_days: 90,
        }
    }
}
