//! HTTP delivery, at the paths of [`slotcast_domain::playback`]; every viewer is admitted
//! by a play token of the right kind (see [`slotcast_domain::token`]) and then plays in a
//! play session ([`crate::session`]):
//!
//! - `GET /live/<channel>.flv?token=` — HTTP-FLV (VLC, ffplay, flv.js); served here when
//!   the connection came through HTTP first or the node has no pacer, otherwise taken
//!   before HTTP reads it and written by the channel ([`crate::direct`]);
//! - `GET /live/<channel>.mp4?token=` — an fMP4 stream (init segment, then one fragment per
//!   video frame) for the first-party MSE player;
//! - `GET /live/<channel>/index.m3u8?token=` — LL-HLS: a multivariant playlist naming
//!   `media.m3u8?session=…` (blocking playlist reload, preload hints), whose parts,
//!   segments and init segments carry the program's access key instead of the session
//!   (`?program=…&access=…`, [`token::media_access`] under this process's secret), the
//!   same for every viewer of the program, and are answered cacheable: a CDN in front
//!   fetches each once;
//! - `GET /vod/<slug>/index.m3u8?token=` and `…/recording.mp4?token=` — a replay: HLS VOD
//!   by byte ranges of the recording, or the recording itself (`&download=1`: as an
//!   attachment);
//! - `GET /preview/<reservation>.flv|.mp4?token=` — the broadcaster's preview, which carries the
//!   publisher's media before the start too (and what an edge node pulls a program from
//!   its origin with, [`crate::relay`]).
//!
//! A live token admits only for its program: its viewers read the channel's shared filler
//! and their program's media, never another program's (the feeds and the packager label
//! everything they hold). A live token is refused from its program's end on; a viewer who
//! stays past the end sees the filler for [`linger`](crate::StreamConfig::linger) and is
//! then closed, at once if another program follows. Capacity is counted per grant across
//! all protocols: a connection holds its seat while open, an HLS session while it keeps
//! polling. Errors have the REST API's shape ([`PlayError`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use slotcast_domain::playback::{self, query_param};
use slotcast_domain::token::{self, PlayClaims, PlayKind};
use slotcast_domain::{ChannelId, Timestamp};
use slotcast_media::feed::{Cursor, Encoding, FlvViewer, Piece, Read, SHARED};
use slotcast_media::hls::{
    Lookup, Readiness, Resource, multivariant_playlist, parse_blocking_request, parse_resource,
    vod_playlist,
};

use crate::StreamNode;
use crate::channel::{Channel, Reader};
use crate::error::PlayError;
use crate::session::Session;
use crate::vod;

/// Bytes gathered into one body chunk at most.
pub(crate) const CHUNK: usize = 256 << 10;
/// How long a blocking HLS request waits for what it asked for.
const BLOCK: Duration = Duration::from_secs(6);

/// The delivery routes, to be merged into the server's router.
pub fn router(node: Arc<StreamNode>) -> Router {
    Router::new()
        .route(playback::LIVE_FILE_ROUTE, get(live_file))
        .route(playback::LIVE_HLS_ROUTE, get(hls))
        .route(playback::VOD_ROUTE, get(vod_file))
        .route(playback::PREVIEW_ROUTE, get(preview))
        .with_state(node)
}

pub(crate) type Answer = Result<Response, PlayError>;

/// The claims of the query's token, if it verifies and grants `want`.
fn admit(node: &StreamNode, query: Option<&str>, want: PlayKind) -> Result<PlayClaims, PlayError> {
    let raw = query_param(query, "token").ok_or(PlayError::TokenRequired)?;
    let claims = token::verify(&node.token_key, raw, node.now())?;
    if claims.kind != want {
        return Err(PlayError::WrongKind {
            got: claims.kind,
            want,
        });
    }
    Ok(claims)
}

