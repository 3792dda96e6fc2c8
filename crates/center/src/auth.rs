//! Who is asking: the session cookie or `Authorization: Bearer <token>` resolve to a
//! member; operator-only routes check the role. Cookie-authenticated requests that change
//! something must come from our own origin (CSRF): JSON bodies need
//! `Content-Type: application/json`, which a foreign form cannot send, and a present
//! `Origin` header must match `public_url`.
//!
//! A verified session is kept for [`SESSION_KEPT`] ([`Sessions`]), so that a burst of
//! requests costs one lookup. The use cases that change a member or end sessions forget
//! the member's kept sessions on their replica at once; another replica may still honour
//! an ended session, or show the member as before, for up to that long.

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use slotcast_domain::{MemberId, Timestamp};
use slotcast_store::{Member, Role, StorageError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "slotcast_session";

/// The signed-in member.
#[derive(Debug, Clone)]
pub struct Authed(pub Member);

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Operator(pub Member);

fn bearer(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?
        .trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The session token from the cookie header, if any.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).map(str::to_owned)
}

/// The value of cookie `name` in the request's `Cookie` headers, if any.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn resolve(parts: &Parts, st: &AppState) -> Result<Option<Member>, ApiError> {
    let (token, via_cookie) = match bearer(parts) {
        Some(t) => (t, false),
        None => match cookie_token(&parts.headers) {
            Some(t) => (t, true),
            None => return Ok(None),
        },
    };
    if token.len() > 128 {
        return Err(ApiError::unauthenticated());
    }
    let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if via_cookie && unsafe_method && origin.is_some_and(|o| o != st.settings.public_url) {
        return Err(ApiError::new(
            ErrorCode::CrossOrigin,
            "requests from other sites cannot use your session",
        ));
    }
    let hash = crate::secrets::token_hash(&token);
    let now = st.clock.now();
    if let Some(m) = st.sessions.get(&hash, now) {
        return Ok(Some(m));
    }
    match st.store.session_member(&hash, now).await {
        Ok(m) => {
            st.sessions.keep(hash, &m, now);
            Ok(Some(m))
        }
        Err(StorageError::NotFound { .. }) => Err(ApiError::unauthenticated()),
        Err(e) => Err(e.into()),
    }
}

/// How long a verified session is kept before it is looked up again.
pub const SESSION_KEPT: Duration = Duration::from_secs(1);

/// Sessions kept at most; past it they start over (a bound on what many signed-in
/// clients can make us hold).
const SESSIONS_MAX: usize = 4096;

/// Recently verified sessions: their member, and when they were looked up.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<[u8; 32], (Member, Timestamp)>>);

impl Sessions {
    fn get(&self, hash: &[u8; 32], now: Timestamp) -> Option<Member> {
        let map = self.0.lock().expect("sessions lock");
        let (m, at) = map.get(hash)?;
        (*at <= now && now.duration_since(*at).unsigned_abs() < SESSION_KEPT).then(|| m.clone())
    }

    fn keep(&self, hash: [u8; 32], m: &Member, now: Timestamp) {
        let mut map = self.0.lock().expect("sessions lock");
        if map.len() >= SESSIONS_MAX {
            map.clear();
        }
        map.insert(hash, (m.clone(), now));
    }

    /// Forgets the session of token hash `hash` (it ended).
    pub fn forget(&self, hash: &[u8; 32]) {
        self.0.lock().expect("sessions lock").remove(hash);
    }

    /// Forgets every kept session of `member` (it changed, or its sessions ended).
    pub fn forget_member(&self, member: MemberId) {
        self.0
            .lock()
            .expect("sessions lock")
            .retain(|_, (m, _)| m.id != member);
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        resolve(parts, st)
            .await?
            .map(Authed)
            .ok_or_else(ApiError::unauthenticated)
    }
}

impl OptionalFromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(resolve(parts, st).await.ok().flatten().map(Authed))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let Authed(m) =
            <Authed as FromRequestParts<AppState>>::from_request_parts(parts, st).await?;
        if m.role != Role::Operator {
            return Err(ApiError::new(
                ErrorCode::OperatorOnly,
                "only operators can do this",
            ));
        }
        Ok(Operator(m))
    }
}

/// The client's address: the connection's peer, or behind a trusted proxy the address
/// it forwarded for (see [`crate::net::client_ip`]); `None` when the router is served
/// without [`Peer`](crate::net::Peer).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl ClientIp {
    /// A throttle key for this client under `scope`.
    pub fn key(&self, scope: &str) -> String {
        match self.0 {
            Some(ip) => format!("{scope}:{ip}"),
            None => format!("{scope}:local"),
        }
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<crate::net::Peer>>()
            .map(|c| c.0.0.ip());
        Ok(ClientIp(peer.map(|p| {
            crate::net::client_ip(p, &parts.headers, &st.settings.trusted_proxies)
        })))
    }
}
