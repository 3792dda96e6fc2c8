//! HTTP delivery of live channels, all behind a valid play token:
//!
//! - `GET /live/<channel>.flv?token=` — HTTP-FLV (VLC, ffplay, flv.js);
//! - `GET /live/<channel>.mp4?token=` — an fMP4 stream (init segment, then one fragment per
//!   video frame) for the first-party MSE player;
//! - `GET /live/<channel>/index.m3u8?token=` and the parts, segments and init segments it
//!   names — LL-HLS with blocking playlist reload and preload hints;
//! - `GET /preview/<reservation>.flv?token=` — the broadcaster's preview (a preview token
//!   from the center), which carries the publisher's media before the start too.
//!
//! Capacity is counted per play-token session across all of them: a connection holds its
//! seat while open; an HLS viewer holds it while it keeps fetching. Errors have the shape of
//! the REST API: `{"error": {"code", "message"}}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use slotcast_domain::token::{self, PlayClaims, TokenError};
use slotcast_media::feed::{Cursor, FlvViewer, Read};
use slotcast_media::hls::{Lookup, Readiness, Resource, parse_blocking_request, parse_resource};

use crate::StreamNode;
use crate::channel::{Channel, Output};

/// Bytes gathered into one body chunk at most.
const CHUNK: usize = 256 << 10;
/// How long a blocking HLS request waits for what it asked for.
const BLOCK: Duration = Duration::from_secs(6);

/// The delivery routes, to be merged into the server's router.
pub fn router(node: Arc<StreamNode>) -> Router {
    Router::new()
        .route("/live/{file}", get(live_file))
        .route("/live/{channel}/{file}", get(hls))
        .route("/preview/{file}", get(preview))
        .with_state(node)
}

/// An error in the REST API's shape.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

fn token_of(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// Checks the token against `secret` and that it is for `channel`.
fn authorize(
    node: &StreamNode,
    secret: &[u8; 32],
    query: Option<&str>,
) -> Result<PlayClaims, Box<Response>> {
    let Some(raw) = token_of(query) else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "token_required",
            "a play token is required: get one from POST /api/v1/programs/{slug}/play",
        )));
    };
    token::verify(secret, raw, node.now()).map_err(|e| {
        let code = match e {
            TokenError::Expired { .. } => "token_expired",
            _ => "token_invalid",
        };
        Box::new(error(StatusCode::UNAUTHORIZED, code, e.to_string()))
    })
}

fn channel_for(
    node: &StreamNode,
    claims: &PlayClaims,
    name: &str,
) -> Result<Arc<Channel>, Box<Response>> {
    match node.channel(claims.channel) {
        Some(ch) if ch.name() == name => Ok(ch),
        Some(_) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "wrong_channel",
            "this play token is for another channel",
        ))),
        None => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no channel `{name}` on this stream node"),
        ))),
    }
}

fn full(e: slotcast_media::Full) -> Response {
    error(
        StatusCode::CONFLICT,
        "channel_full",
        format!(
            "the channel is full ({} viewers); try again later",
            e.capacity
        ),
    )
}

fn streaming(content_type: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// Waits for the channel's next data, or `deadline`; false on timeout.
async fn wait_data(ch: &Channel, check: impl Fn(&Channel) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + BLOCK;
    loop {
        let notified = ch.data.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if check(ch) {
            return true;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return false;
        }
    }
}

/// How a connection-based viewer's bytes are made from its feed.
enum Format {
    Flv(FlvViewer),
    Mp4,
}

/// One HTTP-FLV or fMP4 viewer: its cursor in the feed and what it holds while connected.
struct Viewer<S> {
    out: Arc<Output>,
    format: Format,
    cursor: Cursor,
    head: Option<Bytes>,
    /// Where bytes sent are counted (not for previews).
    channel: Option<Arc<Channel>>,
    /// Released (the admission seat freed) when the response body is dropped.
    _seat: S,
}

impl<S> Viewer<S> {
    /// The next body chunk: what the feed has beyond the cursor, waiting for it if needed;
    /// `None` ends the response (dropped for lagging, or the preview ended).
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        loop {
            let notified = self.out.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (read, buf) = {
                let feed = match self.format {
                    Format::Flv(_) => &self.out.flv,
                    Format::Mp4 => &self.out.mp4,
                };
                let feed = feed.read().expect("feed lock");
                // Sized once: what a read would give, measured on a copy of the cursor.
                let mut len = 0;
                feed.read(&mut self.cursor.clone(), CHUNK, |p| len += p.bytes().len());
                let mut buf = BytesMut::with_capacity(len);
                let read = feed.read(&mut self.cursor, CHUNK, |p| match &mut self.format {
                    Format::Flv(w) => w.write(p, &mut buf),
                    Format::Mp4 => buf.extend_from_slice(p.bytes()),
                });
                (read, buf)
            };
            match read {
                Read::Sent => {
                    if let Some(ch) = &self.channel {
                        ch.sent(buf.len());
                    }
                    return Some(buf.freeze());
                }
                Read::Dropped { lags } => {
                    tracing::info!(lags, "viewer dropped: it kept falling behind");
                    metrics::counter!("slotcast_stream_viewers_dropped_total").increment(1);
                    return None;
                }
                Read::Wait if self.out.is_closed() => return None,
                Read::Wait => notified.await,
            }
        }
    }
}

