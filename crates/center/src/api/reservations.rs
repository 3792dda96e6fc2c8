//! The broadcaster's reservations: quote, book, list, read, confirm with the key, change,
//! cancel, extend, re-issue the connection profile. Every decision is the domain's; the
//! store applies it atomically together with the e-mails it causes.

use super::ApiJson;
use super::views::{ErrorBody, MoneyView, ReservationView, TransitionView, WindowView, ts};
use crate::auth::{Authed, peer_ip};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mail::{self, BroadcasterMail, MailContext};
use crate::profile;
use crate::secrets;
use crate::state::{AppState, Center};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use slotcast_domain::charge::ChargeAction;
use slotcast_domain::lifecycle::{self, Event, ExtensionFacts, InviteeNotice};
use slotcast_domain::request::{self as rq, ProgramInfo, ReservationDraft};
use slotcast_domain::{
    ChannelId, FieldErrors, Money, ReservationId, ReservationKey, SlotRange, Status, quota,
};
use slotcast_store::{
    Actor, ChangeCommand, Channel, ExtendCommand, Member, NewMessage, NewReservation, Reservation,
    StorageError, Tier, TransitionCommand,
};
use utoipa::ToSchema;

/// A channel by id or by name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChannelRef {
    /// Channel id.
    Id(i64),
    /// Channel name.
    Name(String),
}

/// A booking request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationBody {
    /// Channel id or name.
    pub channel: ChannelRef,
    /// RFC 3339 start on the slot grid.
    pub start: String,
    /// Number of slots.
    pub slots: i64,
    /// `public`, `password` or `secret`.
    pub visibility: String,
    /// Title (≤ 60 characters).
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// Outline (≤ 80).
    pub outline: Option<String>,
    /// Detail (≤ 2000).
    pub detail: Option<String>,
    /// Show your e-mail address on the program page.
    pub show_email: Option<bool>,
    /// A link shown on the program page.
    pub web_url: Option<String>,
    /// Required for `password` and `secret` programs.
    pub viewer_password: Option<String>,
    /// Up to 50 addresses to invite.
    pub invitees: Option<Vec<String>>,
}

async fn resolve_channel(st: &Center, c: &ChannelRef) -> ApiResult<Option<Channel>> {
    let all = st.store.channels().await?;
    Ok(all.into_iter().find(|ch| match c {
        ChannelRef::Id(id) => ch.id == ChannelId(*id),
        ChannelRef::Name(n) => ch.name == *n,
    }))
}

/// A validated booking, before it is stored.
struct Planned {
    new: NewReservation,
    key: ReservationKey,
    channel: Channel,
    viewer_password: Option<String>,
}

async fn plan(st: &Center, m: &Member, b: ReservationBody) -> ApiResult<Planned> {
    if m.tier != Tier::Premium {
        return Err(ApiError::new(
            ErrorCode::PremiumRequired,
            "only premium members can book airtime",
        ));
    }
    let now = st.clock.now();
    let policy = &st.settings.policy;
    let draft = ReservationDraft {
        start: b.start,
        slots: b.slots,
        visibility: b.visibility,
        title: b.title,
        genre: b.genre,
        outline: b.outline,
        detail: b.detail,
        show_email: b.show_email.unwrap_or(false),
        web_url: b.web_url,
        viewer_password: b.viewer_password,
        invitees: b.invitees.unwrap_or_default(),
    };
    let channel = resolve_channel(st, &b.channel).await?;
    let valid = draft.validate(policy, now);
    let (valid, channel) = match (valid, channel) {
        (Ok(v), Some(c)) => (v, c),
        (v, c) => {
            let mut errs = v.err().unwrap_or_default();
            if c.is_none() {
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
        viewer_password: valid.viewer_password.as_deref().map(|p| st.secrets.seal(p)),
        invitees: valid.invitees,
        key_hash: key.hash(),
        slug: secrets::new_slug(),
        fee,
        invited_at_acceptance: st.settings.invite_at_acceptance,
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

/// The reservation a booking will become (for rendering its e-mails in the same transaction).
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

pub(crate) fn ctx<'a>(
    st: &'a Center,
    r: &'a Reservation,
    channel: &'a Channel,
    broadcaster: &'a Member,
    viewer_password: Option<&'a str>,
    sequence: u32,
) -> MailContext<'a> {
    MailContext {
        public_url: &st.settings.public_url,
        ingest: st.settings.ingest.first().map_or("", String::as_str),
        time_zone: &st.settings.policy.time_zone,
        reservation: r,
        channel,
        broadcaster,
        viewer_password,
        sequence,
    }
}

/// The iCalendar SEQUENCE of the next update sent to invitees: one more than the number
/// of changes so far, so a later change or cancellation always supersedes the earlier one.
pub(crate) async fn next_sequence(st: &Center, id: ReservationId) -> Result<u32, StorageError> {
    let changes = st
        .store
        .transitions(id)
        .await?
        .iter()
        .filter(|t| t.from == Some(t.to))
        .count();
    Ok(1 + u32::try_from(changes).unwrap_or(u32::MAX - 1))
}

/// The clear viewer password of a stored reservation.
pub(crate) fn viewer_password(st: &Center, r: &Reservation) -> ApiResult<Option<String>> {
    r.viewer_password
        .as_deref()
        .map(|s| st.secrets.unseal(s).map_err(ApiError::internal))
        .transpose()
}

/// The answer to a booking or a quote.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    /// The reservation.
    #[serde(flatten)]
    pub reservation: ReservationView,
    /// The server's time when the answer was made.
    pub server_time: String,
}

/// Price and deadlines of a booking, without booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteView {
    /// tariff × slots.
    pub fee: MoneyView,
    /// Confirm before this instant.
    pub confirm_by: String,
    /// When the key may publish.
    pub connect_window: WindowView,
    /// Whether every slot is free now.
    pub available: bool,
    /// Slots left in the quota of the start's month.
    pub quota_left: u32,
    /// The server's time.
    pub server_time: String,
}

