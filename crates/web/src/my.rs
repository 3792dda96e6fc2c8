//! My channel (`/my`: every reservation with its status and next step, the month's quota,
//! invoices, past programs' figures) and a reservation's page (`/my/reservations/{id}`:
//! confirm with the key, the clock offset, the OBS settings and the connection profile,
//! change with what changes shown first, cancel with what it costs, the history).
//! Members see only their own reservations; anyone else's is "not found".

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::auth::ClientIp;
use slotcast_center::error::ApiError;
use slotcast_center::ops::reservations::{self as op, ProfileTo, Record};
use slotcast_center::ops::{self, billing};
use slotcast_domain::change::ProgramChangeDraft;
use slotcast_domain::visibility::Visibility;
use slotcast_domain::{ProgramStats, ReservationId, Status, Timestamp};
use slotcast_store::{Channel, Member, Reservation, Tier};

use crate::account::{CsrfForm, form_failed};
use crate::chart::{self, Chart};
use crate::forms::{Errs, Signed, check_csrf, member_layout, ticked};
use crate::i18n::{Lang, MemberText};
use crate::pages::{Layout, error_page, failed, render, with_csrf_cookie};
use crate::reserve::{BookingForm, BookingValues, addresses, long_time, money, visibility_label};

/// A status as the pages name it, and its badge's class.
fn status_label(m: &MemberText, s: Status) -> (&'static str, &'static str) {
    match s {
        Status::AwaitingConfirmation => (m.status_awaiting, "full"),
        Status::Confirmed => (m.status_confirmed, "open"),
        Status::Live => (m.status_live, "on-air"),
        Status::Completed => (m.status_completed, "on-demand"),
        Status::Expired => (m.status_expired, "ended"),
        Status::Cancelled => (m.status_cancelled, "ended"),
    }
}

