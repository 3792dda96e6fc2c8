//! The e-mails themselves: pure functions from a reservation (and its channel and
//! broadcaster) to complete outbox messages.

use super::ics::{IcsMethod, host as url_host, ics};
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::jiff::{Timestamp, Zoned};
use slotcast_domain::lifecycle::InviteeNotice;
use slotcast_domain::{EmailAddress, Money, ReservationKey};
use slotcast_store::{Channel, Member, NewMessage, Reservation};
use std::fmt::Write as _;

/// Everything an e-mail about one reservation is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct MailContext<'a> {
    /// The service's public base URL, e.g. `http://localhost:8080` (a trailing slash is
    /// ignored).
    pub public_url: &'a str,
    /// Where broadcasters publish, without the key, e.g. `rtmp://watch.example.org:1935/live`.
    pub ingest: &'a str,
    /// The zone times are shown in (with its abbreviation and name).
    pub time_zone: &'a TimeZone,
    /// The reservation, as it is after the change the message is about.
    pub reservation: &'a Reservation,
    /// Its channel.
    pub channel: &'a Channel,
    /// Its broadcaster.
    pub broadcaster: &'a Member,
    /// The viewer password in the clear, for the invitee e-mails of `password` and
    /// `secret` programs (never written anywhere else).
    pub viewer_password: Option<&'a str>,
    /// The iCalendar `SEQUENCE`: 0 for the first invitation, one more for every change
    /// (and for the cancellation).
    pub sequence: u32,
}

impl MailContext<'_> {
    /// The base URL without a trailing slash.
    pub(crate) fn base_url(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }

    /// Where viewers watch the program.
    pub(crate) fn watch_url(&self) -> String {
        format!("{}/programs/{}", self.base_url(), self.reservation.slug)
    }

    /// The host name of the public URL (no scheme, port, path or credentials).
    pub(crate) fn host(&self) -> &str {
        url_host(self.public_url)
    }

    fn id(&self) -> i64 {
        self.reservation.id.0
    }

    fn title(&self) -> &str {
        &self.reservation.program.title
    }

    /// The viewer password, if the program needs one and it is known.
    fn password_for_invitees(&self) -> Option<&str> {
        self.viewer_password
            .filter(|_| self.reservation.visibility.needs_password())
    }

    fn local(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.time_zone.clone())
    }

    fn zone_label(&self, z: &Zoned) -> String {
        let abbr = z.strftime("%Z").to_string();
        match self.time_zone.iana_name() {
            Some(name) if name != abbr => format!("{abbr} ({name})"),
            _ => abbr,
        }
    }

    /// An instant in the service's zone, e.g. `2026-06-10 14:00 CEST (Europe/Berlin)`.
    pub(crate) fn instant(&self, t: Timestamp) -> String {
        let z = self.local(t);
        format!("{} {}", z.strftime("%Y-%m-%d %H:%M"), self.zone_label(&z))
    }

    /// A time range, shortened when both ends fall on the same day in the same offset,
    /// e.g. `2026-06-10 14:00 – 15:30 CEST (Europe/Berlin)`.
    fn span(&self, a: Timestamp, b: Timestamp) -> String {
        let (za, zb) = (self.local(a), self.local(b));
        if za.date() == zb.date() && za.offset() == zb.offset() {
            format!(
                "{} – {} {}",
                za.strftime("%Y-%m-%d %H:%M"),
                zb.strftime("%H:%M"),
                self.zone_label(&zb)
            )
        } else {
            format!("{} – {}", self.instant(a), self.instant(b))
        }
    }

    fn when(&self) -> String {
        let s = &self.reservation.schedule;
        self.span(s.start, s.end)
    }

    /// Minutes in one slot of this reservation.
    fn slot_minutes(&self) -> i64 {
        let s = &self.reservation.schedule;
        let total = s.end.as_second() - s.start.as_second();
        total / i64::from(self.reservation.slots.max(1)) / 60
    }

    fn message(
        &self,
        to: &EmailAddress,
        dedupe_key: String,
        subject: String,
        doc: Doc,
    ) -> NewMessage {
        let subject = one_line(&subject);
        let (text, html) = doc.finish(&subject);
        NewMessage {
            dedupe_key,
            to: to.clone(),
            subject,
            text,
            html: Some(html),
            ics: None,
            reservation: Some(self.reservation.id),
        }
    }
}

/// A subject on one line: control characters (newlines included) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A message body written once and produced both as plain text and as HTML; every piece
/// of text is HTML-escaped, so user-provided values can be passed in as they are.
struct Doc {
    text: String,
    html: String,
}