/// Fee, deadline and availability of a booking, without booking it.
#[utoipa::path(post, path = "/api/v1/reservations/quote", tag = "reservations", request_body = ReservationBody,
    responses((status = 200, body = QuoteView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    State(st): State<AppState>,
    Authed(m): Authed,
    ApiJson(b): ApiJson<ReservationBody>,
) -> ApiResult<Json<QuoteView>> {
    let p = plan(&st, &m, b).await?;
    let s = p.new.schedule;
    let taken = st
        .store
        .claims_between(s.start, s.end)
        .await?
        .iter()
        .any(|c| c.channel == p.channel.id);
    let mut left = u32::MAX;
    for (month, _) in &p.new.quota {
        let used = st.store.quota_used(m.id, *month).await?;
        left = left.min(p.new.quota_max.saturating_sub(used));
    }
    Ok(Json(QuoteView {
        fee: p.new.fee.into(),
        confirm_by: ts(s.confirm_by),
        connect_window: WindowView {
            from: ts(s.connect_from),
            to: ts(s.connect_to),
        },
        available: !taken,
        quota_left: left,
        server_time: format!("{:.3}", st.clock.now()),
    }))
}

/// Book slots. The reservation key is e-mailed to you, never returned here.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "reservations", request_body = ReservationBody,
    responses((status = 201, body = BookingView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authed(m): Authed,
    ApiJson(b): ApiJson<ReservationBody>,
) -> ApiResult<(StatusCode, Json<BookingView>)> {
    let Planned {
        mut new,
        key,
        channel,
        viewer_password,
    } = plan(&st, &m, b).await?;
    let stored = as_stored(&new);
    let t = lifecycle::accept(new.invited_at_acceptance);
    let c = ctx(&st, &stored, &channel, &m, viewer_password.as_deref(), 0);
    new.outbox.push(mail::key_message(&c, &key));
    if t.events
        .contains(&Event::NotifyInvitees(InviteeNotice::Invitation))
    {
        new.outbox
            .extend(mail::invitee_messages(&c, InviteeNotice::Invitation, &[]));
    }
    let queued = new.outbox.len() as u64;
    let r = st.store.create_reservation(new).await?;
    crate::metrics::event("bookings");
    crate::metrics::emails("queued", queued);
    tracing::info!(reservation = %r.id, member = %m.id, channel = %channel.name, start = %r.schedule.start, slots = r.slots, "booked");
    Ok((
        StatusCode::CREATED,
        Json(BookingView {
            reservation: ReservationView::new(&r, &st.settings.public_url),
            server_time: format!("{:.3}", st.clock.now()),
        }),
    ))
}

/// My reservations, newest first.
#[utoipa::path(get, path = "/api/v1/reservations", tag = "reservations",
    responses((status = 200, body = [ReservationView]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Authed(m): Authed,
) -> ApiResult<Json<Vec<ReservationView>>> {
    let all = st.store.reservations_of(m.id).await?;
    Ok(Json(
        all.iter()
            .map(|r| ReservationView::new(r, &st.settings.public_url))
            .collect(),
    ))
}

/// A reservation of the caller; anyone else's is "not found" (ids must not leak).
pub(crate) async fn owned(st: &Center, m: &Member, id: &str) -> ApiResult<Reservation> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("reservation"))?;
    match st.store.reservation(ReservationId(id)).await {
        Ok(r) if r.member == m.id => Ok(r),
        Ok(_) | Err(StorageError::NotFound { .. }) => Err(ApiError::not_found("reservation")),
        Err(e) => Err(e.into()),
    }
}

/// One reservation with its log.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "reservations",
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ReservationView>> {
    let r = owned(&st, &m, &id).await?;
    let mut v = ReservationView::new(&r, &st.settings.public_url);
    v.transitions = Some(
        st.store
            .transitions(r.id)
            .await?
            .iter()
            .map(TransitionView::from)
            .collect(),
    );
    v.stats = st.store.program_stats(r.id).await?.map(Into::into);
    Ok(Json(v))
}

/// Confirmation with the key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The key from the acceptance e-mail.
    pub reservation_key: String,
    /// An age X25519 public key (`age1…`) to encrypt the connection profile for.
    pub device_public_key: Option<String>,
}

