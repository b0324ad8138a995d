//! The hosted opt-in form at `/optin/{slug}`: embeddable in the tenant's website, works
//! without JavaScript, and starts the double opt-in. It is an SMS-pumping target, so it is
//! rate-limited by IP, by number and per tenant per day, accepts only the tenant's countries,
//! and answers the same whatever it knew about the number.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use assent_core::compose;
use assent_core::consent::Source;
use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_provider::captcha::Captcha;
use assent_store::{Evidence, Tenant};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Duration;
use serde::Deserialize;

use crate::AppState;
use crate::service::{self, OptInStart};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/optin/{slug}", get(show).post(submit))
        .route("/optin/{slug}/terms", get(terms))
        .route("/optin/{slug}/privacy", get(privacy))
}

/// What the default terms and privacy pages say of a tenant's program.
pub struct ProgramDoc {
    pub business: String,
    pub program: String,
    pub sender: String,
    pub per_day: u32,
    pub contact: String,
    pub keyword: String,
    pub terms_url: String,
    pub privacy_url: String,
}

impl ProgramDoc {
    fn of(t: &Tenant) -> ProgramDoc {
        let s = &t.settings;
        let (terms_url, privacy_url) = service::opt_in_tools::policy_links(t, "");
        ProgramDoc {
            business: t.name.clone(),
            program: format!("{} Text Offers", service::brand(t)),
            sender: t
                .senders
                .marketing
                .as_ref()
                .map(crate::web::phone_display)
                .unwrap_or_else(|| "its marketing number".into()),
            per_day: s.marketing_cap_per_day,
            contact: if s.help_contact.trim().is_empty() && !s.contact.trim().is_empty() {
                s.contact.clone()
            } else {
                service::contact_of(t)
            },
            keyword: s.opt_in_keyword().to_string(),
            terms_url: terms_url.url,
            privacy_url: privacy_url.url,
        }
    }
}

#[derive(Template)]
#[template(path = "public/terms.html")]
struct TermsPage {
    d: ProgramDoc,
}

#[derive(Template)]
#[template(path = "public/privacy.html")]
struct PrivacyPage {
    d: ProgramDoc,
}

/// A tenant's program, by its slug, for the default terms and privacy pages: they exist
/// from the start, since the marketing registration asks for both addresses.
async fn tenant_for_doc(app: &AppState, slug: &str) -> Result<Tenant, Response> {
    match app.store.tenant_by_slug(slug).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            Html(page("Not found", "This page is not available", None)),
        )
            .into_response()),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// `GET /optin/{slug}/terms`: the default terms of the tenant's text program.
