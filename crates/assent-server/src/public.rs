//! The hosted opt-in form at `/optin/{slug}`: embeddable in the tenant's website, works
//! without JavaScript, and starts the double opt-in. It is an SMS-pumping target, so it is
//! rate-limited by IP, by number and per tenant per day, accepts only the tenant's countries,
//! and answers the same whatever it knew about the number.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use askama::Template;
use assent_core::compose;
use assent_core::consent::Source;
use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_provider::captcha::Captcha;
use assent_store::{Evidence, Tenant};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Duration;
use serde::Deserialize;

use crate::AppState;
use crate::service::{self, OptInStart};
use crate::webhooks::form_urlencoded_pairs;

pub fn router() -> Router<AppState> {
    Router::new().route("/optin/{slug}", get(show).post(submit))
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
struct Form<'a> {
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

impl Form<'_> {
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
    Form {
        name: &t.name,
        slug: &t.slug,
        phone,
        disclosure: compose::disclosure(&t.name),
        terms_url: &t.settings.terms_url,
        privacy_url: &t.settings.privacy_url,
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

async fn submit(
    State(app): State<AppState>,
    Path(slug): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t = match tenant_for_form(&app, &slug).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let fields: HashMap<String, String> =
        crate::webhooks::without_nul(form_urlencoded_pairs(&body))
            .into_iter()
            .collect();
    let phone_raw = fields
        .get("phone")
        .map(String::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let page_url: String = fields
        .get("page")
        .map(String::as_str)
        .unwrap_or("")
        .chars()
        .take(2000)
        .collect();
    let consent = fields.get("consent").is_some_and(|v| !v.trim().is_empty());
    let captcha = app.config.captcha.as_ref();
    let phone = E164::parse(&phone_raw)
        .ok()
        .filter(|p| t.settings.texts_to(p));
    let hint = countries_hint(&t.settings.countries);
    let mut errors = Vec::new();
    if phone.is_none() {
        errors.push(("phone", hint.as_str()));
    }
    if !consent {
        errors.push(("consent", "Tick the box to agree to receive text messages."));
    }
    let unprocessable = |errors: &[(&str, &str)]| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            frame_headers(&app),
            form_html(&t, captcha, &phone_raw, &page_url, errors),
        )
            .into_response()
    };
    let token = captcha
        .and_then(|c| fields.get(c.kind.token_field()))
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    if captcha.is_some() && token.is_empty() {
        errors.push(("captcha", CAPTCHA_HINT));
    }
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return unprocessable(&errors);
    };
    let now = app.clock.now();
    let ip = client_ip(&app, &headers, peer);
    // Kept in the database: every process of a deployment counts the same hits.
    let limits = [
        (
            format!("ip:{}", rate_key(&ip)),
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
    let allowed = match app.store.take_hits(&limits, now).await {
        Ok(allowed) => allowed,
        Err(e) => {
            tracing::error!(error = %e, "could not count the form's hits");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                frame_headers(&app),
                page(
                    "Please try again",
                    "We could not take the form",
                    Some("Please try again in a minute."),
                ),
            )
                .into_response();
        }
    };
    if !allowed {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            frame_headers(&app),
            page(
                "Please wait",
                "Too many sign-ups",
                Some("Please try again later."),
            ),
        )
            .into_response();
    }
    // After the limits: a flood of forged tokens must not become a flood of calls to the
    // captcha provider.
    if let Some(c) = captcha {
        let host = url::Url::parse(&app.config.public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        match c.verify(&token, &ip, &host).await {
            Ok(true) => {}
            Ok(false) => return unprocessable(&[("captcha", CAPTCHA_HINT)]),
            Err(e) => {
                // Unchecked is what the captcha is there to stop: refuse, and say so.
                tracing::warn!(error = %e, "captcha check failed");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    frame_headers(&app),
                    page(
                        "Please try again",
                        "We could not check the form",
                        Some("Please try again in a minute."),
                    ),
                )
                    .into_response();
            }
        }
    }
    app.metrics.form_submissions.fetch_add(1, Ordering::Relaxed);
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(2000)
        .collect::<String>();
    let start = OptInStart {
        source: Source::WebForm,
        actor: "customer".into(),
        customer_asked: true,
        evidence: Evidence {
            ip: Some(ip),
            user_agent: Some(user_agent),
            page: Some(page_url),
            disclosure: Some(compose::disclosure(&t.name)),
            ..Default::default()
        },
        idempotency_key: None,
    };
    // Known, opted-in, opted-out or throttled numbers get the same answer: the form must
    // never reveal what Assent knows about a number.
    match service::request_opt_in(&app, &t, &phone, start).await {
        Ok(Ok(_)) => app.wake.notify_one(),
        Ok(Err(reason)) => {
            tracing::info!(phone = %phone.masked(), reason = reason.as_str(), "form opt-in not sent")
        }
        Err(e) => {
            tracing::error!(error = %e, "form opt-in failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html(page(
                    "Try again",
                    "Something went wrong",
                    Some("Please try again."),
                )),
            )
                .into_response();
        }
    }
    (
        frame_headers(&app),
        page(
            "Check your phone",
            "Check your phone",
            Some(&format!(
                "If this number can receive texts from {}, we have sent it a message. Reply YES to that message to confirm your sign-up.",
                t.name
            )),
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
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
