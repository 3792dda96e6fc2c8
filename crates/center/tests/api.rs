//! The REST API end to end, in process, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use common::{App, Backend, open};
use serde_json::{Value, json};
use slotcast_domain::jiff::SignedDuration;
use slotcast_domain::jiff::tz::TimeZone;
use slotcast_domain::lifecycle;
use slotcast_domain::{Policy, ReservationId, Status, Timestamp};
use slotcast_store::{Actor, TransitionCommand};

on_both!(
    full_lifecycle_book_remind_confirm_live_complete,
    unconfirmed_booking_expires_exactly_at_the_deadline,
    late_booking_gets_a_short_grace,
    quota_follows_the_zone_across_dst,
    extension_is_offered_only_when_the_next_slot_is_free,
    members_touch_only_their_own_reservations,
    bad_input_gets_the_error_shape_and_writes_nothing,
    secret_programs_appear_in_no_listing,
    play_checks_passwords_and_signs_tokens,
    change_and_cancel_notify_invitees,
    accounts_throttle_and_keep_no_card_number,
    operators_manage_channels_and_export_billing,
    every_response_has_server_time_and_openapi_lists_the_routes,
    wrong_keys_are_counted_and_lock_confirmation,
    profiles_in_clear_only_over_loopback_or_tls,
    time_reports_ntp_and_its_offset,
    quote_previews_fee_deadline_and_availability,
    shared_answers_follow_bookings_time_and_names,
    kept_sessions_end_at_once_here_and_within_a_second_elsewhere,
);

const NOW: &str = "2026-06-01T08:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

async fn app(b: Backend) -> Option<App> {
    open(b, NOW, Policy::default()).await
}

fn booking(start: &str, slots: u32) -> Value {
    json!({"channel": "small", "start": start, "slots": slots, "visibility": "public", "title": "Morning show", "outline": "Coffee and news"})
}

fn at(v: &Value, k: &str) -> Timestamp {
    ts(v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")))
}

async fn full_lifecycle_book_remind_confirm_live_complete(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("ann@example.org", true).await;
    let r = app
        .book(&tok, json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 3, "visibility": "password",
            "title": "Jazz night", "viewer_password": "let-me-in", "invitees": ["bo@example.org", "cy@example.org"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "awaiting_confirmation");
    assert_eq!(r.body["fee"], json!({"amount": "300", "currency": "JPY"}));
    assert_eq!(r.body["confirm_by"], "2026-06-02T06:00:00Z");
    assert_eq!(
        r.body["connect_window"],
        json!({"from": "2026-06-02T11:55:00Z", "to": "2026-06-02T12:33:00Z"})
    );
    assert!(
        r.body.get("reservation_key").is_none() && !r.text.contains("key\":"),
        "the key is never returned"
    );
    let id = r.body["id"].as_i64().unwrap();
    let key = app.key_of(id).await;
    let me = app.get("/api/v1/members/me", Some(&tok)).await;
    assert_eq!(
        me.body["quota"],
        json!({"month": "2026-06", "used_slots": 3, "max_slots": 30})
    );

    // The confirmation reminder, once, an hour before the deadline.
    app.set(ts("2026-06-02T04:59:59Z"));
    app.tick().await;
    assert!(
        app.mails(&format!("r{id}/confirm-reminder"))
            .await
            .is_empty()
    );
    app.set(ts("2026-06-02T05:00:00Z"));
    app.tick().await;
    app.tick().await;
    assert_eq!(app.mails(&format!("r{id}/confirm-reminder")).await.len(), 1);

    // Confirm with the key, profile encrypted for a device key.
    let device = age::x25519::Identity::generate();
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key, "device_public_key": device.to_public().to_string()}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["status"], "confirmed");
    assert!(
        c.body["server_time"]
            .as_str()
            .unwrap()
            .starts_with("2026-06-02T05:00:00")
    );
    let armored = c.body["profile"].as_str().unwrap();
    assert!(!armored.contains(&key));
    let p = slotcast_center::profile::decrypt(armored, &device).unwrap();
    assert_eq!(p.reservation_key, key);
    assert_eq!(p.ingest[0].url, "rtmp://tv.example.org:1935/live");
    let invitations = app.mails(&format!("r{id}/invitation/")).await;
    assert_eq!(invitations.len(), 2);
    for m in &invitations {
        assert!(m.message.text.contains("let-me-in"), "password in the body");
        let ics = m.message.ics.as_deref().unwrap();
        assert!(
            ics.contains("METHOD:REQUEST") && !ics.contains("let-me-in"),
            "no password in the .ics"
        );
    }
    let inv = app
        .get("/api/v1/members/me/invoices?month=2026-06", Some(&tok))
        .await;
    assert_eq!(
        inv.body["total_pending"],
        json!([{"amount": "300", "currency": "JPY"}])
    );
    assert_eq!(inv.body["lines"][0]["state"], "pending");

    // Start reminder ten minutes before; live (the stream node's transition); completion.
    app.set(ts("2026-06-02T11:50:00Z"));
    app.tick().await;
    assert_eq!(app.mails(&format!("r{id}/start-reminder")).await.len(), 1);
    let stored = app.store.reservation(ReservationId(id)).await.unwrap();
    let t =
        lifecycle::go_live(stored.status, &stored.schedule, ts("2026-06-02T11:56:00Z")).unwrap();
    app.store
        .transition(TransitionCommand::from_transition(
            stored.id,
            &t,
            ts("2026-06-02T11:56:00Z"),
            Actor::System,
            "publishing",
        ))
        .await
        .unwrap();
    app.set(ts("2026-06-02T12:32:59Z"));
    app.tick().await;
    assert_eq!(
        app.store
            .reservation(ReservationId(id))
            .await
            .unwrap()
            .status,
        Status::Live
    );
    app.set(ts("2026-06-02T12:33:00Z"));
    app.tick().await;
    let got = app
        .get(&format!("/api/v1/reservations/{id}"), Some(&tok))
        .await;
    assert_eq!(got.body["status"], "completed");
    let log: Vec<&str> = got.body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        log,
        ["awaiting_confirmation", "confirmed", "live", "completed"]
    );
    assert_eq!(app.mails(&format!("r{id}/summary")).await.len(), 1);
    let inv = app
        .get("/api/v1/members/me/invoices?month=2026-06", Some(&tok))
        .await;
    assert_eq!(
        inv.body["total_due"],
        json!([{"amount": "300", "currency": "JPY"}])
    );
    assert_eq!(inv.body["total_pending"], json!([]));
}

