//! The hosted opt-in form at `/optin/{slug}`: embeddable in the tenant's website, works
//! without JavaScript, and starts the double opt-in. It is an SMS-pumping target, so it is
//! rate-limited by IP, by number and per tenant per day, accepts only the tenant's countries,
//! and answers the same whatever it knew about the number.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

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
use crate::api::consent_html_escape as esc;
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

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;color:#1a1a1a;background:#fff;max-width:30rem}}\
label{{display:block;font-weight:600;margin:.75rem 0 .25rem}}input[type=tel]{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #555;border-radius:4px}}\
.consent{{display:flex;gap:.5rem;align-items:flex-start;margin:1rem 0;font-weight:400}}.consent input{{margin-top:.2rem}}\
.error{{color:#a30000;font-weight:600;margin:.25rem 0}}button{{font-size:1rem;padding:.6rem 1.2rem;background:#0b5394;color:#fff;border:0;border-radius:4px}}\
.small{{font-size:.85rem;color:#333}}a{{color:#0b5394}}</style></head><body>{body}</body></html>"
    )
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

fn form_html(
    t: &Tenant,
    captcha: Option<&Captcha>,
    phone: &str,
    page_url: &str,
    errors: &[(&str, &str)],
) -> String {
    let err = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| {
                format!(
                    "<p class=\"error\" id=\"{field}-error\" role=\"alert\">{}</p>",
                    esc(m)
                )
            })
            .unwrap_or_default()
    };
    let described = |field: &str| {
        if errors.iter().any(|(f, _)| *f == field) {
            format!(" aria-invalid=\"true\" aria-describedby=\"{field}-error\"")
        } else {
            String::new()
        }
    };
    let s = &t.settings;
    let mut links = Vec::new();
    if !s.terms_url.is_empty() {
        links.push(format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener\">Terms</a>",
            esc(&s.terms_url)
        ));
    }
    if !s.privacy_url.is_empty() {
        links.push(format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener\">Privacy Policy</a>",
            esc(&s.privacy_url)
        ));
    }
    let links = if links.is_empty() {
        String::new()
    } else {
        format!(" {}.", links.join(" · "))
    };
    page(
        &format!("Text messages from {}", esc(&t.name)),
        &format!(
            "<main><h1>Get text messages from {name}</h1>\
<form method=\"post\" action=\"/optin/{slug}\" novalidate>\
<label for=\"phone\">Mobile phone number</label>\
<input type=\"tel\" id=\"phone\" name=\"phone\" autocomplete=\"tel\" value=\"{phone}\" required{phone_aria}>{phone_err}\
<label class=\"consent\" for=\"consent\"><input type=\"checkbox\" id=\"consent\" name=\"consent\" value=\"yes\"{consent_aria}>\
<span id=\"disclosure\">{disclosure}{links}</span></label>{consent_err}\
<input type=\"hidden\" name=\"page\" value=\"{page}\">{widget}\
<button type=\"submit\">Sign up</button></form>\
<p class=\"small\">We will text you to confirm. You are subscribed only after you reply YES.</p></main>",
            name = esc(&t.name),
            slug = esc(&t.slug),
            phone = esc(phone),
            phone_aria = described("phone"),
            phone_err = err("phone"),
            consent_aria = described("consent"),
            consent_err = err("consent"),
            disclosure = esc(&compose::disclosure(&t.name)),
            page = esc(page_url),
            widget = captcha
                .map(|c| format!(
                    "<div class=\"{class}\" data-sitekey=\"{key}\"></div>{err}\
<script src=\"{script}\" async defer></script>",
                    class = c.kind.widget_class(),
                    key = esc(&c.site_key),
                    err = err("captcha"),
                    script = c.kind.script_url(),
                ))
                .unwrap_or_default(),
        ),
    )
}

async fn tenant_for_form(app: &AppState, slug: &str) -> Result<Tenant, Response> {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            Html(page(
                "Not found",
                "<main><h1>This sign-up form is not available</h1></main>",
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
                    "<main><h1>We could not take the form</h1><p>Please try again in a minute.</p></main>",
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
                "<main><h1>Too many sign-ups</h1><p>Please try again later.</p></main>",
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
                        "<main><h1>We could not check the form</h1><p>Please try again in a minute.</p></main>",
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
                    "<main><h1>Something went wrong</h1><p>Please try again.</p></main>",
                )),
            )
                .into_response();
        }
    }
    (
        frame_headers(&app),
        page(
            "Check your phone",
            &format!(
                "<main><h1>Check your phone</h1><p>If this number can receive texts from {}, we have sent it a message. \
Reply YES to that message to confirm your sign-up.</p></main>",
                esc(&t.name)
            ),
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
