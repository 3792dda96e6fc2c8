//! Members and sessions: registration (premium needs a card: Luhn-checked, expiry in the
//! future, stored as brand + last four + expiry only), login with throttling per account
//! and per address, logout, password change, the member's own view with quota.

use super::ApiJson;
use super::views::{ErrorBody, MemberView, QuotaView};
use crate::auth::{Authed, ClientIp, SESSION_COOKIE, cookie_token};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::secrets;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use slotcast_domain::request::text;
use slotcast_domain::{EmailAddress, FieldErrors, MonthKey};
use slotcast_store::{NewMember, NewSession, PaymentCard, Role, StorageError, Tier};
use utoipa::ToSchema;

/// Shortest member password.
const PASSWORD_MIN: usize = 10;
/// Longest member password.
const PASSWORD_MAX: usize = 256;

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

/// The card on file a registration gives: the domain's checks (digits, Luhn, expiry in
/// the service's month); only brand, last four digits and expiry are kept.
fn card_on_file(
    p: &PaymentBody,
    now_month: MonthKey,
    errs: &mut FieldErrors,
) -> Option<PaymentCard> {
    let draft = slotcast_domain::CardDraft {
        number: p.card_number.clone(),
        exp_month: p.exp_month,
        exp_year: p.exp_year,
        holder: p.holder.clone(),
    };
    slotcast_domain::card::validate(&draft, now_month, errs, "payment").map(|c| PaymentCard {
        brand: c.brand.to_owned(),
        last4: c.last4,
        exp_month: c.exp_month,
        exp_year: c.exp_year,
        holder: c.holder,
    })
}

fn check_password(errs: &mut FieldErrors, field: &str, pw: &str) {
    let n = pw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        errs.add(
            field,
            format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
        );
    }
}

async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn verify(hash: String, password: String) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || secrets::verify_password(&hash, &password))
        .await
        .map_err(ApiError::internal)
}

