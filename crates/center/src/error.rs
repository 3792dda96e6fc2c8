//! The one place errors become HTTP answers:
//! `{"error": {"code": "slot_taken", "message": "…", "fields": {"title": "…"}}}`.
//! 5xx details are logged with the request, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use slotcast_domain::FieldErrors;
use slotcast_domain::lifecycle::LifecycleError;
use slotcast_store::{Conflict, StorageError};
use std::collections::BTreeMap;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// Per-field problems.
    pub fields: BTreeMap<String, String>,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with no field details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
            retry_after: None,
        }
    }

    /// 400: the request cannot be read.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: who are you?
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in first (session cookie or Authorization: Bearer token)",
        )
    }

    /// 403.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404 for `what` (also used where the thing exists but is not the caller's).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 with one field problem.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            "some fields are not valid",
        );
        e.fields.insert(field.to_owned(), message.into());
        e
    }

    /// 429 with a wait.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 500; `detail` is logged only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl From<FieldErrors> for ApiError {
    fn from(f: FieldErrors) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_fields",
            "some fields are not valid",
        );
        e.fields = f.0;
        e
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(c) => c.into(),
            StorageError::NotFound { what } => ApiError::not_found(&what),
            StorageError::Unavailable(detail) => {
                tracing::error!(error = %detail, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; try again shortly",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<Conflict> for ApiError {
    fn from(c: Conflict) -> Self {
        let message = c.to_string();
        match c {
            Conflict::SlotTaken { .. } => ApiError::conflict("slot_taken", message),
            Conflict::QuotaExceeded(_) => ApiError::conflict("quota_exceeded", message),
            Conflict::WrongState { .. } => ApiError::conflict("wrong_state", message),
            Conflict::DeadlinePassed { .. } => ApiError::conflict("deadline_passed", message),
            Conflict::Ended { .. } => ApiError::conflict("ended", message),
            Conflict::NotPremium => ApiError::forbidden("premium_required", message),
            Conflict::EmailTaken => ApiError::conflict("email_taken", message),
            Conflict::ChannelNameTaken(_) => ApiError::conflict("channel_name_taken", message),
            Conflict::IdTaken => ApiError::conflict("retry", message),
            Conflict::Charge(_) => ApiError::conflict("charge_state", message),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let message = e.to_string();
        match e {
            LifecycleError::Illegal { .. } => ApiError::conflict("wrong_state", message),
            LifecycleError::DeadlinePassed { .. } => ApiError::conflict("deadline_passed", message),
            LifecycleError::WrongKey => ApiError::forbidden("wrong_key", message),
            LifecycleError::NotDue { .. } => ApiError::conflict("not_yet", message),
            LifecycleError::Ended { .. } => ApiError::conflict("ended", message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if !self.fields.is_empty() {
            error["fields"] = serde_json::json!(self.fields);
        }
        let mut res = (
            self.status,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
