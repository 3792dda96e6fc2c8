//! The outbox sender end to end: messages rendered by `mail`, queued in a real SQLite
//! store, delivered to a real SMTP server (mailin-embedded, in-process on loopback) or
//! written to the file outbox, and read back as MIME.

mod common;

use common::smtp::{Mail, Received, smtp_to, start_smtp};
use slotcast_center::mail::{self, MailContext, Sender, Transport, invitee_messages, key_message};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::lifecycle::InviteeNotice;
use slotcast_domain::{Clock, EmailAddress, Policy, ReservationKey, Visibility};
use slotcast_store::{Channel, Member, NewMessage, Reservation, Store, Tier};
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{ManualClock, TempDir, fixtures};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "tulip-4711";
const FROM: &str = "slotcast <noreply@tv.example.org>";

// ---------------------------------------------------------------------------------------
// A reservation with its channel and broadcaster in a real store.

struct World {
    _dir: TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    reservation: Reservation,
    channel: Channel,
    broadcaster: Member,
    tz: TimeZone,
}

impl World {
    /// A confirmed-to-be `password` program with two invitees; the outbox starts empty.
    async fn new() -> Self {
        let dir = TempDir::new("mail");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&format!("sqlite://{}/db", dir.path().display()))
                .await
                .expect("open SQLite"),
        );
        let clock = Arc::new(ManualClock::new(fixtures::now()));
        let broadcaster = fixtures::member(&*store, "caster", Tier::Premium).await;
        let channel = fixtures::channel(&*store, "medium", 100, 300).await;
        let mut booking = fixtures::booking(
            &Policy::default(),
            &channel,
            broadcaster.id,
            fixtures::ts("2026-06-10T12:00:00Z"),
            3,
            fixtures::now(),
        );
        booking.visibility = Visibility::Password;
        booking.viewer_password = Some("sealed-by-the-center".into());
        booking.program.title = "Jazz from the cellar".into();
        booking.invitees = vec![
            EmailAddress::parse("ann@example.org").unwrap(),
            EmailAddress::parse("bob@example.net").unwrap(),
        ];
        booking.outbox.clear();
        let reservation = store.create_reservation(booking).await.expect("book");
        assert_eq!(store.outbox_counts().await.unwrap().queued, 0);
        Self {
            _dir: dir,
            store,
            clock,
            reservation,
            channel,
            broadcaster,
            tz: TimeZone::get("Europe/Berlin").unwrap(),
        }
    }

    fn ctx(&self) -> MailContext<'_> {
        MailContext {
            public_url: "http://tv.example.org:8080",
            ingest: "rtmp://tv.example.org:1935/live",
            time_zone: &self.tz,
            reservation: &self.reservation,
            channel: &self.channel,
            broadcaster: &self.broadcaster,
            viewer_password: Some(PASSWORD),
            sequence: 0,
        }
    }

    /// The key e-mail and both invitations, queued; returns them and the key.
    async fn queue_key_and_invitations(&self) -> (Vec<NewMessage>, ReservationKey) {
        let key = fixtures::key();
        let mut msgs = vec![key_message(&self.ctx(), &key)];
        msgs.extend(invitee_messages(
            &self.ctx(),
            InviteeNotice::Invitation,
            &[],
        ));
        let n = self
            .store
            .enqueue(msgs.clone(), self.clock.now())
            .await
            .unwrap();
        assert_eq!(n, 3);
        (msgs, key)
    }

    fn sender(&self, transport: Transport) -> Sender {
        Sender::new(
            self.store.clone(),
            self.clock.clone() as Arc<dyn Clock>,
            transport,
            FROM,
        )
        .expect("sender")
    }
}

