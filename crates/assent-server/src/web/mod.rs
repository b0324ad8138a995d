//! The web app for the business's marketing manager: server-rendered pages that work
//! without JavaScript, behind a sign-in (see [`session`]). Every page goes through
//! [`Page::render`], which draws the navigation and the banner that says why sending is
//! blocked; every value placed in HTML goes through [`esc`].
//!
//! Pages: `/login`, `/customers` (search), `/customers/{id}` (toggles, consent, opt-in
//! request), `/registrations` (both forms, sending numbers), `/opt-in-tools`,
//! `/conversations[/{phone}]`, `/reviews` (texts a person must judge), `/compliance` (ledger and
//! CSV export), `/campaigns`,
//! `/campaigns/new` (composer), `/campaigns/{id}` (report, pause, resume), `/settings`. The public
//! opt-in form lives in [`crate::public`]; it is the only page another site may frame.

mod activity;
mod campaigns;
mod customers;
mod registrations;
mod reviews;
mod session;
mod settings;
mod tools;

use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_store::{Registrations, Tenant};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use crate::AppState;
use crate::error::ApiError;
pub use session::{SIGN_INS_PER_ADDRESS, SignedIn, create_user, hash_password};
pub(crate) use settings::link as settings_link;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/customers") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/customers", get(customers::search))
        .route("/customers/{id}", get(customers::record))
        .route(
            "/customers/{id}/phones/{phone}/notifications",
            post(customers::save_toggles),
        )
        .route(
            "/customers/{id}/phones/{phone}/opt-in-request",
            post(customers::send_opt_in_request),
        )
        .route(
            "/customers/{id}/phones/{phone}/opt-out",
            post(customers::record_opt_out),
        )
        .route("/registrations", get(registrations::registrations))
        .route("/registrations/{kind}", post(registrations::submit))
        .route("/senders", post(registrations::save_senders))
        .route("/opt-in-tools", get(tools::opt_in_tools))
        .route("/opt-in-tools/qr.svg", get(tools::qr_download))
        .route("/conversations", get(activity::conversations))
        .route("/conversations/{phone}", get(activity::conversation))
        .route("/reviews", get(reviews::reviews))
        .route("/reviews/{id}", post(reviews::decide))
        .route("/compliance", get(activity::compliance))
        .route("/compliance/export.csv", get(activity::export_csv))
        .route("/campaigns", get(campaigns::campaigns))
        .route(
            "/campaigns/new",
            get(campaigns::new_campaign).post(campaigns::create),
        )
        .route("/campaigns/preview", post(campaigns::preview_json))
        .route("/campaigns/{id}", get(campaigns::campaign))
        .route("/campaigns/{id}/pause", post(campaigns::pause))
        .route("/campaigns/{id}/resume", post(campaigns::resume))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .layer(axum::middleware::map_response(security_headers))
}

/// No page of the web app may be framed by another site, cached, or sniffed.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("app.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("app.js"),
    )
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    crate::api::consent_html_escape(s)
}

/// A phone as people read it: `(512) 555-0142` for North American numbers.
pub fn phone_display(p: &E164) -> String {
    let s = p.as_str();
    match s.strip_prefix("+1") {
        Some(n) if n.len() == 10 => format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..]),
        _ => s.to_string(),
    }
}

/// A time in the tenant's zone, e.g. `Mar 4, 2026, 12:00 PM CST`.
pub fn when(t: &Tenant, at: DateTime<Utc>) -> String {
    let tz: assent_core::Tz = t
        .time_zone
        .parse()
        .unwrap_or(assent_core::Tz::America__New_York);
    at.with_timezone(&tz)
        .format("%b %-d, %Y, %-I:%M %p %Z")
        .to_string()
}

/// A `<time>` element with the machine-readable UTC instant.
pub fn time_el(t: &Tenant, at: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        esc(&when(t, at))
    )
}

