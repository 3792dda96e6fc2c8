//! Reservation states and transitions. Each transition is a function of the current state,
//! the schedule and `now` that returns the new state plus the events the edge must carry
//! out in the same database transaction (free slots, open or settle the charge, queue
//! e-mails), or a typed refusal.
//!
//! ```text
//! (request) ─▶ awaiting_confirmation ─confirm─▶ confirmed ─publish─▶ live ─▶ completed
//!                 │  └─deadline─▶ expired          │  └──────(no show)──────▶ completed
//!                 └─cancel─▶ cancelled ◀─cancel────┴──── live ─cancel─▶ cancelled
//! ```

use crate::charge::ChargeAction;
use crate::ids::ReservationId;
use crate::policy::{CancelCharge, Policy};
use crate::quota::QuotaExceeded;
use crate::schedule::Schedule;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted; slots held; must be confirmed with the key before the deadline.
    AwaitingConfirmation,
    /// Confirmed; billed; the key may publish in the connect window.
    Confirmed,
    /// The broadcaster is (or was, within the window) publishing.
    Live,
    /// The window is over.
    Completed,
    /// Cancelled by the broadcaster or operator.
    Cancelled,
    /// Not confirmed before the deadline.
    Expired,
}

impl Status {
    /// Every state.
    pub const ALL: [Status; 6] = [
        Status::AwaitingConfirmation,
        Status::Confirmed,
        Status::Live,
        Status::Completed,
        Status::Cancelled,
        Status::Expired,
    ];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingConfirmation => "awaiting_confirmation",
            Status::Confirmed => "confirmed",
            Status::Live => "live",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
        }
    }

    /// Whether the reservation is still ahead or running (it can be changed or cancelled).
    pub fn holds_slots(self) -> bool {
        matches!(
            self,
            Status::AwaitingConfirmation | Status::Confirmed | Status::Live
        )
    }

    /// Whether its slots stay claimed and count toward the quota: every state but
    /// `cancelled` and `expired` (a completed program used its airtime).
    pub fn occupies_slots(self) -> bool {
        !matches!(self, Status::Cancelled | Status::Expired)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown reservation status {s:?}"))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Messages to the broadcaster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcasterNotice {
    /// The reservation key, at acceptance.
    Key,
    /// The booking expired unconfirmed.
    Expired,
    /// The booking was cancelled.
    Cancelled,
    /// End-of-program summary with statistics.
    Summary,
}

/// Messages to the invitees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InviteeNotice {
    /// Invitation with time, title, outline, watch URL (and password where needed).
    Invitation,
    /// What changed.
    Change,
    /// The program will not take place.
    Cancellation,
}

/// Something the edge must do, atomically with the state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Free the held slots and give the quota back.
    ReleaseSlots,
    /// Act on the charge.
    Charge(ChargeAction),
    /// Issue the connection profile.
    IssueProfile,
    /// E-mail the broadcaster.
    NotifyBroadcaster(BroadcasterNotice),
    /// E-mail the invitees.
    NotifyInvitees(InviteeNotice),
}

/// A state change and its consequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// State before (`None` for a new reservation).
    pub from: Option<Status>,
    /// State after.
    pub to: Status,
    /// What the edge must do in the same transaction.
    pub events: Vec<Event>,
}

/// Why a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LifecycleError {
    /// The action is not possible from the current state.
    #[error("cannot {action} a reservation that is {from}")]
    Illegal {
        /// Current state.
        from: Status,
        /// Attempted action.
        action: &'static str,
    },
    /// The confirm deadline has passed.
    #[error("the confirmation deadline {confirm_by} has passed")]
    DeadlinePassed {
        /// The deadline.
        confirm_by: Timestamp,
    },
    /// The reservation key does not match.
    #[error("the reservation key is not valid for this reservation")]
    WrongKey,
    /// The action is not due yet.
    #[error("not before {due}")]
    NotDue {
        /// When it becomes due.
        due: Timestamp,
    },
    /// The program has ended.
    #[error("the program ended at {end}")]
    Ended {
        /// End of the program.
        end: Timestamp,
    },
}