async fn terms(State(app): State<AppState>, Path(slug): Path<String>) -> Response {
    match tenant_for_doc(&app, &slug).await {
        Ok(t) => (
            frame_headers(&app),
            TermsPage {
                d: ProgramDoc::of(&t),
            }
            .to_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// `GET /optin/{slug}/privacy`: the default privacy policy of the tenant's text program.
async fn privacy(State(app): State<AppState>, Path(slug): Path<String>) -> Response {
    match tenant_for_doc(&app, &slug).await {
        Ok(t) => (
            frame_headers(&app),
            PrivacyPage {
                d: ProgramDoc::of(&t),
            }
            .to_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

const PER_IP_PER_10_MIN: u32 = 5;
const PER_NUMBER_PER_DAY: u32 = 3;
const CAPTCHA_HINT: &str = "Complete the check above the button to show you are a person.";

fn frame_headers(app: &AppState) -> [(&'static str, String); 3] {
    // This page, and only this one, lives in other sites' iframes; a captcha's script and
    // frames come from its provider.
    let csp = match &app.config.captcha {
        None => "frame-ancestors *; default-src 'self'; style-src 'unsafe-inline'".to_string(),
        Some(c) => {
            let o = c.kind.origins();
            format!(
                "frame-ancestors *; default-src 'self'; style-src 'unsafe-inline' {o}; \
                 script-src 'self' {o}; frame-src {o}; connect-src 'self' {o}"
            )
        }
    };
    [
        ("content-type", "text/html; charset=utf-8".to_string()),
        ("content-security-policy", csp),
        ("referrer-policy", "no-referrer".to_string()),
    ]
}

/// A page of the form's own with one heading and, maybe, one sentence.
#[derive(Template)]
#[template(path = "public/message.html")]
struct Message<'a> {
    title: &'a str,
    heading: &'a str,
    text: Option<&'a str>,
}

fn page(title: &str, heading: &str, text: Option<&str>) -> String {
    Message {
        title,
        heading,
        text,
    }
    .to_string()
}

/// What the form says about a number it cannot take, in the tenant's countries' terms.
fn countries_hint(countries: &[String]) -> String {
    let has = |c: &str| countries.iter().any(|k| k == c);
    match countries.len() {
        2 if has("US") && has("CA") => {
            "Enter a US or Canadian mobile number, such as (512) 555-0142.".into()
        }
        1 if has("US") => "Enter a US mobile number, such as (512) 555-0142.".into(),
        1 if has("CA") => "Enter a Canadian mobile number, such as (416) 555-0142.".into(),
        _ => format!(
            "Enter a mobile number from one of these countries: {}.",
            countries.join(", ")
        ),
    }
}

struct Widget<'a> {
    class: &'static str,
    site_key: &'a str,
    script: &'static str,
}

#[derive(Template)]
#[template(path = "public/form.html")]
struct FormPage<'a> {
    name: &'a str,
    slug: &'a str,
    phone: &'a str,
    disclosure: String,
    terms_url: &'a str,
    privacy_url: &'a str,
    page: &'a str,
    captcha: Option<Widget<'a>>,
    errors: &'a [(&'a str, &'a str)],
}

impl FormPage<'_> {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| *m)
    }
}

fn form_html(
    t: &Tenant,
    captcha: Option<&Captcha>,
    phone: &str,
    page_url: &str,
    errors: &[(&str, &str)],
) -> String {
    // The tenant's own pages, else Assent's defaults (on this server, beside the form).
    let (terms, privacy) = service::opt_in_tools::policy_links(t, "");
    FormPage {
        name: &t.name,
        slug: &t.slug,
        phone,
        disclosure: compose::disclosure(&t.name),
        terms_url: &terms.url,
        privacy_url: &privacy.url,
        page: page_url,
        captcha: captcha.map(|c| Widget {
            class: c.kind.widget_class(),
            site_key: &c.site_key,
            script: c.kind.script_url(),
        }),
        errors,
    }
    .to_string()
}

async fn tenant_for_form(app: &AppState, slug: &str) -> Result<Tenant, Response> {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            Html(page(
                "Not found",
                "This sign-up form is not available",
                None,
            )),
        )
            .into_response()
    };
    let t = match app.store.tenant_by_slug(slug).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup failed");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    // Until marketing registration is approved the form does not exist.
    match app.store.registrations(&t.id).await {
        Ok(r)
            if r.marketing_status() == RegistrationStatus::Approved
                && t.senders.marketing.is_some() =>
        {
            Ok(t)
        }
        Ok(_) => Err(not_found()),
        Err(_) => Err(StatusCode::SERVICE_UNAVAILABLE.into_response()),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    page: Option<String>,
}

async fn show(
    State(app): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    match tenant_for_form(&app, &slug).await {
        Ok(t) => (
            frame_headers(&app),
            form_html(
                &t,
                app.config.captcha.as_ref(),
                "",
                q.page.as_deref().unwrap_or(""),
                &[],
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}

/// The rate-limit key of a client address: parsed, so spellings of one address
/// (`::ffff:1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, zeros written out) share one
/// count, and an IPv6 client counted by its /64, the block one subscriber gets (trying
/// each of its 2^64 addresses would otherwise reset the limit). Anything unreadable
/// shares one key.
pub(crate) fn rate_key(ip: &str) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let ip = ip.trim();
    let parsed = ip
        .parse::<IpAddr>()
        .ok()
        .or_else(|| ip.parse::<SocketAddr>().ok().map(|s| s.ip()));
    match parsed.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        None => "unreadable".into(),
    }
}

pub(crate) fn client_ip(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    if app.config.trust_proxy
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return first.trim().to_string();
    }
    peer.ip().to_string()
}

/// What the form posted: the phone as typed, the page it sits on, the consent box and the
/// captcha's token.
struct Submission {
    phone_raw: String,
    page_url: String,
    consent: bool,
    token: String,
}

impl Submission {
    fn read(fields: Vec<(String, String)>, captcha: Option<&Captcha>) -> Self {
        // No field holds U+0000, and PostgreSQL could not store it.
        let fields: HashMap<String, String> =
            crate::webhooks::without_nul(fields).into_iter().collect();
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        Submission {
            phone_raw: field("phone").trim().to_string(),
            page_url: field("page").chars().take(2000).collect(),
            consent: !field("consent").trim().is_empty(),
            token: captcha
                .map(|c| field(c.kind.token_field()).trim().to_string())
                .unwrap_or_default(),
        }
    }
}

/// A page of the form's own in the frame, with a status.
fn framed(app: &AppState, status: StatusCode, title: &str, heading: &str, text: &str) -> Response {
    (status, frame_headers(app), page(title, heading, Some(text))).into_response()
}

/// The form again, with each error beside its field.
fn unprocessable(app: &AppState, t: &Tenant, s: &Submission, errors: &[(&str, &str)]) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        frame_headers(app),
        form_html(
            t,
            app.config.captcha.as_ref(),
            &s.phone_raw,
            &s.page_url,
            errors,
        ),
    )
        .into_response()
}