/// The answer to a confirmation or a profile request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmView {
    /// `confirmed`.
    pub status: String,
    /// The connection profile: an armored age file when a device key was given, else
    /// the plain profile object (only over TLS or loopback).
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
    /// The server's time, for the client's clock offset.
    pub server_time: String,
    /// The reservation.
    pub reservation: ReservationView,
}

/// The profile for `device_public_key`, or in clear where that is safe.
fn profile_answer(
    st: &Center,
    ext: &axum::http::Extensions,
    r: &Reservation,
    channel: &Channel,
    key: &ReservationKey,
    device_public_key: Option<&str>,
) -> ApiResult<serde_json::Value> {
    let pw = viewer_password(st, r)?;
    let endpoints: Vec<profile::IngestEndpoint> = st
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
        &st.settings.public_url,
        &st.settings.time_zone,
        st.clock.now(),
    );
    match device_public_key {
        Some(k) => {
            let armored = profile::encrypt(&p, k).map_err(|e| match e {
                profile::ProfileError::InvalidRecipient => {
                    ApiError::field("device_public_key", e.to_string())
                }
                other => ApiError::internal(other),
            })?;
            Ok(serde_json::Value::String(armored))
        }
        None => {
            let safe = st.settings.public_url.starts_with("https://")
                || peer_ip(ext).is_some_and(|ip| ip.is_loopback());
            if !safe {
                return Err(ApiError::field(
                    "device_public_key",
                    "is required here: the profile holds your stream key and is only sent in clear over TLS or loopback",
                ));
            }
            serde_json::to_value(&p).map_err(ApiError::internal)
        }
    }
}

/// Checks a presented key against the reservation, counting failures toward a lockout.
async fn check_key(
    st: &Center,
    r: &Reservation,
    presented: &str,
) -> ApiResult<Option<ReservationKey>> {
    let now = st.clock.now();
    if let Some(until) = r.key_locked_until.filter(|u| *u > now) {
        let wait = u64::try_from(until.duration_since(now).as_secs().max(1)).unwrap_or(1);
        return Err(ApiError::too_many(
            ErrorCode::KeyLocked,
            format!("too many wrong keys; try again after {until}"),
            wait,
        ));
    }
    if r.key_hash.verify(presented) {
        return Ok(ReservationKey::parse(presented).ok());
    }
    let after = st
        .store
        .record_key_failure(
            r.id,
            now,
            st.settings.key_max_failures,
            st.settings.key_lock.as_millis() as i64,
        )
        .await?;
    tracing::warn!(reservation = %r.id, failures = after.key_failures, "wrong reservation key");
    let left = st
        .settings
        .key_max_failures
        .saturating_sub(after.key_failures);
    Err(ApiError::new(
        ErrorCode::WrongKey,
        format!("the reservation key is not valid for this reservation ({left} tries left)"),
    ))
}

