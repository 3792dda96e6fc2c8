//! An in-memory model of the booking rules: the reference the property tests check the
//! invariants on, and the oracle the storage contract tests compare the databases with.
//! It applies the same domain functions the center does, in the same order of checks:
//! channel, member tier, schedule, slot claims, quota.

use crate::charge::ChargeState;
use crate::ids::{ChannelId, MemberId, ReservationId};
use crate::lifecycle::{self, Event, LifecycleError, Status, Transition};
use crate::money::Money;
use crate::policy::Policy;
use crate::quota::{self, MonthKey, QuotaExceeded};
use crate::schedule::{Schedule, TooLate};
use crate::slot::SlotRange;
use jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// One reservation in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelReservation {
    /// Owner.
    pub member: MemberId,
    /// Channel.
    pub channel: ChannelId,
    /// Slots.
    pub range: SlotRange,
    /// Deadlines.
    pub schedule: Schedule,
    /// State.
    pub status: Status,
    /// tariff × slots.
    pub fee: Money,
    /// The charge, once opened.
    pub charge: Option<ChargeState>,
}

/// Why the model refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    /// No such channel.
    #[error("unknown channel")]
    UnknownChannel,
    /// Only premium members book.
    #[error("only premium members can book")]
    NotPremium,
    /// No time left to confirm.
    #[error(transparent)]
    TooLate(#[from] TooLate),
    /// A slot is held by another reservation.
    #[error("slot {slot} is taken")]
    SlotTaken {
        /// The first taken slot.
        slot: Timestamp,
    },
    /// Over quota.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    /// Refused transition.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// No such reservation.
    #[error("no such reservation")]
    NotFound,
}

/// The model.
#[derive(Debug, Clone)]
pub struct Book {
    policy: Policy,
    channels: BTreeMap<ChannelId, Money>,
    premium: BTreeSet<MemberId>,
    reservations: BTreeMap<ReservationId, ModelReservation>,
    claims: BTreeMap<(ChannelId, Timestamp), ReservationId>,
    usage: BTreeMap<(MemberId, MonthKey), u32>,
    next_id: i64,
}

impl Book {
    /// An empty book under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            channels: BTreeMap::new(),
            premium: BTreeSet::new(),
            reservations: BTreeMap::new(),
            claims: BTreeMap::new(),
            usage: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Adds a channel with its tariff per slot.
    pub fn add_channel(&mut self, id: ChannelId, tariff: Money) {
        self.channels.insert(id, tariff);
    }

    /// Adds a member; only premium members may book.
    pub fn add_member(&mut self, id: MemberId, premium: bool) {
        if premium {
            self.premium.insert(id);
        }
    }

    /// Every reservation.
    pub fn reservations(&self) -> &BTreeMap<ReservationId, ModelReservation> {
        &self.reservations
    }

    /// Slots `member` holds in `month`.
    pub fn usage(&self, member: MemberId, month: MonthKey) -> u32 {
        self.usage.get(&(member, month)).copied().unwrap_or(0)
    }

    /// Books `range` on `channel` for `member` at `now`.
    pub fn request(
        &mut self,
        member: MemberId,
        channel: ChannelId,
        range: SlotRange,
        now: Timestamp,
    ) -> Result<ReservationId, BookError> {
        let tariff = *self
            .channels
            .get(&channel)
            .ok_or(BookError::UnknownChannel)?;
        if !self.premium.contains(&member) {
            return Err(BookError::NotPremium);
        }
        let schedule = Schedule::compute(&range, now, &self.policy)?;
        if let Some(slot) = range
            .slot_starts()
            .find(|s| self.claims.contains_key(&(channel, *s)))
        {
            return Err(BookError::SlotTaken { slot });
        }
        let months = quota::slots_by_month(&range, &self.policy.time_zone);
        for (m, n) in &months {
            quota::check(
                *m,
                self.usage(member, *m),
                *n,
                self.policy.quota_slots_per_month,
            )?;
        }
        let fee = Money::fee(tariff, range.count()).expect("model tariffs are small");
        let id = ReservationId(self.next_id);
        self.next_id += 1;
        for s in range.slot_starts() {
            self.claims.insert((channel, s), id);
        }
        for (m, n) in months {
            *self.usage.entry((member, m)).or_default() += n;
        }
        self.reservations.insert(
            id,
            ModelReservation {
                member,
                channel,
                range,
                schedule,
                status: lifecycle::accept(false).to,
                fee,
                charge: None,
            },
        );
        Ok(id)
    }

