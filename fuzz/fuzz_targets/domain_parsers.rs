//! Every other entry point of `slotcast-domain` that takes outside text or numbers:
//! `EmailAddress::parse`, `Currency::parse` (and `Money`'s rendering and fee),
//! `MonthKey::parse` (and the month bounds the invoice endpoint computes from it), the
//! `Visibility`, `Status` and `ChargeState` names, `SlotLength::from_minutes`, the stored
//! viewer curve (`ViewerCurve::decode`, and what `CurveBuilder` makes), and the whole
//! `ReservationDraft::validate` with arbitrary fields.
//!
//! Accepted values round-trip through `Display` (and parse back to themselves); refused
//! ones are refused for a reason the input shows; an accepted reservation satisfies every
//! rule the validator promises, and a refused one names only known fields.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::quota::slots_by_month;
use slotcast_domain::request::{
    DETAIL_MAX, GENRE_MAX, INVITEES_MAX, OUTLINE_MAX, PASSWORD_MAX, PASSWORD_MIN, TITLE_MAX,
    URL_MAX,
};
use slotcast_domain::stats::CURVE_POINTS;
use slotcast_domain::{
    ChargeState, Currency, CurveBuilder, EmailAddress, Money, MonthKey, Policy, ReservationDraft,
    SlotLength, Status, Timestamp, ViewerCurve, Visibility,
};

#[derive(Arbitrary, Debug)]
enum Start<'a> {
    /// Any text.
    Text(&'a str),
    /// An instant in RFC 3339 (seconds since the epoch, clamped into range).
    Instant(i64),
    /// An instant this many minutes after `now`.
    AfterNow(i32),
}

#[derive(Arbitrary, Debug)]
struct Draft<'a> {
    start: Start<'a>,
    slots: i64,
    visibility: &'a str,
    visibility_pick: u8,
    title: &'a str,
    genre: Option<&'a str>,
    outline: Option<&'a str>,
    detail: Option<&'a str>,
    show_email: bool,
    web_url: Option<&'a str>,
    viewer_password: Option<&'a str>,
    invitees: Vec<&'a str>,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    minor: i64,
    slots: u32,
    minutes: u32,
    /// `now` for validation: seconds after 2000-01-01, so within any real clock's range.
    now_offset_s: u32,
    max_slots: u8,
    genres: bool,
    draft: Draft<'a>,
}

