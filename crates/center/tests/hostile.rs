//! What a hostile peer can make the center do (issue 10), in process, on SQLite and on
//! PostgreSQL: malformed path parameters never reach a query, bookings stop at the
//! horizon on every route, text that lies about itself is refused, sign-ups are limited
//! per address, and a password change is throttled and ends the member's other sessions.

#[macro_use]
mod common;

use axum::http::{Method, StatusCode};
use common::{App, Backend, Db, open, open_custom};
use serde_json::json;
use slotcast_center::NoStreamNode;
use slotcast_domain::Policy;
use slotcast_domain::jiff::SignedDuration;
use std::sync::Arc;

on_both!(
    errors_from_every_layer_have_the_api_shape,
    a_sign_in_flood_slows_the_attacker_and_never_locks_the_owner_out,
    forwarded_addresses_count_only_from_trusted_proxies,
    nul_bytes_and_malformed_slugs_never_reach_a_query,
    bookings_availability_and_programs_stop_at_the_horizon,
    text_that_lies_about_itself_is_refused_everywhere,
    sign_ups_are_limited_per_address,
    a_password_change_is_throttled_and_ends_the_other_sessions,
);

const NOW: &str = "2026-06-01T08:00:00Z";

async fn app(b: Backend) -> Option<App> {
    open(b, NOW, Policy::default()).await
}

/// An error in the API's shape, with `status` and `code`.
fn refused(r: &common::Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.code(), code, "{}", r.text);
    assert!(!r.body["error"]["message"].as_str().unwrap_or("").is_empty());
}