    /// Confirms with the right key.
    pub fn confirm(&mut self, id: ReservationId, now: Timestamp) -> Result<(), BookError> {
        let r = self.reservations.get(&id).ok_or(BookError::NotFound)?;
        let t = lifecycle::confirm(r.status, &r.schedule, now, true)?;
        self.apply(id, t);
        Ok(())
    }

    /// Cancels.
    pub fn cancel(&mut self, id: ReservationId, now: Timestamp) -> Result<(), BookError> {
        let r = self.reservations.get(&id).ok_or(BookError::NotFound)?;
        let t = lifecycle::cancel(r.status, &r.schedule, now, &self.policy, false)?;
        self.apply(id, t);
        Ok(())
    }

    /// Expires every unconfirmed reservation whose deadline has passed; returns them.
    pub fn expire_due(&mut self, now: Timestamp) -> Vec<ReservationId> {
        self.run_due(|r| lifecycle::expire(r.status, &r.schedule, now, false).ok())
    }

    /// Completes every confirmed or live reservation whose window has closed.
    pub fn complete_due(&mut self, now: Timestamp) -> Vec<ReservationId> {
        self.run_due(|r| lifecycle::complete(r.status, &r.schedule, now, false).ok())
    }

    fn run_due(
        &mut self,
        f: impl Fn(&ModelReservation) -> Option<Transition>,
    ) -> Vec<ReservationId> {
        let due: Vec<(ReservationId, Transition)> = self
            .reservations
            .iter()
            .filter_map(|(id, r)| f(r).map(|t| (*id, t)))
            .collect();
        due.into_iter()
            .map(|(id, t)| {
                self.apply(id, t);
                id
            })
            .collect()
    }

