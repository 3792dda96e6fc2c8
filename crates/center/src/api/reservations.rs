//! The broadcaster's reservations over HTTP: quote, book, list, read, confirm with the
//! key, change, cancel, extend, re-issue the connection profile. Each handler reads its
//! request, calls the use case of [`crate::ops::reservations`] and shapes the answer.

use super::ApiJson;
use super::views::{ErrorBody, MoneyView, ReservationView, TransitionView, WindowView, ts};
use crate::auth::{Authed, ClientIp};
use crate::error::{ApiError, ApiResult};
use crate::ops::{self, reservations as op};
use crate::state::{AppState, Center};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use slotcast_domain::change::ProgramChangeDraft;
use slotcast_domain::request::ReservationDraft;
use slotcast_domain::{ChannelId, ReservationId};
use slotcast_store::{Member, Reservation};
use utoipa::ToSchema;

/// A channel by id or by name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChannelRef {
    /// Channel id.
    Id(#[serde(deserialize_with = "super::whole")] i64),
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
    #[schema(format = DateTime)]
    pub start: String,
    /// Number of slots.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "super::whole")]
    pub slots: i64,
    /// `public`, `password` or `secret`.
    #[schema(pattern = "^(public|password|secret)$")]
    pub visibility: String,
    /// Title (≤ 60 characters).
    #[schema(min_length = 1, max_length = 60)]
    pub title: String,
    /// Genre.
    #[schema(max_length = 40)]
    pub genre: Option<String>,
    /// Outline (≤ 80).
    #[schema(max_length = 80)]
    pub outline: Option<String>,
    /// Detail (≤ 2000).
    #[schema(max_length = 2000)]
    pub detail: Option<String>,
    /// Show your e-mail address on the program page.
    pub show_email: Option<bool>,
    /// A link shown on the program page.
    #[schema(pattern = "^https?://", max_length = 2000)]
    pub web_url: Option<String>,
    /// Required for `password` and `secret` programs.
    #[schema(min_length = 6, max_length = 64)]
    pub viewer_password: Option<String>,
    /// Up to 50 addresses to invite.
    #[schema(max_items = 50)]
    pub invitees: Option<Vec<String>>,
}

impl ReservationBody {
    fn into_request(self) -> op::BookingRequest {
        op::BookingRequest {
            channel: match self.channel {
                ChannelRef::Id(id) => op::ChannelRef::Id(ChannelId(id)),
                ChannelRef::Name(n) => op::ChannelRef::Name(n),
            },
            draft: ReservationDraft {
                start: self.start,
                slots: self.slots,
                visibility: self.visibility,
                title: self.title,
                genre: self.genre,
                outline: self.outline,
                detail: self.detail,
                show_email: self.show_email.unwrap_or(false),
                web_url: self.web_url,
                viewer_password: self.viewer_password,
                invitees: self.invitees.unwrap_or_default(),
            },
        }
    }
}

/// A reservation of the caller by the id in the path; anyone else's, or an id that is no
/// number, is "not found" (ids must not leak).
pub(crate) async fn owned(st: &Center, m: &Member, id: &str) -> ApiResult<Reservation> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("reservation"))?;
    ops::owned(st, m, ReservationId(id)).await
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
#[utoipa::path(post, path = "/api/v1/reservations/quote", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ReservationBody,
    responses((status = 200, body = QuoteView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    State(st): State<AppState>,
    Authed(m): Authed,
    ApiJson(b): ApiJson<ReservationBody>,
) -> ApiResult<Json<QuoteView>> {
    let q = op::quote(&st, &m, b.into_request()).await?;
    Ok(Json(QuoteView {
        fee: q.fee.into(),
        confirm_by: ts(q.schedule.confirm_by),
        connect_window: WindowView {
            from: ts(q.schedule.connect_from),
            to: ts(q.schedule.connect_to),
        },
        available: q.available,
        quota_left: q.quota_left,
        server_time: format!("{:.3}", st.clock.now()),
    }))
}

/// Book slots. The reservation key is e-mailed to you, never returned here.
#[utoipa::path(post, path = "/api/v1/reservations", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ReservationBody,
    responses((status = 201, body = BookingView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authed(m): Authed,
    ApiJson(b): ApiJson<ReservationBody>,
) -> ApiResult<(StatusCode, Json<BookingView>)> {
    let r = op::book(&st, &m, b.into_request()).await?;
    Ok((
        StatusCode::CREATED,
        Json(BookingView {
            reservation: ReservationView::new(&r, &st.settings.public_url),
            server_time: format!("{:.3}", st.clock.now()),
        }),
    ))
}

/// My reservations, newest first.
#[utoipa::path(get, path = "/api/v1/reservations", tag = "reservations", security(("bearer" = []), ("cookie" = [])), 
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

/// One reservation with its log.
#[utoipa::path(get, path = "/api/v1/reservations/{id}", tag = "reservations", security(("bearer" = []), ("cookie" = [])), 
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

/// How the profile may be handed to the caller of this request.
fn profile_to<'a>(st: &Center, client: ClientIp, device: Option<&'a str>) -> op::ProfileTo<'a> {
    op::ProfileTo::for_client(st, client.0, device)
}

