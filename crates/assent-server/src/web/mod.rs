//! The web app for the business's marketing manager: server-rendered pages that work
//! without JavaScript, behind a sign-in (see [`session`]). Every page is an askama template
//! in `templates/` that extends `layout.html`, which draws the navigation and the banner
//! that says why sending is blocked; askama escapes every value placed in HTML, so no
//! handler builds HTML or escapes by hand.
//!
//! Pages: `/login`, `/customers` (search, filters, Add customer), `/customers/{id}`
//! (toggles, consent, opt-in request; Edit next to Contact Methods), `/imports` (CSV
//! uploads with progress and the per-line report), `/registrations` (both forms, sending numbers), `/opt-in-tools`,
//! `/conversations[/{phone}]`, `/reviews` (texts a person must judge), `/compliance` (ledger and
//! CSV export), `/campaigns`,
//! `/campaigns/new` (composer), `/campaigns/{id}` (report, pause, resume), `/settings`. The public
//! opt-in form lives in [`crate::public`]; it is the only page another site may frame.

mod activity;
mod campaign_data;
pub(crate) mod campaigns;
mod customers;
mod docs;
mod imports;
mod overview;
mod pager;
pub(crate) mod proof;
mod registrations;
mod reviews;
mod session;
mod settings;
mod team;
mod tools;
mod webhooks;

use askama::Template;
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
pub use session::{
    PASSWORD_RULES, SIGN_INS_PER_ADDRESS, SignedIn, check_password, create_user, create_user_as,
    hash_password, mask_email, set_password, unlock_user, user_by_email,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::overview))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/customers", get(customers::search).post(customers::create))
        .route("/customers/new", get(customers::new_customer))
        .route("/customers/{id}", get(customers::record))
        .route(
            "/customers/{id}/contact-methods",
            get(customers::contact_methods),
        )
        .route("/customers/{id}/phones", post(customers::add_phone))
        .route(
            "/customers/{id}/phones/{phone}/remove",
            post(customers::remove_phone),
        )
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
        .route(
            "/customers/{id}/phones/{phone}/proof",
            get(proof::for_customer_phone),
        )
        .route("/registrations", get(registrations::registrations))
        .route("/registrations/{kind}", post(registrations::submit))
        .route("/registrations/{kind}/check", post(registrations::check))
        .route("/senders", post(registrations::save_senders))
        .route("/opt-in-tools", get(tools::opt_in_tools))
        .route("/opt-in-tools/qr.svg", get(tools::qr_download))
        .route("/conversations", get(activity::conversations))
        .route("/conversations/{phone}", get(activity::conversation))
        .route("/conversations/{phone}/reply", post(activity::reply))
        .route("/imports", get(imports::page).post(imports::upload))
        .route("/imports/templates/{file}", get(imports::template))
        .route("/imports/{id}", get(imports::job))
        .route("/imports/{id}/status", get(imports::status))
        .route("/imports/{id}/report.csv", get(imports::report_csv))
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
        .route("/campaigns/{id}/skipped", get(campaigns::skipped))
        .route("/campaigns/{id}/pause", post(campaigns::pause))
        .route("/campaigns/{id}/resume", post(campaigns::resume))
        .route("/estimates", get(campaign_data::estimates))
        .route(
            "/estimates/{id}/status",
            post(campaign_data::set_estimate_status),
        )
        .route(
            "/recurring-services",
            get(campaign_data::recurring_services),
        )
        .route("/calls", get(campaign_data::calls))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/settings/twilio-check", post(settings::twilio_check))
        .route(
            "/settings/webhooks",
            get(webhooks::show).post(webhooks::add),
        )
        .route("/settings/webhooks/{id}", get(webhooks::deliveries))
        .route("/settings/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/settings/webhooks/{id}/deliveries/{delivery}/resend",
            post(webhooks::resend),
        )
        .route("/team", get(team::team).post(team::add))
        .route("/team/{id}/access", post(team::access))
        .route("/team/{id}/password", post(team::reset_password))
        .route("/team/{id}/remove", post(team::remove))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .route("/docs", get(docs::docs))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/assets/proof.css", get(proof::stylesheet))
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

