//! # slotcast-web — the pages people open
//!
//! Server-rendered HTML, in English and Japanese ([`i18n`]):
//! - for viewers: today's live (`/`), the program guide (`/guide`, `/guide/YYYY-MM-DD`),
//!   the program page with its player (`/programs/{slug}`, the address every e-mail and
//!   profile links to), the embeddable player (`/programs/{slug}/embed`), the operator's
//!   pickup (`/pickup`) and `/about`;
//! - for members: `/register`, `/login`, `/account`, `/terms`, my channel (`/my`),
//!   reserve (`/my/reserve`), a reservation's page (`/my/reservations/{id}`: confirm,
//!   connection settings, change, cancel) and its live dashboard (`…/live`);
//! - for operators: the console (`/operator`: channels and their filler, schedule,
//!   members, billing, e-mail).
//!
//! Templates are askama's, checked at compile time; CSS and the small first-party ES
//! modules (clock, countdowns, player, grid selection, clock offset, dashboard) are
//! embedded in the binary ([`assets`]). Forms work without JavaScript; the players need
//! it.
//!
//! The pages read through the center's use cases (`slotcast_center::ops`), never through
//! its HTTP API, and decide nothing themselves: who may see, play, book and change what is
//! the center's. Every answer carries a Content-Security-Policy without inline script,
//! `nosniff` and a referrer policy, and only the embed page may be framed
//! ([`security_headers`]). Forms carry a CSRF token (a `SameSite=Strict` cookie matched by
//! the form or a header); member pages send strangers to the login page, console pages
//! answer them 404.

mod account;
pub mod assets;
mod chart;
mod forms;
pub mod i18n;
mod live;
mod my;
mod operator;
mod pages;
mod reserve;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use slotcast_center::AppState;
use std::sync::Arc;

pub use pages::error_page;

/// The page routes and the static assets. Serve it merged with the center's router, with
/// [`html_errors`] around both so that a browser meets a page, not JSON, on a wrong address.
pub fn router(state: AppState) -> Router {
    let headers = Arc::new(SecurityHeaders::new(
        &state.settings.public_url,
        state.stats.clone(),
    ));
    Router::new()
        .route("/", get(pages::today))
        .route("/guide", get(pages::guide_today))
        .route("/guide/{date}", get(pages::guide))
        .route("/about", get(pages::about))
        .route("/pickup", get(pages::pickup).post(pages::pickup_change))
        .route(
            "/programs/{slug}",
            get(pages::program).post(pages::password),
        )
        .route("/programs/{slug}/embed", get(pages::embed))
        .route("/programs/{slug}/grant", post(pages::grant))
        .route("/programs/{slug}/status", get(pages::status))
        .route("/programs/{slug}/calendar.ics", get(pages::calendar))
        .route(
            "/register",
            get(account::register_form).post(account::register),
        )
        .route("/login", get(account::login_form).post(account::login))
        .route("/logout", post(account::logout))
        .route("/terms", get(account::terms))
        .route("/account", get(account::account))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/card", post(account::card))
        .route("/account/sessions", post(account::sessions))
        .route("/my", get(my::my))
        .route(
            "/my/reserve",
            get(reserve::reserve).post(reserve::reserve_post),
        )
        .route("/my/reservations/{id}", get(my::reservation))
        .route("/my/reservations/{id}/confirm", post(my::confirm))
        .route("/my/reservations/{id}/settings", post(my::settings))
        .route("/my/reservations/{id}/profile", post(my::profile))
        .route(
            "/my/reservations/{id}/change",
            get(my::change_form).post(my::change),
        )
        .route(
            "/my/reservations/{id}/cancel",
            get(my::cancel_form).post(my::cancel),
        )
        .route("/my/reservations/{id}/live", get(live::dashboard))
        .route("/my/reservations/{id}/preview", post(live::preview))
        .route("/my/reservations/{id}/extend", post(live::extend))
        .route("/operator", get(operator::overview))
        .route(
            "/operator/channels",
            get(operator::channels).post(operator::save_channel),
        )
        .route(
            "/operator/channels/{id}/filler",
            get(operator::filler).post(operator::upload_filler).layer(
                axum::extract::DefaultBodyLimit::max(
                    usize::try_from(slotcast_center::ops::operator::FILLER_MAX_BYTES)
                        .unwrap_or(usize::MAX)
                        .saturating_add(64 * 1024),
                ),
            ),
        )
        .route(
            "/operator/channels/{id}/filler/jobs",
            get(operator::filler_jobs),
        )
        .route(
            "/operator/channels/{id}/filler/remove",
            post(operator::remove_filler),
        )
        .route("/operator/schedule", get(operator::schedule))
        .route("/operator/members", get(operator::members))
        .route("/operator/billing", get(operator::billing_month))
        .route("/operator/billing/waive", post(operator::waive))
        .route("/operator/outbox", get(operator::outbox))
        .route("/operator/outbox/retry", post(operator::retry))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            headers,
            security_headers,
        ))
        .with_state(state)
}

