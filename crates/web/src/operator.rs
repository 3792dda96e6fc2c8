//! The operator's console (`/operator`): health and the outbox at a glance, the channels
//! (create, change capacity, bitrate, tariff), the day's schedule across every channel,
//! members (search), billing (a month's charges, the CSV export, waiving a charge when
//! the service failed during a program), the e-mail outbox (failed, queued, retry), and
//! pickup (`/pickup`). Everyone but an operator gets 404 here, signed in or not.

use askama::Template;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::error::ApiError;
use slotcast_center::ops::operator::{self as op, Health};
use slotcast_center::ops::{billing, play};
use slotcast_center::port::FillerJobView;
use slotcast_domain::jiff::ToSpan;
use slotcast_domain::{ChannelDraft, ChannelId, ReservationId};
use slotcast_store::{Member, OutboxCounts, OutboxMessage, Role};

use crate::forms::{Errs, OperatorOnly, check_csrf, member_layout};
use crate::i18n::{Lang, MemberText};
use crate::pages::{Layout, error_page, failed, render, with_csrf_cookie};
use crate::reserve::{long_time, money, visibility_label};

/// A channel in the catalogue.
pub struct ChannelLine {
    id: ChannelId,
    name: String,
    capacity: u32,
    bitrate: String,
    price: String,
    node: String,
}

/// The channel form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    csrf: String,
    id: Option<i64>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    bitrate_kbps: String,
    #[serde(default)]
    tariff_minor: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    stream_node: String,
}

/// One program of the schedule.
pub struct ScheduleLine {
    time: String,
    channel: String,
    slug: String,
    title: String,
    listed: bool,
    member: String,
    visibility: &'static str,
    status: String,
}

/// One member found.
pub struct MemberLine {
    id: i64,
    email: String,
    name: String,
    kind: String,
    card: String,
    since: String,
}

/// One charge of the month.
pub struct ChargeLine {
    id: ReservationId,
    title: String,
    start: String,
    member: String,
    amount: String,
    state: String,
    waivable: bool,
}

/// One e-mail of the outbox.
pub struct MailLine {
    id: i64,
    subject: String,
    to: String,
    at: String,
    attempts: u32,
    error: String,
}

/// What a console page shows.
pub enum OpBody {
    Overview {
        health: Vec<(&'static str, bool, String)>,
        counts: OutboxCounts,
        today: String,
    },
    Channels {
        channels: Vec<ChannelLine>,
        form: ChannelForm,
    },
    Schedule {
        day: String,
        prev: String,
        next: String,
        rows: Vec<ScheduleLine>,
    },
    Members {
        q: String,
        rows: Vec<MemberLine>,
    },
    Billing {
        month: String,
        month_key: String,
        prev: String,
        next: String,
        due: String,
        pending: String,
        lines: Vec<ChargeLine>,
    },
    Outbox {
        counts: OutboxCounts,
        failed: Vec<MailLine>,
        queued: Vec<MailLine>,
    },
    Filler {
        channel_id: ChannelId,
        channel: String,
        format: String,
        files: Vec<(String, String)>,
        jobs: Vec<FillerJobView>,
        max_mb: u64,
    },
}

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage {
    l: Layout,
    page: &'static str,
    heading: &'static str,
    notice: Option<&'static str>,
    errs: Errs,
    body: OpBody,
}

struct Shown {
    page: &'static str,
    notice: Option<&'static str>,
    errs: Errs,
    body: OpBody,
}

fn show(st: &AppState, headers: &HeaderMap, lang: Option<&str>, m: &Member, s: Shown) -> Response {
    let (mut l, fresh) = member_layout(st, headers, lang, m, "operator", "");
    let heading = heading(l.m, s.page);
    l.title = format!("{} · {heading}", l.m.operator_title);
    let csrf = l.csrf.clone();
    let status = s.errs.status();
    let page = OperatorPage {
        page: s.page,
        heading,
        notice: s.notice,
        errs: s.errs.in_lang(l.lang),
        body: s.body,
        l,
    };
    with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh)
}

fn heading(m: &MemberText, page: &str) -> &'static str {
    match page {
        "channels" => m.op_channels,
        "schedule" => m.op_schedule,
        "members" => m.op_members,
        "billing" => m.op_billing,
        "outbox" => m.op_outbox,
        "filler" => m.op_filler,
        _ => m.operator_title,
    }
}

