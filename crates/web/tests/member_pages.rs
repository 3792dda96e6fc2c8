//! The member pages over the real center (SQLite and PostgreSQL), driven with `oneshot`
//! as a browser without JavaScript would: register, reserve, review, book, confirm with
//! the key, the connection settings and profile, change with what changes shown first,
//! cancel with its cost; field errors beside their fields; who may see and do what; forms
//! without the CSRF token refused. The browser tests (`slotcastd/tests/browser.rs`) click
//! through the same pages with JavaScript.

#[macro_use]
#[path = "../../center/tests/common/mod.rs"]
mod common;
mod site;

use axum::http::StatusCode;
use common::{App, Backend, open};
use site::Visitor;
use slotcast_domain::Policy;

on_both!(
    a_member_registers_reserves_confirms_changes_and_cancels_with_the_forms,
    field_errors_are_shown_beside_their_fields,
    members_see_and_touch_only_their_own_reservations,
    forms_without_the_csrf_token_are_refused_and_change_nothing,
    the_account_page_changes_name_password_and_upgrades_to_premium,
    sign_in_is_throttled_like_the_api,
    operator_pages_answer_404_to_everyone_else,
    the_operator_creates_a_channel_that_then_appears_in_the_grid,
    the_operator_waives_a_charge_and_the_invoice_and_export_show_it,
    the_operator_sees_the_schedule_members_and_failed_mail,
    the_dashboard_offers_an_extension_taken_with_one_click,
);

const NOW: &str = "2026-06-01T08:00:00Z";

/// The fields of a booking at noon on the small channel (100 JPY a slot), three slots.
fn booking(title: &str) -> Vec<(&'static str, String)> {
    vec![
        ("date", "2026-06-01".into()),
        ("channel", "small".into()),
        ("start", "2026-06-01T12:00:00Z".into()),
        ("slots", "3".into()),
        ("visibility", "public".into()),
        ("title", title.into()),
        ("genre", "Music".into()),
        ("outline", "A trio".into()),
        ("detail", "".into()),
        ("web_url", "".into()),
        ("viewer_password", "".into()),
        ("invitees", "friend@example.org".into()),
    ]
}

fn fields<'a>(
    v: &'a [(&'static str, String)],
    more: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    v.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

/// Registers through the form; the signed-in browser.
async fn register(app: &App, email: &str, premium: bool) -> Visitor {
    let anon = Visitor::anonymous();
    let mut f = vec![
        ("email", email),
        ("display_name", "Ann Lee"),
        ("password", "a long enough password"),
        ("tier", if premium { "premium" } else { "general" }),
    ];
    if premium {
        f.extend([
            ("card_number", "4242 4242 4242 4242"),
            ("exp_month", "12"),
            ("exp_year", "2031"),
            ("holder", "Ann Lee"),
            ("terms", "yes"),
        ]);
    }
    let p = anon.post(app, "/register", &f).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    assert_eq!(p.location(), "/my?done=welcome");
    let cookie = p.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; HttpOnly")
            && cookie.contains("; SameSite=Lax")
            && !cookie.contains("Secure"),
        "{cookie}"
    );
    Visitor::with_session(&p.session().expect("signed in"))
}

