//! What viewers see: programs by day, one program by its slug, the play grant (password
//! check, signed short-lived token, capacity pre-check) and the iCalendar guide.
//! Secret programs appear in no list, count or feed: only their slug reaches them.

use super::ApiJson;
use super::channels::DateQuery;
use super::views::{ErrorBody, ts};
use crate::auth::{Authed, ClientIp, Operator};
use crate::error::ApiResult;
use crate::ops::play;
use crate::state::{AppState, Center};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A program as viewers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramView {
    /// Unguessable id of the program.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// Outline.
    pub outline: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// `public`, `password` or `secret`.
    pub visibility: String,
    /// Channel name.
    pub channel: String,
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
    /// `scheduled`, `on_air`, `ended` or `on_demand`.
    pub state: &'static str,
    /// `open` or `full`.
    pub admission: &'static str,
    /// The broadcaster's shown name.
    pub broadcaster: String,
    /// The broadcaster's address, if they chose to show it.
    pub email: Option<String>,
    /// The broadcaster's link.
    pub web_url: Option<String>,
    /// The program page.
    pub watch_url: String,
}

fn view(st: &Center, p: &play::Program) -> ProgramView {
    let r = &p.reservation;
    ProgramView {
        slug: r.slug.clone(),
        title: r.program.title.clone(),
        genre: r.program.genre.clone(),
        outline: r.program.outline.clone(),
        detail: r.program.detail.clone(),
        visibility: r.visibility.to_string(),
        channel: p.channel.name.clone(),
        start: ts(r.schedule.start),
        end: ts(r.schedule.end),
        state: p.state.as_str(),
        admission: if p.full { "full" } else { "open" },
        broadcaster: p.broadcaster.display_name.clone(),
        email: r
            .program
            .show_email
            .then(|| p.broadcaster.email.to_string()),
        web_url: r.program.web_url.clone(),
        watch_url: format!("{}/programs/{}", st.settings.public_url, r.slug),
    }
}

/// Programs of a day (public and password ones; never secret ones).
#[utoipa::path(get, path = "/api/v1/programs", tag = "programs", params(DateQuery),
    responses((status = 200, body = [ProgramView]), (status = 422, body = ErrorBody)))]