/// Confirm with the reservation key: the booking is established and billed, the
/// connection profile issued and the invitees told.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/confirm", tag = "reservations", request_body = ConfirmBody,
    responses((status = 200, body = ConfirmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn confirm(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ext: axum::http::Extensions,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> ApiResult<Json<ConfirmView>> {
    let r = owned(&st, &m, &id).await?;
    let now = st.clock.now();
    // State and deadline first (the key is checked, and failures counted, next): a late or
    // repeated confirmation is not a wrong key.
    let t = lifecycle::confirm(r.status, &r.schedule, now, true)?;
    let key = check_key(&st, &r, &b.reservation_key)
        .await?
        .ok_or_else(|| ApiError::internal("a matching key did not parse"))?;
    let channel = st.store.channel(r.channel).await?;
    let confirmed = Reservation {
        status: Status::Confirmed,
        ..r.clone()
    };
    let profile = profile_answer(
        &st,
        &ext,
        &confirmed,
        &channel,
        &key,
        b.device_public_key.as_deref(),
    )?;
    let pw = viewer_password(&st, &r)?;
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
            &ctx(&st, &confirmed, &channel, &m, pw.as_deref(), 0),
            InviteeNotice::Invitation,
            &[],
        );
    }
    let queued = cmd.outbox.len() as u64;
    let done = st.store.transition(cmd).await?;
    crate::metrics::event("confirms");
    crate::metrics::emails("queued", queued);
    tracing::info!(reservation = %r.id, "confirmed");
    Ok(Json(ConfirmView {
        status: done.status.to_string(),
        profile,
        server_time: format!("{:.3}", st.clock.now()),
        reservation: ReservationView::new(&done, &st.settings.public_url),
    }))
}

/// A profile for another device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// The device's age X25519 public key (`age1…`).
    pub device_public_key: String,
    /// The reservation key: it is stored only hashed, so the new profile can carry it only
    /// if you give it again.
    pub reservation_key: String,
}

/// Re-issue the encrypted connection profile for another device (confirmed reservations).
#[utoipa::path(post, path = "/api/v1/reservations/{id}/profile", tag = "reservations", request_body = ProfileBody,
    responses((status = 200, body = ConfirmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reissue_profile(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ext: axum::http::Extensions,
    ApiJson(b): ApiJson<ProfileBody>,
) -> ApiResult<Json<ConfirmView>> {
    let r = owned(&st, &m, &id).await?;
    if !matches!(r.status, Status::Confirmed | Status::Live) {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            format!(
                "profiles are issued for confirmed reservations; this one is {}",
                r.status
            ),
        ));
    }
    let key = check_key(&st, &r, &b.reservation_key)
        .await?
        .ok_or_else(|| ApiError::internal("a matching key did not parse"))?;
    let channel = st.store.channel(r.channel).await?;
    let profile = profile_answer(&st, &ext, &r, &channel, &key, Some(&b.device_public_key))?;
    Ok(Json(ConfirmView {
        status: r.status.to_string(),
        profile,
        server_time: format!("{:.3}", st.clock.now()),
        reservation: ReservationView::new(&r, &st.settings.public_url),
    }))
}

/// Changeable fields; anything absent stays as it is. An empty string clears an optional
/// text. `channel`, `start`, `slots` and `visibility` cannot change (cancel and book again).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// Title.
    pub title: Option<String>,
    /// Genre.
    pub genre: Option<String>,
    /// Outline.
    pub outline: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// Show the broadcaster's e-mail.
    pub show_email: Option<bool>,
    /// Link.
    pub web_url: Option<String>,
    /// New viewer password (password and secret programs).
    pub viewer_password: Option<String>,
    /// The new invitee list (replaces the old).
    pub invitees: Option<Vec<String>>,
    /// Not changeable.
    #[schema(value_type = Option<Object>)]
    pub channel: Option<serde_json::Value>,
    /// Not changeable.
    #[schema(value_type = Option<Object>)]
    pub start: Option<serde_json::Value>,
    /// Not changeable.
    #[schema(value_type = Option<Object>)]
    pub slots: Option<serde_json::Value>,
    /// Not changeable.
    #[schema(value_type = Option<Object>)]
    pub visibility: Option<serde_json::Value>,
}

