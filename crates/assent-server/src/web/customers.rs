//! Customer search and the customer record: each phone's Notifications toggles, its
//! marketing consent with the ledger's history and evidence, and Send opt-in request.
//! Saving and sending go through the same service functions as the API, with source
//! `customer_record` and the signed-in user as the actor.

use assent_core::consent::{MarketingStatus, Source};
use assent_core::gate::{Decision, Purpose, Reason, Stage};
use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer, Evidence, LedgerEntry, Tenant};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, SignedIn, csrf_field};
use super::{
    Page, Section, WebError, WebResult, esc, notice_html, phone_display, see_other, time_el,
    url_part,
};
use crate::AppState;
use crate::service::{self, OptInStart};

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

const SEARCH_LIMIT: u32 = 50;

pub async fn search(
    user: SignedIn,
    State(app): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> WebResult<Response> {
    let q = query.q.unwrap_or_default();
    let q = q.trim();
    let found = app
        .store
        .search_customers(&user.tenant.id, q, SEARCH_LIMIT)
        .await?;
    let rows: String = found
        .iter()
        .map(|c| {
            let phones = c
                .phones
                .iter()
                .map(|p| esc(&phone_display(&p.number)))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "<tr><td data-label=\"Name\"><a href=\"/customers/{id}\">{name}</a></td><td data-label=\"Phones\">{phones}</td><td data-label=\"Address\">{address}</td><td data-label=\"Tags\">{tags}</td></tr>",
                id = esc(&url_part(&c.id)),
                name = esc(&c.name),
                address = esc(c.address.as_deref().unwrap_or("")),
                tags = esc(&c.tags.join(", ")),
            )
        })
        .collect();
    let heading = if q.is_empty() {
        "Newest customers".to_string()
    } else {
        format!("Customers matching “{q}”")
    };
    let results = if found.is_empty() {
        "<p>No customers found. Customers come in through the API or a CSV import.</p>".to_string()
    } else {
        format!(
            "<div class=\"table-wrap\"><table class=\"stack\"><caption>{}</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Phones</th><th scope=\"col\">Address</th><th scope=\"col\">Tags</th></tr></thead><tbody>{rows}</tbody></table></div>",
            esc(&heading)
        )
    };
    let body = format!(
        "<h1>Customers</h1>\
<form method=\"get\" action=\"/customers\" class=\"search\" role=\"search\">\
<label for=\"q\">Search by name or phone</label>\
<div class=\"row\"><input type=\"search\" id=\"q\" name=\"q\" value=\"{q}\" placeholder=\"Dana or (512) 555-0142\">\
<button type=\"submit\">Search</button></div></form>{results}",
        q = esc(q)
    );
    Ok(Page {
        title: "Customers",
        section: Section::Customers,
        body,
    }
    .render(&user))
}

#[derive(Deserialize)]
pub struct RecordQuery {
    notice: Option<String>,
}

pub fn marketing_label(s: MarketingStatus) -> &'static str {
    match s {
        MarketingStatus::None => "None",
        MarketingStatus::Pending => "Pending",
        MarketingStatus::OptedIn => "Opted in",
        MarketingStatus::OptedOut => "Opted out",
    }
}

/// A ledger change in words that do not repeat the status labels (None, Pending, Opted
/// in, Opted out), so the status badge is the one place those words appear.
fn change_label(channel: &str, old: &str, new: &str) -> String {
    let again = if old == new { " (again)" } else { "" };
    let what = match (channel, new) {
        ("marketing", "pending") => "Opt-in requested",
        ("marketing", "opted_in") => "Consent given",
        ("marketing", "opted_out") => "Consent withdrawn",
        ("marketing", "none") => "Consent reset",
        ("transactional", "opted_out") => "All texts stopped",
        ("transactional", "active") => "Texts resumed",
        (_, "on") => "Turned on",
        (_, "off") => "Turned off",
        (_, other) => return format!("{} → {}", old.replace('_', " "), other.replace('_', " ")),
    };
    format!("{what}{again}")
}

fn channel_label(c: &str) -> &str {
    match c {
        "marketing" => "Marketing texts",
        "transactional" => "Transactional texts",
        "job_notifications" => "Job Notifications",
        "marketing_updates" => "Marketing updates",
        other => other,
    }
}

pub fn source_label(s: Source) -> &'static str {
    match s {
        Source::CustomerRecord => "Customer record",
        Source::OptInLink => "Opt-in link",
        Source::WebForm => "Web form",
        Source::Keyword => "Keyword",
        Source::FreeText => "Free-text message",
        Source::Carrier => "Carrier",
        Source::Api => "API",
        Source::Import => "Import",
        Source::Expiry => "Expiry",
        Source::Review => "Review",
    }
}