/// When a held message goes, in the tenant's zone and, where they differ, in each zone the
/// customer's number may be in: `until Mar 5, 2026, 9:00 AM CST (7:00 AM MST, 8:00 AM
/// CST… for the customer)`.
pub fn deferred_until_el(t: &Tenant, phone: &E164, until: DateTime<Utc>) -> String {
    let tenant_tz: assent_core::Tz = t
        .time_zone
        .parse()
        .unwrap_or(assent_core::Tz::America__New_York);
    let recipient = assent_core::quiet_hours::locate(phone, None, tenant_tz);
    let mut theirs: Vec<String> = Vec::new();
    for z in recipient.zones.iter().filter(|z| **z != tenant_tz) {
        let local = until.with_timezone(z).format("%-I:%M %p %Z").to_string();
        if !theirs.contains(&local) {
            theirs.push(local);
        }
    }
    let theirs = if theirs.is_empty() {
        " (the same for the customer)".to_string()
    } else {
        format!(" ({} for the customer)", esc(&theirs.join(", ")))
    };
    format!(
        "<span class=\"deferred-until\">until {}{theirs}</span>",
        time_el(t, until)
    )
}

pub fn registration_label(s: RegistrationStatus) -> &'static str {
    match s {
        RegistrationStatus::NotSubmitted => "Not submitted",
        RegistrationStatus::Pending => "Pending review",
        RegistrationStatus::Approved => "Approved",
        RegistrationStatus::Rejected => "Rejected",
    }
}

/// Why sending is blocked, in the manager's words, with what to do about it.
pub fn blocking_notices(t: &Tenant, regs: &Registrations) -> Vec<String> {
    let mut out = Vec::new();
    let reason = |r: &Option<assent_store::Registration>| {
        r.as_ref()
            .and_then(|r| r.reason.clone())
            .map(|r| format!(" (reason: {r})"))
            .unwrap_or_default()
    };
    match regs.texting_status() {
        RegistrationStatus::Approved => {}
        RegistrationStatus::Pending => out.push(
            "Texting is blocked: your Register for Texting form is waiting for approval. No message of any kind can be sent until it is approved.".to_string(),
        ),
        RegistrationStatus::Rejected => out.push(format!(
            "Texting is blocked: your Register for Texting form was rejected{}. Correct it and submit it again on the Registrations page.",
            reason(&regs.texting)
        )),
        RegistrationStatus::NotSubmitted => out.push(
            "Texting is blocked: submit the Register for Texting form (Registrations page). No message of any kind can be sent until it is approved.".to_string(),
        ),
    }
    match regs.marketing_status() {
        RegistrationStatus::Approved => {}
        RegistrationStatus::Pending => out.push(
            "Marketing is blocked: your Marketing Registration is waiting for approval by The Campaign Registry. Opt-in requests, opt-in links and marketing messages are off until then.".to_string(),
        ),
        RegistrationStatus::Rejected => out.push(format!(
            "Marketing is blocked: your Marketing Registration was rejected{}. Correct it and submit it again on the Registrations page.",
            reason(&regs.marketing)
        )),
        RegistrationStatus::NotSubmitted => out.push(
            "Marketing is blocked: submit the Marketing Registration (Registrations page). Opt-in requests, opt-in links and marketing messages are off until it is approved.".to_string(),
        ),
    }
    if t.senders.transactional.is_none() || t.senders.marketing.is_none() {
        out.push(
            "A sending number is missing: set the transactional and marketing numbers on the Registrations page.".to_string(),
        );
    }
    out
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Customers,
    Conversations,
    Campaigns,
    OptInTools,
    Review,
    Compliance,
    Registrations,
    Settings,
}

/// A signed-in page: title, section and main content (already HTML).
pub struct Page<'a> {
    pub title: &'a str,
    pub section: Section,
    pub body: String,
}

impl Page<'_> {
    pub fn render(self, user: &SignedIn) -> Response {
        let nav = [
            (Section::Customers, "/customers", "Customers"),
            (Section::Conversations, "/conversations", "Conversations"),
            (Section::Campaigns, "/campaigns", "Campaigns"),
            (Section::OptInTools, "/opt-in-tools", "Opt-in tools"),
            (Section::Review, "/reviews", "Review"),
            (Section::Compliance, "/compliance", "Compliance"),
            (Section::Registrations, "/registrations", "Registrations"),
            (Section::Settings, "/settings", "Settings"),
        ]
        .iter()
        .map(|(s, href, label)| {
            let current = if *s == self.section {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{href}\"{current}>{label}</a></li>")
        })
        .collect::<String>();
        let notices = blocking_notices(&user.tenant, &user.registrations);
        let banner = if notices.is_empty() {
            String::new()
        } else {
            format!(
                "<section class=\"banner\" role=\"alert\" aria-labelledby=\"banner-title\"><h2 id=\"banner-title\">Sending is blocked</h2><ul>{}</ul><p><a href=\"/registrations\">Go to Registrations</a></p></section>",
                notices
                    .iter()
                    .map(|n| format!("<li>{}</li>", esc(n)))
                    .collect::<String>()
            )
        };
        let body = format!(
            "<a class=\"skip\" href=\"#main\">Skip to content</a>\
<header class=\"top\"><div class=\"brand\"><span class=\"logo\" aria-hidden=\"true\">✓</span> Assent <span class=\"tenant\">{tenant}</span></div>\
<nav aria-label=\"Main\"><ul>{nav}</ul></nav>\
<form method=\"post\" action=\"/logout\" class=\"signout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<span class=\"who\">{email}</span> <button type=\"submit\" class=\"link\">Sign out</button></form></header>\
{banner}<main id=\"main\">{main}</main>",
            tenant = esc(&user.tenant.name),
            csrf = esc(&user.session.csrf_token),
            email = esc(&user.user.email),
            main = self.body,
        );
        Html(document(self.title, &body)).into_response()
    }
}

