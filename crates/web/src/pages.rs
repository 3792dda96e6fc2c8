//! The page handlers: each asks the center's use cases (`ops::play`) for the programs,
//! turns them into view rows in the service's time zone and renders a template.

use std::collections::BTreeSet;

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::auth::{Authed, ClientIp, cookie};
use slotcast_center::error::{ApiError, ErrorCode};
use slotcast_center::ops::listings::Fact;
use slotcast_center::ops::play::{self, Credential, Program, ProgramState};
use slotcast_domain::jiff::civil::Date;
use slotcast_domain::jiff::{Timestamp, ToSpan};
use slotcast_domain::visibility::Visibility;
use subtle::ConstantTimeEq;

use crate::assets;
use crate::i18n::{Lang, MemberText, Text};

/// The CSRF cookie (double submit: its value must come back in the form or a header).
const CSRF_COOKIE: &str = "slotcast_csrf";
/// The viewer pass cookie of a program (`slotcast_pass_<slug>`).
const PASS_COOKIE: &str = "slotcast_pass_";

/// What every page shows around its content.
pub struct Layout {
    pub(crate) t: &'static Text,
    /// The member and operator pages' texts.
    pub(crate) m: &'static MemberText,
    pub(crate) lang: Lang,
    pub(crate) title: String,
    pub(crate) tz: String,
    pub(crate) now_iso: String,
    pub(crate) now_ms: i64,
    pub(crate) now_text: String,
    pub(crate) version: &'static str,
    pub(crate) noindex: bool,
    /// The CSRF token of the page's forms (member pages).
    pub(crate) csrf: String,
    /// Which member page this is (`my`, `reserve`, `account`, `operator`), for the menu.
    pub(crate) section: &'static str,
    /// Whether the signed-in member is an operator (the menu links the console).
    pub(crate) operator: bool,
}

impl Layout {
    pub(crate) fn new(
        st: &AppState,
        headers: &HeaderMap,
        switch: Option<&str>,
        title: &str,
    ) -> Layout {
        let lang = Lang::choose(switch, headers);
        let now = st.clock.now();
        let local = st.settings.policy.time_zone.to_datetime(now);
        Layout {
            t: lang.text(),
            m: lang.member(),
            lang,
            title: title.to_owned(),
            tz: st.settings.time_zone.clone(),
            now_iso: format!("{:.0}", now),
            now_ms: now.as_millisecond(),
            now_text: format!(
                "{:02}:{:02}:{:02}",
                local.hour(),
                local.minute(),
                local.second()
            ),
            version: assets::version(),
            noindex: false,
            csrf: String::new(),
            section: "",
            operator: false,
        }
    }
}

/// One program in a list.
#[derive(Debug, Clone)]
struct Row {
    slug: String,
    title: String,
    broadcaster: String,
    genre: Option<String>,
    outline: Option<String>,
    channel: String,
    capacity: u32,
    protected: bool,
    start_iso: String,
    end_iso: String,
    start_hm: String,
    end_hm: String,
    start_hour: i8,
    badge: &'static str,
    badge_class: &'static str,
}

impl Row {
    fn new(st: &AppState, t: &Text, p: &Program) -> Row {
        let r = &p.reservation;
        let tz = &st.settings.policy.time_zone;
        // Civil times by hand: this runs for every row of the hottest pages.
        let start = tz.to_datetime(r.schedule.start);
        let end = tz.to_datetime(r.schedule.end);
        let hm = |t: slotcast_domain::jiff::civil::DateTime| {
            format!("{:02}:{:02}", t.hour(), t.minute())
        };
        let (badge, badge_class) = match (p.state, p.full) {
            (ProgramState::OnAir, true) => (t.full, "full"),
            (ProgramState::OnAir, false) => (t.on_air, "on-air"),
            (ProgramState::Scheduled, _) => (t.open, "open"),
            (ProgramState::Ended, _) => (t.ended, "ended"),
            (ProgramState::OnDemand, _) => (t.on_demand, "on-demand"),
        };
        Row {
            slug: r.slug.clone(),
            title: r.program.title.clone(),
            broadcaster: p.broadcaster.display_name.clone(),
            genre: r.program.genre.clone(),
            outline: r.program.outline.clone(),
            channel: p.channel.name.clone(),
            capacity: p.channel.capacity,
            protected: r.visibility != Visibility::Public,
            start_iso: format!("{:.0}", r.schedule.start),
            end_iso: format!("{:.0}", r.schedule.end),
            start_hm: hm(start),
            end_hm: hm(end),
            start_hour: start.hour(),
            badge,
            badge_class,
        }
    }
}

