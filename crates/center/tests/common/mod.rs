//! The center in-process for tests: a real store (SQLite file or PostgreSQL database),
//! a manual clock, the router driven with `oneshot`, helpers to read the outbox, and a
//! stand-in stream node ([`FakeNode`]) holding program totals until acknowledged.

#![allow(dead_code)]

pub mod smtp;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use slotcast_center::secrets::Secrets;
use slotcast_center::{
    Center, NoStreamNode, Scheduler, SchedulerHealth, Settings, StreamStats, Throttle,
};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{ChannelId, Clock, Policy, ProgramStats, ReservationId, Timestamp};
use slotcast_store::{OutboxMessage, Store};
use slotcast_testkit::{ManualClock, TempDir};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

/// Runs each named `async fn name(Backend)` of the test file once on SQLite and once on
/// PostgreSQL, as `sqlite::name` and `postgres::name`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Postgres).await } )*
        }
    };
}

/// Which database.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct App {
    pub center: Arc<Center>,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    router: axum::Router,
    _dir: TempDir,
    _pg: Option<slotcast_testkit::pg::TempPg>,
    outbox_calls: std::sync::atomic::AtomicI64,
    peer: std::sync::Mutex<SocketAddr>,
    forwarded_for: std::sync::Mutex<Option<String>>,
}

pub const PUBLIC_URL: &str = "http://tv.example.org";

/// A reply.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self, f: &str) -> &str {
        self.body["error"]["fields"][f].as_str().unwrap_or("")
    }
}

pub async fn open(backend: Backend, now: &str, policy: Policy) -> Option<App> {
    open_with(backend, now, policy, None).await
}

/// [`open`], with the decisions' clock taken from an NTP time service when given.
pub async fn open_with(
    backend: Backend,
    now: &str,
    policy: Policy,
    time: Option<Arc<slotcast_center::time::TimeService>>,
) -> Option<App> {
    let db = Db::fresh(backend).await?;
    Some(open_on(db, now, policy, time, Arc::new(NoStreamNode)).await)
}

/// A store and what keeps it alive.
pub struct Db {
    pub store: Arc<dyn Store>,
    dir: TempDir,
    pg: Option<slotcast_testkit::pg::TempPg>,
}

impl Db {
    /// A fresh SQLite file or PostgreSQL database; `None` when PostgreSQL is missing
    /// outside CI.
    pub async fn fresh(backend: Backend) -> Option<Db> {
        let dir = TempDir::new("center");
        let (store, pg): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}/slotcast.db", dir.path().display());
                (
                    Arc::new(
                        slotcast_store_sqlite::SqliteStore::open(&url)
                            .await
                            .unwrap(),
                    ),
                    None,
                )
            }
            Backend::Postgres => {
                let db = slotcast_testkit::pg::TempPg::create().await?;
                (
                    Arc::new(
                        slotcast_store_postgres::PgStore::open(&db.url)
                            .await
                            .unwrap(),
                    ),
                    Some(db),
                )
            }
        };
        Some(Db { store, dir, pg })
    }

    /// A store the caller keeps alive.
    pub fn of(store: Arc<dyn Store>) -> Db {
        Db {
            store,
            dir: TempDir::new("center"),
            pg: None,
        }
    }

    /// The same database seen through `wrap` (a store that fails on purpose).
    pub fn wrap(self, wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>) -> Db {
        Db {
            store: wrap(self.store),
            ..self
        }
    }
}

/// The center on `db` with a manual clock at `now`, two channels (`small`, `medium`) and
/// `stats` as its stream node.
pub async fn open_on(
    db: Db,
    now: &str,
    policy: Policy,
    time: Option<Arc<slotcast_center::time::TimeService>>,
    stats: Arc<dyn StreamStats>,
) -> App {
    open_custom(db, now, policy, time, stats, |_| {}).await
}

