//! Validation of a reservation request. Every field is checked and every problem reported
//! at once, keyed by the API's field name, so a form can show them all.

use crate::email::EmailAddress;
use crate::policy::Policy;
use crate::schedule::Schedule;
use crate::slot::SlotRange;
use crate::visibility::Visibility;
use jiff::Timestamp;
use std::collections::BTreeMap;

/// Longest title, in characters.
pub const TITLE_MAX: usize = 60;
/// Longest outline.
pub const OUTLINE_MAX: usize = 80;
/// Longest detail.
pub const DETAIL_MAX: usize = 2000;
/// Longest genre.
pub const GENRE_MAX: usize = 40;
/// Longest web URL.
pub const URL_MAX: usize = 2000;
/// Viewer password length bounds.
pub const PASSWORD_MIN: usize = 6;
/// Viewer password length bounds.
pub const PASSWORD_MAX: usize = 64;
/// Most invitees of one program.
pub const INVITEES_MAX: usize = 50;

/// Problems per field: field name (e.g. `title`, `invitees[2]`) → message for a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when empty, else the errors.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

/// A reservation request as the client sent it (already JSON-decoded, not yet trusted).
#[derive(Debug, Clone, Default)]
pub struct ReservationDraft {
    /// RFC 3339 start.
    pub start: String,
    /// Number of slots.
    pub slots: i64,
    /// `public`, `password` or `secret`.
    pub visibility: String,
    /// Program title.
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// One-line outline.
    pub outline: Option<String>,
    /// Longer description.
    pub detail: Option<String>,
    /// Show the broadcaster's e-mail on the program page.
    pub show_email: bool,
    /// Link shown on the program page.
    pub web_url: Option<String>,
    /// Password for `password` and `secret` programs.
    pub viewer_password: Option<String>,
    /// Addresses to notify.
    pub invitees: Vec<String>,
}

/// What viewers see of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Title.
    pub title: String,
    /// Genre.
    pub genre: Option<String>,
    /// Outline.
    pub outline: Option<String>,
    /// Detail.
    pub detail: Option<String>,
    /// Show the broadcaster's e-mail.
    pub show_email: bool,
    /// Web link.
    pub web_url: Option<String>,
}

/// A request that passed every check, with its schedule computed at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidReservation {
    /// The booked slots.
    pub range: SlotRange,
    /// Deadlines and windows.
    pub schedule: Schedule,
    /// Open level.
    pub visibility: Visibility,
    /// Program data.
    pub program: ProgramInfo,
    /// Viewer password (only for `password` and `secret`).
    pub viewer_password: Option<String>,
    /// Invitees, de-duplicated, in the order given.
    pub invitees: Vec<EmailAddress>,
}

impl ReservationDraft {
    /// Checks every field against `policy` at `now`.
    pub fn validate(
        &self,
        policy: &Policy,
        now: Timestamp,
    ) -> Result<ValidReservation, FieldErrors> {
        let mut errs = FieldErrors::default();
        let range = self.validate_range(policy, now, &mut errs);
        let schedule = range.and_then(|r| match Schedule::compute(&r, now, policy) {
            Ok(s) => Some(s),
            Err(e) => {
                errs.add("start", e.to_string());
                None
            }
        });
        let visibility = self
            .visibility
            .parse::<Visibility>()
            .map_err(|e| errs.add("visibility", e.to_string()))
            .ok();
        let title = text(
            &mut errs,
            "title",
            Some(&self.title),
            TITLE_MAX,
            false,
            true,
        );
        let genre = genre(&mut errs, self.genre.as_deref(), policy);
        let outline = text(
            &mut errs,
            "outline",
            self.outline.as_deref(),
            OUTLINE_MAX,
            false,
            false,
        );
        let detail = text(
            &mut errs,
            "detail",
            self.detail.as_deref(),
            DETAIL_MAX,
            true,
            false,
        );
        let web_url = web_url(&mut errs, self.web_url.as_deref());
        let viewer_password =
            visibility.and_then(|v| viewer_password(&mut errs, v, self.viewer_password.as_deref()));
        let invitees = invitees(&mut errs, &self.invitees);
        errs.into_result(|| ValidReservation {
            range: range.expect("checked"),
            schedule: schedule.expect("checked"),
            visibility: visibility.expect("checked"),
            program: ProgramInfo {
                title: title.expect("checked"),
                genre,
                outline,
                detail,
                show_email: self.show_email,
                web_url,
            },
            viewer_password,
            invitees,
        })
    }

