//! The one place errors become HTTP answers:
//! `{"error": {"code": "slot_taken", "message": "…", "fields": {"title": "…"}}}`.
//!
//! Every code is an [`ErrorCode`], and each code has one HTTP status. The use cases and the
//! handlers build [`ApiError`]s without thinking of HTTP; storage, lifecycle and field
//! errors convert here. Errors are logged once, by [`log_errors`] reading the response:
//! 5xx with the detail that was kept from the client, 4xx briefly.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use slotcast_domain::FieldErrors;
use slotcast_domain::lifecycle::LifecycleError;
use slotcast_store::{Conflict, StorageError};
use std::collections::BTreeMap;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal => $status:ident,)*) => {
        /// The error codes of the API (`shared/docs/api.md`), each with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as clients see it.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }
        }
    };
}

codes! {
    /// The body is not valid JSON.
    MalformedJson = "malformed_json" => BAD_REQUEST,
    /// The body could not be read.
    UnreadableBody = "unreadable_body" => BAD_REQUEST,
    /// The request itself is malformed (its path, its query).
    BadRequest = "bad_request" => BAD_REQUEST,
    /// The path exists, the method does not.
    MethodNotAllowed = "method_not_allowed" => METHOD_NOT_ALLOWED,
    /// Not signed in.
    Unauthenticated = "unauthenticated" => UNAUTHORIZED,
    /// Wrong e-mail address or password.
    InvalidCredentials = "invalid_credentials" => UNAUTHORIZED,
    /// A cookie-authenticated request from another site.
    CrossOrigin = "cross_origin" => FORBIDDEN,
    /// Operators only.
    OperatorOnly = "operator_only" => FORBIDDEN,
    /// Premium members only.
    PremiumRequired = "premium_required" => FORBIDDEN,
    /// The reservation key is not this reservation's.
    WrongKey = "wrong_key" => FORBIDDEN,
    /// The program needs its viewer password.
    PasswordRequired = "password_required" => FORBIDDEN,
    /// A wrong password (viewer or current account password).
    WrongPassword = "wrong_password" => FORBIDDEN,
    /// No such thing, or not the caller's.
    NotFound = "not_found" => NOT_FOUND,
    /// A slot is taken.
    SlotTaken = "slot_taken" => CONFLICT,
    /// The monthly quota would be exceeded.
    QuotaExceeded = "quota_exceeded" => CONFLICT,
    /// Not allowed in the reservation's state.
    WrongState = "wrong_state" => CONFLICT,
    /// The confirm deadline passed.
    DeadlinePassed = "deadline_passed" => CONFLICT,
    /// The program is over.
    Ended = "ended" => CONFLICT,
    /// Not yet.
    NotYet = "not_yet" => CONFLICT,
    /// The e-mail address has an account.
    EmailTaken = "email_taken" => CONFLICT,
    /// Another channel has the name.
    ChannelNameTaken = "channel_name_taken" => CONFLICT,
    /// A random id collided; try again.
    Retry = "retry" => CONFLICT,
    /// The charge is not in a state that allows this.
    ChargeState = "charge_state" => CONFLICT,
    /// No extension is offered.
    NotOffered = "not_offered" => CONFLICT,
    /// The program is not on air yet.
    NotOnAir = "not_on_air" => CONFLICT,
    /// The channel is full.
    ChannelFull = "channel_full" => CONFLICT,
    /// The recording is still being written.
    RecordingInProgress = "recording_in_progress" => CONFLICT,
    /// The body is too large.
    BodyTooLarge = "body_too_large" => PAYLOAD_TOO_LARGE,
    /// Not JSON.
    UnsupportedMediaType = "unsupported_media_type" => UNSUPPORTED_MEDIA_TYPE,
    /// The request's target is longer than an HTTP library can hold (64 KiB).
    UriTooLong = "uri_too_long" => URI_TOO_LONG,
    /// The request's header block is too large.
    HeadersTooLarge = "headers_too_large" => REQUEST_HEADER_FIELDS_TOO_LARGE,
    /// Some fields are not valid (`fields` says which and why).
    InvalidFields = "invalid_fields" => UNPROCESSABLE_ENTITY,
    /// Too many wrong reservation keys.
    KeyLocked = "key_locked" => TOO_MANY_REQUESTS,
    /// Too many failed attempts.
    TooManyAttempts = "too_many_attempts" => TOO_MANY_REQUESTS,
    /// Our fault; logged.
    Internal = "internal" => INTERNAL_SERVER_ERROR,
    /// A dependency (the database) is down.
    Unavailable = "unavailable" => SERVICE_UNAVAILABLE,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable machine-readable code; it decides the HTTP status.
    pub code: ErrorCode,
    /// For a person.
    pub message: String,
    /// Per-field problems.
    pub fields: BTreeMap<String, String>,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
    /// What went wrong on our side: logged, never sent.
    pub detail: Option<String>,
}