/// `?lang=&done=` and the pages' own parameters.
#[derive(Debug, Default, Deserialize)]
pub struct OpQuery {
    lang: Option<String>,
    done: Option<String>,
    edit: Option<i64>,
    date: Option<String>,
    q: Option<String>,
    month: Option<String>,
}

fn health_lines(m: &MemberText, h: &Health) -> Vec<(&'static str, bool, String)> {
    let ok = |b: bool| if b { m.op_ok } else { m.op_unreachable }.to_owned();
    vec![
        (
            m.op_database,
            h.database.is_ok(),
            h.database.as_ref().map_or_else(
                |_| m.op_unreachable.to_owned(),
                |b| format!("{} ({b})", m.op_ok),
            ),
        ),
        (m.op_mail, h.mail.is_ok(), ok(h.mail.is_ok())),
        (
            m.op_scheduler,
            h.scheduler.failing_since.is_none(),
            match h.scheduler.failing_since {
                None => m.op_ok.to_owned(),
                Some(since) => format!("{} {since}", m.op_failing_since),
            },
        ),
    ]
}

/// `GET /operator`.
pub async fn overview(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let h = op::health(&st).await;
    let (outbox, today) = match (op::outbox(&st).await, op::schedule(&st, None).await) {
        (Ok(o), Ok(s)) => (o, s),
        (Err(e), _) | (_, Err(e)) => return failed(&st, &headers, &e),
    };
    let body = OpBody::Overview {
        health: health_lines(t, &h),
        counts: outbox.counts,
        today: format!("{} {}", today.1.len(), t.op_programs_today),
    };
    let shown = Shown {
        page: "overview",
        notice: None,
        errs: Errs::default(),
        body,
    };
    show(&st, &headers, q.lang.as_deref(), &m, shown)
}

