//! Accounts: register (general or premium with a card and the terms), sign in (throttled
//! as the API), sign out, the account page (name, e-mail disclosure, password, a card on
//! file that upgrades a general member, sign out everywhere) and the terms.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use slotcast_center::AppState;
use slotcast_center::auth::{ClientIp, SESSION_COOKIE, cookie};
use slotcast_center::error::ApiError;
use slotcast_center::ops::accounts::{self, Registration};
use slotcast_domain::CardDraft;
use slotcast_store::Member;

use crate::forms::{Errs, Signed, check_csrf, member_layout, ticked};
use crate::pages::{LangQuery, Layout, csrf_token, failed, render, with_csrf_cookie};

/// The card fields of a form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    exp_month: String,
    #[serde(default)]
    exp_year: String,
    #[serde(default)]
    holder: String,
    terms: Option<String>,
}

impl CardForm {
    /// The card as the domain checks it; numbers that do not parse become field errors.
    fn draft(&self, errs: &mut Errs) -> Option<CardDraft> {
        let month = self.exp_month.trim().parse::<u8>();
        let year = self.exp_year.trim().parse::<u16>();
        if month.is_err() {
            *errs = Errs::field("payment.exp_month", "must be a month from 1 to 12");
        } else if year.is_err() {
            *errs = Errs::field("payment.exp_year", "must be a four-digit year");
        }
        Some(CardDraft {
            number: self.card_number.clone(),
            exp_month: month.ok()?,
            exp_year: year.ok()?,
            holder: self.holder.clone(),
        })
    }
}

/// The registration form.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    tier: String,
    #[serde(flatten)]
    card: CardForm,
}

/// What the register page shows again.
struct RegisterValues {
    email: String,
    display_name: String,
    tier: String,
    card_number: String,
    exp_month: String,
    exp_year: String,
    holder: String,
    terms: bool,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    l: Layout,
    form: RegisterValues,
    errs: Errs,
    submit: &'static str,
}

fn register_page(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    f: &RegisterForm,
    errs: Errs,
) -> Response {
    let mut l = Layout::new(st, headers, lang, "");
    l.title = l.m.register_title.to_owned();
    let (csrf, fresh) = csrf_token(headers);
    l.csrf = csrf.clone();
    let status = errs.status();
    let page = RegisterPage {
        submit: l.m.register_submit,
        form: RegisterValues {
            email: f.email.clone(),
            display_name: f.display_name.clone(),
            tier: f.tier.clone(),
            // The card number is never shown again.
            card_number: String::new(),
            exp_month: f.card.exp_month.clone(),
            exp_year: f.card.exp_year.clone(),
            holder: f.card.holder.clone(),
            terms: ticked(f.card.terms.as_deref()),
        },
        errs: errs.in_lang(l.lang),
        l,
    };
    with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh)
}

/// `GET /register`.
pub async fn register_form(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let f = RegisterForm {
        tier: "general".into(),
        ..RegisterForm::default()
    };
    register_page(&st, &headers, q.lang.as_deref(), &f, Errs::default())
}

/// `POST /register`: registers and signs in, then to my channel.
pub async fn register(
    State(st): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let m = Layout::new(&st, &headers, None, "").m;
    let premium = f.tier == "premium";
    let mut errs = Errs::default();
    let card = if premium {
        f.card.draft(&mut errs)
    } else {
        None
    };
    if premium && !ticked(f.card.terms.as_deref()) && !errs.any() {
        errs = Errs::field("terms", m.terms_required);
    }
    if errs.any() {
        return register_page(&st, &headers, None, &f, errs);
    }
    let registration = Registration {
        email: f.email.clone(),
        password: f.password.clone(),
        display_name: f.display_name.clone(),
        tier: f.tier.clone(),
        card,
    };
    if let Err(e) = accounts::register(&st, registration, &client.key("signup")).await {
        return form_failed(&st, &headers, &e, |errs| {
            register_page(&st, &headers, None, &f, errs)
        });
    }
    match accounts::login(&st, &f.email, &f.password, &client.key("ip")).await {
        Ok(done) => signed_in_to(&st, &done.token, "/my?done=welcome"),
        Err(e) => failed(&st, &headers, &e),
    }
}

