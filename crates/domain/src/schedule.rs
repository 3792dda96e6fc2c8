//! Deadlines and windows that follow from a booked range and the moment it was booked.

use crate::policy::Policy;
use crate::slot::SlotRange;
use jiff::Timestamp;
use thiserror::Error;

/// Every instant that matters for one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// First instant of the program.
    pub start: Timestamp,
    /// End of the program (viewers switch to filler).
    pub end: Timestamp,
    /// Confirm before this instant or the booking expires.
    pub confirm_by: Timestamp,
    /// When the confirmation reminder is due, if there is time for one.
    pub confirm_reminder_at: Option<Timestamp>,
    /// The publisher may connect from here …
    pub connect_from: Timestamp,
    /// … until here (the publisher is cut off at this instant).
    pub connect_to: Timestamp,
    /// When the start reminder is due.
    pub start_reminder_at: Timestamp,
    /// When the extension offer is due.
    pub extension_offer_at: Timestamp,
}

/// A booking that can no longer be confirmed in time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "too late to book a program starting at {start}: it could not be confirmed before the connect window opens at {connect_from}"
)]
pub struct TooLate {
    /// Requested start.
    pub start: Timestamp,
    /// When the connect window would open.
    pub connect_from: Timestamp,
}

impl Schedule {
    /// Computes the schedule of `range` booked at `booked_at`.
    ///
    /// The confirm deadline is `start − confirm_lead`. A booking made after that instant is
    /// a late booking: it must be confirmed within `late_grace`, and never later than the
    /// opening of the connect window. A booking with no time left to confirm is refused.
    pub fn compute(
        range: &SlotRange,
        booked_at: Timestamp,
        policy: &Policy,
    ) -> Result<Self, TooLate> {
        let start = range.start();
        let end = range.end();
        let connect_from = start - policy.connect_before;
        let regular = start - policy.confirm_lead;
        let confirm_by = if booked_at < regular {
            regular
        } else {
            (booked_at + policy.late_grace).min(connect_from)
        };
        if confirm_by <= booked_at {
            return Err(TooLate {
                start,
                connect_from,
            });
        }
        let reminder = confirm_by - policy.confirm_reminder_before;
        Ok(Self {
            start,
            end,
            confirm_by,
            confirm_reminder_at: (reminder > booked_at).then_some(reminder),
            connect_from,
            connect_to: end + policy.connect_after,
            start_reminder_at: start - policy.start_reminder_before,
            extension_offer_at: end - policy.extension_offer_before,
        })
    }

    /// The schedule after an extension moved the end to `end`: the connect window closes
    /// and the extension offer falls due relative to the new end, as in [`Schedule::compute`].
    /// Every instant up to the start (confirmation, reminders, the connect window's opening)
    /// stays as booked: only confirmed or live reservations are extended, so those are
    /// already behind them.
    ///
    /// `end` is the end of the extended range (the caller has checked the extension with
    /// [`check_extension`](crate::lifecycle::check_extension)).
    pub fn extended_to(&self, end: Timestamp, policy: &Policy) -> Schedule {
        Schedule {
            end,
            connect_to: end + policy.connect_after,
            extension_offer_at: end - policy.extension_offer_before,
            ..*self
        }
    }

    /// Whether `now` is inside the connect window.
    pub fn in_connect_window(&self, now: Timestamp) -> bool {
        self.connect_from <= now && now < self.connect_to
    }