/// A program's figures in a line.
fn figures(m: &MemberText, s: &ProgramStats) -> String {
    let t = s.seconds_on_air;
    format!(
        "{} {} · {} {} · {} {} · {} {}:{:02}:{:02}",
        m.peak,
        s.peak_viewers,
        m.unique,
        s.unique_viewers,
        m.viewer_minutes,
        s.viewer_minutes,
        m.on_air_time,
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// One reservation as my channel and its page show it.
pub(crate) struct MyRow {
    pub(crate) id: ReservationId,
    pub(crate) title: String,
    pub(crate) start_iso: String,
    pub(crate) when: String,
    pub(crate) channel: String,
    pub(crate) length: String,
    pub(crate) fee: String,
    pub(crate) visibility: &'static str,
    pub(crate) status: &'static str,
    pub(crate) status_class: &'static str,
    pub(crate) awaiting: bool,
    pub(crate) deadline: String,
    pub(crate) deadline_iso: String,
    pub(crate) deadline_ms: i64,
    pub(crate) figures: Option<String>,
    pub(crate) chart: Option<Chart>,
    pub(crate) actions: Vec<(String, &'static str)>,
}

impl MyRow {
    pub(crate) fn new(
        st: &AppState,
        l: &Layout,
        r: &Reservation,
        channel: &str,
        stats: Option<&ProgramStats>,
    ) -> MyRow {
        let m = l.m;
        let (status, status_class) = status_label(m, r.status);
        let end = r
            .schedule
            .end
            .to_zoned(st.settings.policy.time_zone.clone())
            .strftime("%H:%M")
            .to_string();
        let id = r.id;
        let page = format!("/my/reservations/{id}");
        let mut actions = Vec::new();
        let watch = (format!("/programs/{}", r.slug), m.watch_page);
        match r.status {
            Status::AwaitingConfirmation => {
                actions.push((format!("{page}/change"), m.change));
                actions.push((format!("{page}/cancel"), m.cancel));
            }
            Status::Confirmed => {
                actions.push((format!("{page}/live"), m.dashboard_title));
                actions.push((format!("{page}#settings"), m.settings_title));
                actions.push((format!("{page}/change"), m.change));
                actions.push((format!("{page}/cancel"), m.cancel));
                actions.push(watch);
            }
            Status::Live => {
                actions.push((format!("{page}/live"), m.dashboard_title));
                actions.push((format!("{page}#settings"), m.settings_title));
                actions.push((format!("{page}/change"), m.change));
                actions.push(watch);
            }
            Status::Completed => actions.push(watch),
            Status::Expired | Status::Cancelled => {}
        }
        MyRow {
            id,
            title: r.program.title.clone(),
            start_iso: format!("{:.0}", r.schedule.start),
            when: format!("{}–{end}", long_time(st, l.lang, r.schedule.start)),
            channel: channel.to_owned(),
            length: format!(
                "{} {}",
                r.slots * st.settings.policy.slot.minutes(),
                m.minutes
            ),
            fee: money(r.fee),
            visibility: visibility_label(m, r.visibility.as_str()),
            status,
            status_class,
            awaiting: r.status == Status::AwaitingConfirmation,
            deadline: long_time(st, l.lang, r.schedule.confirm_by),
            deadline_iso: format!("{:.0}", r.schedule.confirm_by),
            deadline_ms: r.schedule.confirm_by.as_millisecond(),
            figures: stats.map(|s| figures(m, s)),
            chart: stats.and_then(|s| {
                let start = r
                    .schedule
                    .start
                    .to_zoned(st.settings.policy.time_zone.clone())
                    .strftime("%H:%M")
                    .to_string();
                let label = format!("{} ({} {})", m.chart_title, m.peak, s.peak_viewers);
                chart::draw(&s.curve, &label, &start, &end)
            }),
            actions,
        }
    }
}

/// A group of my channel.
struct Group {
    key: &'static str,
    heading: &'static str,
    rows: Vec<MyRow>,
}

/// A month's invoice as shown.
struct InvoiceView {
    month: String,
    due: String,
    pending: String,
    lines: Vec<InvoiceLine>,
}

struct InvoiceLine {
    id: ReservationId,
    title: String,
    start: String,
    slots: u32,
    amount: String,
    state: String,
}

#[derive(Template)]
#[template(path = "my.html")]
struct MyPage {
    l: Layout,
    name: String,
    premium: bool,
    notice: Option<&'static str>,
    month: String,
    quota_used: u32,
    quota_max: u32,
    quota_left: u32,
    groups: Vec<Group>,
    invoices: Vec<InvoiceView>,
}

/// `?done=&lang=` of the member pages.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    pub(crate) lang: Option<String>,
    pub(crate) done: Option<String>,
}

fn sums(v: &[slotcast_domain::Money]) -> String {
    if v.is_empty() {
        return "0".into();
    }
    v.iter().map(|m| money(*m)).collect::<Vec<_>>().join(" + ")
}

/// `/my`: my channel.
pub async fn my(
    State(st): State<AppState>,
    Query(q): Query<DoneQuery>,
    Signed(m): Signed,
    headers: HeaderMap,
) -> Response {
    let (mut l, fresh) = member_layout(&st, &headers, q.lang.as_deref(), &m, "my", "");
    l.title = l.m.my_title.to_owned();
    let csrf = l.csrf.clone();
    let texts = l.m;
    match my_page(&st, &m, l, q.done.as_deref()).await {
        Ok(page) => with_csrf_cookie(render(&page), &csrf, fresh),
        Err(e) => {
            let _ = texts;
            failed(&st, &headers, &e)
        }
    }
}

async fn my_page(
    st: &AppState,
    m: &Member,
    l: Layout,
    done: Option<&str>,
) -> Result<MyPage, ApiError> {
    let all = op::mine(st, m).await?;
    let channels = st.listings.channels(&*st.store).await?;
    let name_of = |r: &Reservation| {
        channels
            .iter()
            .find(|c| c.id == r.channel)
            .map_or_else(String::new, |c| c.name.clone())
    };
    let this_month = billing::month(st, None)?;
    let quota_used = st.store.quota_used(m.id, this_month).await?;
    let quota_max = st.settings.policy.quota_slots_per_month;
    let t = l.m;
    let mut groups = [
        (Status::Live, "live", t.group_live),
        (Status::AwaitingConfirmation, "awaiting", t.group_awaiting),
        (Status::Confirmed, "confirmed", t.group_confirmed),
        (Status::Completed, "completed", t.group_completed),
        (Status::Expired, "ended", t.group_ended),
    ]
    .map(|(status, key, heading)| {
        (
            status,
            Group {
                key,
                heading,
                rows: Vec::new(),
            },
        )
    });
    for r in &all {
        let status = if r.status == Status::Cancelled {
            Status::Expired
        } else {
            r.status
        };
        let stats = if r.status == Status::Completed {
            st.store.program_stats(r.id).await?
        } else {
            None
        };
        let row = MyRow::new(st, &l, r, &name_of(r), stats.as_ref());
        if let Some((_, g)) = groups.iter_mut().find(|(s, _)| *s == status) {
            g.rows.push(row);
        }
    }
    // Upcoming ones soonest first; past ones newest first (as listed).
    for (s, g) in &mut groups {
        if matches!(s, Status::AwaitingConfirmation | Status::Confirmed) {
            g.rows.reverse();
        }
    }
    let mut invoices = Vec::new();
    let mut month = this_month;
    for _ in 0..3 {
        let inv = billing::invoice(st, Some(m.id), month).await?;
        invoices.push(InvoiceView {
            month: l.lang.month(month.first_day()),
            due: sums(&inv.due),
            pending: sums(&inv.pending),
            lines: inv
                .lines
                .iter()
                .map(|line| InvoiceLine {
                    id: line.charge.reservation,
                    title: line.title.clone(),
                    start: long_time(st, l.lang, line.start),
                    slots: line.slots,
                    amount: money(line.charge.amount),
                    state: charge_state(t, line.charge.state),
                })
                .collect(),
        });
        month = month.previous();
    }
    let notice = match done {
        Some("welcome") => Some(t.welcome),
        Some("cancelled") => Some(t.cancelled_notice),
        _ => None,
    };
    Ok(MyPage {
        name: m.display_name.clone(),
        premium: m.tier == Tier::Premium,
        notice,
        month: l.lang.month(this_month.first_day()),
        quota_used,
        quota_max,
        quota_left: quota_max.saturating_sub(quota_used),
        groups: groups
            .into_iter()
            .map(|(_, g)| g)
            .filter(|g| !g.rows.is_empty())
            .collect(),
        invoices,
        l,
    })
}

fn charge_state(m: &MemberText, s: slotcast_domain::charge::ChargeState) -> String {
    use slotcast_domain::charge::ChargeState as C;
    match s {
        C::Pending => m.pending,
        C::Final => m.charge_final,
        C::Waived => m.charge_waived,
        C::Voided => m.charge_voided,
    }
    .to_owned()
}

/// One line of the history.
struct HistoryLine {
    at: String,
    at_iso: String,
    status: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "reservation.html")]
struct ReservationPage {
    l: Layout,
    r: MyRow,
    slug: String,
    watch_url: String,
    end: String,
    window: String,
    genre: Option<String>,
    outline: Option<String>,
    invitees: String,
    email: String,
    notice: Option<&'static str>,
    errs: Errs,
    connectable: bool,
    /// The reservation key, after the member gave it on this request (confirm, settings).
    key: Option<String>,
    servers: Vec<String>,
    obs_output: String,
    history: Vec<HistoryLine>,
}

/// The reservation `id` of the path, as a number; anything else is not found.
fn parse_id(id: &str) -> Option<ReservationId> {
    id.parse::<i64>().ok().filter(|n| *n > 0).map(ReservationId)
}

/// Reservation `id` (as the path has it) of `m` with its record; anything else is not
/// found.
pub(crate) async fn load(st: &AppState, m: &Member, id: &str) -> Result<Record, ApiError> {
    let id = parse_id(id).ok_or_else(|| ApiError::not_found("reservation"))?;
    op::record(st, m, id).await
}

/// What a reservation page shows on top of the record.
struct Extra {
    notice: Option<&'static str>,
    errs: Errs,
    key: Option<String>,
}

fn reservation_page(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    m: &Member,
    rec: &Record,
    x: Extra,
) -> Response {
    let r = &rec.reservation;
    let (mut l, fresh) = member_layout(st, headers, lang, m, "my", &r.program.title);
    let csrf = l.csrf.clone();
    let tz = &st.settings.policy.time_zone;
    let hm = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%H:%M").to_string();
    let row = MyRow::new(st, &l, r, &rec.channel.name, rec.stats.as_ref());
    let history = rec
        .history
        .iter()
        .map(|h| HistoryLine {
            at: long_time(st, l.lang, h.at),
            at_iso: format!("{:.0}", h.at),
            status: status_label(l.m, h.to).0,
            reason: h.reason.clone(),
        })
        .collect();
    l.noindex = true;
    let page = ReservationPage {
        slug: r.slug.clone(),
        watch_url: format!("{}/programs/{}", st.settings.public_url, r.slug),
        end: long_time(st, l.lang, r.schedule.end),
        window: format!(
            "{}–{}",
            hm(r.schedule.connect_from),
            hm(r.schedule.connect_to)
        ),
        genre: r.program.genre.clone(),
        outline: r.program.outline.clone(),
        invitees: r
            .invitees
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        email: m.email.to_string(),
        notice: x.notice,
        errs: x.errs.in_lang(l.lang),
        connectable: matches!(r.status, Status::Confirmed | Status::Live),
        key: x.key,
        servers: st.settings.ingest.clone(),
        obs_output: obs_output(l.m, &rec.channel),
        history,
        r: row,
        l,
    };
    let status = page.errs.status();
    let mut res = with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh);
    // The page may hold the stream key: never kept by a cache.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// What OBS's output settings should be for the channel.
fn obs_output(m: &MemberText, c: &Channel) -> String {
    format!(
        "{} {} kbit/s · {} · {}",
        m.obs_bitrate_at_most, c.bitrate_kbps, m.obs_keyframes, m.obs_codecs
    )
}

/// `GET /my/reservations/{id}`.
pub async fn reservation(
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
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = match q.done.as_deref() {
        Some("booked") => Some(t.booked_notice),
        Some("changed") => Some(t.changed_notice),
        _ => None,
    };
    let x = Extra {
        notice,
        errs: Errs::default(),
        key: None,
    };
    reservation_page(&st, &headers, q.lang.as_deref(), &m, &rec, x)
}

/// A form with the reservation key.
#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    device_key: String,
}

