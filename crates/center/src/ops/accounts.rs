//! Members and sessions: register (premium needs a card: Luhn-checked, expiry in the
//! future, kept as brand + last four + expiry only), sign in with throttling per (account,
//! address) and per address, sign out, change the password (throttled; other sessions
//! end), the account's name and e-mail disclosure, a card on file (which makes a general
//! member premium). The REST API and the pages call these; neither knows the rules.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::secrets;
use crate::state::Center;
use slotcast_domain::request::text;
use slotcast_domain::{CardDraft, EmailAddress, FieldErrors, MonthKey, Timestamp};
use slotcast_store::{Member, NewMember, NewSession, PaymentCard, Role, StorageError, Tier};

/// Shortest member password.
pub const PASSWORD_MIN: usize = 10;
/// Longest member password.
pub const PASSWORD_MAX: usize = 256;
/// Longest shown name.
pub const NAME_MAX: usize = 60;

/// A registration as typed.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Login and contact address.
    pub email: String,
    /// At least [`PASSWORD_MIN`] characters.
    pub password: String,
    /// Shown name.
    pub display_name: String,
    /// `general` or `premium`.
    pub tier: String,
    /// The card (premium only).
    pub card: Option<CardDraft>,
}

/// The card on file a form or body gives: the domain's checks (digits, Luhn, expiry in
/// the service's month, field errors under `field`); only brand, last four digits and
/// expiry are kept.
pub fn card_on_file(
    c: &Center,
    draft: &CardDraft,
    errs: &mut FieldErrors,
    field: &str,
) -> Option<PaymentCard> {
    let month = MonthKey::of(c.clock.now(), &c.settings.policy.time_zone);
    slotcast_domain::card::validate(draft, month, errs, field).map(|v| PaymentCard {
        brand: v.brand.to_owned(),
        last4: v.last4,
        exp_month: v.exp_month,
        exp_year: v.exp_year,
        holder: v.holder,
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

/// Registers a member; `client` is the caller's throttle key (sign-ups are limited per
/// address: each costs a password hash, whatever its outcome).
pub async fn register(c: &Center, r: Registration, client: &str) -> ApiResult<Member> {
    let now = c.clock.now();
    if let Some(wait) = c.signup_throttle.wait(client, now).await? {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            format!("too many sign-ups from this address; try again in {wait} s"),
            wait,
        ));
    }
    c.signup_throttle.fail(client, now).await?;
    let mut errs = FieldErrors::default();
    let email = EmailAddress::parse(&r.email)
        .map_err(|e| errs.add("email", e.to_string()))
        .ok();
    check_password(&mut errs, "password", &r.password);
    let display_name = text(
        &mut errs,
        "display_name",
        Some(&r.display_name),
        NAME_MAX,
        false,
        true,
    );
    let tier = match r.tier.as_str() {
        "general" => Some(Tier::General),
        "premium" => Some(Tier::Premium),
        _ => {
            errs.add("tier", "must be general or premium");
            None
        }
    };
    let payment = match (tier, &r.card) {
        (Some(Tier::Premium), None) => {
            errs.add("payment", "premium members need a payment card");
            None
        }
        (Some(Tier::General), Some(_)) => {
            errs.add("payment", "only premium members give a payment card");
            None
        }
        (_, Some(card)) => card_on_file(c, card, &mut errs, "payment"),
        (_, None) => None,
    };
    let (Some(email), Some(display_name), Some(tier), true) =
        (email, display_name, tier, errs.is_empty())
    else {
        return Err(errs.into());
    };
    let member = c
        .store
        .create_member(NewMember {
            email,
            password_hash: hash(r.password).await?,
            display_name,
            tier,
            role: Role::Member,
            payment,
            created_at: now,
        })
        .await?;
    tracing::info!(member = %member.id, tier = %member.tier, "member registered");
    Ok(member)
}

/// A new session: the token (only its hash is stored) and its end.
#[derive(Debug)]
pub struct SignedIn {
    /// Who.
    pub member: Member,
    /// The bearer token, also the session cookie's value.
    pub token: String,
    /// When it ends.
    pub expires: Timestamp,
}

/// Signs in. Failures slow down the (account, address) pair with a growing delay, and the
/// address across all accounts; nobody elsewhere can lock the owner out. `client` is the
/// caller's throttle key.
pub async fn login(c: &Center, email: &str, password: &str, client: &str) -> ApiResult<SignedIn> {
    let now = c.clock.now();
    let pair = format!("{}|{client}", email.trim().to_ascii_lowercase());
    let wait = match c.login_backoff.wait(&pair, now).await? {
        Some(w) => Some(w),
        None => c.login_throttle.wait(client, now).await?,
    };
    if let Some(wait) = wait {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            format!("too many failed sign-ins from here; try again in {wait} s"),
            wait,
        ));
    }
    let member = match EmailAddress::parse(email) {
        Ok(e) => match c.store.member_by_email(&e).await {
            Ok(m) => Some(m),
            Err(StorageError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    // The same work whether or not the address is known.
    let stored = member.as_ref().map_or_else(
        || secrets::dummy_password_hash().to_owned(),
        |m| m.password_hash.clone(),
    );
    let ok = verify(stored, password.to_owned()).await? && member.is_some();
    let Some(member) = member.filter(|_| ok) else {
        c.login_backoff.fail(&pair, now).await?;
        c.login_throttle.fail(client, now).await?;
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong e-mail address or password",
        ));
    };
    c.login_backoff.clear(&pair).await?;
    let (token, token_hash) = secrets::new_session_token();
    let expires = now + c.settings.session_ttl;
    c.store
        .create_session(NewSession {
            token_hash,
            member: member.id,
            created_at: now,
            expires_at: expires,
        })
        .await?;
    Ok(SignedIn {
        member,
        token,
        expires,
    })
}