async fn channels_page(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    (lang, notice): (Option<&str>, Option<&'static str>),
    form: ChannelForm,
    errs: Errs,
) -> Response {
    let all = match st.store.channels().await {
        Ok(c) => c,
        Err(e) => return failed(st, headers, &e.into()),
    };
    let channels = all
        .iter()
        .map(|c| ChannelLine {
            id: c.id,
            name: c.name.clone(),
            capacity: c.capacity,
            bitrate: format!("{} kbit/s", c.bitrate_kbps),
            price: money(c.tariff),
            node: c.stream_node.clone(),
        })
        .collect();
    let shown = Shown {
        page: "channels",
        notice,
        errs,
        body: OpBody::Channels { channels, form },
    };
    show(st, headers, lang, m, shown)
}

/// `GET /operator/channels` (`?edit=<id>` fills the form with that channel).
pub async fn channels(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let editing = match q.edit {
        Some(id) => match st.store.channel(ChannelId(id)).await {
            Ok(c) => Some(c),
            Err(e) => return failed(&st, &headers, &e.into()),
        },
        None => None,
    };
    let form = match editing {
        Some(c) => ChannelForm {
            id: Some(c.id.0),
            name: c.name,
            capacity: c.capacity.to_string(),
            bitrate_kbps: c.bitrate_kbps.to_string(),
            tariff_minor: c.tariff.minor.to_string(),
            currency: c.tariff.currency.to_string(),
            stream_node: c.stream_node,
            ..ChannelForm::default()
        },
        None => ChannelForm {
            capacity: "10".into(),
            bitrate_kbps: "1000".into(),
            tariff_minor: "100".into(),
            currency: "JPY".into(),
            stream_node: "local".into(),
            ..ChannelForm::default()
        },
    };
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = (q.done.as_deref() == Some("channel")).then_some(t.saved);
    channels_page(
        &st,
        &headers,
        &m,
        (q.lang.as_deref(), notice),
        form,
        Errs::default(),
    )
    .await
}

/// `POST /operator/channels`: creates a channel, or changes the one `id` names; it is in
/// the reservation grid at once.
pub async fn save_channel(
    State(st): State<AppState>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
    Form(f): Form<ChannelForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let number = |field: &'static str, v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| Errs::field(field, "must be a whole number"))
    };
    let parsed = (|| {
        Ok::<_, Errs>(ChannelDraft {
            name: f.name.clone(),
            capacity: u32::try_from(number("capacity", &f.capacity)?)
                .map_err(|_| Errs::field("capacity", "must be a whole number from 1"))?,
            bitrate_kbps: u32::try_from(number("bitrate_kbps", &f.bitrate_kbps)?)
                .map_err(|_| Errs::field("bitrate_kbps", "must be a whole number from 100"))?,
            tariff_minor: number("tariff_minor", &f.tariff_minor)?,
            currency: f.currency.trim().to_owned(),
            stream_node: Some(f.stream_node.trim().to_owned()).filter(|s| !s.is_empty()),
        })
    })();
    let draft = match parsed {
        Ok(d) => d,
        Err(errs) => return channels_page(&st, &headers, &m, (None, None), f, errs).await,
    };
    match op::save_channel(&st, f.id.map(ChannelId), draft).await {
        Ok(_) => Redirect::to("/operator/channels?done=channel").into_response(),
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = channels_page(&st, &headers, &m, (None, None), f, Errs::of(&e)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}

/// `GET /operator/schedule?date=`: every program of a day, on every channel.
pub async fn schedule(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let (day, booked) = match op::schedule(&st, q.date.as_deref()).await {
        Ok(v) => v,
        Err(e) if e.fields.contains_key("date") => {
            return error_page(&st, &headers, StatusCode::NOT_FOUND);
        }
        Err(e) => return failed(&st, &headers, &e),
    };
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    let t = lang.member();
    let tz = &st.settings.policy.time_zone;
    let hm = |ts: slotcast_domain::Timestamp| ts.to_zoned(tz.clone()).strftime("%H:%M").to_string();
    let rows = booked
        .iter()
        .map(|b| {
            let r = &b.reservation;
            ScheduleLine {
                time: format!("{}–{}", hm(r.schedule.start), hm(r.schedule.end)),
                channel: b.channel.clone(),
                slug: r.slug.clone(),
                title: r.program.title.clone(),
                listed: r.visibility.is_listed(),
                member: format!("{} <{}>", b.member.display_name, b.member.email),
                visibility: visibility_label(t, r.visibility.as_str()),
                status: play::state(&st, r).as_str().replace('_', " ") + " · " + r.status.as_str(),
            }
        })
        .collect();
    let body = OpBody::Schedule {
        day: lang.day(day),
        prev: day.yesterday().map(|d| d.to_string()).unwrap_or_default(),
        next: day.tomorrow().map(|d| d.to_string()).unwrap_or_default(),
        rows,
    };
    let shown = Shown {
        page: "schedule",
        notice: None,
        errs: Errs::default(),
        body,
    };
    show(&st, &headers, q.lang.as_deref(), &m, shown)
}

/// `GET /operator/members?q=`.
pub async fn members(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let text = q.q.clone().unwrap_or_default();
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    let t = lang.member();
    let (found, errs) = match op::members(&st, &text).await {
        Ok(f) => (f, Errs::default()),
        Err(e) if !e.fields.is_empty() => (Vec::new(), Errs::of(&e)),
        Err(e) => return failed(&st, &headers, &e),
    };
    let rows = found
        .iter()
        .map(|x| MemberLine {
            id: x.id.0,
            email: x.email.to_string(),
            name: x.display_name.clone(),
            kind: match (x.role, x.tier) {
                (Role::Operator, _) => t.operator_title.to_owned(),
                (_, slotcast_store::Tier::Premium) => t.premium.to_owned(),
                _ => t.general.to_owned(),
            },
            card: x
                .payment
                .as_ref()
                .map(|c| format!("{} •••• {}", c.brand, c.last4))
                .unwrap_or_default(),
            since: long_time(&st, lang, x.created_at),
        })
        .collect();
    let shown = Shown {
        page: "members",
        notice: None,
        errs,
        body: OpBody::Members { q: text, rows },
    };
    show(&st, &headers, q.lang.as_deref(), &m, shown)
}

async fn billing_page(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    (lang, notice): (Option<&str>, Option<&'static str>),
    month: Option<&str>,
    errs: Errs,
) -> Response {
    let key = match billing::month(st, month) {
        Ok(k) => k,
        Err(_) => return error_page(st, headers, StatusCode::NOT_FOUND),
    };
    let inv = match billing::invoice(st, None, key).await {
        Ok(i) => i,
        Err(e) => return failed(st, headers, &e),
    };
    let lang_ = Lang::choose(lang, headers);
    let t = lang_.member();
    let mut lines = Vec::new();
    for line in &inv.lines {
        let who = match st.store.member(line.charge.member).await {
            Ok(x) => x.email.to_string(),
            Err(e) => return failed(st, headers, &e.into()),
        };
        use slotcast_domain::charge::ChargeState as C;
        lines.push(ChargeLine {
            id: line.charge.reservation,
            title: line.title.clone(),
            start: long_time(st, lang_, line.start),
            member: who,
            amount: money(line.charge.amount),
            state: match line.charge.state {
                C::Pending => t.pending,
                C::Final => t.charge_final,
                C::Waived => t.charge_waived,
                C::Voided => t.charge_voided,
            }
            .to_owned(),
            waivable: matches!(line.charge.state, C::Pending | C::Final),
        });
    }
    let sum = |v: &[slotcast_domain::Money]| {
        if v.is_empty() {
            "0".to_owned()
        } else {
            v.iter().map(|m| money(*m)).collect::<Vec<_>>().join(" + ")
        }
    };
    let first = key.first_day();
    let body = OpBody::Billing {
        month: lang_.month(first),
        month_key: key.to_string(),
        prev: key.previous().to_string(),
        next: first
            .saturating_add(1.month())
            .strftime("%Y-%m")
            .to_string(),
        due: sum(&inv.due),
        pending: sum(&inv.pending),
        lines,
    };
    let shown = Shown {
        page: "billing",
        notice,
        errs,
        body,
    };
    show(st, headers, lang, m, shown)
}

/// `GET /operator/billing?month=YYYY-MM`.
pub async fn billing_month(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = (q.done.as_deref() == Some("waived")).then_some(t.op_waived);
    billing_page(
        &st,
        &headers,
        &m,
        (q.lang.as_deref(), notice),
        q.month.as_deref(),
        Errs::default(),
    )
    .await
}

/// The waiver form.
#[derive(Debug, Deserialize)]
pub struct WaiveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reservation: String,
    #[serde(default)]
    reason: String,
    month: Option<String>,
}

/// `POST /operator/billing/waive`: the charge is not owed (the service failed during the
/// program).
pub async fn waive(
    State(st): State<AppState>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
    Form(f): Form<WaiveForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let month = f.month.as_deref().filter(|m| m.len() == 7 && m.is_ascii());
    let Some(id) = f.reservation.trim().parse::<i64>().ok().map(ReservationId) else {
        return error_page(&st, &headers, StatusCode::NOT_FOUND);
    };
    match op::waive(&st, &m, id, &f.reason).await {
        Ok(_) => {
            let back = month.map_or_else(String::new, |m| format!("&month={m}"));
            Redirect::to(&format!("/operator/billing?done=waived{back}")).into_response()
        }
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = billing_page(&st, &headers, &m, (None, None), month, Errs::of(&e)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}

fn mail_line(st: &AppState, lang: Lang, m: &OutboxMessage) -> MailLine {
    MailLine {
        id: m.id,
        subject: m.message.subject.clone(),
        to: m.message.to.to_string(),
        at: long_time(st, lang, m.created_at),
        attempts: m.attempts,
        error: m.last_error.clone().unwrap_or_default(),
    }
}

/// `GET /operator/outbox`.
pub async fn outbox(
    State(st): State<AppState>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    outbox_page(
        &st,
        &headers,
        &m,
        q.lang.as_deref(),
        q.done.as_deref(),
        Errs::default(),
    )
    .await
}

async fn outbox_page(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    lang: Option<&str>,
    done: Option<&str>,
    errs: Errs,
) -> Response {
    let o = match op::outbox(st).await {
        Ok(o) => o,
        Err(e) => return failed(st, headers, &e),
    };
    let l = Lang::choose(lang, headers);
    let body = OpBody::Outbox {
        counts: o.counts,
        failed: o.failed.iter().map(|x| mail_line(st, l, x)).collect(),
        queued: o.queued.iter().map(|x| mail_line(st, l, x)).collect(),
    };
    let shown = Shown {
        page: "outbox",
        notice: (done == Some("retry")).then_some(l.member().op_requeued),
        errs,
        body,
    };
    show(st, headers, lang, m, shown)
}

/// The retry form.
#[derive(Debug, Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// `POST /operator/outbox/retry`: a message given up on is queued again.
pub async fn retry(
    State(st): State<AppState>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
    Form(f): Form<RetryForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let outcome = match f.id.trim().parse::<i64>() {
        Ok(id) => op::retry(&st, id).await,
        Err(_) => Err(ApiError::field("id", "not a message")),
    };
    match outcome {
        Ok(()) => Redirect::to("/operator/outbox?done=retry").into_response(),
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = outbox_page(&st, &headers, &m, None, None, Errs::whole(e.message)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}

/// `{id}` of a channel path.
fn channel_id(id: &str) -> Option<ChannelId> {
    id.parse::<i64>().ok().filter(|n| *n > 0).map(ChannelId)
}

async fn filler_page(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    (lang, notice): (Option<&str>, Option<&'static str>),
    id: ChannelId,
    errs: Errs,
) -> Response {
    let f = match op::filler(st, id).await {
        Ok(f) => f,
        Err(e) => return failed(st, headers, &e),
    };
    let spec = slotcast_domain::channel::picture_size(f.channel.bitrate_kbps);
    let body = OpBody::Filler {
        channel_id: id,
        format: format!(
            "{}×{} · 25 fps · {} kbit/s · H.264 + AAC",
            spec.0, spec.1, f.channel.bitrate_kbps
        ),
        channel: f.channel.name,
        files: f
            .files
            .into_iter()
            .map(|x| (x.name, format!("{:.1} MB", x.bytes as f64 / 1e6)))
            .collect(),
        jobs: f.jobs,
        max_mb: op::FILLER_MAX_BYTES >> 20,
    };
    let shown = Shown {
        page: "filler",
        notice,
        errs,
        body,
    };
    show(st, headers, lang, m, shown)
}

/// `GET /operator/channels/{id}/filler`: the channel's filler playlist, the uploads being
/// re-encoded, and the upload form.
pub async fn filler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<OpQuery>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
) -> Response {
    let Some(id) = channel_id(&id) else {
        return error_page(&st, &headers, StatusCode::NOT_FOUND);
    };
    let t = Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = match q.done.as_deref() {
        Some("upload") => Some(t.op_uploaded),
        Some("removed") => Some(t.op_removed),
        _ => None,
    };
    filler_page(
        &st,
        &headers,
        &m,
        (q.lang.as_deref(), notice),
        id,
        Errs::default(),
    )
    .await
}

/// `GET /operator/channels/{id}/filler/jobs`: the uploads' progress, for the page's script.
pub async fn filler_jobs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    _op: OperatorOnly,
) -> Response {
    let Some(id) = channel_id(&id) else {
        return ApiError::not_found("channel").into_response();
    };
    match op::filler(&st, id).await {
        Ok(f) => (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "jobs": f.jobs, "files": f.files })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /operator/channels/{id}/filler` (multipart: `csrf`, then `file`): hands the
/// video to the stream node, which re-encodes it into the channel's playlist.
pub async fn upload_filler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    let Some(id) = channel_id(&id) else {
        return error_page(&st, &headers, StatusCode::NOT_FOUND);
    };
    let t = Lang::choose(None, &headers).member();
    // The token comes first (the form puts it before the file), so nothing is read from a
    // forged post.
    let csrf = match form.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    if let Err(res) = check_csrf(&st, &headers, &csrf) {
        return res;
    }
    let outcome = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some("file") => {
            let name = field.file_name().unwrap_or("upload").to_owned();
            let body = field.map(|chunk| chunk.map_err(|e| e.body_text())).boxed();
            op::upload_filler(&st, id, &name, body).await
        }
        Ok(_) => Err(ApiError::field("file", t.op_choose_file)),
        Err(e) => Err(ApiError::field("file", e.body_text())),
    };
    match outcome {
        Ok(job) => Redirect::to(&format!(
            "/operator/channels/{}/filler?done=upload#job-{job}",
            id.0
        ))
        .into_response(),
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = filler_page(&st, &headers, &m, (None, None), id, Errs::of(&e)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}

/// The remove form.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    file: String,
}

/// `POST /operator/channels/{id}/filler/remove`: takes a file out of the playlist.
pub async fn remove_filler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    OperatorOnly(m): OperatorOnly,
    headers: HeaderMap,
    Form(f): Form<RemoveForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let Some(id) = channel_id(&id) else {
        return error_page(&st, &headers, StatusCode::NOT_FOUND);
    };
    match op::remove_filler(&st, id, &f.file).await {
        Ok(()) => Redirect::to(&format!("/operator/channels/{}/filler?done=removed", id.0))
            .into_response(),
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = filler_page(&st, &headers, &m, (None, None), id, Errs::of(&e)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}
