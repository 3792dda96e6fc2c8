//! Delivery of the durable outbox: lease due messages, build MIME, hand them to SMTP or
//! write them as `.eml` files, record the outcome, retry failures with backoff.

use crate::hints::Hints;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use slotcast_domain::Clock;
use slotcast_domain::jiff::SignedDuration;
use slotcast_store::{OutboxMessage, StorageError, Store};
use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long a claimed message is reserved for this sender (ms); after that another
/// sender (or this one, after a crash) may take it again.
pub const LEASE_MS: i64 = 60_000;
/// Most messages claimed per [`Sender::run_once`].
pub const BATCH_LIMIT: u32 = 50;
/// Attempts after which a message is given up on (marked failed).
pub const MAX_ATTEMPTS: u32 = 12;
/// Time allowed for one SMTP exchange.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// A batch stops starting new deliveries once this much of the lease is used, so that a
/// slow server never lets a lease run out under a message being sent.
const BATCH_BUDGET: Duration = Duration::from_secs(35);
/// Pause between two rounds of [`Sender::run`].
const POLL: Duration = Duration::from_secs(1);
/// How long [`Sender::run`] lets a round in progress finish after shutdown is asked.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The wait before retrying a message that failed `attempts_before + 1` times:
/// 30 s · 2^`attempts_before`, at most one hour.
pub fn retry_delay(attempts_before: u32) -> SignedDuration {
    let secs = 30i64.saturating_mul(1i64 << attempts_before.min(20));
    SignedDuration::from_secs(secs.min(3600))
}

/// How the outbox reaches people.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Write every message as an RFC 5322 `.eml` file into `dir` (created if missing): the
    /// embedded default, for development and for operators who relay the files themselves.
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// Hand messages to an SMTP server.
    Smtp(SmtpSettings),
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption (a local relay only, e.g. port 25 on localhost).
    None,
}

/// Where and how to reach the SMTP server.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Host name (also the name the TLS certificate must show).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Encryption.
    pub tls: SmtpTls,
    /// Login name, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<String>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why mail could not be set up, built or delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The sender address (`mail.from`) is not a mailbox.
    #[error(
        "mail.from {value:?} is not an e-mail address such as \"slotcast <noreply@example.org>\": {reason}"
    )]
    InvalidFrom {
        /// What was configured.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The SMTP settings cannot work.
    #[error("SMTP settings: {0}")]
    Config(String),
    /// A queued message cannot be turned into an e-mail (it will never succeed).
    #[error("cannot build e-mail: {0}")]
    Build(String),
    /// The SMTP server refused the message or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The SMTP server answered the readiness check, but not positively.
    #[error("the SMTP server {0} did not answer NOOP")]
    NotReady(String),
    /// The file outbox could not be written.
    #[error("file outbox {path}: {source}")]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The outbox could not be read or updated.
    #[error("outbox storage: {0}")]
    Storage(#[from] StorageError),
}

impl MailError {
    /// Whether retrying cannot help.
    fn is_permanent(&self) -> bool {
        matches!(self, MailError::Build(_))
    }
}

enum Delivery {
    File(PathBuf),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        server: String,
    },
}