    fn validate_range(
        &self,
        policy: &Policy,
        now: Timestamp,
        errs: &mut FieldErrors,
    ) -> Option<SlotRange> {
        let max = policy.max_slots_per_reservation;
        let slots = match u32::try_from(self.slots) {
            Ok(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                errs.add("slots", format!("must be between 1 and {max}"));
                None
            }
        };
        let start = match self.start.trim().parse::<Timestamp>() {
            Ok(t) => Some(t),
            // A well-formed instant too far for the calendar (year 9999) is just as far
            // beyond the horizon as year 2099.
            Err(_) if looks_like_far_future(self.start.trim()) => {
                errs.add("start", beyond_horizon(policy, now));
                None
            }
            Err(_) => {
                errs.add(
                    "start",
                    "must be a date and time such as 2026-05-02T12:00:00Z (RFC 3339, with offset)",
                );
                None
            }
        };
        let start = start.filter(|t| {
            if !policy.slot.is_aligned(*t) {
                errs.add(
                    "start",
                    format!(
                        "must be on a {}-minute boundary, e.g. {}",
                        policy.slot.minutes(),
                        policy.slot.ceil(*t)
                    ),
                );
                false
            } else if *t <= now {
                errs.add("start", "must be in the future");
                false
            } else if *t >= policy.horizon_end(now) {
                errs.add("start", beyond_horizon(policy, now));
                false
            } else {
                true
            }
        })?;
        SlotRange::new(start, slots?, policy.slot)
            .map_err(|e| errs.add("start", e.to_string()))
            .ok()
    }
}

/// The refusal of an instant beyond the booking horizon.
pub fn beyond_horizon(policy: &Policy, now: Timestamp) -> String {
    format!(
        "is beyond the booking horizon: bookings are taken up to {} days ahead (before {})",
        policy.horizon_days,
        policy.horizon_end(now)
    )
}

/// Whether `s` is an RFC 3339 instant whose year is far in the future (`9999-…`), which
/// the calendar may not represent.
fn looks_like_far_future(s: &str) -> bool {
    s.len() >= 20
        && s.as_bytes()[4] == b'-'
        && s.get(..4)
            .and_then(|y| y.parse::<u32>().ok())
            .is_some_and(|year| year >= 9000)
}

/// Checks a free-text field. `None` and blank optional fields are `None`.
pub fn text(
    errs: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
    multiline: bool,
    required: bool,
) -> Option<String> {
    let v = value.map(str::trim).unwrap_or("");
    if v.is_empty() {
        if required {
            errs.add(field, "is required");
        }
        return None;
    }
    if v.chars().count() > max {
        errs.add(field, format!("is too long (max {max} characters)"));
        return None;
    }
    let bad = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r'));
    if v.chars().any(bad) {
        errs.add(field, "contains control characters");
        return None;
    }
    if let Some(c) = v.chars().find(|&c| deceptive(c)) {
        errs.add(
            field,
            format!(
                "contains an invisible or direction-changing character (U+{:04X}); remove it",
                u32::from(c)
            ),
        );
        return None;
    }
    Some(v.to_owned())
}

/// Characters that make text show other than it reads: the bidirectional embeddings,
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069) and marks (U+200E, U+200F,
/// U+061C), zero-width and invisible ones (U+200B, U+2060–U+2064, U+FEFF, U+180E, U+034F),
/// line and paragraph separators (U+2028, U+2029) and the interlinear annotations
/// (U+FFF9–U+FFFB). The zero-width (non-)joiners U+200C and U+200D stay allowed: scripts
/// and emoji sequences need them.
pub fn deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{180E}'
            | '\u{034F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks the genre against the configured list (any text when the list is empty).
pub fn genre(errs: &mut FieldErrors, value: Option<&str>, policy: &Policy) -> Option<String> {
    let g = text(errs, "genre", value, GENRE_MAX, false, false)?;
    if policy.genres.is_empty() {
        return Some(g);
    }
    match policy
        .genres
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&g))
    {
        Some(known) => Some(known.clone()),
        None => {
            errs.add(
                "genre",
                format!("must be one of: {}", policy.genres.join(", ")),
            );
            None
        }
    }
}

