//! Validation of a change to a booked program's data (the API's `PATCH` of a reservation).
//!
//! Only what viewers and invitees see may change: the title, genre, outline, detail, web
//! page, viewer password and invitee list. The channel, start, length and visibility are
//! what was booked, billed and announced, so a request naming them is refused — the
//! broadcaster cancels and books again. Every given field is checked with the same rules
//! as a new request ([`crate::request`]) and every problem is reported at once; the result
//! names what changed, in words the change e-mail uses. Whether the reservation may change
//! at all (its state, the end) is [`lifecycle::change`](crate::lifecycle::change)'s
//! question, asked by the edge only when something did change.

use crate::email::EmailAddress;
use crate::policy::Policy;
use crate::request::{self, FieldErrors, ProgramInfo};
use crate::visibility::Visibility;
use std::fmt;

/// The message for a field that is fixed at booking.
pub const FIXED_FIELD: &str = "cannot be changed; cancel and book again";

/// A change as the client sent it (decoded, not yet trusted). `None` leaves a field as it
/// is; an empty string clears an optional text (and, for a password program, is refused
/// as a missing password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProgramChangeDraft {
    /// New title.
    pub title: Option<String>,
    /// New genre.
    pub genre: Option<String>,
    /// New outline.
    pub outline: Option<String>,
    /// New detail.
    pub detail: Option<String>,
    /// Whether to show the broadcaster's e-mail.
    pub show_email: Option<bool>,
    /// New web link.
    pub web_url: Option<String>,
    /// New viewer password.
    pub viewer_password: Option<String>,
    /// The new invitee list (it replaces the old one).
    pub invitees: Option<Vec<String>>,
    /// The request named `channel` (with any value).
    pub sets_channel: bool,
    /// The request named `start`.
    pub sets_start: bool,
    /// The request named `slots`.
    pub sets_slots: bool,
    /// The request named `visibility`.
    pub sets_visibility: bool,
}

// The viewer password is a secret shared with invitees; it stays out of logs.
impl fmt::Debug for ProgramChangeDraft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramChangeDraft")
            .field("title", &self.title)
            .field("genre", &self.genre)
            .field("outline", &self.outline)
            .field("detail", &self.detail)
            .field("show_email", &self.show_email)
            .field("web_url", &self.web_url)
            .field(
                "viewer_password",
                &self.viewer_password.as_ref().map(|_| "<redacted>"),
            )
            .field("invitees", &self.invitees)
            .field("sets_channel", &self.sets_channel)
            .field("sets_start", &self.sets_start)
            .field("sets_slots", &self.sets_slots)
            .field("sets_visibility", &self.sets_visibility)
            .finish()
    }
}

/// The program as it stands, which the change is checked against and compared with.
#[derive(Clone, Copy)]
pub struct CurrentProgram<'a> {
    /// What viewers see now.
    pub program: &'a ProgramInfo,
    /// The booked open level (decides whether a viewer password is required or refused).
    pub visibility: Visibility,
    /// The viewer password in clear (the edge unseals it), if the program has one.
    pub viewer_password: Option<&'a str>,
    /// The invitees now.
    pub invitees: &'a [EmailAddress],
}

impl fmt::Debug for CurrentProgram<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentProgram")
            .field("program", self.program)
            .field("visibility", &self.visibility)
            .field(
                "viewer_password",
                &self.viewer_password.map(|_| "<redacted>"),
            )
            .field("invitees", &self.invitees)
            .finish()
    }
}

/// A change that passed every check: the program as it will be, and what differs.
#[derive(Clone, PartialEq, Eq)]
pub struct ProgramChange {
    /// The program data after the change.
    pub program: ProgramInfo,
    /// The viewer password after the change, in clear (the edge seals it).
    pub viewer_password: Option<String>,
    /// The invitees after the change.
    pub invitees: Vec<EmailAddress>,
    /// What changed, in the change e-mail's words (`title`, `genre`, `outline`, `detail`,
    /// `web page`, `viewer password`, `invitees`), in that order; empty when the request
    /// changes nothing.
    pub changed: Vec<&'static str>,
}

impl ProgramChange {
    /// Whether the request changes nothing (the edge answers with the reservation as is).
    pub fn is_unchanged(&self) -> bool {
        self.changed.is_empty()
    }
}

impl fmt::Debug for ProgramChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramChange")
            .field("program", &self.program)
            .field(
                "viewer_password",
                &self.viewer_password.as_ref().map(|_| "<redacted>"),
            )
            .field("invitees", &self.invitees)
            .field("changed", &self.changed)
            .finish()
    }
}