/// Checks the three messages of [`World::queue_key_and_invitations`] arrived once each,
/// as they should look.
fn check_delivered(inbox: &[Received], sent: &[NewMessage], key: &ReservationKey, w: &World) {
    assert_eq!(inbox.len(), sent.len(), "exactly the queued messages");
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for want in sent {
        let matching: Vec<&Received> = inbox
            .iter()
            .filter(|r| {
                let m = Mail::parse(&r.data);
                r.to == [want.to.as_str()]
                    && m.header("To") == want.to.as_str()
                    && m.header("Subject") == want.subject
            })
            .collect();
        *per_key.entry(want.dedupe_key.as_str()).or_default() += matching.len();
        assert_eq!(matching.len(), 1, "{} delivered once", want.dedupe_key);
        let r = matching[0];
        assert_eq!(r.from, "noreply@tv.example.org");
        let mail = Mail::parse(&r.data);
        assert_eq!(mail.header("From"), FROM);
        assert!(mail.header("Message-ID").starts_with("<slotcast."));
        let text = mail.plain();
        let html = mail.html();
        assert_eq!(text.replace("\r\n", "\n").trim_end(), want.text.trim_end());
        if want.to == w.broadcaster.email {
            assert!(text.contains(key.expose()), "the broadcaster got the key");
            assert!(html.contains(key.expose()));
            assert!(!String::from_utf8_lossy(&r.data).contains(PASSWORD));
            assert!(mail.part("text/calendar").is_none());
        } else {
            assert!(!text.contains(key.expose()), "no key to invitees");
            assert!(
                text.contains(&format!("Viewer password: {PASSWORD}")),
                "{text}"
            );
            assert!(html.contains(PASSWORD));
            let cal = mail.part("text/calendar").expect("calendar part");
            let ct = cal.header("Content-Type").unwrap().to_ascii_lowercase();
            assert!(ct.contains("method=request"), "{ct}");
            assert!(ct.contains("charset=utf-8"), "{ct}");
            let disposition = cal.header("Content-Disposition").unwrap();
            assert!(disposition.contains("attachment") && disposition.contains("invite.ics"));
            let ics = cal.text();
            assert!(ics.contains("METHOD:REQUEST\r\n"));
            assert!(ics.contains(&format!("UID:{}@tv.example.org\r\n", w.reservation.slug)));
            assert!(!ics.contains(PASSWORD), "never the password in the .ics");
            assert_eq!(ics, want.ics.clone().unwrap());
        }
    }
    assert!(per_key.values().all(|n| *n == 1));
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn smtp_delivers_exactly_the_queued_messages() {
    let w = World::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = start_smtp(listener);
    let sender = w.sender(smtp_to(port));
    sender.check().await.expect("the SMTP server answers");

    let (sent, key) = w.queue_key_and_invitations().await;
    assert_eq!(sender.run_once().await.unwrap(), 3);

    check_delivered(&inbox.lock().unwrap(), &sent, &key, &w);
    let counts = w.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 3, 0));

    // Nothing more to send, now or later.
    assert_eq!(sender.run_once().await.unwrap(), 0);
    w.clock.advance(SignedDuration::from_hours(2));
    assert_eq!(sender.run_once().await.unwrap(), 0);
    assert_eq!(inbox.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn smtp_down_keeps_messages_queued_and_retries_after_backoff() {
    let w = World::new().await;
    // A port with nothing listening on it.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = w.sender(smtp_to(port));
    assert!(
        sender.check().await.is_err(),
        "readiness reports the server down"
    );

    let (sent, key) = w.queue_key_and_invitations().await;
    let t0 = w.clock.now();
    assert_eq!(sender.run_once().await.unwrap(), 0, "nothing delivered");
    let counts = w.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (3, 0, 0));

    // Not due again before the backoff (30 s after the first failure) …
    assert!(
        w.store
            .claim_due(t0 + SignedDuration::from_secs(29), 0, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(sender.run_once().await.unwrap(), 0);
    // … and due after it, each with one attempt and its error recorded (a zero lease
    // leaves them due).
    let later = t0 + SignedDuration::from_secs(31);
    let due = w.store.claim_due(later, 0, 50).await.unwrap();
    assert_eq!(due.len(), 3);
    for m in &due {
        assert_eq!(m.attempts, 1, "{}", m.message.dedupe_key);
        assert!(m.last_error.as_deref().is_some_and(|e| !e.is_empty()));
    }

    // The server comes up; the clock passes the backoff.
    let inbox = start_smtp(TcpListener::bind(("127.0.0.1", port)).expect("port still free"));
    w.clock.set(later);
    sender.check().await.expect("up now");
    assert_eq!(sender.run_once().await.unwrap(), 3);
    check_delivered(&inbox.lock().unwrap(), &sent, &key, &w);

    // Nothing is sent twice.
    w.clock.advance(SignedDuration::from_hours(3));
    assert_eq!(sender.run_once().await.unwrap(), 0);
    assert_eq!(inbox.lock().unwrap().len(), 3);
    let counts = w.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 3, 0));
}