/// Register a member.
#[utoipa::path(post, path = "/api/v1/members", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = MemberView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    State(st): State<AppState>,
    client: ClientIp,
    ApiJson(b): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let now = st.clock.now();
    // Every attempt counts: each costs a password hash, whatever its outcome.
    let address = client.key("signup");
    if let Err(wait) = st.signup_throttle.check(&address, now) {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            format!("too many sign-ups from this address; try again in {wait} s"),
            wait,
        ));
    }
    st.signup_throttle.fail(&address, now);
    let mut errs = FieldErrors::default();
    let email = EmailAddress::parse(&b.email)
        .map_err(|e| errs.add("email", e.to_string()))
        .ok();
    check_password(&mut errs, "password", &b.password);
    let display_name = text(
        &mut errs,
        "display_name",
        Some(&b.display_name),
        60,
        false,
        true,
    );
    let tier = match b.tier.as_str() {
        "general" => Some(Tier::General),
        "premium" => Some(Tier::Premium),
        _ => {
            errs.add("tier", "must be general or premium");
            None
        }
    };
    let month = MonthKey::of(now, &st.settings.policy.time_zone);
    let payment = match (tier, &b.payment) {
        (Some(Tier::Premium), None) => {
            errs.add("payment", "premium members need a payment card");
            None
        }
        (Some(Tier::General), Some(_)) => {
            errs.add("payment", "only premium members give a payment card");
            None
        }
        (_, Some(p)) => card_on_file(p, month, &mut errs),
        (_, None) => None,
    };
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let member = st
        .store
        .create_member(NewMember {
            email: email.expect("checked"),
            password_hash: hash(b.password).await?,
            display_name: display_name.expect("checked"),
            tier: tier.expect("checked"),
            role: Role::Member,
            payment,
            created_at: now,
        })
        .await?;
    tracing::info!(member = %member.id, tier = %member.tier, "member registered");
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
    let now = st.clock.now();
    // Failures slow down the (account, address) pair with a growing delay, and the
    // address across all accounts; nobody elsewhere can lock the owner out.
    let address = client.key("ip");
    let pair = format!("{}|{address}", b.email.trim().to_ascii_lowercase());
    if let Err(wait) = st
        .login_backoff
        .check(&pair, now)
        .and_then(|()| st.login_throttle.check(&address, now))
    {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            format!("too many failed sign-ins from here; try again in {wait} s"),
            wait,
        ));
    }
    let member = match EmailAddress::parse(&b.email) {
        Ok(e) => match st.store.member_by_email(&e).await {
            Ok(m) => Some(m),
            Err(StorageError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let stored = member.as_ref().map_or_else(
        || secrets::dummy_password_hash().to_owned(),
        |m| m.password_hash.clone(),
    );
    let ok = verify(stored, b.password).await? && member.is_some();
    let Some(member) = member.filter(|_| ok) else {
        st.login_backoff.fail(&pair, now);
        st.login_throttle.fail(&address, now);
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong e-mail address or password",
        ));
    };
    st.login_backoff.clear(&pair);
    let (token, token_hash) = secrets::new_session_token();
    let expires = now + st.settings.session_ttl;
    st.store
        .create_session(NewSession {
            token_hash,
            member: member.id,
            created_at: now,
            expires_at: expires,
        })
        .await?;
    let secure = if st.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        st.settings.session_ttl.as_secs()
    );
    let body = serde_json::json!({ "token": token, "expires_at": super::views::ts(expires), "member": MemberView::from(&member) });
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
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
        st.store
            .revoke_session(&secrets::token_hash(t.trim()), st.clock.now())
            .await?;
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
        HeaderValue::from_static("slotcast_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
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
    let now = st.clock.now();
    let mut errs = FieldErrors::default();
    check_password(&mut errs, "new_password", &b.new_password);
    if !errs.is_empty() {
        return Err(errs.into());
    }
    // Guesses of the current password are slowed down like sign-ins.
    let key = format!("password:{}", m.id);
    if let Err(wait) = st.login_backoff.check(&key, now) {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            "too many wrong passwords; wait and try again",
            wait,
        ));
    }
    if !verify(m.password_hash.clone(), b.current_password).await? {
        st.login_backoff.fail(&key, now);
        return Err(ApiError::new(
            ErrorCode::WrongPassword,
            "the current password is not right",
        ));
    }
    st.login_backoff.clear(&key);
    st.store
        .set_password_hash(m.id, &hash(b.new_password).await?)
        .await?;
    // Whoever else was signed in with the old password is signed out.
    let current = session_token(&headers).map(|t| secrets::token_hash(t.trim()));
    let ended = st
        .store
        .revoke_member_sessions(m.id, current.as_ref(), now)
        .await?;
    tracing::info!(member = %m.id, other_sessions_ended = ended, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every session of the member ends, this one too.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "accounts", security(("bearer" = []), ("cookie" = [])), 
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_everywhere(
    State(st): State<AppState>,
    Authed(m): Authed,
) -> ApiResult<Response> {
    let ended = st
        .store
        .revoke_member_sessions(m.id, None, st.clock.now())
        .await?;
    tracing::info!(member = %m.id, sessions_ended = ended, "signed out everywhere");
    Ok(signed_out())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_on_file_keeps_only_brand_last4_expiry() {
        let m = MonthKey::parse("2026-06").unwrap();
        let mut errs = FieldErrors::default();
        let p = PaymentBody {
            card_number: "4242 4242 4242 4242".into(),
            exp_month: 6,
            exp_year: 2026,
            holder: "Ann Lee".into(),
        };
        let c = card_on_file(&p, m, &mut errs).unwrap();
        assert_eq!(
            (c.brand.as_str(), c.last4.as_str(), c.exp_month, c.exp_year),
            ("visa", "4242", 6, 2026)
        );
        assert_eq!(format!("{p:?}"), "PaymentBody(<redacted>)");
        let expired = PaymentBody { exp_month: 5, ..p };
        assert!(card_on_file(&expired, m, &mut errs).is_none());
        assert_eq!(errs.0["payment.exp_year"], "the card has expired");
    }
}
