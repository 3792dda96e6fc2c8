//! What the broadcaster sees of a running program (live statistics over SSE, the preview
//! token), the recording download, and replays as HLS VOD.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slotcast_domain::lifecycle::Status;
use slotcast_domain::token::{self, PlayClaims};
use slotcast_media::fmp4::scan_fragments;
use slotcast_media::hls::vod_playlist;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use utoipa::ToSchema;

use super::reservations::owned;
use crate::api::views::ErrorBody;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::scheduler::LiveView;
use crate::secrets;
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
        return Err(ApiError::conflict(
            "wrong_state",
            format!(
                "only confirmed programs have a preview; this one is {}",
                r.status
            ),
        ));
    }
    let expires = r.schedule.connect_to;
    let token = token::sign(
        &token::preview_secret(st.secrets.token_key()),
        &PlayClaims {
            channel: r.channel,
            reservation: Some(r.id),
            session: u64::from_be_bytes(secrets::random_bytes()),
            expires,
        },
    );
    Ok(Json(PreviewView {
        url: format!(
            "{}/preview/{}.flv?token={token}",
            st.settings.public_url, r.id
        ),
        token,
        expires_at: format!("{expires:.3}"),
    }))
}

/// Streams a file, honouring one `Range: bytes=a-b` (for HLS byte ranges and seeking).
async fn send_file(
    path: &std::path::Path,
    headers: &HeaderMap,
    download_name: Option<String>,
) -> ApiResult<Response> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|_| ApiError::not_found("recording"))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(r);
        }
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let body = Body::from_stream(read_chunks::chunks(file.take(end - start)));
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).expect("ascii"),
        );
    }
    if let Some(name) = download_name {
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).expect("ascii"),
        );
    }
    Ok(r)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` → the half-open range, `None` when unsatisfiable.
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().ok()?, len),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(len),
        ),
    };
    (start < end && start < len).then_some((start, end))
}

/// Reading a file as a stream of chunks.
mod read_chunks {
    use bytes::Bytes;
    use tokio::io::{AsyncRead, AsyncReadExt};

    pub fn chunks<R: AsyncRead + Unpin + Send + 'static>(
        reader: R,
    ) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
        futures_util::stream::unfold(reader, |mut reader| async move {
            let mut buf = vec![0u8; 64 << 10];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), reader))
                }
                Err(e) => Some((Err(e), reader)),
            }
        })
    }
}

/// The broadcaster downloads the recording of their program.
#[utoipa::path(get, path = "/api/v1/reservations/{id}/recording", tag = "reservations",
    responses((status = 200, content_type = "video/mp4"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn recording(
    State(st): State<AppState>,
    Authed(m): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let r = owned(&st, &m, &id).await?;
    if r.status.holds_slots() {
        return Err(ApiError::conflict(
            "recording_in_progress",
            "the recording can be downloaded once the program has ended",
        ));
    }
    let path = st
        .stats
        .recording(r.id)
        .ok_or_else(|| ApiError::not_found("recording"))?;
    send_file(&path, &headers, Some(format!("slotcast-{}.mp4", r.id))).await
}

/// The recording of `slug` if the token (from the play endpoint) is for it.
async fn vod_file(st: &AppState, slug: &str, query: Option<&str>) -> ApiResult<std::path::PathBuf> {
    let raw = query
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("token=")))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_required",
                "a play token is required",
            )
        })?;
    let claims = token::verify(st.secrets.token_key(), raw, st.clock.now())
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "token_invalid", e.to_string()))?;
    let r = st
        .store
        .reservation_by_slug(slug)
        .await
        .map_err(|_| ApiError::not_found("program"))?;
    if claims.reservation != Some(r.id) {
        return Err(ApiError::forbidden(
            "wrong_program",
            "this play token is for another program",
        ));
    }
    st.stats
        .recording(r.id)
        .ok_or_else(|| ApiError::not_found("recording"))
}

/// HLS VOD playlist of a recorded program (byte ranges of the recording).
pub async fn vod_playlist_handler(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let path = vod_file(&st, &slug, query.as_deref()).await?;
    let data = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found("recording"))?;
    let index = scan_fragments(&data)
        .map_err(|e| ApiError::internal(format!("recording {}: {e}", path.display())))?;
    let token = query
        .as_deref()
        .and_then(|q| q.split('&').find(|p| p.starts_with("token=")))
        .unwrap_or_default();
    let body = vod_playlist(&index, "recording.mp4", token);
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl")],
        body,
    )
        .into_response())
}

/// The recording itself, with byte ranges, for the VOD playlist.
pub async fn vod_media(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = vod_file(&st, &slug, query.as_deref()).await?;
    send_file(&path, &headers, None).await
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 1000)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-1", 1000), None);
    }
}
