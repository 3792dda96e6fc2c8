//! The iCalendar (RFC 5545) attachment of invitee e-mails, written by hand: one VEVENT,
//! text escaped, lines folded at 75 octets. It never carries the viewer password.

use super::render::MailContext;
use slotcast_domain::Timestamp;

/// The iTIP method of a calendar (RFC 5546).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsMethod {
    /// An invitation, or an update of one (with a higher `SEQUENCE`).
    Request,
    /// The event is cancelled.
    Cancel,
}

impl IcsMethod {
    /// The `METHOD` value.
    pub fn as_str(self) -> &'static str {
        match self {
            IcsMethod::Request => "REQUEST",
            IcsMethod::Cancel => "CANCEL",
        }
    }
}

/// The program as an iCalendar object with one event: stable `UID` (`{slug}@{host}`),
/// `SEQUENCE` from the context, times in UTC, the outline and the watch URL — and never
/// the viewer password.
pub fn ics(ctx: &MailContext<'_>, method: IcsMethod) -> String {
    let r = ctx.reservation;
    let s = &r.schedule;
    let mut description = String::new();
    if let Some(outline) = r
        .program
        .outline
        .as_deref()
        .filter(|o| !o.trim().is_empty())
    {
        description.push_str(outline);
        description.push_str("\n\n");
    }
    description.push_str(&format!("Channel: {}\n", ctx.channel.name));
    description.push_str(&format!("Watch: {}", ctx.watch_url()));
    if r.visibility.needs_password() {
        description.push_str("\nThe viewer password is in the invitation e-mail.");
    }
    let organizer_name: String = ctx
        .broadcaster
        .display_name
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect();
    let status = match method {
        IcsMethod::Request => "CONFIRMED",
        IcsMethod::Cancel => "CANCELLED",
    };

    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        format!(
            "PRODID:-//slotcast//slotcast {}//EN",
            env!("CARGO_PKG_VERSION")
        ),
        "VERSION:2.0".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        format!("METHOD:{}", method.as_str()),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", r.slug, ctx.host()),
        format!("SEQUENCE:{}", ctx.sequence),
        format!("DTSTAMP:{}", utc(r.updated_at)),
        format!("DTSTART:{}", utc(s.start)),
        format!("DTEND:{}", utc(s.end)),
        format!("SUMMARY:{}", escape_text(&r.program.title)),
        format!("DESCRIPTION:{}", escape_text(&description)),
        format!("URL:{}", ctx.watch_url()),
        // The broadcaster's address only where they chose to show it; otherwise the
        // service's own no-reply address stands in (iTIP wants an ORGANIZER).
        if r.program.show_email {
            format!(
                "ORGANIZER;CN=\"{organizer_name}\":mailto:{}",
                ctx.broadcaster.email
            )
        } else {
            format!(
                "ORGANIZER;CN=\"{organizer_name}\":mailto:noreply@{}",
                ctx.host()
            )
        },
        format!("STATUS:{status}"),
        "TRANSP:OPAQUE".to_owned(),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for line in &lines {
        fold_into(line, &mut out);
    }
    out
}

/// The host of a URL: what lies between `scheme://` (and any `user@`) and the port or
/// path. IPv6 literals keep their brackets.
pub fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        return hostport.find(']').map_or(hostport, |i| &hostport[..=i]);
    }
    hostport.split(':').next().unwrap_or(hostport)
}

/// One event of a published calendar feed (e.g. the program guide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Stable id, `{slug}@{host}` like the invitations' (see [`host`]).
    pub uid: String,
    /// Start.
    pub start: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Title.
    pub summary: String,
    /// Longer text (escaped here).
    pub description: String,
    /// Link to the program page.
    pub url: String,
}