async fn unconfirmed_booking_expires_exactly_at_the_deadline(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("ed@example.org", true).await;
    let (other, _) = app.member("fi@example.org", true).await;
    let r = app.book(&tok, booking("2026-06-03T10:00:00Z", 2)).await;
    let id = r.body["id"].as_i64().unwrap();
    let deadline = at(&r.body, "confirm_by");
    app.set(deadline - SignedDuration::from_millis(1));
    app.tick().await;
    assert_eq!(
        app.get(&format!("/api/v1/reservations/{id}"), Some(&tok))
            .await
            .body["status"],
        "awaiting_confirmation"
    );
    assert_eq!(
        app.book(&other, booking("2026-06-03T10:10:00Z", 1))
            .await
            .code(),
        "slot_taken"
    );
    app.set(deadline);
    app.tick().await;
    assert_eq!(
        app.get(&format!("/api/v1/reservations/{id}"), Some(&tok))
            .await
            .body["status"],
        "expired"
    );
    assert_eq!(app.mails(&format!("r{id}/expired")).await.len(), 1);
    let key = app.key_of(id).await;
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!((c.status, c.code()), (StatusCode::CONFLICT, "wrong_state"));
    let avail = app.get("/api/v1/availability?date=2026-06-03", None).await;
    let slot = avail.body["channels"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"] == "2026-06-03T10:10:00Z")
        .unwrap()
        .clone();
    assert_eq!(slot["state"], "free");
    assert_eq!(
        app.book(&other, booking("2026-06-03T10:10:00Z", 1))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.get("/api/v1/members/me", Some(&tok)).await.body["quota"]["used_slots"],
        0
    );
}

async fn late_booking_gets_a_short_grace(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("late@example.org", true).await;
    // Two hours ahead: the regular deadline (start − 6 h) has passed, so 15 minutes grace.
    let r = app.book(&tok, booking("2026-06-01T10:00:00Z", 1)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["confirm_by"], "2026-06-01T08:15:00Z");
    // Four minutes before the connect window: the grace ends when the window opens.
    app.set(ts("2026-06-01T09:51:00Z"));
    let r2 = app.book(&tok, booking("2026-06-01T10:00:00Z", 1)).await;
    assert_eq!(r2.code(), "slot_taken");
    let r3 = app
        .book(
            &tok,
            booking("2026-06-01T10:00:00Z", 1)
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("channel".into(), json!("medium"));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await;
    assert_eq!(r3.body["confirm_by"], "2026-06-01T09:55:00Z", "{}", r3.text);
    app.set(ts("2026-06-01T09:56:00Z"));
    let too_late = app
        .book(
            &tok,
            booking("2026-06-01T10:00:00Z", 1)
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("channel".into(), json!("medium"));
                    o.insert("start".into(), json!("2026-06-01T10:00:00Z"));
                    Value::Object(o)
                })
                .unwrap(),
        )
        .await;
    assert_eq!(too_late.status, StatusCode::UNPROCESSABLE_ENTITY);
    let id = r.body["id"].as_i64().unwrap();
    app.set(ts("2026-06-01T08:15:00Z"));
    let key = app.key_of(id).await;
    let c = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!(c.code(), "deadline_passed");
}

async fn quota_follows_the_zone_across_dst(b: Backend) {
    let policy = Policy {
        quota_slots_per_month: 4,
        time_zone: TimeZone::get("Europe/Berlin").unwrap(),
        ..Policy::default()
    };
    let Some(app) = open(b, "2026-03-20T08:00:00Z", policy).await else {
        return;
    };
    let (tok, _) = app.member("q@example.org", true).await;
    // 21:40–22:20 UTC on 31 March is 23:40–00:20 in Berlin (CEST, after the 29 March change):
    // two slots count in March, two in April.
    assert_eq!(
        app.book(&tok, booking("2026-03-31T21:40:00Z", 4))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.book(&tok, booking("2026-03-25T10:00:00Z", 2))
            .await
            .status,
        StatusCode::CREATED
    );
    let over = app.book(&tok, booking("2026-03-26T10:00:00Z", 1)).await;
    assert_eq!(
        (over.status, over.code()),
        (StatusCode::CONFLICT, "quota_exceeded")
    );
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 of 4 already used, 0 left"),
        "{}",
        over.text
    );
    assert_eq!(
        app.book(&tok, booking("2026-04-02T10:00:00Z", 2))
            .await
            .status,
        StatusCode::CREATED
    );
    let me = app.get("/api/v1/members/me", Some(&tok)).await;
    assert_eq!(
        me.body["quota"],
        json!({"month": "2026-03", "used_slots": 4, "max_slots": 4})
    );
    let avail = app.get("/api/v1/availability?date=2026-03-29", None).await;
    assert_eq!(avail.body["time_zone"], "Europe/Berlin");
    assert_eq!(
        avail.body["channels"][0]["slots"].as_array().unwrap().len(),
        23 * 6,
        "the DST day has 23 hours"
    );
}

