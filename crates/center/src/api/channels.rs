//! The channel catalogue (operators manage it) and availability per day.

use super::ApiJson;
use super::views::{ChannelView, ErrorBody, ts};
use crate::auth::Operator;
use crate::error::ApiResult;
use crate::ops::operator::save_channel;
use crate::ops::reservations::Availability;
use crate::state::{AppState, Center};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use slotcast_domain::{ChannelDraft, ChannelId};
use utoipa::{IntoParams, ToSchema};

/// Every channel.
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", responses((status = 200, body = [ChannelView])))]
pub async fn list(State(st): State<AppState>) -> ApiResult<Json<Vec<ChannelView>>> {
    Ok(Json(
        st.store
            .channels()
            .await?
            .iter()
            .map(ChannelView::from)
            .collect(),
    ))
}

/// A channel's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    /// Unique name.
    #[schema(min_length = 1, max_length = 40)]
    pub name: String,
    /// Most concurrent viewers (1–1,000,000).
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(deserialize_with = "super::whole")]
    pub capacity: u32,
    /// Bitrate in kbit/s (100–100,000).
    #[schema(minimum = 100, maximum = 100_000)]
    #[serde(deserialize_with = "super::whole")]
    pub bitrate_kbps: u32,
    /// Price per slot in minor units of `currency`.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "super::whole")]
    pub tariff_minor: i64,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// The stream node serving it (default `local`).
    #[schema(min_length = 1, max_length = 40)]
    pub stream_node: Option<String>,
}

impl From<ChannelBody> for ChannelDraft {
    fn from(b: ChannelBody) -> Self {
        ChannelDraft {
            name: b.name,
            capacity: b.capacity,
            bitrate_kbps: b.bitrate_kbps,
            tariff_minor: b.tariff_minor,
            currency: b.currency,
            stream_node: b.stream_node,
        }
    }
}

/// Create a channel (operators).
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", security(("bearer" = []), ("cookie" = [])), request_body = ChannelBody,
    responses((status = 201, body = ChannelView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    _op: Operator,
    ApiJson(b): ApiJson<ChannelBody>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let c = save_channel(&st, None, b.into()).await?;
    Ok((StatusCode::CREATED, Json(ChannelView::from(&c))))
}

/// Change a channel (operators).
#[utoipa::path(put, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = []), ("cookie" = [])), request_body = ChannelBody,
    responses((status = 200, body = ChannelView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    _op: Operator,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ChannelBody>,
) -> ApiResult<Json<ChannelView>> {
    let c = save_channel(&st, Some(ChannelId(id)), b.into()).await?;
    Ok(Json(ChannelView::from(&c)))
}

/// `?date=YYYY-MM-DD`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DateQuery {
    /// A day in the service's time zone (`YYYY-MM-DD`, today by default), from a day ago
    /// to the booking horizon.
    #[param(format = Date)]
    pub date: Option<String>,
}

/// Availability of every channel on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityView {
    /// The day.
    pub date: String,
    /// Its zone.
    pub time_zone: String,
    /// Slot length.
    pub slot_minutes: u32,
    /// Per channel.
    pub channels: Vec<ChannelSlots>,
}

/// One channel's slots.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelSlots {
    /// Channel id.
    pub id: i64,
    /// Channel name.
    pub name: String,
    /// Every slot of the day.
    pub slots: Vec<SlotView>,
}

/// One slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
    /// `free` or `taken`.
    pub state: &'static str,
    /// Whether it can still be booked (free and far enough ahead to confirm in time).
    pub bookable: bool,
    /// The program, for confirmed public and password programs only.
    pub program: Option<SlotProgram>,
}

/// What a taken slot shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotProgram {
    /// Title.
    pub title: String,
    /// `public` or `password`.
    pub visibility: String,
}

/// Free and taken slots per channel for a day.
#[utoipa::path(get, path = "/api/v1/availability", tag = "channels", params(DateQuery),
    responses((status = 200, body = AvailabilityView), (status = 422, body = ErrorBody)))]
pub async fn availability(
    State(st): State<AppState>,
    Query(q): Query<DateQuery>,
) -> ApiResult<impl IntoResponse> {
    let a = crate::ops::reservations::availability(&st, q.date.as_deref()).await?;
    let (from, to) = a.span;
    // The same for every viewer: rendered once per change of the day's availability.
    let body = st
        .listings
        .answer(("availability", from, to), &a, Vec::new(), || {
            super::json_bytes(&availability_view(&st, &a))
        });
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

fn availability_view(st: &Center, a: &Availability) -> AvailabilityView {
    let channels = a
        .channels
        .iter()
        .map(|(c, slots)| ChannelSlots {
            id: c.id.0,
            name: c.name.clone(),
            slots: slots
                .iter()
                .map(|s| SlotView {
                    start: ts(s.start),
                    end: ts(s.end),
                    state: if s.taken { "taken" } else { "free" },
                    bookable: s.bookable,
                    program: s.program.as_ref().map(|(title, v)| SlotProgram {
                        title: title.clone(),
                        visibility: v.to_string(),
                    }),
                })
                .collect(),
        })
        .collect();
    AvailabilityView {
        date: a.date.to_string(),
        time_zone: st.settings.time_zone.clone(),
        slot_minutes: st.settings.policy.slot.minutes(),
        channels,
    }
}