/// `?lang=` on any page.
#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    pub(crate) lang: Option<String>,
}

pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    heading: &'static str,
    message: String,
}

/// The HTML error page for `status` (404, 409, 5xx; others as 404's page with their
/// status).
pub fn error_page(st: &AppState, headers: &HeaderMap, status: StatusCode) -> Response {
    let t = Lang::choose(None, headers).text();
    let (heading, message) = if status.is_server_error() {
        (t.error_title, t.error.to_owned())
    } else {
        (t.not_found_title, t.not_found.to_owned())
    };
    let page = ErrorPage {
        l: Layout::new(st, headers, None, heading),
        heading,
        message,
    };
    (status, render(&page)).into_response()
}

/// An error of the center's use cases as a page: not found → 404, a client error shows its
/// message, our errors are logged and shown as 5xx.
pub(crate) fn failed(st: &AppState, headers: &HeaderMap, e: &ApiError) -> Response {
    let status = e.code.status();
    if status == StatusCode::NOT_FOUND || status.is_server_error() {
        if status.is_server_error() {
            tracing::error!(error = %e.message, detail = ?e.detail, "page failed");
        }
        return error_page(st, headers, status);
    }
    let mut l = Layout::new(st, headers, None, "");
    l.title = l.t.error_title.to_owned();
    let message = match l.lang {
        Lang::Ja => crate::i18n::messages::ja(&e.message).unwrap_or_else(|| e.message.clone()),
        Lang::En => e.message.clone(),
    };
    let page = ErrorPage {
        heading: l.t.error_title,
        message,
        l,
    };
    (status, render(&page)).into_response()
}

#[derive(Template)]
#[template(path = "today.html")]
struct TodayPage {
    l: Layout,
    day: String,
    featured: Vec<Row>,
    on_air: Vec<Row>,
    later: Vec<Row>,
    earlier: Vec<Row>,
}

/// `/`: what is on air now, later today and earlier (ended or on demand).
pub async fn today(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let l = Layout::new(&st, &headers, q.lang.as_deref(), "");
    let (date, from, to) = match play::day_bounds(&st, None) {
        Ok(b) => b,
        Err(e) => return failed(&st, &headers, &e),
    };
    let (programs, featured) = match (
        play::programs(&st, from, to).await,
        play::featured(&st).await,
    ) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => return failed(&st, &headers, &e),
    };
    let mut page = TodayPage {
        featured: featured.iter().map(|p| Row::new(&st, l.t, p)).collect(),
        day: l.lang.day(date),
        on_air: Vec::new(),
        later: Vec::new(),
        earlier: Vec::new(),
        l,
    };
    page.l.title = page.l.t.today_title.to_owned();
    // Featured programs come first, once.
    let shown: Vec<_> = featured.iter().map(|p| p.reservation.id).collect();
    for p in programs
        .iter()
        .filter(|p| !shown.contains(&p.reservation.id))
    {
        let row = Row::new(&st, page.l.t, p);
        match p.state {
            ProgramState::OnAir => page.on_air.push(row),
            ProgramState::Scheduled => page.later.push(row),
            ProgramState::Ended | ProgramState::OnDemand => page.earlier.push(row),
        }
    }
    render(&page)
}

/// A day of the month calendar.
pub(crate) struct CalendarDay {
    pub(crate) date: Date,
    pub(crate) day: i8,
    pub(crate) marked: bool,
    pub(crate) chosen: bool,
}

/// The month of `date` as weeks from Monday (`None` before the first and after the last
/// day), `date` chosen and the days `marked` says marked.
pub(crate) fn month_weeks(
    date: Date,
    marked: impl Fn(Date) -> bool,
) -> Vec<Vec<Option<CalendarDay>>> {
    let first = date.first_of_month();
    let after = first.saturating_add(1.month());
    let lead = usize::from(first.weekday().to_monday_zero_offset().unsigned_abs());
    let mut cells: Vec<Option<CalendarDay>> = (0..lead).map(|_| None).collect();
    let mut d = first;
    while d < after {
        cells.push(Some(CalendarDay {
            date: d,
            day: d.day(),
            marked: marked(d),
            chosen: d == date,
        }));
        d = d.tomorrow().unwrap_or(after);
    }
    while !cells.len().is_multiple_of(7) {
        cells.push(None);
    }
    let mut weeks = Vec::new();
    let mut it = cells.into_iter().peekable();
    while it.peek().is_some() {
        weeks.push(it.by_ref().take(7).collect());
    }
    weeks
}