async fn extension_is_offered_only_when_the_next_slot_is_free(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("x@example.org", true).await;
    let (other, _) = app.member("y@example.org", true).await;
    let confirm = |id: i64, tok: String| {
        let app = &app;
        async move {
            let c = app.confirm(&tok, id).await;
            assert_eq!(c.status, StatusCode::OK, "{}", c.text);
        }
    };
    let a = app.book_id(&tok, booking("2026-06-02T12:00:00Z", 3)).await;
    let o1 = app
        .book_id(&other, booking("2026-06-02T12:40:00Z", 1))
        .await;
    let c = app.book_id(&tok, booking("2026-06-02T14:00:00Z", 1)).await;
    let o2 = app
        .book_id(&other, booking("2026-06-02T14:10:00Z", 1))
        .await;
    for (id, t) in [(a, &tok), (o1, &other), (c, &tok), (o2, &other)] {
        confirm(id, t.clone()).await;
    }
    let early = app
        .post(
            &format!("/api/v1/reservations/{a}/extend"),
            Some(&tok),
            json!({"slots": 1}),
        )
        .await;
    assert_eq!(early.code(), "not_offered");
    app.set(ts("2026-06-02T12:20:00Z"));
    app.tick().await;
    let offers = app.mails(&format!("r{a}/extension-offer")).await;
    assert_eq!(offers.len(), 1);
    assert!(
        offers[0].message.text.contains('1'),
        "offers one slot: {}",
        offers[0].message.text
    );
    // Found by schemathesis: a count past the slot range's end was a 500.
    let huge = app
        .post(
            &format!("/api/v1/reservations/{a}/extend"),
            Some(&tok),
            json!({"slots": u32::MAX}),
        )
        .await;
    assert_eq!(
        huge.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        huge.text
    );
    assert!(
        huge.body["error"]["fields"]["slots"].is_string(),
        "{}",
        huge.text
    );
    let e = app
        .post(
            &format!("/api/v1/reservations/{a}/extend"),
            Some(&tok),
            json!({"slots": 1}),
        )
        .await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text);
    assert_eq!(
        (e.body["end"].as_str(), e.body["slots"].as_u64()),
        (Some("2026-06-02T12:40:00Z"), Some(4))
    );
    assert_eq!(e.body["fee"]["amount"], "400");
    let more = app
        .post(
            &format!("/api/v1/reservations/{a}/extend"),
            Some(&tok),
            json!({"slots": 1}),
        )
        .await;
    assert_eq!(
        more.code(),
        "not_offered",
        "the offer moves with the new end"
    );
    app.set(ts("2026-06-02T12:30:00Z"));
    let more = app
        .post(
            &format!("/api/v1/reservations/{a}/extend"),
            Some(&tok),
            json!({"slots": 1}),
        )
        .await;
    assert_eq!(more.code(), "slot_taken");
    // The 14:00 program's next slot is taken: no offer is sent.
    app.set(ts("2026-06-02T14:00:00Z"));
    app.tick().await;
    assert!(app.mails(&format!("r{c}/extension-offer")).await.is_empty());
}