/// Drains the outbox: claims due messages with a lease, delivers them, and records each
/// outcome (sent, retry later with backoff, or given up after [`MAX_ATTEMPTS`]).
pub struct Sender {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    delivery: Delivery,
    from: Mailbox,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.delivery {
            Delivery::File(dir) => format!("file:{}", dir.display()),
            Delivery::Smtp { server, .. } => format!("smtp:{server}"),
        };
        f.debug_struct("Sender")
            .field("store", &self.store.backend())
            .field("transport", &transport)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Sender {
    /// A sender for `store`'s outbox through `transport`, from the mailbox `from`
    /// (e.g. `slotcast <noreply@example.org>`). Nothing is contacted yet.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        transport: Transport,
        from: &str,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::InvalidFrom {
            value: from.to_owned(),
            reason: format!("{e}"),
        })?;
        let delivery = match transport {
            Transport::File { dir } => Delivery::File(dir),
            Transport::Smtp(s) => {
                let builder = match s.tls {
                    SmtpTls::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    }
                };
                let mut builder = builder.port(s.port).timeout(Some(SMTP_TIMEOUT));
                match (s.username, s.password) {
                    (Some(user), Some(pass)) => {
                        builder = builder.credentials(Credentials::new(user, pass));
                    }
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(MailError::Config(
                            "a username is set but no password".into(),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(MailError::Config(
                            "a password is set but no username".into(),
                        ));
                    }
                }
                Delivery::Smtp {
                    transport: builder.build(),
                    server: format!("{}:{}", s.host, s.port),
                }
            }
        };
        Ok(Self {
            store,
            clock,
            delivery,
            from,
        })
    }

    /// One round: claims up to [`BATCH_LIMIT`] due messages (leased for [`LEASE_MS`]),
    /// delivers each, and records the outcome. A failed message is retried after
    /// [`retry_delay`] and given up on after [`MAX_ATTEMPTS`]. Returns how many were
    /// delivered; an error means the outbox itself could not be read or updated.
    pub async fn run_once(&self) -> Result<usize, MailError> {
        let started = Instant::now();
        let batch = self
            .store
            .claim_due(self.clock.now(), LEASE_MS, BATCH_LIMIT)
            .await?;
        let mut delivered = 0;
        for msg in batch {
            if started.elapsed() > BATCH_BUDGET {
                // The rest stay leased and come back when the lease runs out.
                tracing::debug!("mail batch out of time; the rest is retried after the lease");
                break;
            }
            match self.deliver(&msg).await {
                Ok(()) => {
                    self.store.mark_sent(msg.id, self.clock.now()).await?;
                    crate::metrics::emails("sent", 1);
                    delivered += 1;
                    tracing::debug!(id = msg.id, to = %msg.message.to, "mail delivered");
                }
                Err(e) => {
                    let attempts = msg.attempts.saturating_add(1);
                    let retry_at = (!e.is_permanent() && attempts < MAX_ATTEMPTS)
                        .then(|| self.clock.now() + retry_delay(msg.attempts));
                    match retry_at {
                        Some(at) => tracing::warn!(
                            id = msg.id,
                            attempts,
                            retry_at = %at,
                            error = %e,
                            "mail delivery failed; will retry"
                        ),
                        None => tracing::error!(
                            id = msg.id,
                            attempts,
                            to = %msg.message.to,
                            error = %e,
                            "mail delivery failed; giving up"
                        ),
                    }
                    self.store
                        .mark_failed(msg.id, &e.to_string(), retry_at)
                        .await?;
                    crate::metrics::emails(
                        if retry_at.is_some() {
                            "retried"
                        } else {
                            "failed"
                        },
                        1,
                    );
                }
            }
        }
        Ok(delivered)
    }

    /// Runs rounds until `shutdown` completes: at once when a message is queued on any
    /// replica ([`slotcast_store::MAIL_TOPIC`]), and about every second besides (every
    /// few seconds while such hints arrive) for retries that come due. A round in progress
    /// when shutdown comes gets a few seconds to finish; whatever it leaves undone is
    /// delivered after the lease runs out (delivery is at-least-once). Errors are logged,
    /// never raised.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(sender = ?self, "mail sender started");
        let mut hints = Hints::new(self.store.clone(), &[slotcast_store::MAIL_TOPIC]);
        loop {
            let mut round = std::pin::pin!(self.run_once());
            let result = tokio::select! {
                r = &mut round => Some(r),
                () = &mut shutdown => None,
            };
            match result {
                Some(r) => log_round(r),
                None => {
                    if let Ok(r) = tokio::time::timeout(SHUTDOWN_GRACE, round).await {
                        log_round(r);
                    }
                    break;
                }
            }
            tokio::select! {
                () = hints.wait(POLL) => {}
                () = &mut shutdown => break,
            }
        }
        tracing::info!("mail sender stopped");
    }

    /// Whether mail can go out (for `/readyz`): the SMTP server answers `NOOP`, or the
    /// outbox directory is writable.
    pub async fn check(&self) -> Result<(), MailError> {
        match &self.delivery {
            Delivery::Smtp { transport, server } => {
                if transport.test_connection().await? {
                    Ok(())
                } else {
                    Err(MailError::NotReady(server.clone()))
                }
            }
            Delivery::File(dir) => {
                let dir = dir.clone();
                blocking(move || probe_dir(&dir)).await
            }
        }
    }

    async fn deliver(&self, msg: &OutboxMessage) -> Result<(), MailError> {
        let email = self.build(msg)?;
        match &self.delivery {
            Delivery::Smtp { transport, .. } => {
                transport.send(email).await?;
                Ok(())
            }
            Delivery::File(dir) => {
                let path = dir.join(format!(
                    "{}-{}.eml",
                    msg.created_at.strftime("%Y%m%dT%H%M%S"),
                    msg.id
                ));
                let bytes = email.formatted();
                let dir = dir.clone();
                blocking(move || write_atomically(&dir, &path, &bytes)).await
            }
        }
    }

    /// The MIME message: text and HTML as `multipart/alternative`, the calendar as the
    /// attachment `invite.ics`. Date and Message-ID come from the queued message, so a
    /// retry is the same e-mail.
    fn build(&self, msg: &OutboxMessage) -> Result<Message, MailError> {
        let m = &msg.message;
        let to: Mailbox =
            m.to.as_str()
                .parse()
                .map_err(|e| MailError::Build(format!("recipient {}: {e}", m.to)))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .date(SystemTime::from(msg.created_at))
            .message_id(Some(format!(
                "<slotcast.{}.{}@{}>",
                msg.id,
                msg.created_at.as_millisecond(),
                self.from.email.domain()
            )))
            .user_agent(format!("slotcast/{}", env!("CARGO_PKG_VERSION")));
        let text = || SinglePart::plain(m.text.clone());
        let result = match (&m.html, &m.ics) {
            (None, None) => builder.singlepart(text()),
            (Some(html), None) => builder.multipart(MultiPart::alternative_plain_html(
                m.text.clone(),
                html.clone(),
            )),
            (html, Some(cal)) => {
                let content_type = ContentType::parse(&format!(
                    "text/calendar; charset=utf-8; method={}",
                    ics_method(cal)
                ))
                .map_err(|e| MailError::Build(format!("calendar content type: {e}")))?;
                let attachment =
                    Attachment::new("invite.ics".to_owned()).body(cal.clone(), content_type);
                let mixed = match html {
                    Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
                        m.text.clone(),
                        html.clone(),
                    )),
                    None => MultiPart::mixed().singlepart(text()),
                };
                builder.multipart(mixed.singlepart(attachment))
            }
        };
        result.map_err(|e| MailError::Build(e.to_string()))
    }
}

