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
use slotcast_domain::lifecycle::Status;
use slotcast_domain::playback;
use slotcast_domain::token::PlayKind;
use utoipa::ToSchema;

use super::reservations::owned;
use crate::api::views::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::scheduler::LiveView;
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
}

/// Server-Sent Events, about once a second, until the reservation reaches its final state
/// (completed, cancelled or expired; that state is the last event).
#[utoipa::path(get, path = "/api/v1/reservations/{id}/live", tag = "reservations",
    responses((status = 200, content_type = "text/event-stream", body = LiveEvent), (status = 404, body = ErrorBody)))]
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
            let event = LiveEvent {
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
#[utoipa::path(post, path = "/api/v1/reservations/{id}/preview", tag = "reservations",
    responses((status = 200, body = PreviewView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn preview(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PreviewView>> {
    let r = owned(&st, &m, &id).await?;
    if !matches!(r.status, Status::Confirmed | Status::Live) {
        return Err(ApiError::new(
            ErrorCode::WrongState,
            format!(
                "only confirmed programs have a preview; this one is {}",
                r.status
            ),
        ));
    }
    let expires = r.schedule.connect_to;
    let token = super::programs::play_token(&st, PlayKind::Preview, &r, expires);
    Ok(Json(PreviewView {
        url: playback::preview(&st.settings.public_url, r.id, &token),
        token,
        expires_at: format!("{expires:.3}"),
    }))
}

/// The broadcaster downloads the recording of their program.
#[utoipa::path(get, path = "/api/v1/reservations/{id}/recording", tag = "reservations",
    responses((status = 303, description = "to the stream node's download URL of the recording (a replay token valid for a few minutes)"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn recording(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = owned(&st, &m, &id).await?;
    if r.status.holds_slots() {
        return Err(ApiError::new(
            ErrorCode::RecordingInProgress,
            "the recording can be downloaded once the program has ended",
        ));
    }
    if st.stats.recording(r.id).is_none() {
        return Err(ApiError::not_found("recording"));
    }
    let token = super::programs::play_token(
        &st,
        PlayKind::Replay,
        &r,
        st.clock.now() + st.settings.play_token_ttl,
    );
    let url = playback::download(&st.settings.public_url, &r.slug, &token);
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(res)
}