/// Streams `out` in `format` until the viewer is dropped, the output closes or the client
/// goes away.
fn viewer_body<S: Send + 'static>(
    out: Arc<Output>,
    format: Format,
    seat: S,
    channel: Option<Arc<Channel>>,
) -> Body {
    let viewer = Viewer {
        out,
        head: matches!(format, Format::Flv(_)).then(FlvViewer::file_header),
        format,
        cursor: Cursor::new(),
        channel,
        _seat: seat,
    };
    Body::from_stream(futures_util::stream::unfold(viewer, |mut v| async move {
        let chunk = v.next().await?;
        Some((Ok::<Bytes, Infallible>(chunk), v))
    }))
}

async fn live_file(
    State(node): State<Arc<StreamNode>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (name, format, content_type) = if let Some(name) = file.strip_suffix(".flv") {
        (name, Format::Flv(FlvViewer::new()), "video/x-flv")
    } else if let Some(name) = file.strip_suffix(".mp4") {
        (name, Format::Mp4, "video/mp4")
    } else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "play /live/<channel>.flv, /live/<channel>.mp4 or /live/<channel>/index.m3u8",
        );
    };
    let claims = match authorize(&node, &node.token_key, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let ch = match channel_for(&node, &claims, name) {
        Ok(ch) => ch,
        Err(r) => return *r,
    };
    let seat = match ch.connect(claims.session) {
        Ok(seat) => seat,
        Err(e) => return full(e),
    };
    streaming(
        content_type,
        viewer_body(ch.live.clone(), format, seat, Some(ch)),
    )
}

async fn preview(
    State(node): State<Arc<StreamNode>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let secret = token::preview_secret(&node.token_key);
    let claims = match authorize(&node, &secret, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let wanted = file
        .strip_suffix(".flv")
        .and_then(|id| id.parse::<i64>().ok());
    let Some(reservation) = claims.reservation.filter(|r| Some(r.0) == wanted) else {
        return error(
            StatusCode::FORBIDDEN,
            "wrong_reservation",
            "this preview token is for another reservation",
        );
    };
    let Some(ch) = node.channel(claims.channel) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such channel here");
    };
    let Some(out) = ch.preview(reservation) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_publishing",
            "nothing is being published for this reservation",
        );
    };
    streaming(
        "video/x-flv",
        viewer_body(out, Format::Flv(FlvViewer::new()), (), None),
    )
}

async fn hls(
    State(node): State<Arc<StreamNode>>,
    Path((name, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(resource) = parse_resource(&file) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such HLS resource");
    };
    let claims = match authorize(&node, &node.token_key, query.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let ch = match channel_for(&node, &claims, &name) {
        Ok(ch) => ch,
        Err(r) => return *r,
    };
    if let Err(e) = ch.admit(claims.session) {
        return full(e);
    }
    let token = token_of(query.as_deref()).unwrap_or_default().to_string();
    match resource {
        Resource::Playlist => {
            let blocking = match parse_blocking_request(query.as_deref().unwrap_or_default()) {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
            };
            if let Some(req) = blocking {
                let ready = |ch: &Channel| {
                    ch.core.lock().expect("channel lock").hls.ready(&req) != Readiness::Wait
                };
                wait_data(&ch, ready).await;
                if ch.core.lock().expect("channel lock").hls.ready(&req) == Readiness::TooFarAhead {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "too_far_ahead",
                        "the requested media sequence is too far beyond the live edge",
                    );
                }
            } else {
                // A first request waits for the first part rather than listing nothing.
                wait_data(&ch, |ch| {
                    ch.core.lock().expect("channel lock").hls.has_media()
                })
                .await;
            }
            let body = ch
                .core
                .lock()
                .expect("channel lock")
                .hls
                .playlist(&format!("token={token}"));
            ch.sent(body.len());
            let mut r = streaming("application/vnd.apple.mpegurl", Body::from(body));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Resource::Init(n) => {
            let init = ch.core.lock().expect("channel lock").hls.init(n);
            match init {
                Some(b) => {
                    ch.sent(b.len());
                    streaming("video/mp4", Body::from(b))
                }
                None => error(StatusCode::NOT_FOUND, "not_found", "no such init segment"),
            }
        }
        Resource::Part { msn, part } => media(&ch, move |ch| ch.hls_part(msn, part)).await,
        Resource::Segment(msn) => media(&ch, move |ch| ch.hls_segment(msn)).await,
    }
}

/// Answers a part or segment request, waiting while it is being made.
async fn media(ch: &Channel, lookup: impl Fn(&Channel) -> Lookup) -> Response {
    let mut found = lookup(ch);
    if found == Lookup::Wait {
        wait_data(ch, |ch| lookup(ch) != Lookup::Wait).await;
        found = lookup(ch);
    }
    match found {
        Lookup::Ready(chunks) => {
            let len: usize = chunks.iter().map(Bytes::len).sum();
            ch.sent(len);
            let body = Body::from_stream(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<Bytes, Infallible>),
            ));
            let mut r = streaming("video/mp4", body);
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
        Lookup::Wait => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "not available yet; retry",
        ),
        Lookup::Gone => error(StatusCode::NOT_FOUND, "not_found", "no longer available"),
    }
}