/// A whole HTML document.
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · Assent</title><link rel=\"stylesheet\" href=\"/assets/app.css\">\
<script src=\"/assets/app.js\" defer></script></head><body>{body}</body></html>",
        esc(title)
    )
}

/// An error page for people (the API's errors are JSON; these are HTML).
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

impl WebError {
    pub fn not_found(what: &str) -> Self {
        WebError {
            status: StatusCode::NOT_FOUND,
            message: format!("{what} was not found."),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError {
            status: e.status,
            message: e.message,
        }
    }
}

impl From<assent_store::StoreError> for WebError {
    fn from(e: assent_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Something went wrong");
        let body = format!(
            "<main id=\"main\" class=\"narrow\"><h1>{}</h1><p>{}</p><p><a href=\"/customers\">Back to Assent</a></p></main>",
            esc(title),
            esc(&self.message)
        );
        (self.status, Html(document(title, &body))).into_response()
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// A notice shown after a redirect, chosen from fixed texts by code so that a link can
/// never put words on the page.
pub fn notice_html(code: Option<&str>) -> String {
    let Some(code) = code else {
        return String::new();
    };
    let (class, text) = match code {
        "saved" => ("ok", "Notification preferences saved."),
        "opt_in_sent" => (
            "ok",
            "Opt-in request sent. The customer is asked to reply YES.",
        ),
        "opt_in_held" => (
            "ok",
            "Opt-in request accepted. It goes out when the customer's local sending hours begin; if the customer texts YES before then, it goes at once and their next YES counts.",
        ),
        "opt_out_recorded" => (
            "ok",
            "Opt-out recorded in the consent history, with you as the person who recorded it.",
        ),
        "opt_out_invalid" => (
            "error",
            "Choose what the opt-out covers (Marketing texts or All texts) and how it came in.",
        ),
        other => match other.strip_prefix("refused_").and_then(reason_of) {
            Some(reason) => ("error", opt_in_refusal(reason)),
            None => return String::new(),
        },
    };
    let role = if class == "error" { "alert" } else { "status" };
    format!(
        "<p class=\"notice {class}\" role=\"{role}\">{}</p>",
        esc(text)
    )
}

/// Why an opt-in request cannot go, in words that do not repeat the status labels.
pub fn opt_in_refusal(reason: assent_core::gate::Reason) -> &'static str {
    use assent_core::gate::Reason;
    match reason {
        Reason::AlreadyOptedIn => "this number already gave written consent; no request is needed",
        Reason::OptedOut => {
            "the customer stopped marketing texts; only they can restart them (by texting START)"
        }
        other => crate::error::gate_message(other),
    }
}

/// The gate's sentence for a reason code.
pub fn reason_text(code: &str) -> Option<&'static str> {
    reason_of(code).map(crate::error::gate_message)
}

fn reason_of(code: &str) -> Option<assent_core::gate::Reason> {
    use assent_core::gate::Reason::*;
    [
        TextingNotRegistered,
        MarketingNotRegistered,
        InvalidNumber,
        OptedOut,
        NoMarketingConsent,
        JobNotificationsOff,
        MarketingUpdatesOff,
        AlreadyOptedIn,
        OptInThrottled,
        QuietHours,
        FrequencyCap,
        UnderReview,
    ]
    .into_iter()
    .find(|r| r.as_str() == code)
}

/// Where a form goes back to after a POST (303, so the browser GETs it).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Percent-encodes a path segment or query value.
pub fn url_part(s: &str) -> String {
    crate::api::consent::percent_encode(s)
}
