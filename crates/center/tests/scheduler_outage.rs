//! The scheduler through a real PostgreSQL outage: a private server (never the shared one
//! other tests use) is stopped for 20 s while the scheduler runs on a short tick and the
//! clock passes confirm deadlines, reminders and completions. Meanwhile `/readyz` says the
//! database is unreachable and the scheduler failing; afterwards every expiry and
//! completion happened exactly once and no e-mail was queued twice.
//!
//! Its own test binary: the scheduler metrics are process-wide.

mod common;

use axum::http::StatusCode;
use common::{App, Db, FakeNode, open_on};
use serde_json::{Value, json};
use slotcast_center::Scheduler;
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Clock, Policy, ProgramStats, ReservationId, Status, Timestamp};
use slotcast_testkit::pg::PgCluster;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NOW: &str = "2026-06-01T08:00:00Z";
const OUTAGE: Duration = Duration::from_secs(20);

const TOTALS: ProgramStats = ProgramStats {
    peak_viewers: 9,
    unique_viewers: 31,
    viewer_minutes: 905,
    bytes_out: 2_500_000_000,
    seconds_on_air: 600,
    curve: slotcast_domain::ViewerCurve {
        step_seconds: 0,
        points: Vec::new(),
    },
};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn book(app: &App, tok: &str, channel: &str, start: &str, slots: u32) -> ReservationId {
    ReservationId(
        app.book_id(
            tok,
            json!({"channel": channel, "start": start, "slots": slots, "visibility": "public", "title": "Show"}),
        )
        .await,
    )
}

async fn confirm(app: &App, tok: &str, id: ReservationId) {
    let key = app.key_of(id.0).await;
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(tok),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
}

async fn readyz(app: &App) -> (StatusCode, Value) {
    let r = app.get("/readyz", None).await;
    (r.status, r.body)
}