/// The channel `name`, if it is the one `id` names.
fn channel_for(node: &StreamNode, id: ChannelId, name: &str) -> Result<Arc<Channel>, PlayError> {
    match node.channel(id) {
        Some(ch) if ch.name() == name => Ok(ch),
        Some(_) => Err(PlayError::WrongChannel),
        None => Err(PlayError::NotFound("channel")),
    }
}

/// A live token for channel `name` whose program has not ended.
pub(crate) fn admit_live(
    node: &StreamNode,
    query: Option<&str>,
    name: &str,
) -> Result<(PlayClaims, Arc<Channel>), PlayError> {
    if node.fenced() {
        return Err(PlayError::NotServing);
    }
    let claims = admit(node, query, PlayKind::Live)?;
    let ch = channel_for(node, claims.channel, name)?;
    if node.now() >= claims.program_end {
        return Err(PlayError::ProgramEnded);
    }
    Ok((claims, ch))
}

/// The session of the query, of kind `want`.
fn session_of(
    node: &StreamNode,
    query: Option<&str>,
    want: PlayKind,
) -> Result<(String, Session), PlayError> {
    let id = query_param(query, "session").ok_or(PlayError::SessionRequired)?;
    let session = node.session(id)?;
    if session.claims.kind != want {
        return Err(PlayError::WrongKind {
            got: session.claims.kind,
            want,
        });
    }
    Ok((id.to_owned(), session))
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

/// A playlist answer (live or replay): reloaded by players, so never cached.
fn playlist(body: String) -> Response {
    let mut r = streaming("application/vnd.apple.mpegurl", Body::from(body));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
pub(crate) enum Format {
    Flv(FlvViewer),
    Mp4,
}

impl Format {
    /// The feed it reads.
    pub(crate) fn encoding(&self) -> Encoding {
        match self {
            Format::Flv(_) => Encoding::Flv,
            Format::Mp4 => Encoding::Mp4,
        }
    }

    /// Appends `piece` of the feed to `buf` as this format sends it.
    pub(crate) fn write(&mut self, piece: Piece<'_>, buf: &mut BytesMut) {
        match self {
            Format::Flv(w) => w.write(piece, buf),
            Format::Mp4 => buf.extend_from_slice(piece.bytes()),
        }
    }
}

/// When a live viewer is closed: its program's end plus the linger, on the node's clock.
struct Until {
    node: Arc<StreamNode>,
    at: Timestamp,
}

/// One HTTP-FLV or fMP4 viewer: its cursor in the feed and what it holds while connected.
struct Viewer<S> {
    reader: Reader,
    format: Format,
    cursor: Cursor,
    head: Option<Bytes>,
    /// Where bytes sent are counted (not for previews).
    channel: Option<Arc<Channel>>,
    until: Option<Until>,
    /// Released (the admission seat freed) when the response body is dropped.
    _seat: S,
}

impl<S> Viewer<S> {
    /// The next body chunk: what the feed has beyond the cursor, waiting for it if needed;
    /// `None` ends the response (dropped for lagging, its program over, or the preview
    /// ended).
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        loop {
            if let Some(u) = &self.until
                && (u.node.now() >= u.at || u.node.fenced())
            {
                return None;
            }
            let notified = self.reader.out.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (read, buf) = {
                let feed = self.reader.feed().read().expect("feed lock");
                // Sized once: what a read would give, measured on a copy of the cursor.
                let mut len = 0;
                feed.read(&mut self.cursor.clone(), CHUNK, |p| len += p.bytes().len());
                let mut buf = BytesMut::with_capacity(len);
                let read = feed.read(&mut self.cursor, CHUNK, |p| self.format.write(p, &mut buf));
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
                Read::Ended => return None,
                Read::Wait if self.reader.out.is_closed() => return None,
                Read::Wait => match &self.until {
                    Some(u) => {
                        let deadline = u.node.instant_of(u.at);
                        tokio::select! {
                            () = notified => {}
                            () = tokio::time::sleep_until(deadline) => {}
                        }
                    }
                    None => notified.await,
                },
            }
        }
    }
}

/// Streams `reader`'s feed in `format` until the viewer is dropped or closed, the output
/// closes or the client goes away.
fn viewer_body<S: Send + 'static>(
    reader: Reader,
    format: Format,
    cursor: Cursor,
    seat: S,
    channel: Option<Arc<Channel>>,
    until: Option<Until>,
) -> Body {
    let viewer = Viewer {
        reader,
        head: matches!(format, Format::Flv(_)).then(FlvViewer::file_header),
        format,
        cursor,
        channel,
        until,
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
) -> Answer {
    let (name, format, content_type) = if let Some(name) = file.strip_suffix(".flv") {
        (name, Format::Flv(FlvViewer::new()), "video/x-flv")
    } else if let Some(name) = file.strip_suffix(".mp4") {
        (name, Format::Mp4, "video/mp4")
    } else {
        return Err(PlayError::NotFound("live stream"));
    };
    let (claims, ch) = admit_live(&node, query.as_deref(), name)?;
    let seat = ch.connect(claims.grant)?;
    let until = Until {
        at: claims.program_end + node.config.linger(),
        node: node.clone(),
    };
    let cursor = Cursor::for_program(program_label(&claims));
    Ok(streaming(
        content_type,
        viewer_body(
            ch.read_live(format.encoding()),
            format,
            cursor,
            seat,
            Some(ch),
            Some(until),
        ),
    ))
}

/// The feed and packager label of the claims' program.
pub(crate) fn program_label(claims: &PlayClaims) -> u64 {
    crate::director::label_of(claims.reservation)
}

async fn preview(
    State(node): State<Arc<StreamNode>>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let claims = admit(&node, query.as_deref(), PlayKind::Preview)?;
    let (id, format, kind) = if let Some(id) = file.strip_suffix(".flv") {
        (id, Format::Flv(FlvViewer::new()), "video/x-flv")
    } else if let Some(id) = file.strip_suffix(".mp4") {
        (id, Format::Mp4, "video/mp4")
    } else {
        return Err(PlayError::NotFound("preview"));
    };
    if id.parse::<i64>().ok() != Some(claims.reservation.0) {
        return Err(PlayError::WrongProgram);
    }
    let ch = node
        .channel(claims.channel)
        .ok_or(PlayError::NotFound("channel"))?;
    let reader = ch
        .read_preview(claims.reservation, format.encoding())
        .ok_or(PlayError::NotPublishing)?;
    Ok(streaming(
        kind,
        viewer_body(reader, format, Cursor::new(), (), None, None),
    ))
}

async fn hls(
    State(node): State<Arc<StreamNode>>,
    Path((name, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let resource = parse_resource(&file).ok_or(PlayError::NotFound("HLS resource"))?;
    let query = query.as_deref();
    if resource == Resource::Entry {
        let (claims, ch) = match admit_live(&node, query, &name) {
            // An edge mirroring the program (see `mirror`): no seat, it has no viewer.
            Err(PlayError::WrongKind {
                got: PlayKind::Preview,
                ..
            }) => {
                let claims = admit(&node, query, PlayKind::Preview)?;
                (claims, channel_for(&node, claims.channel, &name)?)
            }
            live => {
                let (claims, ch) = live?;
                ch.admit(claims.grant)?;
                (claims, ch)
            }
        };
        let id = node.mint_session(claims, node.config.hls_idle())?;
        ch.want_hls();
        let (bandwidth, codecs) = ch.hls_variant();
        let media = format!("{}?session={id}", playback::MEDIA_PLAYLIST);
        return Ok(playlist(multivariant_playlist(
            &media,
            bandwidth,
            codecs.as_deref(),
        )));
    }
    if resource != Resource::Playlist {
        return hls_media(&node, (&name, &file), resource, query).await;
    }
    let (id, session) = match session_of(&node, query, PlayKind::Live) {
        Err(PlayError::WrongKind {
            got: PlayKind::Preview,
            ..
        }) => session_of(&node, query, PlayKind::Preview)?,
        live => live?,
    };
    let claims = session.claims;
    let ch = channel_for(&node, claims.channel, &name)?;
    if node.now() >= claims.program_end + node.config.linger() {
        node.end_session(&id);
        return Err(PlayError::ProgramEnded);
    }
    if claims.kind == PlayKind::Live {
        ch.admit(claims.grant)?;
    } else if node.fenced() {
        return Err(PlayError::NotServing);
    }
    if let Some(mirror) = node.mirror(claims.reservation) {
        return mirror.playlist(&ch, query).await;
    }
    ch.want_hls();
    let program = program_label(&claims);
    if let Some(req) = parse_blocking_request(query.unwrap_or_default())
        .map_err(|e| PlayError::BadRequest(e.to_string()))?
    {
        let ready =
            |ch: &Channel| ch.core.lock().expect("channel lock").hls.ready(&req) != Readiness::Wait;
        wait_data(&ch, ready).await;
        if ch.core.lock().expect("channel lock").hls.ready(&req) == Readiness::TooFarAhead {
            return Err(PlayError::TooFarAhead);
        }
    } else {
        // A first request waits for the first part rather than listing nothing.
        wait_data(&ch, |ch| {
            ch.core.lock().expect("channel lock").hls.has_media()
        })
        .await;
    }
    let (body, seen, ended) = {
        let core = ch.core.lock().expect("channel lock");
        let seen = session.seen_program || core.hls.has_label(program);
        let edge = core.hls.edge_label();
        let ended = seen && edge != SHARED && edge != program;
        let body = core.hls.playlist_for(
            &media_query(node.media_key, claims.channel, program),
            Some(program),
        );
        (body, seen, ended)
    };
    if ended {
        node.end_session(&id);
        return Err(PlayError::ProgramEnded);
    }
    if seen && !session.seen_program {
        node.saw_program(&id);
    }
    ch.sent(body.len());
    Ok(playlist(body))
}

/// An init section, part or segment of program `program=` on channel `name`, with the
/// program's media access key (`access=`, from the media playlist) instead of a session:
/// the same URL for every viewer, so a CDN in front of the node caches it once. Answered
/// cacheable; refused without a valid key.
async fn hls_media(
    node: &StreamNode,
    (name, file): (&str, &str),
    resource: Resource,
    query: Option<&str>,
) -> Answer {
    let program = query_param(query, "program")
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or(PlayError::MediaAccess)?;
    let access = query_param(query, "access").ok_or(PlayError::MediaAccess)?;
    if node.fenced() {
        return Err(PlayError::NotServing);
    }
    let ch = node
        .all_channels()
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or(PlayError::NotFound("channel"))?;
    // A program this edge mirrors: its origin's media, by the origin's key.
    if let Some(mirror) = i64::try_from(program)
        .ok()
        .and_then(|p| node.mirror(slotcast_domain::ReservationId(p)))
    {
        return mirror.media(&ch, file, query.unwrap_or_default()).await;
    }
    if !token::media_access_ok(&node.media_key, ch.id(), program, access) {
        return Err(PlayError::MediaAccess);
    }
    ch.want_hls();
    let answer = match resource {
        Resource::Init(n) => {
            let init = ch
                .core
                .lock()
                .expect("channel lock")
                .hls
                .init_for(n, Some(program))
                .ok_or(PlayError::NotFound("init segment"))?;
            ch.sent(init.len());
            Ok(streaming("video/mp4", Body::from(init)))
        }
        Resource::Part { msn, part } => {
            media(&ch, program, msn, move |ch| ch.hls_part(msn, part)).await
        }
        Resource::Segment(msn) => media(&ch, program, msn, move |ch| ch.hls_segment(msn)).await,
        Resource::Entry | Resource::Playlist => unreachable!("answered by hls"),
    };
    Ok(cacheable(answer?))
}

/// The query of the media URLs of `program` on `channel` in a playlist: the program and
/// its access key, no session.
fn media_query(key: [u8; 32], channel: ChannelId, program: u64) -> String {
    format!(
        "program={program}&access={}",
        token::media_access(&key, channel, program)
    )
}

/// A media answer every viewer of the program gets alike: cacheable by a CDN.
fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60, immutable"),
    );
    r
}

/// Answers a part or segment request of segment `msn`, waiting while it is being made;
/// refused when it belongs to another program than `program`.
async fn media(
    ch: &Channel,
    program: u64,
    msn: u64,
    lookup: impl Fn(&Channel) -> Lookup,
) -> Answer {
    let mut found = lookup(ch);
    if found == Lookup::Wait {
        wait_data(ch, |ch| lookup(ch) != Lookup::Wait).await;
        found = lookup(ch);
    }
    let label = ch.core.lock().expect("channel lock").hls.label_of(msn);
    if label.is_some_and(|l| l != SHARED && l != program) {
        return Err(PlayError::NotThisProgram);
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
            Ok(r)
        }
        Lookup::Wait => Err(PlayError::NotReady),
        Lookup::Gone => Err(PlayError::NotFound("part or segment")),
    }
}