    /// Whether viewers see the program at `now` (from start to end).
    pub fn on_air(&self, now: Timestamp) -> bool {
        self.start <= now && now < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::SlotLength;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn range(start: &str, n: u32) -> SlotRange {
        SlotRange::new(ts(start), n, SlotLength::DEFAULT).unwrap()
    }

    #[test]
    fn regular_booking() {
        let p = Policy::default();
        let s = Schedule::compute(
            &range("2026-05-02T12:00:00Z", 3),
            ts("2026-05-01T00:00:00Z"),
            &p,
        )
        .unwrap();
        assert_eq!(s.confirm_by, ts("2026-05-02T06:00:00Z"));
        assert_eq!(s.confirm_reminder_at, Some(ts("2026-05-02T05:00:00Z")));
        assert_eq!(s.connect_from, ts("2026-05-02T11:55:00Z"));
        assert_eq!(s.end, ts("2026-05-02T12:30:00Z"));
        assert_eq!(s.connect_to, ts("2026-05-02T12:33:00Z"));
        assert_eq!(s.start_reminder_at, ts("2026-05-02T11:50:00Z"));
        assert_eq!(s.extension_offer_at, ts("2026-05-02T12:20:00Z"));
        assert_eq!(s.confirm_by, s.start - p.confirm_lead, "a regular booking");
        assert!(s.in_connect_window(ts("2026-05-02T11:55:00Z")));
        assert!(!s.in_connect_window(ts("2026-05-02T12:33:00Z")));
        assert!(s.on_air(ts("2026-05-02T12:29:59Z")));
        assert!(!s.on_air(ts("2026-05-02T12:30:00Z")));
    }

    #[test]
    fn an_extension_moves_the_end_and_what_follows_it() {
        let p = Policy::default();
        let r = range("2026-05-02T12:00:00Z", 3);
        let s = Schedule::compute(&r, ts("2026-05-01T00:00:00Z"), &p).unwrap();
        let added = r.following(2).unwrap();
        let e = s.extended_to(added.end(), &p);
        assert_eq!(e.end, ts("2026-05-02T12:50:00Z"));
        assert_eq!(e.connect_to, ts("2026-05-02T12:53:00Z"));
        assert_eq!(e.extension_offer_at, ts("2026-05-02T12:40:00Z"));
        // What lies before the program is as booked.
        assert_eq!(
            Schedule {
                end: s.end,
                connect_to: s.connect_to,
                extension_offer_at: s.extension_offer_at,
                ..e
            },
            s
        );
        // The extended schedule is the one a booking of the whole range would have had
        // (booked early enough to be a regular booking).
        let whole = range("2026-05-02T12:00:00Z", 5);
        assert_eq!(
            e,
            Schedule::compute(&whole, ts("2026-05-01T00:00:00Z"), &p).unwrap()
        );
    }

    #[test]
    fn late_booking_gets_grace_but_never_past_the_connect_window() {
        let p = Policy::default();
        let r = range("2026-05-02T12:00:00Z", 1);
        let s = Schedule::compute(&r, ts("2026-05-02T09:00:00Z"), &p).unwrap();
        assert_eq!(s.confirm_by, ts("2026-05-02T09:15:00Z"));
        assert_ne!(s.confirm_by, s.start - p.confirm_lead, "a late booking");
        assert_eq!(s.confirm_reminder_at, None);
        let s = Schedule::compute(&r, ts("2026-05-02T11:50:00Z"), &p).unwrap();
        assert_eq!(s.confirm_by, ts("2026-05-02T11:55:00Z"));
        assert!(Schedule::compute(&r, ts("2026-05-02T11:55:00Z"), &p).is_err());
        assert!(Schedule::compute(&r, ts("2026-05-02T11:58:00Z"), &p).is_err());
    }

    proptest::proptest! {
        #[test]
        fn an_extended_schedule_keeps_the_start_and_follows_the_policy(
            start_slot in 0i64..100_000,
            slots in 1u32..36,
            extra in 1u32..36,
            lead_days in 1i64..30,
            after_s in 0i64..3_600,
            offer_s in 0i64..3_600,
        ) {
            let p = Policy {
                connect_after: jiff::SignedDuration::from_secs(after_s),
                extension_offer_before: jiff::SignedDuration::from_secs(offer_s),
                ..Policy::default()
            };
            let start = ts("2026-01-01T00:00:00Z") + jiff::SignedDuration::from_mins(10 * start_slot);
            let r = SlotRange::new(start, slots, SlotLength::DEFAULT).unwrap();
            let booked = start - jiff::SignedDuration::from_hours(24 * lead_days);
            let s = Schedule::compute(&r, booked, &p).unwrap();
            let added = r.following(extra).unwrap();
            let e = s.extended_to(added.end(), &p);
            proptest::prop_assert_eq!(e.start, s.start);
            proptest::prop_assert_eq!(e.confirm_by, s.confirm_by);
            proptest::prop_assert_eq!(e.confirm_reminder_at, s.confirm_reminder_at);
            proptest::prop_assert_eq!(e.connect_from, s.connect_from);
            proptest::prop_assert_eq!(e.start_reminder_at, s.start_reminder_at);
            proptest::prop_assert_eq!(e.end, added.end());
            proptest::prop_assert!(e.end > s.end);
            proptest::prop_assert_eq!(e.connect_to.duration_since(e.end), p.connect_after);
            proptest::prop_assert_eq!(e.end.duration_since(e.extension_offer_at), p.extension_offer_before);
        }
    }
}