/// [`open_on`] with the settings changed by `tweak`.
pub async fn open_custom(
    db: Db,
    now: &str,
    policy: Policy,
    time: Option<Arc<slotcast_center::time::TimeService>>,
    stats: Arc<dyn StreamStats>,
    tweak: impl FnOnce(&mut Settings),
) -> App {
    let Db { store, dir, pg } = db;
    let clock = Arc::new(ManualClock::new(now.parse().unwrap()));
    let tz = policy.time_zone.iana_name().unwrap_or("UTC").to_owned();
    let mut settings = Settings::new(PUBLIC_URL, &tz, policy);
    settings.mail_from = "slotcast <noreply@tv.example.org>".into();
    tweak(&mut settings);
    slotcast_center::metrics::install();
    let decisions: Arc<dyn Clock> = match &time {
        Some(t) => t.clone(),
        None => clock.clone(),
    };
    let center = Arc::new(Center {
        store: store.clone(),
        clock: decisions,
        settings,
        secrets: Secrets::from_master([9; 32]),
        login_throttle: Throttle::new(50, SignedDuration::from_mins(15)),
        login_backoff: slotcast_center::state::Backoff::new(5, SignedDuration::from_mins(15)),
        password_throttle: Throttle::new(20, SignedDuration::from_mins(15)),
        signup_throttle: Throttle::new(20, SignedDuration::from_hours(1)),
        time,
        stats,
        filler: Arc::new(slotcast_center::NoStreamNode),
        mail_check: None,
        scheduler: SchedulerHealth::default(),
        listings: Default::default(),
        sessions: Default::default(),
    });
    for (name, cap, tariff) in [("small", 10, 100), ("medium", 100, 300)] {
        slotcast_testkit::fixtures::channel(&*store, name, cap, tariff).await;
    }
    App {
        router: slotcast_center::router(center.clone()),
        center,
        clock,
        store,
        _dir: dir,
        _pg: pg,
        outbox_calls: std::sync::atomic::AtomicI64::new(0),
        peer: std::sync::Mutex::new(SocketAddr::from(([127, 0, 0, 1], 40000))),
        forwarded_for: std::sync::Mutex::new(None),
    }
}

/// A stream node that measured the totals it is given and keeps them until acknowledged.
#[derive(Debug, Default)]
pub struct FakeNode {
    totals: std::sync::Mutex<HashMap<ReservationId, ProgramStats>>,
    acks: std::sync::Mutex<Vec<ReservationId>>,
}

impl FakeNode {
    /// The program `r` ended with `totals`.
    pub fn finished(&self, r: ReservationId, totals: ProgramStats) {
        self.totals.lock().unwrap().insert(r, totals);
    }

    /// The totals still held for `r`.
    pub fn held(&self, r: ReservationId) -> Option<ProgramStats> {
        self.totals.lock().unwrap().get(&r).cloned()
    }

    /// The acknowledgements received, in order.
    pub fn acks(&self) -> Vec<ReservationId> {
        self.acks.lock().unwrap().clone()
    }
}

impl StreamStats for FakeNode {
    fn viewers(&self, _: ChannelId) -> u32 {
        0
    }

    fn program_stats(&self, r: ReservationId) -> Option<ProgramStats> {
        self.held(r)
    }

    fn ack_program_stats(&self, r: ReservationId) {
        self.acks.lock().unwrap().push(r);
        self.totals.lock().unwrap().remove(&r);
    }

    fn live(&self, _: ReservationId) -> Option<slotcast_center::LiveView> {
        None
    }

    fn revoke(&self, _: ReservationId) {}

    fn recording(&self, _: ReservationId) -> Option<slotcast_center::RecordingInfo> {
        None
    }
}

impl App {
    /// Requests from now on come from `addr`.
    /// Sends `X-Forwarded-For: value` with every request from now on (`None`: none).
    pub fn set_forwarded_for(&self, value: Option<&str>) {
        *self.forwarded_for.lock().unwrap() = value.map(str::to_owned);
    }

    pub fn set_peer(&self, addr: &str) {
        *self.peer.lock().unwrap() = addr.parse().unwrap();
    }