/// A calendar feed (`METHOD:PUBLISH`) named `name` with one VEVENT per event, stamped
/// `now`. Only what the caller passes is written: it must leave out secret programs and
/// never pass passwords.
pub fn feed(name: &str, events: &[FeedEvent], now: Timestamp) -> String {
    let mut out = String::new();
    let mut line = |l: String| fold_into(&l, &mut out);
    line("BEGIN:VCALENDAR".into());
    line(format!(
        "PRODID:-//slotcast//slotcast {}//EN",
        env!("CARGO_PKG_VERSION")
    ));
    line("VERSION:2.0".into());
    line("CALSCALE:GREGORIAN".into());
    line("METHOD:PUBLISH".into());
    line(format!("X-WR-CALNAME:{}", escape_text(name)));
    for e in events {
        line("BEGIN:VEVENT".into());
        line(format!("UID:{}", one_value(&e.uid)));
        line(format!("DTSTAMP:{}", utc(now)));
        line(format!("DTSTART:{}", utc(e.start)));
        line(format!("DTEND:{}", utc(e.end)));
        line(format!("SUMMARY:{}", escape_text(&e.summary)));
        if !e.description.trim().is_empty() {
            line(format!("DESCRIPTION:{}", escape_text(&e.description)));
        }
        line(format!("URL:{}", one_value(&e.url)));
        line("STATUS:CONFIRMED".into());
        line("END:VEVENT".into());
    }
    line("END:VCALENDAR".into());
    out
}