/// The check-mark logo, for the browser's tab (also at `/favicon.ico`, where browsers
/// look unasked; they read the SVG whatever the name).
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("favicon.svg"),
    )
}

/// The escaper of every `.html` template (see `askama.toml`): the named entities pages
/// have always used. A value that is itself a rendered template (`TimeEl`, `History`, …)
/// is placed with `|safe`, as its own template escaped it.
#[derive(Clone, Copy)]
pub struct HtmlEscaper;

impl askama::filters::Escaper for HtmlEscaper {
    fn write_escaped_str<W: std::fmt::Write>(&self, mut dest: W, s: &str) -> std::fmt::Result {
        let mut last = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            dest.write_str(&s[last..i])?;
            dest.write_str(entity)?;
            last = i + 1;
        }
        dest.write_str(&s[last..])
    }
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
    let tz: assent_core::Tz = t.time_zone;
    at.with_timezone(&tz)
        .format("%b %-d, %Y, %-I:%M %p %Z")
        .to_string()
}

/// A `<time>` element with the machine-readable UTC instant.
#[derive(Template)]
#[template(path = "time.html")]
pub struct TimeEl {
    iso: String,
    text: String,
}

impl TimeEl {
    pub fn new(t: &Tenant, at: DateTime<Utc>) -> Self {
        TimeEl {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: when(t, at),
        }
    }
}

/// When a held message goes, in the tenant's zone and, where they differ, in each zone the
/// customer's number may be in: `until Mar 5, 2026, 9:00 AM CST (7:00 AM MST, 8:00 AM
/// CST… for the customer)`.
#[derive(Template)]
#[template(path = "deferred.html")]
pub struct DeferredUntil {
    until: TimeEl,
    theirs: String,
}

impl DeferredUntil {
    pub fn new(t: &Tenant, phone: &E164, until: DateTime<Utc>) -> Self {
        let tenant_tz: assent_core::Tz = t.time_zone;
        let recipient = assent_core::quiet_hours::locate(phone, None, tenant_tz);
        let mut theirs: Vec<String> = Vec::new();
        for z in recipient.zones.iter().filter(|z| **z != tenant_tz) {
            let local = until.with_timezone(z).format("%-I:%M %p %Z").to_string();
            if !theirs.contains(&local) {
                theirs.push(local);
            }
        }
        let theirs = if theirs.is_empty() {
            "the same for the customer".to_string()
        } else {
            format!("{} for the customer", theirs.join(", "))
        };
        DeferredUntil {
            until: TimeEl::new(t, until),
            theirs,
        }
    }
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
    Overview,
    Customers,
    Imports,
    Conversations,
    Campaigns,
    OptInTools,
    Review,
    Compliance,
    Registrations,
    Settings,
    Team,
}

/// One entry of the main navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What `layout.html` draws around every signed-in page: the title, the navigation with the
/// current section marked, who is signed in (with the sign-out form's token) and why sending
/// is blocked. Every page template carries one as `chrome`.
pub struct Chrome<'a> {
    pub title: &'a str,
    pub nav: Vec<NavItem>,
    pub tenant: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub notices: Vec<String>,
    /// May change what only an owner may (the page shows such forms disabled otherwise).
    pub manage: bool,
}

impl<'a> Chrome<'a> {
    pub fn new(user: &'a SignedIn, title: &'a str, section: Section) -> Self {
        let manage = crate::service::team::may_manage(&user.user);
        let nav = [
            (Section::Overview, "/", "Overview"),
            (Section::Customers, "/customers", "Customers"),
            (Section::Imports, "/imports", "Imports"),
            (Section::Conversations, "/conversations", "Conversations"),
            (Section::Campaigns, "/campaigns", "Campaigns"),
            (Section::OptInTools, "/opt-in-tools", "Opt-in tools"),
            (Section::Review, "/reviews", "Review"),
            (Section::Compliance, "/compliance", "Compliance"),
            (Section::Registrations, "/registrations", "Registrations"),
            (Section::Settings, "/settings", "Settings"),
            (Section::Team, "/team", "Team"),
        ]
        .into_iter()
        // The team is the owners' business; the server refuses everyone else anyway.
        .filter(|(s, _, _)| *s != Section::Team || manage)
        .map(|(s, href, label)| NavItem {
            href,
            label,
            current: s == section,
        })
        .collect();
        Chrome {
            title,
            nav,
            tenant: &user.tenant.name,
            csrf: &user.session.csrf_token,
            email: &user.user.email,
            notices: blocking_notices(&user.tenant, &user.registrations),
            manage,
        }
    }
}

