//! The broadcaster's reservations: quote, book, confirm with the key, re-issue the
//! connection profile, change, cancel, extend. Every decision is the domain's; the store
//! applies it atomically together with the e-mails it causes.

use super::{ending_mails, mail_context, next_sequence, viewer_password};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mail::{self, BroadcasterMail};
use crate::profile;
use crate::secrets;
use crate::state::Center;
use slotcast_domain::change::{CurrentProgram, ProgramChange, ProgramChangeDraft};
use slotcast_domain::charge::ChargeAction;
use slotcast_domain::lifecycle::{self, Event, ExtensionFacts, ExtensionRefused, InviteeNotice};
use slotcast_domain::request::ReservationDraft;
use slotcast_domain::{
    ChannelId, Money, ReservationId, ReservationKey, Schedule, SlotRange, Status, Timestamp, quota,
};
use slotcast_store::{
    Actor, ChangeCommand, Channel, ExtendCommand, Member, NewMessage, NewReservation, Reservation,
    StorageError, Tier, TransitionCommand,
};
use std::sync::Arc;

/// A channel by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRef {
    /// Its id.
    Id(ChannelId),
    /// Its name.
    Name(String),
}

/// What a booking asks for.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    /// Where.
    pub channel: ChannelRef,
    /// When and what, as typed.
    pub draft: ReservationDraft,
}

/// A validated booking, before it is stored.
struct Planned {
    new: NewReservation,
    key: ReservationKey,
    channel: Channel,
    viewer_password: Option<String>,
}

async fn resolve_channel(c: &Center, r: &ChannelRef) -> ApiResult<Option<Channel>> {
    // Kept in the listings: a channel edit changes them.
    let all = c.listings.channels(&*c.store).await?;
    Ok(all
        .iter()
        .find(|ch| match r {
            ChannelRef::Id(id) => ch.id == *id,
            ChannelRef::Name(n) => ch.name == *n,
        })
        .cloned())
}

async fn plan(c: &Center, m: &Member, req: BookingRequest) -> ApiResult<Planned> {
    if m.tier != Tier::Premium {
        return Err(ApiError::new(
            ErrorCode::PremiumRequired,
            "only premium members can book airtime",
        ));
    }
    let now = c.clock.now();
    let policy = &c.settings.policy;
    let channel = resolve_channel(c, &req.channel).await?;
    let (valid, channel) = match (req.draft.validate(policy, now), channel) {
        (Ok(v), Some(ch)) => (v, ch),
        (v, ch) => {
            let mut errs = v.err().unwrap_or_default();
            if ch.is_none() {
                errs.add("channel", "no such channel; see GET /api/v1/channels");
            }
            return Err(errs.into());
        }
    };
    let fee = Money::fee(channel.tariff, valid.range.count())
        .map_err(|e| ApiError::field("slots", e.to_string()))?;
    let key = ReservationKey::from_entropy(secrets::random_bytes());
    let new = NewReservation {
        id: ReservationId(secrets::random_id()),
        member: m.id,
        channel: channel.id,
        slots: valid.range.count(),
        claims: valid.range.slot_starts().collect(),
        quota: quota::slots_by_month(&valid.range, &policy.time_zone),
        quota_max: policy.quota_slots_per_month,
        schedule: valid.schedule,
        visibility: valid.visibility,
        program: valid.program,
        viewer_password: valid.viewer_password.as_deref().map(|p| c.secrets.seal(p)),
        invitees: valid.invitees,
        key_hash: key.hash(),
        slug: secrets::new_slug(),
        fee,
        invited_at_acceptance: c.settings.invite_at_acceptance,
        created_at: now,
        outbox: Vec::new(),
    };
    Ok(Planned {
        new,
        key,
        channel,
        viewer_password: valid.viewer_password,
    })
}

