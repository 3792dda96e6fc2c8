//! Members and sessions over HTTP: registration, login, logout, password change, the
//! member's own view with quota. The rules are [`crate::ops::accounts`]'s.

use super::ApiJson;
use super::views::{ErrorBody, MemberView, QuotaView};
use crate::auth::{Authed, ClientIp, cookie_token};
use crate::error::{ApiError, ApiResult};
use crate::ops::accounts::{self, Registration};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use slotcast_domain::{CardDraft, MonthKey};
use utoipa::ToSchema;

/// Registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// Login and contact address.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 10 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    /// Shown name.
    #[schema(min_length = 1, max_length = 60)]
    pub display_name: String,
    /// `general` (viewer) or `premium` (broadcaster).
    #[schema(pattern = "^(general|premium)$")]
    pub tier: String,
    /// Required for premium members.
    pub payment: Option<PaymentBody>,
}

/// A payment card; only brand, last four digits and expiry are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The card number (digits, spaces or dashes).
    #[schema(pattern = "^[0-9 -]{12,30}$")]
    pub card_number: String,
    /// 1–12.
    #[schema(minimum = 1, maximum = 12)]
    #[serde(deserialize_with = "super::whole")]
    pub exp_month: u8,
    /// Four digits.
    #[schema(minimum = 1000, maximum = 9999)]
    #[serde(deserialize_with = "super::whole")]
    pub exp_year: u16,
    /// Name on the card.
    #[schema(min_length = 1, max_length = 80)]
    pub holder: String,
}

impl std::fmt::Debug for PaymentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentBody(<redacted>)")
    }
}

impl PaymentBody {
    fn draft(&self) -> CardDraft {
        CardDraft {
            number: self.card_number.clone(),
            exp_month: self.exp_month,
            exp_year: self.exp_year,
            holder: self.holder.clone(),
        }
    }
}

/// Register a member.
#[utoipa::path(post, path = "/api/v1/members", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = MemberView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let member = accounts::register(
        &st,
        Registration {
            email: b.email,
            password: b.password,
            display_name: b.display_name,
            tier: b.tier,
            card: b.payment.as_ref().map(PaymentBody::draft),
        },
        &client.key("signup"),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(MemberView::from(&member))))
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Address.
    #[schema(max_length = 254)]
    pub email: String,
    /// Password.
    #[schema(max_length = 256)]
    pub password: String,
}

/// Sign in: a bearer token and a session cookie.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "accounts", request_body = LoginBody,
    responses((status = 201, description = "`{token, member}` and a session cookie"), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let done = accounts::login(&st, &b.email, &b.password, &client.key("ip")).await?;
    let body = serde_json::json!({ "token": done.token, "expires_at": super::views::ts(done.expires), "member": MemberView::from(&done.member) });
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&accounts::session_cookie(&st, &done.token))
            .map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// Sign out (ends the session of the token or cookie used).
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "accounts", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(st): State<AppState>,
    _who: Authed,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(t) = session_token(&headers) {
        accounts::logout(&st, &t).await?;
    }
    Ok(signed_out())
}

/// The session token a request carries: its bearer token, else its session cookie.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| cookie_token(headers))
}

/// 204 that also clears the session cookie.
fn signed_out() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(accounts::SIGNED_OUT_COOKIE),
    );
    res
}

/// The signed-in member, with this month's quota.
#[utoipa::path(get, path = "/api/v1/members/me", tag = "accounts", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 200, body = MemberView), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, Authed(m): Authed) -> ApiResult<Json<MemberView>> {
    let month = MonthKey::of(st.clock.now(), &st.settings.policy.time_zone);
    let mut v = MemberView::from(&m);
    v.quota = Some(QuotaView {
        month: month.to_string(),
        used_slots: st.store.quota_used(m.id, month).await?,
        max_slots: st.settings.policy.quota_slots_per_month,
    });
    Ok(Json(v))
}

/// A password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The current password.
    #[schema(max_length = 256)]
    pub current_password: String,
    /// The new one (at least 10 characters).
    #[schema(min_length = 10, max_length = 256)]
    pub new_password: String,
}

/// Change the password.
#[utoipa::path(post, path = "/api/v1/members/me/password", tag = "accounts", security(("bearer" = []), ("cookie" = [])), request_body = PasswordBody,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(st): State<AppState>,
    Authed(m): Authed,
    headers: HeaderMap,
    ApiJson(b): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let current = session_token(&headers);
    accounts::change_password(
        &st,
        &m,
        &b.current_password,
        &b.new_password,
        current.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every session of the member ends, this one too.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "accounts", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_everywhere(
    State(st): State<AppState>,
    Authed(m): Authed,
) -> ApiResult<Response> {
    accounts::logout_everywhere(&st, &m, None).await?;
    Ok(signed_out())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_body_is_never_printed() {
        let p = PaymentBody {
            card_number: "4242 4242 4242 4242".into(),
            exp_month: 6,
            exp_year: 2026,
            holder: "Ann Lee".into(),
        };
        assert_eq!(format!("{p:?}"), "PaymentBody(<redacted>)");
        assert_eq!(p.draft().number, p.card_number);
    }
}