fn actor_label(user: &SignedIn, actor: &str) -> String {
    if actor == user.user.id {
        format!("{} (you)", user.user.email)
    } else {
        actor.to_string()
    }
}

/// The evidence kept with a ledger entry, as a definition list.
pub fn evidence_html(e: &Evidence) -> String {
    let items: String = [
        ("Message id", &e.message_sid),
        ("Text", &e.text),
        ("Rule", &e.rule),
        ("IP address", &e.ip),
        ("User agent", &e.user_agent),
        ("Page", &e.page),
        ("Disclosure shown", &e.disclosure),
        ("Answers request", &e.request),
    ]
    .iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| format!("<dt>{k}</dt><dd>{}</dd>", esc(v)))
    })
    .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("<details class=\"evidence\"><summary>Evidence</summary><dl>{items}</dl></details>")
    }
}

/// A phone's consent history, newest first.
pub fn history_table(user: &SignedIn, entries: &[LedgerEntry], caption: &str) -> String {
    if entries.is_empty() {
        return "<p>No consent history yet.</p>".to_string();
    }
    let rows: String = entries
        .iter()
        .rev()
        .map(|e| {
            let x = &e.entry;
            format!(
                "<tr><td data-label=\"When\">{when}</td><td data-label=\"What\">{channel}</td><td data-label=\"Change\">{change}</td><td data-label=\"Source\">{source}</td><td data-label=\"By\">{actor}</td><td data-label=\"Evidence\">{evidence}</td></tr>",
                when = time_el(&user.tenant, x.occurred_at),
                channel = esc(channel_label(&x.channel)),
                change = esc(&change_label(&x.channel, &x.old_state, &x.new_state)),
                source = esc(source_label(x.source)),
                actor = esc(&actor_label(user, &x.actor)),
                evidence = evidence_html(&x.evidence),
            )
        })
        .collect();
    format!(
        "<div class=\"table-wrap\"><table class=\"history stack\"><caption>{}</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">What</th><th scope=\"col\">Change</th><th scope=\"col\">Source</th><th scope=\"col\">By</th><th scope=\"col\">Evidence</th></tr></thead><tbody>{rows}</tbody></table></div>",
        esc(caption)
    )
}

/// What the Send opt-in request button would do now: `Ok(note)` when it may be sent
/// (the note says if quiet hours will hold it), or the reason it is disabled.
fn opt_in_availability(
    tenant: &Tenant,
    decision: &Decision,
) -> Result<Option<String>, &'static str> {
    if tenant.senders.marketing.is_none() {
        return Err("Set a marketing sender first: opt-in requests go from the marketing number.");
    }
    match decision {
        Decision::Allow => Ok(None),
        Decision::Defer { until, .. } => Ok(Some(format!(
            "It is outside the customer's sending hours: the request will be held until {}.",
            super::when(tenant, *until)
        ))),
        Decision::Block(reason) => Err(super::opt_in_refusal(*reason)),
    }
}