/// The reservation a booking will become (for rendering its e-mails in the same
/// transaction).
fn as_stored(n: &NewReservation) -> Reservation {
    Reservation {
        id: n.id,
        member: n.member,
        channel: n.channel,
        slots: n.slots,
        status: Status::AwaitingConfirmation,
        schedule: n.schedule,
        visibility: n.visibility,
        program: n.program.clone(),
        viewer_password: n.viewer_password.clone(),
        invitees: n.invitees.clone(),
        key_hash: n.key_hash,
        slug: n.slug.clone(),
        fee: n.fee,
        invited_at_acceptance: n.invited_at_acceptance,
        key_failures: 0,
        key_locked_until: None,
        created_at: n.created_at,
        updated_at: n.created_at,
    }
}

/// Fee, deadlines and availability of a booking, without booking it.
#[derive(Debug, Clone)]
pub struct Quote {
    /// tariff × slots.
    pub fee: Money,
    /// Its deadlines and windows.
    pub schedule: Schedule,
    /// Whether every slot is free now.
    pub available: bool,
    /// Slots left in the quota of the months it touches (the least of them).
    pub quota_left: u32,
}

/// Prices a booking without making it.
pub async fn quote(c: &Center, m: &Member, req: BookingRequest) -> ApiResult<Quote> {
    let p = plan(c, m, req).await?;
    let s = p.new.schedule;
    let taken = c
        .store
        .claims_between(s.start, s.end)
        .await?
        .iter()
        .any(|claim| claim.channel == p.channel.id);
    let mut left = u32::MAX;
    for (month, _) in &p.new.quota {
        let used = c.store.quota_used(m.id, *month).await?;
        left = left.min(p.new.quota_max.saturating_sub(used));
    }
    Ok(Quote {
        fee: p.new.fee,
        schedule: s,
        available: !taken,
        quota_left: left,
    })
}

/// Books: the slots are held, the reservation key is e-mailed (never returned), and
/// invitees are told already when the service is set so.
pub async fn book(c: &Center, m: &Member, req: BookingRequest) -> ApiResult<Reservation> {
    let Planned {
        mut new,
        key,
        channel,
        viewer_password,
    } = plan(c, m, req).await?;
    let stored = as_stored(&new);
    let t = lifecycle::accept(new.invited_at_acceptance);
    let ctx = mail_context(c, &stored, &channel, m, viewer_password.as_deref(), 0);
    new.outbox.push(mail::key_message(&ctx, &key));
    if t.events
        .contains(&Event::NotifyInvitees(InviteeNotice::Invitation))
    {
        new.outbox
            .extend(mail::invitee_messages(&ctx, InviteeNotice::Invitation, &[]));
    }
    let queued = new.outbox.len() as u64;
    let r = c.store.create_reservation(new).await?;
    c.listings_changed();
    crate::metrics::event("bookings");
    crate::metrics::emails("queued", queued);
    tracing::info!(reservation = %r.id, member = %m.id, channel = %channel.name, start = %r.schedule.start, slots = r.slots, "booked");
    Ok(r)
}

/// Checks a presented key against the reservation, counting failures toward a lockout.
async fn check_key(c: &Center, r: &Reservation, presented: &str) -> ApiResult<ReservationKey> {
    let now = c.clock.now();
    if let Some(until) = r.key_locked_until.filter(|u| *u > now) {
        let wait = u64::try_from(until.duration_since(now).as_secs().max(1)).unwrap_or(1);
        return Err(ApiError::too_many(
            ErrorCode::KeyLocked,
            format!("too many wrong keys; try again after {until}"),
            wait,
        ));
    }
    if r.key_hash.verify(presented) {
        return ReservationKey::parse(presented)
            .map_err(|_| ApiError::internal("a matching key did not parse"));
    }
    let after = c
        .store
        .record_key_failure(
            r.id,
            now,
            c.settings.key_max_failures,
            c.settings.key_lock.as_millis() as i64,
        )
        .await?;
    tracing::warn!(reservation = %r.id, failures = after.key_failures, "wrong reservation key");
    let left = c
        .settings
        .key_max_failures
        .saturating_sub(after.key_failures);
    Err(ApiError::new(
        ErrorCode::WrongKey,
        format!("the reservation key is not valid for this reservation ({left} tries left)"),
    ))
}