async fn members_touch_only_their_own_reservations(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (a, _) = app.member("a@example.org", true).await;
    let (bb, _) = app.member("b@example.org", true).await;
    let (g, _) = app.member("g@example.org", false).await;
    let id = app.book_id(&a, booking("2026-06-02T12:00:00Z", 1)).await;
    let key = app.key_of(id).await;
    let p = format!("/api/v1/reservations/{id}");
    for (m, path, body) in [
        (Method::GET, p.clone(), None),
        (Method::PATCH, p.clone(), Some(json!({"title": "mine now"}))),
        (Method::DELETE, p.clone(), None),
        (
            Method::POST,
            format!("{p}/confirm"),
            Some(json!({"reservation_key": key})),
        ),
        (
            Method::POST,
            format!("{p}/profile"),
            Some(json!({"reservation_key": key, "device_public_key": "age1x"})),
        ),
        (
            Method::POST,
            format!("{p}/extend"),
            Some(json!({"slots": 1})),
        ),
    ] {
        let r = app.call(m.clone(), &path, Some(&bb), body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{m} {path}: {}",
            r.text
        );
        let anon = app.call(m.clone(), &path, None, body).await;
        assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{m} {path}");
    }
    assert!(
        app.get("/api/v1/reservations", Some(&bb))
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    let general = app.book(&g, booking("2026-06-02T13:00:00Z", 1)).await;
    assert_eq!(
        (general.status, general.code()),
        (StatusCode::FORBIDDEN, "premium_required")
    );
    for path in [
        "/api/v1/members/me",
        "/api/v1/reservations",
        "/api/v1/members/me/invoices",
    ] {
        assert_eq!(
            app.get(path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            app.get(path, Some("not-a-token")).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(app.get(&p, Some(&a)).await.status, StatusCode::OK);
    // The owner's reservation is untouched.
    assert_eq!(
        app.get(&p, Some(&a)).await.body["status"],
        "awaiting_confirmation"
    );
}

async fn bad_input_gets_the_error_shape_and_writes_nothing(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, id) = app.member("bad@example.org", true).await;
    let before = app.store.outbox_counts().await.unwrap();
    let r = app
        .raw(
            Method::POST,
            "/api/v1/reservations",
            Some(&tok),
            Some("application/json"),
            b"{\"channel\": ".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let r = app
        .raw(
            Method::POST,
            "/api/v1/reservations",
            Some(&tok),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app.post("/api/v1/reservations", Some(&tok), json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": "three", "visibility": "public", "title": "x"})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields")
    );
    assert!(r.field("slots").contains("invalid type"), "{}", r.text);
    let r = app
        .post(
            "/api/v1/reservations",
            Some(&tok),
            json!({"channel": "small"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let huge = vec![b' '; 200 * 1024];
    let r = app
        .raw(
            Method::POST,
            "/api/v1/reservations",
            Some(&tok),
            Some("application/json"),
            huge,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    let cases = [
        (
            json!({"start": "2026-06-02T12:05:00Z"}),
            "start",
            "10-minute boundary",
        ),
        (
            json!({"start": "2026-05-02T12:00:00Z"}),
            "start",
            "in the future",
        ),
        (json!({"start": "noon"}), "start", "RFC 3339"),
        (json!({"channel": "nope"}), "channel", "no such channel"),
        (json!({"channel": 424242}), "channel", "no such channel"),
        (json!({"slots": 0}), "slots", "between 1 and 36"),
        (json!({"title": "t".repeat(61)}), "title", "too long"),
        (
            json!({"visibility": "hidden"}),
            "visibility",
            "public, password or secret",
        ),
        (
            json!({"visibility": "password"}),
            "viewer_password",
            "required",
        ),
        (
            json!({"invitees": ["ok@example.org", "not an address"]}),
            "invitees[1]",
            "@",
        ),
        (
            json!({"invitees": (0..51).map(|i| format!("p{i}@example.org")).collect::<Vec<_>>()}),
            "invitees",
            "at most 50",
        ),
        (json!({"web_url": "javascript:alert(1)"}), "web_url", "http"),
    ];
    for (patch, field, msg) in cases {
        let mut body = booking("2026-06-02T12:00:00Z", 1);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.book(&tok, body).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
            "{field}: {}",
            r.text
        );
        assert!(r.field(field).contains(msg), "{field}: {}", r.text);
    }
    let r = app
        .post(
            "/api/v1/members",
            None,
            json!({"email": "no", "password": "short", "display_name": "", "tier": "gold"}),
        )
        .await;
    for f in ["email", "password", "display_name", "tier"] {
        assert!(!r.field(f).is_empty(), "{f}: {}", r.text);
    }
    let r = app.post("/api/v1/members", None, json!({"email": "p@example.org", "password": "a long enough password", "display_name": "P", "tier": "premium", "payment": {"card_number": "4242424242424241", "exp_month": 1, "exp_year": 2020, "holder": "P"}})).await;
    assert!(
        r.field("payment.card_number").contains("check digit")
            && r.field("payment.exp_year").contains("expired"),
        "{}",
        r.text
    );
    assert!(
        app.get("/api/v1/availability?date=tomorrow", None)
            .await
            .field("date")
            .contains("2026-06-10")
    );
    assert_eq!(
        app.get("/api/v1/reservations/abc", Some(&tok)).await.status,
        StatusCode::NOT_FOUND
    );
    // Nothing was written by any of it.
    assert!(
        app.store
            .reservations_of(slotcast_domain::MemberId(id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.store.outbox_counts().await.unwrap(), before);
    assert!(
        app.store
            .member_by_email(&slotcast_domain::EmailAddress::parse("p@example.org").unwrap())
            .await
            .is_err()
    );
}

async fn secret_programs_appear_in_no_listing(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("s@example.org", true).await;
    let mut ids = Vec::new();
    for (vis, title, start) in [
        ("public", "Open day", "2026-06-02T10:00:00Z"),
        ("password", "Club night", "2026-06-02T11:00:00Z"),
        ("secret", "Hidden gem", "2026-06-02T12:00:00Z"),
    ] {
        let mut body = json!({"channel": "small", "start": start, "slots": 1, "visibility": vis, "title": title});
        if vis != "public" {
            body["viewer_password"] = json!("pass-word-1");
        }
        let r = app.book(&tok, body).await;
        let id = r.body["id"].as_i64().unwrap();
        let key = app.key_of(id).await;
        app.post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key}),
        )
        .await;
        ids.push((id, r.body["slug"].as_str().unwrap().to_owned()));
    }
    let secret_slug = &ids[2].1;
    let listings = [
        app.get("/api/v1/programs?date=2026-06-02", None).await,
        app.get("/api/v1/availability?date=2026-06-02", None).await,
        app.get("/api/v1/guide.ics", None).await,
        app.get("/api/v1/programs", None).await,
    ];
    for l in &listings {
        assert_eq!(l.status, StatusCode::OK);
        assert!(
            !l.text.contains("Hidden gem") && !l.text.contains(secret_slug.as_str()),
            "secret leaked: {}",
            l.text
        );
    }
    let programs = listings[0].body.as_array().unwrap();
    assert_eq!(programs.len(), 2, "counts include only listed programs");
    assert!(listings[1].text.contains("Open day") && listings[1].text.contains("Club night"));
    assert!(listings[2].text.contains("Open day") && !listings[2].text.contains("pass-word-1"));
    let one = app
        .get(&format!("/api/v1/programs/{secret_slug}"), None)
        .await;
    assert_eq!(
        (one.status, one.body["title"].as_str()),
        (StatusCode::OK, Some("Hidden gem"))
    );
    assert_eq!(
        app.get("/api/v1/programs/not-a-slug", None).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn play_checks_passwords_and_signs_tokens(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("p@example.org", true).await;
    let r = app.book(&tok, json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 2, "visibility": "password", "title": "Locked", "viewer_password": "open-sesame"})).await;
    let (id, slug) = (
        r.body["id"].as_i64().unwrap(),
        r.body["slug"].as_str().unwrap().to_owned(),
    );
    let play = format!("/api/v1/programs/{slug}/play");
    assert_eq!(
        app.post(&play, None, json!({})).await.status,
        StatusCode::NOT_FOUND,
        "unconfirmed programs are not public yet"
    );
    let key = app.key_of(id).await;
    app.post(
        &format!("/api/v1/reservations/{id}/confirm"),
        Some(&tok),
        json!({"reservation_key": key}),
    )
    .await;
    assert_eq!(
        app.post(&play, None, json!({"password": "open-sesame"}))
            .await
            .code(),
        "not_on_air"
    );
    app.set(ts("2026-06-02T12:05:00Z"));
    assert_eq!(
        app.post(&play, None, json!({})).await.code(),
        "password_required"
    );
    assert_eq!(
        app.post(&play, None, json!({"password": "open-sesamE"}))
            .await
            .code(),
        "wrong_password"
    );
    let ok = app
        .post(&play, None, json!({"password": "open-sesame"}))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let token = ok.body["token"].as_str().unwrap();
    let claims =
        slotcast_domain::token::verify(&app.center.secrets.play_public_key(), token, app.now())
            .unwrap();
    assert_eq!(claims.reservation, ReservationId(id));
    assert_eq!(claims.kind, slotcast_domain::token::PlayKind::Live);
    assert_eq!(claims.program_end, ts("2026-06-02T12:20:00Z"));
    assert_eq!(ok.body["kind"], "live");
    assert!(
        ok.body["urls"]["flv"]
            .as_str()
            .unwrap()
            .starts_with("http://tv.example.org/live/small.flv?token=")
    );
    assert!(
        slotcast_domain::token::verify(
            &app.center.secrets.play_public_key(),
            token,
            app.now() + SignedDuration::from_mins(6)
        )
        .is_err()
    );
    // The owner plays without the password.
    assert_eq!(
        app.post(&play, Some(&tok), json!({})).await.status,
        StatusCode::OK
    );
    app.set(ts("2026-06-02T12:20:00Z"));
    assert_eq!(
        app.post(&play, None, json!({"password": "open-sesame"}))
            .await
            .code(),
        "ended"
    );
}

async fn change_and_cancel_notify_invitees(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("c@example.org", true).await;
    let r = app.book(&tok, json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 1, "visibility": "secret", "title": "Quiet", "viewer_password": "hush-hush", "invitees": ["i1@example.org", "i2@example.org"]})).await;
    let id = r.body["id"].as_i64().unwrap();
    let p = format!("/api/v1/reservations/{id}");
    // Before confirmation the invitees know nothing, so a change tells nobody.
    let ch = app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"outline": "Soft"})),
        )
        .await;
    assert_eq!(ch.status, StatusCode::OK, "{}", ch.text);
    assert!(app.mails(&format!("r{id}/change/")).await.is_empty());
    let key = app.key_of(id).await;
    app.post(
        &format!("{p}/confirm"),
        Some(&tok),
        json!({"reservation_key": key}),
    )
    .await;
    let refused = app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"start": "2026-06-02T13:00:00Z", "slots": 2})),
        )
        .await;
    assert_eq!(
        refused.field("start"),
        "cannot be changed; cancel and book again"
    );
    let ch = app
        .call(
            Method::PATCH,
            &p,
            Some(&tok),
            Some(json!({"title": "Quieter", "invitees": ["i1@example.org", "i3@example.org"]})),
        )
        .await;
    assert_eq!(ch.body["title"], "Quieter");
    let changes = app.mails(&format!("r{id}/change/")).await;
    let to: Vec<String> = changes.iter().map(|m| m.message.to.to_string()).collect();
    assert_eq!(
        to,
        ["i1@example.org"],
        "one change e-mail per invitee who knew of the program"
    );
    let newcomer = app.mails(&format!("r{id}/invitation/i3@example.org")).await;
    assert_eq!(
        newcomer.len(),
        1,
        "a new invitee gets an invitation, not a change"
    );
    assert!(newcomer[0].message.text.contains("hush-hush"));
    assert!(
        changes[0]
            .message
            .text
            .to_lowercase()
            .contains("what changed: title, invitees"),
        "{}",
        changes[0].message.text
    );
    // The earlier (unannounced) change counted too: the calendar sequence only grows.
    assert!(
        changes[0]
            .message
            .ics
            .as_deref()
            .unwrap()
            .contains("SEQUENCE:2")
    );
    assert_eq!(
        app.mails(&format!("r{id}/cancellation/i2@example.org"))
            .await
            .len(),
        1,
        "the removed invitee is told"
    );
    let all: Vec<String> = app
        .outbox()
        .await
        .iter()
        .map(|m| m.message.to.to_string())
        .collect();
    for addr in all {
        assert!(
            [
                "c@example.org",
                "i1@example.org",
                "i2@example.org",
                "i3@example.org"
            ]
            .contains(&addr.as_str()),
            "a secret program e-mailed {addr}"
        );
    }
    let c = app.call(Method::DELETE, &p, Some(&tok), None).await;
    assert_eq!(
        c.body,
        json!({"status": "cancelled", "charge": {"amount": "100", "currency": "JPY"}})
    );
    let cancels = app.mails(&format!("r{id}/cancellation/")).await;
    assert_eq!(cancels.len(), 3);
    assert!(
        cancels
            .iter()
            .all(|m| m.message.ics.as_deref().unwrap().contains("METHOD:CANCEL"))
    );
    assert!(
        cancels
            .iter()
            .all(|m| !m.message.ics.as_deref().unwrap().contains("hush-hush"))
    );
    // Two changes were logged before: the cancellation supersedes them in calendars.
    for m in cancels
        .iter()
        .filter(|m| m.message.to.as_str() != "i2@example.org")
    {
        assert!(
            m.message.ics.as_deref().unwrap().contains("SEQUENCE:3"),
            "{}",
            m.message.to
        );
    }
    assert_eq!(
        app.call(Method::DELETE, &p, Some(&tok), None).await.code(),
        "wrong_state"
    );
}

