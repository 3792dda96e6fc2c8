//! Reserve (`/my/reserve`): a month calendar, the chosen day's grid of channels × slots
//! (capacity, bitrate and price per slot; free, taken, closed), the booking form that a
//! free run of slots fills, the review with the fee, the confirm deadline and the terms,
//! then the reservation's page, which says where the key went. Without JavaScript a free
//! cell is a link that fills the form; `member.js` selects runs of cells and shows the fee.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::error::{ApiError, ErrorCode};
use slotcast_center::ops::reservations::{self as op, Availability, BookingRequest, ChannelRef};
use slotcast_domain::jiff::civil::Date;
use slotcast_domain::jiff::{Timestamp, ToSpan};
use slotcast_domain::request::ReservationDraft;
use slotcast_store::{Member, Tier};

use crate::forms::{Errs, Signed, check_csrf, member_layout, ticked};
use crate::i18n::{Lang, MemberText};
use crate::pages::{CalendarDay, Layout, failed, month_weeks, render, urlencode, with_csrf_cookie};

/// The booking form as posted (and the fields the grid's links fill).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct BookingForm {
    #[serde(default)]
    pub(crate) csrf: String,
    pub(crate) step: Option<String>,
    #[serde(default)]
    pub(crate) date: String,
    #[serde(default)]
    pub(crate) channel: String,
    #[serde(default)]
    pub(crate) start: String,
    #[serde(default)]
    pub(crate) slots: String,
    #[serde(default)]
    pub(crate) visibility: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) genre: String,
    #[serde(default)]
    pub(crate) outline: String,
    #[serde(default)]
    pub(crate) detail: String,
    pub(crate) show_email: Option<String>,
    #[serde(default)]
    pub(crate) web_url: String,
    #[serde(default)]
    pub(crate) viewer_password: String,
    #[serde(default)]
    pub(crate) invitees: String,
    pub(crate) terms: Option<String>,
}

/// What the form shows (the change page shows the same program fields).
pub(crate) struct BookingValues {
    pub(crate) channel: String,
    pub(crate) start: String,
    pub(crate) slots: String,
    pub(crate) visibility: String,
    pub(crate) title: String,
    pub(crate) genre: String,
    pub(crate) outline: String,
    pub(crate) detail: String,
    pub(crate) show_email: bool,
    pub(crate) web_url: String,
    pub(crate) viewer_password: String,
    pub(crate) invitees: String,
}

impl BookingForm {
    pub(crate) fn values(&self) -> BookingValues {
        BookingValues {
            channel: self.channel.clone(),
            start: self.start.clone(),
            slots: self.slots.clone(),
            visibility: self.visibility.clone(),
            title: self.title.clone(),
            genre: self.genre.clone(),
            outline: self.outline.clone(),
            detail: self.detail.clone(),
            show_email: ticked(self.show_email.as_deref()),
            web_url: self.web_url.clone(),
            viewer_password: self.viewer_password.clone(),
            invitees: self.invitees.clone(),
        }
    }

    /// The form's fields to carry through the review step.
    fn hidden(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("date", self.date.clone()),
            ("channel", self.channel.clone()),
            ("start", self.start.clone()),
            ("slots", self.slots.clone()),
            ("visibility", self.visibility.clone()),
            ("title", self.title.clone()),
            ("genre", self.genre.clone()),
            ("outline", self.outline.clone()),
            ("detail", self.detail.clone()),
            ("web_url", self.web_url.clone()),
            ("viewer_password", self.viewer_password.clone()),
            ("invitees", self.invitees.clone()),
        ];
        if ticked(self.show_email.as_deref()) {
            v.push(("show_email", "yes".into()));
        }
        v
    }

    /// The booking the center is asked for.
    fn request(&self) -> Result<BookingRequest, Errs> {
        let slots = self
            .slots
            .trim()
            .parse::<i64>()
            .map_err(|_| Errs::field("slots", "must be a whole number of slots"))?;
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(BookingRequest {
            channel: ChannelRef::Name(self.channel.clone()),
            draft: ReservationDraft {
                start: self.start.clone(),
                slots,
                visibility: self.visibility.clone(),
                title: self.title.clone(),
                genre: opt(&self.genre),
                outline: opt(&self.outline),
                detail: opt(&self.detail),
                show_email: ticked(self.show_email.as_deref()),
                web_url: opt(&self.web_url),
                viewer_password: opt(&self.viewer_password),
                invitees: addresses(&self.invitees),
            },
        })
    }
}