/// Reservation `id` of `m` for a form `m` posted (its CSRF token checked).
async fn posted(
    st: &AppState,
    m: &Member,
    headers: &HeaderMap,
    csrf: &str,
    id: &str,
) -> Result<Record, Response> {
    check_csrf(st, headers, csrf)?;
    load(st, m, id).await.map_err(|e| failed(st, headers, &e))
}

/// The reservation page again with the key refused for `e` (our own errors as the error
/// page).
fn key_refused(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    rec: &Record,
    e: &ApiError,
) -> Response {
    form_failed(st, headers, e, |mut errs| {
        // A wrong key belongs beside the key field.
        if let Some(top) = errs.top.take() {
            errs = Errs::field("key", top);
        }
        let x = Extra {
            notice: None,
            errs,
            key: None,
        };
        reservation_page(st, headers, None, m, rec, x)
    })
}

/// `POST /my/reservations/{id}/confirm`: confirms with the key from the e-mail, then the
/// page shows the clock offset and the connection settings.
pub async fn confirm(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let rec = match posted(&st, &m, &headers, &f.csrf, &id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let key = f.key.trim();
    match op::confirm(&st, &m, rec.reservation.clone(), key, ProfileTo::Later).await {
        Ok(_) => {
            let rec = match load(&st, &m, &id).await {
                Ok(rec) => rec,
                Err(e) => return failed(&st, &headers, &e),
            };
            let x = Extra {
                notice: Some(Lang::choose(None, &headers).member().confirmed_notice),
                errs: Errs::default(),
                key: Some(key.to_owned()),
            };
            reservation_page(&st, &headers, None, &m, &rec, x)
        }
        Err(e) => key_refused(&st, &headers, &m, &rec, &e),
    }
}

/// `POST /my/reservations/{id}/settings`: the connection settings again, for another
/// computer, with the key given again.
pub async fn settings(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let rec = match posted(&st, &m, &headers, &f.csrf, &id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let key = f.key.trim();
    match op::connection_key(&st, &rec.reservation, key).await {
        Ok(_) => {
            let x = Extra {
                notice: None,
                errs: Errs::default(),
                key: Some(key.to_owned()),
            };
            reservation_page(&st, &headers, None, &m, &rec, x)
        }
        Err(e) => key_refused(&st, &headers, &m, &rec, &e),
    }
}

/// `POST /my/reservations/{id}/profile`: the connection profile as a file, encrypted for
/// the device key given, or plain where that is safe (https or this machine).
pub async fn profile(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    client: ClientIp,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let rec = match posted(&st, &m, &headers, &f.csrf, &id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let key = f.key.trim();
    let device = Some(f.device_key.trim()).filter(|d| !d.is_empty());
    let to = ProfileTo::for_client(&st, client.0, device);
    let r = &rec.reservation;
    match op::reissue_profile(&st, r, key, to).await {
        Ok(serde_json::Value::String(armored)) => download(
            &format!("slotcast-{}.age", r.slug),
            "application/octet-stream",
            armored,
        ),
        Ok(plain) => download(
            &format!("slotcast-{}.json", r.slug),
            "application/json",
            serde_json::to_string_pretty(&plain).unwrap_or_default(),
        ),
        Err(e) => form_failed(&st, &headers, &e, |errs| {
            let x = Extra {
                notice: None,
                errs,
                key: Some(key.to_owned()),
            };
            reservation_page(&st, &headers, None, &m, &rec, x)
        }),
    }
}

fn download(name: &str, kind: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "change.html")]
struct ChangePage {
    l: Layout,
    id: ReservationId,
    title: String,
    channel: String,
    when: String,
    visibility: &'static str,
    form: BookingValues,
    errs: Errs,
    change: bool,
    diff: Vec<(&'static str, String, String)>,
    hidden: Vec<(&'static str, String)>,
    notify: bool,
}

/// What the change page shows: the form's values, its problems, and (in review) what
/// changes.
struct ChangeView {
    form: BookingForm,
    errs: Errs,
    diff: Vec<(&'static str, String, String)>,
}

/// The change form of `rec`; in review, what changes with the form carried along.
fn change_page(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    m: &Member,
    rec: &Record,
    v: ChangeView,
) -> Response {
    let ChangeView { form, errs, diff } = v;
    let r = &rec.reservation;
    let (mut l, fresh) = member_layout(st, headers, lang, m, "my", "");
    l.title = format!("{} · {}", l.m.change_title, r.program.title);
    let csrf = l.csrf.clone();
    let hidden = if diff.is_empty() {
        Vec::new()
    } else {
        change_hidden(&form)
    };
    let page = ChangePage {
        id: r.id,
        title: r.program.title.clone(),
        channel: rec.channel.name.clone(),
        when: long_time(st, l.lang, r.schedule.start),
        visibility: visibility_label(l.m, r.visibility.as_str()),
        form: form.values(),
        errs: errs.in_lang(l.lang),
        change: true,
        notify: !r.invitees.is_empty() || !addresses(&form.invitees).is_empty(),
        diff,
        hidden,
        l,
    };
    let status = page.errs.status();
    let mut res = with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The program fields to carry through the review of a change.
fn change_hidden(f: &BookingForm) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("title", f.title.clone()),
        ("genre", f.genre.clone()),
        ("outline", f.outline.clone()),
        ("detail", f.detail.clone()),
        ("web_url", f.web_url.clone()),
        ("viewer_password", f.viewer_password.clone()),
        ("invitees", f.invitees.clone()),
    ];
    if ticked(f.show_email.as_deref()) {
        v.push(("show_email", "yes".into()));
    }
    v
}

/// The form filled with the reservation as it is.
fn current(st: &AppState, r: &Reservation) -> Result<BookingForm, ApiError> {
    let p = &r.program;
    Ok(BookingForm {
        title: p.title.clone(),
        genre: p.genre.clone().unwrap_or_default(),
        outline: p.outline.clone().unwrap_or_default(),
        detail: p.detail.clone().unwrap_or_default(),
        show_email: p.show_email.then(|| "yes".to_owned()),
        web_url: p.web_url.clone().unwrap_or_default(),
        viewer_password: ops::viewer_password(st, r)?.unwrap_or_default(),
        invitees: r
            .invitees
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        visibility: r.visibility.to_string(),
        ..BookingForm::default()
    })
}

/// `GET /my/reservations/{id}/change`.
pub async fn change_form(
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
    match current(&st, &rec.reservation) {
        Ok(form) => {
            let v = ChangeView {
                form,
                errs: Errs::default(),
                diff: Vec::new(),
            };
            change_page(&st, &headers, q.lang.as_deref(), &m, &rec, v)
        }
        Err(e) => failed(&st, &headers, &e),
    }
}

fn draft(f: &BookingForm) -> ProgramChangeDraft {
    ProgramChangeDraft {
        title: Some(f.title.clone()),
        genre: Some(f.genre.clone()),
        outline: Some(f.outline.clone()),
        detail: Some(f.detail.clone()),
        show_email: Some(ticked(f.show_email.as_deref())),
        web_url: Some(f.web_url.clone()),
        viewer_password: Some(f.viewer_password.clone()),
        invitees: Some(addresses(&f.invitees)),
        sets_channel: false,
        sets_start: false,
        sets_slots: false,
        sets_visibility: false,
    }
}

/// `POST /my/reservations/{id}/change`: `step=review` shows what changes, `step=save`
/// saves it (invitees get one e-mail), `step=edit` goes back to the form.
pub async fn change(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<BookingForm>,
) -> Response {
    let rec = match posted(&st, &m, &headers, &f.csrf, &id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let r = &rec.reservation;
    let again = |errs: Errs, diff| {
        let v = ChangeView {
            form: f.clone(),
            errs,
            diff,
        };
        change_page(&st, &headers, None, &m, &rec, v)
    };
    match f.step.as_deref() {
        Some("save") => match op::change(&st, &m, r.clone(), draft(&f)).await {
            Ok(_) => {
                Redirect::to(&format!("/my/reservations/{}?done=changed", r.id)).into_response()
            }
            Err(e) => form_failed(&st, &headers, &e, |errs| again(errs, Vec::new())),
        },
        Some("review") => match op::preview_change(&st, r, &draft(&f)) {
            Ok(c) if c.changed.is_empty() => {
                let t = Lang::choose(None, &headers).member();
                again(Errs::whole(t.nothing_changed), Vec::new())
            }
            Ok(c) => {
                let t = Lang::choose(None, &headers).member();
                let old_pw = ops::viewer_password(&st, r).ok().flatten();
                let yes_no = |b: bool| if b { t.yes } else { t.no }.to_owned();
                let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
                let list = |v: &[slotcast_domain::EmailAddress]| {
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (old, new) = (&r.program, &c.program);
                let rows = [
                    (t.title, old.title.clone(), new.title.clone()),
                    (t.genre, text(&old.genre), text(&new.genre)),
                    (t.outline, text(&old.outline), text(&new.outline)),
                    (t.detail, text(&old.detail), text(&new.detail)),
                    (t.show_email, yes_no(old.show_email), yes_no(new.show_email)),
                    (t.web_url, text(&old.web_url), text(&new.web_url)),
                    (t.viewer_password, text(&old_pw), text(&c.viewer_password)),
                    (t.invitees, list(&r.invitees), list(&c.invitees)),
                ];
                let diff = rows.into_iter().filter(|(_, a, b)| a != b).collect();
                again(Errs::default(), diff)
            }
            Err(e) => form_failed(&st, &headers, &e, |errs| again(errs, Vec::new())),
        },
        _ => again(Errs::default(), Vec::new()),
    }
}

#[derive(Template)]
#[template(path = "cancel.html")]
struct CancelPage {
    l: Layout,
    id: ReservationId,
    title: String,
    channel: String,
    when: String,
    slots: u32,
    cost: Option<String>,
    invitees: usize,
    errs: Errs,
}

/// `GET /my/reservations/{id}/cancel`: what cancelling costs, and the button.
pub async fn cancel_form(
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
    let r = &rec.reservation;
    let cost = match op::cancel_cost(&st, r) {
        Ok(c) => c,
        Err(e) => return failed(&st, &headers, &e),
    };
    let (mut l, fresh) = member_layout(&st, &headers, q.lang.as_deref(), &m, "my", "");
    l.title = format!("{} · {}", l.m.cancel_title, r.program.title);
    let csrf = l.csrf.clone();
    let page = CancelPage {
        id: r.id,
        title: r.program.title.clone(),
        channel: rec.channel.name.clone(),
        when: long_time(&st, l.lang, r.schedule.start),
        slots: r.slots,
        cost: cost.map(money),
        invitees: if r.visibility == Visibility::Secret || !r.invitees.is_empty() {
            r.invitees.len()
        } else {
            0
        },
        errs: Errs::default(),
        l,
    };
    with_csrf_cookie(render(&page), &csrf, fresh)
}

/// `POST /my/reservations/{id}/cancel`.
pub async fn cancel(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let rec = match posted(&st, &m, &headers, &f.csrf, &id).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match op::cancel(&st, &m, rec.reservation).await {
        Ok(_) => Redirect::to("/my?done=cancelled").into_response(),
        Err(e) if e.code.status() == StatusCode::NOT_FOUND => {
            error_page(&st, &headers, StatusCode::NOT_FOUND)
        }
        Err(e) => failed(&st, &headers, &e),
    }
}