fn illegal(from: Status, action: &'static str) -> LifecycleError {
    LifecycleError::Illegal { from, action }
}

/// Whether invitees were already told about the program (and so must hear of changes).
fn invitees_informed(status: Status, invited_at_acceptance: bool) -> bool {
    invited_at_acceptance || matches!(status, Status::Confirmed | Status::Live)
}

/// A request passed every check: slots are held, the key goes to the broadcaster, and the
/// invitees hear of it now if the service invites at acceptance.
pub fn accept(invite_at_acceptance: bool) -> Transition {
    let mut events = vec![Event::NotifyBroadcaster(BroadcasterNotice::Key)];
    if invite_at_acceptance {
        events.push(Event::NotifyInvitees(InviteeNotice::Invitation));
    }
    Transition {
        from: None,
        to: Status::AwaitingConfirmation,
        events,
    }
}

/// Confirmation with the reservation key (`key_ok`: the constant-time check's result).
pub fn confirm(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
    key_ok: bool,
) -> Result<Transition, LifecycleError> {
    if status != Status::AwaitingConfirmation {
        return Err(illegal(status, "confirm"));
    }
    if now >= schedule.confirm_by {
        return Err(LifecycleError::DeadlinePassed {
            confirm_by: schedule.confirm_by,
        });
    }
    if !key_ok {
        return Err(LifecycleError::WrongKey);
    }
    Ok(Transition {
        from: Some(status),
        to: Status::Confirmed,
        events: vec![
            Event::Charge(ChargeAction::Open),
            Event::IssueProfile,
            Event::NotifyInvitees(InviteeNotice::Invitation),
        ],
    })
}

/// The deadline passed without confirmation.
pub fn expire(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
    invited_at_acceptance: bool,
) -> Result<Transition, LifecycleError> {
    if status != Status::AwaitingConfirmation {
        return Err(illegal(status, "expire"));
    }
    if now < schedule.confirm_by {
        return Err(LifecycleError::NotDue {
            due: schedule.confirm_by,
        });
    }
    let mut events = vec![
        Event::ReleaseSlots,
        Event::NotifyBroadcaster(BroadcasterNotice::Expired),
    ];
    if invited_at_acceptance {
        events.push(Event::NotifyInvitees(InviteeNotice::Cancellation));
    }
    Ok(Transition {
        from: Some(status),
        to: Status::Expired,
        events,
    })
}

/// Cancellation by the broadcaster or operator; possible until the end of the program.
pub fn cancel(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
    policy: &Policy,
    invited_at_acceptance: bool,
) -> Result<Transition, LifecycleError> {
    if !status.holds_slots() {
        return Err(illegal(status, "cancel"));
    }
    if now >= schedule.end {
        return Err(LifecycleError::Ended { end: schedule.end });
    }
    let mut events = vec![
        Event::ReleaseSlots,
        Event::NotifyBroadcaster(BroadcasterNotice::Cancelled),
    ];
    if status != Status::AwaitingConfirmation {
        events.push(Event::Charge(match policy.cancel_charge {
            CancelCharge::Full => ChargeAction::Finalize,
            CancelCharge::None => ChargeAction::Void,
        }));
    }
    if invitees_informed(status, invited_at_acceptance) {
        events.push(Event::NotifyInvitees(InviteeNotice::Cancellation));
    }
    Ok(Transition {
        from: Some(status),
        to: Status::Cancelled,
        events,
    })
}

/// What an accepted publish means for the reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// The first publish: the reservation goes from `confirmed` to `live`; the edge stores
    /// this transition.
    GoLive(Transition),
    /// Already live (a reconnect within the window): nothing to store.
    AlreadyLive,
}