async fn accounts_throttle_and_keep_no_card_number(b: Backend) {
    let Some(app) = app(b).await else { return };
    let r = app.post("/api/v1/members", None, json!({"email": "Card@Example.org", "password": "a long enough password", "display_name": "Card", "tier": "premium", "payment": {"card_number": "4111-1111-1111-1111", "exp_month": 9, "exp_year": 2030, "holder": "C Holder"}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["payment"],
        json!({"brand": "visa", "last4": "1111", "exp_month": 9, "exp_year": 2030})
    );
    assert!(!r.text.contains("4111111111111111"));
    let dup = app.post("/api/v1/members", None, json!({"email": "card@example.org", "password": "a long enough password", "display_name": "Dup", "tier": "general"})).await;
    assert_eq!(dup.code(), "email_taken");
    let stored = app
        .store
        .member_by_email(&slotcast_domain::EmailAddress::parse("card@example.org").unwrap())
        .await
        .unwrap();
    assert!(!format!("{stored:?}").contains("4111111111111111"));
    // Five free failures, a sixth heard, then this address waits before it is heard
    // again for this account (whatever the password).
    for _ in 0..6 {
        let r = app
            .post(
                "/api/v1/sessions",
                None,
                json!({"email": "card@example.org", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let r = app
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": "card@example.org", "password": "a long enough password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get("retry-after").is_some());
    app.set(app.now() + SignedDuration::from_mins(16));
    let r = app
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": "card@example.org", "password": "a long enough password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly")
    );
    let tok = r.body["token"].as_str().unwrap().to_owned();
    let pw = app
        .post(
            "/api/v1/members/me/password",
            Some(&tok),
            json!({"current_password": "nope", "new_password": "another long password"}),
        )
        .await;
    assert_eq!(pw.code(), "wrong_password");
    let pw = app.post("/api/v1/members/me/password", Some(&tok), json!({"current_password": "a long enough password", "new_password": "another long password"})).await;
    assert_eq!(pw.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/sessions/current", Some(&tok), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/members/me", Some(&tok)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn operators_manage_channels_and_export_billing(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (member, _) = app.member("m@example.org", true).await;
    let op = app.operator("op@example.org").await;
    let body = json!({"name": "studio", "capacity": 50, "bitrate_kbps": 3000, "tariff_minor": 500, "currency": "JPY"});
    assert_eq!(
        app.post("/api/v1/channels", Some(&member), body.clone())
            .await
            .code(),
        "operator_only"
    );
    let c = app.post("/api/v1/channels", Some(&op), body.clone()).await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    assert_eq!(
        app.post("/api/v1/channels", Some(&op), body).await.code(),
        "channel_name_taken"
    );
    let bad = app.post("/api/v1/channels", Some(&op), json!({"name": "", "capacity": 0, "bitrate_kbps": 1, "tariff_minor": -1, "currency": "yenn"})).await;
    for f in [
        "name",
        "capacity",
        "bitrate_kbps",
        "tariff_minor",
        "currency",
    ] {
        assert!(!bad.field(f).is_empty(), "{f}");
    }
    let list = app.get("/api/v1/channels", None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 3);
    let id = app.book_id(&member, json!({"channel": "studio", "start": "2026-06-02T12:00:00Z", "slots": 2, "visibility": "public", "title": "=cmd|' /C calc'!A0"})).await;
    let key = app.key_of(id).await;
    app.post(
        &format!("/api/v1/reservations/{id}/confirm"),
        Some(&member),
        json!({"reservation_key": key}),
    )
    .await;
    assert_eq!(
        app.get("/api/v1/billing/export.csv?month=2026-06", Some(&member))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let csv = app
        .get("/api/v1/billing/export.csv?month=2026-06", Some(&op))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.text);
    assert!(
        lines[1].contains(",2,1000,JPY,pending,\"'=cmd"),
        "{}",
        lines[1]
    );
}

async fn every_response_has_server_time_and_openapi_lists_the_routes(b: Backend) {
    let Some(app) = app(b).await else { return };
    for path in [
        "/api/v1/channels",
        "/api/v1/nope",
        "/healthz",
        "/api/v1/time",
    ] {
        let r = app.get(path, None).await;
        let st = r
            .headers
            .get("server-time")
            .unwrap_or_else(|| panic!("{path}"))
            .to_str()
            .unwrap();
        assert_eq!(st, "2026-06-01T08:00:00.000Z", "{path}");
        assert!(r.headers.get("x-request-id").is_some(), "{path}");
    }
    let t = app.get("/api/v1/time", None).await;
    assert_eq!(t.body["source"], "system");
    assert_eq!(t.body["server_time"], "2026-06-01T08:00:00.000Z");
    let doc = app.get("/api/v1/openapi.json", None).await;
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/members",
        "/api/v1/sessions",
        "/api/v1/members/me",
        "/api/v1/channels",
        "/api/v1/availability",
        "/api/v1/reservations",
        "/api/v1/reservations/{id}",
        "/api/v1/reservations/{id}/confirm",
        "/api/v1/reservations/{id}/profile",
        "/api/v1/reservations/{id}/extend",
        "/api/v1/programs",
        "/api/v1/programs/{slug}",
        "/api/v1/programs/{slug}/play",
        "/api/v1/guide.ics",
        "/api/v1/time",
        "/api/v1/members/me/invoices",
        "/api/v1/billing/export.csv",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // What the layers below a handler can answer is documented on every operation.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let has = |s: &str| op["responses"].get(s).is_some();
            let what = format!("{method} {path}");
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(has(s), "{what} lacks {s}");
                }
            }
            let signed_in = op["security"]
                .as_array()
                .is_some_and(|r| !r.iter().any(|x| x == &json!({})));
            assert!(!signed_in || has("401"), "{what} lacks 401");
            for (status, r) in op["responses"].as_object().unwrap() {
                assert!(r["description"].is_string(), "{what} {status}");
            }
        }
    }
    let live = &paths["/api/v1/reservations/{id}/live"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        live["text/event-stream"]["schema"]["properties"]["data"]["contentSchema"]["$ref"],
        "#/components/schemas/LiveEvent"
    );
    let profile = &paths["/api/v1/reservations/{id}/profile"]["post"];
    assert!(
        profile["description"]
            .as_str()
            .unwrap()
            .contains("confirmed")
    );
    let m = app.get("/metrics", None).await;
    assert!(
        m.text.contains("slotcast_http_requests_total"),
        "{}",
        m.text
    );
}

async fn wrong_keys_are_counted_and_lock_confirmation(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("k@example.org", true).await;
    let id = app.book_id(&tok, booking("2026-06-02T12:00:00Z", 1)).await;
    let key = app.key_of(id).await;
    let path = format!("/api/v1/reservations/{id}/confirm");
    for left in (0..5).rev() {
        let r = app
            .post(
                &path,
                Some(&tok),
                json!({"reservation_key": "a".repeat(32)}),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "wrong_key"));
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("({left} tries left)")),
            "{}",
            r.text
        );
    }
    let locked = app
        .post(&path, Some(&tok), json!({"reservation_key": key}))
        .await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "key_locked")
    );
    assert_eq!(locked.headers["retry-after"], "900");
    app.set(app.now() + SignedDuration::from_mins(15));
    let ok = app
        .post(
            &path,
            Some(&tok),
            json!({"reservation_key": key.to_uppercase()}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(
        ok.body["profile"]["reservation_key"],
        key.as_str(),
        "plain profile over loopback"
    );
}

async fn profiles_in_clear_only_over_loopback_or_tls(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("remote@example.org", true).await;
    let id = app.book_id(&tok, booking("2026-06-02T12:00:00Z", 1)).await;
    let key = app.key_of(id).await;
    app.set_peer("203.0.113.7:51000");
    let path = format!("/api/v1/reservations/{id}/confirm");
    let r = app
        .post(&path, Some(&tok), json!({"reservation_key": key}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.field("device_public_key").contains("TLS or loopback"),
        "{}",
        r.text
    );
    assert_eq!(
        app.get(&format!("/api/v1/reservations/{id}"), Some(&tok))
            .await
            .body["status"],
        "awaiting_confirmation",
        "a refused answer confirms nothing"
    );
    let bad = app
        .post(
            &path,
            Some(&tok),
            json!({"reservation_key": key, "device_public_key": "ssh-ed25519 AAAA"}),
        )
        .await;
    assert!(
        bad.field("device_public_key").contains("age1"),
        "{}",
        bad.text
    );
    let device = age::x25519::Identity::generate();
    let ok = app
        .post(
            &path,
            Some(&tok),
            json!({"reservation_key": key, "device_public_key": device.to_public().to_string()}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    // Another device: the same key re-issues the profile, encrypted for the new device only.
    let other = age::x25519::Identity::generate();
    let re = app
        .post(
            &format!("/api/v1/reservations/{id}/profile"),
            Some(&tok),
            json!({"reservation_key": key, "device_public_key": other.to_public().to_string()}),
        )
        .await;
    assert_eq!(re.status, StatusCode::OK, "{}", re.text);
    let armored = re.body["profile"].as_str().unwrap();
    assert_eq!(
        slotcast_center::profile::decrypt(armored, &other)
            .unwrap()
            .reservation,
        id
    );
    assert!(slotcast_center::profile::decrypt(armored, &device).is_err());
}

async fn time_reports_ntp_and_its_offset(b: Backend) {
    let ntp = slotcast_testkit::ntp::NtpResponder::start(SignedDuration::from_millis(1500)).await;
    let time = slotcast_center::time::TimeService::new(vec![ntp.addr.to_string()]);
    time.sync_once().await.unwrap();
    let Some(app) = common::open_with(b, NOW, Policy::default(), Some(time)).await else {
        return;
    };
    let r = app.get("/api/v1/time", None).await;
    assert_eq!(r.body["source"], "ntp", "{}", r.text);
    assert_eq!(r.body["ntp_server"], ntp.addr.to_string());
    let server: Timestamp = r.body["server_time"].as_str().unwrap().parse().unwrap();
    let skew = server.duration_since(Timestamp::now()).as_millis();
    assert!(
        (1450..=1550).contains(&skew),
        "offset {skew} ms, want 1500 ± 50"
    );
    assert!(r.body["estimated_error_ms"].as_f64().unwrap() < 50.0);
    let header: Timestamp = r.headers["server-time"].to_str().unwrap().parse().unwrap();
    assert!(
        header.duration_since(Timestamp::now()).as_millis() > 1400,
        "Server-Time uses the same clock"
    );
}

async fn quote_previews_fee_deadline_and_availability(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("quote@example.org", true).await;
    let (other, _) = app.member("other@example.org", true).await;
    let body = json!({"channel": "medium", "start": "2026-06-02T12:00:00Z", "slots": 4, "visibility": "public", "title": "Preview"});
    let q = app
        .post("/api/v1/reservations/quote", Some(&tok), body.clone())
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    assert_eq!(q.body["fee"], json!({"amount": "1200", "currency": "JPY"}));
    assert_eq!(q.body["confirm_by"], "2026-06-02T06:00:00Z");
    assert_eq!(
        (q.body["available"].as_bool(), q.body["quota_left"].as_u64()),
        (Some(true), Some(30))
    );
    assert!(
        app.store.outbox_counts().await.unwrap().queued == 0,
        "a quote books nothing"
    );
    let mut taken = body.clone();
    taken["slots"] = json!(1);
    app.book(&other, taken).await;
    let q = app
        .post("/api/v1/reservations/quote", Some(&tok), body)
        .await;
    assert_eq!(q.body["available"], false);
    let bad = app.post("/api/v1/reservations/quote", Some(&tok), json!({"channel": "medium", "start": "2026-06-02T12:03:00Z", "slots": 1, "visibility": "public", "title": "x"})).await;
    assert!(bad.field("start").contains("boundary"), "{}", bad.text);
}

/// `/programs` and `/availability` are rendered once for every viewer and kept: what a
/// booking, a confirmation, the passing of time and a broadcaster's new name change shows
/// at the next request.
async fn shared_answers_follow_bookings_time_and_names(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("kept@example.org", true).await;
    let slot = |v: &Value, start: &str| {
        v["channels"][0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["start"] == start)
            .unwrap_or_else(|| panic!("no slot {start} in {v}"))
            .clone()
    };
    let day = "/api/v1/availability?date=2026-06-01";
    let programs = "/api/v1/programs?date=2026-06-01";
    let a = app.get(day, None).await.body;
    assert_eq!(slot(&a, "2026-06-01T12:00:00Z")["state"], "free");
    assert_eq!(slot(&a, "2026-06-01T09:00:00Z")["bookable"], true);
    assert_eq!(app.get(programs, None).await.body, json!([]));

    let id = app.book_id(&tok, booking("2026-06-01T12:00:00Z", 2)).await;
    let a = app.get(day, None).await.body;
    assert_eq!(slot(&a, "2026-06-01T12:00:00Z")["state"], "taken");
    assert_eq!(
        app.get(programs, None).await.body,
        json!([]),
        "unconfirmed programs are not listed"
    );
    let c = app.confirm(&tok, id).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let p = app.get(programs, None).await.body;
    assert_eq!(
        (p[0]["title"].as_str(), p[0]["state"].as_str()),
        (Some("Morning show"), Some("scheduled"))
    );
    assert_eq!(
        slot(&app.get(day, None).await.body, "2026-06-01T12:00:00Z")["program"]["title"],
        "Morning show"
    );

    // Time passes: 09:00 is no longer bookable once the connect window before it opened…
    app.set(ts("2026-06-01T08:55:00Z"));
    assert_eq!(
        slot(&app.get(day, None).await.body, "2026-06-01T09:00:00Z")["bookable"],
        false
    );
    assert_eq!(
        slot(&app.get(day, None).await.body, "2026-06-01T09:10:00Z")["bookable"],
        true
    );
    // … and the program goes on air at its start, and ends.
    app.set(ts("2026-06-01T12:00:00Z"));
    assert_eq!(app.get(programs, None).await.body[0]["state"], "on_air");
    app.set(ts("2026-06-01T12:20:00Z"));
    assert_eq!(app.get(programs, None).await.body[0]["state"], "ended");

    // A broadcaster's new name shows at once.
    let m = app
        .store
        .member_by_email(&slotcast_domain::EmailAddress::parse("kept@example.org").unwrap())
        .await
        .unwrap();
    slotcast_center::ops::accounts::update(&app.center, &m, "Kept Renamed", false)
        .await
        .unwrap();
    assert_eq!(
        app.get(programs, None).await.body[0]["broadcaster"],
        "Kept Renamed"
    );
}

/// A verified session is kept for a second: ending sessions here refuses them at once;
/// ended behind this replica's back (as another replica would), within the second.
async fn kept_sessions_end_at_once_here_and_within_a_second_elsewhere(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("kim@example.org", true).await;
    let other = app
        .sign_in("kim@example.org", "a long enough password")
        .await;
    let other = other.body["token"].as_str().unwrap().to_owned();
    for t in [&tok, &other] {
        assert_eq!(
            app.get("/api/v1/members/me", Some(t)).await.status,
            StatusCode::OK
        );
    }
    // Signing out everywhere from one session ends the other at once.
    let out = app
        .call(Method::DELETE, "/api/v1/sessions", Some(&other), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    for t in [&tok, &other] {
        assert_eq!(
            app.get("/api/v1/members/me", Some(t)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Ended in the database by someone else: honoured for at most a second more.
    let third = app
        .sign_in("kim@example.org", "a long enough password")
        .await;
    let third = third.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/members/me", Some(&third)).await.status,
        StatusCode::OK
    );
    let hash = slotcast_center::secrets::token_hash(&third);
    app.store.revoke_session(&hash, app.now()).await.unwrap();
    app.set(app.now() + SignedDuration::from_millis(999));
    assert_eq!(
        app.get("/api/v1/members/me", Some(&third)).await.status,
        StatusCode::OK
    );
    app.set(app.now() + SignedDuration::from_millis(1));
    assert_eq!(
        app.get("/api/v1/members/me", Some(&third)).await.status,
        StatusCode::UNAUTHORIZED
    );
}