fn phone_section(
    app: &AppState,
    user: &SignedIn,
    customer: &Customer,
    index: usize,
    p: &ContactMethod,
    snap: &assent_store::PhoneSnapshot,
    history: &[LedgerEntry],
) -> String {
    let now = app.clock.now();
    let t = &user.tenant;
    let number = phone_display(&p.number);
    let base = format!(
        "/customers/{}/phones/{}",
        url_part(&customer.id),
        url_part(p.number.as_str())
    );
    let checked = |on: bool| if on { " checked" } else { "" };
    let marketing = if snap.consent.pending_expired(now) {
        MarketingStatus::None
    } else {
        snap.consent.marketing
    };
    let texting = if snap.consent.transactional_opted_out {
        "<span class=\"badge bad\">All texts stopped</span>"
    } else {
        "<span class=\"badge ok\">Receiving texts</span>"
    };
    let decision = service::gate_for(
        snap,
        &p.number,
        Purpose::OptInRequest {
            customer_asked: false,
        },
        Stage::Queue,
        now,
    );
    let opt_in = match opt_in_availability(t, &decision) {
        Ok(note) => format!(
            "<form method=\"post\" action=\"{base}/opt-in-request\" class=\"inline\">{csrf}\
<button type=\"submit\" class=\"primary\">Send opt-in request</button></form>{note}",
            base = esc(&base),
            csrf = csrf_field(user),
            note = note
                .map(|n| format!("<p class=\"hint\">{}</p>", esc(&n)))
                .unwrap_or_default(),
        ),
        Err(why) => format!(
            "<button type=\"button\" class=\"primary\" disabled aria-describedby=\"optin-why-{index}\">Send opt-in request</button>\
<p class=\"hint\" id=\"optin-why-{index}\">Can't send: {}</p>",
            esc(why)
        ),
    };
    let status_class = match marketing {
        MarketingStatus::OptedIn => "ok",
        MarketingStatus::OptedOut => "bad",
        MarketingStatus::Pending => "warn",
        MarketingStatus::None => "none",
    };
    let mut flags = String::new();
    if let Some(until) = snap.consent.review_hold_until(now) {
        flags.push_str(&format!(
            "<p class=\"notice warn\" role=\"status\">A text from this number may mean “stop” and waits for a <a href=\"/reviews\">review</a>. Until it is decided (at the latest {}), only job notifications, missed-call text-backs and automatic replies go to it.</p>",
            super::when(t, until)
        ));
    }
    if let Some(at) = snap.consent.possibly_reassigned {
        flags.push_str(&format!(
            "<p class=\"notice warn\" role=\"status\" data-testid=\"possibly-reassigned\">Possibly reassigned: the person with this number said “wrong number” on {}. Check the number with the customer before texting it again.</p>",
            time_el(t, at)
        ));
    }
    let language = match snap.consent.language {
        assent_core::keyword::Lang::En => "English",
        assent_core::keyword::Lang::Es => "Spanish",
        assent_core::keyword::Lang::Fr => "French",
    };
    let pending_since = match (marketing, snap.consent.pending_since) {
        (MarketingStatus::Pending, Some(at)) => {
            format!(" <span class=\"hint\">since {}</span>", time_el(t, at))
        }
        _ => String::new(),
    };
    format!(
        "<section class=\"phone card\" aria-labelledby=\"phone-{index}\">\
<h2 id=\"phone-{index}\">{number}</h2>\
<div class=\"phone-grid\">\
<div><h3>Contact preferences</h3>\
<p>Job Notifications: <strong>{job}</strong> · Marketing updates: <strong>{mk}</strong></p>\
<details class=\"notifications\"><summary role=\"button\">Notifications</summary>\
<form method=\"post\" action=\"{base}/notifications\">{csrf}\
<fieldset><legend>Notification preferences for {number}</legend>\
<div class=\"switch\"><input type=\"checkbox\" role=\"switch\" id=\"job-{index}\" name=\"job_notifications\" value=\"on\"{job_checked}>\
<label for=\"job-{index}\">Job Notifications</label></div>\
<div class=\"switch\"><input type=\"checkbox\" role=\"switch\" id=\"mk-{index}\" name=\"marketing_updates\" value=\"on\"{mk_checked}>\
<label for=\"mk-{index}\">Marketing updates</label></div>\
<p class=\"hint\"><strong>Job Notifications</strong>: appointment reminders, on-my-way texts and missed-call text-backs. \
<strong>Marketing updates</strong>: with Job Notifications, estimate follow-ups and service reminders. \
Turning Marketing updates off for a number with written consent (or a request awaiting its answer) records the customer's opt-out of marketing texts. \
Turning it on is not consent to marketing: only the customer's own YES is.</p></fieldset>\
<button type=\"submit\" class=\"primary\">Save</button></form></details>\
<p>Replies in: <strong data-testid=\"language\">{language}</strong></p>\
<details class=\"record-opt-out\"><summary role=\"button\">Record opt-out</summary>\
<form method=\"post\" action=\"{base}/opt-out\">{csrf}\
<fieldset><legend>Opt-out of {number} that came another way</legend>\
<p>What it covers</p>\
<div class=\"choice\"><input type=\"radio\" id=\"scope-mk-{index}\" name=\"scope\" value=\"marketing\" checked><label for=\"scope-mk-{index}\">Marketing texts</label></div>\
<div class=\"choice\"><input type=\"radio\" id=\"scope-all-{index}\" name=\"scope\" value=\"all\"><label for=\"scope-all-{index}\">All texts</label></div>\
<label for=\"method-{index}\">How it came in</label>\
<select id=\"method-{index}\" name=\"method\">{methods}</select>\
<label for=\"note-{index}\">Note</label>\
<textarea id=\"note-{index}\" name=\"note\" rows=\"2\" maxlength=\"1000\"></textarea></fieldset>\
<button type=\"submit\">Record opt-out</button></form></details></div>\
<div><h3>Marketing consent</h3>\
<p class=\"consent-status\">Status: <span class=\"badge {status_class}\" data-testid=\"marketing-status\">{status}</span>{pending_since}</p>\
<p>{texting}</p>{opt_in}\
<p><a href=\"/conversations/{phone_url}\">Open conversation</a></p></div></div>\
{flags}<h3>Consent history</h3>{history}</section>",
        methods = service::OptOutMethod::ALL
            .iter()
            .map(|m| format!("<option value=\"{}\">{}</option>", m.as_str(), m.label()))
            .collect::<String>(),
        number = esc(&number),
        job = if p.job_notifications { "On" } else { "Off" },
        mk = if p.marketing_updates { "On" } else { "Off" },
        base = esc(&base),
        csrf = csrf_field(user),
        job_checked = checked(p.job_notifications),
        mk_checked = checked(p.marketing_updates),
        status = marketing_label(marketing),
        phone_url = esc(&url_part(p.number.as_str())),
        history = history_table(user, history, &format!("Consent history of {number}")),
    )
}

