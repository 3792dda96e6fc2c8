//! The outbox sender end to end: messages rendered by `mail`, queued in a real SQLite
//! store, delivered to a real SMTP server (mailin-embedded, in-process on loopback) or
//! written to the file outbox, and read back as MIME.

use base64::Engine as _;
use mailin_embedded::{Handler, Response, Server, SslConfig, response};
use slotcast_center::mail::{
    self, MailContext, Sender, SmtpSettings, SmtpTls, Transport, invitee_messages, key_message,
};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::lifecycle::InviteeNotice;
use slotcast_domain::{Clock, EmailAddress, Policy, ReservationKey, Visibility};
use slotcast_store::{Channel, Member, NewMessage, Reservation, Store, Tier};
use slotcast_store_sqlite::SqliteStore;
use slotcast_testkit::{ManualClock, TempDir, fixtures};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "tulip-4711";
const FROM: &str = "slotcast <noreply@tv.example.org>";

// ---------------------------------------------------------------------------------------
// An SMTP server that keeps what it receives.

/// One received e-mail: envelope sender, envelope recipients, message data.
#[derive(Debug, Clone, Default)]
struct Received {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

#[derive(Clone)]
struct Collect {
    inbox: Inbox,
    current: Received,
}

impl Handler for Collect {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
        };
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = std::mem::take(&mut self.current);
        self.inbox.lock().unwrap().push(mail);
        response::OK
    }
}

/// Serves SMTP on `listener` in a background thread (for the rest of the test process).
fn start_smtp(listener: TcpListener) -> Inbox {
    let inbox = Inbox::default();
    let mut server = Server::new(Collect {
        inbox: inbox.clone(),
        current: Received::default(),
    });
    server
        .with_name("mx.test")
        .with_ssl(SslConfig::None)
        .expect("no TLS")
        .with_num_threads(2)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    inbox
}

fn smtp_to(port: u16) -> Transport {
    Transport::Smtp(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
    })
}

// ---------------------------------------------------------------------------------------
// Just enough MIME to read the messages back.

/// A leaf part (or the whole message's header block): headers, decoded body.
#[derive(Debug)]
struct Part {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_type(&self) -> String {
        self.header("Content-Type")
            .unwrap_or("text/plain")
            .to_ascii_lowercase()
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 part")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a header block from its body and unfolds the headers.
fn split(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => (raw, &raw[raw.len()..]),
    };
    let head = String::from_utf8(head.to_vec()).expect("ASCII headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

/// A parameter of a header value, e.g. `boundary` of a Content-Type.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn decode_body(encoding: &str, body: &[u8]) -> Vec<u8> {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .expect("base64 body")
        }
        "quoted-printable" => {
            let mut out = Vec::new();
            let mut i = 0;
            while i < body.len() {
                if body[i] == b'=' {
                    if body[i + 1..].starts_with(b"\r\n") {
                        i += 3;
                    } else {
                        let hex = std::str::from_utf8(&body[i + 1..i + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).expect("QP hex"));
                        i += 3;
                    }
                } else {
                    out.push(body[i]);
                    i += 1;
                }
            }
            out
        }
        _ => body.to_vec(),
    }
}

/// Every leaf part of a MIME entity, depth first, bodies decoded.
fn leaves(raw: &[u8]) -> Vec<Part> {
    let (headers, body) = split(raw);
    let part = Part {
        headers,
        body: Vec::new(),
    };
    let ct = part.content_type();
    if ct.starts_with("multipart/") {
        let boundary = param(part.header("Content-Type").unwrap(), "boundary").expect("boundary");
        let delim = format!("--{boundary}");
        let text = body;
        let mut out = Vec::new();
        let mut rest = text;
        // Skip the preamble.
        let Some(start) = find(rest, delim.as_bytes()) else {
            return out;
        };
        rest = &rest[start + delim.len()..];
        loop {
            if rest.starts_with(b"--") {
                break;
            }
            let rest_after_crlf = rest.strip_prefix(b"\r\n").unwrap_or(rest);
            let end = find(rest_after_crlf, format!("\r\n{delim}").as_bytes())
                .expect("closing delimiter");
            out.extend(leaves(&rest_after_crlf[..end]));
            rest = &rest_after_crlf[end + 2 + delim.len()..];
        }
        out
    } else {
        let cte = part
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_owned();
        vec![Part {
            body: decode_body(&cte, body),
            ..part
        }]
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value;
/// the space between two adjacent encoded words is not part of the text.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut last_was_word = false;
    for token in value.split([' ', '\t']).filter(|t| !t.is_empty()) {
        let word = token
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|t| {
                let mut it = t.splitn(3, '?');
                Some((it.next()?, it.next()?, it.next()?))
            });
        let (text, is_word) = match word {
            Some((_charset, enc, data)) => {
                let bytes = if enc.eq_ignore_ascii_case("b") {
                    base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .expect("b word")
                } else {
                    decode_body("quoted-printable", data.replace('_', " ").as_bytes())
                };
                (String::from_utf8(bytes).expect("UTF-8 word"), true)
            }
            None => (token.to_owned(), false),
        };
        let joined = last_was_word && is_word;
        if !out.is_empty() && !joined {
            out.push(' ');
        }
        out.push_str(&text);
        last_was_word = is_word;
    }
    out
}

/// A received e-mail, parsed.
struct Mail {
    top: Vec<(String, String)>,
    parts: Vec<Part>,
}

impl Mail {
    fn parse(raw: &[u8]) -> Self {
        let (top, _) = split(raw);
        Self {
            top,
            parts: leaves(raw),
        }
    }

    fn header(&self, name: &str) -> String {
        let v = self
            .top
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        decode_words(&v)
    }

    fn part(&self, content_type: &str) -> Option<&Part> {
        self.parts
            .iter()
            .find(|p| p.content_type().starts_with(content_type))
    }

    fn plain(&self) -> String {
        self.part("text/plain").expect("text part").text()
    }

    fn html(&self) -> String {
        self.part("text/html").expect("html part").text()
    }
}

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