/// Change the program's data; invitees get one e-mail saying what changed.
#[utoipa::path(patch, path = "/api/v1/reservations/{id}", tag = "reservations", request_body = ChangeBody,
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ChangeBody>,
) -> ApiResult<Json<ReservationView>> {
    let r = owned(&st, &m, &id).await?;
    let now = st.clock.now();
    let mut errs = FieldErrors::default();
    for (field, given) in [
        ("channel", &b.channel),
        ("start", &b.start),
        ("slots", &b.slots),
        ("visibility", &b.visibility),
    ] {
        if given.is_some() {
            errs.add(field, "cannot be changed; cancel and book again");
        }
    }
    let opt = |errs: &mut FieldErrors,
               field: &str,
               v: &Option<String>,
               max,
               multiline,
               old: &Option<String>| match v {
        None => old.clone(),
        Some(v) => rq::text(errs, field, Some(v), max, multiline, false),
    };
    let old = &r.program;
    let program = ProgramInfo {
        title: match &b.title {
            None => Some(old.title.clone()),
            Some(t) => rq::text(&mut errs, "title", Some(t), rq::TITLE_MAX, false, true),
        }
        .unwrap_or_default(),
        genre: match &b.genre {
            None => old.genre.clone(),
            Some(g) => rq::genre(&mut errs, Some(g), &st.settings.policy),
        },
        outline: opt(
            &mut errs,
            "outline",
            &b.outline,
            rq::OUTLINE_MAX,
            false,
            &old.outline,
        ),
        detail: opt(
            &mut errs,
            "detail",
            &b.detail,
            rq::DETAIL_MAX,
            true,
            &old.detail,
        ),
        show_email: b.show_email.unwrap_or(old.show_email),
        web_url: match &b.web_url {
            None => old.web_url.clone(),
            Some(u) => rq::web_url(&mut errs, Some(u)),
        },
    };
    let old_pw = viewer_password(&st, &r)?;
    let new_pw = match &b.viewer_password {
        None => old_pw.clone(),
        Some(p) => rq::viewer_password(&mut errs, r.visibility, Some(p)),
    };
    let invitees = match &b.invitees {
        None => r.invitees.clone(),
        Some(list) => rq::invitees(&mut errs, list),
    };
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let mut changed: Vec<&str> = Vec::new();
    let pairs: [(&str, bool); 7] = [
        ("title", program.title != old.title),
        ("genre", program.genre != old.genre),
        ("outline", program.outline != old.outline),
        ("detail", program.detail != old.detail),
        (
            "web page",
            program.web_url != old.web_url || program.show_email != old.show_email,
        ),
        ("viewer password", new_pw != old_pw),
        ("invitees", invitees != r.invitees),
    ];
    changed.extend(pairs.iter().filter(|(_, c)| *c).map(|(n, _)| *n));
    if changed.is_empty() {
        return Ok(Json(ReservationView::new(&r, &st.settings.public_url)));
    }
    let events = lifecycle::change(r.status, &r.schedule, now, r.invited_at_acceptance)?;
    let sequence = next_sequence(&st, r.id).await?;
    let updated = Reservation {
        program: program.clone(),
        invitees: invitees.clone(),
        viewer_password: new_pw.as_deref().map(|p| st.secrets.seal(p)),
        updated_at: now,
        ..r.clone()
    };
    let mut outbox: Vec<NewMessage> = Vec::new();
    if events.contains(&Event::NotifyInvitees(InviteeNotice::Change)) {
        let channel = st.store.channel(r.channel).await?;
        // Those who knew of the program hear what changed; newcomers get an invitation;
        // people taken off the list hear that the program is off for them.
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
                &ctx(&st, &to, &channel, &m, pw, sequence),
                notice,
                &changed,
            ));
        }
    }
    let queued = outbox.len() as u64;
    let done = st
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
    crate::metrics::emails("queued", queued);
    Ok(Json(ReservationView::new(&done, &st.settings.public_url)))
}

/// The answer to a cancellation.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelView {
    /// `cancelled`.
    pub status: String,
    /// What is billed, when the booking was confirmed and the policy bills cancellations.
    pub charge: Option<MoneyView>,
}

