//! The site as `slotcastd` serves it (pages, API, HTML errors), driven with `oneshot`
//! from a loopback peer.

#![allow(dead_code)]

use crate::common::App;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use tower::ServiceExt;

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

/// The site as `slotcastd` serves it: pages, API, HTML errors.
pub async fn page(
    app: &App,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Page {
    let center = app.center.clone();
    let site = slotcast_web::router(center.clone())
        .merge(slotcast_center::router(center.clone()))
        .layer(axum::middleware::from_fn_with_state(
            center,
            slotcast_web::html_errors,
        ));
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body.to_owned())).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(slotcast_center::net::Peer(
            "127.0.0.1:40000".parse().unwrap(),
        )));
    let res = site.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
        .await
        .unwrap();
    Page {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub async fn get(app: &App, path: &str) -> Page {
    page(app, Method::GET, path, &[("accept", "text/html")], "").await
}

/// A browser: its cookies (a CSRF token, and a session once signed in) and the forms it
/// posts with that token.
pub struct Visitor {
    pub csrf: String,
    pub session: Option<String>,
}

impl Visitor {
    pub fn anonymous() -> Visitor {
        Visitor {
            csrf: "0123456789abcdef0123456789abcdef".into(),
            session: None,
        }
    }

    /// A browser signed in with the session token `token`.
    pub fn with_session(token: &str) -> Visitor {
        Visitor {
            session: Some(token.to_owned()),
            ..Visitor::anonymous()
        }
    }

    fn cookies(&self) -> String {
        let mut c = format!("slotcast_csrf={}", self.csrf);
        if let Some(s) = &self.session {
            c.push_str(&format!("; slotcast_session={s}"));
        }
        c
    }

    pub async fn get(&self, app: &App, path: &str) -> Page {
        let cookies = self.cookies();
        page(
            app,
            Method::GET,
            path,
            &[("accept", "text/html"), ("cookie", &cookies)],
            "",
        )
        .await
    }

    /// Posts a form with this browser's CSRF token.
    pub async fn post(&self, app: &App, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(app, path, &all).await
    }

    /// Posts a form as it is (a forged one carries no token).
    pub async fn post_raw(&self, app: &App, path: &str, fields: &[(&str, &str)]) -> Page {
        let cookies = self.cookies();
        page(
            app,
            Method::POST,
            path,
            &[
                ("accept", "text/html"),
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &cookies),
            ],
            &form_body(fields),
        )
        .await
    }
}

/// `application/x-www-form-urlencoded`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(char::from(b))
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Page {
    /// Where a redirect goes.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The session token a `Set-Cookie` header gives.
    pub fn session(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("slotcast_session="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|t| !t.is_empty())
    }
}