impl Doc {
    fn new() -> Self {
        Self {
            text: String::new(),
            html: String::new(),
        }
    }

    /// A paragraph.
    fn para(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push_str("\n\n");
        let _ = writeln!(
            self.html,
            "<p>{}</p>",
            html_escape(s).replace('\n', "<br>\n")
        );
    }

    /// A paragraph followed by a link on its own line.
    fn link(&mut self, s: &str, url: &str) {
        let _ = write!(self.text, "{s}\n{url}\n\n");
        let u = html_escape(url);
        let _ = writeln!(
            self.html,
            "<p>{}<br>\n<a href=\"{u}\">{u}</a></p>",
            html_escape(s)
        );
    }

    /// Text shown as code (keys, commands, URLs to copy), indented in the plain text.
    fn code(&mut self, s: &str) {
        for line in s.lines() {
            let _ = writeln!(self.text, "    {line}");
        }
        self.text.push('\n');
        let _ = writeln!(self.html, "<pre><code>{}</code></pre>", html_escape(s));
    }

    /// Labelled values; rows with `None` are left out.
    fn rows(&mut self, rows: &[(&str, Option<String>)]) {
        let width = rows
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        self.html.push_str("<table>\n");
        for (label, value) in rows {
            let Some(value) = value else { continue };
            let pad = width - label.chars().count();
            let _ = writeln!(
                self.text,
                "{label}:{:pad$} {}",
                "",
                value.replace('\n', &format!("\n{:w$}", "", w = width + 2)),
            );
            let _ = writeln!(
                self.html,
                "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>",
                html_escape(label),
                html_escape(value).replace('\n', "<br>\n")
            );
        }
        self.html.push_str("</table>\n");
        self.text.push('\n');
    }

    fn finish(self, subject: &str) -> (String, String) {
        let mut text = self.text.trim_end().to_owned();
        text.push_str("\n\n-- \nslotcast\n");
        let html = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body>\n{}<hr>\n<p>slotcast</p>\n</body>\n</html>\n",
            html_escape(subject),
            self.html
        );
        (text, html)
    }
}

/// The reservation key, right after acceptance, to the broadcaster.
pub fn key_message(ctx: &MailContext<'_>, key: &ReservationKey) -> NewMessage {
    let r = ctx.reservation;
    let s = &r.schedule;
    let id = ctx.id();
    let confirm_by = ctx.instant(s.confirm_by);
    let subject = format!("Your reservation key: {} ({})", ctx.title(), ctx.when());
    let mut d = Doc::new();
    d.para(&format!(
        "Hello {}, your booking is accepted. Here is its reservation key:",
        ctx.broadcaster.display_name
    ));
    d.code(key.expose());
    d.para(&format!(
        "Confirm before {confirm_by} or the booking expires and its slots are freed."
    ));
    d.rows(&[
        ("Program", Some(ctx.title().to_owned())),
        ("Reservation", Some(format!("#{id}"))),
        ("Channel", Some(ctx.channel.name.clone())),
        ("Time", Some(ctx.when())),
        ("Fee", Some(r.fee.to_string())),
        ("Confirm before", Some(confirm_by.clone())),
    ]);
    d.para("To confirm, run the slotcast tool and give it the key:");
    d.code(&format!("slotcast confirm {id}"));
    d.para("or send the key to the API:");
    d.code(&format!(
        "POST {}/api/v1/reservations/{id}/confirm",
        ctx.base_url()
    ));
    d.para(&format!(
        "The key is also your stream key. It lets you publish to channel {} only from {} to {}:",
        ctx.channel.name,
        ctx.instant(s.connect_from),
        ctx.instant(s.connect_to)
    ));
    let ingest = ctx.ingest.trim_end_matches('/');
    d.code(&format!(
        "{ingest}/{}\n(server {ingest}, stream key {})",
        key.expose(),
        key.expose()
    ));
    d.para("Keep the key to yourself: anyone who has it can confirm and broadcast this booking.");
    ctx.message(&ctx.broadcaster.email, format!("r{id}/key"), subject, d)
}

pub use slotcast_store::ProgramStats;

/// The e-mails to the broadcaster other than the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcasterMail {
    /// The confirm deadline is near.
    ConfirmReminder,
    /// The program starts soon.
    StartReminder,
    /// The booking expired unconfirmed.
    Expired,
    /// The booking was cancelled; `charged` is the fee still billed, if any.
    Cancelled {
        /// The amount still charged (`None`: nothing).
        charged: Option<Money>,
    },
    /// The slots after the program are free: it can be extended.
    ExtensionOffer {
        /// How many slots could be added at most.
        max_extra_slots: u32,
    },
    /// The program is over: its statistics, and the seconds of its window lost to an
    /// operator-side outage (any: the fee is waived).
    Summary {
        /// What the nodes measured.
        stats: ProgramStats,
        /// Lost on the operator's side.
        seconds_lost: u64,
    },
}