/// The phone, when the form can be taken; otherwise each error beside its field.
fn checked_phone(
    app: &AppState,
    t: &Tenant,
    s: &Submission,
) -> Result<E164, Vec<(&'static str, String)>> {
    let phone = E164::parse(&s.phone_raw)
        .ok()
        .filter(|p| t.settings.texts_to(p));
    let mut errors = Vec::new();
    if phone.is_none() {
        errors.push(("phone", countries_hint(&t.settings.countries)));
    }
    if !s.consent {
        errors.push((
            "consent",
            "Tick the box to agree to receive text messages.".into(),
        ));
    }
    if app.config.captcha.is_some() && s.token.is_empty() {
        errors.push(("captcha", CAPTCHA_HINT.into()));
    }
    match phone {
        Some(phone) if errors.is_empty() => Ok(phone),
        _ => Err(errors),
    }
}

/// Counts the submission against the limits by address, by number and per tenant; a
/// refusal when one is reached or the count cannot be kept.
async fn take_limits(app: &AppState, t: &Tenant, ip: &str, phone: &E164) -> Result<(), Response> {
    // Kept in the database: every process of a deployment counts the same hits.
    let limits = [
        (
            format!("ip:{}", rate_key(ip)),
            PER_IP_PER_10_MIN,
            Duration::minutes(10),
        ),
        (
            format!("phone:{}:{}", t.id, phone),
            PER_NUMBER_PER_DAY,
            Duration::days(1),
        ),
        (
            format!("tenant:{}", t.id),
            t.settings.form_daily_limit,
            Duration::days(1),
        ),
    ];
    match app.store.take_hits(&limits, app.clock.now()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(framed(
            app,
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait",
            "Too many sign-ups",
            "Please try again later.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "could not count the form's hits");
            Err(framed(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "We could not take the form",
                "Please try again in a minute.",
            ))
        }
    }
}

/// Asks the captcha's provider about the token, when a captcha is configured.
async fn check_captcha(
    app: &AppState,
    t: &Tenant,
    s: &Submission,
    ip: &str,
) -> Result<(), Response> {
    let Some(c) = app.config.captcha.as_ref() else {
        return Ok(());
    };
    let host = url::Url::parse(&app.config.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    match c.verify(&s.token, ip, &host).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(unprocessable(app, t, s, &[("captcha", CAPTCHA_HINT)])),
        Err(e) => {
            // Unchecked is what the captcha is there to stop: refuse, and say so.
            tracing::warn!(error = %e, "captcha check failed");
            Err(framed(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "We could not check the form",
                "Please try again in a minute.",
            ))
        }
    }
}

/// The form's evidence: who asked from where, and the disclosure they saw.
fn evidence(t: &Tenant, headers: &HeaderMap, ip: String, page_url: String) -> Evidence {
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(2000)
        .collect::<String>();
    Evidence {
        ip: Some(ip),
        user_agent: Some(user_agent),
        page: Some(page_url),
        disclosure: Some(compose::disclosure(&t.name)),
        ..Default::default()
    }
}

/// Starts the double opt-in. Known, opted-in, opted-out or throttled numbers get the same
/// answer: the form must never reveal what Assent knows about a number. Returns when the
/// text goes if quiet hours hold it.
async fn start_opt_in(
    app: &AppState,
    t: &Tenant,
    phone: &E164,
    evidence: Evidence,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Response> {
    let start = OptInStart {
        source: Source::WebForm,
        actor: "customer".into(),
        customer_asked: true,
        evidence,
        idempotency_key: None,
    };
    match service::request_opt_in(app, t, phone, start).await {
        Ok(Ok(id)) => {
            app.wake.notify_one();
            // Held by quiet hours: the page says until when (the hour depends only on
            // the number's area code and the clock, which the person typing knows).
            if let Ok(Some(m)) = app.store.message(&t.id, &id).await
                && m.reason == Some(assent_store::MessageReason::QuietHours)
            {
                return Ok(m.deferred_until());
            }
        }
        Ok(Err(reason)) => {
            tracing::info!(phone = %phone.masked(), reason = reason.as_str(), "form opt-in not sent")
        }
        Err(e) => {
            tracing::error!(error = %e, "form opt-in failed");
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Html(page(
                    "Try again",
                    "Something went wrong",
                    Some("Please try again."),
                )),
            )
                .into_response());
        }
    }
    Ok(None)
}