/// The `Set-Cookie` value of a session: `HttpOnly`, `SameSite=Lax`, `Secure` when the
/// service is public over https.
pub fn session_cookie(c: &Center, token: &str) -> String {
    let secure = if c.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        crate::auth::SESSION_COOKIE,
        c.settings.session_ttl.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session cookie.
pub const SIGNED_OUT_COOKIE: &str = "slotcast_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";

/// Ends the session whose token is `token`.
pub async fn logout(c: &Center, token: &str) -> ApiResult<()> {
    let hash = secrets::token_hash(token.trim());
    c.store.revoke_session(&hash, c.clock.now()).await?;
    c.sessions.forget(&hash);
    Ok(())
}

/// Ends every session of `m`, but the one whose token is `keep` when given; returns how
/// many ended.
pub async fn logout_everywhere(c: &Center, m: &Member, keep: Option<&str>) -> ApiResult<u64> {
    let keep = keep.map(|t| secrets::token_hash(t.trim()));
    let ended = c
        .store
        .revoke_member_sessions(m.id, keep.as_ref(), c.clock.now())
        .await?;
    c.sessions.forget_member(m.id);
    tracing::info!(member = %m.id, sessions_ended = ended, "sessions ended");
    Ok(ended)
}

/// Changes the password of `m` (guesses of the current one are slowed down like
/// sign-ins); every other session of the member ends, the one whose token is `keep`
/// stays.
pub async fn change_password(
    c: &Center,
    m: &Member,
    current: &str,
    new: &str,
    keep: Option<&str>,
) -> ApiResult<()> {
    let now = c.clock.now();
    let mut errs = FieldErrors::default();
    check_password(&mut errs, "new_password", new);
    if !errs.is_empty() {
        return Err(errs.into());
    }
    let key = format!("password:{}", m.id);
    if let Some(wait) = c.login_backoff.wait(&key, now).await? {
        return Err(ApiError::too_many(
            ErrorCode::TooManyAttempts,
            "too many wrong passwords; wait and try again",
            wait,
        ));
    }
    if !verify(m.password_hash.clone(), current.to_owned()).await? {
        c.login_backoff.fail(&key, now).await?;
        return Err(ApiError::new(
            ErrorCode::WrongPassword,
            "the current password is not right",
        ));
    }
    c.login_backoff.clear(&key).await?;
    c.store
        .set_password_hash(m.id, &hash(new.to_owned()).await?)
        .await?;
    logout_everywhere(c, m, keep).await?;
    tracing::info!(member = %m.id, "password changed");
    Ok(())
}

/// Sets the shown name of `m` and whether new programs show the e-mail address.
pub async fn update(
    c: &Center,
    m: &Member,
    display_name: &str,
    show_email: bool,
) -> ApiResult<Member> {
    let mut errs = FieldErrors::default();
    let name = text(
        &mut errs,
        "display_name",
        Some(display_name),
        NAME_MAX,
        false,
        true,
    );
    let Some(name) = name.filter(|_| errs.is_empty()) else {
        return Err(errs.into());
    };
    let m = c.store.update_member(m.id, &name, show_email).await?;
    c.sessions.forget_member(m.id);
    // The listings show the broadcaster's name.
    c.listings_changed();
    Ok(m)
}

/// Puts a new card on file for `m`; a general member becomes premium.
pub async fn set_card(c: &Center, m: &Member, draft: &CardDraft) -> ApiResult<Member> {
    let mut errs = FieldErrors::default();
    let Some(card) = card_on_file(c, draft, &mut errs, "payment") else {
        return Err(errs.into());
    };
    let done = c.store.set_payment_card(m.id, &card, c.clock.now()).await?;
    c.sessions.forget_member(m.id);
    tracing::info!(member = %m.id, upgraded = (m.tier != done.tier), "card on file");
    Ok(done)
}
