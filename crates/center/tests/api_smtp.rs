//! The REST API end to end through a real SMTP server: bookings, confirmations, changes
//! and cancellations made over HTTP queue e-mail in the store (SQLite or PostgreSQL), a
//! `Sender` delivers the outbox over SMTP to an in-process server on loopback, and the
//! tests read back what that server received.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use common::smtp::{
    Inbox, Mail, Received, smtp_to, start_smtp, start_smtp_on_loopback, unused_port,
};
use common::{App, Backend, open};
use serde_json::{Value, json};
use slotcast_center::mail::{self, Sender};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Policy};
use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::sync::Arc;

on_both!(
    broadcaster_gets_the_key_by_smtp_and_it_confirms_the_booking,
    password_invitees_get_one_invitation_each_with_url_and_password_but_no_password_in_the_ics,
    secret_program_mail_reaches_only_its_invitees_and_broadcaster,
    title_change_after_confirmation_mails_each_invitee_once,
    cancellation_mails_each_invitee_an_ics_with_method_cancel,
    mail_queued_while_smtp_is_down_is_delivered_exactly_once_after_the_retry_delay,
);

const NOW: &str = "2026-06-01T08:00:00Z";
const HOST: &str = "host@example.org";
const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.net";
const PASSWORD: &str = "let-me-in";
const ENVELOPE_FROM: &str = "noreply@tv.example.org";

/// A `password` program with [`ANN`] and [`BOB`] invited.
fn password_program() -> Value {
    json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 2, "visibility": "password",
        "title": "Jazz night", "outline": "Live from the cellar", "viewer_password": PASSWORD,
        "invitees": [ANN, BOB]})
}

/// The center, with its outbox delivered over SMTP to a server on loopback.
struct World {
    app: App,
    sender: Sender,
    inbox: Inbox,
}

impl World {
    async fn open(b: Backend) -> Option<Self> {
        let app = open(b, NOW, Policy::default()).await?;
        let (port, inbox) = start_smtp_on_loopback();
        let sender = sender_to(&app, port);
        Some(Self { app, sender, inbox })
    }

    /// One round of the sender; how many e-mails it delivered.
    async fn deliver(&self) -> usize {
        self.sender.run_once().await.expect("outbox readable")
    }

    /// Everything the SMTP server received so far, in order.
    fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// The e-mails whose only envelope recipient is `addr`.
    fn mails_to(&self, addr: &str) -> Vec<Mail> {
        mails_to(&self.received(), addr)
    }

    /// Books over the API; returns the reservation id and slug.
    async fn book(&self, token: &str, body: Value) -> (i64, String) {
        let r = self.app.book(token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["id"].as_i64().unwrap(),
            r.body["slug"].as_str().unwrap().to_owned(),
        )
    }

    /// Confirms over the API with `key`.
    async fn confirm(&self, token: &str, id: i64, key: &str) {
        let c = self
            .app
            .post(
                &format!("/api/v1/reservations/{id}/confirm"),
                Some(token),
                json!({"reservation_key": key}),
            )
            .await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
        assert_eq!(c.body["status"], "confirmed");
    }

    /// Delivers the acceptance e-mail and confirms with the key it carries.
    async fn deliver_key_and_confirm(&self, token: &str, broadcaster: &str, id: i64) {
        assert_eq!(self.deliver().await, 1, "only the key e-mail at acceptance");
        let key = mailed_key(&self.received(), broadcaster, id);
        self.confirm(token, id, &key).await;
    }
}

fn sender_to(app: &App, port: u16) -> Sender {
    Sender::new(
        app.store.clone(),
        app.clock.clone() as Arc<dyn Clock>,
        smtp_to(port),
        &app.center.settings.mail_from,
    )
    .expect("sender")
}

fn mails_to(received: &[Received], addr: &str) -> Vec<Mail> {
    received
        .iter()
        .filter(|r| r.to == [addr])
        .map(Received::mail)
        .collect()
}