impl ProgramChangeDraft {
    /// Checks every given field against `current` and `policy` (for the genre list) and
    /// computes the program after the change.
    pub fn validate(
        &self,
        current: &CurrentProgram<'_>,
        policy: &Policy,
    ) -> Result<ProgramChange, FieldErrors> {
        let mut errs = FieldErrors::default();
        for (field, given) in [
            ("channel", self.sets_channel),
            ("start", self.sets_start),
            ("slots", self.sets_slots),
            ("visibility", self.sets_visibility),
        ] {
            if given {
                errs.add(field, FIXED_FIELD);
            }
        }
        let old = current.program;
        // An optional text given as "" (or blanks) is cleared: `text` answers `None`.
        let optional = |errs: &mut FieldErrors,
                        field: &str,
                        given: &Option<String>,
                        max: usize,
                        multiline: bool,
                        old: &Option<String>| match given {
            None => old.clone(),
            Some(v) => request::text(errs, field, Some(v), max, multiline, false),
        };
        let title = match &self.title {
            None => Some(old.title.clone()),
            Some(t) => request::text(&mut errs, "title", Some(t), request::TITLE_MAX, false, true),
        };
        let genre = match &self.genre {
            None => old.genre.clone(),
            Some(g) => request::genre(&mut errs, Some(g), policy),
        };
        let outline = optional(
            &mut errs,
            "outline",
            &self.outline,
            request::OUTLINE_MAX,
            false,
            &old.outline,
        );
        let detail = optional(
            &mut errs,
            "detail",
            &self.detail,
            request::DETAIL_MAX,
            true,
            &old.detail,
        );
        let web_url = match &self.web_url {
            None => old.web_url.clone(),
            Some(u) => request::web_url(&mut errs, Some(u)),
        };
        let viewer_password = match &self.viewer_password {
            None => current.viewer_password.map(str::to_owned),
            Some(p) => request::viewer_password(&mut errs, current.visibility, Some(p)),
        };
        let invitees = match &self.invitees {
            None => current.invitees.to_vec(),
            Some(list) => request::invitees(&mut errs, list),
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        let program = ProgramInfo {
            // A refused title is an error above, so a title is always there.
            title: title.unwrap_or_default(),
            genre,
            outline,
            detail,
            show_email: self.show_email.unwrap_or(old.show_email),
            web_url,
        };
        let changed = [
            ("title", program.title != old.title),
            ("genre", program.genre != old.genre),
            ("outline", program.outline != old.outline),
            ("detail", program.detail != old.detail),
            // The link and the e-mail shown are both "the web page" to an invitee.
            (
                "web page",
                program.web_url != old.web_url || program.show_email != old.show_email,
            ),
            (
                "viewer password",
                viewer_password.as_deref() != current.viewer_password,
            ),
            // Order counts: the list is shown in the order the broadcaster gave.
            ("invitees", invitees.as_slice() != current.invitees),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        Ok(ProgramChange {
            program,
            viewer_password,
            invitees,
            changed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program() -> ProgramInfo {
        ProgramInfo {
            title: "Morning jazz".into(),
            genre: Some("music".into()),
            outline: Some("Live from the cellar".into()),
            detail: Some("Line one\nLine two".into()),
            show_email: false,
            web_url: Some("https://example.org/jazz".into()),
        }
    }

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    struct Fixture {
        program: ProgramInfo,
        visibility: Visibility,
        password: Option<String>,
        invitees: Vec<EmailAddress>,
    }

    impl Fixture {
        fn password() -> Self {
            Self {
                program: program(),
                visibility: Visibility::Password,
                password: Some("s3cret!".into()),
                invitees: vec![addr("a@example.org"), addr("b@example.org")],
            }
        }

        fn public() -> Self {
            Self {
                visibility: Visibility::Public,
                password: None,
                ..Self::password()
            }
        }

        fn current(&self) -> CurrentProgram<'_> {
            CurrentProgram {
                program: &self.program,
                visibility: self.visibility,
                viewer_password: self.password.as_deref(),
                invitees: &self.invitees,
            }
        }

        fn check(&self, d: ProgramChangeDraft) -> Result<ProgramChange, FieldErrors> {
            d.validate(&self.current(), &Policy::default())
        }
    }

    #[test]
    fn an_empty_request_changes_nothing() {
        let f = Fixture::password();
        let c = f.check(ProgramChangeDraft::default()).unwrap();
        assert!(c.is_unchanged());
        assert_eq!(c.program, f.program);
        assert_eq!(c.viewer_password.as_deref(), Some("s3cret!"));
        assert_eq!(c.invitees, f.invitees);
    }

    #[test]
    fn the_same_values_again_change_nothing() {
        let f = Fixture::password();
        let d = ProgramChangeDraft {
            title: Some("  Morning jazz ".into()),
            genre: Some("music".into()),
            outline: Some("Live from the cellar".into()),
            detail: Some("Line one\nLine two".into()),
            show_email: Some(false),
            web_url: Some("https://example.org/jazz".into()),
            viewer_password: Some("s3cret!".into()),
            invitees: Some(vec!["a@example.org".into(), "B@example.org".into()]),
            ..ProgramChangeDraft::default()
        };
        assert_eq!(f.check(d).unwrap().changed, Vec::<&str>::new());
    }

    #[test]
    fn booked_fields_are_refused_each_by_name() {
        let f = Fixture::password();
        let d = ProgramChangeDraft {
            sets_channel: true,
            sets_start: true,
            sets_slots: true,
            sets_visibility: true,
            title: Some("Evening jazz".into()),
            ..ProgramChangeDraft::default()
        };
        let e = f.check(d).unwrap_err();
        for field in ["channel", "start", "slots", "visibility"] {
            assert_eq!(e.0[field], "cannot be changed; cancel and book again");
        }
        assert_eq!(e.0.len(), 4, "{e}");
        let d = ProgramChangeDraft {
            sets_slots: true,
            ..ProgramChangeDraft::default()
        };
        assert_eq!(
            f.check(d).unwrap_err().0.keys().collect::<Vec<_>>(),
            ["slots"]
        );
    }

    #[test]
    fn each_changed_field_is_named_in_order() {
        let f = Fixture::password();
        let d = ProgramChangeDraft {
            title: Some("Evening jazz".into()),
            genre: Some("talk".into()),
            outline: Some("From the roof".into()),
            detail: Some("Other".into()),
            web_url: Some("https://example.org/roof".into()),
            viewer_password: Some("n3w-secret".into()),
            invitees: Some(vec!["c@example.org".into()]),
            ..ProgramChangeDraft::default()
        };
        let c = f.check(d).unwrap();
        assert_eq!(
            c.changed,
            [
                "title",
                "genre",
                "outline",
                "detail",
                "web page",
                "viewer password",
                "invitees"
            ]
        );
        assert_eq!(c.program.title, "Evening jazz");
        assert_eq!(c.viewer_password.as_deref(), Some("n3w-secret"));
        assert_eq!(c.invitees, [addr("c@example.org")]);
    }

    #[test]
    fn showing_the_email_is_a_change_of_the_web_page() {
        let f = Fixture::public();
        let c = f
            .check(ProgramChangeDraft {
                show_email: Some(true),
                ..ProgramChangeDraft::default()
            })
            .unwrap();
        assert_eq!(c.changed, ["web page"]);
        assert!(c.program.show_email);
        assert_eq!(c.program.web_url, f.program.web_url);
    }

    #[test]
    fn empty_strings_clear_optional_texts_but_not_the_title() {
        let f = Fixture::public();
        let d = ProgramChangeDraft {
            genre: Some(String::new()),
            outline: Some("  ".into()),
            detail: Some(String::new()),
            web_url: Some(String::new()),
            invitees: Some(Vec::new()),
            ..ProgramChangeDraft::default()
        };
        let c = f.check(d).unwrap();
        assert_eq!(
            (
                &c.program.genre,
                &c.program.outline,
                &c.program.detail,
                &c.program.web_url
            ),
            (&None, &None, &None, &None)
        );
        assert!(c.invitees.is_empty());
        assert_eq!(
            c.changed,
            ["genre", "outline", "detail", "web page", "invitees"]
        );
        let e = f
            .check(ProgramChangeDraft {
                title: Some(" ".into()),
                ..ProgramChangeDraft::default()
            })
            .unwrap_err();
        assert_eq!(e.0["title"], "is required");
    }

    #[test]
    fn texts_are_checked_as_in_a_new_request() {
        let f = Fixture::public();
        let d = ProgramChangeDraft {
            title: Some("x".repeat(61)),
            outline: Some("y".repeat(81)),
            detail: Some("z".repeat(2001)),
            web_url: Some("javascript:alert(1)".into()),
            ..ProgramChangeDraft::default()
        };
        let e = f.check(d).unwrap_err();
        assert_eq!(e.0["title"], "is too long (max 60 characters)");
        assert_eq!(e.0["outline"], "is too long (max 80 characters)");
        assert_eq!(e.0["detail"], "is too long (max 2000 characters)");
        assert_eq!(
            e.0["web_url"],
            "must be an http:// or https:// address without spaces (max 2000 characters)"
        );
        let e = f
            .check(ProgramChangeDraft {
                outline: Some("bad\u{7}bell".into()),
                detail: Some("tabs\tand\nlines are fine".into()),
                ..ProgramChangeDraft::default()
            })
            .unwrap_err();
        assert_eq!(e.0["outline"], "contains control characters");
        assert!(!e.0.contains_key("detail"));
    }

    #[test]
    fn the_genre_follows_the_configured_list() {
        let f = Fixture::public();
        let p = Policy {
            genres: vec!["Music".into(), "Talk".into()],
            ..Policy::default()
        };
        let d = |g: &str| ProgramChangeDraft {
            genre: Some(g.into()),
            ..ProgramChangeDraft::default()
        };
        let c = d("talk").validate(&f.current(), &p).unwrap();
        assert_eq!(c.program.genre.as_deref(), Some("Talk"));
        assert_eq!(
            d("Sports").validate(&f.current(), &p).unwrap_err().0["genre"],
            "must be one of: Music, Talk"
        );
    }

    #[test]
    fn the_viewer_password_follows_the_booked_visibility() {
        let pw = |p: &str| ProgramChangeDraft {
            viewer_password: Some(p.into()),
            ..ProgramChangeDraft::default()
        };
        let f = Fixture::password();
        assert_eq!(
            f.check(pw("")).unwrap_err().0["viewer_password"],
            "is required for password programs"
        );
        assert_eq!(
            f.check(pw("12345")).unwrap_err().0["viewer_password"],
            "must be 6 to 64 characters"
        );
        assert_eq!(
            f.check(pw(" spaced ")).unwrap_err().0["viewer_password"],
            "must not start or end with spaces or contain control characters"
        );
        assert_eq!(f.check(pw("123456")).unwrap().changed, ["viewer password"]);
        let f = Fixture::public();
        assert_eq!(
            f.check(pw("123456")).unwrap_err().0["viewer_password"],
            "only password and secret programs take a viewer password"
        );
        // Clearing a password that a public program does not have changes nothing.
        let c = f.check(pw("")).unwrap();
        assert!(c.is_unchanged());
        assert_eq!(c.viewer_password, None);
    }

    #[test]
    fn invitees_are_checked_deduplicated_and_compared_in_order() {
        let f = Fixture::password();
        let list = |l: &[&str]| ProgramChangeDraft {
            invitees: Some(l.iter().map(|s| s.to_string()).collect()),
            ..ProgramChangeDraft::default()
        };
        let e = f.check(list(&["ok@example.org", "nope"])).unwrap_err();
        assert_eq!(
            e.0["invitees[1]"],
            "\"nope\" needs an @ between name and domain"
        );
        let many: Vec<String> = (0..51).map(|i| format!("p{i}@example.org")).collect();
        let e = f
            .check(ProgramChangeDraft {
                invitees: Some(many),
                ..ProgramChangeDraft::default()
            })
            .unwrap_err();
        assert_eq!(e.0["invitees"], "at most 50 invitees, got 51");
        let c = f
            .check(list(&["a@example.org", "A@example.org", "b@example.org"]))
            .unwrap();
        assert!(c.is_unchanged(), "duplicates dropped: {:?}", c.changed);
        let c = f.check(list(&["b@example.org", "a@example.org"])).unwrap();
        assert_eq!(c.changed, ["invitees"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = Fixture::password();
        let d = ProgramChangeDraft {
            sets_start: true,
            title: Some(String::new()),
            web_url: Some("ftp://example.org".into()),
            viewer_password: Some("1".into()),
            invitees: Some(vec!["x".into()]),
            ..ProgramChangeDraft::default()
        };
        let e = f.check(d).unwrap_err();
        assert_eq!(
            e.0.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "invitees[0]",
                "start",
                "title",
                "viewer_password",
                "web_url"
            ]
        );
    }

    #[test]
    fn debug_keeps_the_viewer_password_out() {
        let f = Fixture::password();
        let d = ProgramChangeDraft {
            viewer_password: Some("n3w-secret".into()),
            ..ProgramChangeDraft::default()
        };
        let c = f.check(d.clone()).unwrap();
        for shown in [
            format!("{d:?}"),
            format!("{:?}", f.current()),
            format!("{c:?}"),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }
}
