//! The storage contract: what every backend must do, checked the same way on each.
//! Instantiate it in a backend's `tests/` with [`store_contract!`](crate::store_contract).

use crate::fixtures::{self, booking, now, ts};
use slotcast_domain::book::Book;
use slotcast_domain::charge::{ChargeAction, ChargeState};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::lifecycle::{self, Status};
use slotcast_domain::{EmailAddress, MonthKey, Policy, ReservationId, SlotRange, Timestamp, quota};
use slotcast_store::*;
use std::sync::Arc;

/// Every contract test, by name.
#[macro_export]
macro_rules! store_contract {
    ($open:expr) => {
        $crate::store_contract!(@each $open;
            members_round_trip, sessions_expire_and_revoke, channels_round_trip, booking_round_trip,
            double_booking_is_refused_and_writes_nothing, only_premium_members_book, quota_is_enforced_per_month,
            confirm_opens_the_charge_once_and_only_before_the_deadline, expiry_frees_slots_and_quota,
            cancellation_and_completion_settle_the_charge, scheduler_finds_due_work, outbox_leases_retries_and_dedupes,
            concurrent_bookings_have_one_winner_per_slot, concurrent_quota_race_cannot_exceed_the_quota,
            concurrent_confirms_succeed_once, agrees_with_the_domain_model, notices_are_sent_once,
            program_changes_are_logged_and_end_with_the_program, extension_claims_the_following_slots,
            wrong_keys_lock_confirmation, listings_by_time_and_invoices, channels_can_be_updated,
            pickups_are_marked_and_unmarked, accounts_are_updated_and_upgraded,
            the_operator_searches_members_waives_charges_and_retries_mail,
            scheduler_work_is_leased, channels_are_placed_on_one_node_at_a_time,
            concurrent_placement_claims_have_one_winner, seats_never_exceed_the_capacity,
            throttle_counts_are_shared_and_run_out,
        );
    };
    (@each $open:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some((store, _guard)) = $open.await else { return };
                $crate::contract::$name(store).await;
            }
        )*
    };
}

type S = Arc<dyn Store>;

fn policy() -> Policy {
    Policy::default()
}