/// The value of an unlabelled metric on `/metrics`.
async fn metric(app: &App, name: &str) -> Option<f64> {
    let page = app.get("/metrics", None).await.text;
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn status(app: &App, id: ReservationId) -> Status {
    app.store.reservation(id).await.unwrap().status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_survives_a_postgres_outage() {
    let Some(cluster) = tokio::task::spawn_blocking(PgCluster::create)
        .await
        .unwrap()
    else {
        return;
    };
    let store = slotcast_store_postgres::PgStore::open(&cluster.url)
        .await
        .unwrap();
    let node = Arc::new(FakeNode::default());
    let app = open_on(
        Db::of(Arc::new(store)),
        NOW,
        Policy::default(),
        None,
        node.clone(),
    )
    .await;
    let (tok, _) = app.member("ann@example.org", true).await;
    // Unconfirmed: reminders at 09:00 and 10:00, expiry at 10:00 and 11:00.
    let expiring = [
        book(&app, &tok, "small", "2026-06-01T16:00:00Z", 1).await,
        book(&app, &tok, "medium", "2026-06-01T17:00:00Z", 2).await,
    ];
    // Confirmed: start reminders, extension offers, completions at 15:13 and 15:53.
    let completing = [
        book(&app, &tok, "small", "2026-06-01T15:00:00Z", 1).await,
        book(&app, &tok, "medium", "2026-06-01T15:30:00Z", 2).await,
    ];
    // Confirmed for tomorrow: nothing is due for it.
    let later = book(&app, &tok, "small", "2026-06-02T10:00:00Z", 1).await;
    for id in [completing[0], completing[1], later] {
        confirm(&app, &tok, id).await;
    }
    node.finished(completing[0], TOTALS);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = tokio::spawn(Scheduler::new(app.center.clone()).run(
        Duration::from_millis(150),
        async {
            let _ = stopped.await;
        },
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
    assert_eq!(metric(&app, "slotcast_scheduler_healthy").await, Some(1.0));

    // The outage: the clock sweeps from 08:00 to 17:00 while the database is down.
    tokio::task::block_in_place(|| cluster.stop());
    let down = Instant::now();
    let clock = app.clock.clone();
    let sweep = tokio::spawn(async move {
        let end = ts("2026-06-01T17:00:00Z");
        while clock.now() < end {
            tokio::time::sleep(Duration::from_millis(450)).await;
            clock.advance(SignedDuration::from_mins(15));
        }
    });
    let mut saw_failing = None;
    while down.elapsed() < OUTAGE {
        let (code, body) = readyz(&app).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["database"], "unreachable", "{body}");
        if body["scheduler"] == "failing" && saw_failing.is_none() {
            assert!(body["scheduler_failing_since"].is_string(), "{body}");
            let failures = metric(&app, "slotcast_scheduler_tick_failures_total").await;
            assert!(failures.is_some_and(|n| n >= 1.0), "{failures:?}");
            assert_eq!(metric(&app, "slotcast_scheduler_healthy").await, Some(0.0));
            saw_failing = Some(body);
        }
        // Each answer takes the probe's database timeout (3 s): ask again at once.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sweep.await.unwrap();
    assert_eq!(app.now(), ts("2026-06-01T17:00:00Z"));
    tokio::task::block_in_place(|| cluster.start());
    let saw_failing = saw_failing.expect("/readyz named the scheduler failing during the outage");
    assert!(
        saw_failing["scheduler_failed_ticks"].as_u64() >= Some(1),
        "{saw_failing}"
    );

    // The scheduler catches up on its own.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (code, body) = readyz(&app).await;
        let mut done = code == StatusCode::OK;
        for id in expiring {
            done &= status(&app, id).await == Status::Expired;
        }
        for id in completing {
            done &= status(&app, id).await == Status::Completed;
        }
        if done {
            assert_eq!(body["scheduler"], "ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up: {body}; server log:\n{}",
            cluster.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more ticks must change nothing.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), scheduler)
        .await
        .expect("the scheduler stops")
        .unwrap();
    assert_eq!(metric(&app, "slotcast_scheduler_healthy").await, Some(1.0));

    // Every expiry and completion exactly once.
    let ends = |id: ReservationId| {
        let store = app.store.clone();
        async move {
            store
                .transitions(id)
                .await
                .unwrap()
                .iter()
                .map(|t| t.to)
                .collect::<Vec<_>>()
        }
    };
    for id in expiring {
        assert_eq!(
            ends(id).await,
            [Status::AwaitingConfirmation, Status::Expired],
            "{id}"
        );
    }
    for id in completing {
        assert_eq!(
            ends(id).await,
            [
                Status::AwaitingConfirmation,
                Status::Confirmed,
                Status::Completed
            ],
            "{id}"
        );
    }
    assert_eq!(
        ends(later).await,
        [Status::AwaitingConfirmation, Status::Confirmed]
    );

    // No e-mail twice: at most one of each kind per reservation, exactly one end notice.
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for m in app.outbox().await {
        let mut parts = m.message.dedupe_key.splitn(3, '/');
        let (r, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        *kinds.entry((r.to_owned(), kind.to_owned())).or_default() += 1;
    }
    for ((r, kind), n) in &kinds {
        assert_eq!(*n, 1, "{kind} e-mails of {r}: {kinds:?}");
    }
    for id in expiring {
        assert!(
            kinds.contains_key(&(format!("r{id}"), "expired".into())),
            "{kinds:?}"
        );
    }
    for id in completing {
        assert!(
            kinds.contains_key(&(format!("r{id}"), "summary".into())),
            "{kinds:?}"
        );
    }
    let summary = app.mails(&format!("r{}/summary", completing[0])).await;
    for figure in ["9 (capacity 10)", "31", "905", "2.5 GB"] {
        assert!(summary[0].message.text.contains(figure), "{figure}");
    }
    assert_eq!(
        app.store.program_stats(completing[0]).await.unwrap(),
        Some(TOTALS)
    );
    assert_eq!(node.held(completing[0]), None, "acknowledged");
    let mut acks = node.acks();
    acks.sort();
    let mut want = completing.to_vec();
    want.sort();
    assert_eq!(acks, want, "each completion acknowledged once");
}