/// The invitees typed in a text area: one per line, or separated by commas.
pub(crate) fn addresses(text: &str) -> Vec<String> {
    text.split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A channel's column head.
struct ChannelHead {
    name: String,
    capacity: u32,
    bitrate: String,
    price: String,
    tariff_minor: i64,
    currency: String,
}

/// One cell of the grid.
struct Cell {
    channel: String,
    start: String,
    bookable: bool,
    chosen: bool,
    href: String,
    class: &'static str,
    label: &'static str,
    title: Option<String>,
}

/// One slot time of the day, a cell per channel.
struct GridRow {
    time: String,
    cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "reserve.html")]
struct ReservePage {
    l: Layout,
    premium: bool,
    date: Date,
    day: String,
    month: String,
    prev: Date,
    next: Date,
    weeks: Vec<Vec<Option<CalendarDay>>>,
    channels: Vec<ChannelHead>,
    grid: Vec<GridRow>,
    slot_minutes: u32,
    starts: Vec<(String, String)>,
    max_slots: u32,
    form: BookingValues,
    errs: Errs,
    change: bool,
}

/// `?date=&channel=&start=&slots=&lang=`: the day shown and what a grid link chose.
#[derive(Debug, Default, Deserialize)]
pub struct ReserveQuery {
    lang: Option<String>,
    date: Option<String>,
    channel: Option<String>,
    start: Option<String>,
    slots: Option<String>,
}

/// "HH:MM" of `t` in the service's zone, with the UTC offset when the day has a DST
/// change (so both 01:30s of a fall-back night can be told apart).
fn slot_label(st: &AppState, t: Timestamp, with_offset: bool) -> String {
    let z = t.to_zoned(st.settings.policy.time_zone.clone());
    if with_offset {
        z.strftime("%H:%M (%:z)").to_string()
    } else {
        z.strftime("%H:%M").to_string()
    }
}

/// The price of a channel's slot, as a person reads it.
pub(crate) fn money(m: slotcast_domain::Money) -> String {
    format!("{} {}", m.decimal(), m.currency)
}

struct ReserveView<'a> {
    lang: Option<&'a str>,
    form: BookingForm,
    errs: Errs,
}