/// Renders a template into a response; a template that fails to render (only a failing
/// `Display` can do that) is a server error, logged without the page's data.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
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

/// A service's refusal as a page: the API's status and sentence (a form that can show a
/// bad field beside the field handles [`crate::service::Error::Invalid`] itself).
impl From<crate::service::Error> for WebError {
    fn from(e: crate::service::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Something went wrong");
        let page = ErrorPage {
            title,
            message: &self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

pub type WebResult<T> = Result<T, WebError>;

/// A notice shown after a redirect, chosen from fixed texts by code so that a link can
/// never put words on the page.
#[derive(Template)]
#[template(path = "notice.html")]
pub struct Notice {
    class: &'static str,
    role: &'static str,
    text: &'static str,
}

impl Notice {
    pub fn of(code: &str) -> Option<Notice> {
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
            "customer_added" => ("ok", "Customer added."),
            "phone_added" => ("ok", "Phone added."),
            "phone_removed" => (
                "ok",
                "Phone removed from this customer. Its consent history is kept in the ledger.",
            ),
            "reply_sent" => ("ok", "Reply sent."),
            "reply_empty" => ("error", "Write a reply before pressing Send."),
            "reply_too_long" => (
                "error",
                "The reply is longer than 1,530 characters (10 text segments). Shorten it.",
            ),
            "reply_held" => (
                "ok",
                "Reply accepted. It goes out when the customer's local sending hours begin.",
            ),
            "reply_no_sender" => (
                "error",
                "Can't send: this thread's number is not one of your sending numbers any more.",
            ),
            other => {
                if let Some(reason) = other.strip_prefix("refused_").and_then(reason_of) {
                    ("error", opt_in_refusal(reason))
                } else if let Some(reason) =
                    other.strip_prefix("reply_refused_").and_then(reason_of)
                {
                    ("error", reply_refusal(reason))
                } else {
                    return None;
                }
            }
        };
        let role = if class == "error" { "alert" } else { "status" };
        Some(Notice { class, role, text })
    }
}

/// Why a reply was not sent: the gate's reason.
pub fn reply_refusal(reason: assent_core::gate::Reason) -> &'static str {
    use assent_core::gate::Reason;
    match reason {
        Reason::TextingNotRegistered => {
            "Not sent: texting registration is not approved, so no message can be sent yet."
        }
        Reason::MarketingNotRegistered => {
            "Not sent: marketing registration is not approved, so nothing can go from the marketing number yet."
        }
        Reason::InvalidNumber => "Not sent: this phone number cannot receive texts.",
        Reason::OptedOut => "Not sent: the customer opted out of texts from this number.",
        Reason::NoMarketingConsent => {
            "Not sent: on the marketing number a reply goes only to a phone that gave written consent (Opted in). Answer from the transactional thread instead."
        }
        Reason::JobNotificationsOff => "Not sent: Job Notifications are off for this number.",
        Reason::MarketingUpdatesOff => "Not sent: Marketing updates are off for this number.",
        Reason::AlreadyOptedIn => "Not sent: the number is already opted in.",
        Reason::OptInThrottled => {
            "Not sent: an opt-in request went recently; wait for the customer's answer."
        }
        Reason::QuietHours => "Not sent: it is outside the customer's sending hours.",
        Reason::UnderReview => {
            "Not sent: a text from this number that may mean stop waits for a review."
        }
        Reason::FrequencyCap => {
            "Not sent: the marketing frequency cap was reached for this number."
        }
    }
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

fn reason_of(code: &str) -> Option<assent_core::gate::Reason> {
    crate::words::reason_of(code)
}

/// Where a form goes back to after a POST (303, so the browser GETs it).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Percent-encodes a path segment or query value.
pub fn url_part(s: &str) -> String {
    crate::service::opt_in_tools::percent_encode(s)
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
