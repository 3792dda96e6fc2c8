//! The viewer pages over the real center (SQLite and PostgreSQL), driven with `oneshot`:
//! what is listed, what a password program shows before and after its password, the
//! headers every page carries, the HTML error pages. The browser tests (`browser.rs`) play
//! the video.

#[macro_use]
#[path = "../../center/tests/common/mod.rs"]
mod common;
mod site;

use axum::http::{Method, StatusCode};
use common::{App, Backend, PUBLIC_URL, open};
use serde_json::{Value, json};
use site::{Page, get, page};
use slotcast_domain::Policy;

on_both!(
    today_and_the_guide_list_public_and_password_programs_and_never_a_secret_one,
    a_password_program_shows_no_player_before_its_password,
    every_page_carries_the_security_headers_and_only_the_embed_may_be_framed,
    browsers_get_html_error_pages_and_api_clients_json,
    the_watch_link_of_an_invitation_opens_the_program_page,
    pages_speak_japanese_when_asked,
    operators_feature_programs_which_come_first,
    the_listings_follow_every_booking_change_and_state_change,
);

const NOW: &str = "2026-06-01T08:00:00Z";

/// Books and confirms a program; its slug.
async fn program(app: &App, token: &str, body: Value) -> String {
    let id = app.book_id(token, body).await;
    let key = app.key_of(id).await;
    let r = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(token),
            json!({"reservation_key": key}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["reservation"]["slug"].as_str().unwrap().to_owned()
}

struct Three {
    public: String,
    password: String,
    secret: String,
}

async fn three(app: &App) -> Three {
    let (tok, _) = app.member("ann@example.org", true).await;
    Three {
        public: program(app, &tok, json!({"channel": "small", "start": "2026-06-01T12:00:00Z", "slots": 3,
            "visibility": "public", "title": "Morning jazz", "genre": "Music", "outline": "A trio"})).await,
        password: program(app, &tok, json!({"channel": "medium", "start": "2026-06-01T13:00:00Z", "slots": 2,
            "visibility": "password", "viewer_password": "let-me-in", "title": "Members' talk"})).await,
        secret: program(app, &tok, json!({"channel": "small", "start": "2026-06-01T15:00:00Z", "slots": 2,
            "visibility": "secret", "viewer_password": "hush-hush", "title": "Hidden rehearsal"})).await,
    }
}

async fn today_and_the_guide_list_public_and_password_programs_and_never_a_secret_one(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let p = three(&app).await;
    for path in ["/", "/guide", "/guide/2026-06-01"] {
        let page = get(&app, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.text.contains("Morning jazz"), "{path}");
        assert!(
            page.text.contains("Members&#39; talk"),
            "{path}: {}",
            page.text
        );
        assert!(
            page.text.contains(&format!("/programs/{}", p.public)),
            "{path}"
        );
        assert!(
            !page.text.contains("Hidden rehearsal"),
            "{path} shows a secret title"
        );
        assert!(!page.text.contains(&p.secret), "{path} shows a secret slug");
        // The clock starts at the server's time.
        assert!(
            page.text.contains(r#"datetime="2026-06-01T08:00:00Z""#),
            "{path}"
        );
        assert!(page.text.contains(">08:00:00<"), "{path}");
    }
    let guide = get(&app, "/guide/2026-06-01").await;
    // The calendar marks the day; the grid has a column per channel.
    assert!(
        guide.text.contains(r#"class="marked chosen""#),
        "{}",
        guide.text
    );
    assert!(guide.text.contains("<th scope=\"col\">medium</th>"));
    let music = get(&app, "/guide/2026-06-01?genre=Music").await;
    assert!(music.text.contains("Morning jazz") && !music.text.contains("Members&#39; talk"));
    for bad in ["/guide/2026-13-01", "/guide/2099-01-01", "/guide/%00"] {
        assert_eq!(get(&app, bad).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
    // The secret program's own page is there for whoever has its address.
    let secret = get(&app, &format!("/programs/{}", p.secret)).await;
    assert_eq!(secret.status, StatusCode::OK);
    assert!(secret.text.contains("noindex"));
}

fn cookie_of(p: &Page, name: &str) -> String {
    p.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", p.headers))
        .to_owned()
}

async fn a_password_program_shows_no_player_before_its_password(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let p = three(&app).await;
    let path = format!("/programs/{}", p.password);
    let first = get(&app, &path).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.text.contains(r#"name="robots" content="noindex"#));
    assert!(first.text.contains(r#"type="password""#));
    assert!(
        !first.text.contains("id=\"player\""),
        "a player before the password"
    );
    assert!(!first.text.contains("/live/") && !first.text.contains("token="));
    let csrf = cookie_of(&first, "slotcast_csrf");
    let cookie = format!("slotcast_csrf={csrf}");
    let form = [
        ("accept", "text/html"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
    ];

    let forged = page(
        &app,
        Method::POST,
        &path,
        &form,
        "csrf=nope&password=let-me-in",
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.text.contains("The form expired"));

    let wrong = page(
        &app,
        Method::POST,
        &path,
        &form,
        &format!("csrf={csrf}&password=guess"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.text.contains("That password is not right"));
    assert!(!wrong.text.contains("id=\"player\""));

    let right = page(
        &app,
        Method::POST,
        &path,
        &form,
        &format!("csrf={csrf}&password=let-me-in"),
    )
    .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.text);
    let pass_name = format!("slotcast_pass_{}", p.password);
    let pass = cookie_of(&right, &pass_name);
    let both = format!("{cookie}; {pass_name}={pass}");
    let admitted = page(
        &app,
        Method::GET,
        &path,
        &[("accept", "text/html"), ("cookie", both.as_str())],
        "",
    )
    .await;
    assert!(admitted.text.contains("id=\"player\""), "{}", admitted.text);

    // The player's grant: the CSRF header, and the pass for this program only.
    let grant = format!("{path}/grant");
    let ask = |c: String, token: &'static str| {
        let app = &app;
        let grant = grant.clone();
        async move {
            page(
                app,
                Method::POST,
                &grant,
                &[("cookie", c.as_str()), ("x-csrf-token", token)],
                "",
            )
            .await
        }
    };
    let csrf_static: &'static str = Box::leak(csrf.clone().into_boxed_str());
    let early = ask(both.clone(), csrf_static).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    assert!(early.text.contains("not_on_air"));
    app.set("2026-06-01T13:05:00Z".parse().unwrap());
    let on_air = ask(both.clone(), csrf_static).await;
    assert_eq!(on_air.status, StatusCode::OK, "{}", on_air.text);
    let g: Value = serde_json::from_str(&on_air.text).unwrap();
    assert_eq!(g["kind"], "live");
    // The site serves the stream itself: a path, on whatever host the page was opened.
    assert!(
        g["urls"]["mse"]
            .as_str()
            .unwrap()
            .starts_with("/live/medium.mp4?token="),
        "{g}"
    );
    assert_eq!(
        ask(cookie.clone(), csrf_static).await.status,
        StatusCode::FORBIDDEN,
        "no pass"
    );
    assert_eq!(
        ask(both.clone(), "forged").await.status,
        StatusCode::FORBIDDEN,
        "no CSRF"
    );
    let other = format!("{cookie}; slotcast_pass_{}={pass}", p.secret);
    let secret_grant = page(
        &app,
        Method::POST,
        &format!("/programs/{}/grant", p.secret),
        &[("cookie", other.as_str()), ("x-csrf-token", csrf_static)],
        "",
    )
    .await;
    assert_eq!(
        secret_grant.status,
        StatusCode::FORBIDDEN,
        "a pass is for its own program"
    );
}

async fn every_page_carries_the_security_headers_and_only_the_embed_may_be_framed(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let p = three(&app).await;
    for path in ["/", "/guide", "/about", &format!("/programs/{}", p.public)] {
        let page = get(&app, path).await;
        let h = |k: &str| {
            page.headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert!(!h("referrer-policy").is_empty(), "{path}");
        assert!(
            !page.text.contains("<script>") && !page.text.contains(" onclick="),
            "{path}: inline script"
        );
    }
    let embed = get(&app, &format!("/programs/{}/embed", p.public)).await;
    assert_eq!(embed.status, StatusCode::OK);
    assert!(embed.headers.get("x-frame-options").is_none());
    assert!(
        embed.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors *")
    );
    for protected in [&p.password, &p.secret] {
        let e = get(&app, &format!("/programs/{protected}/embed")).await;
        assert_eq!(
            e.status,
            StatusCode::NOT_FOUND,
            "only public programs embed"
        );
    }
    let css = get(&app, "/static/site.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let ics = get(&app, &format!("/programs/{}/calendar.ics", p.public)).await;
    assert!(ics.text.contains("BEGIN:VEVENT") && ics.text.contains("Morning jazz"));
}

async fn browsers_get_html_error_pages_and_api_clients_json(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let nope = get(&app, "/no/such/page").await;
    assert_eq!(nope.status, StatusCode::NOT_FOUND);
    assert!(nope.text.contains("<h1>Not found</h1>"), "{}", nope.text);
    let missing = get(&app, "/programs/nosuchprogram").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("<!doctype html>"));
    let api = get(&app, "/api/v1/nope").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.text.starts_with("{\"error\""), "{}", api.text);
    let json_client = page(
        &app,
        Method::GET,
        "/no/such/page",
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert!(json_client.text.starts_with("{\"error\""));
}

async fn the_watch_link_of_an_invitation_opens_the_program_page(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let (tok, _) = app.member("ann@example.org", true).await;
    let slug = program(
        &app,
        &tok,
        json!({"channel": "small", "start": "2026-06-01T12:00:00Z", "slots": 1,
        "visibility": "password", "viewer_password": "let-me-in", "title": "Invited",
        "invitees": ["bo@example.org"]}),
    )
    .await;
    let mails = app.outbox().await;
    let link = format!("{PUBLIC_URL}/programs/{slug}");
    let invitation = mails
        .iter()
        .find(|m| m.message.to.to_string() == "bo@example.org" && m.message.text.contains(&link))
        .unwrap_or_else(|| panic!("no invitation with {link}"));
    let path = link.strip_prefix(PUBLIC_URL).unwrap();
    let page = get(&app, path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", invitation.message.text);
    assert!(page.text.contains("<h1>Invited</h1>"));
}

async fn pages_speak_japanese_when_asked(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let ja = page(
        &app,
        Method::GET,
        "/",
        &[("accept-language", "ja,en;q=0.5")],
        "",
    )
    .await;
    assert!(ja.text.contains(r#"<html lang="ja">"#) && ja.text.contains("本日のライブ"));
    let switched = page(
        &app,
        Method::GET,
        "/?lang=en",
        &[("accept-language", "ja")],
        "",
    )
    .await;
    assert!(switched.text.contains(r#"<html lang="en">"#));
    assert!(cookie_of(&switched, "slotcast_lang") == "en");
    let remembered = page(
        &app,
        Method::GET,
        "/guide",
        &[("accept-language", "ja"), ("cookie", "slotcast_lang=en")],
        "",
    )
    .await;
    assert!(remembered.text.contains("Program guide"));
}

async fn operators_feature_programs_which_come_first(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let p = three(&app).await;
    let op = app.operator("op@example.org").await;
    let (viewer, _) = app.member("vi@example.org", false).await;
    let put = |slug: &str, token: &str| {
        let (path, token) = (
            format!("/api/v1/programs/{slug}/pickup"),
            format!("Bearer {token}"),
        );
        let app = &app;
        async move {
            page(
                app,
                Method::PUT,
                &path,
                &[("authorization", token.as_str())],
                "",
            )
            .await
        }
    };
    assert_eq!(
        put(&p.password, &viewer).await.status,
        StatusCode::FORBIDDEN,
        "operators only"
    );
    let secret = put(&p.secret, &op).await;
    assert_eq!(secret.status, StatusCode::CONFLICT, "{}", secret.text);
    assert_eq!(put(&p.password, &op).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        put(&p.password, &op).await.status,
        StatusCode::NO_CONTENT,
        "twice is once"
    );
    let listed = app.get("/api/v1/pickup", None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1, "{}", listed.text);
    assert_eq!(listed.body[0]["slug"], p.password.as_str());
    let doc = app.get("/api/v1/openapi.json", None).await;
    assert!(doc.body["paths"]["/api/v1/programs/{slug}/pickup"]["put"].is_object());

    // Today's live shows the featured program first (and once).
    let today = get(&app, "/").await;
    let featured_at = today.text.find("Members&#39; talk").unwrap();
    assert!(
        featured_at < today.text.find("Morning jazz").unwrap(),
        "featured first"
    );
    assert_eq!(today.text.matches("Members&#39; talk").count(), 1);
    let pickup = get(&app, "/pickup").await;
    assert!(pickup.text.contains("Members&#39; talk") && !pickup.text.contains("Morning jazz"));
    assert!(
        !pickup.text.contains("Stop featuring"),
        "no operator form for others"
    );

    // The operator's forms: feature from the program page, stop from the pickup page.
    let bearer = format!("Bearer {op}");
    let as_op = [("accept", "text/html"), ("authorization", bearer.as_str())];
    let program_page = page(
        &app,
        Method::GET,
        &format!("/programs/{}", p.public),
        &as_op,
        "",
    )
    .await;
    assert!(
        program_page.text.contains("Feature this program"),
        "{}",
        program_page.text
    );
    let csrf = cookie_of(&program_page, "slotcast_csrf");
    let cookie = format!("slotcast_csrf={csrf}");
    // A minute after the first pickup, so "newest first" has an order to show.
    app.set("2026-06-01T08:01:00Z".parse().unwrap());
    let form = [
        ("accept", "text/html"),
        ("authorization", bearer.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookie.as_str()),
    ];
    let added = page(
        &app,
        Method::POST,
        "/pickup",
        &form,
        &format!("csrf={csrf}&slug={}&action=add", p.public),
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    let forged = page(
        &app,
        Method::POST,
        "/pickup",
        &form,
        &format!("csrf=x&slug={}&action=remove", p.public),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let by_viewer = page(
        &app,
        Method::POST,
        "/pickup",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookie.as_str()),
        ],
        &format!("csrf={csrf}&slug={}&action=remove", p.public),
    )
    .await;
    assert_eq!(by_viewer.status, StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/pickup", None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    assert_eq!(listed.body[0]["slug"], p.public.as_str(), "newest first");
    let on_pickup = page(&app, Method::GET, "/pickup", &as_op, "").await;
    assert!(on_pickup.text.contains("Stop featuring"));
    let removed = page(
        &app,
        Method::POST,
        "/pickup",
        &form,
        &format!("csrf={csrf}&slug={}&action=remove", p.password),
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/pickup", None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn the_listings_follow_every_booking_change_and_state_change(b: Backend) {
    let Some(app) = open(b, NOW, Policy::default()).await else {
        return;
    };
    let (tok, _) = app.member("ann@example.org", true).await;
    let empty = get(&app, "/").await;
    assert!(empty.text.contains("Nothing more is scheduled today"));
    // A booking shows once confirmed.
    let id = app
        .book_id(
            &tok,
            json!({"channel": "small", "start": "2026-06-01T12:00:00Z", "slots": 1,
            "visibility": "public", "title": "First title"}),
        )
        .await;
    assert!(
        !get(&app, "/").await.text.contains("First title"),
        "not before confirmation"
    );
    let key = app.key_of(id).await;
    let confirmed = app
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            Some(&tok),
            json!({"reservation_key": key}),
        )
        .await;
    let slug = confirmed.body["reservation"]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(get(&app, "/").await.text.contains("First title"));
    assert!(
        get(&app, &format!("/programs/{slug}"))
            .await
            .text
            .contains("First title")
    );
    // A change shows at once, on every page.
    let changed = app
        .call(
            Method::PATCH,
            &format!("/api/v1/reservations/{id}"),
            Some(&tok),
            Some(json!({"title": "Second title"})),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    for path in [
        "/".to_owned(),
        "/guide".to_owned(),
        format!("/programs/{slug}"),
    ] {
        let page = get(&app, &path).await;
        assert!(
            page.text.contains("Second title") && !page.text.contains("First title"),
            "{path}"
        );
    }
    // Time moves the badge without any write.
    app.set("2026-06-01T12:01:00Z".parse().unwrap());
    assert!(get(&app, "/").await.text.contains(">ON AIR<"));
    app.set("2026-06-01T12:11:00Z".parse().unwrap());
    assert!(get(&app, "/").await.text.contains(">ENDED<"));
    // A cancellation takes it off.
    app.set(NOW.parse().unwrap());
    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/api/v1/reservations/{id}"),
            Some(&tok),
            None,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert!(!get(&app, "/").await.text.contains("Second title"));
    assert_eq!(
        get(&app, &format!("/programs/{slug}")).await.status,
        StatusCode::NOT_FOUND
    );
}