async fn reserve_page(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    v: ReserveView<'_>,
) -> Response {
    let a: std::sync::Arc<Availability> =
        match op::availability(st, Some(v.form.date.as_str()).filter(|d| !d.is_empty())).await {
            Ok(a) => a,
            Err(e) if e.fields.contains_key("date") => {
                // A day outside what can be booked: today's grid, with the reason.
                match op::availability(st, None).await {
                    Ok(a) => a,
                    Err(e) => return failed(st, headers, &e),
                }
            }
            Err(e) => return failed(st, headers, &e),
        };
    let (mut l, fresh) = member_layout(st, headers, v.lang, m, "reserve", "");
    l.title = l.m.reserve_title.to_owned();
    let csrf = l.csrf.clone();
    let date = a.date;
    let policy = &st.settings.policy;
    let today = st
        .settings
        .policy
        .time_zone
        .to_datetime(st.clock.now())
        .date();
    let horizon = today.saturating_add(i64::from(policy.horizon_days).days());

    // The calendar: days from today to the horizon can be chosen.
    let first = date.first_of_month();
    let after = first.saturating_add(1.month());
    let weeks = month_weeks(date, |d| d >= today && d <= horizon);

    let mut form = v.form;
    if form.channel.is_empty()
        && let Some((ch, _)) = a.channels.first()
    {
        form.channel = ch.name.clone();
    }
    if form.slots.is_empty() {
        form.slots = "1".into();
    }
    if form.visibility.is_empty() {
        form.visibility = "public".into();
    }
    let chosen_start: Option<Timestamp> = form.start.parse().ok();
    let chosen_slots = form.slots.parse::<i64>().unwrap_or(1).max(1);
    let slot_len = policy.slot.duration();
    let chosen = |channel: &str, t: Timestamp| {
        chosen_start.is_some_and(|s| {
            channel == form.channel
                && t >= s
                && t < s + slot_len * i32::try_from(chosen_slots).unwrap_or(1)
        })
    };
    let channels = a
        .channels
        .iter()
        .map(|(c, _)| ChannelHead {
            name: c.name.clone(),
            capacity: c.capacity,
            bitrate: format!("{} kbit/s", c.bitrate_kbps),
            price: money(c.tariff),
            tariff_minor: c.tariff.minor,
            currency: c.tariff.currency.to_string(),
        })
        .collect();
    let times: Vec<Timestamp> = a
        .channels
        .first()
        .map(|(_, s)| s.iter().map(|s| s.start).collect())
        .unwrap_or_default();
    // Slots already over are not shown (today's grid starts at the current slot).
    let now = st.clock.now();
    let first_row = times
        .iter()
        .position(|t| *t + slot_len > now)
        .unwrap_or(times.len());
    // A day with a DST change shows the offset beside each time.
    let offsets: BTreeSet<i32> = times
        .iter()
        .map(|t| policy.time_zone.to_offset(*t).seconds())
        .collect();
    let dst = offsets.len() > 1;
    let grid = times
        .iter()
        .enumerate()
        .skip(first_row)
        .map(|(i, t)| GridRow {
            time: slot_label(st, *t, dst),
            cells: a
                .channels
                .iter()
                .map(|(c, slots)| {
                    let s = &slots[i];
                    let start = format!("{:.0}", s.start);
                    let (class, label) = match (s.taken, s.bookable) {
                        (true, _) => ("taken", l.m.taken),
                        (false, true) => ("free", l.m.free),
                        (false, false) => ("closed", l.m.closed),
                    };
                    Cell {
                        href: format!(
                            "/my/reserve?date={date}&channel={}&start={}&slots=1#form",
                            urlencode(&c.name),
                            urlencode(&start)
                        ),
                        chosen: chosen(&c.name, s.start),
                        channel: c.name.clone(),
                        start,
                        bookable: s.bookable,
                        class,
                        label,
                        title: s.program.as_ref().map(|(t, _)| t.clone()),
                    }
                })
                .collect(),
        })
        .collect();
    let starts = times[first_row..]
        .iter()
        .map(|t| (format!("{t:.0}"), slot_label(st, *t, dst)))
        .collect();
    form.date = date.to_string();
    let page = ReservePage {
        premium: m.tier == Tier::Premium,
        day: l.lang.day(date),
        month: l.lang.month(date),
        prev: first.saturating_sub(1.month()),
        next: after,
        weeks,
        channels,
        grid,
        slot_minutes: policy.slot.minutes(),
        starts,
        max_slots: policy.max_slots_per_reservation,
        form: form.values(),
        errs: v.errs.in_lang(l.lang),
        change: false,
        date,
        l,
    };
    let status = page.errs.status();
    with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh)
}

/// `GET /my/reserve`.
pub async fn reserve(
    State(st): State<AppState>,
    Query(q): Query<ReserveQuery>,
    Signed(m): Signed,
    headers: HeaderMap,
) -> Response {
    let form = BookingForm {
        date: q.date.unwrap_or_default(),
        channel: q.channel.unwrap_or_default(),
        start: q.start.unwrap_or_default(),
        slots: q.slots.unwrap_or_default(),
        show_email: m.show_email.then(|| "yes".to_owned()),
        ..BookingForm::default()
    };
    let view = ReserveView {
        lang: q.lang.as_deref(),
        form,
        errs: Errs::default(),
    };
    reserve_page(&st, &headers, &m, view).await
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    l: Layout,
    form: BookingValues,
    hidden: Vec<(&'static str, String)>,
    errs: Errs,
    start: String,
    start_iso: String,
    end: String,
    visibility: &'static str,
    fee: String,
    deadline: String,
    deadline_iso: String,
    email: String,
    quota_left: u32,
}

/// The visibility's name on the pages.
pub(crate) fn visibility_label(m: &MemberText, v: &str) -> &'static str {
    match v {
        "password" => m.password_vis,
        "secret" => m.secret,
        _ => m.public,
    }
}

