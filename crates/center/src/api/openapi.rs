//! The OpenAPI document. Each handler's annotation says what is particular to it (its
//! body, its success, the errors of its own rules); [`complete`] adds what follows from the
//! shape of an operation, so that no operation forgets an answer the layers below the
//! handler can give: a JSON body can be malformed (400), too large (413), of another type
//! (415) or invalid (422); a parameter can be unreadable (400); a signed-in operation can
//! meet no session (401) and, with the session cookie, a request from another site (403).
//! `scripts/api-conformance` checks the result against the running server.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use slotcast_domain::ids::Slug;
use utoipa::OpenApi;

use super::{BODY_LIMIT, views};
use crate::auth::SESSION_COOKIE;
use crate::error::ErrorCode;

#[derive(OpenApi)]
#[openapi(
    info(title = "slotcast API", description = "Reserved live streaming: accounts, channels, reservations, programs, time. \
Every error answers `{\"error\": {\"code\", \"message\", \"fields\"?}}` (see `ErrorBody`); a 429 carries `Retry-After`."),
    tags(
        (name = "accounts"), (name = "channels"), (name = "reservations"), (name = "programs"), (name = "time"), (name = "billing")
    ),
    components(schemas(views::ErrorBody, views::ErrorDetail, super::live::LiveEvent))
)]
pub(super) struct ApiDoc;

/// Adds the security schemes, the answers every operation of a kind can give and the
/// formats of the path parameters.
pub(super) fn complete(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
            "description": "The `token` answered by `POST /api/v1/sessions`."},
        "cookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
            "description": "The session cookie set by `POST /api/v1/sessions`; requests that change something must come from the service's own pages (`Origin`)."},
    });
    let live = &mut doc["paths"]["/api/v1/reservations/{id}/live"]["get"]["responses"]["200"];
    live["content"]["text/event-stream"]["schema"] = live_event_schema();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            complete_operation(method, op);
        }
    }
}

fn complete_operation(method: &str, op: &mut Value) {
    let has_body = op.get("requestBody").is_some();
    let signed_in = op["security"].as_array().is_some_and(|reqs| {
        !reqs
            .iter()
            .any(|r| r.as_object().is_some_and(Map::is_empty))
    });
    let uses_session = op.get("security").is_some();
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            if let Some(schema) = path_schema(&p["name"], &p["in"]) {
                p["schema"] = schema;
            }
        }
    }
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if response.get("description").is_none_or(|d| d == "") {
            let reason = status
                .parse()
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
            response["description"] = reason
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .into();
        }
    }
    let mut add = |status: &str, code: ErrorCode, what: &str| {
        responses.entry(status).or_insert_with(|| {
            json!({"description": format!("`{code}`: {what}"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
        });
    };
    if has_body {
        let limit = format!("the body is larger than {BODY_LIMIT} bytes");
        add(
            "400",
            ErrorCode::MalformedJson,
            "the body is not JSON, or could not be read",
        );
        add("413", ErrorCode::BodyTooLarge, &limit);
        add(
            "415",
            ErrorCode::UnsupportedMediaType,
            "the body is not sent as `application/json`",
        );
        add(
            "422",
            ErrorCode::InvalidFields,
            "a field is missing, of the wrong type or breaks a rule; `fields` names each",
        );
    }
    if has_params {
        add(
            "400",
            ErrorCode::BadRequest,
            "a parameter is not of its type, or is given twice",
        );
    }
    if signed_in {
        add("401", ErrorCode::Unauthenticated, "no session, or it ended");
    }
    if uses_session && method != "get" {
        add(
            "403",
            ErrorCode::CrossOrigin,
            "the session cookie was sent from another site",
        );
    }
}

/// What the server accepts in a path parameter, checked before any query: ids are numbers,
/// slugs are [`Slug`]s.
fn path_schema(name: &Value, place: &Value) -> Option<Value> {
    if place != "path" {
        return None;
    }
    match name.as_str()? {
        "id" => Some(json!({"type": "integer", "format": "int64", "minimum": 1})),
        "slug" => Some(
            json!({"type": "string", "minLength": 1, "maxLength": Slug::MAX_LEN,
            "pattern": "^[a-z0-9_-]+$"}),
        ),
        _ => None,
    }
}

/// One event of the live statistics stream (an event stream's `schema` describes each
/// event before OpenAPI 3.2): named `live`, its data a `LiveEvent` in JSON.
fn live_event_schema() -> Value {
    json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": "live"},
            "data": {"type": "string", "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/LiveEvent"}},
        },
    })
}