/// The reservation key of reservation `id`, from the acceptance e-mail `broadcaster`
/// received over SMTP.
fn mailed_key(received: &[Received], broadcaster: &str, id: i64) -> String {
    let confirm_path = format!("/api/v1/reservations/{id}/confirm");
    let keys: Vec<Mail> = mails_to(received, broadcaster)
        .into_iter()
        .filter(|m| {
            m.header("Subject").starts_with("Your reservation key:")
                && m.plain().contains(&confirm_path)
        })
        .collect();
    assert_eq!(keys.len(), 1, "one key e-mail for r{id}");
    key_in(&keys[0].plain())
}

/// The reservation key in a text: the one 32-character base32 word.
fn key_in(text: &str) -> String {
    let keys: BTreeSet<&str> = text
        .split_whitespace()
        .filter(|w| {
            w.len() == 32
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        })
        .collect();
    assert_eq!(keys.len(), 1, "one key in {text}");
    keys.into_iter().next().unwrap().to_owned()
}

/// The `invite.ics` attachment of an invitee e-mail: checks it is one, returns its text.
fn invite_ics(mail: &Mail, method: &str) -> String {
    let cal = mail.part("text/calendar").expect("a calendar part");
    let ct = cal.header("Content-Type").unwrap().to_ascii_lowercase();
    assert!(
        ct.contains(&format!("method={}", method.to_ascii_lowercase())),
        "{ct}"
    );
    let disposition = cal.header("Content-Disposition").unwrap_or_default();
    assert!(
        disposition.contains("attachment") && disposition.contains("invite.ics"),
        "{disposition}"
    );
    let ics = cal.text();
    assert!(ics.contains(&format!("METHOD:{method}\r\n")), "{ics}");
    ics
}

/// The value of an iCalendar property (`UID`, `SEQUENCE`, …) of the event.
fn ics_property(ics: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    ics.split("\r\n")
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {ics}"))
        .to_owned()
}

async fn broadcaster_gets_the_key_by_smtp_and_it_confirms_the_booking(b: Backend) {
    let Some(w) = World::open(b).await else {
        return;
    };
    let (tok, _) = w.app.member(HOST, true).await;
    let (id, _) = w.book(&tok, password_program()).await;

    assert_eq!(
        w.deliver().await,
        1,
        "the key e-mail, and nothing to invitees yet"
    );
    let received = w.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.from, ENVELOPE_FROM);
    assert_eq!(r.to, [HOST]);
    let mail = r.mail();
    assert_eq!(mail.header("To"), HOST);
    assert_eq!(mail.header("From"), w.app.center.settings.mail_from);
    assert!(
        mail.header("Subject")
            .starts_with("Your reservation key: Jazz night")
    );
    let key = key_in(&mail.plain());
    assert!(mail.html().contains(&key));
    assert!(
        mail.part("text/calendar").is_none(),
        "no calendar for the key"
    );
    assert!(
        !String::from_utf8_lossy(&r.data).contains(PASSWORD),
        "no viewer password to the broadcaster"
    );

    // A wrong key is refused; the mailed one confirms.
    let wrong = w
        .app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": "a".repeat(32)}),
        )
        .await;
    assert_ne!(wrong.status, StatusCode::OK, "{}", wrong.text);
    w.confirm(&tok, id, &key).await;
    let shown = w
        .app
        .get(&format!("/api/v1/reservations/{id}"), Some(&tok))
        .await;
    assert_eq!(shown.body["status"], "confirmed", "{}", shown.text);
    assert_eq!(
        w.mails_to(HOST).len(),
        1,
        "confirming sends the broadcaster nothing"
    );
}

