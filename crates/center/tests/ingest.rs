//! The publish decision the stream node asks of the center: the key of a confirmed
//! reservation, inside its connect window; the first publish makes it live. On SQLite and
//! PostgreSQL.

#[macro_use]
mod common;

use axum::http::StatusCode;
use common::{Backend, open};
use serde_json::json;
use slotcast_center::ops::jobs::{PublishRefused, go_live};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::{Policy, ReservationId, Status, Timestamp};

on_both!(only_a_confirmed_key_inside_its_window_publishes);

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn only_a_confirmed_key_inside_its_window_publishes(b: Backend) {
    let Some(app) = open(b, "2026-06-01T08:00:00Z", Policy::default()).await else {
        return;
    };
    let (tok, _) = app.member("pub@example.org", true).await;
    let book = |start: &str| json!({"channel": "small", "start": start, "slots": 2, "visibility": "public", "title": "Show"});
    let a = app.book_id(&tok, book("2026-06-02T12:00:00Z")).await;
    let expired = app.book_id(&tok, book("2026-06-01T16:00:00Z")).await;
    let cancelled = app.book_id(&tok, book("2026-06-02T14:00:00Z")).await;
    let (key_a, key_x, key_c) = (
        app.key_of(a).await,
        app.key_of(expired).await,
        app.key_of(cancelled).await,
    );
    let decide = |key: String| {
        let app = &app;
        async move { go_live(&*app.store, &*app.clock, &key).await }
    };
    let not_now = |r: Result<_, PublishRefused>| matches!(r, Err(PublishRefused::NotNow(_)));
    // Not confirmed yet: refused even in the window.
    app.set(ts("2026-06-02T11:56:00Z"));
    assert!(not_now(decide(key_a.clone()).await));
    app.set(ts("2026-06-01T09:00:00Z"));
    for (id, key) in [(a, &key_a), (cancelled, &key_c)] {
        let c = app
            .post(
                &format!("/api/v1/reservations/{id}/confirm"),
                Some(&tok),
                json!({"reservation_key": key}),
            )
            .await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    }
    let d = app
        .call(
            axum::http::Method::DELETE,
            &format!("/api/v1/reservations/{cancelled}"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    // Wrong keys, malformed or of nobody.
    assert_eq!(
        decide("not a key".into()).await.unwrap_err(),
        PublishRefused::UnknownKey
    );
    assert_eq!(
        decide("A".repeat(32)).await.unwrap_err(),
        PublishRefused::UnknownKey
    );
    // Before the window (start − 5 min), confirmed: refused.
    app.set(ts("2026-06-02T11:54:59Z"));
    assert!(not_now(decide(key_a.clone()).await));
    // The expired one (its deadline passed unconfirmed) and the cancelled one: refused.
    app.set(ts("2026-06-01T15:57:00Z"));
    app.tick().await;
    assert!(not_now(decide(key_x).await));
    app.set(ts("2026-06-02T13:57:00Z"));
    assert!(not_now(decide(key_c).await));
    // Inside the window: accepted, and the reservation is live; a reconnect too.
    app.set(ts("2026-06-02T11:55:00Z"));
    let r = decide(key_a.clone()).await.expect("publishes");
    assert_eq!((r.id, r.status), (ReservationId(a), Status::Live));
    app.set(ts("2026-06-02T12:19:00Z"));
    assert_eq!(decide(key_a.clone()).await.unwrap().status, Status::Live);
    // After the window (end + 3 min): refused.
    app.set(ts("2026-06-02T12:20:00Z") + SignedDuration::from_mins(3));
    assert!(not_now(decide(key_a).await));
}