/// A non-TEXT value (UID, URI) with control characters removed, so it stays one line.
fn one_value(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// `YYYYMMDDTHHMMSSZ`.
fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines
/// (CRLF, CR and LF all become `\n`); other control characters are dropped.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` with CRLF, folded so that no physical line exceeds 75 octets (RFC 5545
/// §3.1): continuation lines start with one space, and a UTF-8 character is never split.
fn fold_into(line: &str, out: &mut String) {
    const MAX: usize = 75;
    let mut used = 0; // octets on the current physical line
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > MAX {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::render::tests::Fixture;
    use slotcast_domain::Visibility;

    /// Undoes folding: a CRLF followed by a space is removed.
    fn unfold(s: &str) -> String {
        s.replace("\r\n ", "")
    }

    #[test]
    fn url_host_strips_scheme_port_path() {
        assert_eq!(host("http://localhost:8080"), "localhost");
        assert_eq!(host("https://tv.example.org/base/"), "tv.example.org");
        assert_eq!(host("https://u:p@tv.example.org:443/x"), "tv.example.org");
        assert_eq!(host("http://[::1]:8080"), "[::1]");
        assert_eq!(host("example.org"), "example.org");
    }

    #[test]
    fn feed_lists_events_as_published() {
        let now: Timestamp = "2026-06-01T10:00:00Z".parse().unwrap();
        let events = [
            FeedEvent {
                uid: "pa@tv.example.org".into(),
                start: "2026-06-02T12:00:00Z".parse().unwrap(),
                end: "2026-06-02T12:30:00Z".parse().unwrap(),
                summary: "One, two; three".into(),
                description: "Outline\nchannel small".into(),
                url: "http://tv.example.org/programs/pa".into(),
            },
            FeedEvent {
                uid: "pb@tv.example.org\r\nX".into(),
                start: "2026-06-03T12:00:00Z".parse().unwrap(),
                end: "2026-06-03T12:30:00Z".parse().unwrap(),
                summary: "B".into(),
                description: String::new(),
                url: "http://tv.example.org/programs/pb".into(),
            },
        ];
        let cal = feed("slotcast programs", &events, now);
        let flat = unfold(&cal);
        let lines: Vec<&str> = flat.split("\r\n").collect();
        for want in [
            "METHOD:PUBLISH",
            "X-WR-CALNAME:slotcast programs",
            "UID:pa@tv.example.org",
            "UID:pb@tv.example.orgX",
            "DTSTAMP:20260601T100000Z",
            "DTSTART:20260602T120000Z",
            "SUMMARY:One\\, two\\; three",
            "DESCRIPTION:Outline\\nchannel small",
        ] {
            assert!(lines.contains(&want), "{want} missing from\n{flat}");
        }
        assert_eq!(lines.iter().filter(|l| **l == "BEGIN:VEVENT").count(), 2);
        assert!(cal.ends_with("END:VCALENDAR\r\n"));
        let empty = feed("x", &[], now);
        assert!(!empty.contains("VEVENT"));
    }

    #[test]
    fn escapes_text() {
        assert_eq!(
            escape_text("a\\b;c,d\ne\r\nf\rg\u{7}"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ng"
        );
    }

    #[test]
    fn folds_at_75_octets_without_splitting_characters() {
        let mut out = String::new();
        let line = format!("SUMMARY:{}", "ä€😀x".repeat(40));
        fold_into(&line, &mut out);
        assert!(out.ends_with("\r\n"));
        for physical in out.trim_end_matches("\r\n").split("\r\n") {
            assert!(physical.len() <= 75, "{} octets", physical.len());
        }
        assert!(out.split("\r\n").count() > 3);
        // Every piece is valid UTF-8 on its own (a `&str`), and unfolding gives the line.
        assert_eq!(unfold(out.trim_end_matches("\r\n")), line);

        let mut short = String::new();
        fold_into(&"x".repeat(75), &mut short);
        assert_eq!(short, format!("{}\r\n", "x".repeat(75)));
        let mut long = String::new();
        fold_into(&"x".repeat(76), &mut long);
        assert_eq!(long, format!("{}\r\n x\r\n", "x".repeat(75)));
    }

    #[test]
    fn request_is_a_valid_calendar() {
        let mut f = Fixture::new(Visibility::Password);
        f.reservation.program.outline = Some(format!("Ünïcödé outline, long; {}", "ö".repeat(60)));
        let ctx = f.ctx(Some("tulip-4711"), 5);
        let cal = ics(&ctx, IcsMethod::Request);
        assert!(cal.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(cal.ends_with("END:VCALENDAR\r\n"));
        assert!(!cal.contains("tulip"), "never the password");
        for physical in cal.split("\r\n") {
            assert!(physical.len() <= 75, "{physical:?}");
            assert!(!physical.contains('\n') && !physical.contains('\r'));
        }
        let flat = unfold(&cal);
        let lines: Vec<&str> = flat.split("\r\n").collect();
        for want in [
            "VERSION:2.0",
            "METHOD:REQUEST",
            "BEGIN:VEVENT",
            "UID:p9f3kq2x7@watch.example.org",
            "SEQUENCE:5",
            "DTSTAMP:20260602T083000Z",
            "DTSTART:20260610T120000Z",
            "DTEND:20260610T133000Z",
            "SUMMARY:Night <script>alert(1)</script> & Jazz",
            "URL:http://watch.example.org:8080/programs/p9f3kq2x7",
            "ORGANIZER;CN=\"Cas <b>Ter</b>\":mailto:noreply@watch.example.org",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ] {
            assert!(lines.contains(&want), "{want} missing from\n{flat}");
        }
        assert!(
            !flat.contains("caster@example.org"),
            "the address is shown only by choice"
        );
        f.reservation.program.show_email = true;
        let shown = unfold(&ics(&f.ctx(Some("tulip-4711"), 5), IcsMethod::Request));
        assert!(shown.contains("ORGANIZER;CN=\"Cas <b>Ter</b>\":mailto:caster@example.org"));
        assert!(lines.iter().any(|l| l.starts_with("PRODID:-//slotcast//")));
        let desc = lines
            .iter()
            .find(|l| l.starts_with("DESCRIPTION:"))
            .unwrap();
        assert!(desc.starts_with("DESCRIPTION:Ünïcödé outline\\, long\\; ööö"));
        assert!(desc.contains(
            "\\n\\nChannel: medium\\nWatch: http://watch.example.org:8080/programs/p9f3kq2x7"
        ));
        assert_eq!(lines.iter().filter(|l| **l == "BEGIN:VEVENT").count(), 1);
    }

    #[test]
    fn cancel_keeps_uid_and_marks_cancelled() {
        let f = Fixture::new(Visibility::Secret);
        let a = ics(&f.ctx(None, 0), IcsMethod::Request);
        let b = ics(&f.ctx(None, 1), IcsMethod::Cancel);
        let uid = |c: &str| {
            c.split("\r\n")
                .find(|l| l.starts_with("UID:"))
                .map(str::to_owned)
        };
        assert_eq!(uid(&a), uid(&b));
        assert!(b.contains("METHOD:CANCEL\r\n"));
        assert!(b.contains("STATUS:CANCELLED\r\n"));
        assert!(b.contains("SEQUENCE:1\r\n"));
    }

    #[test]
    fn organizer_name_cannot_break_the_parameter() {
        let mut f = Fixture::new(Visibility::Public);
        f.broadcaster.display_name = "Evil\";X=1:\r\nBEGIN:VEVENT".into();
        let cal = ics(&f.ctx(None, 0), IcsMethod::Request);
        let flat = unfold(&cal);
        assert_eq!(
            flat.split("\r\n").filter(|l| *l == "BEGIN:VEVENT").count(),
            1
        );
        assert!(flat.contains("ORGANIZER;CN=\"Evil;X=1:BEGIN:VEVENT\":mailto:"));
    }
}
