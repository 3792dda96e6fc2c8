//! The scheduler when storage fails, in process, on SQLite and on PostgreSQL: a
//! completion whose transaction fails keeps the stream node's totals (they are
//! acknowledged only once stored) and is done on the next tick with the real figures; a
//! job that fails for one reservation does not hold up the others; `/readyz` says when
//! the scheduler is failing; a program whose stream node was lost (and no node took its
//! channel over) is an operator-side outage: its charge is waived; on PostgreSQL the
//! replicas' view of the stream nodes is refreshed by a heartbeat's hint, not only by
//! polling.

#[macro_use]
mod common;

use async_trait::async_trait;
use axum::http::StatusCode;
use common::{App, Backend, Db, FakeNode, open_custom, open_on};
use serde_json::{Value, json};
use slotcast_center::{Scheduler, TickError};
use slotcast_domain::{
    ChannelId, EmailAddress, KeyHash, MemberId, MonthKey, Policy, ProgramStats, ReservationId,
    Status, Timestamp, lifecycle,
};
use slotcast_store::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

on_both!(
    failed_completion_keeps_the_totals_until_stored,
    a_failing_job_does_not_hold_up_the_others,
    a_program_whose_node_was_lost_is_not_charged,
);

const NOW: &str = "2026-06-01T08:00:00Z";

const TOTALS: ProgramStats = ProgramStats {
    peak_viewers: 7,
    unique_viewers: 52,
    viewer_minutes: 2140,
    bytes_out: 1_500_000_000,
    seconds_on_air: 1800,
    curve: slotcast_domain::ViewerCurve {
        step_seconds: 0,
        points: Vec::new(),
    },
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A store that passes everything to the real one, except that `transition` can be made
/// to fail: once as an outage would, or every time for one reservation.
#[derive(Debug)]
struct FlakyStore {
    inner: Arc<dyn Store>,
    fail_next_transition: AtomicBool,
    broken: Mutex<Option<ReservationId>>,
}

impl FlakyStore {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            fail_next_transition: AtomicBool::new(false),
            broken: Mutex::new(None),
        }
    }
}

#[async_trait]
impl MemberStore for FlakyStore {
    async fn create_member(&self, m: NewMember) -> Result<Member> {
        self.inner.create_member(m).await
    }
    async fn member(&self, id: MemberId) -> Result<Member> {
        self.inner.member(id).await
    }
    async fn member_by_email(&self, email: &EmailAddress) -> Result<Member> {
        self.inner.member_by_email(email).await
    }
    async fn set_password_hash(&self, id: MemberId, hash: &str) -> Result<()> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn update_member(&self, id: MemberId, name: &str, show_email: bool) -> Result<Member> {
        self.inner.update_member(id, name, show_email).await
    }
    async fn set_payment_card(
        &self,
        id: MemberId,
        card: &PaymentCard,
        at: Timestamp,
    ) -> Result<Member> {
        self.inner.set_payment_card(id, card, at).await
    }
    async fn search_members(&self, text: &str, limit: u32) -> Result<Vec<Member>> {
        self.inner.search_members(text, limit).await
    }
}

#[async_trait]
impl SessionStore for FlakyStore {
    async fn create_session(&self, s: NewSession) -> Result<()> {
        self.inner.create_session(s).await
    }
    async fn session_member(&self, token_hash: &[u8; 32], now: Timestamp) -> Result<Member> {
        self.inner.session_member(token_hash, now).await
    }
    async fn revoke_session(&self, token_hash: &[u8; 32], at: Timestamp) -> Result<()> {
        self.inner.revoke_session(token_hash, at).await
    }
    async fn revoke_member_sessions(
        &self,
        member: slotcast_domain::MemberId,
        keep: Option<&[u8; 32]>,
        at: Timestamp,
    ) -> Result<u64> {
        self.inner.revoke_member_sessions(member, keep, at).await
    }
}

#[async_trait]
impl ChannelStore for FlakyStore {
    async fn create_channel(&self, c: NewChannel) -> Result<Channel> {
        self.inner.create_channel(c).await
    }
    async fn channels(&self) -> Result<Vec<Channel>> {
        self.inner.channels().await
    }
    async fn channel(&self, id: ChannelId) -> Result<Channel> {
        self.inner.channel(id).await
    }
    async fn update_channel(&self, id: ChannelId, c: NewChannel) -> Result<Channel> {
        self.inner.update_channel(id, c).await
    }
}

