//! Signing in and out. Passwords are argon2id hashes; a session is a random 256-bit id in
//! an HTTP-only, SameSite=Lax cookie (Secure when the public URL is https), stored only as
//! its SHA-256. Every form a signed-in page posts carries the session's CSRF token, and
//! [`Posted`] refuses a POST without it. Five failed sign-ins in a row lock the account for
//! 15 minutes.

use std::collections::HashMap;
use std::net::SocketAddr;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use assent_store::{Registrations, Role, Session, Tenant, User};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;

use askama::Template;

use super::WebError;
use crate::AppState;
use crate::auth::{constant_time_eq, hash_api_key, random_token};
use crate::error::ApiError;
use crate::webhooks::form_urlencoded_pairs;

const COOKIE: &str = "assent_session";
const SESSION_HOURS: i64 = 12;
pub const MAX_FAILED_LOGINS: u32 = 5;
pub const LOCK_MINUTES: i64 = 15;

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random source: {e}"))?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

/// Creates a sign-in for a tenant's owner (`assent user create`). The email is trimmed and
/// lower-cased; the password needs at least 8 characters.
pub async fn create_user(
    app: &AppState,
    tenant_slug: &str,
    email: &str,
    password: &str,
) -> Result<User, ApiError> {
    create_user_as(app, tenant_slug, email, password, Role::Owner).await
}

/// Creates a sign-in with a role (the Team page adds owners and marketers).
pub async fn create_user_as(
    app: &AppState,
    tenant_slug: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<User, ApiError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() < 3 || email.contains(char::is_whitespace) {
        return Err(ApiError::field("email", "must be an email address"));
    }
    check_password(password)?;
    let tenant = app
        .store
        .tenant_by_slug(tenant_slug)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let pw = password.to_string();
    let password_hash = hash_bounded(move || hash_password(&pw))
        .await
        .ok_or_else(|| ApiError::new(crate::error::Code::Busy, "the server is busy; try again"))?
        .map_err(|e| ApiError::new(crate::error::Code::Internal, e))?;
    let user = User {
        id: crate::service::new_id(),
        tenant_id: tenant.id,
        email,
        password_hash,
        failed_logins: 0,
        locked_until: None,
        created_at: app.clock.now(),
        role,
        disabled: false,
    };
    app.store.create_user(&user).await.map_err(|e| match e {
        assent_store::StoreError::Conflict(_) => ApiError::new(
            crate::error::Code::EmailTaken,
            "a user with this email already exists",
        ),
        other => other.into(),
    })?;
    Ok(user)
}

/// The shortest password taken.
pub const MIN_PASSWORD: usize = 8;
/// The longest password taken (hashing a huge one would only waste time).
pub const MAX_PASSWORD: usize = 1024;

/// The password rules, in words (`assent user set-password` says them before asking).
pub const PASSWORD_RULES: &str = "at least 8 characters, at most 1024";

/// Checks a new password against [`PASSWORD_RULES`].
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(ApiError::field(
            "password",
            "must have at least 8 characters",
        ));
    }
    if n > MAX_PASSWORD {
        return Err(ApiError::field(
            "password",
            "must have at most 1024 characters",
        ));
    }
    Ok(())
}

/// The user with this email (trimmed, any case), or `not_found`.
pub async fn user_by_email(app: &AppState, email: &str) -> Result<User, ApiError> {
    let email = email.trim().to_lowercase();
    app.store
        .user_by_email(&email)
        .await?
        .ok_or_else(|| ApiError::not_found("user with this email"))
}

/// Ends a lockout at once (`assent user unlock`): the count of failed sign-ins is cleared.
pub async fn unlock_user(app: &AppState, email: &str) -> Result<User, ApiError> {
    let user = user_by_email(app, email).await?;
    app.store.clear_failed_logins(&user.id).await?;
    tracing::info!(email = %mask_email(&user.email), "account unlocked by the operator");
    Ok(user)
}

/// Sets a user's password (`assent user set-password`): checked, hashed, stored; any lock
/// is cleared and the user's sessions end.
pub async fn set_password(app: &AppState, email: &str, password: &str) -> Result<User, ApiError> {
    check_password(password)?;
    let user = user_by_email(app, email).await?;
    let pw = password.to_string();
    let hash = hash_bounded(move || hash_password(&pw))
        .await
        .ok_or_else(|| ApiError::new(crate::error::Code::Busy, "the server is busy; try again"))?
        .map_err(|e| ApiError::new(crate::error::Code::Internal, e))?;
    app.store.set_password(&user.id, &hash).await?;
    tracing::info!(email = %mask_email(&user.email), "password set by the operator");
    Ok(user)
}

fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Each argon2 hash holds about 19 MiB while it runs: at most this many run at once, so
/// a flood of sign-ins queues instead of taking the server's memory.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(1, 4))
    })
}

/// How long a sign-in waits for a hashing slot before it is told to try again.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `f` (a hash) on the blocking pool once a hashing slot is free; `None` when none
/// came free in time.
async fn hash_bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let permit = tokio::time::timeout(HASH_WAIT, hashing_permits().acquire())
        .await
        .ok()?
        .ok()?;
    // The permit goes with the hash, not with this future: a client that hangs up mid-way
    // drops the future, but the hash runs to its end and must still hold its slot.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .ok()
}

/// Hashing is deliberately slow: keep it off the async workers, a bounded number at once.
/// `None`: the server is too busy to check now.
async fn verify_blocking(password: String, hash: Option<String>) -> Option<bool> {
    hash_bounded(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            // Unknown email: spend the same time, so timing does not reveal accounts.
            let _ = hash_password(&password);
            false
        }
    })
    .await
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in user, with their tenant and its registrations (every page's banner needs
/// them). A request without a valid session is sent to `/login`.
pub struct SignedIn {
    pub session: Session,
    pub user: User,
    pub tenant: Tenant,
    pub registrations: Registrations,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let next = if parts.method == axum::http::Method::GET {
                format!("?next={}", super::url_part(next))
            } else {
                String::new()
            };
            Redirect::to(&format!("/login{next}")).into_response()
        };
        let Some(token) = cookie_value(&parts.headers, COOKIE) else {
            return Err(to_login());
        };
        let now = app.clock.now();
        let found = app
            .store
            .session(&hash_api_key(token), now)
            .await
            .map_err(|e| WebError::from(e).into_response())?;
        let Some((session, user)) = found.filter(|(_, u)| !u.disabled) else {
            return Err(to_login());
        };
        let tenant = app
            .store
            .tenant(&user.tenant_id)
            .await
            .map_err(|e| WebError::from(e).into_response())?
            .ok_or_else(to_login)?;
        let registrations = app
            .store
            .registrations(&tenant.id)
            .await
            .map_err(|e| WebError::from(e).into_response())?;
        Ok(SignedIn {
            session,
            user,
            tenant,
            registrations,
        })
    }
}

impl SignedIn {
    /// Refuses (403) what only an owner may see or change: the team, the registrations,
    /// the sending numbers and the settings. Every such handler asks, whatever its page
    /// showed.
    pub fn owner_only(&self) -> Result<(), WebError> {
        if crate::service::team::may_manage(&self.user) {
            return Ok(());
        }
        tracing::info!(user = %self.user.id, "refused: owners only");
        Err(WebError {
            status: StatusCode::FORBIDDEN,
            message: "Only an owner of this account can change this. Ask one of its owners.".into(),
        })
    }
}

/// A form posted from a signed-in page: the session, and the fields once the CSRF token
/// among them matched the session's. Handlers that change anything take this.
pub struct Posted {
    pub user: SignedIn,
    pub fields: HashMap<String, String>,
}

impl Posted {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
    /// A checkbox: present and non-empty when ticked.
    pub fn ticked(&self, name: &str) -> bool {
        !self.field(name).is_empty()
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let user = SignedIn::from_request_parts(&mut parts, app).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        // No page posts U+0000, and PostgreSQL could not store it.
        let fields: HashMap<String, String> =
            crate::webhooks::without_nul(form_urlencoded_pairs(&bytes))
                .into_iter()
                .collect();
        let given = fields.get("csrf").map(String::as_str).unwrap_or("");
        if given.is_empty()
            || !constant_time_eq(given.as_bytes(), user.session.csrf_token.as_bytes())
        {
            return Err(WebError {
                status: StatusCode::FORBIDDEN,
                message: "This form has expired or did not come from Assent. Go back, reload the page and try again.".into(),
            }
            .into_response());
        }
        Ok(Posted { user, fields })
    }
}