async fn submit(
    State(app): State<AppState>,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    match take_submission(&app, &slug, peer, &headers, fields).await {
        Ok(r) | Err(r) => r,
    }
}

/// The form's steps in order: the tenant's form, the fields, the limits, the captcha
/// (after the limits: a flood of forged tokens must not become a flood of calls to its
/// provider), then the opt-in request.
async fn take_submission(
    app: &AppState,
    slug: &str,
    peer: SocketAddr,
    headers: &HeaderMap,
    fields: Vec<(String, String)>,
) -> Result<Response, Response> {
    let t = tenant_for_form(app, slug).await?;
    let s = Submission::read(fields, app.config.captcha.as_ref());
    let phone = checked_phone(app, &t, &s).map_err(|errors| {
        let errors: Vec<(&str, &str)> = errors.iter().map(|(f, m)| (*f, m.as_str())).collect();
        unprocessable(app, &t, &s, &errors)
    })?;
    let ip = client_ip(app, headers, peer);
    take_limits(app, &t, &ip, &phone).await?;
    check_captcha(app, &t, &s, &ip).await?;
    app.metrics.form_submissions.increment(1);
    let held = start_opt_in(app, &t, &phone, evidence(&t, headers, ip, s.page_url)).await?;
    Ok(framed(
        app,
        StatusCode::OK,
        "Check your phone",
        "Check your phone",
        &check_your_phone(&t.name, t.time_zone, &phone, held),
    ))
}

/// What the form answers after a submission: that a text is on its way, or, when quiet
/// hours hold it, when it goes ("we'll text you after 8 AM", in the number's first zone).
fn check_your_phone(
    business: &str,
    zone: assent_core::Tz,
    phone: &E164,
    held: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let recipient = assent_core::quiet_hours::locate(phone, None, zone);
    match (held, recipient.zones.first()) {
        (Some(until), Some(zone)) => {
            let local = until.with_timezone(zone);
            let time = if local.format("%M").to_string() == "00" {
                local.format("%-I %p").to_string()
            } else {
                local.format("%-I:%M %p").to_string()
            };
            format!(
                "Texts wait for quiet hours to end, so we'll text you after {time} (your local time). Reply YES to that message to confirm your sign-up."
            )
        }
        _ => format!(
            "If this number can receive texts from {business}, we have sent it a message. Reply YES to that message to confirm your sign-up."
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_held_request_says_when_it_goes_in_the_numbers_zone() {
        use chrono::TimeZone;
        let zone: assent_core::Tz = "America/Chicago".parse().unwrap();
        let phone = assent_core::phone::E164::parse("+15125550178").unwrap();
        let until = chrono::Utc.with_ymd_and_hms(2026, 3, 5, 14, 0, 0).unwrap();
        let text = super::check_your_phone("Acme", zone, &phone, Some(until));
        assert!(text.contains("we'll text you after 8 AM"), "{text}");
        let until = chrono::Utc.with_ymd_and_hms(2026, 3, 5, 14, 30, 0).unwrap();
        assert!(
            super::check_your_phone("Acme", zone, &phone, Some(until)).contains("after 8:30 AM")
        );
        assert!(
            super::check_your_phone("Acme", zone, &phone, None)
                .contains("we have sent it a message")
        );
    }

    #[test]
    fn rate_keys_are_parsed_addresses_and_ipv6_counts_by_its_64() {
        use super::rate_key;
        assert_eq!(rate_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(rate_key(" 203.0.113.7:5555"), "203.0.113.7");
        assert_eq!(rate_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(rate_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(rate_key("2001:0db8:0001:0002:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(rate_key("[2001:db8:1:2::9]:443"), "2001:db8:1:2::/64");
        assert_eq!(rate_key("evil, 1.2.3.4"), "unreadable");
        assert_eq!(rate_key(""), "unreadable");
    }
}