    fn apply(&mut self, id: ReservationId, t: Transition) {
        let r = self.reservations.get_mut(&id).expect("exists");
        r.status = t.to;
        for e in t.events {
            match e {
                Event::ReleaseSlots => {
                    for s in r.range.slot_starts() {
                        self.claims.remove(&(r.channel, s));
                    }
                    for (m, n) in quota::slots_by_month(&r.range, &self.policy.time_zone) {
                        *self.usage.get_mut(&(r.member, m)).expect("held") -= n;
                    }
                }
                Event::Charge(a) => {
                    r.charge = Some(
                        ChargeState::apply(r.charge, a)
                            .expect("lifecycle keeps charges consistent"),
                    );
                }
                Event::IssueProfile | Event::NotifyBroadcaster(_) | Event::NotifyInvitees(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use crate::slot::SlotLength;
    use jiff::SignedDuration;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Request {
            member: u8,
            channel: u8,
            offset: u16,
            slots: u8,
        },
        Confirm(u8),
        Cancel(u8),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..4, 0u8..3, 0u16..600, 1u8..8).prop_map(|(member, channel, offset, slots)| Op::Request { member, channel, offset, slots }),
            2 => any::<u8>().prop_map(Op::Confirm),
            1 => any::<u8>().prop_map(Op::Cancel),
            1 => (1u16..600).prop_map(Op::Advance),
        ]
    }

    fn book(tz: TimeZone) -> Book {
        let policy = Policy {
            quota_slots_per_month: 12,
            time_zone: tz,
            ..Policy::default()
        };
        let mut b = Book::new(policy);
        let jpy = Currency::parse("JPY").unwrap();
        for c in 0..3 {
            b.add_channel(ChannelId(c), Money::new(100 * (c + 1), jpy));
        }
        for m in 0..4 {
            b.add_member(MemberId(m), m != 3);
        }
        b
    }

    fn check_invariants(b: &Book) {
        let active: Vec<&ModelReservation> = b
            .reservations
            .values()
            .filter(|r| r.status.occupies_slots())
            .collect();
        let mut seen = BTreeSet::new();
        let mut usage: BTreeMap<(MemberId, MonthKey), u32> = BTreeMap::new();
        for r in &active {
            for s in r.range.slot_starts() {
                assert!(
                    seen.insert((r.channel, s)),
                    "double booking of {s} on {:?}",
                    r.channel
                );
            }
            for (m, n) in quota::slots_by_month(&r.range, &b.policy.time_zone) {
                *usage.entry((r.member, m)).or_default() += n;
            }
        }
        for ((member, month), n) in &usage {
            assert!(
                *n <= b.policy.quota_slots_per_month,
                "{member:?} over quota in {month}"
            );
            assert_eq!(b.usage(*member, *month), *n, "usage counter drifted");
        }
        for r in b.reservations.values() {
            let tariff = b.channels[&r.channel];
            assert_eq!(r.fee.minor, tariff.minor * i64::from(r.range.count()));
            match r.status {
                Status::Confirmed | Status::Live => {
                    assert_eq!(r.charge, Some(ChargeState::Pending))
                }
                Status::Completed => assert_eq!(r.charge, Some(ChargeState::Final)),
                Status::AwaitingConfirmation | Status::Expired => assert_eq!(r.charge, None),
                Status::Cancelled => assert_ne!(r.charge, Some(ChargeState::Pending)),
            }
        }
    }

    fn run(ops: Vec<Op>, tz: TimeZone, base: Timestamp) {
        let mut b = book(tz);
        let mut now = base;
        for op in ops {
            match op {
                Op::Request {
                    member,
                    channel,
                    offset,
                    slots,
                } => {
                    let start = SlotLength::DEFAULT.ceil(now)
                        + SignedDuration::from_mins(10 * i64::from(offset));
                    let range =
                        SlotRange::new(start, u32::from(slots), SlotLength::DEFAULT).unwrap();
                    let _ = b.request(
                        MemberId(i64::from(member)),
                        ChannelId(i64::from(channel)),
                        range,
                        now,
                    );
                }
                Op::Confirm(i) => {
                    let _ = b.confirm(ReservationId(i64::from(i % 32) + 1), now);
                }
                Op::Cancel(i) => {
                    let _ = b.cancel(ReservationId(i64::from(i % 32) + 1), now);
                }
                Op::Advance(mins) => {
                    now += SignedDuration::from_mins(i64::from(mins));
                    b.expire_due(now);
                    b.complete_due(now);
                }
            }
            check_invariants(&b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn invariants_hold_over_random_histories(ops in proptest::collection::vec(op(), 1..80)) {
            run(ops, TimeZone::UTC, "2026-06-01T08:03:00Z".parse().unwrap());
        }

        #[test]
        fn invariants_hold_across_dst_and_month_ends(ops in proptest::collection::vec(op(), 1..80)) {
            // Europe/Berlin: the spring DST change (29 March) and the end of March
            // (22:00 UTC under CEST) both fall inside the booking horizon.
            run(ops, TimeZone::get("Europe/Berlin").unwrap(), "2026-03-28T20:01:00Z".parse().unwrap());
        }
    }

    #[test]
    fn refusals_come_in_order() {
        let mut b = book(TimeZone::UTC);
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let r = |s: &str, n| SlotRange::new(s.parse().unwrap(), n, SlotLength::DEFAULT).unwrap();
        assert_eq!(
            b.request(MemberId(0), ChannelId(9), r("2026-06-02T00:00:00Z", 1), now),
            Err(BookError::UnknownChannel)
        );
        assert_eq!(
            b.request(MemberId(3), ChannelId(0), r("2026-06-02T00:00:00Z", 1), now),
            Err(BookError::NotPremium)
        );
        let id = b
            .request(MemberId(0), ChannelId(0), r("2026-06-02T00:00:00Z", 2), now)
            .unwrap();
        assert!(matches!(
            b.request(MemberId(1), ChannelId(0), r("2026-06-02T00:10:00Z", 2), now),
            Err(BookError::SlotTaken { .. })
        ));
        assert!(matches!(
            b.request(
                MemberId(0),
                ChannelId(1),
                r("2026-06-03T00:00:00Z", 11),
                now
            ),
            Err(BookError::Quota(_))
        ));
        b.cancel(id, now).unwrap();
        assert!(
            b.request(MemberId(1), ChannelId(0), r("2026-06-02T00:10:00Z", 2), now)
                .is_ok()
        );
        assert!(
            b.request(
                MemberId(0),
                ChannelId(1),
                r("2026-06-03T00:00:00Z", 12),
                now
            )
            .is_ok()
        );
    }
}