#[tokio::test]
async fn smtp_gives_up_after_the_last_attempt() {
    let w = World::new().await;
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = w.sender(smtp_to(port));
    let msg = key_message(&w.ctx(), &fixtures::key());
    w.store.enqueue(vec![msg], w.clock.now()).await.unwrap();
    for attempt in 0..mail::MAX_ATTEMPTS {
        assert_eq!(sender.run_once().await.unwrap(), 0);
        let c = w.store.outbox_counts().await.unwrap();
        if attempt + 1 < mail::MAX_ATTEMPTS {
            assert_eq!((c.queued, c.failed), (1, 0), "attempt {}", attempt + 1);
        }
        w.clock
            .advance(mail::retry_delay(attempt) + SignedDuration::from_secs(1));
    }
    let c = w.store.outbox_counts().await.unwrap();
    assert_eq!((c.queued, c.sent, c.failed), (0, 0, 1));
    w.clock.advance(SignedDuration::from_hours(24));
    assert_eq!(sender.run_once().await.unwrap(), 0);
}

#[tokio::test]
async fn file_transport_writes_one_eml_per_message() {
    let w = World::new().await;
    let out = TempDir::new("mail-out");
    let dir = out.path().join("outbox"); // created by the sender
    let sender = w.sender(Transport::File { dir: dir.clone() });
    sender.check().await.expect("directory writable");

    let (sent, key) = w.queue_key_and_invitations().await;
    assert_eq!(sender.run_once().await.unwrap(), 3);
    assert_eq!(sender.run_once().await.unwrap(), 0);

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let stamp = fixtures::now().strftime("%Y%m%dT%H%M%S").to_string();
    let mut files = Vec::new();
    for name in &names {
        let (prefix, rest) = name.split_once('-').expect("stamp-id.eml");
        assert_eq!(prefix, stamp, "{name}");
        let id = rest.strip_suffix(".eml").expect(".eml");
        assert!(id.parse::<i64>().is_ok(), "{name}");
        let raw = std::fs::read(dir.join(name)).unwrap();
        files.push(Received {
            from: "noreply@tv.example.org".into(),
            to: vec![Mail::parse(&raw).header("To")],
            data: raw,
        });
    }
    check_delivered(&files, &sent, &key, &w);
    let counts = w.store.outbox_counts().await.unwrap();
    assert_eq!((counts.queued, counts.sent, counts.failed), (0, 3, 0));
}

#[tokio::test]
async fn cancellation_goes_out_with_method_cancel() {
    let w = World::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = start_smtp(listener);
    let sender = w.sender(smtp_to(port));
    let ctx = MailContext {
        sequence: 1,
        ..w.ctx()
    };
    let msgs = invitee_messages(&ctx, InviteeNotice::Cancellation, &[]);
    w.store.enqueue(msgs, w.clock.now()).await.unwrap();
    assert_eq!(sender.run_once().await.unwrap(), 2);
    let inbox = inbox.lock().unwrap();
    let mut to: Vec<String> = inbox.iter().flat_map(|r| r.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["ann@example.org", "bob@example.net"]);
    for r in inbox.iter() {
        let mail = Mail::parse(&r.data);
        let cal = mail.part("text/calendar").expect("calendar");
        assert!(
            cal.header("Content-Type")
                .unwrap()
                .to_ascii_lowercase()
                .contains("method=cancel")
        );
        let ics = cal.text();
        assert!(ics.contains("METHOD:CANCEL\r\n") && ics.contains("STATUS:CANCELLED\r\n"));
        assert!(ics.contains("SEQUENCE:1\r\n"));
    }
}

#[tokio::test]
async fn run_delivers_until_shutdown() {
    let w = World::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = start_smtp(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(w.sender(smtp_to(port)).run(async {
        let _ = stopped.await;
    }));
    w.queue_key_and_invitations().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while w.store.outbox_counts().await.unwrap().sent < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "run delivered the queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run stops on shutdown")
        .expect("no panic");
    assert_eq!(inbox.lock().unwrap().len(), 3);
}
