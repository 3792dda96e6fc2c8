//! Members, channels and bookings for tests and benchmarks, built through the domain
//! rules exactly as the center builds them.

use slotcast_domain::request::ProgramInfo;
use slotcast_domain::{
    ChannelId, Currency, EmailAddress, MemberId, Money, Policy, ReservationId, ReservationKey,
    Schedule, SlotRange, Timestamp, Visibility, quota,
};
use slotcast_store::{
    Channel, Member, NewChannel, NewMember, NewMessage, NewReservation, PaymentCard, Role, Store,
    Tier,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed "now" that tests start from: 2026-06-01T00:00:00Z.
pub fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("valid")
}

/// Parses an RFC 3339 instant.
pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("valid timestamp")
}

fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Registers a member of `tier` with a unique address built from `label`.
pub async fn member(store: &dyn Store, label: &str, tier: Tier) -> Member {
    let email = EmailAddress::parse(&format!("{label}-{}@example.org", next())).expect("valid");
    store
        .create_member(NewMember {
            email,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            display_name: label.into(),
            tier,
            role: Role::Member,
            payment: (tier == Tier::Premium).then(|| PaymentCard {
                brand: "visa".into(),
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030,
                holder: label.into(),
            }),
            created_at: now(),
        })
        .await
        .expect("create member")
}

/// Creates a channel with a tariff in JPY.
pub async fn channel(store: &dyn Store, name: &str, capacity: u32, tariff: i64) -> Channel {
    store
        .create_channel(NewChannel {
            name: name.into(),
            capacity,
            bitrate_kbps: 2500,
            tariff: Money::new(tariff, Currency::parse("JPY").expect("valid")),
            stream_node: "local".into(),
        })
        .await
        .expect("create channel")
}

/// A fresh reservation key (deterministic bytes from a counter).
pub fn key() -> ReservationKey {
    let mut bytes = [0u8; slotcast_domain::key::KEY_BYTES];
    bytes[..8].copy_from_slice(&next().to_be_bytes());
    bytes[8..16].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
    ReservationKey::from_entropy(bytes)
}

/// The booking of `slots` slots from `start` on `channel` by `member`, accepted at `now`
/// under `policy`, with the key e-mail queued.
pub fn booking(
    policy: &Policy,
    channel: &Channel,
    member: MemberId,
    start: Timestamp,
    slots: u32,
    now: Timestamp,
) -> NewReservation {
    booking_on(
        policy,
        channel.id,
        channel.tariff,
        member,
        start,
        slots,
        now,
    )
}

/// [`booking`] for a channel known only by id and tariff.
pub fn booking_on(
    policy: &Policy,
    channel: ChannelId,
    tariff: Money,
    member: MemberId,
    start: Timestamp,
    slots: u32,
    now: Timestamp,
) -> NewReservation {
    let range = SlotRange::new(start, slots, policy.slot).expect("aligned start");
    let schedule = Schedule::compute(&range, now, policy).expect("bookable");
    let slug = format!("p{:020}", next());
    NewReservation {
        id: ReservationId(
            i64::try_from(next() * 7_919 + u64::from(std::process::id()) * 1_000_003)
                .expect("small"),
        ),
        member,
        channel,
        slots,
        claims: range.slot_starts().collect(),
        quota: quota::slots_by_month(&range, &policy.time_zone),
        quota_max: policy.quota_slots_per_month,
        schedule,
        visibility: Visibility::Public,
        program: ProgramInfo {
            title: "Test program".into(),
            genre: Some("music".into()),
            outline: Some("An outline".into()),
            detail: None,
            show_email: false,
            web_url: None,
        },
        viewer_password: None,
        invitees: vec![EmailAddress::parse("friend@example.org").expect("valid")],
        key_hash: key().hash(),
        slug: slug.clone(),
        fee: Money::fee(tariff, slots).expect("small fee"),
        invited_at_acceptance: false,
        created_at: now,
        outbox: vec![NewMessage {
            dedupe_key: format!("{slug}/key"),
            to: EmailAddress::parse("broadcaster@example.org").expect("valid"),
            subject: "Your reservation key".into(),
            text: "key".into(),
            html: None,
            ics: None,
            reservation: None,
        }],
    }
}