fn conflict<T: std::fmt::Debug>(r: Result<T>) -> Conflict {
    match r {
        Err(StorageError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn confirm(s: &S, r: &Reservation, at: Timestamp) -> Result<Reservation> {
    let t = lifecycle::confirm(r.status, &r.schedule, at, true).expect("domain allows");
    s.transition(TransitionCommand::from_transition(
        r.id,
        &t,
        at,
        Actor::Member(r.member),
        "confirmed with key",
    ))
    .await
}

/// Members: create, read by id and address, unique addresses, password change.
pub async fn members_round_trip(s: S) {
    let m = fixtures::member(&*s, "Ann", Tier::Premium).await;
    assert_eq!(s.member(m.id).await.unwrap(), m);
    let upper = EmailAddress::parse(&m.email.as_str().to_uppercase()).unwrap();
    assert_eq!(s.member_by_email(&upper).await.unwrap().id, m.id);
    let card = m.payment.clone().expect("premium has a card");
    assert_eq!(
        (card.last4.as_str(), card.exp_month, card.exp_year),
        ("4242", 12, 2030)
    );
    let dup = NewMember {
        email: m.email.clone(),
        password_hash: "x".into(),
        display_name: "Dup".into(),
        tier: Tier::General,
        role: Role::Member,
        payment: None,
        created_at: now(),
    };
    assert_eq!(conflict(s.create_member(dup).await), Conflict::EmailTaken);
    s.set_password_hash(m.id, "new-hash").await.unwrap();
    assert_eq!(s.member(m.id).await.unwrap().password_hash, "new-hash");
    let g = fixtures::member(&*s, "Gus", Tier::General).await;
    assert!(g.payment.is_none());
    assert!(matches!(
        s.member(slotcast_domain::MemberId(999_999)).await,
        Err(StorageError::NotFound { .. })
    ));
}

/// The account page's writes: name and e-mail disclosure; a card on file upgrades a
/// general member and replaces a premium member's card.
pub async fn accounts_are_updated_and_upgraded(s: S) {
    let g = fixtures::member(&*s, "Gil", Tier::General).await;
    assert!(!g.show_email);
    let named = s.update_member(g.id, "Gil Lee", true).await.unwrap();
    assert_eq!(
        (named.display_name.as_str(), named.show_email),
        ("Gil Lee", true)
    );
    assert_eq!(s.member(g.id).await.unwrap(), named);
    let card = PaymentCard {
        brand: "mastercard".into(),
        last4: "4444".into(),
        exp_month: 3,
        exp_year: 2031,
        holder: "Gil Lee".into(),
    };
    let up = s.set_payment_card(g.id, &card, now()).await.unwrap();
    assert_eq!((up.tier, up.payment.as_ref()), (Tier::Premium, Some(&card)));
    let newer = PaymentCard {
        last4: "1881".into(),
        ..card
    };
    let again = s.set_payment_card(g.id, &newer, now()).await.unwrap();
    assert_eq!(again.payment, Some(newer));
    assert_eq!(s.member(g.id).await.unwrap(), again);
    let nobody = slotcast_domain::MemberId(999_999);
    assert!(matches!(
        s.update_member(nobody, "x", false).await,
        Err(StorageError::NotFound { .. })
    ));
}

/// Sessions: found while live, not after expiry or revocation.
pub async fn sessions_expire_and_revoke(s: S) {
    let m = fixtures::member(&*s, "Sam", Tier::General).await;
    let token = [7u8; 32];
    s.create_session(NewSession {
        token_hash: token,
        member: m.id,
        created_at: now(),
        expires_at: now() + SignedDuration::from_hours(1),
    })
    .await
    .unwrap();
    assert_eq!(s.session_member(&token, now()).await.unwrap().id, m.id);
    assert!(
        s.session_member(&token, now() + SignedDuration::from_hours(1))
            .await
            .is_err()
    );
    assert!(s.session_member(&[8u8; 32], now()).await.is_err());
    s.revoke_session(&token, now()).await.unwrap();
    assert!(s.session_member(&token, now()).await.is_err());
    // All of a member's sessions but one end together; another member's stay.
    let other = fixtures::member(&*s, "Other", Tier::General).await;
    for (hash, who) in [
        ([1u8; 32], m.id),
        ([2u8; 32], m.id),
        ([3u8; 32], m.id),
        ([4u8; 32], other.id),
    ] {
        s.create_session(NewSession {
            token_hash: hash,
            member: who,
            created_at: now(),
            expires_at: now() + SignedDuration::from_hours(1),
        })
        .await
        .unwrap();
    }
    let ended = s
        .revoke_member_sessions(m.id, Some(&[2u8; 32]), now())
        .await
        .unwrap();
    assert_eq!(ended, 2);
    assert!(s.session_member(&[1u8; 32], now()).await.is_err());
    assert_eq!(s.session_member(&[2u8; 32], now()).await.unwrap().id, m.id);
    assert!(s.session_member(&[3u8; 32], now()).await.is_err());
    assert_eq!(
        s.session_member(&[4u8; 32], now()).await.unwrap().id,
        other.id
    );
    assert_eq!(
        s.revoke_member_sessions(m.id, None, now()).await.unwrap(),
        1
    );
    assert!(s.session_member(&[2u8; 32], now()).await.is_err());
}

/// Channels: create, list, unique names.
pub async fn channels_round_trip(s: S) {
    let a = fixtures::channel(&*s, "small", 10, 100).await;
    let b = fixtures::channel(&*s, "large", 1000, 800).await;
    assert_eq!(s.channels().await.unwrap(), vec![a.clone(), b]);
    assert_eq!(s.channel(a.id).await.unwrap(), a);
    let dup = NewChannel {
        name: "small".into(),
        capacity: 1,
        bitrate_kbps: 1,
        tariff: a.tariff,
        stream_node: "x".into(),
    };
    assert_eq!(
        conflict(s.create_channel(dup).await),
        Conflict::ChannelNameTaken("small".into())
    );
    assert!(matches!(
        s.channel(slotcast_domain::ChannelId(424_242)).await,
        Err(StorageError::NotFound { .. })
    ));
}

/// A booking is stored whole: fields, schedule, claims, quota, log and key e-mail.
pub async fn booking_round_trip(s: S) {
    let m = fixtures::member(&*s, "Bo", Tier::Premium).await;
    let c = fixtures::channel(&*s, "medium", 100, 300).await;
    let mut nr = booking(&policy(), &c, m.id, ts("2026-06-10T12:00:00Z"), 3, now());
    nr.viewer_password = Some("sealed:abc".into());
    nr.invitees
        .push(EmailAddress::parse("second@example.org").unwrap());
    let r = s.create_reservation(nr.clone()).await.unwrap();
    assert_eq!(r.status, Status::AwaitingConfirmation);
    assert_eq!((r.member, r.channel, r.slots), (m.id, c.id, 3));
    assert_eq!(r.schedule, nr.schedule);
    assert_eq!(r.program, nr.program);
    assert_eq!(r.invitees, nr.invitees);
    assert_eq!(r.viewer_password.as_deref(), Some("sealed:abc"));
    assert_eq!(r.key_hash, nr.key_hash);
    assert_eq!(r.fee.minor, 900);
    assert_eq!(s.reservation(r.id).await.unwrap(), r);
    assert_eq!(s.reservation_by_slug(&r.slug).await.unwrap(), r);
    assert_eq!(s.reservation_by_key(&nr.key_hash).await.unwrap(), r);
    assert!(matches!(
        s.reservation_by_key(&fixtures::key().hash()).await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(s.reservations_of(m.id).await.unwrap(), vec![r.clone()]);
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        3
    );
    let log = s.transitions(r.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].from, log[0].to, log[0].actor),
        (None, Status::AwaitingConfirmation, Actor::Member(m.id))
    );
    assert_eq!(s.outbox_counts().await.unwrap().queued, 1);
    assert!(s.charge(r.id).await.unwrap().is_none());
    assert!(matches!(
        s.reservation_by_slug("nope").await,
        Err(StorageError::NotFound { .. })
    ));
}

/// An overlapping booking names the first taken slot and leaves no trace.
pub async fn double_booking_is_refused_and_writes_nothing(s: S) {
    let a = fixtures::member(&*s, "A", Tier::Premium).await;
    let b = fixtures::member(&*s, "B", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    s.create_reservation(booking(
        &policy(),
        &c,
        a.id,
        ts("2026-06-10T12:10:00Z"),
        2,
        now(),
    ))
    .await
    .unwrap();
    let e = conflict(
        s.create_reservation(booking(
            &policy(),
            &c,
            b.id,
            ts("2026-06-10T12:00:00Z"),
            3,
            now(),
        ))
        .await,
    );
    assert_eq!(
        e,
        Conflict::SlotTaken {
            channel: c.id,
            slot: ts("2026-06-10T12:10:00Z")
        }
    );
    assert!(s.reservations_of(b.id).await.unwrap().is_empty());
    assert_eq!(
        s.quota_used(b.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.outbox_counts().await.unwrap().queued, 1);
    // Adjacent slots and other channels are free.
    s.create_reservation(booking(
        &policy(),
        &c,
        b.id,
        ts("2026-06-10T12:30:00Z"),
        1,
        now(),
    ))
    .await
    .unwrap();
    let c2 = fixtures::channel(&*s, "ch2", 10, 100).await;
    s.create_reservation(booking(
        &policy(),
        &c2,
        b.id,
        ts("2026-06-10T12:10:00Z"),
        1,
        now(),
    ))
    .await
    .unwrap();
}

/// General members cannot book; unknown channels are not found.
pub async fn only_premium_members_book(s: S) {
    let g = fixtures::member(&*s, "G", Tier::General).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let e = conflict(
        s.create_reservation(booking(
            &policy(),
            &c,
            g.id,
            ts("2026-06-10T12:00:00Z"),
            1,
            now(),
        ))
        .await,
    );
    assert_eq!(e, Conflict::NotPremium);
    let p = fixtures::member(&*s, "P", Tier::Premium).await;
    let mut nr = booking(&policy(), &c, p.id, ts("2026-06-10T12:00:00Z"), 1, now());
    nr.channel = slotcast_domain::ChannelId(777_777);
    assert!(matches!(
        s.create_reservation(nr).await,
        Err(StorageError::NotFound { .. })
    ));
}

/// The quota is per month of the service's zone and names what is left.
pub async fn quota_is_enforced_per_month(s: S) {
    let berlin = slotcast_domain::jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let p = Policy {
        quota_slots_per_month: 4,
        time_zone: berlin,
        ..Policy::default()
    };
    let m = fixtures::member(&*s, "Q", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let n = ts("2026-03-01T00:00:00Z");
    // 21:40–22:20 UTC on 31 March 2026 is 23:40–00:20 in Berlin (CEST): 2 slots in March, 2 in April.
    s.create_reservation(booking(&p, &c, m.id, ts("2026-03-31T21:40:00Z"), 4, n))
        .await
        .unwrap();
    let mar = MonthKey::parse("2026-03").unwrap();
    let apr = MonthKey::parse("2026-04").unwrap();
    assert_eq!(s.quota_used(m.id, mar).await.unwrap(), 2);
    assert_eq!(s.quota_used(m.id, apr).await.unwrap(), 2);
    s.create_reservation(booking(&p, &c, m.id, ts("2026-03-10T10:00:00Z"), 2, n))
        .await
        .unwrap();
    let e = conflict(
        s.create_reservation(booking(&p, &c, m.id, ts("2026-03-11T10:00:00Z"), 1, n))
            .await,
    );
    assert_eq!(
        e,
        Conflict::QuotaExceeded(quota::QuotaExceeded {
            month: mar,
            used: 4,
            requested: 1,
            max: 4
        })
    );
    // The refused booking left its slot free.
    let other = fixtures::member(&*s, "O", Tier::Premium).await;
    s.create_reservation(booking(&p, &c, other.id, ts("2026-03-11T10:00:00Z"), 1, n))
        .await
        .unwrap();
    // April still has room for two.
    s.create_reservation(booking(&p, &c, m.id, ts("2026-04-11T10:00:00Z"), 2, n))
        .await
        .unwrap();
}

/// Confirmation: one pending charge of the fee, only once, only before the deadline.
pub async fn confirm_opens_the_charge_once_and_only_before_the_deadline(s: S) {
    let m = fixtures::member(&*s, "C", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 250).await;
    let r = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            2,
            now(),
        ))
        .await
        .unwrap();
    let at = r.schedule.confirm_by - SignedDuration::from_secs(1);
    let done = confirm(&s, &r, at).await.unwrap();
    assert_eq!(done.status, Status::Confirmed);
    let ch = s.charge(r.id).await.unwrap().unwrap();
    assert_eq!(
        (ch.amount.minor, ch.state, ch.member),
        (500, ChargeState::Pending, m.id)
    );
    assert_eq!(
        conflict(confirm(&s, &r, at).await),
        Conflict::WrongState {
            current: Status::Confirmed,
            expected: Status::AwaitingConfirmation
        }
    );

    // The database refuses a confirmation at the deadline even if the caller did not check.
    let r2 = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-11T12:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    let t = lifecycle::confirm(r2.status, &r2.schedule, now(), true).unwrap();
    let late = TransitionCommand::from_transition(
        r2.id,
        &t,
        r2.schedule.confirm_by,
        Actor::Member(m.id),
        "late",
    );
    assert_eq!(
        conflict(s.transition(late).await),
        Conflict::DeadlinePassed {
            confirm_by: r2.schedule.confirm_by
        }
    );
    assert_eq!(
        s.reservation(r2.id).await.unwrap().status,
        Status::AwaitingConfirmation
    );
    assert!(s.charge(r2.id).await.unwrap().is_none());
}

/// Expiry frees the slots for others and gives the quota back.
pub async fn expiry_frees_slots_and_quota(s: S) {
    let m = fixtures::member(&*s, "E", Tier::Premium).await;
    let other = fixtures::member(&*s, "F", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            3,
            now(),
        ))
        .await
        .unwrap();
    let t = lifecycle::expire(r.status, &r.schedule, r.schedule.confirm_by, false).unwrap();
    let mut cmd = TransitionCommand::from_transition(
        r.id,
        &t,
        r.schedule.confirm_by,
        Actor::System,
        "not confirmed by the deadline",
    );
    cmd.outbox.push(NewMessage {
        dedupe_key: format!("{}/expired", r.slug),
        to: m.email.clone(),
        subject: "expired".into(),
        text: "expired".into(),
        html: None,
        ics: None,
        reservation: Some(r.id),
    });
    let e = s.transition(cmd.clone()).await.unwrap();
    assert_eq!(e.status, Status::Expired);
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.outbox_counts().await.unwrap().queued, 2);
    // Running the same job again changes nothing (the scheduler may repeat after a crash).
    assert!(matches!(
        conflict(s.transition(cmd).await),
        Conflict::WrongState { .. }
    ));
    assert_eq!(s.outbox_counts().await.unwrap().queued, 2);
    s.create_reservation(booking(
        &policy(),
        &c,
        other.id,
        ts("2026-06-10T12:10:00Z"),
        1,
        now(),
    ))
    .await
    .unwrap();
    let log = s.transitions(r.id).await.unwrap();
    assert_eq!(
        log.last().map(|l| (l.from, l.to, l.actor)),
        Some((
            Some(Status::AwaitingConfirmation),
            Status::Expired,
            Actor::System
        ))
    );
}

/// Cancellation after confirmation is billed (or voided), completion finalizes or waives.
pub async fn cancellation_and_completion_settle_the_charge(s: S) {
    let m = fixtures::member(&*s, "K", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let p = policy();
    let mk = |start: &str| booking(&p, &c, m.id, ts(start), 1, now());
    let cases = [
        (
            "2026-06-10T10:00:00Z",
            ChargeAction::Finalize,
            ChargeState::Final,
        ),
        (
            "2026-06-10T11:00:00Z",
            ChargeAction::Void,
            ChargeState::Voided,
        ),
    ];
    for (start, action, state) in cases {
        let r = s.create_reservation(mk(start)).await.unwrap();
        let r = confirm(&s, &r, now()).await.unwrap();
        let cmd = TransitionCommand {
            reservation: r.id,
            from: Status::Confirmed,
            to: Status::Cancelled,
            at: now(),
            actor: Actor::Member(m.id),
            reason: "cancelled".into(),
            before_confirm_deadline: false,
            release_slots: true,
            charge: Some(action),
            outbox: Vec::new(),
            stats: None,
        };
        assert_eq!(s.transition(cmd).await.unwrap().status, Status::Cancelled);
        assert_eq!(s.charge(r.id).await.unwrap().unwrap().state, state);
    }
    for (start, outage, state) in [
        ("2026-06-10T12:00:00Z", false, ChargeState::Final),
        ("2026-06-10T13:00:00Z", true, ChargeState::Waived),
    ] {
        let r = s.create_reservation(mk(start)).await.unwrap();
        let r = confirm(&s, &r, now()).await.unwrap();
        let t = lifecycle::go_live(r.status, &r.schedule, r.schedule.start).unwrap();
        let r = s
            .transition(TransitionCommand::from_transition(
                r.id,
                &t,
                r.schedule.start,
                Actor::System,
                "publishing",
            ))
            .await
            .unwrap();
        assert_eq!(r.status, Status::Live);
        assert_eq!(s.program_stats(r.id).await.unwrap(), None);
        let t = lifecycle::complete(r.status, &r.schedule, r.schedule.connect_to, outage).unwrap();
        let stats = ProgramStats {
            peak_viewers: 7,
            unique_viewers: 9,
            viewer_minutes: 61,
            bytes_out: 5_000_000_000,
            seconds_on_air: 600,
            curve: slotcast_domain::ViewerCurve {
                step_seconds: 10,
                points: vec![1, 7, 3],
            },
        };
        let mut cmd = TransitionCommand::from_transition(
            r.id,
            &t,
            r.schedule.connect_to,
            Actor::System,
            "window closed",
        );
        cmd.stats = Some(stats.clone());
        let r = s.transition(cmd).await.unwrap();
        assert_eq!(r.status, Status::Completed);
        assert_eq!(s.charge(r.id).await.unwrap().unwrap().state, state);
        assert_eq!(s.program_stats(r.id).await.unwrap(), Some(stats));
    }
    // Completed programs keep their slots and their quota.
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        2
    );
}

/// `due` lists exactly the reservations whose instant has come, oldest first.
pub async fn scheduler_finds_due_work(s: S) {
    let m = fixtures::member(&*s, "D", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let a = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    let b = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T14:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    let due = |at| s.due(Status::AwaitingConfirmation, DueField::ConfirmBy, at, 10, 0);
    let jobs = [
        (Status::Confirmed, DueField::ConnectTo),
        (Status::AwaitingConfirmation, DueField::ConfirmBy),
    ];
    let early = a.schedule.confirm_by - SignedDuration::from_millis(1);
    assert!(!s.any_due(&jobs, early).await.unwrap());
    assert!(s.any_due(&jobs, a.schedule.confirm_by).await.unwrap());
    assert!(!s.any_due(&jobs[..1], a.schedule.confirm_by).await.unwrap());
    assert!(
        due(a.schedule.confirm_by - SignedDuration::from_millis(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        due(a.schedule.confirm_by)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![a.id]
    );
    assert_eq!(
        due(b.schedule.confirm_by)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert!(
        s.due(
            Status::Confirmed,
            DueField::ConfirmBy,
            b.schedule.confirm_by,
            10,
            0
        )
        .await
        .unwrap()
        .is_empty()
    );
    assert_eq!(
        s.due(
            Status::AwaitingConfirmation,
            DueField::ConnectTo,
            ts("2026-07-01T00:00:00Z"),
            1,
            0
        )
        .await
        .unwrap()
        .len(),
        1
    );
}

fn message(key: &str) -> NewMessage {
    NewMessage {
        dedupe_key: key.into(),
        to: EmailAddress::parse("to@example.org").unwrap(),
        subject: format!("subject {key}"),
        text: "text".into(),
        html: Some("<p>html</p>".into()),
        ics: Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into()),
        reservation: None,
    }
}

/// The outbox: de-duplication, leases, retries, give-up, counts.
pub async fn outbox_leases_retries_and_dedupes(s: S) {
    let t0 = now();
    assert_eq!(
        s.enqueue(vec![message("a"), message("b"), message("a")], t0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.enqueue(vec![message("b")], t0).await.unwrap(), 0);
    let got = s.claim_due(t0, 60_000, 10).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|m| m.message.dedupe_key.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(got[0].message, message("a"));
    // Leased: nobody else gets them until the lease runs out.
    assert!(s.claim_due(t0, 60_000, 10).await.unwrap().is_empty());
    s.mark_sent(got[0].id, t0).await.unwrap();
    s.mark_failed(
        got[1].id,
        "connection refused",
        Some(t0 + SignedDuration::from_secs(30)),
    )
    .await
    .unwrap();
    assert!(
        s.claim_due(t0 + SignedDuration::from_secs(29), 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_due(t0 + SignedDuration::from_secs(30), 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("connection refused"))
    );
    s.mark_failed(again[0].id, "mailbox unavailable", None)
        .await
        .unwrap();
    assert_eq!(
        s.outbox_counts().await.unwrap(),
        OutboxCounts {
            queued: 0,
            sent: 1,
            failed: 1
        }
    );
    // A crashed sender's lease runs out and the message comes back.
    s.enqueue(vec![message("c")], t0).await.unwrap();
    assert_eq!(s.claim_due(t0, 1_000, 10).await.unwrap().len(), 1);
    assert_eq!(
        s.claim_due(t0 + SignedDuration::from_secs(1), 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The operator's console: members found by a part of their address or name (wildcards
/// are plain text), a confirmed or final charge waived once and logged, failed e-mail
/// listed and queued again.
pub async fn the_operator_searches_members_waives_charges_and_retries_mail(s: S) {
    let ann = fixtures::member(&*s, "Ann_Lee", Tier::Premium).await;
    let bob = fixtures::member(&*s, "Bob", Tier::General).await;
    let found = s.search_members("ANN_l", 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ann.id]);
    assert!(
        s.search_members("%", 10).await.unwrap().is_empty(),
        "% is a plain character"
    );
    assert!(s.search_members("a\\", 10).await.unwrap().is_empty());
    let all = s.search_members("", 1).await.unwrap();
    assert_eq!(all.len(), 1, "the limit holds");
    let _ = bob;

    let c = fixtures::channel(&*s, "wv", 10, 100).await;
    let r = s
        .create_reservation(booking(
            &policy(),
            &c,
            ann.id,
            ts("2026-06-10T10:00:00Z"),
            2,
            now(),
        ))
        .await
        .unwrap();
    let nothing = s.waive_charge(r.id, now(), Actor::System, "x").await;
    assert!(
        matches!(conflict(nothing), Conflict::Charge(_)),
        "no charge before the confirmation"
    );
    let r = confirm(&s, &r, now()).await.unwrap();
    let waived = s
        .waive_charge(r.id, now(), Actor::Operator(bob.id), "the node failed")
        .await
        .unwrap();
    assert_eq!(waived.state, ChargeState::Waived);
    assert_eq!(
        s.charge(r.id).await.unwrap().unwrap().state,
        ChargeState::Waived
    );
    let again = s
        .waive_charge(r.id, now(), Actor::Operator(bob.id), "twice")
        .await;
    assert!(matches!(conflict(again), Conflict::Charge(_)), "once");

    let t0 = now();
    s.enqueue(vec![message("m1"), message("m2")], t0)
        .await
        .unwrap();
    let got = s.claim_due(t0, 60_000, 10).await.unwrap();
    s.mark_failed(got[0].id, "mailbox unavailable", None)
        .await
        .unwrap();
    let failed = s.outbox_messages(MessageState::Failed, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("mailbox unavailable"));
    assert!(s.retry_message(failed[0].id, t0).await.unwrap());
    assert!(
        !s.retry_message(failed[0].id, t0).await.unwrap(),
        "only a failed one"
    );
    assert!(
        s.outbox_messages(MessageState::Failed, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let queued = s
        .claim_due(t0 + SignedDuration::from_secs(61), 60_000, 10)
        .await
        .unwrap();
    assert!(queued.iter().any(|m| m.id == failed[0].id), "queued again");
}

/// 64 tasks booking overlapping slots, 20 rounds: every slot has at most one holder, a
/// slot everyone wants has exactly one, and every refusal names a slot a winner holds.
pub async fn concurrent_bookings_have_one_winner_per_slot(s: S) {
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    // This test is about slots: a member winning many rounds must not meet the quota.
    let p = Policy {
        quota_slots_per_month: 10_000,
        ..Policy::default()
    };
    let mut members = Vec::new();
    for i in 0..64 {
        members.push(
            fixtures::member(&*s, &format!("m{i}"), Tier::Premium)
                .await
                .id,
        );
    }
    for round in 0..20i64 {
        let base = ts("2026-06-10T00:00:00Z") + SignedDuration::from_hours(round);
        let mut tasks = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let s = s.clone();
            let (c, p) = (c.clone(), p.clone());
            let m = *m;
            // Everyone wants slot 2 of the hour; ranges of 1..=3 slots start at slot 0..=2.
            let first = (i % 3) as i64;
            let count = (3 - first) as u32 - (i % 2) as u32 * u32::from(first == 0);
            let start = base + SignedDuration::from_mins(10 * first);
            tasks.push(tokio::spawn(async move {
                let nr = booking(&p, &c, m, start, count.max(1), now());
                (start, count.max(1), s.create_reservation(nr).await)
            }));
        }
        let mut winners: Vec<SlotRange> = Vec::new();
        let mut refused = Vec::new();
        for t in tasks {
            let (start, count, res) = t.await.unwrap();
            match res {
                Ok(_) => winners.push(SlotRange::new(start, count, policy().slot).unwrap()),
                Err(StorageError::Conflict(Conflict::SlotTaken { slot, .. })) => refused.push(slot),
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        for (i, a) in winners.iter().enumerate() {
            for b in &winners[i + 1..] {
                assert!(!a.overlaps(b), "round {round}: {a} and {b} both won");
            }
        }
        let contested = base + SignedDuration::from_mins(20);
        let holders = winners
            .iter()
            .filter(|w| w.slot_starts().any(|s| s == contested))
            .count();
        assert_eq!(
            holders, 1,
            "round {round}: the slot everyone wanted has {holders} holders"
        );
        for slot in refused {
            assert!(
                winners.iter().any(|w| w.slot_starts().any(|s| s == slot)),
                "round {round}: refused for a free slot {slot}"
            );
        }
    }
}

/// One member racing 64 bookings of distinct slots gets exactly the quota.
pub async fn concurrent_quota_race_cannot_exceed_the_quota(s: S) {
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let m = fixtures::member(&*s, "racer", Tier::Premium).await;
    let p = Policy {
        quota_slots_per_month: 10,
        ..Policy::default()
    };
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (s, c, p) = (s.clone(), c.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let start = ts("2026-06-10T00:00:00Z") + SignedDuration::from_mins(10 * i);
            s.create_reservation(booking(&p, &c, m.id, start, 1, now()))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StorageError::Conflict(Conflict::QuotaExceeded(q))) => assert_eq!(q.max, 10),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        10
    );
    assert_eq!(s.reservations_of(m.id).await.unwrap().len(), 10);
}

/// Concurrent confirmations of one reservation: exactly one succeeds, one charge.
pub async fn concurrent_confirms_succeed_once(s: S) {
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let m = fixtures::member(&*s, "cc", Tier::Premium).await;
    for round in 0..5 {
        let start = ts("2026-06-10T00:00:00Z") + SignedDuration::from_hours(round);
        let r = s
            .create_reservation(booking(&policy(), &c, m.id, start, 1, now()))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move { confirm(&s, &r, now()).await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StorageError::Conflict(Conflict::WrongState { current, .. })) => {
                    assert_eq!(current, Status::Confirmed)
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(s.transitions(r.id).await.unwrap().len(), 2);
        assert_eq!(
            s.charge(r.id).await.unwrap().unwrap().state,
            ChargeState::Pending
        );
    }
}

/// A long pseudo-random history gives the same answers as the in-memory domain model.
pub async fn agrees_with_the_domain_model(s: S) {
    let p = Policy {
        quota_slots_per_month: 8,
        ..Policy::default()
    };
    let mut book = Book::new(p.clone());
    let mut channels = Vec::new();
    for i in 0..2 {
        let c = fixtures::channel(&*s, &format!("ch{i}"), 10, 100 + i).await;
        book.add_channel(c.id, c.tariff);
        channels.push(c);
    }
    let mut members = Vec::new();
    for i in 0..3 {
        let tier = if i == 2 { Tier::General } else { Tier::Premium };
        let m = fixtures::member(&*s, &format!("mm{i}"), tier).await;
        book.add_member(m.id, tier == Tier::Premium);
        members.push(m.id);
    }
    let mut ids: Vec<(ReservationId, ReservationId)> = Vec::new(); // (model, store)
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut at = ts("2026-06-01T00:03:00Z");
    for step in 0..300 {
        match rnd(10) {
            0..=4 => {
                let m = members[rnd(3) as usize];
                let c = &channels[rnd(2) as usize];
                let start = p.slot.ceil(at) + SignedDuration::from_mins(10 * rnd(60) as i64);
                let slots = 1 + rnd(4) as u32;
                let range = SlotRange::new(start, slots, p.slot).unwrap();
                let model = book.request(m, c.id, range, at);
                if matches!(model, Err(slotcast_domain::book::BookError::TooLate(_))) {
                    continue; // refused by the domain before the store is asked
                }
                let stored = s
                    .create_reservation(fixtures::booking(&p, c, m, start, slots, at))
                    .await;
                match (&model, &stored) {
                    (Ok(mid), Ok(r)) => ids.push((*mid, r.id)),
                    (Err(me), Err(StorageError::Conflict(se))) => {
                        let same = matches!(
                            (me, se),
                            (
                                slotcast_domain::book::BookError::SlotTaken { .. },
                                Conflict::SlotTaken { .. }
                            ) | (
                                slotcast_domain::book::BookError::Quota(_),
                                Conflict::QuotaExceeded(_)
                            ) | (
                                slotcast_domain::book::BookError::NotPremium,
                                Conflict::NotPremium
                            )
                        );
                        assert!(same, "step {step}: model {me} vs store {se}");
                        if let (
                            slotcast_domain::book::BookError::SlotTaken { slot: a },
                            Conflict::SlotTaken { slot: b, .. },
                        ) = (me, se)
                        {
                            assert_eq!(a, b, "step {step}");
                        }
                    }
                    other => panic!("step {step}: model and store disagree: {other:?}"),
                }
            }
            op @ 5..=7 if !ids.is_empty() => {
                let (mid, sid) = ids[rnd(ids.len() as u64) as usize];
                let r = s.reservation(sid).await.unwrap();
                let (model, decided) = if op < 7 {
                    (
                        book.confirm(mid, at),
                        lifecycle::confirm(r.status, &r.schedule, at, true),
                    )
                } else {
                    (
                        book.cancel(mid, at),
                        lifecycle::cancel(r.status, &r.schedule, at, &p, false),
                    )
                };
                let stored = match decided {
                    Ok(t) => s
                        .transition(TransitionCommand::from_transition(
                            sid,
                            &t,
                            at,
                            Actor::Member(r.member),
                            "member action",
                        ))
                        .await
                        .map(|_| ()),
                    Err(e) => Err(StorageError::Backend(
                        format!("refused by the domain: {e}").into(),
                    )),
                };
                assert_eq!(
                    model.is_ok(),
                    stored.is_ok(),
                    "step {step}: op {op}: {model:?} vs {stored:?}"
                );
            }
            _ => {
                at += SignedDuration::from_mins(1 + rnd(90) as i64);
                book.expire_due(at);
                book.complete_due(at);
                for r in s
                    .due(
                        Status::AwaitingConfirmation,
                        DueField::ConfirmBy,
                        at,
                        1000,
                        0,
                    )
                    .await
                    .unwrap()
                {
                    let t = lifecycle::expire(r.status, &r.schedule, at, false).unwrap();
                    s.transition(TransitionCommand::from_transition(
                        r.id,
                        &t,
                        at,
                        Actor::System,
                        "expired",
                    ))
                    .await
                    .unwrap();
                }
                for status in [Status::Confirmed, Status::Live] {
                    for r in s
                        .due(status, DueField::ConnectTo, at, 1000, 0)
                        .await
                        .unwrap()
                    {
                        let t = lifecycle::complete(r.status, &r.schedule, at, false).unwrap();
                        s.transition(TransitionCommand::from_transition(
                            r.id,
                            &t,
                            at,
                            Actor::System,
                            "completed",
                        ))
                        .await
                        .unwrap();
                    }
                }
            }
        }
    }
    assert!(
        ids.len() >= 30,
        "the history booked only {} times",
        ids.len()
    );
    let confirmed = book
        .reservations()
        .values()
        .filter(|r| r.charge.is_some())
        .count();
    assert!(
        confirmed >= 5,
        "the history confirmed only {confirmed} times"
    );
    for (mid, sid) in &ids {
        let model = &book.reservations()[mid];
        let stored = s.reservation(*sid).await.unwrap();
        assert_eq!(model.status, stored.status, "reservation {sid}");
        assert_eq!(model.fee, stored.fee);
        assert_eq!(model.charge, s.charge(*sid).await.unwrap().map(|c| c.state));
    }
    for m in &members {
        for month in ["2026-06", "2026-07"] {
            let month = MonthKey::parse(month).unwrap();
            assert_eq!(
                book.usage(*m, month),
                s.quota_used(*m, month).await.unwrap()
            );
        }
    }
}

async fn confirmed(s: &S, m: &Member, c: &Channel, start: &str, slots: u32) -> Reservation {
    let r = s
        .create_reservation(booking(&policy(), c, m.id, ts(start), slots, now()))
        .await
        .unwrap();
    confirm(s, &r, now()).await.unwrap()
}

/// A notice is queued once, however often the scheduler finds it due.
pub async fn notices_are_sent_once(s: S) {
    let m = fixtures::member(&*s, "N", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r = confirmed(&s, &m, &c, "2026-06-10T12:00:00Z", 2).await;
    let field = DueField::Notice(Notice::StartReminder);
    let at = r.schedule.start_reminder_at;
    assert!(
        s.due(
            Status::Confirmed,
            field,
            at - SignedDuration::from_secs(1),
            10,
            0
        )
        .await
        .unwrap()
        .is_empty()
    );
    assert_eq!(
        s.due(Status::Confirmed, field, at, 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    let before = s.outbox_counts().await.unwrap().queued;
    assert!(
        s.mark_notice(
            r.id,
            Notice::StartReminder,
            at,
            vec![message("start-reminder")]
        )
        .await
        .unwrap()
    );
    assert!(
        !s.mark_notice(
            r.id,
            Notice::StartReminder,
            at,
            vec![message("start-reminder-2")]
        )
        .await
        .unwrap()
    );
    assert_eq!(s.outbox_counts().await.unwrap().queued, before + 1);
    assert!(
        s.due(Status::Confirmed, field, at, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Other notices are independent.
    assert_eq!(
        s.due(
            Status::Confirmed,
            DueField::Notice(Notice::ExtensionOffer),
            r.schedule.end,
            10,
            0
        )
        .await
        .unwrap()
        .len(),
        1
    );
}

/// Changes replace the changeable fields, are logged, and stop at the end of the program.
pub async fn program_changes_are_logged_and_end_with_the_program(s: S) {
    let m = fixtures::member(&*s, "Ch", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r = confirmed(&s, &m, &c, "2026-06-10T12:00:00Z", 1).await;
    let mut program = r.program.clone();
    program.title = "New title".into();
    let cmd = ChangeCommand {
        reservation: r.id,
        expected: Status::Confirmed,
        program,
        viewer_password: Some("sealed:new".into()),
        invitees: vec![EmailAddress::parse("new@example.org").unwrap()],
        at: now(),
        actor: Actor::Member(m.id),
        reason: "changed: title, invitees".into(),
        outbox: vec![message("change-1")],
    };
    let changed = s.change_program(cmd.clone()).await.unwrap();
    assert_eq!(changed.program.title, "New title");
    assert_eq!(changed.viewer_password.as_deref(), Some("sealed:new"));
    assert_eq!(changed.invitees.len(), 1);
    assert_eq!(
        (changed.schedule, changed.slots, changed.channel),
        (r.schedule, r.slots, r.channel)
    );
    let log = s.transitions(r.id).await.unwrap();
    assert_eq!(
        log.last().map(|l| (l.from, l.to, l.reason.as_str())),
        Some((
            Some(Status::Confirmed),
            Status::Confirmed,
            "changed: title, invitees"
        ))
    );
    let wrong = ChangeCommand {
        expected: Status::AwaitingConfirmation,
        ..cmd.clone()
    };
    assert!(matches!(
        conflict(s.change_program(wrong).await),
        Conflict::WrongState { .. }
    ));
    let late = ChangeCommand {
        at: r.schedule.end,
        ..cmd
    };
    assert_eq!(
        conflict(s.change_program(late).await),
        Conflict::Ended {
            end: r.schedule.end
        }
    );
}

/// An extension claims the next slots, takes quota, moves the end and raises the charge.
pub async fn extension_claims_the_following_slots(s: S) {
    let p = Policy {
        quota_slots_per_month: 4,
        ..Policy::default()
    };
    let m = fixtures::member(&*s, "X", Tier::Premium).await;
    let other = fixtures::member(&*s, "Y", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r = confirmed(&s, &m, &c, "2026-06-10T12:00:00Z", 2).await;
    let extend = |r: &Reservation, extra: u32| {
        let range = SlotRange::new(r.schedule.start, r.slots, p.slot).unwrap();
        let added = range.following(extra).unwrap();
        let schedule = slotcast_domain::Schedule {
            end: added.end(),
            connect_to: added.end() + p.connect_after,
            extension_offer_at: added.end() - p.extension_offer_before,
            ..r.schedule
        };
        ExtendCommand {
            reservation: r.id,
            expected: Status::Confirmed,
            claims: added.slot_starts().collect(),
            quota: quota::slots_by_month(&added, &p.time_zone),
            quota_max: p.quota_slots_per_month,
            slots: r.slots + extra,
            schedule,
            fee: slotcast_domain::Money::fee(c.tariff, r.slots + extra).unwrap(),
            at: r.schedule.extension_offer_at,
            actor: Actor::Member(m.id),
            outbox: Vec::new(),
        }
    };
    let e = s.extend(extend(&r, 1)).await.unwrap();
    assert_eq!(
        (e.slots, e.schedule.end, e.fee.minor),
        (3, ts("2026-06-10T12:30:00Z"), 300)
    );
    assert_eq!(e.schedule.connect_to, ts("2026-06-10T12:33:00Z"));
    assert_eq!(s.charge(r.id).await.unwrap().unwrap().amount.minor, 300);
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        3
    );
    // Quota: only one slot is left this month.
    let q = conflict(s.extend(extend(&e, 2)).await);
    assert!(matches!(q, Conflict::QuotaExceeded(_)), "{q:?}");
    // Taken slots refuse the extension and leave the reservation as it was.
    s.create_reservation(booking(
        &policy(),
        &c,
        other.id,
        ts("2026-06-10T12:30:00Z"),
        1,
        now(),
    ))
    .await
    .unwrap();
    assert!(matches!(
        conflict(s.extend(extend(&e, 1)).await),
        Conflict::SlotTaken { .. }
    ));
    let after = s.reservation(r.id).await.unwrap();
    assert_eq!(
        (after.slots, after.schedule.end, after.fee.minor),
        (3, e.schedule.end, 300)
    );
    assert_eq!(
        s.quota_used(m.id, MonthKey::parse("2026-06").unwrap())
            .await
            .unwrap(),
        3
    );
    // A stale extension (computed from the old end) is refused.
    assert!(s.extend(extend(&r, 1)).await.is_err());
}

/// Wrong keys are counted and lock confirmation for a while.
pub async fn wrong_keys_lock_confirmation(s: S) {
    let m = fixtures::member(&*s, "W", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    assert_eq!((r.key_failures, r.key_locked_until), (0, None));
    for i in 1..=4 {
        let after = s.record_key_failure(r.id, now(), 5, 60_000).await.unwrap();
        assert_eq!((after.key_failures, after.key_locked_until), (i, None));
    }
    let locked = s.record_key_failure(r.id, now(), 5, 60_000).await.unwrap();
    assert_eq!(locked.key_failures, 5);
    assert_eq!(
        locked.key_locked_until,
        Some(now() + SignedDuration::from_secs(60))
    );
}

/// Claims and reservations by time window; charges per member and month.
pub async fn listings_by_time_and_invoices(s: S) {
    let a = fixtures::member(&*s, "La", Tier::Premium).await;
    let b = fixtures::member(&*s, "Lb", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let r1 = confirmed(&s, &a, &c, "2026-06-10T23:50:00Z", 2).await;
    let r2 = confirmed(&s, &b, &c, "2026-06-11T10:00:00Z", 1).await;
    let r3 = s
        .create_reservation(booking(
            &policy(),
            &c,
            a.id,
            ts("2026-07-01T10:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    let day = |d: &str| {
        (
            ts(&format!("{d}T00:00:00Z")),
            ts(&format!("{d}T00:00:00Z")) + SignedDuration::from_hours(24),
        )
    };
    let (from, to) = day("2026-06-11");
    let claims = s.claims_between(from, to).await.unwrap();
    assert_eq!(
        claims
            .iter()
            .map(|c| (c.slot, c.reservation))
            .collect::<Vec<_>>(),
        vec![
            (ts("2026-06-11T00:00:00Z"), r1.id),
            (ts("2026-06-11T10:00:00Z"), r2.id)
        ]
    );
    let ids: Vec<_> = s
        .reservations_between(from, to)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![r1.id, r2.id]);
    let (june, july) = (ts("2026-06-01T00:00:00Z"), ts("2026-07-01T00:00:00Z"));
    let all = s.charges_between(None, june, july).await.unwrap();
    assert_eq!(
        all.iter()
            .map(|l| (l.charge.reservation, l.charge.amount.minor))
            .collect::<Vec<_>>(),
        vec![(r1.id, 200), (r2.id, 100)]
    );
    let mine = s.charges_between(Some(a.id), june, july).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (
            mine[0].slots,
            mine[0].title.as_str(),
            mine[0].start,
            mine[0].channel
        ),
        (2, "Test program", r1.schedule.start, c.id)
    );
    // Unconfirmed bookings have no charge.
    assert!(
        s.charges_between(Some(a.id), july, ts("2026-08-01T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.reservations_between(july, ts("2026-08-01T00:00:00Z"))
            .await
            .unwrap()[0]
            .id,
        r3.id
    );
}

/// Operators change channel settings; names stay unique.
pub async fn channels_can_be_updated(s: S) {
    let a = fixtures::channel(&*s, "a", 10, 100).await;
    fixtures::channel(&*s, "b", 10, 100).await;
    let mut n = NewChannel {
        name: "a2".into(),
        capacity: 20,
        bitrate_kbps: 3000,
        tariff: a.tariff,
        stream_node: "node-2".into(),
    };
    let u = s.update_channel(a.id, n.clone()).await.unwrap();
    assert_eq!(
        (
            u.name.as_str(),
            u.capacity,
            u.bitrate_kbps,
            u.stream_node.as_str()
        ),
        ("a2", 20, 3000, "node-2")
    );
    n.name = "b".into();
    assert_eq!(
        conflict(s.update_channel(a.id, n.clone()).await),
        Conflict::ChannelNameTaken("b".into())
    );
    assert!(matches!(
        s.update_channel(slotcast_domain::ChannelId(99_999), n)
            .await,
        Err(StorageError::NotFound { .. })
    ));
}

/// The operator's featured programs: marking twice keeps one, unmarking removes, newest
/// first.
pub async fn pickups_are_marked_and_unmarked(s: S) {
    let m = fixtures::member(&*s, "Pia", Tier::Premium).await;
    let c = fixtures::channel(&*s, "pickups", 100, 300).await;
    let a = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    let b = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T13:00:00Z"),
            1,
            now(),
        ))
        .await
        .unwrap();
    assert!(s.pickups().await.unwrap().is_empty());
    s.set_pickup(a.id, true, now()).await.unwrap();
    s.set_pickup(b.id, true, now() + SignedDuration::from_secs(1))
        .await
        .unwrap();
    s.set_pickup(a.id, true, now() + SignedDuration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        s.pickups().await.unwrap(),
        vec![b.id, a.id],
        "marked twice stays where it was"
    );
    s.set_pickup(b.id, false, now()).await.unwrap();
    s.set_pickup(b.id, false, now()).await.unwrap();
    assert_eq!(s.pickups().await.unwrap(), vec![a.id]);
}

/// Due work listed with a lease is not listed again until it is released or the lease
/// runs out, and concurrent listings never share a reservation.
pub async fn scheduler_work_is_leased(s: S) {
    let m = fixtures::member(&*s, "L", Tier::Premium).await;
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let mut ids = Vec::new();
    for h in 0..6 {
        let r = s
            .create_reservation(booking(
                &policy(),
                &c,
                m.id,
                ts("2026-06-10T12:00:00Z") + SignedDuration::from_hours(h),
                1,
                now(),
            ))
            .await
            .unwrap();
        ids.push(r.id);
    }
    let at = ts("2026-06-11T00:00:00Z");
    let due = |at, limit| {
        let s = s.clone();
        async move {
            s.due(
                Status::AwaitingConfirmation,
                DueField::ConfirmBy,
                at,
                limit,
                10_000,
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
        }
    };
    let (a, b) = tokio::join!(due(at, 3), due(at, 3));
    let mut both: Vec<_> = a.iter().chain(&b).copied().collect();
    both.sort();
    assert_eq!(both, ids, "two listings share the work: {a:?} {b:?}");
    assert!(
        due(at, 10).await.is_empty(),
        "leased work is not listed again"
    );
    s.release_work(ids[4]).await.unwrap();
    assert_eq!(due(at, 10).await, vec![ids[4]]);
    let later = at + SignedDuration::from_secs(10);
    assert_eq!(due(later, 10).await, ids, "the leases ran out");
}

/// A channel is on one node at a time: the placement is renewed by its node, taken over by
/// another only when the lease ran out, and its epoch grows when it moves.
pub async fn channels_are_placed_on_one_node_at_a_time(s: S) {
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let m = fixtures::member(&*s, "P", Tier::Premium).await;
    let at = now();
    s.put_node("origin", "hash-1", at).await.unwrap();
    s.put_node("standby", "hash-2", at).await.unwrap();
    s.put_node("origin", "hash-3", at).await.unwrap();
    assert_eq!(s.node_credential("origin").await.unwrap(), "hash-3");
    assert!(matches!(
        s.node_credential("nobody").await,
        Err(StorageError::NotFound { .. })
    ));
    let hb = |name| NodeHeartbeat {
        name,
        play_url: "http://node:8081",
        ingest_url: "rtmp://node:1935/live",
        report: "{\"viewers\":{}}",
    };
    s.renew_node(hb("origin"), at, 5_000).await.unwrap();
    assert!(matches!(
        s.renew_node(hb("nobody"), at, 5_000).await,
        Err(StorageError::NotFound { .. })
    ));
    let nodes = s.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (
            nodes[0].name.as_str(),
            nodes[0].play_url.as_str(),
            nodes[0].lease_until
        ),
        (
            "origin",
            "http://node:8081",
            at + SignedDuration::from_secs(5)
        )
    );

    let claim = |node: &'static str, at| {
        let s = s.clone();
        async move {
            s.claim_placement(c.id, node, at, 5_000)
                .await
                .unwrap()
                .map(|p| (p.node, p.epoch))
        }
    };
    assert_eq!(claim("origin", at).await, Some(("origin".into(), 1)));
    assert_eq!(claim("standby", at).await, None, "the origin's lease holds");
    let renewed = at + SignedDuration::from_secs(4);
    assert_eq!(claim("origin", renewed).await, Some(("origin".into(), 1)));
    assert_eq!(
        claim("standby", at + SignedDuration::from_secs(8)).await,
        None,
        "renewed until 9 s"
    );
    let lapsed = at + SignedDuration::from_secs(9);
    assert_eq!(claim("standby", lapsed).await, Some(("standby".into(), 2)));
    assert_eq!(
        claim("origin", lapsed).await,
        None,
        "the stale node is refused"
    );
    let p = s.placements().await.unwrap();
    assert_eq!(
        (p.len(), p[0].node.as_str(), p[0].epoch, p[0].lease_until),
        (1, "standby", 2, lapsed + SignedDuration::from_secs(5))
    );

    // Totals handed over by a node wait for the completion.
    let r = s
        .create_reservation(booking(
            &policy(),
            &c,
            m.id,
            ts("2026-06-10T12:00:00Z"),
            1,
            at,
        ))
        .await
        .unwrap();
    let mut totals = ProgramStats {
        peak_viewers: 3,
        unique_viewers: 5,
        viewer_minutes: 40,
        bytes_out: 1 << 33,
        seconds_on_air: 600,
        curve: slotcast_domain::ViewerCurve {
            step_seconds: 5,
            points: vec![1, 3, 2],
        },
    };
    s.put_node_totals(r.id, "origin", &totals).await.unwrap();
    totals.peak_viewers = 4;
    s.put_node_totals(r.id, "origin", &totals).await.unwrap();
    let edge = ProgramStats {
        peak_viewers: 1,
        ..ProgramStats::default()
    };
    s.put_node_totals(r.id, "edge", &edge).await.unwrap();
    let mut stored = s.node_totals().await.unwrap();
    stored.sort_by_key(|(_, t)| t.peak_viewers);
    assert_eq!(stored, vec![(r.id, edge), (r.id, totals)]);
    s.drop_node_totals(r.id).await.unwrap();
    assert!(s.node_totals().await.unwrap().is_empty());

    // The program's node went away: one outage is open until it is on air again.
    let t = |secs| lapsed + SignedDuration::from_secs(secs);
    assert!(s.outages(r.id).await.unwrap().is_empty());
    s.close_outages(r.id, t(1)).await.unwrap();
    s.open_outage(r.id, "origin", t(2)).await.unwrap();
    s.open_outage(r.id, "origin", t(3)).await.unwrap();
    assert_eq!(
        s.outages(r.id).await.unwrap(),
        vec![Outage {
            node: "origin".into(),
            from: t(2),
            to: None
        }],
        "an open outage is not opened twice"
    );
    s.close_outages(r.id, t(9)).await.unwrap();
    s.close_outages(r.id, t(10)).await.unwrap();
    s.open_outage(r.id, "standby", t(20)).await.unwrap();
    let both = s.outages(r.id).await.unwrap();
    assert_eq!(
        both.iter()
            .map(|o| (o.node.as_str(), o.from, o.to))
            .collect::<Vec<_>>(),
        vec![("origin", t(2), Some(t(9))), ("standby", t(20), None)]
    );
}

/// Nodes racing for a free channel: exactly one wins, and the epoch moves once.
pub async fn concurrent_placement_claims_have_one_winner(s: S) {
    let c = fixtures::channel(&*s, "ch", 10, 100).await;
    let at = now();
    for n in 0..8 {
        s.put_node(&format!("node-{n}"), "h", at).await.unwrap();
    }
    let mut last: Option<Placement> = None;
    for round in 0..3i64 {
        let at = at + SignedDuration::from_secs(10 * round);
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.claim_placement(c.id, &format!("node-{n}"), at, 5_000)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            won.extend(t.await.unwrap());
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        let epoch = last
            .as_ref()
            .map_or(1, |l| l.epoch + i64::from(l.node != won[0].node));
        assert_eq!(won[0].epoch, epoch, "round {round}");
        last = won.pop();
    }
}

/// However many ask at once, a channel's seats go to at most `capacity` holders; the node
/// renews them in batches, and leaving or a lapsed lease frees them.
pub async fn seats_never_exceed_the_capacity(s: S) {
    let c = fixtures::channel(&*s, "ch", 5, 100).await;
    let at = now();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.take_seat(c.id, &format!("grant-{i}"), 5, at, 30_000)
                    .await
                    .unwrap()
                    .map(|seat| (seat, i))
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.unwrap());
    }
    won.sort();
    assert_eq!(
        won.iter().map(|(seat, _)| *seat).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "{won:?}"
    );
    assert_eq!(s.seats_taken(c.id, at).await.unwrap(), 5);
    let holder = |i: usize| format!("grant-{}", won[i].1);
    assert_eq!(
        s.take_seat(c.id, "late", 5, at, 30_000).await.unwrap(),
        None
    );

    // The node serves three of them; the two it never served keep their grant's lease.
    let served = [holder(0), holder(1), holder(2)];
    s.hold_seats(c.id, "origin", &served, &[], at, 60_000)
        .await
        .unwrap();
    // One viewer left: its seat is free at once (at the next heartbeat, a moment later);
    // so is the seat of one who left before the node ever reported it.
    let served = [holder(0), holder(2)];
    let next = at + SignedDuration::from_millis(1);
    s.hold_seats(c.id, "origin", &served, &[holder(4)], next, 60_000)
        .await
        .unwrap();
    assert_eq!(s.seats_taken(c.id, at).await.unwrap(), 3);
    // A node with a huge audience renews in one call: more holders than one statement
    // takes parameters.
    let mut many: Vec<String> = (0..70_000).map(|i| format!("elsewhere-{i}")).collect();
    many.extend(served.iter().cloned());
    s.hold_seats(c.id, "origin", &many, &[], next, 60_000)
        .await
        .unwrap();
    assert_eq!(s.seats_taken(c.id, at).await.unwrap(), 3);
    let take = |h: &'static str| s.take_seat(c.id, h, 5, at, 30_000);
    let mut freed = vec![take("late").await.unwrap(), take("later").await.unwrap()];
    freed.sort();
    assert_eq!(
        freed,
        vec![Some(1), Some(4)],
        "the freed seats are taken again"
    );
    // The grants' own leases run out at 30 s, the served ones at 60 s.
    let later = at + SignedDuration::from_secs(31);
    assert_eq!(s.seats_taken(c.id, later).await.unwrap(), 2);
    let much_later = at + SignedDuration::from_secs(61);
    assert_eq!(s.seats_taken(c.id, much_later).await.unwrap(), 0);
    // A larger capacity makes more seats; a smaller one uses the first seats only.
    for i in 0..7 {
        let seat = s
            .take_seat(c.id, &format!("g{i}"), 7, much_later, 1_000)
            .await;
        assert!(seat.unwrap().is_some());
    }
    let small = s.take_seat(
        c.id,
        "x",
        3,
        much_later + SignedDuration::from_secs(2),
        1_000,
    );
    assert!(matches!(small.await.unwrap(), Some(n) if n < 3));
}

/// Failures counted at once (as replicas do) all count; a count runs out from its first or
/// its last failure; a success clears it; idle keys are pruned.
pub async fn throttle_counts_are_shared_and_run_out(s: S) {
    let at = now();
    let secs = |n| at + SignedDuration::from_secs(n);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.throttle_fail("login:10.0.0.1", at, 60_000, CountFrom::First)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let c = s.throttle_count("login:10.0.0.1").await.unwrap().unwrap();
    assert_eq!((c.failures, c.first, c.last), (20, at, at));
    // A fixed window: counted from the first failure, whatever came since.
    let c = s
        .throttle_fail("login:10.0.0.1", secs(59), 60_000, CountFrom::First)
        .await
        .unwrap();
    assert_eq!((c.failures, c.first, c.last), (21, at, secs(59)));
    let c = s
        .throttle_fail("login:10.0.0.1", secs(60), 60_000, CountFrom::First)
        .await
        .unwrap();
    assert_eq!((c.failures, c.first), (1, secs(60)), "a new window");
    // From the last failure: failures that keep coming keep the count.
    for (t, want) in [(0, 1), (50, 2), (100, 3), (161, 1)] {
        let c = s
            .throttle_fail("pair", secs(t), 60_000, CountFrom::Last)
            .await
            .unwrap();
        assert_eq!(c.failures, want, "at {t} s");
    }
    s.throttle_clear("pair").await.unwrap();
    assert_eq!(s.throttle_count("pair").await.unwrap(), None);
    s.throttle_fail("old", at, 60_000, CountFrom::Last)
        .await
        .unwrap();
    assert_eq!(
        s.prune_throttles(secs(30)).await.unwrap(),
        1,
        "only the idle key"
    );
    assert!(s.throttle_count("login:10.0.0.1").await.unwrap().is_some());
}