/// A time in the service's zone, with its day (`Tuesday, 1 December 2026 20:00`).
pub(crate) fn long_time(st: &AppState, lang: Lang, t: Timestamp) -> String {
    let z = t.to_zoned(st.settings.policy.time_zone.clone());
    format!("{} {}", lang.day(z.date()), z.strftime("%H:%M"))
}

/// `POST /my/reserve`: `step=review` checks and prices the booking and shows the review;
/// `step=book` (terms accepted) books it and goes to its page; `step=edit` goes back to
/// the form.
pub async fn reserve_post(
    State(st): State<AppState>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<BookingForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let again = |form: BookingForm, errs: Errs| {
        let view = ReserveView {
            lang: None,
            form,
            errs,
        };
        reserve_page(&st, &headers, &m, view)
    };
    let step = f.step.clone().unwrap_or_default();
    if step == "edit" {
        return again(f, Errs::default()).await;
    }
    let req = match f.request() {
        Ok(r) => r,
        Err(errs) => return again(f, errs).await,
    };
    let texts = Lang::choose(None, &headers).member();
    let outcome = if step == "book" && ticked(f.terms.as_deref()) {
        match op::book(&st, &m, req).await {
            Ok(r) => {
                return Redirect::to(&format!("/my/reservations/{}?done=booked", r.id))
                    .into_response();
            }
            Err(e) => Err(e),
        }
    } else {
        let errs = if step == "book" {
            Errs::field("terms", texts.terms_required)
        } else {
            Errs::default()
        };
        review(&st, &headers, &m, &f, req, errs).await
    };
    match outcome {
        Ok(res) => res,
        Err(e) if e.code.status().is_server_error() => failed(&st, &headers, &e),
        Err(e) => {
            let mut res = again(f, Errs::of(&e)).await;
            *res.status_mut() = e.code.status();
            res
        }
    }
}

/// The review step: fee, deadline, where the key goes, the terms; an error (field,
/// slot taken, quota) goes back to the form.
async fn review(
    st: &AppState,
    headers: &HeaderMap,
    m: &Member,
    f: &BookingForm,
    req: BookingRequest,
    errs: Errs,
) -> Result<Response, ApiError> {
    let q = op::quote(st, m, req).await?;
    if !q.available {
        return Err(ApiError::new(
            ErrorCode::SlotTaken,
            Lang::choose(None, headers).member().slots_taken,
        ));
    }
    if q.quota_left < f.slots.trim().parse::<u32>().unwrap_or(0) {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "{} {} {}",
                Lang::choose(None, headers).member().quota_short,
                q.quota_left,
                Lang::choose(None, headers).member().slots_left
            ),
        ));
    }
    let (mut l, fresh) = member_layout(st, headers, None, m, "reserve", "");
    l.title = l.m.review_title.to_owned();
    let csrf = l.csrf.clone();
    let page = ReviewPage {
        form: f.values(),
        hidden: f.hidden(),
        errs: errs.in_lang(l.lang),
        start: long_time(st, l.lang, q.schedule.start),
        start_iso: format!("{:.0}", q.schedule.start),
        end: long_time(st, l.lang, q.schedule.end),
        visibility: visibility_label(l.m, &f.visibility),
        fee: money(q.fee),
        deadline: long_time(st, l.lang, q.schedule.confirm_by),
        deadline_iso: format!("{:.0}", q.schedule.confirm_by),
        email: m.email.to_string(),
        quota_left: q.quota_left,
        l,
    };
    let status = page.errs.status();
    Ok(with_csrf_cookie(
        (status, render(&page)).into_response(),
        &csrf,
        fresh,
    ))
}