/// Confirm with the reservation key: the booking is established and billed, the
/// connection profile issued and the invitees told.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/confirm", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ConfirmBody,
    responses((status = 200, body = ConfirmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn confirm(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    client: ClientIp,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> ApiResult<Json<ConfirmView>> {
    let r = owned(&st, &m, &id).await?;
    let to = profile_to(&st, client, b.device_public_key.as_deref());
    let (done, profile) = op::confirm(&st, &m, r, &b.reservation_key, to).await?;
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
    #[schema(pattern = "^age1[02-9ac-hj-np-z]{58}$")]
    pub device_public_key: String,
    /// The reservation key: it is stored only hashed, so the new profile can carry it only
    /// if you give it again.
    pub reservation_key: String,
}

/// Re-issue the encrypted connection profile for another device.
///
/// Requires a reservation of yours that is `confirmed` or `live` (otherwise 409
/// `wrong_state`), its reservation key again (the key is stored only hashed; a wrong one is
/// 403 `wrong_key`, and after repeated wrong keys 429 `key_locked`) and the device's age
/// X25519 public key (`age1…`; anything else is 422 naming `device_public_key`). The answer's
/// `profile` is the ASCII-armored age file, readable only with that device's secret key.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/profile", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ProfileBody,
    responses((status = 200, body = ConfirmView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn reissue_profile(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ProfileBody>,
) -> ApiResult<Json<ConfirmView>> {
    let r = owned(&st, &m, &id).await?;
    let profile = op::reissue_profile(
        &st,
        &r,
        &b.reservation_key,
        op::ProfileTo::Device(&b.device_public_key),
    )
    .await?;
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
    #[schema(max_length = 60)]
    pub title: Option<String>,
    /// Genre.
    #[schema(max_length = 40)]
    pub genre: Option<String>,
    /// Outline.
    #[schema(max_length = 80)]
    pub outline: Option<String>,
    /// Detail.
    #[schema(max_length = 2000)]
    pub detail: Option<String>,
    /// Show the broadcaster's e-mail.
    pub show_email: Option<bool>,
    /// Link.
    #[schema(max_length = 2000)]
    pub web_url: Option<String>,
    /// New viewer password (password and secret programs).
    #[schema(max_length = 64)]
    pub viewer_password: Option<String>,
    /// The new invitee list (replaces the old).
    #[schema(max_items = 50)]
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

impl ChangeBody {
    fn into_draft(self) -> ProgramChangeDraft {
        ProgramChangeDraft {
            title: self.title,
            genre: self.genre,
            outline: self.outline,
            detail: self.detail,
            show_email: self.show_email,
            web_url: self.web_url,
            viewer_password: self.viewer_password,
            invitees: self.invitees,
            sets_channel: self.channel.is_some(),
            sets_start: self.start.is_some(),
            sets_slots: self.slots.is_some(),
            sets_visibility: self.visibility.is_some(),
        }
    }
}

/// Change the program's data; invitees get one e-mail saying what changed.
#[utoipa::path(patch, path = "/api/v1/reservations/{id}", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ChangeBody,
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ChangeBody>,
) -> ApiResult<Json<ReservationView>> {
    let r = owned(&st, &m, &id).await?;
    let done = op::change(&st, &m, r, b.into_draft()).await?;
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
#[utoipa::path(delete, path = "/api/v1/reservations/{id}", tag = "reservations", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 200, body = CancelView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<CancelView>> {
    let r = owned(&st, &m, &id).await?;
    let (done, charged) = op::cancel(&st, &m, r).await?;
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
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "super::whole")]
    pub slots: u32,
}

/// Extend a confirmed or live reservation (when offered: the next slots are free and the
/// quota allows).
#[utoipa::path(post, path = "/api/v1/reservations/{id}/extend", tag = "reservations", security(("bearer" = []), ("cookie" = [])), request_body = ExtendBody,
    responses((status = 200, body = ReservationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn extend(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ExtendBody>,
) -> ApiResult<Json<ReservationView>> {
    let r = owned(&st, &m, &id).await?;
    let done = op::extend(&st, &m, r, b.slots).await?;
    Ok(Json(ReservationView::new(&done, &st.settings.public_url)))
}