/// Where to go after sign-in: `next` resolved the way a browser resolves a link on this
/// site (tabs and newlines dropped, `\\` read as `/`), kept only when it stays on this
/// origin; anything else, or anything unreadable, goes to `/`. The answer is the resolved
/// path, query and fragment, percent-encoded, so it is always a valid `Location`.
fn safe_next(next: &str) -> String {
    const HOME: &str = "/";
    const BASE: &str = "http://assent.invalid/";
    // Only a path: a scheme or a host, even this site's own, is not taken.
    if !next.starts_with('/') || next.chars().any(char::is_control) {
        return HOME.into();
    }
    let Ok(base) = url::Url::parse(BASE) else {
        return HOME.into();
    };
    match base.join(next) {
        Ok(u) if u.origin() == base.origin() => u[url::Position::BeforePath..].to_string(),
        _ => HOME.into(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    email: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

fn login_html(email: &str, next: &str, error: Option<&str>) -> Response {
    super::render(&LoginPage { email, next, error })
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(app): State<AppState>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/customers"));
    let next = next.as_str();
    // Already signed in: straight on.
    if let Some(token) = cookie_value(&headers, COOKIE)
        && let Ok(Some(_)) = app
            .store
            .session(&hash_api_key(token), app.clock.now())
            .await
    {
        return Redirect::to(next).into_response();
    }
    login_html("", next, None)
}

fn session_cookie(public_url: &str, value: &str, max_age: i64) -> String {
    let secure = if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// A browser names the page a form came from; a sign-in posted from another site is
/// refused (login CSRF: it would sign the person in to someone else's account).
/// The public URL counts as this site too (a proxy may pass on another Host).
fn cross_site(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let host_of = |url: &str| {
        let rest = url.split_once("://").map(|(_, h)| h).unwrap_or(url);
        rest.split('/').next().unwrap_or("").to_ascii_lowercase()
    };
    let origin_host = host_of(origin);
    origin == "null"
        || (!origin_host.eq_ignore_ascii_case(host) && origin_host != host_of(public_url))
}

/// Sign-in attempts one client address may make in [`LOCK_MINUTES`], whatever the emails:
/// the per-account lock alone would let one client try a password on every account.
pub const SIGN_INS_PER_ADDRESS: u32 = 60;

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if cross_site(&headers, &app.config.public_url) {
        return WebError {
            status: StatusCode::FORBIDDEN,
            message: "Sign in from Assent's own sign-in page.".into(),
        }
        .into_response();
    }
    let fields: HashMap<String, String> =
        crate::webhooks::without_nul(form_urlencoded_pairs(&body))
            .into_iter()
            .collect();
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let email = get("email").trim().to_lowercase();
    let password = get("password").to_string();
    let next = safe_next(get("next"));
    let refuse = |status: StatusCode, message: &str| {
        (status, login_html(&email, &next, Some(message))).into_response()
    };
    let locked = || {
        refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins: this account is locked for {LOCK_MINUTES} minutes. Try again later."
            ),
        )
    };
    let now = app.clock.now();
    let window = Duration::minutes(LOCK_MINUTES);
    let ip = crate::public::client_ip(&app, &headers, peer);
    let address = [(
        format!("login-ip:{}", crate::public::rate_key(&ip)),
        SIGN_INS_PER_ADDRESS,
        window,
    )];
    match app.store.take_hits(&address, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(ip = %ip, "sign-in refused: too many from this address");
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins from this network. Try again later.",
            );
        }
        Err(e) => return WebError::from(e).into_response(),
    }
    let user = match app.store.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return WebError::from(e).into_response(),
    };
    // Every attempt is counted before its password is checked, so parallel guesses cannot
    // all be checked; an unknown email is counted (by its hash) and locked the same way,
    // so the answers never tell which emails have an account.
    let counted = match &user {
        Some(u) => {
            app.store
                .count_login_attempt(&u.id, now, MAX_FAILED_LOGINS, now + window)
                .await
        }
        None => {
            let key = format!("login-email:{}", hash_api_key(&email));
            app.store
                .take_hits(&[(key, MAX_FAILED_LOGINS, window)], now)
                .await
        }
    };
    match counted {
        Ok(true) => {}
        Ok(false) => {
            failed_sign_in(&app, user.as_ref(), &email, Some(true)).await;
            return locked();
        }
        Err(e) => return WebError::from(e).into_response(),
    }
    let Some(ok) = verify_blocking(password, user.as_ref().map(|u| u.password_hash.clone())).await
    else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "Assent is busy. Try again in a moment.",
        );
    };
    let Some(user) = user.clone().filter(|_| ok) else {
        failed_sign_in(&app, user.as_ref(), &email, None).await;
        return refuse(StatusCode::UNAUTHORIZED, "Wrong email or password.");
    };
    // Only the right password learns that the account is disabled.
    if user.disabled {
        tracing::info!(user = %user.id, "sign-in refused: account disabled");
        return refuse(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an owner of your business's account to enable it.",
        );
    }
    if let Err(e) = app.store.clear_failed_logins(&user.id).await {
        return WebError::from(e).into_response();
    }
    // A session this browser had before ends: every sign-in gets a fresh id.
    if let Some(old) = cookie_value(&headers, COOKIE)
        && let Err(e) = app.store.delete_session(&hash_api_key(old)).await
    {
        return WebError::from(e).into_response();
    }
    let token = random_token("");
    let session = Session {
        id_hash: hash_api_key(&token),
        user_id: user.id.clone(),
        csrf_token: random_token(""),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
    };
    if let Err(e) = app.store.create_session(&session).await {
        return WebError::from(e).into_response();
    }
    tracing::info!(user = %user.id, "signed in");
    (
        [(
            header::SET_COOKIE,
            session_cookie(&app.config.public_url, &token, SESSION_HOURS * 3600),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

/// An email as logs and the Settings page show it: the first character of the name, the
/// domain whole (`a***@acme.example`).
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((name, domain)) => {
            let first: String = name.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Logs a failed sign-in (the email masked) and, for an account that exists, records it
/// for its tenant's Settings page. `locked`: already known (a refusal while locked), or
/// `None` to read whether this failure locked the account.
async fn failed_sign_in(app: &AppState, user: Option<&User>, email: &str, locked: Option<bool>) {
    let masked = mask_email(email);
    let Some(user) = user else {
        tracing::warn!(email = %masked, "sign-in failed: no such account");
        return;
    };
    let now = app.clock.now();
    let locked = match locked {
        Some(l) => l,
        None => match app.store.user_by_email(&user.email).await {
            Ok(Some(u)) => u.locked_until.is_some_and(|l| l > now),
            _ => false,
        },
    };
    if locked {
        tracing::warn!(email = %masked, tenant = %user.tenant_id, "sign-in failed: account locked");
    } else {
        tracing::warn!(email = %masked, tenant = %user.tenant_id, "sign-in failed: wrong password");
    }
    let failure = assent_store::LoginFailure {
        at: now,
        email: masked,
        locked,
    };
    if let Err(e) = app
        .store
        .record_login_failure(&user.tenant_id, &failure)
        .await
    {
        tracing::error!(error = %e, "could not record a failed sign-in");
    }
}

pub async fn logout(State(app): State<AppState>, posted: Posted) -> Response {
    if let Err(e) = app.store.delete_session(&posted.user.session.id_hash).await {
        return WebError::from(e).into_response();
    }
    (
        [(
            header::SET_COOKIE,
            session_cookie(&app.config.public_url, "", 0),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert_ne!(h, hash_password("correct horse").expect("hash"));
    }

    #[test]
    fn the_cookie_is_secure_behind_https_and_never_readable_by_scripts() {
        let c = session_cookie("https://sms.acme.example", "abc", 60);
        assert_eq!(
            c,
            "assent_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!session_cookie("http://127.0.0.1:8080", "abc", 60).contains("Secure"));
    }

    #[test]
    fn a_sign_in_from_another_site_is_cross_site() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "sms.acme.example".parse().unwrap());
        let public = "https://sms.acme.example";
        assert!(
            !cross_site(&h, public),
            "no Origin: an older browser or a script"
        );
        h.insert(header::ORIGIN, "https://sms.acme.example".parse().unwrap());
        assert!(!cross_site(&h, public));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_site(&h, public));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(cross_site(&h, public));
        // Behind a proxy that passes its own Host, the public URL is what matches.
        h.insert(header::HOST, "assent".parse().unwrap());
        h.insert(header::ORIGIN, "https://sms.acme.example".parse().unwrap());
        assert!(!cross_site(&h, public));
    }

    /// However many sign-ins arrive at once, no more hashes run than there are permits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(hash_bounded(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_some());
        }
        let permits = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        assert!(most.load(Ordering::SeqCst) <= permits);
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/customers/1?q=a b"), "/customers/1?q=a%20b");
        assert_eq!(safe_next("/customers/1"), "/customers/1");
        for evil in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\u{0}x",
            "/\u{7f}x",
            "javascript:alert(1)",
            " /customers",
            "",
        ] {
            assert_eq!(safe_next(evil), "/", "{evil:?}");
        }
        // Non-ASCII is fine, encoded, so the Location header is valid.
        assert_eq!(safe_next("/customers?q=Zoë"), "/customers?q=Zo%C3%AB");
    }
}