async fn nul_bytes_and_malformed_slugs_never_reach_a_query(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("ann@example.org", true).await;
    for path in [
        "/api/v1/programs/%00",
        "/api/v1/programs/abc%00def",
        "/api/v1/programs/ABC",
        "/api/v1/programs/a%20b",
        "/api/v1/programs/%C3%A9",
    ] {
        refused(
            &app.get(path, None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    for path in ["/api/v1/programs/abc%00/play", "/api/v1/programs/%00/play"] {
        let r = app.post(path, None, json!({})).await;
        refused(&r, StatusCode::NOT_FOUND, "not_found");
    }
    for path in [
        "/api/v1/reservations/%00",
        "/api/v1/reservations/1%00",
        "/api/v1/reservations/99999999999999999999999",
    ] {
        refused(
            &app.get(path, Some(&tok)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    // Text bodies with a NUL are refused by validation, not by the database.
    let r = app
        .book(
            &tok,
            json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 1,
                "visibility": "public", "title": "Night\u{0}show"}),
        )
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    assert_eq!(r.field("title"), "contains control characters");
}

async fn bookings_availability_and_programs_stop_at_the_horizon(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("ann@example.org", true).await;
    // 90 days from 2026-06-01T08:00Z is 2026-08-30T08:00Z.
    let ok = app
        .book(
            &tok,
            json!({"channel": "small", "start": "2026-08-30T07:50:00Z", "slots": 1,
                "visibility": "public", "title": "Last bookable slot"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let mut first = None;
    for start in [
        "2026-08-30T08:00:00Z",
        "2099-01-01T12:00:00Z",
        "9998-06-01T12:00:00Z",
        "9999-12-31T23:50:00Z",
    ] {
        let body = json!({"channel": "small", "start": start, "slots": 1,
            "visibility": "public", "title": "Too far"});
        for path in ["/api/v1/reservations", "/api/v1/reservations/quote"] {
            let r = app.post(path, Some(&tok), body.clone()).await;
            refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
            let msg = r.field("start").to_owned();
            assert!(
                msg.contains("booking horizon") && msg.contains("90 days"),
                "{msg}"
            );
            assert_eq!(
                *first.get_or_insert(msg.clone()),
                msg,
                "one wording for all"
            );
        }
    }
    for path in [
        "/api/v1/availability?date=2026-08-31",
        "/api/v1/programs?date=2026-08-31",
        "/api/v1/availability?date=2099-01-01",
    ] {
        let r = app.get(path, None).await;
        refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
        assert!(r.field("date").contains("booking horizon"), "{}", r.text);
    }
    for path in [
        "/api/v1/availability?date=2026-08-30",
        "/api/v1/programs?date=2026-08-30",
    ] {
        assert_eq!(app.get(path, None).await.status, StatusCode::OK, "{path}");
    }
}

async fn text_that_lies_about_itself_is_refused_everywhere(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (tok, _) = app.member("ann@example.org", true).await;
    let r = app
        .book(
            &tok,
            json!({"channel": "small", "start": "2026-06-02T12:00:00Z", "slots": 1,
                "visibility": "public", "title": "Free \u{202E}gpj.exe", "outline": "ok"}),
        )
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    assert!(r.field("title").contains("U+202E"), "{}", r.text);
    let r = app
        .post(
            "/api/v1/members",
            None,
            json!({"email": "bo@example.org", "password": "a long enough password",
                "display_name": "\u{2066}Admin\u{2069}", "tier": "general"}),
        )
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    assert!(r.field("display_name").contains("U+2066"), "{}", r.text);
    let id = app
        .book_id(
            &tok,
            json!({"channel": "small", "start": "2026-06-02T13:00:00Z", "slots": 1,
                "visibility": "public", "title": "Honest title"}),
        )
        .await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/reservations/{id}"),
            Some(&tok),
            Some(json!({"outline": "zero\u{200B}width"})),
        )
        .await;
    refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields");
    assert!(r.field("outline").contains("U+200B"), "{}", r.text);
    // Joined emoji are fine.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/reservations/{id}"),
            Some(&tok),
            Some(json!({"outline": "family night 👩\u{200D}👩\u{200D}👧"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn sign_ups_are_limited_per_address(b: Backend) {
    let Some(app) = app(b).await else { return };
    app.set_peer("203.0.113.7:5000");
    let body = |i: u32| {
        json!({"email": format!("u{i}@example.org"), "password": "a long enough password",
            "display_name": format!("User {i}"), "tier": "general"})
    };
    for i in 0..20 {
        let r = app.post("/api/v1/members", None, body(i)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{i}: {}", r.text);
    }
    let r = app.post("/api/v1/members", None, body(20)).await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    // Nothing was written for the refused one; another address signs up; an hour later
    // this one may again.
    let r = app
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": "u20@example.org", "password": "a long enough password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.set_peer("198.51.100.9:5000");
    assert_eq!(
        app.post("/api/v1/members", None, body(21)).await.status,
        StatusCode::CREATED
    );
    app.set_peer("203.0.113.7:5000");
    app.set(app.now() + SignedDuration::from_hours(1));
    assert_eq!(
        app.post("/api/v1/members", None, body(22)).await.status,
        StatusCode::CREATED
    );
}

async fn a_password_change_is_throttled_and_ends_the_other_sessions(b: Backend) {
    let Some(app) = app(b).await else { return };
    let (phone, _) = app.member("ann@example.org", false).await;
    let login = json!({"email": "ann@example.org", "password": "a long enough password"});
    let laptop = app.post("/api/v1/sessions", None, login.clone()).await;
    let laptop = laptop.body["token"].as_str().unwrap().to_owned();
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new passphrase"});
    // Five free guesses, then each wrong one doubles the wait before the next is heard.
    for _ in 0..6 {
        let r = app
            .post(
                "/api/v1/members/me/password",
                Some(&laptop),
                change("guess"),
            )
            .await;
        refused(&r, StatusCode::FORBIDDEN, "wrong_password");
    }
    // Slowed down now, even with the right password.
    let r = app
        .post(
            "/api/v1/members/me/password",
            Some(&laptop),
            change("a long enough password"),
        )
        .await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    app.set(app.now() + SignedDuration::from_secs(1));
    let r = app
        .post(
            "/api/v1/members/me/password",
            Some(&laptop),
            change("a long enough password"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // The laptop that changed it stays signed in; the phone is signed out.
    assert_eq!(
        app.get("/api/v1/members/me", Some(&laptop)).await.status,
        StatusCode::OK
    );
    refused(
        &app.get("/api/v1/members/me", Some(&phone)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Sign out everywhere: the laptop too.
    let tablet = app
        .post(
            "/api/v1/sessions",
            None,
            json!({"email": "ann@example.org", "password": "a brand new passphrase"}),
        )
        .await;
    let tablet = tablet.body["token"].as_str().unwrap().to_owned();
    let r = app
        .call(Method::DELETE, "/api/v1/sessions", Some(&tablet), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for t in [&laptop, &tablet] {
        assert_eq!(
            app.get("/api/v1/members/me", Some(t)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn sign_in(app: &App, email: &str, password: &str) -> common::Reply {
    app.post(
        "/api/v1/sessions",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

async fn a_sign_in_flood_slows_the_attacker_and_never_locks_the_owner_out(b: Backend) {
    let Some(app) = app(b).await else { return };
    app.member("ann@example.org", false).await;
    // The attacker at 203.0.113.7: five free guesses, then a growing wait.
    app.set_peer("203.0.113.7:5000");
    for _ in 0..6 {
        refused(
            &sign_in(&app, "ann@example.org", "guess").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    let r = sign_in(&app, "ann@example.org", "guess").await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert_eq!(r.headers["retry-after"], "1");
    // Ann, from her own address, signs in all the same.
    app.set_peer("198.51.100.20:6000");
    let ok = sign_in(&app, "ann@example.org", "a long enough password").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    // The attacker's address is limited across accounts too: 50 failures in 15 minutes.
    app.set_peer("203.0.113.8:5000");
    for i in 0..50 {
        let r = sign_in(&app, &format!("nobody{i}@example.org"), "guess").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{i}: {}", r.text);
    }
    let r = sign_in(&app, "ann@example.org", "a long enough password").await;
    refused(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    app.set_peer("198.51.100.20:6000");
    assert_eq!(
        sign_in(&app, "ann@example.org", "a long enough password")
            .await
            .status,
        StatusCode::CREATED
    );
}

async fn forwarded_addresses_count_only_from_trusted_proxies(b: Backend) {
    let Some(db) = Db::fresh(b).await else { return };
    let app = open_custom(
        db,
        NOW,
        Policy::default(),
        None,
        Arc::new(NoStreamNode),
        |s| {
            s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        },
    )
    .await;
    app.member("ann@example.org", false).await;
    // Behind the trusted proxy (127.0.0.1), each client is told apart by the address the
    // proxy forwarded for: the attacker's failures do not slow Ann down.
    app.set_forwarded_for(Some("203.0.113.7"));
    for _ in 0..6 {
        sign_in(&app, "ann@example.org", "guess").await;
    }
    refused(
        &sign_in(&app, "ann@example.org", "guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
    app.set_forwarded_for(Some("198.51.100.20"));
    assert_eq!(
        sign_in(&app, "ann@example.org", "a long enough password")
            .await
            .status,
        StatusCode::CREATED
    );
    // From an untrusted peer the header is ignored: a client cannot pick a fresh address
    // for every guess.
    app.set_peer("192.0.2.50:7000");
    for i in 0..6 {
        app.set_forwarded_for(Some(&format!("10.0.0.{i}")));
        sign_in(&app, "ann@example.org", "guess").await;
    }
    app.set_forwarded_for(Some("10.0.0.99"));
    refused(
        &sign_in(&app, "ann@example.org", "guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
}

async fn errors_from_every_layer_have_the_api_shape(b: Backend) {
    let Some(app) = app(b).await else { return };
    // A path that is not UTF-8, a repeated query parameter, a query of the wrong type,
    // a method the route does not have: each answered by a layer below the handlers.
    for (method, path, status, code) in [
        (
            Method::GET,
            "/api/v1/programs/%ff%fe",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/api/v1/availability?date=2026-06-02&date=2026-06-03",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/api/v1/channels/x",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            "/api/v1/programs",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::GET,
            "/no/such/page",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let r = app.call(method.clone(), path, None, None).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), code, "{method} {path}: {}", r.text);
        assert!(
            !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{method} {path}: {}",
            r.text
        );
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
    }
    // A body over the limit.
    let big = vec![b'x'; 200 * 1024];
    let r = app
        .raw(
            Method::POST,
            "/api/v1/members",
            None,
            Some("application/json"),
            big,
        )
        .await;
    refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
}