pub async fn by_date(
    State(st): State<AppState>,
    Query(q): Query<DateQuery>,
) -> ApiResult<impl IntoResponse> {
    let (_, from, to) = play::day_bounds(&st, q.date.as_deref())?;
    let facts = play::facts(&st, from, to).await?;
    // The same for every viewer: rendered once per change of the facts or of what moves.
    let body = st.listings.answer(
        ("programs", from, to),
        &facts,
        play::moving(&st, &facts),
        || {
            let views: Vec<ProgramView> = facts
                .iter()
                .map(|f| view(&st, &play::Program::of(&st, f)))
                .collect();
            super::json_bytes(&views)
        },
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// One program, by its slug (the only way to reach a secret program).
#[utoipa::path(get, path = "/api/v1/programs/{slug}", tag = "programs",
    responses((status = 200, body = ProgramView), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(st): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<ProgramView>> {
    Ok(Json(view(&st, &play::program(&st, &slug).await?)))
}

/// The programs the operator features (the pickup), most recently featured first; never a
/// secret one, nor one that is over without a replay.
#[utoipa::path(get, path = "/api/v1/pickup", tag = "programs", responses((status = 200, body = [ProgramView])))]
pub async fn pickup(State(st): State<AppState>) -> ApiResult<Json<Vec<ProgramView>>> {
    let programs = play::featured(&st).await?;
    Ok(Json(programs.iter().map(|p| view(&st, p)).collect()))
}

/// Feature the program in the pickup (operators). Featuring twice is the same as once; a
/// secret program cannot be featured (409 `wrong_state`).
#[utoipa::path(put, path = "/api/v1/programs/{slug}/pickup", tag = "programs", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn feature(
    State(st): State<AppState>,
    _op: Operator,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    play::feature(&st, &slug, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop featuring the program (operators).
#[utoipa::path(delete, path = "/api/v1/programs/{slug}/pickup", tag = "programs", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unfeature(
    State(st): State<AppState>,
    _op: Operator,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    play::feature(&st, &slug, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A play request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayBody {
    /// The viewer password of a password or secret program.
    #[schema(max_length = 64)]
    pub password: Option<String>,
}

/// Where to play, with a short-lived token.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayView {
    /// `live` or `replay`.
    pub kind: String,
    /// Signed play token, for this program only.
    pub token: String,
    /// Until when it admits a viewer; an admitted viewer plays on in its play session (a
    /// connection, or an HLS session kept while the player polls) to the program's end.
    pub expires_at: String,
    /// Playback URLs.
    pub urls: PlayUrls,
}

/// Playback URLs of the program, live or its recording for a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayUrls {
    /// Low-latency fMP4 stream for the browser player (MSE); for a replay, the recording
    /// (fragmented MP4, byte ranges).
    pub mse: String,
    /// LL-HLS playlist; for a replay, the HLS VOD playlist of the recording.
    pub hls: String,
    /// HTTP-FLV; for a replay (there is no FLV of it), the recording, which the same
    /// players (VLC, ffplay) open.
    pub flv: String,
}

/// Get a play token: password check for protected programs, capacity pre-check (the
/// stream node admits exactly `capacity` viewers). After the program, the same grant
/// (same visibility rules) is for its replay when it was recorded, else 409 `ended`.
#[utoipa::path(post, path = "/api/v1/programs/{slug}/play", tag = "programs", security((), ("bearer" = []), ("cookie" = [])), request_body = PlayBody,
    responses((status = 200, body = PlayView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn play(
    State(st): State<AppState>,
    who: Option<Authed>,
    Path(slug): Path<String>,
    client: ClientIp,
    ApiJson(b): ApiJson<PlayBody>,
) -> ApiResult<Json<PlayView>> {
    let r = play::by_slug(&st, &slug).await?;
    let throttle_key = client.key("play");
    let viewer = who.map(|Authed(m)| m);
    let g = play::grant(
        &st,
        viewer.as_ref(),
        &r,
        b.password
            .as_deref()
            .map_or(play::Credential::None, play::Credential::Password),
        &throttle_key,
    )
    .await?;
    Ok(Json(PlayView {
        kind: g.kind.to_string(),
        token: g.token,
        expires_at: ts(g.expires),
        urls: PlayUrls {
            mse: g.urls.mse,
            hls: g.urls.hls,
            flv: g.urls.flv,
        },
    }))
}

/// iCalendar of the listed programs from yesterday to 30 days ahead (no secret programs,
/// no passwords).
#[utoipa::path(get, path = "/api/v1/guide.ics", tag = "programs", responses((status = 200, content_type = "text/calendar")))]
pub async fn guide_ics(State(st): State<AppState>) -> ApiResult<impl IntoResponse> {
    let now = st.clock.now();
    let from = now - slotcast_domain::jiff::SignedDuration::from_hours(24);
    let to = now + slotcast_domain::jiff::SignedDuration::from_hours(24 * 30);
    let channels = st.store.channels().await?;
    let mut events = Vec::new();
    for r in play::listed(&st, from, to).await? {
        let channel = channels
            .iter()
            .find(|c| c.id == r.channel)
            .map_or("", |c| c.name.as_str());
        events.push(crate::mail::ics::FeedEvent {
            uid: format!(
                "{}@{}",
                r.slug,
                crate::mail::ics::host(&st.settings.public_url)
            ),
            start: r.schedule.start,
            end: r.schedule.end,
            summary: r.program.title.clone(),
            description: format!(
                "{} — channel {channel}",
                r.program.outline.clone().unwrap_or_default()
            ),
            url: format!("{}/programs/{}", st.settings.public_url, r.slug),
        });
    }
    let body = crate::mail::ics::feed("slotcast programs", &events, now);
    Ok((
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    ))
}