#[async_trait]
impl ReservationStore for FlakyStore {
    async fn create_reservation(&self, r: NewReservation) -> Result<Reservation> {
        self.inner.create_reservation(r).await
    }
    async fn reservation(&self, id: ReservationId) -> Result<Reservation> {
        self.inner.reservation(id).await
    }
    async fn reservation_by_slug(&self, slug: &str) -> Result<Reservation> {
        self.inner.reservation_by_slug(slug).await
    }
    async fn reservation_by_key(&self, key: &KeyHash) -> Result<Reservation> {
        self.inner.reservation_by_key(key).await
    }
    async fn program_stats(&self, id: ReservationId) -> Result<Option<ProgramStats>> {
        self.inner.program_stats(id).await
    }
    async fn set_pickup(&self, id: ReservationId, picked: bool, at: Timestamp) -> Result<()> {
        self.inner.set_pickup(id, picked, at).await
    }
    async fn pickups(&self) -> Result<Vec<ReservationId>> {
        self.inner.pickups().await
    }
    async fn reservations_of(&self, member: MemberId) -> Result<Vec<Reservation>> {
        self.inner.reservations_of(member).await
    }
    async fn transition(&self, cmd: TransitionCommand) -> Result<Reservation> {
        if self.fail_next_transition.swap(false, Ordering::SeqCst) {
            return Err(StorageError::Unavailable(
                "connection refused (injected by the test)".into(),
            ));
        }
        if *self.broken.lock().unwrap() == Some(cmd.reservation) {
            return Err(StorageError::Backend(
                format!(
                    "reservation {} is broken (injected by the test)",
                    cmd.reservation
                )
                .into(),
            ));
        }
        self.inner.transition(cmd).await
    }
    async fn transitions(&self, id: ReservationId) -> Result<Vec<TransitionRecord>> {
        self.inner.transitions(id).await
    }
    async fn charge(&self, id: ReservationId) -> Result<Option<Charge>> {
        self.inner.charge(id).await
    }
    async fn quota_used(&self, member: MemberId, month: MonthKey) -> Result<u32> {
        self.inner.quota_used(member, month).await
    }
    async fn due(
        &self,
        status: Status,
        due: DueField,
        now: Timestamp,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<Reservation>> {
        self.inner.due(status, due, now, limit, lease_ms).await
    }
    async fn any_due(&self, jobs: &[(Status, DueField)], now: Timestamp) -> Result<bool> {
        self.inner.any_due(jobs, now).await
    }
    async fn release_work(&self, id: ReservationId) -> Result<()> {
        self.inner.release_work(id).await
    }
    async fn mark_notice(
        &self,
        id: ReservationId,
        notice: Notice,
        at: Timestamp,
        outbox: Vec<NewMessage>,
    ) -> Result<bool> {
        self.inner.mark_notice(id, notice, at, outbox).await
    }
    async fn change_program(&self, cmd: ChangeCommand) -> Result<Reservation> {
        self.inner.change_program(cmd).await
    }
    async fn extend(&self, cmd: ExtendCommand) -> Result<Reservation> {
        self.inner.extend(cmd).await
    }
    async fn record_key_failure(
        &self,
        id: ReservationId,
        at: Timestamp,
        max_failures: u32,
        lock_ms: i64,
    ) -> Result<Reservation> {
        self.inner
            .record_key_failure(id, at, max_failures, lock_ms)
            .await
    }
    async fn claims_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Claim>> {
        self.inner.claims_between(from, to).await
    }
    async fn reservations_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Reservation>> {
        self.inner.reservations_between(from, to).await
    }
    async fn charges_between(
        &self,
        member: Option<MemberId>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ChargeLine>> {
        self.inner.charges_between(member, from, to).await
    }
    async fn waive_charge(
        &self,
        id: ReservationId,
        at: Timestamp,
        actor: Actor,
        reason: &str,
    ) -> Result<Charge> {
        self.inner.waive_charge(id, at, actor, reason).await
    }
}

#[async_trait]
impl OutboxStore for FlakyStore {
    async fn enqueue(&self, msgs: Vec<NewMessage>, at: Timestamp) -> Result<usize> {
        self.inner.enqueue(msgs, at).await
    }
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>> {
        self.inner.claim_due(now, lease_ms, limit).await
    }
    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<()> {
        self.inner.mark_sent(id, at).await
    }
    async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<Timestamp>) -> Result<()> {
        self.inner.mark_failed(id, error, retry_at).await
    }
    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.inner.outbox_counts().await
    }
    async fn outbox_messages(&self, state: MessageState, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.inner.outbox_messages(state, limit).await
    }
    async fn retry_message(&self, id: i64, at: Timestamp) -> Result<bool> {
        self.inner.retry_message(id, at).await
    }
}