/// One hour of the grid: the programs starting in it, per channel.
struct GridRow<'a> {
    hour: String,
    cells: Vec<Vec<&'a Row>>,
}

#[derive(Template)]
#[template(path = "guide.html")]
struct GuidePage<'a> {
    l: Layout,
    date: Date,
    day: String,
    month: String,
    prev: Date,
    next: Date,
    keep: String,
    weeks: Vec<Vec<Option<CalendarDay>>>,
    genres: Vec<String>,
    genre: Option<String>,
    rows: &'a [Row],
    channels: Vec<String>,
    grid: Vec<GridRow<'a>>,
}

/// `?genre=&lang=` of the guide.
#[derive(Debug, Default, Deserialize)]
pub struct GuideQuery {
    lang: Option<String>,
    genre: Option<String>,
}

/// `/guide`: today's guide.
pub async fn guide_today(
    State(st): State<AppState>,
    Query(q): Query<GuideQuery>,
    headers: HeaderMap,
) -> Response {
    guide_of(&st, None, q, &headers).await
}

/// `/guide/YYYY-MM-DD`.
pub async fn guide(
    State(st): State<AppState>,
    Path(date): Path<String>,
    Query(q): Query<GuideQuery>,
    headers: HeaderMap,
) -> Response {
    guide_of(&st, Some(&date), q, &headers).await
}