async fn password_invitees_get_one_invitation_each_with_url_and_password_but_no_password_in_the_ics(
    b: Backend,
) {
    let Some(w) = World::open(b).await else {
        return;
    };
    let (tok, _) = w.app.member(HOST, true).await;
    let (id, slug) = w.book(&tok, password_program()).await;
    w.deliver_key_and_confirm(&tok, HOST, id).await;

    assert_eq!(w.deliver().await, 2, "one invitation per invitee");
    assert_eq!(w.deliver().await, 0);
    let watch_url = format!("http://tv.example.org/programs/{slug}");
    for invitee in [ANN, BOB] {
        let mails = w.mails_to(invitee);
        assert_eq!(mails.len(), 1, "{invitee} gets exactly one e-mail");
        let mail = &mails[0];
        assert_eq!(mail.header("To"), invitee);
        assert!(
            mail.header("Subject").starts_with("Invitation: Jazz night"),
            "{}",
            mail.header("Subject")
        );
        let text = mail.plain();
        assert!(text.contains(&watch_url), "watch URL in {text}");
        assert!(
            text.contains(&format!("Viewer password: {PASSWORD}")),
            "password in {text}"
        );
        let html = mail.html();
        assert!(
            html.contains(&watch_url) && html.contains(PASSWORD),
            "{html}"
        );
        let other = if invitee == ANN { BOB } else { ANN };
        assert!(!text.contains(other), "no invitee learns another's address");
        let ics = invite_ics(mail, "REQUEST");
        assert!(
            !ics.contains(PASSWORD),
            "never the password in the .ics: {ics}"
        );
        assert_eq!(ics_property(&ics, "UID"), format!("{slug}@tv.example.org"));
        assert_eq!(ics_property(&ics, "SEQUENCE"), "0");
    }
    let received = w.received();
    assert_eq!(
        received.len(),
        3,
        "key e-mail and two invitations, nothing else"
    );
    assert!(
        received.iter().all(|r| r.to.len() == 1),
        "one recipient per e-mail"
    );
}

async fn secret_program_mail_reaches_only_its_invitees_and_broadcaster(b: Backend) {
    let Some(w) = World::open(b).await else {
        return;
    };
    let (tok, _) = w.app.member(HOST, true).await;
    // Other members exist, but have nothing to do with the program.
    w.app.member("bystander@example.org", true).await;
    let secret_password = "hush-hush-42";
    let (id, slug) = w
        .book(
            &tok,
            json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 1, "visibility": "secret",
                "title": "Hidden gem", "viewer_password": secret_password,
                "invitees": ["i1@example.org", "i2@example.org"]}),
        )
        .await;
    w.deliver_key_and_confirm(&tok, HOST, id).await;
    assert_eq!(w.deliver().await, 2, "the invitations");

    // A change that drops i2 and adds i3, then the cancellation.
    let p = format!("/api/v1/reservations/{id}");
    let ch = w
        .app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"title": "Hidden treasure", "invitees": ["i1@example.org", "i3@example.org"]})),
        )
        .await;
    assert_eq!(ch.status, StatusCode::OK, "{}", ch.text);
    assert_eq!(
        w.deliver().await,
        3,
        "change to i1 and i3, cancellation to i2"
    );
    let c = w.app.call(Method::DELETE, &p, Some(&tok), None).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(w.deliver().await, 3, "broadcaster, i1 and i3");
    assert_eq!(w.deliver().await, 0);

    let received = w.received();
    let mut recipients = BTreeSet::new();
    for r in &received {
        assert_eq!(r.to.len(), 1, "one recipient per e-mail");
        let mail = r.mail();
        assert_eq!(mail.header("To"), r.to[0], "header and envelope agree");
        assert!(mail.header("Cc").is_empty() && mail.header("Bcc").is_empty());
        recipients.extend(r.to.iter().cloned());
        recipients.insert(mail.header("To"));
    }
    assert_eq!(
        recipients,
        BTreeSet::from(
            [HOST, "i1@example.org", "i2@example.org", "i3@example.org"].map(String::from)
        ),
        "nobody but the invitees and the broadcaster hears of a secret program"
    );

    // What each one got.
    let subjects = |addr: &str| -> Vec<String> {
        mails_to(&received, addr)
            .iter()
            .map(|m| m.header("Subject"))
            .collect()
    };
    let starts = |addr: &str| -> Vec<String> {
        subjects(addr)
            .iter()
            .map(|s| s.split(':').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        starts(HOST),
        ["Your reservation key", "Booking cancelled"],
        "{:?}",
        subjects(HOST)
    );
    assert_eq!(
        starts("i1@example.org"),
        ["Invitation", "Changed", "Cancelled"]
    );
    assert_eq!(starts("i2@example.org"), ["Invitation", "Cancelled"]);
    // i3 was added by the change: a newcomer is invited, not told of a change.
    assert_eq!(starts("i3@example.org"), ["Invitation", "Cancelled"]);

    // The password only ever in invitee bodies, never to the broadcaster or in a calendar.
    for r in &received {
        let mail = r.mail();
        if r.to == [HOST] {
            assert!(!String::from_utf8_lossy(&r.data).contains(secret_password));
        }
        if let Some(cal) = mail.part("text/calendar") {
            let ics = cal.text();
            assert!(!ics.contains(secret_password), "{ics}");
            assert_eq!(ics_property(&ics, "UID"), format!("{slug}@tv.example.org"));
        }
    }
    let invitation = &mails_to(&received, "i1@example.org")[0];
    assert!(
        invitation
            .plain()
            .contains(&format!("Viewer password: {secret_password}"))
    );
}

