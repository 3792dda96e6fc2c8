//! What the broadcaster sees of a running program (live statistics over SSE, the preview
//! token) and the recording download (a replay grant for the owner: the stream node, which
//! owns the recordings, serves the file).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::reservations::owned;
use crate::api::views::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::port::LiveView;
use crate::state::AppState;

/// One live statistics event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveEvent {
    /// What the stream node measures.
    #[serde(flatten)]
    pub stats: LiveView,
    /// Start of the program.
    pub started_at: String,
    /// End of the program.
    pub ends_at: String,
    /// The server's time.
    pub server_time: String,
    /// The reservation's state.
    pub status: String,
    /// Slots the program can be extended by now (`POST /reservations/{id}/extend`);
    /// 0 when no extension is offered.
    pub offer_slots: u32,
}

/// Live statistics of your program as Server-Sent Events.
///
/// One event about once a second: `event: live`, its `data:` one `LiveEvent` JSON object
/// (`#/components/schemas/LiveEvent`: whether it is on air and published, viewers, bitrate,
/// picture size and rate, recording state, the program's times, the server's time and the
/// reservation's status). Comment lines keep the connection open through idle proxies. The
/// stream ends after the event that shows a final state (`completed`, `cancelled` or
/// `expired`).
#[utoipa::path(get, path = "/api/v1/reservations/{id}/live", tag = "reservations", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "`event: live` / `data: <LiveEvent>` about once a second, until a final state"),
        (status = 404, body = ErrorBody)))]
pub async fn live(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let r = owned(&st, &m, &id).await?;
    let id = r.id;
    let stream =
        futures_util::stream::unfold((st, r, true), move |(st, mut r, first)| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(fresh) = st.store.reservation(id).await {
                    if !r.status.holds_slots() && !fresh.status.holds_slots() {
                        return None;
                    }
                    r = fresh;
                }
            }
            let offer_slots = crate::ops::reservations::offer(&st, &r).await.unwrap_or(0);
            let event = LiveEvent {
                offer_slots,
                stats: st.stats.live(id).unwrap_or_default(),
                started_at: format!("{:.3}", r.schedule.start),
                ends_at: format!("{:.3}", r.schedule.end),
                server_time: format!("{:.3}", st.clock.now()),
                status: r.status.to_string(),
            };
            let ev = Event::default()
                .event("live")
                .json_data(&event)
                .unwrap_or_default();
            Some((Ok::<Event, Infallible>(ev), (st, r, false)))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A preview token and URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// The preview token.
    pub token: String,
    /// Until when it works.
    pub expires_at: String,
    /// HTTP-FLV URL of the publisher's media, before the start too.
    pub url: String,
}

/// A token for the broadcaster's own preview of what the publisher sends.
#[utoipa::path(post, path = "/api/v1/reservations/{id}/preview", tag = "reservations", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 200, body = PreviewView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn preview(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PreviewView>> {
    let r = owned(&st, &m, &id).await?;
    let (token, expires, url) = crate::ops::play::preview(&st, &r)?;
    Ok(Json(PreviewView {
        url,
        token,
        expires_at: format!("{expires:.3}"),
    }))
}

/// The broadcaster downloads the recording of their program.
#[utoipa::path(get, path = "/api/v1/reservations/{id}/recording", tag = "reservations", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 303, description = "to the stream node's download URL of the recording (a replay token valid for a few minutes)"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn recording(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = owned(&st, &m, &id).await?;
    let url = crate::ops::play::download(&st, &r)?;
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(ApiError::internal)?,
    );
    Ok(res)
}