/// Why a reservation may not publish now, without naming the reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PublishDeniedReason {
    /// Only confirmed (or already live) reservations publish.
    #[error("is {status}: only confirmed reservations may publish")]
    NotConfirmed {
        /// The reservation's state.
        status: Status,
    },
    /// The connect window has not opened yet.
    #[error("may publish from {connect_from} until {connect_to}")]
    TooEarly {
        /// Opening of the connect window.
        connect_from: Timestamp,
        /// Closing of the connect window.
        connect_to: Timestamp,
    },
    /// The connect window has closed.
    #[error("may publish from {connect_from} until {connect_to}")]
    WindowClosed {
        /// Opening of the connect window.
        connect_from: Timestamp,
        /// Closing of the connect window.
        connect_to: Timestamp,
    },
}

/// A refused publish, worded for the publisher (the stream node passes the text on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("reservation {reservation} {reason}")]
pub struct PublishDenied {
    /// The reservation the key belongs to.
    pub reservation: ReservationId,
    /// Why.
    pub reason: PublishDeniedReason,
}

/// The one rule of who may publish: the key's reservation `id` in `status` may publish at
/// `now` if it is confirmed or already live and `now` is inside its connect window.
///
/// The state is checked before the window, so a cancelled booking is told it is cancelled
/// rather than when its window would have been.
pub fn may_publish(
    id: ReservationId,
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<Publish, PublishDenied> {
    publish_rule(status, schedule, now).map_err(|reason| PublishDenied {
        reservation: id,
        reason,
    })
}

fn publish_rule(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<Publish, PublishDeniedReason> {
    if !matches!(status, Status::Confirmed | Status::Live) {
        return Err(PublishDeniedReason::NotConfirmed { status });
    }
    let (connect_from, connect_to) = (schedule.connect_from, schedule.connect_to);
    if now < connect_from {
        return Err(PublishDeniedReason::TooEarly {
            connect_from,
            connect_to,
        });
    }
    if now >= connect_to {
        return Err(PublishDeniedReason::WindowClosed {
            connect_from,
            connect_to,
        });
    }
    Ok(if status == Status::Live {
        Publish::AlreadyLive
    } else {
        Publish::GoLive(Transition {
            from: Some(status),
            to: Status::Live,
            events: Vec::new(),
        })
    })
}

/// The `confirmed → live` transition alone, for callers that drive a reservation live
/// without a publisher (the store contract tests, the center's tests). It is
/// [`may_publish`] with the refusals of the other transitions: `Illegal` unless confirmed
/// (a live reservation cannot go live again), `NotDue` before the window, `Ended` after it.
pub fn go_live(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<Transition, LifecycleError> {
    match publish_rule(status, schedule, now) {
        Ok(Publish::GoLive(t)) => Ok(t),
        Ok(Publish::AlreadyLive) | Err(PublishDeniedReason::NotConfirmed { .. }) => {
            Err(illegal(status, "go live with"))
        }
        Err(PublishDeniedReason::TooEarly { connect_from, .. }) => {
            Err(LifecycleError::NotDue { due: connect_from })
        }
        Err(PublishDeniedReason::WindowClosed { .. }) => {
            Err(LifecycleError::Ended { end: schedule.end })
        }
    }
}

/// The connect window closed: the charge becomes final, or is waived if the channel did
/// not run normally on the operator's side. A confirmed booking that never went on air
/// is completed and billed too (the slots were held for it).
pub fn complete(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
    operator_outage: bool,
) -> Result<Transition, LifecycleError> {
    if !matches!(status, Status::Confirmed | Status::Live) {
        return Err(illegal(status, "complete"));
    }
    if now < schedule.connect_to {
        return Err(LifecycleError::NotDue {
            due: schedule.connect_to,
        });
    }
    Ok(Transition {
        from: Some(status),
        to: Status::Completed,
        events: vec![
            Event::Charge(if operator_outage {
                ChargeAction::Waive
            } else {
                ChargeAction::Finalize
            }),
            Event::NotifyBroadcaster(BroadcasterNotice::Summary),
        ],
    })
}

/// A change of the program's changeable fields; possible until the end. Returns the events
/// (the invitees hear of it if they already know of the program).
pub fn change(
    status: Status,
    schedule: &Schedule,
    now: Timestamp,
    invited_at_acceptance: bool,
) -> Result<Vec<Event>, LifecycleError> {
    if !status.holds_slots() {
        return Err(illegal(status, "change"));
    }
    if now >= schedule.end {
        return Err(LifecycleError::Ended { end: schedule.end });
    }
    Ok(if invitees_informed(status, invited_at_acceptance) {
        vec![Event::NotifyInvitees(InviteeNotice::Change)]
    } else {
        Vec::new()
    })
}

/// Why an extension is not possible.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExtensionRefused {
    /// Wrong state or time.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The offer opens later.
    #[error("extensions are offered from {offer_at}")]
    NotOffered {
        /// When the offer opens.
        offer_at: Timestamp,
    },
    /// More slots than one reservation may hold, or zero.
    #[error("a reservation may hold 1 to {max} slots; {requested} would be {total}")]
    TooLong {
        /// Slots requested.
        requested: u32,
        /// Resulting length.
        total: u32,
        /// Maximum.
        max: u32,
    },
    /// The following slots are taken.
    #[error("the following slots are already booked")]
    SlotsTaken,
    /// The quota does not allow it.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
}

/// What the edge found out about a requested extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFacts {
    /// Slots requested.
    pub extra: u32,
    /// Whether the following slots are free.
    pub next_free: bool,
    /// The quota check for the extra slots.
    pub quota: Result<(), QuotaExceeded>,
}

/// Whether a reservation of `current_slots` may be extended as `facts` describe, at `now`.
pub fn check_extension(
    status: Status,
    schedule: &Schedule,
    current_slots: u32,
    facts: ExtensionFacts,
    now: Timestamp,
    policy: &Policy,
) -> Result<(), ExtensionRefused> {
    let ExtensionFacts {
        extra,
        next_free,
        quota,
    } = facts;
    if !matches!(status, Status::Confirmed | Status::Live) {
        return Err(illegal(status, "extend").into());
    }
    if now >= schedule.end {
        return Err(LifecycleError::Ended { end: schedule.end }.into());
    }
    if now < schedule.extension_offer_at {
        return Err(ExtensionRefused::NotOffered {
            offer_at: schedule.extension_offer_at,
        });
    }
    let total = current_slots.saturating_add(extra);
    if extra == 0 || total > policy.max_slots_per_reservation {
        return Err(ExtensionRefused::TooLong {
            requested: extra,
            total,
            max: policy.max_slots_per_reservation,
        });
    }
    if !next_free {
        return Err(ExtensionRefused::SlotsTaken);
    }
    quota?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::{SlotLength, SlotRange};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule() -> Schedule {
        let r = SlotRange::new(ts("2026-05-02T12:00:00Z"), 3, SlotLength::DEFAULT).unwrap();
        Schedule::compute(&r, ts("2026-05-01T00:00:00Z"), &Policy::default()).unwrap()
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert!("done".parse::<Status>().is_err());
    }

    #[test]
    fn confirm_needs_the_key_before_the_deadline_and_only_once() {
        let s = schedule();
        let before = ts("2026-05-02T05:59:59Z");
        let t = confirm(Status::AwaitingConfirmation, &s, before, true).unwrap();
        assert_eq!(t.to, Status::Confirmed);
        assert!(t.events.contains(&Event::Charge(ChargeAction::Open)));
        assert!(
            t.events
                .contains(&Event::NotifyInvitees(InviteeNotice::Invitation))
        );
        assert_eq!(
            confirm(Status::AwaitingConfirmation, &s, before, false),
            Err(LifecycleError::WrongKey)
        );
        assert!(matches!(
            confirm(Status::AwaitingConfirmation, &s, s.confirm_by, true),
            Err(LifecycleError::DeadlinePassed { .. })
        ));
        assert!(matches!(
            confirm(Status::Confirmed, &s, before, true),
            Err(LifecycleError::Illegal { .. })
        ));
    }

    #[test]
    fn expiry_exactly_at_the_deadline() {
        let s = schedule();
        assert!(matches!(
            expire(
                Status::AwaitingConfirmation,
                &s,
                ts("2026-05-02T05:59:59Z"),
                false
            ),
            Err(LifecycleError::NotDue { .. })
        ));
        let t = expire(Status::AwaitingConfirmation, &s, s.confirm_by, false).unwrap();
        assert_eq!(t.to, Status::Expired);
        assert!(t.events.contains(&Event::ReleaseSlots));
        assert!(
            !t.events
                .iter()
                .any(|e| matches!(e, Event::NotifyInvitees(_)))
        );
        let t = expire(Status::AwaitingConfirmation, &s, s.confirm_by, true).unwrap();
        assert!(
            t.events
                .contains(&Event::NotifyInvitees(InviteeNotice::Cancellation))
        );
        assert!(expire(Status::Confirmed, &s, s.confirm_by, false).is_err());
    }

    #[test]
    fn cancel_bills_confirmed_bookings_by_policy() {
        let s = schedule();
        let now = ts("2026-05-02T10:00:00Z");
        let mut p = Policy::default();
        let t = cancel(Status::AwaitingConfirmation, &s, now, &p, false).unwrap();
        assert!(!t.events.iter().any(|e| matches!(e, Event::Charge(_))));
        assert!(
            !t.events
                .iter()
                .any(|e| matches!(e, Event::NotifyInvitees(_)))
        );
        let t = cancel(Status::Confirmed, &s, now, &p, false).unwrap();
        assert!(t.events.contains(&Event::Charge(ChargeAction::Finalize)));
        assert!(
            t.events
                .contains(&Event::NotifyInvitees(InviteeNotice::Cancellation))
        );
        p.cancel_charge = CancelCharge::None;
        let t = cancel(Status::Live, &s, now, &p, false).unwrap();
        assert!(t.events.contains(&Event::Charge(ChargeAction::Void)));
        assert!(cancel(Status::Completed, &s, now, &p, false).is_err());
        assert!(matches!(
            cancel(Status::Confirmed, &s, s.end, &p, false),
            Err(LifecycleError::Ended { .. })
        ));
    }

    #[test]
    fn live_only_in_the_connect_window_and_completion_settles_the_charge() {
        let s = schedule();
        assert_eq!(
            go_live(Status::Confirmed, &s, ts("2026-05-02T11:54:59Z")),
            Err(LifecycleError::NotDue {
                due: s.connect_from
            })
        );
        assert_eq!(
            go_live(Status::Confirmed, &s, s.connect_from).unwrap().to,
            Status::Live
        );
        assert_eq!(
            go_live(Status::Confirmed, &s, s.connect_to),
            Err(LifecycleError::Ended { end: s.end })
        );
        assert!(matches!(
            go_live(Status::AwaitingConfirmation, &s, s.start),
            Err(LifecycleError::Illegal { .. })
        ));
        assert!(matches!(
            go_live(Status::Live, &s, s.start),
            Err(LifecycleError::Illegal { .. })
        ));
        assert!(complete(Status::Live, &s, s.end, false).is_err());
        let t = complete(Status::Live, &s, s.connect_to, false).unwrap();
        assert!(t.events.contains(&Event::Charge(ChargeAction::Finalize)));
        let t = complete(Status::Confirmed, &s, s.connect_to, true).unwrap();
        assert!(t.events.contains(&Event::Charge(ChargeAction::Waive)));
        assert!(complete(Status::Cancelled, &s, s.connect_to, false).is_err());
    }

    #[test]
    fn publish_needs_a_confirmed_or_live_booking_inside_the_connect_window() {
        let s = schedule();
        let id = ReservationId(7);
        let t = may_publish(id, Status::Confirmed, &s, s.connect_from).unwrap();
        assert_eq!(
            t,
            Publish::GoLive(Transition {
                from: Some(Status::Confirmed),
                to: Status::Live,
                events: Vec::new(),
            })
        );
        let last = s.connect_to - jiff::SignedDuration::from_nanos(1);
        assert!(matches!(
            may_publish(id, Status::Confirmed, &s, last),
            Ok(Publish::GoLive(_))
        ));
        assert_eq!(
            may_publish(id, Status::Live, &s, s.start),
            Ok(Publish::AlreadyLive)
        );
        let early = may_publish(id, Status::Confirmed, &s, ts("2026-05-02T11:54:59Z"));
        assert!(matches!(
            early,
            Err(PublishDenied {
                reason: PublishDeniedReason::TooEarly { .. },
                ..
            })
        ));
        assert_eq!(
            early.unwrap_err().to_string(),
            "reservation 7 may publish from 2026-05-02T11:55:00Z until 2026-05-02T12:33:00Z"
        );
        let late = may_publish(id, Status::Live, &s, s.connect_to).unwrap_err();
        assert!(matches!(
            late.reason,
            PublishDeniedReason::WindowClosed { .. }
        ));
        assert_eq!(
            late.to_string(),
            "reservation 7 may publish from 2026-05-02T11:55:00Z until 2026-05-02T12:33:00Z"
        );
        for status in [
            Status::AwaitingConfirmation,
            Status::Completed,
            Status::Cancelled,
            Status::Expired,
        ] {
            let e = may_publish(id, status, &s, s.start).unwrap_err();
            assert_eq!(e.reason, PublishDeniedReason::NotConfirmed { status });
            assert_eq!(
                e.to_string(),
                format!("reservation 7 is {status}: only confirmed reservations may publish")
            );
        }
        // The state is named even outside the window.
        assert!(matches!(
            may_publish(id, Status::Cancelled, &s, s.connect_to),
            Err(PublishDenied {
                reason: PublishDeniedReason::NotConfirmed { .. },
                ..
            })
        ));
    }

    #[test]
    fn change_notifies_only_informed_invitees() {
        let s = schedule();
        let now = ts("2026-05-02T10:00:00Z");
        assert!(
            change(Status::AwaitingConfirmation, &s, now, false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            change(Status::Confirmed, &s, now, false).unwrap(),
            vec![Event::NotifyInvitees(InviteeNotice::Change)]
        );
        assert!(change(Status::Expired, &s, now, false).is_err());
        assert!(change(Status::Live, &s, s.end, false).is_err());
    }

    #[test]
    fn extension_eligibility() {
        let s = schedule();
        let p = Policy::default();
        let offer = s.extension_offer_at;
        let facts = |extra, next_free, quota| ExtensionFacts {
            extra,
            next_free,
            quota,
        };
        let check = |status, now, extra, next_free, quota| {
            check_extension(status, &s, 3, facts(extra, next_free, quota), now, &p)
        };
        assert!(check(Status::Live, offer, 1, true, Ok(())).is_ok());
        assert!(matches!(
            check(Status::Live, ts("2026-05-02T12:19:59Z"), 1, true, Ok(())),
            Err(ExtensionRefused::NotOffered { .. })
        ));
        assert_eq!(
            check(Status::Live, offer, 1, false, Ok(())),
            Err(ExtensionRefused::SlotsTaken)
        );
        assert!(matches!(
            check(Status::Live, offer, 40, true, Ok(())),
            Err(ExtensionRefused::TooLong { .. })
        ));
        let q = crate::quota::check(crate::quota::MonthKey::parse("2026-05").unwrap(), 30, 1, 30);
        assert!(matches!(
            check(Status::Live, offer, 1, true, q),
            Err(ExtensionRefused::Quota(_))
        ));
        assert!(check(Status::AwaitingConfirmation, offer, 1, true, Ok(())).is_err());
        assert!(matches!(
            check(Status::Live, s.end, 1, true, Ok(())),
            Err(ExtensionRefused::Lifecycle(_))
        ));
    }
}