async fn title_change_after_confirmation_mails_each_invitee_once(b: Backend) {
    let Some(w) = World::open(b).await else {
        return;
    };
    let (tok, _) = w.app.member(HOST, true).await;
    let (id, slug) = w.book(&tok, password_program()).await;
    w.deliver_key_and_confirm(&tok, HOST, id).await;
    assert_eq!(w.deliver().await, 2, "the invitations");
    let before = w.received().len();

    let p = format!("/api/v1/reservations/{id}");
    let ch = w
        .app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"title": "Jazz night, second set"})),
        )
        .await;
    assert_eq!(ch.status, StatusCode::OK, "{}", ch.text);
    assert_eq!(ch.body["title"], "Jazz night, second set");
    assert_eq!(w.deliver().await, 2, "one change e-mail per invitee");
    assert_eq!(w.deliver().await, 0);

    // Setting the same title again changes nothing and tells nobody.
    let same = w
        .app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"title": "Jazz night, second set"})),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(w.deliver().await, 0, "no change, no e-mail");

    let received = w.received();
    let new = &received[before..];
    assert_eq!(new.len(), 2);
    assert!(
        mails_to(new, HOST).is_empty(),
        "the broadcaster gets no change e-mail"
    );
    for invitee in [ANN, BOB] {
        let changes = mails_to(new, invitee);
        assert_eq!(changes.len(), 1, "{invitee}: exactly one change e-mail");
        let mail = &changes[0];
        assert!(
            mail.header("Subject")
                .starts_with("Changed: Jazz night, second set"),
            "{}",
            mail.header("Subject")
        );
        let text = mail.plain();
        assert!(
            text.to_lowercase().contains("what changed: title."),
            "{text}"
        );
        assert!(text.contains(&format!("http://tv.example.org/programs/{slug}")));
        assert!(text.contains(&format!("Viewer password: {PASSWORD}")));
        let ics = invite_ics(mail, "REQUEST");
        assert!(!ics.contains(PASSWORD), "{ics}");
        assert_eq!(ics_property(&ics, "UID"), format!("{slug}@tv.example.org"));
        assert_eq!(
            ics_property(&ics, "SEQUENCE"),
            "1",
            "an update of the invitation"
        );
        assert_eq!(ics_property(&ics, "SUMMARY"), r"Jazz night\, second set");
    }
}