/// Cancel: the slots are freed, invitees told; billed if already confirmed (policy).
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "reservations",
    responses((status = 200, body = CancelView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<CancelView>> {
    let r = owned(&st, &m, &id).await?;
    let now = st.clock.now();
    let t = lifecycle::cancel(
        r.status,
        &r.schedule,
        now,
        &st.settings.policy,
        r.invited_at_acceptance,
    )?;
    let charged = t
        .events
        .contains(&Event::Charge(ChargeAction::Finalize))
        .then_some(r.fee);
    let channel = st.store.channel(r.channel).await?;
    let sequence = next_sequence(&st, r.id).await?;
    let cancelled = Reservation {
        updated_at: now,
        ..r.clone()
    };
    let c = ctx(&st, &cancelled, &channel, &m, None, sequence);
    let mut cmd = TransitionCommand::from_transition(
        r.id,
        &t,
        now,
        Actor::Member(m.id),
        "cancelled by the broadcaster",
    );
    cmd.outbox.push(mail::broadcaster_message(
        &c,
        BroadcasterMail::Cancelled { charged },
    ));
    if t.events
        .contains(&Event::NotifyInvitees(InviteeNotice::Cancellation))
    {
        cmd.outbox
            .extend(mail::invitee_messages(&c, InviteeNotice::Cancellation, &[]));
    }
    let queued = cmd.outbox.len() as u64;
    let done = st.store.transition(cmd).await?;
    st.stats.revoke(done.id);
    crate::metrics::event("cancellations");
    crate::metrics::emails("queued", queued);
    Ok(Json(CancelView {
        status: done.status.to_string(),
        charge: charged.map(MoneyView::from),
    }))
}

/// How many slots to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// Slots to add right after the current end.
    pub slots: u32,
}

/// The extension a reservation could get now: the range added and the facts about it.
pub(crate) async fn extension_facts(
    st: &Center,
    r: &Reservation,
    extra: u32,
) -> ApiResult<(SlotRange, ExtensionFacts)> {
    let policy = &st.settings.policy;
    let range =
        SlotRange::new(r.schedule.start, r.slots, policy.slot).map_err(ApiError::internal)?;
    let added = range.following(extra.max(1)).map_err(ApiError::internal)?;
    let next_free = !st
        .store
        .claims_between(added.start(), added.end())
        .await?
        .iter()
        .any(|c| c.channel == r.channel);
    let mut quota_check = Ok(());
    for (month, n) in quota::slots_by_month(&added, &policy.time_zone) {
        let used = st.store.quota_used(r.member, month).await?;
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

/// Extend a confirmed or live reservation (when offered: the next slots are free and the
/// quota allows).
#[utoipa::path(post, path = "/api/v1/reservations/{id}/extend", tag = "reservations", request_body = ExtendBody,
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn extend(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExtendBody>,
) -> ApiResult<Json<ReservationView>> {
    let r = owned(&st, &m, &id).await?;
    let now = st.clock.now();
    let policy = &st.settings.policy;
    let (added, facts) = extension_facts(&st, &r, b.slots).await?;
    lifecycle::check_extension(r.status, &r.schedule, r.slots, facts, now, policy).map_err(
        |e| match e {
            lifecycle::ExtensionRefused::Lifecycle(l) => ApiError::from(l),
            lifecycle::ExtensionRefused::TooLong { .. } => ApiError::field("slots", e.to_string()),
            lifecycle::ExtensionRefused::Quota(q) => {
                ApiError::new(ErrorCode::QuotaExceeded, q.to_string())
            }
            lifecycle::ExtensionRefused::SlotsTaken => {
                ApiError::new(ErrorCode::SlotTaken, e.to_string())
            }
            lifecycle::ExtensionRefused::NotOffered { .. } => {
                ApiError::new(ErrorCode::NotOffered, e.to_string())
            }
        },
    )?;
    let channel = st.store.channel(r.channel).await?;
    let slots = r.slots + b.slots;
    let end = added.end();
    let done = st
        .store
        .extend(ExtendCommand {
            reservation: r.id,
            expected: r.status,
            claims: added.slot_starts().collect(),
            quota: quota::slots_by_month(&added, &policy.time_zone),
            quota_max: policy.quota_slots_per_month,
            slots,
            schedule: slotcast_domain::Schedule {
                end,
                connect_to: end + policy.connect_after,
                extension_offer_at: end - policy.extension_offer_before,
                ..r.schedule
            },
            fee: Money::fee(channel.tariff, slots)
                .map_err(|e| ApiError::field("slots", e.to_string()))?,
            at: now,
            actor: Actor::Member(m.id),
            outbox: Vec::new(),
        })
        .await?;
    Ok(Json(ReservationView::new(&done, &st.settings.public_url)))
}