/// An e-mail to the broadcaster about their reservation.
pub fn broadcaster_message(ctx: &MailContext<'_>, kind: BroadcasterMail) -> NewMessage {
    let r = ctx.reservation;
    let s = &r.schedule;
    let id = ctx.id();
    let title = ctx.title();
    let mut d = Doc::new();
    let greeting = format!("Hello {},", ctx.broadcaster.display_name);
    let summary_rows = [
        ("Program", Some(title.to_owned())),
        ("Reservation", Some(format!("#{id}"))),
        ("Channel", Some(ctx.channel.name.clone())),
        ("Time", Some(ctx.when())),
    ];
    let (subject, key) = match kind {
        BroadcasterMail::ConfirmReminder => {
            let confirm_by = ctx.instant(s.confirm_by);
            d.para(&greeting);
            d.para(&format!(
                "your booking \"{title}\" is not confirmed yet. Confirm before {confirm_by} or the booking expires and its slots are freed."
            ));
            d.rows(&summary_rows);
            d.para("Confirm with the reservation key from the e-mail you got at booking:");
            d.code(&format!(
                "slotcast confirm {id}\nPOST {}/api/v1/reservations/{id}/confirm",
                ctx.base_url()
            ));
            (
                format!("Confirm before {confirm_by}: {title}"),
                "confirm-reminder".to_owned(),
            )
        }
        BroadcasterMail::StartReminder => {
            d.para(&greeting);
            d.para(&format!(
                "\"{title}\" starts at {}. You can connect from {}; viewers see the program from the start until {}, and the connection is closed at {}.",
                ctx.instant(s.start),
                ctx.instant(s.connect_from),
                ctx.instant(s.end),
                ctx.instant(s.connect_to)
            ));
            d.rows(&summary_rows);
            d.link("Program page:", &ctx.watch_url());
            (
                format!("Starting soon: {title} at {}", ctx.instant(s.start)),
                "start-reminder".to_owned(),
            )
        }
        BroadcasterMail::Expired => {
            d.para(&greeting);
            d.para(&format!(
                "your booking \"{title}\" was not confirmed before {} and has expired. Its slots are free again and nothing is charged.",
                ctx.instant(s.confirm_by)
            ));
            d.rows(&summary_rows);
            d.para("You can book again if the slots are still free.");
            (
                format!("Booking expired (not confirmed): {title}"),
                "expired".to_owned(),
            )
        }
        BroadcasterMail::Cancelled { charged } => {
            d.para(&greeting);
            d.para(&format!(
                "your booking \"{title}\" is cancelled and its slots are free again."
            ));
            d.rows(&summary_rows);
            match charged {
                Some(m) => d.para(&format!(
                    "The booking had been confirmed, so {m} is still charged."
                )),
                None => d.para("Nothing is charged."),
            }
            if !r.invitees.is_empty() {
                d.para("Invitees who were told about the program are told it is cancelled.");
            }
            (
                format!("Booking cancelled: {title}"),
                "cancelled".to_owned(),
            )
        }
        BroadcasterMail::ExtensionOffer { max_extra_slots } => {
            let slot = ctx.slot_minutes();
            let latest = s.end
                + slotcast_domain::jiff::SignedDuration::from_mins(
                    slot * i64::from(max_extra_slots),
                );
            d.para(&greeting);
            d.para(&format!(
                "\"{title}\" ends at {}. The slots after it are free: you can extend the program by up to {max_extra_slots} slot(s) of {slot} minutes, until {} at the latest, at {} per slot.",
                ctx.instant(s.end),
                ctx.instant(latest),
                ctx.channel.tariff
            ));
            d.rows(&summary_rows);
            d.para(
                "Accept the offer in the slotcast agent, or ask the API with the number of slots:",
            );
            d.code(&format!(
                "POST {}/api/v1/reservations/{id}/extend",
                ctx.base_url()
            ));
            d.para("The offer holds only while the slots stay free.");
            (
                format!("Extend {title}? The next slots are free"),
                format!("extension-offer/{}", s.end.as_millisecond()),
            )
        }
        BroadcasterMail::Summary {
            stats: st,
            seconds_lost,
        } => {
            d.para(&greeting);
            d.para(&format!("\"{title}\" is over. Here is how it went:"));
            let fee = if seconds_lost > 0 {
                format!("{} waived", r.fee)
            } else {
                r.fee.to_string()
            };
            d.rows(&[
                ("Program", Some(title.to_owned())),
                ("Reservation", Some(format!("#{id}"))),
                ("Channel", Some(ctx.channel.name.clone())),
                ("Time", Some(ctx.when())),
                ("On air", Some(duration_text(st.seconds_on_air))),
                (
                    "Peak viewers",
                    Some(format!(
                        "{} (capacity {})",
                        st.peak_viewers, ctx.channel.capacity
                    )),
                ),
                ("Viewers", Some(st.unique_viewers.to_string())),
                ("Viewer-minutes", Some(st.viewer_minutes.to_string())),
                ("Data sent", Some(bytes_text(st.bytes_out))),
                ("Fee", Some(fee)),
            ]);
            if seconds_lost > 0 {
                d.para(&format!(
                    "The stream node serving your channel failed during the program: {} of your \
                     window were lost on our side. This program is not charged.",
                    duration_text(seconds_lost)
                ));
            }
            d.link("Program page and replay:", &ctx.watch_url());
            (format!("Program summary: {title}"), "summary".to_owned())
        }
    };
    ctx.message(&ctx.broadcaster.email, format!("r{id}/{key}"), subject, d)
}