async fn cancellation_mails_each_invitee_an_ics_with_method_cancel(b: Backend) {
    let Some(w) = World::open(b).await else {
        return;
    };
    let (tok, _) = w.app.member(HOST, true).await;
    let (id, slug) = w.book(&tok, password_program()).await;
    w.deliver_key_and_confirm(&tok, HOST, id).await;
    assert_eq!(w.deliver().await, 2, "the invitations");
    let before = w.received().len();

    let p = format!("/api/v1/reservations/{id}");
    let c = w.app.call(Method::DELETE, &p, Some(&tok), None).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(w.deliver().await, 3, "the broadcaster and both invitees");
    assert_eq!(
        w.app
            .call(Method::DELETE, &p, Some(&tok), None)
            .await
            .code(),
        "wrong_state"
    );
    assert_eq!(w.deliver().await, 0, "cancelling twice tells nobody twice");

    let received = w.received();
    let new = &received[before..];
    let to_host = mails_to(new, HOST);
    assert_eq!(to_host.len(), 1);
    assert!(
        to_host[0]
            .header("Subject")
            .starts_with("Booking cancelled: Jazz night")
    );
    assert!(to_host[0].part("text/calendar").is_none());
    for invitee in [ANN, BOB] {
        let cancels = mails_to(new, invitee);
        assert_eq!(cancels.len(), 1, "{invitee}: exactly one cancellation");
        let mail = &cancels[0];
        assert!(
            mail.header("Subject").starts_with("Cancelled: Jazz night"),
            "{}",
            mail.header("Subject")
        );
        let ics = invite_ics(mail, "CANCEL");
        assert!(ics.contains("STATUS:CANCELLED\r\n"), "{ics}");
        assert_eq!(
            ics_property(&ics, "UID"),
            format!("{slug}@tv.example.org"),
            "cancels the event the invitation created"
        );
        assert!(!ics.contains(PASSWORD), "{ics}");
        assert!(
            !mail.plain().contains(PASSWORD),
            "a cancellation needs no password"
        );
    }
}

async fn mail_queued_while_smtp_is_down_is_delivered_exactly_once_after_the_retry_delay(
    b: Backend,
) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    // Nothing listens on the port yet.
    let port = unused_port();
    let sender = sender_to(&app, port);
    assert!(sender.check().await.is_err(), "readiness reports SMTP down");

    let (tok, _) = app.member(HOST, true).await;
    let r = app.book(&tok, password_program()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    // The key cannot be mailed, so read it from the queue with a zero lease (which
    // leaves the messages due, untouched).
    let queued = app.store.claim_due(app.now(), 0, 100).await.unwrap();
    let key_mail = queued
        .iter()
        .find(|m| m.message.dedupe_key == format!("r{id}/key"))
        .expect("key e-mail queued");
    let key = key_in(&key_mail.message.text);
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);

    let t0 = app.now();
    assert_eq!(
        sender.run_once().await.unwrap(),
        0,
        "SMTP down: nothing delivered"
    );
    let counts = app.store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.queued, counts.sent, counts.failed),
        (3, 0, 0),
        "the key e-mail and both invitations stay queued"
    );
    // Not retried before the delay …
    app.set(t0 + mail::retry_delay(0) - SignedDuration::from_secs(1));
    assert_eq!(sender.run_once().await.unwrap(), 0);
    let counts = app.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (3, 0, 0));

    // … and after it, with the server up, each delivered once.
    let inbox = start_smtp(TcpListener::bind(("127.0.0.1", port)).expect("port still free"));
    app.set(t0 + mail::retry_delay(0) + SignedDuration::from_secs(1));
    sender.check().await.expect("SMTP up now");
    assert_eq!(sender.run_once().await.unwrap(), 3);
    assert_eq!(sender.run_once().await.unwrap(), 0, "nothing more");
    app.set(app.now() + SignedDuration::from_hours(3));
    assert_eq!(
        sender.run_once().await.unwrap(),
        0,
        "nothing more, later either"
    );

    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut per_to_subject: HashMap<(String, String), usize> = HashMap::new();
    for r in &received {
        let mail = r.mail();
        let message_id = mail.header("Message-ID");
        assert!(message_id.starts_with("<slotcast."), "{message_id}");
        *per_id.entry(message_id).or_default() += 1;
        *per_to_subject
            .entry((r.to.join(","), mail.header("Subject")))
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 3, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    assert!(
        per_to_subject.values().all(|n| *n == 1),
        "{per_to_subject:?}"
    );
    let to: BTreeSet<&str> = per_to_subject.keys().map(|(to, _)| to.as_str()).collect();
    assert_eq!(to, BTreeSet::from([HOST, ANN, BOB]));
    assert_eq!(
        mailed_key(&received, HOST, id),
        key,
        "the late key e-mail carries the key"
    );
    let counts = app.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 3, 0));
}