fn log_round(r: Result<usize, MailError>) {
    match r {
        Ok(0) => {}
        Ok(n) => tracing::info!(delivered = n, "mail sent"),
        Err(e) => tracing::warn!(error = %e, "mail round failed"),
    }
}

/// The iTIP method named in a calendar (`METHOD:` line), `REQUEST` if none or unknown.
fn ics_method(cal: &str) -> &'static str {
    const KNOWN: [&str; 8] = [
        "PUBLISH",
        "REQUEST",
        "REPLY",
        "ADD",
        "CANCEL",
        "REFRESH",
        "COUNTER",
        "DECLINECOUNTER",
    ];
    cal.lines()
        .find_map(|l| l.strip_prefix("METHOD:"))
        .map(str::trim)
        .and_then(|m| KNOWN.into_iter().find(|k| k.eq_ignore_ascii_case(m)))
        .unwrap_or("REQUEST")
}

/// Runs blocking file work off the async threads.
async fn blocking<F>(f: F) -> Result<(), MailError>
where
    F: FnOnce() -> Result<(), MailError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(MailError::File {
            path: PathBuf::new(),
            source: std::io::Error::other(format!("file task failed: {e}")),
        })
    })
}

/// Writes `bytes` to `path` so that a reader (or a crash) never sees half a file: a
/// temporary file in the same directory, flushed to disk, then renamed over `path`.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), MailError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| MailError::File { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(err(path))?;
    // Make the rename itself durable where the platform allows syncing a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `dir` if needed and proves a file can be written into it.
fn probe_dir(dir: &Path) -> Result<(), MailError> {
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| MailError::File { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let probe = dir.join(format!(".slotcast-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe").map_err(err(&probe))?;
    std::fs::remove_file(&probe).map_err(err(&probe))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slotcast_domain::Timestamp;

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        assert_eq!(retry_delay(0), SignedDuration::from_secs(30));
        assert_eq!(retry_delay(1), SignedDuration::from_secs(60));
        assert_eq!(retry_delay(5), SignedDuration::from_secs(960));
        assert_eq!(retry_delay(6), SignedDuration::from_secs(1920));
        assert_eq!(retry_delay(7), SignedDuration::from_secs(3600));
        assert_eq!(retry_delay(11), SignedDuration::from_secs(3600));
        assert_eq!(retry_delay(u32::MAX), SignedDuration::from_secs(3600));
    }

    #[test]
    fn method_read_from_the_calendar() {
        assert_eq!(ics_method("BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\n"), "CANCEL");
        assert_eq!(
            ics_method("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\n"),
            "REQUEST"
        );
        assert_eq!(ics_method("BEGIN:VCALENDAR\r\nMETHOD:x;y\r\n"), "REQUEST");
        assert_eq!(ics_method("BEGIN:VCALENDAR\r\n"), "REQUEST");
    }

    #[test]
    fn atomic_write_leaves_only_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "slotcast-mail-unit-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        let path = dir.join("a.eml");
        write_atomically(&dir, &path, b"one").unwrap();
        write_atomically(&dir, &path, b"two").unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.eml"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        probe_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settings_debug_hides_the_password() {
        let s = SmtpSettings {
            host: "smtp.example.org".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            username: Some("u".into()),
            password: Some("hunter2".into()),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