pub async fn record(
    user: SignedIn,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RecordQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let customer = app
        .store
        .customer(&t.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This customer"))?;
    let now = app.clock.now();
    let mut sections = String::new();
    for (i, p) in customer.phones.iter().enumerate() {
        let snap = app.store.snapshot(&t.id, &p.number, now).await?;
        let history = app.store.ledger_for_phone(&t.id, &p.number).await?;
        sections.push_str(&phone_section(
            &app, &user, &customer, i, p, &snap, &history,
        ));
    }
    if customer.phones.is_empty() {
        sections.push_str("<p>This customer has no phone number.</p>");
    }
    let details = [
        ("Address", customer.address.clone().unwrap_or_default()),
        ("Tags", customer.tags.join(", ")),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("<dt>{k}</dt><dd>{}</dd>", esc(v)))
    .collect::<String>();
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/customers\">Customers</a> ›</p><h1>{name}</h1>{notice}\
<dl class=\"facts\">{details}<dt>Customer since</dt><dd>{since}</dd></dl>{sections}",
        name = esc(&customer.name),
        notice = notice_html(q.notice.as_deref()),
        since = time_el(t, customer.created_at),
    );
    Ok(Page {
        title: &customer.name,
        section: Section::Customers,
        body,
    }
    .render(&user))
}

fn record_url(id: &str, notice: &str) -> String {
    format!("/customers/{}?notice={notice}", url_part(id))
}

fn parse_phone(s: &str) -> WebResult<E164> {
    E164::parse(s).map_err(|_| WebError::not_found("This phone number"))
}

pub async fn save_toggles(
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    posted: Posted,
) -> WebResult<Response> {
    let phone = parse_phone(&phone)?;
    let user = &posted.user;
    crate::api::customers::set_toggles(
        &app,
        &user.tenant.id,
        &id,
        &phone,
        (
            posted.ticked("job_notifications"),
            posted.ticked("marketing_updates"),
        ),
        Source::CustomerRecord,
        &user.user.id,
    )
    .await?;
    Ok(see_other(&record_url(&id, "saved")))
}

/// A revocation that came another way, recorded by the signed-in person.
pub async fn record_opt_out(
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    posted: Posted,
) -> WebResult<Response> {
    let phone = parse_phone(&phone)?;
    let user = &posted.user;
    let t = &user.tenant;
    let customer = app
        .store
        .customer(&t.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This customer"))?;
    if !customer.phones.iter().any(|p| p.number == phone) {
        return Err(WebError::not_found("This phone number"));
    }
    let scope = assent_core::consent::Scope::parse(posted.field("scope"));
    let method = service::OptOutMethod::parse(posted.field("method"));
    let (Some(scope), Some(method)) = (scope, method) else {
        return Ok(see_other(&record_url(&id, "opt_out_invalid")));
    };
    let note: String = posted.field("note").trim().chars().take(1000).collect();
    service::record_opt_out(
        &app,
        t,
        &phone,
        &service::RecordedOptOut {
            scope,
            method,
            note: Some(note.as_str()).filter(|n| !n.is_empty()),
        },
        service::Who {
            source: Source::CustomerRecord,
            actor: &user.user.id,
        },
    )
    .await?;
    Ok(see_other(&record_url(&id, "opt_out_recorded")))
}

pub async fn send_opt_in_request(
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    posted: Posted,
) -> WebResult<Response> {
    let phone = parse_phone(&phone)?;
    let user = &posted.user;
    let t = &user.tenant;
    let customer = app
        .store
        .customer(&t.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This customer"))?;
    if !customer.phones.iter().any(|p| p.number == phone) {
        return Err(WebError::not_found("This phone number"));
    }
    if t.senders.marketing.is_none() {
        return Ok(see_other(&record_url(
            &id,
            &format!("refused_{}", Reason::MarketingNotRegistered.as_str()),
        )));
    }
    let start = OptInStart {
        source: Source::CustomerRecord,
        actor: user.user.id.clone(),
        customer_asked: false,
        evidence: Evidence::default(),
        idempotency_key: None,
    };
    let notice = match service::request_opt_in(&app, t, &phone, start).await? {
        Ok(message_id) => {
            app.wake.notify_one();
            let held = app
                .store
                .message(&t.id, &message_id)
                .await?
                .is_some_and(|m| m.status == assent_store::MessageStatus::Deferred);
            if held { "opt_in_held" } else { "opt_in_sent" }.to_string()
        }
        Err(reason) => format!("refused_{}", reason.as_str()),
    };
    Ok(see_other(&record_url(&id, &notice)))
}