async fn guide_of(
    st: &AppState,
    date: Option<&str>,
    q: GuideQuery,
    headers: &HeaderMap,
) -> Response {
    let (date, from, to) = match play::day_bounds(st, date) {
        Ok(b) => b,
        Err(e) if e.code == ErrorCode::InvalidFields => {
            return error_page(st, headers, StatusCode::NOT_FOUND);
        }
        Err(e) => return failed(st, headers, &e),
    };
    let mut l = Layout::new(st, headers, q.lang.as_deref(), "");
    l.title = l.t.guide_title.to_owned();
    let tz = &st.settings.policy.time_zone;
    let first = date.first_of_month();
    let after = first.saturating_add(1.month());
    let month_from = first
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(from);
    let month_to = after
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(to);
    let (month, channels) = match (
        play::facts(st, month_from, month_to).await,
        st.listings.channels(&*st.store).await,
    ) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) => return failed(st, headers, &e),
        (_, Err(e)) => return failed(st, headers, &e),
    };
    let genre = q.genre.filter(|g| !g.trim().is_empty());
    let genres: BTreeSet<&String> = month
        .iter()
        .filter_map(|(r, _, _)| r.program.genre.as_ref())
        .collect();
    let wanted = |(r, _, _): &&Fact| genre.is_none() || r.program.genre == genre;
    let marked: BTreeSet<Date> = month
        .iter()
        .filter(wanted)
        .map(|(r, _, _)| tz.to_datetime(r.schedule.start).date())
        .collect();
    let day_programs: Vec<Program> = month
        .iter()
        .filter(wanted)
        .filter(|(r, _, _)| r.schedule.start < to && r.schedule.end > from)
        .map(|f| Program::of(st, f))
        .collect();
    let rows: Vec<Row> = day_programs.iter().map(|p| Row::new(st, l.t, p)).collect();

    let weeks = month_weeks(date, |d| marked.contains(&d));

    // The grid: an hour a row, a channel a column, from the first start to the last.
    let hours: BTreeSet<i8> = rows.iter().map(|r| r.start_hour).collect();
    let grid = match (hours.first(), hours.last()) {
        (Some(&a), Some(&b)) => (a..=b)
            .map(|h| GridRow {
                hour: format!("{h:02}:00"),
                cells: channels
                    .iter()
                    .map(|c| {
                        rows.iter()
                            .filter(|r| r.start_hour == h && r.channel == c.name)
                            .collect()
                    })
                    .collect(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let keep = genre
        .as_deref()
        .map(|g| format!("?genre={}", urlencode(g)))
        .unwrap_or_default();
    let page = GuidePage {
        day: l.lang.day(date),
        month: l.lang.month(date),
        prev: first.saturating_sub(1.month()),
        next: after,
        keep,
        weeks,
        genres: genres.into_iter().cloned().collect(),
        genre,
        rows: &rows,
        channels: channels.iter().map(|c| c.name.clone()).collect(),
        grid,
        date,
        l,
    };
    render(&page)
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage {
    l: Layout,
}

/// `/about`.
pub async fn about(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let mut l = Layout::new(&st, &headers, q.lang.as_deref(), "");
    l.title = l.t.about_title.to_owned();
    render(&AboutPage { l })
}

#[derive(Template)]
#[template(path = "program.html")]
struct ProgramPage {
    l: Layout,
    p: Row,
    url: String,
    description: String,
    email: Option<String>,
    web: Option<String>,
    detail: Option<String>,
    start_text: String,
    end_text: String,
    start_ms: i64,
    end_ms: i64,
    state: &'static str,
    viewers: u32,
    admitted: bool,
    message: Option<&'static str>,
    csrf: String,
    /// For an operator: whether the program is featured (`None` for others, and for a
    /// secret program, which cannot be).
    operator_featured: Option<bool>,
}

#[derive(Template)]
#[template(path = "embed.html")]
struct EmbedPage {
    l: Layout,
    p: Row,
    start_ms: i64,
    end_ms: i64,
    state: &'static str,
    viewers: u32,
    csrf: String,
}

/// The request's CSRF token, or a new one to set.
pub(crate) fn csrf_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 32) {
        Some(v) => (v.to_owned(), false),
        None => {
            let bytes = slotcast_center::secrets::random_bytes::<16>();
            (bytes.iter().map(|b| format!("{b:02x}")).collect(), true)
        }
    }
}

pub(crate) fn with_csrf_cookie(mut res: Response, token: &str, fresh: bool) -> Response {
    if fresh {
        let c = format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Whether the request's CSRF token (from the form or the `x-csrf-token` header) is the
/// cookie's.
pub(crate) fn csrf_ok(headers: &HeaderMap, presented: Option<&str>) -> bool {
    let presented = presented.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match (cookie(headers, CSRF_COOKIE), presented) {
        (Some(c), Some(p)) if !c.is_empty() => bool::from(c.as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    }
}

/// Whether this viewer may see the player without giving the password: public programs,
/// the broadcaster, a browser holding the program's viewer pass.
fn admitted(st: &AppState, p: &Program, viewer: Option<&Authed>, headers: &HeaderMap) -> bool {
    let r = &p.reservation;
    r.visibility == Visibility::Public
        || viewer.is_some_and(|Authed(m)| m.id == r.member)
        || pass_of(headers, &r.slug).is_some_and(|pass| {
            slotcast_domain::token::pass_admits(st.secrets.pass_key(), pass, r.id, st.clock.now())
        })
}

fn pass_of<'a>(headers: &'a HeaderMap, slug: &str) -> Option<&'a str> {
    cookie(headers, &format!("{PASS_COOKIE}{slug}"))
}

fn program_page(
    st: &AppState,
    headers: &HeaderMap,
    switch: Option<&str>,
    p: &Program,
    admitted: bool,
    message: Option<&'static str>,
    csrf: &str,
) -> ProgramPage {
    let r = &p.reservation;
    let mut l = Layout::new(st, headers, switch, &r.program.title);
    l.noindex = r.visibility != Visibility::Public;
    let tz = &st.settings.policy.time_zone;
    let long = |ts: Timestamp| {
        let z = ts.to_zoned(tz.clone());
        format!("{} {}", l.lang.day(z.date()), z.strftime("%H:%M"))
    };
    let row = Row::new(st, l.t, p);
    ProgramPage {
        url: format!("{}/programs/{}", st.settings.public_url, r.slug),
        description: r
            .program
            .outline
            .clone()
            .unwrap_or_else(|| format!("{} · {}", row.broadcaster, row.start_hm)),
        email: r
            .program
            .show_email
            .then(|| p.broadcaster.email.to_string()),
        web: r.program.web_url.clone(),
        detail: r.program.detail.clone(),
        start_text: long(r.schedule.start),
        end_text: long(r.schedule.end),
        start_ms: r.schedule.start.as_millisecond(),
        end_ms: r.schedule.end.as_millisecond(),
        state: p.state.as_str(),
        viewers: st.stats.viewers(p.channel.id),
        admitted,
        message,
        csrf: csrf.to_owned(),
        operator_featured: None,
        p: row,
        l,
    }
}

/// Whether `viewer` is an operator.
pub(crate) fn operator(viewer: Option<&Authed>) -> bool {
    viewer.is_some_and(|Authed(m)| m.role == slotcast_store::Role::Operator)
}

/// `/programs/{slug}`: the program page; the player once the viewer is admitted.
pub async fn program(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<LangQuery>,
    viewer: Option<Authed>,
    headers: HeaderMap,
) -> Response {
    let p = match play::program(&st, &slug).await {
        Ok(p) => p,
        Err(e) => return failed(&st, &headers, &e),
    };
    let (csrf, fresh) = csrf_token(&headers);
    let admitted = admitted(&st, &p, viewer.as_ref(), &headers);
    let mut page = program_page(&st, &headers, q.lang.as_deref(), &p, admitted, None, &csrf);
    if operator(viewer.as_ref()) && p.reservation.visibility.is_listed() {
        match st.store.pickups().await {
            Ok(ids) => page.operator_featured = Some(ids.contains(&p.reservation.id)),
            Err(e) => return failed(&st, &headers, &e.into()),
        }
    }
    with_csrf_cookie(render(&page), &csrf, fresh)
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf: String,
    password: String,
}

/// `POST /programs/{slug}`: checks the viewer password (throttled like the API's) and, when
/// it is right, gives the browser the program's viewer pass and goes back to the page.
pub async fn password(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    viewer: Option<Authed>,
    client: ClientIp,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    let p = match play::program(&st, &slug).await {
        Ok(p) => p,
        Err(e) => return failed(&st, &headers, &e),
    };
    let (csrf, fresh) = csrf_token(&headers);
    let t = Lang::choose(None, &headers).text();
    let again = |status: StatusCode, message: &'static str| {
        let page = program_page(&st, &headers, None, &p, false, Some(message), &csrf);
        with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh)
    };
    if !csrf_ok(&headers, Some(&f.csrf)) {
        return again(StatusCode::FORBIDDEN, t.form_expired);
    }
    let who = viewer.map(|Authed(m)| m);
    let outcome = play::grant(
        &st,
        who.as_ref(),
        &p.reservation,
        Credential::Password(&f.password),
        &client.key("play"),
    )
    .await;
    match outcome {
        Err(e)
            if matches!(
                e.code,
                ErrorCode::WrongPassword | ErrorCode::PasswordRequired
            ) =>
        {
            again(StatusCode::FORBIDDEN, t.wrong_password)
        }
        Err(e) if e.code == ErrorCode::TooManyAttempts => {
            again(StatusCode::TOO_MANY_REQUESTS, t.too_many)
        }
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        // Right (the grant may still wait for the start or a seat: the page's player asks).
        _ => {
            let pass = play::viewer_pass(&st, &p.reservation);
            let cookie = format!(
                "{PASS_COOKIE}{slug}={pass}; Path=/programs/{slug}; HttpOnly; SameSite=Strict",
            );
            let mut res = Redirect::to(&format!("/programs/{slug}")).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
    }
}

/// `url` as this site's pages' scripts should fetch it: a path when the site serves it
/// itself (role all: the stream node shares the center's listener), so that it stays on
/// whatever host name the page was opened with; the node's own address otherwise.
pub(crate) fn for_page(st: &AppState, url: String) -> String {
    let site = slotcast_center::port::origin_of(&st.settings.public_url);
    match url.strip_prefix(site) {
        Some(path) if path.starts_with('/') => path.to_owned(),
        _ => url,
    }
}

/// `POST /programs/{slug}/grant` (the player, with the CSRF header): a play grant for this
/// browser — for a protected program only with its viewer pass.
pub async fn grant(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    viewer: Option<Authed>,
    client: ClientIp,
    headers: HeaderMap,
) -> Response {
    if !csrf_ok(&headers, None) {
        return ApiError::new(ErrorCode::CrossOrigin, "reload the page and try again")
            .into_response();
    }
    let p = match play::program(&st, &slug).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let credential = pass_of(&headers, &slug).map_or(Credential::None, Credential::Pass);
    let who = viewer.map(|Authed(m)| m);
    match play::grant(
        &st,
        who.as_ref(),
        &p.reservation,
        credential,
        &client.key("play"),
    )
    .await
    {
        Ok(g) => Json(serde_json::json!({
            "kind": g.kind.to_string(),
            "expires_at": format!("{:.3}", g.expires),
            "urls": {
                "mse": for_page(&st, g.urls.mse),
                "hls": for_page(&st, g.urls.hls),
                "flv": g.urls.flv,
            },
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /programs/{slug}/status`: what the page's live panel shows.
pub async fn status(State(st): State<AppState>, Path(slug): Path<String>) -> Response {
    match play::program(&st, &slug).await {
        Ok(p) => (
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({
                "state": p.state.as_str(),
                "full": p.full,
                "viewers": st.stats.viewers(p.channel.id),
                "capacity": p.channel.capacity,
                "server_time": format!("{:.3}", st.clock.now()),
            })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /programs/{slug}/calendar.ics`: this program as a calendar event.
pub async fn calendar(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let p = match play::program(&st, &slug).await {
        Ok(p) => p,
        Err(e) => return failed(&st, &headers, &e),
    };
    let r = &p.reservation;
    let url = format!("{}/programs/{}", st.settings.public_url, r.slug);
    let event = slotcast_center::mail::ics::FeedEvent {
        uid: format!(
            "{}@{}",
            r.slug,
            slotcast_center::mail::ics::host(&st.settings.public_url)
        ),
        start: r.schedule.start,
        end: r.schedule.end,
        summary: r.program.title.clone(),
        description: r.program.outline.clone().unwrap_or_default(),
        url,
    };
    let body = slotcast_center::mail::ics::feed(&r.program.title, &[event], st.clock.now());
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.ics\"", r.slug),
            ),
        ],
        body,
    )
        .into_response()
}

/// `/programs/{slug}/embed`: the player alone, for public programs (the only page that
/// may be framed).
pub async fn embed(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let p = match play::program(&st, &slug).await {
        Ok(p) if p.reservation.visibility == Visibility::Public => p,
        Ok(_) => return error_page(&st, &headers, StatusCode::NOT_FOUND),
        Err(e) => return failed(&st, &headers, &e),
    };
    let (csrf, fresh) = csrf_token(&headers);
    let l = Layout::new(
        &st,
        &headers,
        q.lang.as_deref(),
        &p.reservation.program.title,
    );
    let page = EmbedPage {
        p: Row::new(&st, l.t, &p),
        start_ms: p.reservation.schedule.start.as_millisecond(),
        end_ms: p.reservation.schedule.end.as_millisecond(),
        state: p.state.as_str(),
        viewers: st.stats.viewers(p.channel.id),
        csrf: csrf.clone(),
        l,
    };
    with_csrf_cookie(render(&page), &csrf, fresh)
}

#[derive(Template)]
#[template(path = "pickup.html")]
struct PickupPage {
    l: Layout,
    rows: Vec<Row>,
    operator: bool,
    csrf: String,
}

/// `/pickup`: the programs the operator features; an operator can stop featuring each.
pub async fn pickup(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    viewer: Option<Authed>,
    headers: HeaderMap,
) -> Response {
    let featured = match play::featured(&st).await {
        Ok(f) => f,
        Err(e) => return failed(&st, &headers, &e),
    };
    let mut l = Layout::new(&st, &headers, q.lang.as_deref(), "");
    l.title = l.t.pickup_title.to_owned();
    let (csrf, fresh) = csrf_token(&headers);
    let page = PickupPage {
        rows: featured.iter().map(|p| Row::new(&st, l.t, p)).collect(),
        operator: operator(viewer.as_ref()),
        csrf: csrf.clone(),
        l,
    };
    with_csrf_cookie(render(&page), &csrf, fresh)
}

/// The operator's feature form.
#[derive(Debug, Deserialize)]
pub struct PickupForm {
    csrf: String,
    slug: String,
    action: String,
}

/// `POST /pickup` (operators, with the CSRF token): features (`add`) or stops featuring
/// (`remove`) a program, then back to where the operator was.
pub async fn pickup_change(
    State(st): State<AppState>,
    viewer: Option<Authed>,
    headers: HeaderMap,
    Form(f): Form<PickupForm>,
) -> Response {
    if !operator(viewer.as_ref()) {
        return error_page(&st, &headers, StatusCode::NOT_FOUND);
    }
    if !csrf_ok(&headers, Some(&f.csrf)) {
        let e = ApiError::new(
            ErrorCode::CrossOrigin,
            Lang::choose(None, &headers).text().form_expired,
        );
        return failed(&st, &headers, &e);
    }
    let picked = match f.action.as_str() {
        "add" => true,
        "remove" => false,
        _ => return error_page(&st, &headers, StatusCode::NOT_FOUND),
    };
    if let Err(e) = play::feature(&st, &f.slug, picked).await {
        return failed(&st, &headers, &e);
    }
    let back = if picked {
        format!("/programs/{}", f.slug)
    } else {
        "/pickup".to_owned()
    };
    Redirect::to(&back).into_response()
}