#[async_trait]
impl ClusterStore for FlakyStore {
    async fn put_node(&self, name: &str, hash: &str, at: Timestamp) -> Result<()> {
        self.inner.put_node(name, hash, at).await
    }
    async fn node_credential(&self, name: &str) -> Result<String> {
        self.inner.node_credential(name).await
    }
    async fn renew_node(&self, hb: NodeHeartbeat<'_>, now: Timestamp, lease_ms: i64) -> Result<()> {
        self.inner.renew_node(hb, now, lease_ms).await
    }
    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.inner.nodes().await
    }
    async fn claim_placement(
        &self,
        channel: ChannelId,
        node: &str,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<Placement>> {
        self.inner
            .claim_placement(channel, node, now, lease_ms)
            .await
    }
    async fn placements(&self) -> Result<Vec<Placement>> {
        self.inner.placements().await
    }
    async fn take_seat(
        &self,
        channel: ChannelId,
        holder: &str,
        capacity: u32,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<u32>> {
        self.inner
            .take_seat(channel, holder, capacity, now, lease_ms)
            .await
    }
    async fn hold_seats(
        &self,
        channel: ChannelId,
        node: &str,
        holders: &[String],
        left: &[String],
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<()> {
        self.inner
            .hold_seats(channel, node, holders, left, now, lease_ms)
            .await
    }
    async fn seats_taken(&self, channel: ChannelId, now: Timestamp) -> Result<u32> {
        self.inner.seats_taken(channel, now).await
    }
    async fn put_node_totals(
        &self,
        id: ReservationId,
        node: &str,
        stats: &ProgramStats,
    ) -> Result<()> {
        self.inner.put_node_totals(id, node, stats).await
    }
    async fn node_totals(&self) -> Result<Vec<(ReservationId, ProgramStats)>> {
        self.inner.node_totals().await
    }
    async fn drop_node_totals(&self, id: ReservationId) -> Result<()> {
        self.inner.drop_node_totals(id).await
    }
    async fn open_outage(&self, id: ReservationId, node: &str, from: Timestamp) -> Result<()> {
        self.inner.open_outage(id, node, from).await
    }
    async fn close_outages(&self, id: ReservationId, at: Timestamp) -> Result<()> {
        self.inner.close_outages(id, at).await
    }
    async fn outages(&self, id: ReservationId) -> Result<Vec<Outage>> {
        self.inner.outages(id).await
    }
    async fn throttle_fail(
        &self,
        key: &str,
        now: Timestamp,
        reset_after_ms: i64,
        from: CountFrom,
    ) -> Result<ThrottleCount> {
        self.inner
            .throttle_fail(key, now, reset_after_ms, from)
            .await
    }
    async fn throttle_count(&self, key: &str) -> Result<Option<ThrottleCount>> {
        self.inner.throttle_count(key).await
    }
    async fn throttle_clear(&self, key: &str) -> Result<()> {
        self.inner.throttle_clear(key).await
    }
    async fn prune_throttles(&self, before: Timestamp) -> Result<u64> {
        self.inner.prune_throttles(before).await
    }
}

impl Wakeups for FlakyStore {}

#[async_trait]
impl Store for FlakyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

/// The center over a [`FlakyStore`] and a [`FakeNode`].
async fn app(b: Backend) -> Option<(App, Arc<FlakyStore>, Arc<FakeNode>)> {
    let db = Db::fresh(b).await?;
    let flaky = Arc::new(FlakyStore::new(db.store.clone()));
    let db = db.wrap(|_| flaky.clone());
    let node = Arc::new(FakeNode::default());
    let app = open_on(db, NOW, Policy::default(), None, node.clone()).await;
    Some((app, flaky, node))
}

/// Books `slots` slots on `small` at `start` and confirms them; returns the id.
async fn confirmed(app: &App, tok: &str, start: &str, slots: u32) -> i64 {
    let id = app
        .book_id(
            tok,
            json!({"channel": "small", "start": start, "slots": slots, "visibility": "public", "title": "Night show"}),
        )
        .await;
    let key = app.key_of(id).await;
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(tok),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    id
}

/// Moves a confirmed reservation to live, as the stream node's publish does.
async fn go_live(app: &App, id: i64, at: &str) {
    let r = app.store.reservation(ReservationId(id)).await.unwrap();
    let t = lifecycle::go_live(r.status, &r.schedule, ts(at)).unwrap();
    app.store
        .transition(TransitionCommand::from_transition(
            r.id,
            &t,
            ts(at),
            Actor::System,
            "publishing",
        ))
        .await
        .unwrap();
}

async fn readyz(app: &App) -> (StatusCode, Value) {
    let r = app.get("/readyz", None).await;
    (r.status, r.body)
}

fn completions(log: &[TransitionRecord]) -> usize {
    log.iter().filter(|t| t.to == Status::Completed).count()
}

async fn failed_completion_keeps_the_totals_until_stored(b: Backend) {
    let Some((app, flaky, node)) = app(b).await else {
        return;
    };
    let (tok, _) = app.member("ann@example.org", true).await;
    let id = confirmed(&app, &tok, "2026-06-02T12:00:00Z", 3).await;
    let rid = ReservationId(id);
    go_live(&app, id, "2026-06-02T11:56:00Z").await;
    node.finished(rid, TOTALS);
    let scheduler = Scheduler::new(app.center.clone());
    let backend = app.store.backend();
    assert_eq!(
        readyz(&app).await,
        (
            StatusCode::OK,
            json!({"status": "ready", "database": backend, "mail": "ok", "scheduler": "ok"})
        )
    );

    // The connect window closes; the completing transaction fails.
    app.set(ts("2026-06-02T12:33:00Z"));
    flaky.fail_next_transition.store(true, Ordering::SeqCst);
    let err = scheduler.tick().await.unwrap_err();
    assert!(
        matches!(err, TickError::Storage(StorageError::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(
        node.held(rid),
        Some(TOTALS),
        "the node still has the totals"
    );
    assert_eq!(node.acks(), [], "nothing acknowledged");
    let got = app
        .get(&format!("/api/v1/reservations/{id}"), Some(&tok))
        .await;
    assert_eq!(
        (&got.body["status"], &got.body["stats"]),
        (&json!("live"), &Value::Null)
    );
    assert!(app.mails(&format!("r{id}/summary")).await.is_empty());
    assert_eq!(
        readyz(&app).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "database": backend, "mail": "ok", "scheduler": "failing",
                "scheduler_failing_since": "2026-06-02T12:33:00Z", "scheduler_failed_ticks": 1})
        )
    );

    // The next tick completes it with the real figures, then acknowledges them.
    app.set(ts("2026-06-02T12:33:01Z"));
    assert_eq!(scheduler.tick().await.unwrap(), 1);
    let got = app
        .get(&format!("/api/v1/reservations/{id}"), Some(&tok))
        .await;
    assert_eq!(got.body["status"], "completed");
    assert_eq!(
        got.body["stats"],
        json!({"peak_viewers": 7, "unique_viewers": 52, "viewer_minutes": 2140,
            "bytes_out": 1_500_000_000u64, "seconds_on_air": 1800})
    );
    let summary = app.mails(&format!("r{id}/summary")).await;
    assert_eq!(summary.len(), 1);
    let text = &summary[0].message.text;
    for figure in ["7 (capacity 10)", "52", "2140", "1.5 GB"] {
        assert!(text.contains(figure), "{figure} in {text}");
    }
    assert_eq!(
        node.acks(),
        [rid],
        "acknowledged once, after the completion"
    );
    assert_eq!(node.held(rid), None);
    assert_eq!(completions(&app.store.transitions(rid).await.unwrap()), 1);
    assert_eq!(
        readyz(&app).await,
        (
            StatusCode::OK,
            json!({"status": "ready", "database": backend, "mail": "ok", "scheduler": "ok"})
        )
    );
    let report = app.center.scheduler.report();
    assert_eq!(
        (report.last_success, report.consecutive_failures),
        (Some(ts("2026-06-02T12:33:01Z")), 0)
    );
}

async fn a_failing_job_does_not_hold_up_the_others(b: Backend) {
    let Some((app, flaky, node)) = app(b).await else {
        return;
    };
    let (tok, _) = app.member("bo@example.org", true).await;
    let first = ReservationId(confirmed(&app, &tok, "2026-06-02T12:00:00Z", 1).await);
    let second = ReservationId(confirmed(&app, &tok, "2026-06-02T12:10:00Z", 1).await);
    node.finished(first, TOTALS);
    node.finished(second, TOTALS);
    *flaky.broken.lock().unwrap() = Some(first);
    let scheduler = Scheduler::new(app.center.clone());

    // Both are due; the first one's completion fails, the second is completed anyway.
    app.set(ts("2026-06-02T12:30:00Z"));
    let err = scheduler.tick().await.unwrap_err();
    match &err {
        TickError::Jobs { failed: 1, job, .. } => {
            assert_eq!(job, &format!("completion of reservation {first}"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("is broken"), "{err}");
    let status = |r: ReservationId| {
        let store = app.store.clone();
        async move { store.reservation(r).await.unwrap().status }
    };
    assert_eq!(status(first).await, Status::Confirmed);
    assert_eq!(status(second).await, Status::Completed);
    assert_eq!(node.acks(), [second]);
    assert_eq!(node.held(first), Some(TOTALS));
    assert_eq!(readyz(&app).await.1["scheduler"], "failing");

    // Repaired: the first follows, with its totals.
    *flaky.broken.lock().unwrap() = None;
    assert_eq!(scheduler.tick().await.unwrap(), 1);
    assert_eq!(status(first).await, Status::Completed);
    assert_eq!(node.acks(), [second, first]);
    assert_eq!(app.store.program_stats(first).await.unwrap(), Some(TOTALS));
    assert_eq!(readyz(&app).await.1["scheduler"], "ok");
}

/// The channel's only stream node stops renewing its lease during the program and no
/// other node takes the channel: the scheduler (role `center`) marks the program's outage
/// from the node's last renewal, and the completion waives the charge and tells the
/// broadcaster.
async fn a_program_whose_node_was_lost_is_not_charged(b: Backend) {
    let Some(db) = Db::fresh(b).await else {
        return;
    };
    let node = Arc::new(FakeNode::default());
    let app = open_custom(db, NOW, Policy::default(), None, node, |s| {
        s.node_lease = Some(slotcast_domain::jiff::SignedDuration::from_secs(10));
    })
    .await;
    let (tok, _) = app.member("ann@example.org", true).await;
    let id = confirmed(&app, &tok, "2026-06-02T12:00:00Z", 3).await;
    let rid = ReservationId(id);
    go_live(&app, id, "2026-06-02T11:56:00Z").await;
    let channel = app.store.reservation(rid).await.unwrap().channel;

    // The node held the program when it last renewed, at 12:01.
    let renewed = ts("2026-06-02T12:01:00Z");
    app.store.put_node("origin", "hash", renewed).await.unwrap();
    let report = slotcast_center::cluster::Report {
        live: vec![(
            rid,
            channel,
            slotcast_center::LiveView {
                on_air: true,
                publishing: true,
                ..Default::default()
            },
        )],
        ..Default::default()
    };
    renew_origin(&*app.store, &report, renewed, 10_000).await;
    app.store
        .claim_placement(channel, "origin", renewed, 10_000)
        .await
        .unwrap()
        .unwrap();
    let scheduler = Scheduler::new(app.center.clone());
    app.set(ts("2026-06-02T12:01:05Z"));
    scheduler.tick().await.unwrap();
    assert!(
        app.store.outages(rid).await.unwrap().is_empty(),
        "the lease holds"
    );

    app.set(ts("2026-06-02T12:01:30Z"));
    scheduler.tick().await.unwrap();
    scheduler.tick().await.unwrap();
    assert_eq!(
        app.store.outages(rid).await.unwrap(),
        vec![Outage {
            node: "origin".into(),
            from: renewed,
            to: None
        }],
        "one outage, from the last renewal"
    );

    // The connect window closes: 29 minutes of 30 were lost on the operator's side.
    app.set(ts("2026-06-02T12:33:00Z"));
    scheduler.tick().await.unwrap();
    let r = app.store.reservation(rid).await.unwrap();
    assert_eq!(r.status, Status::Completed);
    let charge = app.store.charge(rid).await.unwrap().unwrap();
    assert_eq!(charge.state, slotcast_domain::ChargeState::Waived);
    let summary = app
        .outbox()
        .await
        .into_iter()
        .find(|m| m.message.subject.starts_with("Program summary"))
        .expect("a summary");
    assert!(
        summary
            .message
            .text
            .contains("29 min 00 s of your window were lost on our side"),
        "{}",
        summary.message.text
    );
}

/// A replica's view of the nodes polls rarely here (every minute); a node's new report
/// reaches it within a few seconds only through the hint a heartbeat sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hint_refreshes_the_view_of_the_nodes_on_postgres() {
    use slotcast_center::StreamStats as _;
    use slotcast_center::cluster::{ClusterView, NODES_TOPIC, Report};
    let Some(db) = Db::fresh(Backend::Postgres).await else {
        return;
    };
    let store = db.store.clone();
    let channel = slotcast_testkit::fixtures::channel(&*store, "hinted", 10, 100).await;
    let clock = Arc::new(slotcast_testkit::ManualClock::new(ts(NOW)));
    let view = ClusterView::new(store.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(view.clone().run(
        clock.clone(),
        std::time::Duration::from_secs(60),
        async {
            let _ = stopped.await;
        },
    ));
    // The first refresh (and the LISTEN) happen at once; a moment for them.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(view.viewers(channel.id), 0);

    store.put_node("origin", "hash", ts(NOW)).await.unwrap();
    let report = Report {
        viewers: vec![(channel.id, 7)],
        ..Default::default()
    };
    renew_origin(&*store, &report, ts(NOW), 60_000).await;
    store.notify(NODES_TOPIC).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while view.viewers(channel.id) != 7 {
        assert!(
            std::time::Instant::now() < deadline,
            "the hint did not refresh the view"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    run.await.unwrap();
}

/// With hints to listen to, the mail sender polls only every few seconds; a message
/// queued between two polls goes out at once, woken by the hint its transaction sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_wakes_the_sender_on_postgres() {
    use slotcast_center::mail::{Sender, Transport};
    let Some(db) = Db::fresh(Backend::Postgres).await else {
        return;
    };
    let dir = slotcast_testkit::TempDir::new("woken");
    let clock = Arc::new(slotcast_testkit::ManualClock::new(ts(NOW)));
    let sender = Sender::new(
        db.store.clone(),
        clock.clone(),
        Transport::File {
            dir: dir.path().to_owned(),
        },
        "slotcast <noreply@example.org>",
    )
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(sender.run(async {
        let _ = stopped.await;
    }));
    // The first round and the LISTEN happen at once; the next poll is seconds away.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let message = NewMessage {
        dedupe_key: "woken".into(),
        to: slotcast_domain::EmailAddress::parse("a@example.org").unwrap(),
        subject: "woken".into(),
        text: "text".into(),
        html: None,
        ics: None,
        reservation: None,
    };
    db.store.enqueue(vec![message], ts(NOW)).await.unwrap();
    let queued = std::time::Instant::now();
    while std::fs::read_dir(dir.path()).unwrap().next().is_none() {
        assert!(
            queued.elapsed() < std::time::Duration::from_secs(2),
            "the message waited for the poll"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    run.await.unwrap();
}

/// Node "origin" renews its lease at `at` for `lease_ms` with `report`.
async fn renew_origin(
    store: &dyn Store,
    report: &slotcast_center::cluster::Report,
    at: slotcast_domain::Timestamp,
    lease_ms: i64,
) {
    let report = serde_json::to_string(report).unwrap();
    let node = NodeHeartbeat {
        name: "origin",
        play_url: "http://origin:8081",
        ingest_url: "rtmp://origin:1935/live",
        report: &report,
    };
    store.renew_node(node, at, lease_ms).await.unwrap();
}