/// How the connection profile is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileTo<'a> {
    /// Encrypted for this device's age X25519 public key.
    Device(&'a str),
    /// In clear, when the channel to the caller is safe (TLS or loopback); refused
    /// otherwise.
    Clear {
        /// Whether the answer travels over TLS or loopback.
        safe: bool,
    },
    /// Not now (`null`): the web page offers the profile as a download afterwards.
    Later,
}

impl<'a> ProfileTo<'a> {
    /// For a caller at `client`: encrypted for `device` when given, else in clear when
    /// that is safe (the service is on https, or the caller on loopback).
    pub fn for_client(
        c: &Center,
        client: Option<std::net::IpAddr>,
        device: Option<&'a str>,
    ) -> Self {
        match device {
            Some(k) => ProfileTo::Device(k),
            None => ProfileTo::Clear {
                safe: c.settings.public_url.starts_with("https://")
                    || client.is_some_and(|ip| ip.is_loopback()),
            },
        }
    }
}

/// The connection profile of `r` for `to`: an armored age file, or the plain profile.
fn profile_for(
    c: &Center,
    r: &Reservation,
    channel: &Channel,
    key: &ReservationKey,
    to: ProfileTo<'_>,
) -> ApiResult<serde_json::Value> {
    let pw = viewer_password(c, r)?;
    let endpoints: Vec<profile::IngestEndpoint> = c
        .settings
        .ingest
        .iter()
        .enumerate()
        .map(|(i, url)| profile::IngestEndpoint {
            url: url.clone(),
            protocol: "rtmp".into(),
            priority: u8::try_from(i).unwrap_or(u8::MAX),
        })
        .collect();
    let p = profile::build(
        r,
        channel,
        key,
        pw.as_deref(),
        &endpoints,
        &c.settings.public_url,
        &c.settings.time_zone,
        c.clock.now(),
    );
    match to {
        ProfileTo::Device(k) => {
            let armored = profile::encrypt(&p, k).map_err(|e| match e {
                profile::ProfileError::InvalidRecipient => {
                    ApiError::field("device_public_key", e.to_string())
                }
                other => ApiError::internal(other),
            })?;
            Ok(serde_json::Value::String(armored))
        }
        ProfileTo::Clear { safe: true } => serde_json::to_value(&p).map_err(ApiError::internal),
        ProfileTo::Later => Ok(serde_json::Value::Null),
        ProfileTo::Clear { safe: false } => Err(ApiError::field(
            "device_public_key",
            "is required here: the profile holds your stream key and is only sent in clear over TLS or loopback",
        )),
    }
}

/// Confirms `r` with the reservation key before its deadline: the booking is
/// established and billed, invitees are told, and the connection profile is issued.
pub async fn confirm(
    c: &Center,
    m: &Member,
    r: Reservation,
    presented_key: &str,
    to: ProfileTo<'_>,
) -> ApiResult<(Reservation, serde_json::Value)> {
    let now = c.clock.now();
    // State and deadline first (the key is checked, and failures counted, next): a late or
    // repeated confirmation is not a wrong key.
    let t = lifecycle::confirm(r.status, &r.schedule, now, true)?;
    let key = check_key(c, &r, presented_key).await?;
    let channel = c.store.channel(r.channel).await?;
    let confirmed = Reservation {
        status: Status::Confirmed,
        ..r.clone()
    };
    let profile = profile_for(c, &confirmed, &channel, &key, to)?;
    let pw = viewer_password(c, &r)?;
    let mut cmd = TransitionCommand::from_transition(
        r.id,
        &t,
        now,
        Actor::Member(m.id),
        "confirmed with the reservation key",
    );
    if t.events
        .contains(&Event::NotifyInvitees(InviteeNotice::Invitation))
        && !r.invited_at_acceptance
    {
        cmd.outbox = mail::invitee_messages(
            &mail_context(c, &confirmed, &channel, m, pw.as_deref(), 0),
            InviteeNotice::Invitation,
            &[],
        );
    }
    let queued = cmd.outbox.len() as u64;
    let done = c.store.transition(cmd).await?;
    c.listings_changed();
    crate::metrics::event("confirms");
    crate::metrics::emails("queued", queued);
    tracing::info!(reservation = %r.id, "confirmed");
    Ok((done, profile))
}

