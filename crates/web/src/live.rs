//! The broadcaster's live dashboard (`/my/reservations/{id}/live`): the preview before the
//! start, on air or not, elapsed and remaining time on the service's clock, viewers,
//! bitrate, picture and recording — rendered once, then updated by `dashboard.js` from
//! the API's event stream — and the extension offer, accepted with one click.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::auth::Authed;
use slotcast_center::error::{ApiError, ErrorCode};
use slotcast_center::ops::play;
use slotcast_center::ops::reservations as op;
use slotcast_domain::{Money, Status, Timestamp};
use slotcast_store::Member;

use crate::forms::{Errs, Signed, check_csrf, member_layout};
use crate::i18n::Lang;
use crate::my::{DoneQuery, MyRow, load};
use crate::pages::{Layout, csrf_ok, failed, render, with_csrf_cookie};
use crate::reserve::money;

#[derive(Template)]
#[template(path = "live.html")]
struct LivePage {
    l: Layout,
    r: MyRow,
    slug: String,
    start_ms: i64,
    end_ms: i64,
    air: &'static str,
    elapsed: String,
    remaining: String,
    viewers: u32,
    capacity: u32,
    bitrate: String,
    picture: String,
    recording: String,
    offer: u32,
    offer_choices: Vec<(u32, String)>,
    notice: Option<&'static str>,
    errs: Errs,
}

/// `h:mm:ss`.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn live_page(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    m: &Member,
    rec: &op::Record,
    offer: u32,
    (notice, errs): (Option<&'static str>, Errs),
) -> Response {
    let r = &rec.reservation;
    let (mut l, fresh) = member_layout(st, headers, lang, m, "my", "");
    l.title = format!("{} · {}", l.m.dashboard_title, r.program.title);
    let csrf = l.csrf.clone();
    let now = st.clock.now();
    let (start, end) = (r.schedule.start, r.schedule.end);
    let live = st.stats.live(r.id).unwrap_or_default();
    let ms = |a: Timestamp, b: Timestamp| b.as_millisecond() - a.as_millisecond();
    let air = if now >= end || r.status == Status::Completed {
        l.m.dash_ended
    } else if live.on_air {
        l.m.dash_on_air
    } else if live.publishing {
        l.m.dash_waiting
    } else {
        l.m.dash_off_air
    };
    let extra = |n: u32| {
        Money::fee(rec.channel.tariff, n)
            .map(money)
            .unwrap_or_default()
    };
    let slot_minutes = st.settings.policy.slot.minutes();
    let offer_choices = (1..=offer)
        .map(|n| {
            (
                n,
                format!("+{} {} ({})", n * slot_minutes, l.m.minutes, extra(n)),
            )
        })
        .collect();
    let page = LivePage {
        r: MyRow::new(st, &l, r, &rec.channel.name, rec.stats.as_ref()),
        slug: r.slug.clone(),
        start_ms: start.as_millisecond(),
        end_ms: end.as_millisecond(),
        air,
        elapsed: if now < start {
            "—".into()
        } else {
            span(ms(start, now.min(end)))
        },
        remaining: span(ms(now.max(start), end)),
        viewers: live.viewers,
        capacity: rec.channel.capacity,
        bitrate: if live.publishing {
            format!("{} kbit/s", live.bitrate_kbps)
        } else {
            "—".into()
        },
        picture: match (live.width, live.height) {
            (Some(w), Some(h)) => format!("{w}×{h} · {:.1} fps", live.fps),
            _ => "—".into(),
        },
        recording: live.recording,
        offer,
        offer_choices,
        notice,
        errs: errs.in_lang(l.lang),
        l,
    };
    with_csrf_cookie(render(&page), &csrf, fresh)
}

/// `GET /my/reservations/{id}/live`.
pub async fn dashboard(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
    Signed(m): Signed,
    headers: HeaderMap,
) -> Response {
    let rec = match load(&st, &m, &id).await {
        Ok(rec) => rec,
        Err(e) => return failed(&st, &headers, &e),
    };
    let offer = match op::offer(&st, &rec.reservation).await {
        Ok(n) => n,
        Err(e) => return failed(&st, &headers, &e),
    };
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = (q.done.as_deref() == Some("extended")).then_some(t.extended_notice);
    live_page(
        &st,
        &headers,
        q.lang.as_deref(),
        &m,
        &rec,
        offer,
        (notice, Errs::default()),
    )
}

/// `POST /my/reservations/{id}/preview` (the dashboard, with the CSRF header): where the
/// browser plays the broadcaster's preview.
pub async fn preview(
    State(st): State<AppState>,
    Path(id): Path<String>,
    viewer: Option<Authed>,
    headers: HeaderMap,
) -> Response {
    let Some(Authed(m)) = viewer else {
        return ApiError::unauthenticated().into_response();
    };
    if !csrf_ok(&headers, None) {
        return ApiError::new(ErrorCode::CrossOrigin, "reload the page and try again")
            .into_response();
    }
    let rec = match load(&st, &m, &id).await {
        Ok(rec) => rec,
        Err(e) => return e.into_response(),
    };
    match play::preview_mse(&st, &rec.reservation) {
        Ok(url) => {
            Json(serde_json::json!({ "url": crate::pages::for_page(&st, url) })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The extension form.
#[derive(Debug, Deserialize)]
pub struct ExtendForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slots: String,
}

/// `POST /my/reservations/{id}/extend`: takes the offered extension.
pub async fn extend(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<ExtendForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let rec = match load(&st, &m, &id).await {
        Ok(rec) => rec,
        Err(e) => return failed(&st, &headers, &e),
    };
    let slots = f.slots.trim().parse::<u32>().unwrap_or(0);
    match op::extend(&st, &m, rec.reservation.clone(), slots).await {
        Ok(r) => {
            Redirect::to(&format!("/my/reservations/{}/live?done=extended", r.id)).into_response()
        }
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let offer = op::offer(&st, &rec.reservation).await.unwrap_or(0);
            let mut res = live_page(&st, &headers, None, &m, &rec, offer, (None, Errs::of(&e)));
            *res.status_mut() = e.code.status();
            res
        }
    }
}
