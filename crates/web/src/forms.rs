//! What the member and operator pages share: field errors shown beside their fields, who
//! may open them ([`Signed`]: a redirect to the login page that comes back; [`OperatorOnly`]:
//! 404 to everyone else), the CSRF check of a posted form, and a member page's layout.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use slotcast_center::AppState;
use slotcast_center::auth::Authed;
use slotcast_center::error::{ApiError, ErrorCode};
use slotcast_store::{Member, Role};

use crate::pages::{Layout, csrf_ok, csrf_token, failed, urlencode};

/// A form's problems: per field (shown beside it) and for the whole form.
#[derive(Debug, Default)]
pub struct Errs {
    fields: BTreeMap<String, String>,
    /// A problem of the whole form (a slot taken, the quota, a wrong key…).
    pub top: Option<String>,
}

impl Errs {
    /// What the center's use case said: its field errors, else its message.
    pub fn of(e: &ApiError) -> Errs {
        if e.fields.is_empty() {
            Errs {
                fields: BTreeMap::new(),
                top: Some(e.message.clone()),
            }
        } else {
            Errs {
                fields: e.fields.clone(),
                top: None,
            }
        }
    }

    /// A problem of the whole form.
    pub fn whole(message: impl Into<String>) -> Errs {
        Errs {
            fields: BTreeMap::new(),
            top: Some(message.into()),
        }
    }

    /// One field's problem.
    pub fn field(name: &str, message: impl Into<String>) -> Errs {
        Errs {
            fields: BTreeMap::from([(name.to_owned(), message.into())]),
            top: None,
        }
    }

    /// The problem of field `name` (or of a part of it: `invitees[2]`, `payment.holder`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str).or_else(|| {
            self.fields
                .iter()
                .find(|(k, _)| {
                    k.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('['))
                })
                .map(|(_, v)| v.as_str())
        })
    }

    /// Whether there is any problem.
    pub fn any(&self) -> bool {
        self.top.is_some() || !self.fields.is_empty()
    }

    /// The problems as the page's language says them (the center writes them in
    /// English).
    pub fn in_lang(mut self, lang: crate::i18n::Lang) -> Errs {
        if lang == crate::i18n::Lang::Ja {
            let ja = |m: &mut String| {
                if let Some(t) = crate::i18n::messages::ja(m) {
                    *m = t;
                }
            };
            self.fields.values_mut().for_each(ja);
            self.top.iter_mut().for_each(ja);
        }
        self
    }

    /// The status of a page showing these problems: 422 when there are any.
    pub fn status(&self) -> StatusCode {
        if self.any() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        }
    }

    /// The attributes of an input whose field has a problem (`name` is a literal of the
    /// template, never user input).
    pub fn attrs(&self, name: &str) -> String {
        match self.get(name) {
            Some(_) => format!(r#" aria-invalid="true" aria-describedby="{name}-error""#),
            None => String::new(),
        }
    }
}

/// The signed-in member of a member page; anyone else is sent to the login page, which
/// comes back here.
pub struct Signed(pub Member);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        match <Authed as OptionalFromRequestParts<AppState>>::from_request_parts(parts, st).await {
            Ok(Some(Authed(m))) => Ok(Signed(m)),
            _ => {
                let back = parts.uri.path_and_query().map_or("/my", |p| p.as_str());
                Err(Redirect::to(&format!("/login?next={}", urlencode(back))).into_response())
            }
        }
    }
}

/// A signed-in operator; everyone else gets the 404 page, signed in or not.
pub struct OperatorOnly(pub Member);

impl FromRequestParts<AppState> for OperatorOnly {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        match <Authed as OptionalFromRequestParts<AppState>>::from_request_parts(parts, st).await {
            Ok(Some(Authed(m))) if m.role == Role::Operator => Ok(OperatorOnly(m)),
            _ => Err(crate::pages::error_page(
                st,
                &parts.headers,
                StatusCode::NOT_FOUND,
            )),
        }
    }
}

/// A member page's layout: its menu `section`, the CSRF token of its forms (and whether
/// it is new, to be set as a cookie).
pub fn member_layout(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    m: &Member,
    section: &'static str,
    title: &str,
) -> (Layout, bool) {
    let mut l = Layout::new(st, headers, lang, title);
    let (csrf, fresh) = csrf_token(headers);
    l.csrf = csrf;
    l.section = section;
    l.operator = m.role == Role::Operator;
    l.noindex = true;
    (l, fresh)
}

/// Refuses a posted form whose CSRF token is not this browser's: the "form expired" page
/// (403).
#[allow(clippy::result_large_err)]
pub fn check_csrf(st: &AppState, headers: &HeaderMap, presented: &str) -> Result<(), Response> {
    if csrf_ok(headers, Some(presented)) {
        return Ok(());
    }
    let t = crate::i18n::Lang::choose(None, headers).text();
    let mut res = failed(
        st,
        headers,
        &ApiError::new(ErrorCode::CrossOrigin, t.form_expired),
    );
    *res.status_mut() = StatusCode::FORBIDDEN;
    Err(res)
}

/// A checkbox's value in a form (`yes` when ticked, absent otherwise).
pub fn ticked(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty())
}