/// Issues the connection profile of a confirmed (or live) reservation again, for another
/// device or as a download; the key is needed again since it is stored only hashed.
pub async fn reissue_profile(
    c: &Center,
    r: &Reservation,
    presented_key: &str,
    to: ProfileTo<'_>,
) -> ApiResult<serde_json::Value> {
    let key = connection_key(c, r, presented_key).await?;
    let channel = c.store.channel(r.channel).await?;
    profile_for(c, r, &channel, &key, to)
}

/// The reservation key of a confirmed (or live) reservation, checked again (wrong keys
/// count toward the lockout): the page shows the connection settings with it.
pub async fn connection_key(
    c: &Center,
    r: &Reservation,
    presented_key: &str,
) -> ApiResult<ReservationKey> {
    if !matches!(r.status, Status::Confirmed | Status::Live) {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            format!(
                "connection settings are for confirmed reservations; this one is {}",
                r.status
            ),
        ));
    }
    check_key(c, r, presented_key).await
}

/// What `draft` would change of `r` (validated; nothing is written): the page shows it
/// before saving.
pub fn preview_change(
    c: &Center,
    r: &Reservation,
    draft: &ProgramChangeDraft,
) -> ApiResult<ProgramChange> {
    let old_pw = viewer_password(c, r)?;
    lifecycle::change(
        r.status,
        &r.schedule,
        c.clock.now(),
        r.invited_at_acceptance,
    )?;
    Ok(draft.validate(
        &CurrentProgram {
            program: &r.program,
            visibility: r.visibility,
            viewer_password: old_pw.as_deref(),
            invitees: &r.invitees,
        },
        &c.settings.policy,
    )?)
}