    /// The directory of the SQLite database.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn set(&self, t: Timestamp) {
        self.clock.set(t);
    }

    /// Sends a request from 127.0.0.1 (as the listener would record it).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(f) = self.forwarded_for.lock().unwrap().as_deref() {
            req = req.header("x-forwarded-for", f);
        }
        let mut req = req.body(Body::from(body)).unwrap();
        let peer = *self.peer.lock().unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(slotcast_center::net::Peer(peer)));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        match body {
            Some(b) => {
                self.raw(
                    method,
                    path,
                    token,
                    Some("application/json"),
                    serde_json::to_vec(&b).unwrap(),
                )
                .await
            }
            None => self.raw(method, path, token, None, Vec::new()).await,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Registers and signs in; returns the bearer token and the member id.
    pub async fn member(&self, email: &str, premium: bool) -> (String, i64) {
        let mut body = json!({"email": email, "password": "a long enough password", "display_name": email.split('@').next().unwrap(), "tier": if premium {"premium"} else {"general"}});
        if premium {
            body["payment"] = json!({"card_number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "holder": "Test Person"});
        }
        let r = self.post("/api/v1/members", None, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = self.sign_in(email, "a long enough password").await;
        (
            r.body["token"].as_str().unwrap().to_owned(),
            r.body["member"]["id"].as_i64().unwrap(),
        )
    }

    /// Signs in; the `201` answer (`token`, `member`).
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        let r = self
            .post(
                "/api/v1/sessions",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r
    }

    /// Registers an operator (as `slotcastd admin create-operator` does) and signs in; the
    /// bearer token.
    pub async fn operator(&self, email: &str) -> String {
        let hash = slotcast_center::secrets::hash_password("operator password").unwrap();
        self.store
            .create_member(slotcast_store::NewMember {
                email: slotcast_domain::EmailAddress::parse(email).unwrap(),
                password_hash: hash,
                display_name: "Op".into(),
                tier: slotcast_store::Tier::General,
                role: slotcast_store::Role::Operator,
                payment: None,
                created_at: self.now(),
            })
            .await
            .unwrap();
        let r = self.sign_in(email, "operator password").await;
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn book(&self, token: &str, body: Value) -> Reply {
        self.post("/api/v1/reservations", Some(token), body).await
    }

    /// Every queued e-mail, in queue order (peeked without delivering).
    pub async fn outbox(&self) -> Vec<OutboxMessage> {
        let n = self
            .outbox_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let far: Timestamp = "2090-01-01T00:00:00Z".parse().unwrap();
        let at = far + SignedDuration::from_secs(n);
        self.store.claim_due(at, 1, 100_000).await.unwrap()
    }

    /// Books and returns the new reservation's id (the booking must succeed).
    pub async fn book_id(&self, token: &str, body: Value) -> i64 {
        let r = self.book(token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_i64().unwrap()
    }

    /// Queued e-mails whose dedupe key contains `part`.
    pub async fn mails(&self, part: &str) -> Vec<OutboxMessage> {
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.message.dedupe_key.contains(part))
            .collect()
    }

    /// The reservation key from the acceptance e-mail.
    pub async fn key_of(&self, reservation: i64) -> String {
        let m = self.mails(&format!("r{reservation}/key")).await;
        assert_eq!(m.len(), 1, "one key e-mail");
        let text = &m[0].message.text;
        text.split_whitespace()
            .find(|w| {
                w.len() == 32
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
            })
            .unwrap_or_else(|| panic!("no key in {text}"))
            .to_owned()
    }

    /// Confirms reservation `id` of `token`'s member with the key from its e-mail.
    pub async fn confirm(&self, token: &str, id: i64) -> Reply {
        let key = self.key_of(id).await;
        self.post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(token),
            json!({"reservation_key": key}),
        )
        .await
    }

    pub async fn tick(&self) -> usize {
        Scheduler::new(self.center.clone())
            .run_once()
            .await
            .unwrap()
    }
}