/// A use case's error on a form: our own errors as the error page, the caller's shown on
/// the form again by `again`.
pub(crate) fn form_failed(
    st: &AppState,
    headers: &HeaderMap,
    e: &ApiError,
    again: impl FnOnce(Errs) -> Response,
) -> Response {
    if e.code.status().is_server_error() {
        return failed(st, headers, e);
    }
    let mut res = again(Errs::of(e));
    *res.status_mut() = e.code.status();
    res
}

/// A redirect to `to` that sets the session cookie of `token`.
fn signed_in_to(st: &AppState, token: &str, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(&accounts::session_cookie(st, token)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `?next=&lang=` of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    lang: Option<String>,
    next: Option<String>,
    done: Option<String>,
}

/// Where a login may go back to: a path of this site, never another host.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/my".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    errs: Errs,
    email: String,
    next: String,
    notice: Option<&'static str>,
}

fn login_page(
    st: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    email: &str,
    next: String,
    errs: Errs,
    notice: Option<&'static str>,
) -> Response {
    let mut l = Layout::new(st, headers, lang, "");
    l.title = l.m.login_title.to_owned();
    let (csrf, fresh) = csrf_token(headers);
    l.csrf = csrf.clone();
    let page = LoginPage {
        errs: errs.in_lang(l.lang),
        l,
        email: email.to_owned(),
        next,
        notice,
    };
    with_csrf_cookie(render(&page), &csrf, fresh)
}

/// `GET /login`.
pub async fn login_form(
    State(st): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let m = crate::i18n::Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = match q.done.as_deref() {
        Some("out") => Some(m.signed_out),
        Some("password") => Some(m.password_changed_sign_in),
        _ => None,
    };
    login_page(
        &st,
        &headers,
        q.lang.as_deref(),
        "",
        safe_next(q.next.as_deref()),
        Errs::default(),
        notice,
    )
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: signs in (throttled as the API), then back where the member was going.
pub async fn login(
    State(st): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let next = safe_next(f.next.as_deref());
    match accounts::login(&st, &f.email, &f.password, &client.key("ip")).await {
        Ok(done) => signed_in_to(&st, &done.token, &next),
        Err(e) => form_failed(&st, &headers, &e, |errs| {
            login_page(&st, &headers, None, &f.email, next, errs, None)
        }),
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `POST /logout`: ends this session, then the login page.
pub async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = accounts::logout(&st, token).await
    {
        return failed(&st, &headers, &e);
    }
    signed_out_to("/login?done=out")
}

fn signed_out_to(to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(accounts::SIGNED_OUT_COOKIE),
    );
    res
}

/// The card fields the account page shows again.
#[derive(Default)]
struct CardValues {
    card_number: String,
    exp_month: String,
    exp_year: String,
    holder: String,
    terms: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    email: String,
    premium: bool,
    display_name: String,
    show_email: bool,
    card: Option<String>,
    form: CardValues,
    errs: Errs,
    /// Which form `errs` belongs to.
    section: &'static str,
    submit: &'static str,
    notice: Option<&'static str>,
}

struct AccountView<'a> {
    lang: Option<&'a str>,
    errs: Errs,
    section: &'static str,
    notice: Option<&'static str>,
    display_name: Option<String>,
    card: CardValues,
}

fn account_page(st: &AppState, headers: &HeaderMap, m: &Member, v: AccountView<'_>) -> Response {
    let (mut l, fresh) = member_layout(st, headers, v.lang, m, "account", "");
    l.title = l.m.account_title.to_owned();
    let csrf = l.csrf.clone();
    let premium = m.tier == slotcast_store::Tier::Premium;
    let page = AccountPage {
        email: m.email.to_string(),
        premium,
        display_name: v.display_name.unwrap_or_else(|| m.display_name.clone()),
        show_email: m.show_email,
        card: m.payment.as_ref().map(|c| {
            format!(
                "{} •••• {} ({:02}/{})",
                c.brand, c.last4, c.exp_month, c.exp_year
            )
        }),
        form: v.card,
        section: v.section,
        submit: if premium {
            l.m.replace_card
        } else {
            l.m.upgrade_submit
        },
        notice: v.notice,
        errs: v.errs.in_lang(l.lang),
        l,
    };
    let status = page.errs.status();
    with_csrf_cookie((status, render(&page)).into_response(), &csrf, fresh)
}