/// Checks an optional http(s) link.
pub fn web_url(errs: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let u = value.map(str::trim).filter(|u| !u.is_empty())?;
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains('@')
    });
    if u.len() > URL_MAX || !host_ok || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errs.add(
            "web_url",
            format!(
                "must be an http:// or https:// address without spaces (max {URL_MAX} characters)"
            ),
        );
        return None;
    }
    Some(u.to_owned())
}

/// Checks the viewer password against the visibility: required for `password` and
/// `secret`, refused for `public` (it would protect nothing and mislead the broadcaster).
pub fn viewer_password(
    errs: &mut FieldErrors,
    visibility: Visibility,
    value: Option<&str>,
) -> Option<String> {
    let p = value.filter(|p| !p.is_empty());
    match (visibility.needs_password(), p) {
        (true, None) => {
            errs.add(
                "viewer_password",
                format!("is required for {visibility} programs"),
            );
            None
        }
        (false, Some(_)) => {
            errs.add(
                "viewer_password",
                "only password and secret programs take a viewer password",
            );
            None
        }
        (false, None) => None,
        (true, Some(p)) => {
            let n = p.chars().count();
            if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
                errs.add(
                    "viewer_password",
                    format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
                );
                None
            } else if p.trim() != p || p.chars().any(char::is_control) {
                errs.add(
                    "viewer_password",
                    "must not start or end with spaces or contain control characters",
                );
                None
            } else {
                Some(p.to_owned())
            }
        }
    }
}

