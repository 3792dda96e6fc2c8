//! The REST API (`/api/v1`, see `shared/docs/api.md`) and the operational endpoints.
//! Handlers parse and authorize, ask `slotcast-domain` for every decision and the store
//! for every fact, and answer in JSON; errors are mapped in [`crate::error`].

mod accounts;
mod billing;
mod channels;
mod live;
mod openapi;
mod programs;
pub(crate) mod reservations;
mod time;
pub(crate) mod views;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted (JSON), in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The whole HTTP surface of the center.
pub fn router(state: AppState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::logout_everywhere))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(billing::invoices))
        .routes(routes!(billing::export_csv))
        .routes(routes!(channels::list, channels::create))
        .routes(routes!(channels::update))
        .routes(routes!(channels::availability))
        .routes(routes!(reservations::create, reservations::list))
        .routes(routes!(reservations::quote))
        .routes(routes!(
            reservations::get_one,
            reservations::change,
            reservations::cancel
        ))
        .routes(routes!(reservations::confirm))
        .routes(routes!(reservations::reissue_profile))
        .routes(routes!(reservations::extend))
        .routes(routes!(live::live))
        .routes(routes!(live::preview))
        .routes(routes!(live::recording))
        .routes(routes!(programs::by_date))
        .routes(routes!(programs::one))
        .routes(routes!(programs::play))
        .routes(routes!(programs::pickup))
        .routes(routes!(programs::feature, programs::unfeature))
        .routes(routes!(programs::guide_ics))
        .routes(routes!(time::time))
        .split_for_parts();
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    openapi::complete(&mut doc);
    let doc = std::sync::Arc::new(doc);
    api.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::render))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), server_time))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn(crate::error::log_errors))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("this path")
}

/// Every response carries the server's time (RFC 3339, UTC, milliseconds).
async fn server_time(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let now = format!("{:.3}", st.clock.now());
    if let Ok(v) = HeaderValue::from_str(&now) {
        res.headers_mut().insert("server-time", v);
    }
    res
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(st): State<AppState>) -> Response {
    let h = crate::ops::operator::health(&st).await;
    let ready = h.ready();
    let mut body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": h.database.as_ref().map_or("unreachable", |b| *b),
        "mail": if h.mail.is_ok() { "ok" } else { "unreachable" },
        "scheduler": if h.scheduler.failing_since.is_none() { "ok" } else { "failing" },
    });
    if let Some(since) = h.scheduler.failing_since {
        body["scheduler_failing_since"] = since.to_string().into();
        body["scheduler_failed_ticks"] = h.scheduler.consecutive_failures.into();
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// A JSON body: `Content-Type: application/json` required (415), malformed JSON is 400,
/// wrong types or missing fields are 422 naming the field, oversized bodies 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::new(ErrorCode::UnreadableBody, e.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// `v` as a JSON body (for answers kept in the listings).
fn json_bytes<T: serde::Serialize>(v: &T) -> Bytes {
    serde_json::to_vec(v)
        .expect("views serialize: string keys only")
        .into()
}

/// Parses JSON, naming the field of a type error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            ApiError::field(&field, msg)
        }
    })
}

/// Reads an integer field the way JSON Schema counts integers: `5` and `5.0` alike (a
/// client whose JSON library writes whole numbers with a fraction is not wrong), never
/// `5.5` or a value outside the field's type.
pub(crate) fn whole<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(de)?;
    let int = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Some(i),
        // Exact for every whole float within ±2^53; beyond that no field of ours reaches.
        #[allow(clippy::cast_possible_truncation)]
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        _ => None,
    };
    int.and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {n}")))
}