/// `3725` → `1 h 02 min 05 s`.
fn duration_text(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m:02} min {s:02} s")
    } else {
        format!("{m} min {s:02} s")
    }
}

/// Bytes in decimal units, e.g. `1.5 GB`.
fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// How a field name of a change reads in the e-mail.
fn field_label(name: &str) -> &str {
    match name {
        "title" => "title",
        "genre" => "genre",
        "outline" => "outline",
        "detail" => "detail",
        "time" | "schedule" | "start" | "end" => "time",
        "password" | "viewer_password" => "viewer password",
        "visibility" => "visibility",
        "show_email" => "broadcaster's e-mail shown",
        "web_url" => "web link",
        "invitees" => "invitees",
        other => other,
    }
}

/// The e-mails to the invitees: one message per invitee, to the invitees only.
///
/// `changed` names the fields a [`InviteeNotice::Change`] is about (`title`, `time`, …);
/// it is ignored for the other notices.
pub fn invitee_messages(
    ctx: &MailContext<'_>,
    notice: InviteeNotice,
    changed: &[&str],
) -> Vec<NewMessage> {
    let r = ctx.reservation;
    let id = ctx.id();
    let title = ctx.title();
    let host = &ctx.broadcaster;
    let host_text = if r.program.show_email {
        format!("{} <{}>", host.display_name, host.email)
    } else {
        host.display_name.clone()
    };
    let password = ctx.password_for_invitees();
    let details = [
        ("Program", Some(title.to_owned())),
        ("Genre", r.program.genre.clone()),
        ("Time", Some(ctx.when())),
        ("Channel", Some(ctx.channel.name.clone())),
        ("Broadcaster", Some(host_text.clone())),
        ("Outline", r.program.outline.clone()),
        ("Viewer password", password.map(str::to_owned)),
    ];
    let access = match r.visibility {
        slotcast_domain::Visibility::Public => {
            "Anyone may watch while the channel has room.".to_owned()
        }
        slotcast_domain::Visibility::Password => {
            "Watching needs the viewer password above.".to_owned()
        }
        slotcast_domain::Visibility::Secret => {
            "This program is private: it is not listed anywhere and watching needs the viewer password above. Please do not pass the link or the password on.".to_owned()
        }
    };

    let (kind, subject, method) = match notice {
        InviteeNotice::Invitation => (
            "invitation".to_owned(),
            format!("Invitation: {title} ({})", ctx.when()),
            IcsMethod::Request,
        ),
        InviteeNotice::Change => (
            format!("change/{}", ctx.sequence),
            format!("Changed: {title} ({})", ctx.when()),
            IcsMethod::Request,
        ),
        InviteeNotice::Cancellation => (
            "cancellation".to_owned(),
            format!("Cancelled: {title} ({})", ctx.when()),
            IcsMethod::Cancel,
        ),
    };
    let subject = one_line(&subject);
    let calendar = ics(ctx, method);

    let mut d = Doc::new();
    match notice {
        InviteeNotice::Invitation => {
            d.para(&format!(
                "{} invites you to watch a live program on slotcast.",
                host.display_name
            ));
            d.rows(&details);
            d.link("Watch it here:", &ctx.watch_url());
            d.para(&access);
            d.para("The attached invite.ics adds the program to your calendar.");
        }
        InviteeNotice::Change => {
            let mut labels: Vec<&str> = Vec::new();
            for c in changed {
                let l = field_label(c);
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
            let what = if labels.is_empty() {
                "some details".to_owned()
            } else {
                labels.join(", ")
            };
            d.para(&format!(
                "{} changed the program \"{title}\" you are invited to. What changed: {what}.",
                host.display_name
            ));
            d.para("The program as it is now:");
            d.rows(&details);
            d.link("Watch it here:", &ctx.watch_url());
            d.para(&access);
            d.para("The attached invite.ics updates the program in your calendar.");
        }
        InviteeNotice::Cancellation => {
            d.para(&format!(
                "The program \"{title}\" by {}, planned for {} on channel {}, is cancelled and will not take place.",
                host.display_name,
                ctx.when(),
                ctx.channel.name
            ));
            d.para("The attached invite.ics removes it from your calendar.");
        }
    }
    let (text, html) = d.finish(&subject);

    r.invitees
        .iter()
        .map(|to| NewMessage {
            dedupe_key: format!("r{id}/{kind}/{to}"),
            to: to.clone(),
            subject: subject.clone(),
            text: text.clone(),
            html: Some(html.clone()),
            ics: Some(calendar.clone()),
            reservation: Some(r.id),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {

    /// The summary of a program that went normally.
    fn summary() -> BroadcasterMail {
        BroadcasterMail::Summary {
            stats: ProgramStats {
                peak_viewers: 37,
                unique_viewers: 52,
                viewer_minutes: 2140,
                bytes_out: 1_500_000_000,
                seconds_on_air: 5400,
                curve: Default::default(),
            },
            seconds_lost: 0,
        }
    }
    use super::*;
    use slotcast_domain::request::ProgramInfo;
    use slotcast_domain::{
        ChannelId, Currency, KeyHash, MemberId, ReservationId, Schedule, Status, Visibility,
    };
    use slotcast_store::{Role, Tier};

    pub(crate) fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    pub(crate) struct Fixture {
        pub reservation: Reservation,
        pub channel: Channel,
        pub broadcaster: Member,
        pub tz: TimeZone,
    }

    impl Fixture {
        pub(crate) fn new(visibility: Visibility) -> Self {
            let start = ts("2026-06-10T12:00:00Z");
            let end = ts("2026-06-10T13:30:00Z");
            let schedule = Schedule {
                start,
                end,
                confirm_by: ts("2026-06-10T06:00:00Z"),
                confirm_reminder_at: Some(ts("2026-06-10T05:00:00Z")),
                connect_from: ts("2026-06-10T11:55:00Z"),
                connect_to: ts("2026-06-10T13:33:00Z"),
                start_reminder_at: ts("2026-06-10T11:50:00Z"),
                extension_offer_at: ts("2026-06-10T13:20:00Z"),
            };
            let jpy = Currency::parse("JPY").unwrap();
            Self {
                reservation: Reservation {
                    id: ReservationId(42),
                    member: MemberId(7),
                    channel: ChannelId(2),
                    slots: 9,
                    status: Status::Confirmed,
                    schedule,
                    visibility,
                    program: ProgramInfo {
                        title: "Night <script>alert(1)</script> & Jazz".into(),
                        genre: Some("music".into()),
                        outline: Some("Live, from the cellar; bring \"ears\"\nsecond line".into()),
                        detail: None,
                        show_email: false,
                        web_url: None,
                    },
                    viewer_password: Some("sealed-blob".into()),
                    invitees: vec![email("ann@example.org"), email("bob@example.net")],
                    key_hash: KeyHash([0; 32]),
                    slug: "p9f3kq2x7".into(),
                    fee: Money::new(2700, jpy),
                    invited_at_acceptance: false,
                    key_failures: 0,
                    key_locked_until: None,
                    created_at: ts("2026-06-01T00:00:00Z"),
                    updated_at: ts("2026-06-02T08:30:00Z"),
                },
                channel: Channel {
                    id: ChannelId(2),
                    name: "medium".into(),
                    capacity: 100,
                    bitrate_kbps: 2500,
                    tariff: Money::new(300, jpy),
                    stream_node: "local".into(),
                },
                broadcaster: Member {
                    id: MemberId(7),
                    email: email("caster@example.org"),
                    password_hash: "$argon2id$x".into(),
                    display_name: "Cas <b>Ter</b>".into(),
                    tier: Tier::Premium,
                    role: Role::Member,
                    payment: None,
                    show_email: false,
                    created_at: ts("2026-01-01T00:00:00Z"),
                },
                tz: TimeZone::get("Europe/Berlin").unwrap(),
            }
        }

        pub(crate) fn ctx(&self, password: Option<&'static str>, sequence: u32) -> MailContext<'_> {
            MailContext {
                public_url: "http://watch.example.org:8080/",
                ingest: "rtmp://watch.example.org:1935/live",
                time_zone: &self.tz,
                reservation: &self.reservation,
                channel: &self.channel,
                broadcaster: &self.broadcaster,
                viewer_password: password,
                sequence,
            }
        }
    }

    const PW: &str = "tulip-4711";

    fn all_text(m: &NewMessage) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            m.subject,
            m.text,
            m.html.as_deref().unwrap_or(""),
            m.ics.as_deref().unwrap_or("")
        )
    }

    #[test]
    fn html_escape_neutralises_markup() {
        assert_eq!(
            html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(html_escape("plain äö"), "plain äö");
    }

    #[test]
    fn times_show_zone_abbreviation_and_name() {
        let f = Fixture::new(Visibility::Public);
        let ctx = f.ctx(None, 0);
        assert_eq!(
            ctx.instant(ts("2026-06-10T12:00:00Z")),
            "2026-06-10 14:00 CEST (Europe/Berlin)"
        );
        assert_eq!(ctx.when(), "2026-06-10 14:00 – 15:30 CEST (Europe/Berlin)");
        let utc = TimeZone::UTC;
        let ctx = MailContext {
            time_zone: &utc,
            ..ctx
        };
        assert_eq!(
            ctx.instant(ts("2026-06-10T12:00:00Z")),
            "2026-06-10 12:00 UTC"
        );
    }

    #[test]
    fn key_message_has_key_deadline_and_how_to_confirm() {
        let f = Fixture::new(Visibility::Password);
        let ctx = f.ctx(Some(PW), 0);
        let key = ReservationKey::from_entropy([9; slotcast_domain::key::KEY_BYTES]);
        let m = key_message(&ctx, &key);
        assert_eq!(m.to, f.broadcaster.email);
        assert_eq!(m.dedupe_key, "r42/key");
        assert_eq!(m.reservation, Some(ReservationId(42)));
        assert!(m.ics.is_none());
        let html = m.html.as_deref().unwrap();
        for body in [m.text.as_str(), html] {
            assert!(body.contains(key.expose()));
            assert!(body.contains(
                "Confirm before 2026-06-10 08:00 CEST (Europe/Berlin) or the booking expires"
            ));
            assert!(
                body.contains("POST http://watch.example.org:8080/api/v1/reservations/42/confirm")
            );
            assert!(body.contains("slotcast confirm 42"));
            assert!(body.contains(&format!(
                "rtmp://watch.example.org:1935/live/{}",
                key.expose()
            )));
            assert!(body.contains("2700 JPY"));
            assert!(body.contains("medium"));
        }
        assert!(
            !all_text(&m).contains(PW),
            "no viewer password to the broadcaster"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("Night &lt;script&gt;alert(1)&lt;/script&gt; &amp; Jazz"));
        assert!(html.contains("Cas &lt;b&gt;Ter&lt;/b&gt;"));
    }

    #[test]
    fn broadcaster_messages_have_their_keys_and_subjects() {
        let f = Fixture::new(Visibility::Secret);
        let ctx = f.ctx(Some(PW), 0);
        let jpy = Currency::parse("JPY").unwrap();
        let cases = [
            (
                BroadcasterMail::ConfirmReminder,
                "r42/confirm-reminder",
                "Confirm before",
            ),
            (
                BroadcasterMail::StartReminder,
                "r42/start-reminder",
                "Starting soon",
            ),
            (BroadcasterMail::Expired, "r42/expired", "Booking expired"),
            (
                BroadcasterMail::Cancelled {
                    charged: Some(Money::new(2700, jpy)),
                },
                "r42/cancelled",
                "Booking cancelled",
            ),
            (
                BroadcasterMail::ExtensionOffer { max_extra_slots: 2 },
                "r42/extension-offer/1781098200000",
                "Extend",
            ),
            (summary(), "r42/summary", "Program summary"),
        ];
        for (kind, key, subject) in cases {
            let m = broadcaster_message(&ctx, kind.clone());
            assert_eq!(m.dedupe_key, key);
            assert!(m.subject.starts_with(subject), "{}", m.subject);
            assert_eq!(m.to, f.broadcaster.email);
            assert!(m.ics.is_none());
            assert!(!m.text.is_empty());
            let html = m.html.as_deref().unwrap();
            assert!(!html.contains("<script>"), "{kind:?}");
            assert!(!all_text(&m).contains(PW), "{kind:?}");
        }
        let m = broadcaster_message(
            &ctx,
            BroadcasterMail::Cancelled {
                charged: Some(Money::new(2700, jpy)),
            },
        );
        assert!(m.text.contains("2700 JPY is still charged"));
        let m = broadcaster_message(&ctx, BroadcasterMail::Cancelled { charged: None });
        assert!(m.text.contains("Nothing is charged"));
        let m = broadcaster_message(&ctx, BroadcasterMail::ExtensionOffer { max_extra_slots: 2 });
        assert!(
            m.text.contains("up to 2 slot(s) of 10 minutes"),
            "{}",
            m.text
        );
        assert!(m.text.contains("until 2026-06-10 15:50 CEST"), "{}", m.text);
        let m = broadcaster_message(&ctx, summary());
        for s in [
            "37 (capacity 100)",
            "52",
            "2140",
            "1.5 GB",
            "1 h 30 min 00 s",
        ] {
            assert!(m.text.contains(s), "{s} in {}", m.text);
        }
        assert!(!m.text.contains("waived"), "{}", m.text);
        let m = broadcaster_message(
            &ctx,
            BroadcasterMail::Summary {
                stats: ProgramStats::default(),
                seconds_lost: 75,
            },
        );
        for s in ["waived", "1 min 15 s of your window were lost on our side"] {
            assert!(m.text.contains(s), "{s} in {}", m.text);
        }
        let m = broadcaster_message(&ctx, BroadcasterMail::ConfirmReminder);
        assert!(m.subject.contains("2026-06-10 08:00 CEST"));
    }

    #[test]
    fn invitation_for_protected_programs_has_password_in_body_not_in_ics() {
        for vis in [Visibility::Password, Visibility::Secret] {
            let f = Fixture::new(vis);
            let ctx = f.ctx(Some(PW), 0);
            let msgs = invitee_messages(&ctx, InviteeNotice::Invitation, &[]);
            assert_eq!(msgs.len(), 2);
            for m in &msgs {
                assert!(
                    m.text.contains(&format!("Viewer password: {PW}")),
                    "{}",
                    m.text
                );
                assert!(m.html.as_deref().unwrap().contains(PW));
                let cal = m.ics.as_deref().unwrap();
                assert!(!cal.contains(PW), "password leaked into the .ics");
                assert!(!cal.contains("tulip"));
                assert!(cal.contains("METHOD:REQUEST\r\n"));
                assert!(cal.contains("SEQUENCE:0\r\n"));
                assert!(cal.contains("UID:p9f3kq2x7@watch.example.org\r\n"));
                assert!(!m.subject.contains(PW));
                assert!(
                    m.text
                        .contains("http://watch.example.org:8080/programs/p9f3kq2x7")
                );
                assert!(
                    m.text
                        .contains("2026-06-10 14:00 – 15:30 CEST (Europe/Berlin)")
                );
                assert!(m.text.contains("Live, from the cellar"));
                assert!(!m.html.as_deref().unwrap().contains("<script>"));
            }
            assert_eq!(msgs[0].dedupe_key, "r42/invitation/ann@example.org");
            assert_eq!(msgs[1].dedupe_key, "r42/invitation/bob@example.net");
        }
    }

    #[test]
    fn public_program_invitation_has_no_password() {
        let f = Fixture::new(Visibility::Public);
        let ctx = f.ctx(Some(PW), 0);
        for m in invitee_messages(&ctx, InviteeNotice::Invitation, &[]) {
            assert!(!all_text(&m).contains(PW));
            assert!(!m.text.contains("Viewer password"));
        }
    }

    #[test]
    fn secret_program_mails_go_only_to_its_invitees() {
        let f = Fixture::new(Visibility::Secret);
        let ctx = f.ctx(Some(PW), 3);
        let invitees: Vec<&str> = f.reservation.invitees.iter().map(|e| e.as_str()).collect();
        for notice in [
            InviteeNotice::Invitation,
            InviteeNotice::Change,
            InviteeNotice::Cancellation,
        ] {
            let msgs = invitee_messages(&ctx, notice, &["title"]);
            let to: Vec<&str> = msgs.iter().map(|m| m.to.as_str()).collect();
            assert_eq!(to, invitees, "{notice:?}");
            for m in &msgs {
                let all = all_text(m);
                // No invitee learns of another; the broadcaster's address is in the body
                // only when they chose so (the .ics names them as ORGANIZER).
                for other in invitees.iter().filter(|a| **a != m.to.as_str()) {
                    assert!(!all.contains(other), "{other} leaked to {}", m.to);
                }
                assert!(!m.text.contains("caster@example.org"));
                assert!(!m.html.as_deref().unwrap().contains("caster@example.org"));
                assert!(m.dedupe_key.ends_with(m.to.as_str()));
            }
        }
        let mut none = Fixture::new(Visibility::Secret);
        none.reservation.invitees.clear();
        let ctx = none.ctx(Some(PW), 0);
        assert!(invitee_messages(&ctx, InviteeNotice::Invitation, &[]).is_empty());
    }

    #[test]
    fn broadcaster_address_shown_only_when_disclosed() {
        let mut f = Fixture::new(Visibility::Public);
        f.reservation.program.show_email = true;
        let ctx = f.ctx(None, 0);
        let m = &invitee_messages(&ctx, InviteeNotice::Invitation, &[])[0];
        assert!(m.text.contains("caster@example.org"));
        assert!(
            m.html
                .as_deref()
                .unwrap()
                .contains("&lt;caster@example.org&gt;")
        );
    }

    #[test]
    fn change_lists_what_changed_once_per_invitee() {
        let f = Fixture::new(Visibility::Password);
        let ctx = f.ctx(Some(PW), 2);
        let msgs = invitee_messages(
            &ctx,
            InviteeNotice::Change,
            &["title", "time", "viewer_password", "title"],
        );
        assert_eq!(msgs.len(), 2);
        for m in &msgs {
            assert!(
                m.text
                    .contains("What changed: title, time, viewer password."),
                "{}",
                m.text
            );
            assert!(m.text.contains(&format!("Viewer password: {PW}")));
            let cal = m.ics.as_deref().unwrap();
            assert!(cal.contains("METHOD:REQUEST\r\n"));
            assert!(cal.contains("SEQUENCE:2\r\n"));
            assert!(!cal.contains(PW));
        }
        assert_eq!(msgs[0].dedupe_key, "r42/change/2/ann@example.org");
        assert!(msgs[0].subject.starts_with("Changed: "));
    }

    #[test]
    fn cancellation_has_method_cancel() {
        let f = Fixture::new(Visibility::Secret);
        let ctx = f.ctx(Some(PW), 4);
        let msgs = invitee_messages(&ctx, InviteeNotice::Cancellation, &[]);
        assert_eq!(msgs.len(), 2);
        for m in &msgs {
            let cal = m.ics.as_deref().unwrap();
            assert!(cal.contains("METHOD:CANCEL\r\n"));
            assert!(cal.contains("STATUS:CANCELLED\r\n"));
            assert!(cal.contains("SEQUENCE:4\r\n"));
            assert!(cal.contains("UID:p9f3kq2x7@watch.example.org\r\n"));
            assert!(!all_text(m).contains(PW), "no password needed to not watch");
            assert!(m.subject.starts_with("Cancelled: "));
            assert!(m.text.contains("will not take place"));
        }
        assert_eq!(msgs[1].dedupe_key, "r42/cancellation/bob@example.net");
    }

    #[test]
    fn every_message_has_text_and_html() {
        let f = Fixture::new(Visibility::Password);
        let ctx = f.ctx(Some(PW), 1);
        let key = ReservationKey::from_entropy([1; slotcast_domain::key::KEY_BYTES]);
        let mut all = vec![key_message(&ctx, &key)];
        for k in [
            BroadcasterMail::ConfirmReminder,
            BroadcasterMail::StartReminder,
            BroadcasterMail::Expired,
            BroadcasterMail::Cancelled { charged: None },
            BroadcasterMail::ExtensionOffer { max_extra_slots: 1 },
            BroadcasterMail::Summary {
                stats: ProgramStats::default(),
                seconds_lost: 0,
            },
        ] {
            all.push(broadcaster_message(&ctx, k));
        }
        for n in [
            InviteeNotice::Invitation,
            InviteeNotice::Change,
            InviteeNotice::Cancellation,
        ] {
            all.extend(invitee_messages(&ctx, n, &["outline"]));
        }
        let mut keys: Vec<&str> = all.iter().map(|m| m.dedupe_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all.len(), "dedupe keys are distinct");
        for m in &all {
            assert!(!m.text.trim().is_empty());
            let html = m.html.as_deref().unwrap();
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(!html.contains("<script>"), "{}", m.dedupe_key);
            assert!(!html.contains("<b>Ter"), "{}", m.dedupe_key);
            assert!(!m.subject.contains('\n'));
        }
    }

    #[test]
    fn small_formatters() {
        assert_eq!(duration_text(3725), "1 h 02 min 05 s");
        assert_eq!(duration_text(65), "1 min 05 s");
        assert_eq!(bytes_text(999), "999 B");
        assert_eq!(bytes_text(1_500), "1.5 kB");
        assert_eq!(bytes_text(2_000_000), "2.0 MB");
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
    }
}