impl ApiError {
    /// An error with no field details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
            detail: None,
        }
    }

    /// The HTTP status of its code.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// 401: who are you?
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "sign in first (session cookie or Authorization: Bearer token)",
        )
    }

    /// 404 for `what` (also used where the thing exists but is not the caller's).
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 422 with one field problem.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorCode::InvalidFields, "some fields are not valid");
        e.fields.insert(field.to_owned(), message.into());
        e
    }

    /// 429 with a wait.
    pub fn too_many(code: ErrorCode, message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(code, message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 500; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            ErrorCode::Internal,
            "something went wrong on our side; it has been logged",
        );
        e.detail = Some(detail.to_string());
        e
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<FieldErrors> for ApiError {
    fn from(f: FieldErrors) -> Self {
        let mut e = Self::new(ErrorCode::InvalidFields, "some fields are not valid");
        e.fields = f.0;
        e
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => c.into(),
            StorageError::NotFound { what } => ApiError::not_found(&what),
            StorageError::Unavailable(_) => {
                let mut err = ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unavailable; try again shortly",
                );
                err.detail = Some(e.to_string());
                err
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<Conflict> for ApiError {
    fn from(c: Conflict) -> Self {
        let message = c.to_string();
        let code = match c {
            Conflict::SlotTaken { .. } => ErrorCode::SlotTaken,
            Conflict::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Conflict::WrongState { .. } => ErrorCode::WrongState,
            Conflict::DeadlinePassed { .. } => ErrorCode::DeadlinePassed,
            Conflict::Ended { .. } => ErrorCode::Ended,
            Conflict::NotPremium => ErrorCode::PremiumRequired,
            Conflict::EmailTaken => ErrorCode::EmailTaken,
            Conflict::ChannelNameTaken(_) => ErrorCode::ChannelNameTaken,
            Conflict::IdTaken => ErrorCode::Retry,
            Conflict::Charge(_) => ErrorCode::ChargeState,
        };
        ApiError::new(code, message)
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let message = e.to_string();
        let code = match e {
            LifecycleError::Illegal { .. } => ErrorCode::WrongState,
            LifecycleError::DeadlinePassed { .. } => ErrorCode::DeadlinePassed,
            LifecycleError::WrongKey => ErrorCode::WrongKey,
            LifecycleError::NotDue { .. } => ErrorCode::NotYet,
            LifecycleError::Ended { .. } => ErrorCode::Ended,
        };
        ApiError::new(code, message)
    }
}

/// What [`log_errors`] finds on an error response.
#[derive(Debug, Clone)]
struct Logged {
    code: ErrorCode,
    detail: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if !self.fields.is_empty() {
            error["fields"] = serde_json::json!(self.fields);
        }
        let mut res = (
            self.code.status(),
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res.extensions_mut().insert(Logged {
            code: self.code,
            detail: self.detail,
        });
        res
    }
}

/// Every error answer in the API's shape, logged once with its request: errors of the
/// layers below the handlers (extractors rejecting a path or a query, the router's 405, the
/// body limit), which come as plain text or empty, are put in the shape here, with a code
/// by their status (JSON answers such as `/readyz`'s are left as they are); server errors are
/// logged with the detail the client never sees, client errors at debug level.
pub async fn log_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let status = res.status();
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error())
        && res.extensions().get::<Logged>().is_none()
        && !json
    {
        res = reshape(res).await;
    }
    if let Some(e) = res.extensions().get::<Logged>() {
        let detail = e.detail.as_deref().unwrap_or("-");
        if res.status().is_server_error() {
            tracing::error!(%method, %path, code = %e.code, %detail, "request failed");
        } else {
            tracing::debug!(%method, %path, code = %e.code, "request refused");
        }
    }
    res
}

/// An error answer made outside the handlers, in the API's shape: its text becomes the
/// message (a server error's is logged instead), its status picks the code.
async fn reshape(res: Response) -> Response {
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match parts.status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidFields,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    };
    let mut e = if code == ErrorCode::Internal {
        ApiError::internal(text)
    } else {
        let message = match text.as_str() {
            "" => parts
                .status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_lowercase(),
            t => t.to_owned(),
        };
        ApiError::new(code, message)
    };
    e.retry_after = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let mut out = e.into_response();
    *out.status_mut() = parts.status;
    for (k, v) in &parts.headers {
        if k == header::ALLOW {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Result of a handler or a use case.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_snake_case_and_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[tokio::test]
    async fn the_detail_of_a_server_error_is_never_sent() {
        let res = ApiError::internal("disk on fire at /secret/path").into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"code\":\"internal\""), "{text}");
    }
}