/// Changes the program's data (never its channel, time or visibility); invitees get one
/// e-mail saying what changed, newcomers an invitation, those taken off the list a
/// cancellation.
pub async fn change(
    c: &Center,
    m: &Member,
    r: Reservation,
    draft: ProgramChangeDraft,
) -> ApiResult<Reservation> {
    let now = c.clock.now();
    let ProgramChange {
        program,
        viewer_password: new_pw,
        invitees,
        changed,
    } = preview_change(c, &r, &draft)?;
    if changed.is_empty() {
        return Ok(r);
    }
    let events = lifecycle::change(r.status, &r.schedule, now, r.invited_at_acceptance)?;
    let sequence = next_sequence(c, r.id).await?;
    let updated = Reservation {
        program: program.clone(),
        invitees: invitees.clone(),
        viewer_password: new_pw.as_deref().map(|p| c.secrets.seal(p)),
        updated_at: now,
        ..r.clone()
    };
    let mut outbox: Vec<NewMessage> = Vec::new();
    if events.contains(&Event::NotifyInvitees(InviteeNotice::Change)) {
        let channel = c.store.channel(r.channel).await?;
        let groups = [
            (
                InviteeNotice::Change,
                invitees
                    .iter()
                    .filter(|e| r.invitees.contains(e))
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            (
                InviteeNotice::Invitation,
                invitees
                    .iter()
                    .filter(|e| !r.invitees.contains(e))
                    .cloned()
                    .collect(),
            ),
            (
                InviteeNotice::Cancellation,
                r.invitees
                    .iter()
                    .filter(|e| !invitees.contains(e))
                    .cloned()
                    .collect(),
            ),
        ];
        for (notice, people) in groups {
            let to = Reservation {
                invitees: people,
                ..updated.clone()
            };
            let pw = (notice != InviteeNotice::Cancellation)
                .then_some(new_pw.as_deref())
                .flatten();
            outbox.extend(mail::invitee_messages(
                &mail_context(c, &to, &channel, m, pw, sequence),
                notice,
                &changed,
            ));
        }
    }
    let queued = outbox.len() as u64;
    let done = c
        .store
        .change_program(ChangeCommand {
            reservation: r.id,
            expected: r.status,
            program,
            viewer_password: updated.viewer_password,
            invitees,
            at: now,
            actor: Actor::Member(m.id),
            reason: format!("changed: {}", changed.join(", ")),
            outbox,
        })
        .await?;
    c.listings_changed();
    crate::metrics::emails("queued", queued);
    Ok(done)
}

/// What cancelling `r` now would bill (`None`: nothing), or why it cannot be cancelled.
pub fn cancel_cost(c: &Center, r: &Reservation) -> ApiResult<Option<Money>> {
    let t = lifecycle::cancel(
        r.status,
        &r.schedule,
        c.clock.now(),
        &c.settings.policy,
        r.invited_at_acceptance,
    )?;
    Ok(t.events
        .contains(&Event::Charge(ChargeAction::Finalize))
        .then_some(r.fee))
}

/// Cancels: the slots are freed, invitees told, the stream node cuts the program at once;
/// billed when already confirmed (policy). Returns the reservation and what is billed.
pub async fn cancel(
    c: &Center,
    m: &Member,
    r: Reservation,
) -> ApiResult<(Reservation, Option<Money>)> {
    let now = c.clock.now();
    let t = lifecycle::cancel(
        r.status,
        &r.schedule,
        now,
        &c.settings.policy,
        r.invited_at_acceptance,
    )?;
    let charged = t
        .events
        .contains(&Event::Charge(ChargeAction::Finalize))
        .then_some(r.fee);
    let channel = c.store.channel(r.channel).await?;
    let mut cmd = TransitionCommand::from_transition(
        r.id,
        &t,
        now,
        Actor::Member(m.id),
        "cancelled by the broadcaster",
    );
    cmd.outbox = ending_mails(
        c,
        &r,
        (m, &channel),
        &t,
        now,
        BroadcasterMail::Cancelled { charged },
    )
    .await?;
    let queued = cmd.outbox.len() as u64;
    let done = c.store.transition(cmd).await?;
    c.listings_changed();
    c.stats.revoke(done.id);
    crate::metrics::event("cancellations");
    crate::metrics::emails("queued", queued);
    Ok((done, charged))
}

/// The extension `r` could get now by `extra` slots: the range added and the facts about
/// it (are the slots free, does the quota allow).
async fn extension_facts(
    c: &Center,
    r: &Reservation,
    extra: u32,
) -> Result<(SlotRange, ExtensionFacts), StorageError> {
    let policy = &c.settings.policy;
    let range = SlotRange::new(r.schedule.start, r.slots, policy.slot)
        .map_err(|e| StorageError::Corrupt(format!("reservation {}: {e}", r.id)))?;
    // Beyond the longest reservation the domain refuses the request before it reads these
    // facts; the clamp keeps a huge `extra` from overflowing the slot range.
    let added = range
        .following(extra.clamp(1, policy.max_slots_per_reservation))
        .map_err(|e| StorageError::Corrupt(format!("reservation {}: {e}", r.id)))?;
    let next_free = !c
        .store
        .claims_between(added.start(), added.end())
        .await?
        .iter()
        .any(|claim| claim.channel == r.channel);
    let mut quota_check = Ok(());
    for (month, n) in quota::slots_by_month(&added, &policy.time_zone) {
        let used = c.store.quota_used(r.member, month).await?;
        if let Err(e) = quota::check(month, used, n, policy.quota_slots_per_month) {
            quota_check = Err(e);
            break;
        }
    }
    Ok((
        added,
        ExtensionFacts {
            extra,
            next_free,
            quota: quota_check,
        },
    ))
}

/// How many slots `r` could be extended by at `now` (0: no offer).
pub async fn max_extension(
    c: &Center,
    r: &Reservation,
    now: Timestamp,
) -> Result<u32, StorageError> {
    let policy = &c.settings.policy;
    let mut best = 0;
    for extra in 1..=policy.max_slots_per_reservation.saturating_sub(r.slots) {
        let facts = match extension_facts(c, r, extra).await {
            Ok((_, facts)) => facts,
            // Past the end of the slot grid's range: no further extension.
            Err(StorageError::Corrupt(_)) => break,
            Err(e) => return Err(e),
        };
        if lifecycle::check_extension(r.status, &r.schedule, r.slots, facts, now, policy).is_err() {
            break;
        }
        best = extra;
    }
    Ok(best)
}

/// The extension offered to `r` now, in slots (0: none): from the offer time before its
/// end, when the next slots are free and the quota allows.
pub async fn offer(c: &Center, r: &Reservation) -> ApiResult<u32> {
    let now = c.clock.now();
    if !matches!(r.status, Status::Confirmed | Status::Live)
        || now < r.schedule.extension_offer_at
        || now >= r.schedule.end
    {
        return Ok(0);
    }
    Ok(max_extension(c, r, now).await?)
}

/// Extends a confirmed or live reservation by `slots` right after its end, when offered
/// (the next slots are free and the quota allows).
pub async fn extend(c: &Center, m: &Member, r: Reservation, slots: u32) -> ApiResult<Reservation> {
    let now = c.clock.now();
    let policy = &c.settings.policy;
    let (added, facts) = extension_facts(c, &r, slots).await?;
    lifecycle::check_extension(r.status, &r.schedule, r.slots, facts, now, policy).map_err(
        |e| match e {
            ExtensionRefused::Lifecycle(l) => ApiError::from(l),
            ExtensionRefused::TooLong { .. } => ApiError::field("slots", e.to_string()),
            ExtensionRefused::Quota(q) => ApiError::new(ErrorCode::QuotaExceeded, q.to_string()),
            ExtensionRefused::SlotsTaken => ApiError::new(ErrorCode::SlotTaken, e.to_string()),
            ExtensionRefused::NotOffered { .. } => {
                ApiError::new(ErrorCode::NotOffered, e.to_string())
            }
        },
    )?;
    let channel = c.store.channel(r.channel).await?;
    let total = r.slots + slots;
    let done = c
        .store
        .extend(ExtendCommand {
            reservation: r.id,
            expected: r.status,
            claims: added.slot_starts().collect(),
            quota: quota::slots_by_month(&added, &policy.time_zone),
            quota_max: policy.quota_slots_per_month,
            slots: total,
            schedule: r.schedule.extended_to(added.end(), policy),
            fee: Money::fee(channel.tariff, total)
                .map_err(|e| ApiError::field("slots", e.to_string()))?,
            at: now,
            actor: Actor::Member(m.id),
            outbox: Vec::new(),
        })
        .await?;
    c.listings_changed();
    Ok(done)
}

/// One slot of a channel's day, as the reservation calendar shows it.
#[derive(Debug, Clone)]
pub struct SlotState {
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Held by a reservation.
    pub taken: bool,
    /// Free and far enough ahead to be confirmed in time.
    pub bookable: bool,
    /// The program holding it, when listed (public or password, confirmed or later).
    pub program: Option<(String, slotcast_domain::visibility::Visibility)>,
}

/// Every channel's slots on one day of the service's time zone (`date`, today when
/// `None`).
#[derive(Debug, Clone)]
pub struct Availability {
    /// The day.
    pub date: slotcast_domain::jiff::civil::Date,
    /// Its start and end.
    pub span: (Timestamp, Timestamp),
    /// Each channel with its slots.
    pub channels: Vec<(Channel, Vec<SlotState>)>,
}

/// Free and taken slots per channel for a day (titles of listed programs only: a secret
/// or unconfirmed program shows as "taken" and nothing more). The same for every viewer
/// until a booking changes it or the first slot still bookable moves on: kept in the
/// listings.
pub async fn availability(c: &Center, date: Option<&str>) -> ApiResult<Arc<Availability>> {
    let (date, from, to) = super::play::day_bounds(c, date)?;
    let policy = &c.settings.policy;
    // A slot `t` is bookable when `now + connect_before < t`, i.e. after this slot start.
    let horizon = policy.slot.floor(c.clock.now() + policy.connect_before);
    c.listings
        .availability(
            (from, to, horizon),
            load_availability(c, date, from, to, horizon),
        )
        .await
}

async fn load_availability(
    c: &Center,
    date: slotcast_domain::jiff::civil::Date,
    from: Timestamp,
    to: Timestamp,
    horizon: Timestamp,
) -> ApiResult<Availability> {
    use std::collections::HashMap;
    let policy = &c.settings.policy;
    let claims: HashMap<(ChannelId, Timestamp), ReservationId> = c
        .store
        .claims_between(from, to)
        .await?
        .into_iter()
        .map(|cl| ((cl.channel, cl.slot), cl.reservation))
        .collect();
    let programs: HashMap<_, _> = c
        .store
        .reservations_between(from, to)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let len = policy.slot.duration();
    let channels = c
        .store
        .channels()
        .await?
        .into_iter()
        .map(|ch| {
            let mut slots = Vec::new();
            let mut t = policy.slot.ceil(from);
            while t < to {
                let holder = claims.get(&(ch.id, t));
                let program = holder.and_then(|id| programs.get(id)).filter(|r| {
                    r.visibility.is_listed()
                        && matches!(
                            r.status,
                            Status::Confirmed | Status::Live | Status::Completed
                        )
                });
                slots.push(SlotState {
                    start: t,
                    end: t + len,
                    taken: holder.is_some(),
                    bookable: holder.is_none() && horizon < t,
                    program: program.map(|r| (r.program.title.clone(), r.visibility)),
                });
                t += len;
            }
            (ch, slots)
        })
        .collect();
    Ok(Availability {
        date,
        span: (from, to),
        channels,
    })
}

/// Every reservation of `m`, newest start first.
pub async fn mine(c: &Center, m: &Member) -> ApiResult<Vec<Reservation>> {
    let mut all = c.store.reservations_of(m.id).await?;
    all.sort_by_key(|r| std::cmp::Reverse(r.schedule.start));
    Ok(all)
}

/// A reservation of `m` with what its page shows: channel, history, figures.
#[derive(Debug, Clone)]
pub struct Record {
    /// The reservation.
    pub reservation: Reservation,
    /// Its channel.
    pub channel: Channel,
    /// Every transition, oldest first.
    pub history: Vec<slotcast_store::TransitionRecord>,
    /// The program's figures, once it completed.
    pub stats: Option<slotcast_domain::ProgramStats>,
}

/// Reservation `id` of `m` with its channel, history and figures (anyone else's is "not
/// found").
pub async fn record(c: &Center, m: &Member, id: ReservationId) -> ApiResult<Record> {
    let reservation = super::owned(c, m, id).await?;
    Ok(Record {
        channel: c.store.channel(reservation.channel).await?,
        history: c.store.transitions(id).await?,
        stats: c.store.program_stats(id).await?,
        reservation,
    })
}