/// Checks the invitee list: at most [`INVITEES_MAX`] valid addresses; duplicates dropped.
pub fn invitees(errs: &mut FieldErrors, values: &[String]) -> Vec<EmailAddress> {
    if values.len() > INVITEES_MAX {
        errs.add(
            "invitees",
            format!("at most {INVITEES_MAX} invitees, got {}", values.len()),
        );
        return Vec::new();
    }
    let mut out: Vec<EmailAddress> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match EmailAddress::parse(v) {
            Ok(e) if !out.contains(&e) => out.push(e),
            Ok(_) => {}
            Err(e) => errs.add(format!("invitees[{i}]"), format!("{v:?} {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-05-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn bookings_beyond_the_horizon_are_refused_with_the_same_words() {
        let policy = Policy::default();
        let expected = beyond_horizon(&policy, now());
        assert!(expected.contains("90 days"), "{expected}");
        for start in [
            "2026-07-30T00:00:00Z",
            "2099-01-01T12:00:00Z",
            "9998-06-01T12:00:00Z",
            "9999-12-31T23:50:00Z",
        ] {
            let d = ReservationDraft {
                start: start.into(),
                ..draft()
            };
            let errs = d.validate(&policy, now()).unwrap_err();
            assert_eq!(errs.0["start"], expected, "{start}");
        }
        // The last slot before the horizon is fine.
        let d = ReservationDraft {
            start: "2026-07-29T23:50:00Z".into(),
            ..draft()
        };
        assert!(d.validate(&policy, now()).is_ok());
    }

    #[test]
    fn text_that_lies_about_itself_is_refused() {
        for (bad, code) in [
            ("Free \u{202E}3pm.exe", 0x202E),
            ("a\u{202A}b", 0x202A),
            ("\u{2066}isolated\u{2069}", 0x2066),
            ("left\u{200E}mark", 0x200E),
            ("arabic\u{061C}mark", 0x061C),
            ("zero\u{200B}width", 0x200B),
            ("word\u{2060}joiner", 0x2060),
            ("\u{FEFF}bom", 0xFEFF),
            ("line\u{2028}separator", 0x2028),
        ] {
            let mut errs = FieldErrors::default();
            assert_eq!(
                text(&mut errs, "title", Some(bad), 60, true, true),
                None,
                "{bad:?}"
            );
            assert_eq!(
                errs.0["title"],
                format!(
                    "contains an invisible or direction-changing character (U+{code:04X}); remove it"
                )
            );
        }
        // Joiners that scripts and emoji need, and right-to-left text itself, stay.
        let mut errs = FieldErrors::default();
        for ok in [
            "👩\u{200D}👩\u{200D}👧 family",
            "می\u{200C}خواهم",
            "שלום עולם",
            "日本語の番組",
        ] {
            assert_eq!(
                text(&mut errs, "title", Some(ok), 60, false, true).as_deref(),
                Some(ok)
            );
        }
        assert!(errs.is_empty(), "{errs:?}");
    }

    fn draft() -> ReservationDraft {
        ReservationDraft {
            start: "2026-05-02T12:00:00+02:00".into(),
            slots: 3,
            visibility: "password".into(),
            title: "  Morning jazz ".into(),
            genre: Some("music".into()),
            outline: Some("Live from the cellar".into()),
            detail: Some("Line one\nLine two".into()),
            show_email: false,
            web_url: Some("https://example.org/jazz".into()),
            viewer_password: Some("s3cret!".into()),
            invitees: vec![
                "A@example.org".into(),
                "a@example.org".into(),
                "b@example.org".into(),
            ],
        }
    }

    #[test]
    fn a_good_request_is_normalised() {
        let v = draft().validate(&Policy::default(), now()).unwrap();
        assert_eq!(
            v.range.start(),
            "2026-05-02T10:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(v.range.count(), 3);
        assert_eq!(v.program.title, "Morning jazz");
        assert_eq!(v.invitees.len(), 2);
        assert_eq!(v.visibility, Visibility::Password);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut d = draft();
        d.start = "2026-05-02T12:05:00Z".into();
        d.slots = 0;
        d.visibility = "hidden".into();
        d.title = "x".repeat(61);
        d.outline = Some("y".repeat(81));
        d.detail = Some("z".repeat(2001));
        d.web_url = Some("javascript:alert(1)".into());
        d.invitees = vec!["ok@example.org".into(), "nope".into()];
        let e = d.validate(&Policy::default(), now()).unwrap_err();
        for f in [
            "start",
            "slots",
            "visibility",
            "title",
            "outline",
            "detail",
            "web_url",
            "invitees[1]",
        ] {
            assert!(e.0.contains_key(f), "{f} missing in {e}");
        }
        assert_eq!(e.0["title"], "is too long (max 60 characters)");
    }

    #[test]
    fn start_rules() {
        let p = Policy::default();
        let mut d = draft();
        d.start = "tomorrow".into();
        assert!(d.validate(&p, now()).unwrap_err().0["start"].contains("RFC 3339"));
        d.start = "2026-04-30T12:00:00Z".into();
        assert_eq!(
            d.validate(&p, now()).unwrap_err().0["start"],
            "must be in the future"
        );
        d.start = "2026-05-01T00:00:00Z".into();
        assert_eq!(
            d.validate(&p, now()).unwrap_err().0["start"],
            "must be in the future"
        );
        d.start = "2026-05-01T00:10:00Z".into();
        assert!(
            d.validate(&p, now()).is_ok(),
            "late booking with a grace before the window"
        );
        let at_window: Timestamp = "2026-05-01T00:05:00Z".parse().unwrap();
        assert!(d.validate(&p, at_window).unwrap_err().0["start"].contains("too late"));
        d.slots = 37;
        assert!(d.validate(&p, now()).unwrap_err().0.contains_key("slots"));
    }

    #[test]
    fn password_rules_follow_visibility() {
        let p = Policy::default();
        let mut d = draft();
        d.viewer_password = None;
        assert!(
            d.validate(&p, now())
                .unwrap_err()
                .0
                .contains_key("viewer_password")
        );
        d.viewer_password = Some("12345".into());
        assert!(
            d.validate(&p, now())
                .unwrap_err()
                .0
                .contains_key("viewer_password")
        );
        d.visibility = "public".into();
        assert!(
            d.validate(&p, now())
                .unwrap_err()
                .0
                .contains_key("viewer_password")
        );
        d.viewer_password = None;
        assert!(d.validate(&p, now()).is_ok());
    }

    #[test]
    fn genres_and_invitee_limits() {
        let p = Policy {
            genres: vec!["Music".into(), "Talk".into()],
            ..Policy::default()
        };
        let mut d = draft();
        assert_eq!(
            d.validate(&p, now()).unwrap().program.genre.as_deref(),
            Some("Music")
        );
        d.genre = Some("Sports".into());
        assert_eq!(
            d.validate(&p, now()).unwrap_err().0["genre"],
            "must be one of: Music, Talk"
        );
        d.genre = None;
        d.invitees = (0..51).map(|i| format!("p{i}@example.org")).collect();
        assert!(d.validate(&p, now()).unwrap_err().0["invitees"].contains("at most 50"));
        d.title = "bad\u{7}bell".into();
        assert!(d.validate(&p, now()).unwrap_err().0.contains_key("title"));
    }
}