/// `?done=&lang=` of the account page.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    lang: Option<String>,
    done: Option<String>,
}

/// `GET /account`.
pub async fn account(
    State(st): State<AppState>,
    Query(q): Query<DoneQuery>,
    Signed(m): Signed,
    headers: HeaderMap,
) -> Response {
    let texts = crate::i18n::Lang::choose(q.lang.as_deref(), &headers).member();
    let notice = match q.done.as_deref() {
        Some("profile") => Some(texts.saved),
        Some("password") => Some(texts.password_changed),
        Some("card") => Some(texts.card_saved),
        _ => None,
    };
    let view = AccountView {
        lang: q.lang.as_deref(),
        errs: Errs::default(),
        section: "",
        notice,
        display_name: None,
        card: CardValues::default(),
    };
    account_page(&st, &headers, &m, view)
}

/// The profile form.
#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    display_name: String,
    show_email: Option<String>,
}

/// `POST /account/profile`.
pub async fn profile(
    State(st): State<AppState>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<ProfileForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    match accounts::update(&st, &m, &f.display_name, ticked(f.show_email.as_deref())).await {
        Ok(_) => Redirect::to("/account?done=profile").into_response(),
        Err(e) => form_failed(&st, &headers, &e, |errs| {
            let view = AccountView {
                lang: None,
                errs,
                section: "profile",
                notice: None,
                display_name: Some(f.display_name.clone()),
                card: CardValues::default(),
            };
            account_page(&st, &headers, &m, view)
        }),
    }
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /account/password`: this session stays, every other one ends.
pub async fn password(
    State(st): State<AppState>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let keep = cookie(&headers, SESSION_COOKIE);
    match accounts::change_password(&st, &m, &f.current_password, &f.new_password, keep).await {
        Ok(()) => Redirect::to("/account?done=password").into_response(),
        Err(e) => form_failed(&st, &headers, &e, |errs| {
            let view = AccountView {
                lang: None,
                errs,
                section: "password",
                notice: None,
                display_name: None,
                card: CardValues::default(),
            };
            account_page(&st, &headers, &m, view)
        }),
    }
}

/// `POST /account/card`: a new card on file; a general member becomes premium (with the
/// terms accepted).
pub async fn card(
    State(st): State<AppState>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<CardFormPost>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    let texts = crate::i18n::Lang::choose(None, &headers).member();
    let again = |errs: Errs| {
        let view = AccountView {
            lang: None,
            errs,
            section: "card",
            notice: None,
            display_name: None,
            card: CardValues {
                card_number: String::new(),
                exp_month: f.card.exp_month.clone(),
                exp_year: f.card.exp_year.clone(),
                holder: f.card.holder.clone(),
                terms: ticked(f.card.terms.as_deref()),
            },
        };
        account_page(&st, &headers, &m, view)
    };
    let mut errs = Errs::default();
    let draft = f.card.draft(&mut errs);
    if !errs.any() && !ticked(f.card.terms.as_deref()) {
        errs = Errs::field("terms", texts.terms_required);
    }
    let Some(draft) = draft.filter(|_| !errs.any()) else {
        return again(errs);
    };
    match accounts::set_card(&st, &m, &draft).await {
        Ok(_) => Redirect::to("/account?done=card").into_response(),
        Err(e) => form_failed(&st, &headers, &e, again),
    }
}

/// The card form of the account page.
#[derive(Debug, Deserialize)]
pub struct CardFormPost {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    card: CardForm,
}

/// `POST /account/sessions`: signs out everywhere, this browser too.
pub async fn sessions(
    State(st): State<AppState>,
    Signed(m): Signed,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(res) = check_csrf(&st, &headers, &f.csrf) {
        return res;
    }
    match accounts::logout_everywhere(&st, &m, None).await {
        Ok(_) => signed_out_to("/login?done=out"),
        Err(e) => failed(&st, &headers, &e),
    }
}

#[derive(Template)]
#[template(path = "terms.html")]
struct TermsPage {
    l: Layout,
}

/// `/terms`.
pub async fn terms(
    State(st): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let mut l = Layout::new(&st, &headers, q.lang.as_deref(), "");
    l.title = l.m.terms_title.to_owned();
    render(&TermsPage { l })
}