/// Books through the forms (review, terms, book); the reservation id.
async fn book(app: &App, v: &Visitor, title: &str, start: &str) -> i64 {
    let mut b = booking(title);
    b[2].1 = start.into();
    let p = v
        .post(
            app,
            "/my/reserve",
            &fields(&b, &[("step", "book"), ("terms", "yes")]),
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    id_of(p.location())
}

fn id_of(location: &str) -> i64 {
    location
        .trim_start_matches("/my/reservations/")
        .split(['?', '/'])
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no reservation in {location}"))
}

async fn status_of(app: &App, id: i64) -> String {
    app.store
        .reservation(slotcast_domain::ReservationId(id))
        .await
        .unwrap()
        .status
        .to_string()
}

async fn a_member_registers_reserves_confirms_changes_and_cancels_with_the_forms(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let my = ann.get(&app, "/my?done=welcome").await;
    assert_eq!(my.status, StatusCode::OK);
    assert!(my.text.contains("Welcome to slotcast"), "{}", my.text);
    assert!(my.text.contains("0 / 30"), "the quota: {}", my.text);

    // The grid: channels with capacity, bitrate and price; a free slot links to the form.
    let grid = ann.get(&app, "/my/reserve?date=2026-06-01").await;
    assert_eq!(grid.status, StatusCode::OK);
    assert!(grid.text.contains("100 JPY/slot"), "{}", grid.text);
    assert!(grid.text.contains("10 seats"));
    let link = "/my/reserve?date=2026-06-01&#38;channel=small&#38;start=2026-06-01T12%3A00%3A00Z&#38;slots=1#form";
    assert!(
        grid.text.contains(link),
        "{}",
        grid.text.split("12:00").nth(1).unwrap_or("")
    );
    // The link fills the form.
    let filled = ann
        .get(
            &app,
            "/my/reserve?date=2026-06-01&channel=medium&start=2026-06-01T12%3A00%3A00Z&slots=1",
        )
        .await;
    assert!(
        filled
            .text
            .contains(r#"<option value="2026-06-01T12:00:00Z" selected>12:00</option>"#),
        "{}",
        filled.text
    );
    assert!(
        filled
            .text
            .contains(r#"<option value="medium" data-minor="300" data-currency="JPY" selected>"#)
    );

    // Review: the fee, the deadline, where the key goes; nothing is booked yet.
    let b1 = booking("Morning jazz");
    let review = ann
        .post(&app, "/my/reserve", &fields(&b1, &[("step", "review")]))
        .await;
    assert_eq!(review.status, StatusCode::OK, "{}", review.text);
    assert!(review.text.contains("300 JPY"), "the fee: {}", review.text);
    assert!(review.text.contains("ann@example.org"));
    assert!(
        review.text.contains("08:15"),
        "the deadline: a late booking gets 15 minutes"
    );
    assert!(app.outbox().await.is_empty(), "nothing booked at review");
    // Booking needs the terms.
    let no_terms = ann
        .post(&app, "/my/reserve", &fields(&b1, &[("step", "book")]))
        .await;
    assert_eq!(no_terms.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_terms.text.contains(r#"id="terms-error""#),
        "{}",
        no_terms.text
    );
    let id = book(&app, &ann, "Morning jazz", "2026-06-01T12:00:00Z").await;
    let page = ann
        .get(&app, &format!("/my/reservations/{id}?done=booked"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Check your e-mail"), "{}", page.text);
    assert!(page.text.contains("AWAITING CONFIRMATION"));
    assert_eq!(page.headers["cache-control"], "no-store");

    // Confirm: a wrong key is said beside the key field; the right one shows the settings.
    let path = format!("/my/reservations/{id}/confirm");
    let wrong = ann
        .post(&app, &path, &[("key", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    assert!(wrong.text.contains(r#"id="key-error""#), "{}", wrong.text);
    let key = app.key_of(id).await;
    let done = ann.post(&app, &path, &[("key", &key)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("CONFIRMED"));
    assert!(
        done.text
            .contains(&format!(r#"<code id="stream-key">{key}</code>"#))
    );
    assert!(
        done.text.contains(r#"id="offset""#),
        "the clock offset panel"
    );
    assert_eq!(status_of(&app, id).await, "confirmed");
    // Again later, for another computer, with the key.
    let later = ann.get(&app, &format!("/my/reservations/{id}")).await;
    assert!(
        !later.text.contains(&key),
        "the key is not shown without asking"
    );
    let again = ann
        .post(
            &app,
            &format!("/my/reservations/{id}/settings"),
            &[("key", &key)],
        )
        .await;
    assert!(again.text.contains(&key));
    // The profile as a file (plain: this browser is on loopback).
    let file = ann
        .post(
            &app,
            &format!("/my/reservations/{id}/profile"),
            &[("key", &key), ("device_key", "")],
        )
        .await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.text);
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".json\"")
    );
    let profile: serde_json::Value = serde_json::from_str(&file.text).unwrap();
    assert_eq!(profile["reservation_key"], key.as_str(), "{profile}");
    let age = ann
        .post(
            &app,
            &format!("/my/reservations/{id}/profile"),
            &[("key", &key), ("device_key", "not-a-key")],
        )
        .await;
    assert_eq!(age.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        age.text.contains(r#"id="device_public_key-error""#),
        "{}",
        age.text
    );

    // Change: what changes is shown first; saving tells the invitee once.
    let change = format!("/my/reservations/{id}/change");
    let form = ann.get(&app, &change).await;
    assert!(form.text.contains(r#"value="Morning jazz""#));
    let mut edited = booking("Evening jazz");
    edited.retain(|(k, _)| !matches!(*k, "date" | "channel" | "start" | "slots" | "visibility"));
    let diff = ann
        .post(&app, &change, &fields(&edited, &[("step", "review")]))
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text);
    assert!(
        diff.text.contains("<del>Morning jazz</del>")
            && diff.text.contains("<ins>Evening jazz</ins>"),
        "{}",
        diff.text
    );
    let before = app.mails("change").await.len();
    let saved = ann
        .post(&app, &change, &fields(&edited, &[("step", "save")]))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(
        app.mails("change").await.len(),
        before + 1,
        "one change e-mail"
    );
    let unchanged = ann
        .post(&app, &change, &fields(&edited, &[("step", "review")]))
        .await;
    assert!(unchanged.text.contains("Nothing was changed"));

    // Cancel: what it costs first (confirmed: billed).
    let cancel = format!("/my/reservations/{id}/cancel");
    let cost = ann.get(&app, &cancel).await;
    assert!(
        cost.text.contains("Cancelling now bills 300 JPY"),
        "{}",
        cost.text
    );
    let gone = ann.post(&app, &cancel, &[]).await;
    assert_eq!(gone.location(), "/my?done=cancelled");
    assert_eq!(status_of(&app, id).await, "cancelled");
    let my = ann.get(&app, "/my").await;
    assert!(my.text.contains("CANCELLED") && my.text.contains("Evening jazz"));
    assert!(my.text.contains("300 JPY"), "the invoice: {}", my.text);
}

async fn field_errors_are_shown_beside_their_fields(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let anon = Visitor::anonymous();
    let p = anon
        .post(
            &app,
            "/register",
            &[
                ("email", "not an address"),
                ("display_name", ""),
                ("password", "short"),
                ("tier", "premium"),
                ("card_number", "4242 4242 4242 4241"),
                ("exp_month", "12"),
                ("exp_year", "2031"),
                ("holder", "A"),
                ("terms", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.text);
    // The same in Japanese: the center's messages read in the page's language.
    let csrf = anon.csrf.clone();
    let ja = site::page(
        &app,
        axum::http::Method::POST,
        "/register",
        &[
            ("accept", "text/html"),
            ("accept-language", "ja"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &format!("slotcast_csrf={csrf}")),
        ],
        &site::form_body(&[
            ("csrf", &csrf),
            ("email", "not an address"),
            ("display_name", "Ann"),
            ("password", "short"),
            ("tier", "general"),
        ]),
    )
    .await;
    assert!(
        ja.text.contains("@ を含むメールアドレスにしてください"),
        "{}",
        ja.text
    );
    assert!(ja.text.contains("10〜256文字にしてください"), "{}", ja.text);
    for field in ["email", "display_name", "password", "payment.card_number"] {
        assert!(
            p.text.contains(&format!(r#"id="{field}-error""#)),
            "{field}: {}",
            p.text
        );
        assert!(
            p.text
                .contains(&format!(r#"aria-describedby="{field}-error""#)),
            "{field}"
        );
    }
    assert!(
        !p.text.contains("4242 4242 4242 4241"),
        "the card number is not shown again"
    );
    assert!(
        p.text.contains(r#"value="not an address""#),
        "what was typed stays"
    );

    let ann = register(&app, "ann@example.org", true).await;
    let mut b1 = booking("");
    b1[3].1 = "0".into();
    let r = ann
        .post(&app, "/my/reserve", &fields(&b1, &[("step", "review")]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    for field in ["title", "slots"] {
        assert!(
            r.text.contains(&format!(r#"id="{field}-error""#)),
            "{field}: {}",
            r.text
        );
    }
    // A slot already taken is said for the whole form.
    let id = book(&app, &ann, "First", "2026-06-01T12:00:00Z").await;
    assert!(id > 0);
    let taken = ann
        .post(
            &app,
            "/my/reserve",
            &fields(&booking("Second"), &[("step", "review")]),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert!(taken.text.contains(r#"role="alert""#), "{}", taken.text);
}

async fn members_see_and_touch_only_their_own_reservations(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let bob = register(&app, "bob@example.org", true).await;
    let gus = register(&app, "gus@example.org", false).await;
    let op = Visitor::with_session(&app.operator("op@example.org").await);
    let id = book(&app, &ann, "Ann's show", "2026-06-01T12:00:00Z").await;
    let own = [
        format!("/my/reservations/{id}"),
        format!("/my/reservations/{id}/change"),
        format!("/my/reservations/{id}/cancel"),
        format!("/my/reservations/{id}/live"),
    ];
    let member_pages = ["/my", "/my/reserve", "/account"];
    // Anonymous: every member page sends to the login page, which comes back.
    let anon = Visitor::anonymous();
    for path in own.iter().map(String::as_str).chain(member_pages) {
        let p = anon.get(&app, path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            p.location().starts_with("/login?next=%2F"),
            "{path}: {}",
            p.location()
        );
    }
    // Everyone signed in has their own pages; only Ann has hers.
    for (who, v) in [("ann", &ann), ("bob", &bob), ("gus", &gus), ("op", &op)] {
        for path in member_pages {
            assert_eq!(
                v.get(&app, path).await.status,
                StatusCode::OK,
                "{who} {path}"
            );
        }
        for path in &own {
            let want = if who == "ann" {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(v.get(&app, path).await.status, want, "{who} {path}");
        }
        if who != "ann" {
            for action in [
                "confirm", "settings", "profile", "change", "cancel", "extend",
            ] {
                let p = v
                    .post(
                        &app,
                        &format!("/my/reservations/{id}/{action}"),
                        &[("key", "x"), ("step", "save"), ("title", "Mine now")],
                    )
                    .await;
                assert_eq!(p.status, StatusCode::NOT_FOUND, "{who} {action}");
            }
        }
    }
    assert_eq!(status_of(&app, id).await, "awaiting_confirmation");
    let listed = bob.get(&app, "/my").await;
    assert!(
        !listed.text.contains("Ann&#39;s show"),
        "not in another's list"
    );
    // A general member cannot book.
    let g = gus
        .post(
            &app,
            "/my/reserve",
            &fields(&booking("Gus's show"), &[("step", "review")]),
        )
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN, "{}", g.text);
    assert!(
        gus.get(&app, "/my/reserve")
            .await
            .text
            .contains("upgrade to premium")
    );
    // Not a number, or no such reservation: not found.
    for path in [
        "/my/reservations/abc",
        "/my/reservations/0",
        "/my/reservations/99999999",
    ] {
        assert_eq!(
            ann.get(&app, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

async fn forms_without_the_csrf_token_are_refused_and_change_nothing(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let id = book(&app, &ann, "Ann's show", "2026-06-01T12:00:00Z").await;
    let key = app.key_of(id).await;
    let forged = [
        (
            format!("/my/reservations/{id}/confirm"),
            vec![("key", key.as_str())],
        ),
        (format!("/my/reservations/{id}/cancel"), vec![]),
        (
            format!("/my/reservations/{id}/change"),
            vec![("step", "save"), ("title", "Hijacked")],
        ),
        (
            "/my/reserve".to_owned(),
            vec![
                ("step", "book"),
                ("terms", "yes"),
                ("channel", "small"),
                ("start", "2026-06-01T14:00:00Z"),
                ("slots", "1"),
                ("visibility", "public"),
                ("title", "Forged"),
            ],
        ),
        (
            "/account/profile".to_owned(),
            vec![("display_name", "Hijacked")],
        ),
        ("/account/sessions".to_owned(), vec![]),
        ("/logout".to_owned(), vec![]),
    ];
    for (path, f) in &forged {
        let p = ann.post_raw(&app, path, f).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}: {}", p.text);
        let wrong: Vec<_> = f
            .iter()
            .copied()
            .chain([("csrf", "ffffffffffffffffffffffffffffffff")])
            .collect();
        assert_eq!(
            ann.post_raw(&app, path, &wrong).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(status_of(&app, id).await, "awaiting_confirmation");
    let me = ann.get(&app, "/account").await;
    assert!(
        me.text.contains(r#"value="Ann Lee""#),
        "the name is unchanged"
    );
    assert_eq!(
        ann.get(&app, "/my").await.status,
        StatusCode::OK,
        "still signed in"
    );
    let r = app
        .store
        .reservations_of(
            app.store
                .member_by_email(&slotcast_domain::EmailAddress::parse("ann@example.org").unwrap())
                .await
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 1, "no forged booking");
    // Signing in needs the token too (no login CSRF).
    let login = Visitor::anonymous()
        .post_raw(
            &app,
            "/login",
            &[
                ("email", "ann@example.org"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(login.session().is_none());
}

async fn the_account_page_changes_name_password_and_upgrades_to_premium(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let gus = register(&app, "gus@example.org", false).await;
    let page = gus.get(&app, "/account").await;
    assert!(page.text.contains("Upgrade to premium"), "{}", page.text);
    let p = gus
        .post(
            &app,
            "/account/profile",
            &[("display_name", "Gus Lee"), ("show_email", "yes")],
        )
        .await;
    assert_eq!(p.location(), "/account?done=profile");
    let page = gus.get(&app, "/account?done=profile").await;
    assert!(page.text.contains(r#"value="Gus Lee""#) && page.text.contains("Saved."));
    // The upgrade needs the terms and a good card.
    let card = [
        ("card_number", "5555 5555 5555 4444"),
        ("exp_month", "3"),
        ("exp_year", "2030"),
        ("holder", "Gus Lee"),
    ];
    let no_terms = gus.post(&app, "/account/card", &card).await;
    assert_eq!(no_terms.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_terms.text.contains(r#"id="terms-error""#));
    let bad: Vec<_> = [
        ("card_number", "1234"),
        ("exp_month", "3"),
        ("exp_year", "2030"),
        ("holder", "Gus"),
        ("terms", "yes"),
    ]
    .to_vec();
    let bad = gus.post(&app, "/account/card", &bad).await;
    assert!(
        bad.text.contains(r#"id="payment.card_number-error""#),
        "{}",
        bad.text
    );
    let mut good = card.to_vec();
    good.push(("terms", "yes"));
    let up = gus.post(&app, "/account/card", &good).await;
    assert_eq!(up.location(), "/account?done=card", "{}", up.text);
    let page = gus.get(&app, "/account").await;
    assert!(
        page.text.contains("mastercard •••• 4444 (03/2030)"),
        "{}",
        page.text
    );
    // The reserve page now offers the form, with e-mail disclosure as the account says.
    let reserve = gus.get(&app, "/my/reserve").await;
    assert!(
        reserve
            .text
            .contains(r#"name="show_email" value="yes" checked"#),
        "{}",
        reserve.text
    );

    // The password: a wrong current one is said; the right one ends the other sessions.
    let other = app
        .sign_in("gus@example.org", "a long enough password")
        .await;
    let other = Visitor::with_session(other.body["token"].as_str().unwrap());
    let wrong = gus
        .post(
            &app,
            "/account/password",
            &[
                ("current_password", "not it at all"),
                ("new_password", "another long password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    assert!(wrong.text.contains("not right"));
    let ok = gus
        .post(
            &app,
            "/account/password",
            &[
                ("current_password", "a long enough password"),
                ("new_password", "another long password"),
            ],
        )
        .await;
    assert_eq!(ok.location(), "/account?done=password");
    assert_eq!(
        gus.get(&app, "/my").await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        other.get(&app, "/my").await.status,
        StatusCode::SEE_OTHER,
        "the other one ended"
    );
    // Sign out everywhere.
    let out = gus.post(&app, "/account/sessions", &[]).await;
    assert_eq!(out.location(), "/login?done=out");
    assert_eq!(gus.get(&app, "/my").await.status, StatusCode::SEE_OTHER);
}

async fn sign_in_is_throttled_like_the_api(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    register(&app, "ann@example.org", false).await;
    let anon = Visitor::anonymous();
    let next = [("next", "/my/reserve")];
    let ok = anon
        .post(
            &app,
            "/login",
            &[
                ("email", "ann@example.org"),
                ("password", "a long enough password"),
                next[0],
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ok.location(),
        "/my/reserve",
        "back where the member was going"
    );
    let away = anon
        .post(
            &app,
            "/login",
            &[
                ("email", "ann@example.org"),
                ("password", "a long enough password"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(away.location(), "/my", "never to another site");
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        let p = anon
            .post(
                &app,
                "/login",
                &[
                    ("email", "ann@example.org"),
                    ("password", "wrong password!"),
                ],
            )
            .await;
        last = p.status;
        if last == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.text.contains("try again in"), "{}", p.text);
            break;
        }
        assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{}", p.text);
        assert!(p.text.contains("wrong e-mail address or password"));
    }
    assert_eq!(
        last,
        StatusCode::TOO_MANY_REQUESTS,
        "throttled after a few failures"
    );
}

const OPERATOR_PAGES: [&str; 6] = [
    "/operator",
    "/operator/channels",
    "/operator/schedule",
    "/operator/members",
    "/operator/billing",
    "/operator/outbox",
];

async fn operator_pages_answer_404_to_everyone_else(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let gus = register(&app, "gus@example.org", false).await;
    let op = Visitor::with_session(&app.operator("op@example.org").await);
    for (who, v) in [
        ("anonymous", &Visitor::anonymous()),
        ("premium", &ann),
        ("general", &gus),
    ] {
        for path in OPERATOR_PAGES {
            assert_eq!(
                v.get(&app, path).await.status,
                StatusCode::NOT_FOUND,
                "{who} {path}"
            );
        }
        for path in [
            "/operator/channels/1/filler",
            "/operator/channels/1/filler/jobs",
        ] {
            let status = v.get(&app, path).await.status;
            assert_eq!(status, StatusCode::NOT_FOUND, "{who} {path}");
        }
        for path in [
            "/operator/channels",
            "/operator/billing/waive",
            "/operator/outbox/retry",
            "/operator/channels/1/filler/remove",
        ] {
            let p = v
                .post(
                    &app,
                    path,
                    &[("name", "x"), ("reservation", "1"), ("id", "1")],
                )
                .await;
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{who} POST {path}");
        }
    }
    for path in OPERATOR_PAGES {
        let p = op.get(&app, path).await;
        assert_eq!(p.status, StatusCode::OK, "operator {path}: {}", p.text);
    }
    let overview = op.get(&app, "/operator").await;
    assert!(
        overview.text.contains("Database") && overview.text.contains("OK (sqlite)")
            || overview.text.contains("OK (postgres)"),
        "{}",
        overview.text
    );
    // Forms need the token here too.
    let forged = op
        .post_raw(
            &app,
            "/operator/channels",
            &[
                ("name", "forged"),
                ("capacity", "1"),
                ("bitrate_kbps", "100"),
                ("tariff_minor", "1"),
                ("currency", "JPY"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn the_operator_creates_a_channel_that_then_appears_in_the_grid(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let op = Visitor::with_session(&app.operator("op@example.org").await);
    let bad = op
        .post(
            &app,
            "/operator/channels",
            &[
                ("name", ""),
                ("capacity", "lots"),
                ("bitrate_kbps", "800"),
                ("tariff_minor", "50"),
                ("currency", "JPY"),
                ("stream_node", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains(r#"id="capacity-error""#), "{}", bad.text);
    let made = op
        .post(
            &app,
            "/operator/channels",
            &[
                ("name", "late-night"),
                ("capacity", "3"),
                ("bitrate_kbps", "800"),
                ("tariff_minor", "50"),
                ("currency", "JPY"),
                ("stream_node", ""),
            ],
        )
        .await;
    assert_eq!(
        made.location(),
        "/operator/channels?done=channel",
        "{}",
        made.text
    );
    let grid = ann.get(&app, "/my/reserve?date=2026-06-01").await;
    assert!(
        grid.text.contains("late-night")
            && grid.text.contains("3 seats · 800 kbit/s · 50 JPY/slot"),
        "{}",
        grid.text
    );
    // A change of capacity shows too.
    let id = app
        .store
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "late-night")
        .unwrap()
        .id
        .0;
    let form = op.get(&app, &format!("/operator/channels?edit={id}")).await;
    assert!(form.text.contains(r#"value="late-night""#));
    let id = id.to_string();
    let changed = op
        .post(
            &app,
            "/operator/channels",
            &[
                ("id", &id),
                ("name", "late-night"),
                ("capacity", "7"),
                ("bitrate_kbps", "800"),
                ("tariff_minor", "50"),
                ("currency", "JPY"),
                ("stream_node", "local"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.text);
    let grid = ann.get(&app, "/my/reserve?date=2026-06-01").await;
    assert!(grid.text.contains("7 seats · 800 kbit/s"), "{}", grid.text);
}

async fn the_operator_waives_a_charge_and_the_invoice_and_export_show_it(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let op = Visitor::with_session(&app.operator("op@example.org").await);
    let id = book(&app, &ann, "Failed show", "2026-06-01T12:00:00Z").await;
    let key = app.key_of(id).await;
    assert_eq!(
        ann.post(
            &app,
            &format!("/my/reservations/{id}/confirm"),
            &[("key", &key)]
        )
        .await
        .status,
        StatusCode::OK
    );
    let billing = op.get(&app, "/operator/billing?month=2026-06").await;
    assert!(
        billing.text.contains("Failed show") && billing.text.contains("300 JPY"),
        "{}",
        billing.text
    );
    assert!(billing.text.contains("ann@example.org"));
    let rid = id.to_string();
    let no_reason = op
        .post(
            &app,
            "/operator/billing/waive",
            &[("reservation", &rid), ("reason", " "), ("month", "2026-06")],
        )
        .await;
    assert_eq!(
        no_reason.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_reason.text
    );
    let waived = op
        .post(
            &app,
            "/operator/billing/waive",
            &[
                ("reservation", &rid),
                ("reason", "the stream node failed"),
                ("month", "2026-06"),
            ],
        )
        .await;
    assert_eq!(
        waived.location(),
        "/operator/billing?done=waived&month=2026-06"
    );
    let billing = op
        .get(&app, "/operator/billing?month=2026-06&done=waived")
        .await;
    assert!(billing.text.contains("The charge is waived.") && billing.text.contains("waived"));
    let twice = op
        .post(
            &app,
            "/operator/billing/waive",
            &[
                ("reservation", &rid),
                ("reason", "again"),
                ("month", "2026-06"),
            ],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.text);
    // The member's invoice and the operator's CSV say so.
    let my = ann.get(&app, "/my").await;
    assert!(my.text.contains("waived"), "{}", my.text);
    let csv = op
        .get(&app, "/api/v1/billing/export.csv?month=2026-06")
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert!(csv.text.contains(",waived,\"Failed show\""), "{}", csv.text);
}

async fn the_operator_sees_the_schedule_members_and_failed_mail(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let op = Visitor::with_session(&app.operator("op@example.org").await);
    let mut secret = booking("Hidden rehearsal");
    secret[4].1 = "secret".into();
    secret[10].1 = "hush-hush".into();
    let p = ann
        .post(
            &app,
            "/my/reserve",
            &fields(&secret, &[("step", "book"), ("terms", "yes")]),
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text);
    let day = op.get(&app, "/operator/schedule?date=2026-06-01").await;
    assert!(
        day.text.contains("Hidden rehearsal") && day.text.contains("Secret"),
        "the operator sees every program: {}",
        day.text
    );
    assert!(
        !day.text.contains("/programs/"),
        "no link to an unlisted program"
    );
    assert_eq!(
        op.get(&app, "/operator/schedule?date=not-a-day")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let found = op.get(&app, "/operator/members?q=ANN@").await;
    assert!(
        found.text.contains("ann@example.org") && found.text.contains("visa •••• 4242"),
        "{}",
        found.text
    );
    assert!(!found.text.contains("op@example.org"));
    let long = "x".repeat(101);
    let refused = op.get(&app, &format!("/operator/members?q={long}")).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A message given up on is listed and queued again.
    let msg = app
        .outbox()
        .await
        .into_iter()
        .next()
        .expect("the key e-mail");
    app.store
        .mark_failed(msg.id, "550 mailbox unavailable", None)
        .await
        .unwrap();
    let outbox = op.get(&app, "/operator/outbox").await;
    assert!(
        outbox.text.contains("550 mailbox unavailable"),
        "{}",
        outbox.text
    );
    let id = msg.id.to_string();
    let retried = op
        .post(&app, "/operator/outbox/retry", &[("id", &id)])
        .await;
    assert_eq!(retried.location(), "/operator/outbox?done=retry");
    let again = op
        .post(&app, "/operator/outbox/retry", &[("id", &id)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        app.store
            .outbox_messages(slotcast_store::MessageState::Failed, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_dashboard_offers_an_extension_taken_with_one_click(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ann = register(&app, "ann@example.org", true).await;
    let id = book(&app, &ann, "Long talk", "2026-06-01T12:00:00Z").await;
    let key = app.key_of(id).await;
    ann.post(
        &app,
        &format!("/my/reservations/{id}/confirm"),
        &[("key", &key)],
    )
    .await;
    let live = format!("/my/reservations/{id}/live");
    let early = ann.get(&app, &live).await;
    assert_eq!(early.status, StatusCode::OK, "{}", early.text);
    assert!(
        !early.text.contains(r#"id="offer""#),
        "no offer before end − 10 min"
    );
    assert!(early.text.contains("Not on air"), "{}", early.text);
    app.set("2026-06-01T12:21:00Z".parse().unwrap());
    let offered = ann.get(&app, &live).await;
    assert!(offered.text.contains(r#"id="offer""#), "{}", offered.text);
    assert!(
        offered.text.contains("+10 min (100 JPY)"),
        "{}",
        offered.text
    );
    let other = register(&app, "bob@example.org", true).await;
    assert_eq!(other.get(&app, &live).await.status, StatusCode::NOT_FOUND);
    let taken = ann
        .post(
            &app,
            &format!("/my/reservations/{id}/extend"),
            &[("slots", "2")],
        )
        .await;
    assert_eq!(
        taken.location(),
        format!("/my/reservations/{id}/live?done=extended"),
        "{}",
        taken.text
    );
    let r = app
        .store
        .reservation(slotcast_domain::ReservationId(id))
        .await
        .unwrap();
    assert_eq!(
        (r.slots, r.schedule.end.to_string()),
        (5, "2026-06-01T12:50:00Z".to_owned())
    );
    let too_many = ann
        .post(
            &app,
            &format!("/my/reservations/{id}/extend"),
            &[("slots", "99")],
        )
        .await;
    assert!(too_many.status.is_client_error(), "{}", too_many.status);
    assert!(too_many.text.contains(r#"role="alert""#));
}