/// A replay: the entry playlist and a token on the recording start a session; the media
/// playlist and the recording's byte ranges are served within it.
async fn vod_file(
    State(node): State<Arc<StreamNode>>,
    Path((_program, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let query = query.as_deref();
    let download = query_param(query, "download") == Some("1");
    let with_token = query_param(query, "token").is_some();
    match file.as_str() {
        playback::ENTRY_PLAYLIST if with_token => {
            let (id, path) = replay_session(&node, query)?;
            let index = vod::index(&path).await?;
            let duration_ms = index.duration_ms().max(1);
            let bandwidth = index.valid_len().saturating_mul(8_000) / duration_ms;
            let media = format!("{}?session={id}", playback::MEDIA_PLAYLIST);
            Ok(playlist(multivariant_playlist(&media, bandwidth, None)))
        }
        playback::ENTRY_PLAYLIST => Err(PlayError::TokenRequired),
        playback::MEDIA_PLAYLIST => {
            let (id, session) = session_of(&node, query, PlayKind::Replay)?;
            let index = vod::index(&node.recording_file(session.claims.reservation)?).await?;
            let body = vod_playlist(&index, playback::RECORDING_FILE, &format!("session={id}"));
            Ok(playlist(body))
        }
        playback::RECORDING_FILE if with_token => {
            // Players keep the URL they were redirected to for their next ranges.
            let (id, _) = replay_session(&node, query)?;
            let mut location = format!("{}?session={id}", playback::RECORDING_FILE);
            if download {
                location.push_str("&download=1");
            }
            let mut r = StatusCode::FOUND.into_response();
            let h = r.headers_mut();
            h.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).expect("ascii"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            Ok(r)
        }
        playback::RECORDING_FILE => {
            let (_, session) = session_of(&node, query, PlayKind::Replay)?;
            let reservation = session.claims.reservation;
            let path = node.recording_file(reservation)?;
            let attachment = download.then(|| format!("slotcast-{}.mp4", reservation.0));
            vod::send_file(&path, &headers, attachment).await
        }
        _ => Err(PlayError::NotFound("replay resource")),
    }
}

/// A replay token of the query admits to a new replay session: its id and the recording.
fn replay_session(
    node: &StreamNode,
    query: Option<&str>,
) -> Result<(String, std::path::PathBuf), PlayError> {
    let claims = admit(node, query, PlayKind::Replay)?;
    let path = node.recording_file(claims.reservation)?;
    let id = node.mint_session(claims, node.config.vod_idle)?;
    Ok((id, path))
}