fn check_email(text: &str) {
    match EmailAddress::parse(text) {
        Ok(e) => {
            assert_eq!(e.as_str(), text.trim().to_ascii_lowercase());
            assert!(e.as_str().len() <= 254);
            assert_eq!(e.as_str().matches('@').count(), 1, "{e}");
            let (local, domain) = e.as_str().split_once('@').expect("one @");
            assert!(!local.is_empty() && local.len() <= 64);
            assert!(domain.contains('.'));
            assert_eq!(EmailAddress::parse(&e.to_string()), Ok(e.clone()));
            assert_eq!(EmailAddress::try_from(String::from(e.clone())), Ok(e));
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }
}

fn check_money(text: &str, minor: i64, slots: u32) {
    let Ok(currency) = Currency::parse(text) else {
        assert!(text.len() != 3 || !text.bytes().all(|b| b.is_ascii_alphabetic()));
        return;
    };
    assert_eq!(currency.as_str(), text.to_ascii_uppercase());
    assert_eq!(currency.to_string(), text.to_ascii_uppercase());
    assert_eq!(Currency::parse(currency.as_str()), Ok(currency));
    let exp = currency.exponent();
    assert!(matches!(exp, 0 | 2 | 3));

    let m = Money::new(minor, currency);
    let decimal = m.decimal();
    let digits: String = decimal.chars().filter(|&c| c != '.').collect();
    assert_eq!(digits.parse::<i128>(), Ok(i128::from(minor)), "{decimal}");
    match decimal.split_once('.') {
        Some((_, frac)) => assert_eq!(frac.len() as u32, exp, "{decimal}"),
        None => assert_eq!(exp, 0, "{decimal}"),
    }
    assert_eq!(m.to_string(), format!("{decimal} {currency}"));

    let exact = i128::from(minor) * i128::from(slots);
    match Money::fee(m, slots) {
        Ok(fee) => {
            assert_eq!(i128::from(fee.minor), exact);
            assert_eq!(fee.currency, currency);
        }
        Err(_) => assert!(i64::try_from(exact).is_err(), "fee refused {exact}"),
    }
}

fn check_month(text: &str) {
    let Ok(month) = MonthKey::parse(text) else {
        return;
    };
    assert!((1..=12).contains(&month.month));
    assert_eq!(month.to_string(), text, "a month is written YYYY-MM");
    assert_eq!(MonthKey::parse(&month.to_string()), Ok(month));
    // What the invoice endpoint does with a parsed month.
    for tz in [TimeZone::UTC, TimeZone::fixed(slotcast_domain::jiff::tz::offset(-12))] {
        let (from, to) = month.bounds(&tz);
        assert!(from < to);
        assert_eq!(MonthKey::of(from, &tz), month);
    }
}

/// The stored viewer curve: what parses encodes back to itself, within its size limit, and
/// a built curve always reads back.
fn check_curve(text: &str, minutes: u32) {
    if let Some(c) = ViewerCurve::decode(text) {
        assert!(c.points.len() <= CURVE_POINTS);
        assert_eq!(ViewerCurve::decode(&c.encode()), Some(c));
    }
    let mut b = CurveBuilder::default();
    for (i, byte) in text.bytes().enumerate() {
        b.record(u64::from(minutes) * 1000 * i as u64, u32::from(byte));
    }
    let c = b.finish(u64::from(minutes) * 1000 * text.len() as u64);
    assert!(c.points.len() <= CURVE_POINTS);
    assert_eq!(ViewerCurve::decode(&c.encode()), Some(c));
}

fn check_names(text: &str) {
    if let Ok(v) = text.parse::<Visibility>() {
        assert_eq!(v.to_string(), text);
    }
    if let Ok(s) = text.parse::<Status>() {
        assert_eq!(s.to_string(), text);
    }
    if let Ok(c) = text.parse::<ChargeState>() {
        assert_eq!(c.to_string(), text);
    }
}

fn check_slot_length(minutes: u32) {
    match SlotLength::from_minutes(minutes) {
        Ok(len) => {
            assert!(minutes >= 1 && 60 % minutes == 0);
            assert_eq!(len.minutes(), minutes);
            assert_eq!(u32::from(len), minutes);
            assert_eq!(len.seconds(), i64::from(minutes) * 60);
        }
        Err(_) => assert!(minutes == 0 || minutes > 60 || 60 % minutes != 0),
    }
}

fn known_field(name: &str, invitees: usize) -> bool {
    const FIELDS: [&str; 10] = [
        "start",
        "slots",
        "visibility",
        "title",
        "genre",
        "outline",
        "detail",
        "web_url",
        "viewer_password",
        "invitees",
    ];
    if FIELDS.contains(&name) {
        return true;
    }
    name.strip_prefix("invitees[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|i| i.parse::<usize>().ok())
        .is_some_and(|i| i < invitees)
}

fn check_draft(input: &Input<'_>) {
    let d = &input.draft;
    let now = Timestamp::from_second(946_684_800 + i64::from(input.now_offset_s)).expect("in range");
    let mut policy = Policy::default();
    if let Ok(len) = SlotLength::from_minutes(input.minutes) {
        policy.slot = len;
    }
    policy.max_slots_per_reservation = u32::from(input.max_slots).max(1);
    if input.genres {
        policy.genres = vec!["Music".into(), "Talk".into(), "Sports".into()];
    }
    let start = match d.start {
        Start::Text(s) => s.to_owned(),
        Start::Instant(secs) => {
            let lo = Timestamp::MIN.as_second();
            let hi = Timestamp::MAX.as_second();
            Timestamp::from_second(secs.clamp(lo, hi)).expect("clamped").to_string()
        }
        Start::AfterNow(mins) => (now + SignedDuration::from_mins(i64::from(mins))).to_string(),
    };
    let visibility = match d.visibility_pick % 4 {
        0 => "public",
        1 => "password",
        2 => "secret",
        _ => d.visibility,
    };
    let draft = ReservationDraft {
        start,
        slots: d.slots,
        visibility: visibility.to_owned(),
        title: d.title.to_owned(),
        genre: d.genre.map(str::to_owned),
        outline: d.outline.map(str::to_owned),
        detail: d.detail.map(str::to_owned),
        show_email: d.show_email,
        web_url: d.web_url.map(str::to_owned),
        viewer_password: d.viewer_password.map(str::to_owned),
        invitees: d.invitees.iter().map(|s| (*s).to_owned()).collect(),
    };
    let result = draft.validate(&policy, now);
    assert_eq!(draft.validate(&policy, now), result, "validation is not deterministic");
    let v = match result {
        Err(errors) => {
            assert!(!errors.is_empty());
            for (field, message) in &errors.0 {
                assert!(known_field(field, draft.invitees.len()), "unknown field {field}");
                assert!(!message.is_empty(), "empty message for {field}");
            }
            return;
        }
        Ok(v) => v,
    };
    let range = v.range;
    assert!(range.start() > now, "start not in the future");
    assert!(policy.slot.is_aligned(range.start()), "start not aligned");
    assert_eq!(range.len(), policy.slot);
    assert_eq!(i64::from(range.count()), draft.slots);
    assert!((1..=policy.max_slots_per_reservation).contains(&range.count()));
    assert_eq!(draft.start.trim().parse::<Timestamp>().ok(), Some(range.start()));
    let s = v.schedule;
    assert_eq!((s.start, s.end), (range.start(), range.end()));
    assert!(now < s.confirm_by && s.confirm_by <= s.connect_from, "confirm deadline");
    assert!(s.connect_from < s.start && s.end < s.connect_to);
    assert!(s.confirm_reminder_at.is_none_or(|r| now < r && r < s.confirm_by));
    let months = slots_by_month(&range, &policy.time_zone);
    assert_eq!(months.iter().map(|(_, n)| n).sum::<u32>(), range.count());
    assert!(months.windows(2).all(|w| w[0].0 < w[1].0));

    assert_eq!(v.visibility.to_string(), draft.visibility);
    let p = &v.program;
    assert_eq!(p.title, draft.title.trim());
    assert!(!p.title.is_empty() && p.title.chars().count() <= TITLE_MAX);
    assert!(!p.title.chars().any(char::is_control));
    assert!(p.genre.as_ref().is_none_or(|g| g.chars().count() <= GENRE_MAX));
    if !policy.genres.is_empty() {
        assert!(p.genre.as_ref().is_none_or(|g| policy.genres.contains(g)));
    }
    assert!(p.outline.as_ref().is_none_or(|o| o.chars().count() <= OUTLINE_MAX));
    assert!(p.detail.as_ref().is_none_or(|o| o.chars().count() <= DETAIL_MAX));
    assert!(p.web_url.as_ref().is_none_or(|u| {
        u.len() <= URL_MAX && (u.starts_with("https://") || u.starts_with("http://"))
    }));
    assert_eq!(v.viewer_password.is_some(), v.visibility.needs_password());
    assert!(v.viewer_password.as_ref().is_none_or(|pw| {
        (PASSWORD_MIN..=PASSWORD_MAX).contains(&pw.chars().count()) && pw.trim() == pw
    }));
    assert!(v.invitees.len() <= INVITEES_MAX);
    for (i, e) in v.invitees.iter().enumerate() {
        assert!(!v.invitees[..i].contains(e), "duplicate invitee {e}");
        assert!(
            draft
                .invitees
                .iter()
                .any(|raw| EmailAddress::parse(raw).as_ref() == Ok(e)),
            "invitee {e} not from the request"
        );
    }
}

fn run(input: Input<'_>) {
    check_email(input.text);
    check_money(input.text, input.minor, input.slots);
    check_month(input.text);
    check_names(input.text);
    check_curve(input.text, input.minutes);
    check_slot_length(input.minutes);
    check_draft(&input);
}

fuzz_target!(|input: Input<'_>| run(input));