/// The security headers of the pages: a CSP without inline script (media and requests
/// only to this service, its public address and the stream nodes players are sent to),
/// for the embed page with framing allowed. Made again only when the nodes change.
#[derive(Debug)]
pub struct SecurityHeaders {
    public: String,
    stats: Arc<dyn slotcast_center::StreamStats>,
    /// The node origins the CSPs were made for, and the CSPs (page, embed page).
    made: std::sync::RwLock<(Vec<String>, HeaderValue, HeaderValue)>,
}

impl SecurityHeaders {
    fn new(public: &str, stats: Arc<dyn slotcast_center::StreamStats>) -> Self {
        let public = slotcast_center::port::origin_of(public).to_owned();
        let made = Self::make(&public, Vec::new());
        SecurityHeaders {
            public,
            stats,
            made: std::sync::RwLock::new(made),
        }
    }

    fn make(public: &str, nodes: Vec<String>) -> (Vec<String>, HeaderValue, HeaderValue) {
        let media = std::iter::once(public)
            .chain(nodes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let csp = |frame: &str| {
            let v = format!(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 media-src 'self' blob: {media}; connect-src 'self' {media}; font-src 'self'; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frame}"
            );
            HeaderValue::from_str(&v)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
        };
        (nodes, csp("'none'"), csp("*"))
    }

    /// The CSP of a page (`embed`: of the embed page), for the nodes as they are now.
    fn csp(&self, embed: bool) -> HeaderValue {
        let nodes = self.stats.media_origins();
        let pick = |m: &(Vec<String>, HeaderValue, HeaderValue)| {
            if embed { m.2.clone() } else { m.1.clone() }
        };
        {
            let made = self.made.read().expect("csp lock");
            if made.0 == nodes {
                return pick(&made);
            }
        }
        let made = Self::make(&self.public, nodes);
        let csp = pick(&made);
        *self.made.write().expect("csp lock") = made;
        csp
    }
}

/// What every page answer carries: the CSP, `nosniff`, a referrer policy, no framing but
/// for the embed page; and the language cookie when `?lang=` switched it.
pub async fn security_headers(
    State(sh): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let embed = req.uri().path().ends_with("/embed");
    let switch = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
        .and_then(i18n::Lang::parse);
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, sh.csp(embed));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !embed {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    if let Some(lang) = switch {
        let code = lang.text().lang;
        let cookie = format!(
            "{}={code}; Path=/; Max-Age=31536000; SameSite=Lax",
            i18n::LANG_COOKIE
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

/// A browser that asks for a page (`Accept: text/html`) and meets a JSON 404, 405 or 5xx
/// outside `/api/` gets the HTML error page instead; API clients keep their JSON.
pub async fn html_errors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let api = req.uri().path().starts_with("/api/");
    // What the error page needs of the request (its language), kept only when it may be
    // shown.
    let mut headers = axum::http::HeaderMap::new();
    if wants_html && !api {
        for name in [header::ACCEPT_LANGUAGE, header::COOKIE] {
            for v in req.headers().get_all(&name) {
                headers.append(name.clone(), v.clone());
            }
        }
    }
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let replace = wants_html
        && !api
        && is_json
        && (status == StatusCode::NOT_FOUND
            || status == StatusCode::METHOD_NOT_ALLOWED
            || status.is_server_error());
    if !replace {
        return res;
    }
    let status = if status == StatusCode::METHOD_NOT_ALLOWED {
        StatusCode::NOT_FOUND
    } else {
        status
    };
    let mut page = error_page(&st, &headers, status).into_response();
    page.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    page
}
