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

use askama::Template;

use super::pager::{PageParams, Pager};
use super::session::{Posted, SignedIn};
use super::{
    Chrome, Notice, Section, TimeEl, WebError, WebResult, phone_display, render, see_other,
    url_part,
};
use crate::AppState;
use crate::error::Code;
use crate::service;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

pub async fn search(
    user: SignedIn,
    State(app): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> WebResult<Response> {
    let q = query.q.clone().unwrap_or_default();
    let q = q.trim();
    let t = &user.tenant;
    let found = app
        .store
        .customers_page(&t.id, q, &query.page.seek(false, false))
        .await?;
    let total = app.store.customer_count(&t.id, q).await?;
    let base = if q.is_empty() {
        "/customers".to_string()
    } else {
        format!("/customers?q={}", url_part(q))
    };
    let pager = Pager::new(&found, &query.page, false, total, &base);
    let rows = found
        .items
        .iter()
        .map(|c| SearchRow {
            id: url_part(&c.id),
            name: c.name.clone(),
            phones: c
                .phones
                .iter()
                .map(|p| phone_display(&p.number))
                .collect::<Vec<_>>()
                .join(", "),
            address: c.address.clone().unwrap_or_default(),
            tags: c.tags.join(", "),
        })
        .collect();
    let heading = if q.is_empty() {
        "Newest customers".to_string()
    } else {
        format!("Customers matching “{q}”")
    };
    Ok(render(&SearchPage {
        chrome: Chrome::new(&user, "Customers", Section::Customers),
        q,
        heading,
        rows,
        pager,
    }))
}

struct SearchRow {
    id: String,
    name: String,
    phones: String,
    address: String,
    tags: String,
}

#[derive(Template)]
#[template(path = "customers/search.html")]
struct SearchPage<'a> {
    chrome: Chrome<'a>,
    q: &'a str,
    heading: String,
    rows: Vec<SearchRow>,
    pager: Pager,
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

/// The evidence kept with a ledger entry, as a definition list (nothing when there is none).
#[derive(Template)]
#[template(path = "customers/evidence.html")]
pub struct EvidenceList {
    items: Vec<(&'static str, String)>,
}

impl EvidenceList {
    pub fn new(e: &Evidence) -> Self {
        let items = [
            ("Message id", &e.message_sid),
            ("Text", &e.text),
            ("Rule", &e.rule),
            ("IP address", &e.ip),
            ("User agent", &e.user_agent),
            ("Page", &e.page),
            ("Disclosure shown", &e.disclosure),
            ("Answers request", &e.request),
        ]
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| (k, v.to_string()))
        })
        .collect();
        EvidenceList { items }
    }
}

pub struct HistoryRow {
    when: TimeEl,
    channel: String,
    change: String,
    source: &'static str,
    actor: String,
    evidence: EvidenceList,
}

/// A phone's consent history, newest first.
#[derive(Template)]
#[template(path = "customers/history.html")]
pub struct History {
    caption: String,
    rows: Vec<HistoryRow>,
    /// Where the whole history is, when these are only its latest entries.
    older: Option<String>,
}

impl History {
    pub fn new(user: &SignedIn, entries: &[LedgerEntry], caption: &str) -> Self {
        let rows = entries
            .iter()
            .rev()
            .map(|e| {
                let x = &e.entry;
                HistoryRow {
                    when: TimeEl::new(&user.tenant, x.occurred_at),
                    channel: channel_label(x.channel.as_str()).to_string(),
                    change: change_label(
                        x.channel.as_str(),
                        x.old_state.as_str(),
                        x.new_state.as_str(),
                    ),
                    source: source_label(x.source),
                    actor: actor_label(user, x.actor.as_str()),
                    evidence: EvidenceList::new(&x.evidence),
                }
            })
            .collect();
        History {
            caption: caption.to_string(),
            rows,
            older: None,
        }
    }
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

/// One phone of the record: its toggles, consent, opt-in request and history.
struct PhoneSection {
    index: usize,
    number: String,
    base: String,
    phone_url: String,
    job: bool,
    mk: bool,
    language: &'static str,
    status: &'static str,
    status_class: &'static str,
    pending_since: Option<TimeEl>,
    stopped_all: bool,
    opt_in: Result<Option<String>, &'static str>,
    review_until: Option<String>,
    reassigned: Option<TimeEl>,
    history: History,
}

#[derive(Template)]
#[template(path = "customers/record.html")]
struct RecordPage<'a> {
    chrome: Chrome<'a>,
    notice: Option<Notice>,
    details: Vec<(&'static str, String)>,
    since: TimeEl,
    phones: Vec<PhoneSection>,
    methods: Vec<(&'static str, &'static str)>,
}

/// How many of a phone's latest consent entries its section of a customer record shows.
const RECORD_HISTORY: usize = 50;

fn phone_section(
    app: &AppState,
    user: &SignedIn,
    customer: &Customer,
    index: usize,
    p: &ContactMethod,
    snap: &assent_store::PhoneSnapshot,
    (history, older_history): (&[LedgerEntry], bool),
) -> PhoneSection {
    let now = app.clock.now();
    let t = &user.tenant;
    let number = phone_display(&p.number);
    let base = format!(
        "/customers/{}/phones/{}",
        url_part(&customer.id),
        url_part(p.number.as_str())
    );
    let marketing = service::marketing_status(&snap.consent, now);
    let decision = service::gate_for(
        snap,
        &p.number,
        Purpose::OptInRequest {
            customer_asked: false,
        },
        Stage::Queue,
        now,
    );
    let status_class = match marketing {
        MarketingStatus::OptedIn => "ok",
        MarketingStatus::OptedOut => "bad",
        MarketingStatus::Pending => "warn",
        MarketingStatus::None => "none",
    };
    let language = match snap.consent.language {
        assent_core::keyword::Lang::En => "English",
        assent_core::keyword::Lang::Es => "Spanish",
        assent_core::keyword::Lang::Fr => "French",
    };
    let pending_since = match (marketing, snap.consent.pending_since) {
        (MarketingStatus::Pending, Some(at)) => Some(TimeEl::new(t, at)),
        _ => None,
    };
    PhoneSection {
        index,
        history: History {
            older: older_history
                .then(|| format!("/compliance?phone={}", url_part(p.number.as_str()))),
            ..History::new(user, history, &format!("Consent history of {number}"))
        },
        number,
        base,
        phone_url: url_part(p.number.as_str()),
        job: p.job_notifications,
        mk: p.marketing_updates,
        language,
        status: marketing_label(marketing),
        status_class,
        pending_since,
        stopped_all: snap.consent.transactional_opted_out,
        opt_in: opt_in_availability(t, &decision),
        review_until: snap
            .consent
            .review_hold_until(now)
            .map(|until| super::when(t, until)),
        reassigned: snap
            .consent
            .possibly_reassigned
            .map(|at| TimeEl::new(t, at)),
    }
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
    let mut phones = Vec::new();
    for (i, p) in customer.phones.iter().enumerate() {
        let snap = app.store.snapshot(&t.id, &p.number, now).await?;
        // The latest entries; the whole history is a link to the Compliance page.
        let history = app
            .store
            .ledger_page(
                &t.id,
                &assent_store::page::LedgerFilter {
                    phone: Some(p.number.clone()),
                    ..Default::default()
                },
                &assent_store::page::Seek::before(None, RECORD_HISTORY),
            )
            .await?;
        let older = history.prev().is_some();
        phones.push(phone_section(
            &app,
            &user,
            &customer,
            i,
            p,
            &snap,
            (history.items.as_slice(), older),
        ));
    }
    let details = [
        ("Address", customer.address.clone().unwrap_or_default()),
        ("Tags", customer.tags.join(", ")),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    Ok(render(&RecordPage {
        chrome: Chrome::new(&user, &customer.name, Section::Customers),
        notice: q.notice.as_deref().and_then(Notice::of),
        details,
        since: TimeEl::new(t, customer.created_at),
        phones,
        methods: service::OptOutMethod::ALL
            .iter()
            .map(|m| (m.as_str(), m.label()))
            .collect(),
    }))
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
    service::customers::set_toggles(
        &app,
        &user.tenant.id,
        &id,
        &phone,
        (
            posted.ticked("job_notifications"),
            posted.ticked("marketing_updates"),
        ),
        service::Who {
            source: Source::CustomerRecord,
            actor: &user.user.id,
        },
    )
    .await?;
    Ok(see_other(&record_url(&id, "saved")))
}

/// A missing customer or phone in the record's words.
fn not_found_words(e: service::Error) -> WebError {
    match e {
        service::Error::NotFound(what) if what == "customer" => {
            WebError::not_found("This customer")
        }
        service::Error::NotFound(_) => WebError::not_found("This phone number"),
        e => e.into(),
    }
}

/// The phone in a record's form path, if that customer (of this tenant) holds it.
async fn phone_of_customer(
    app: &AppState,
    t: &Tenant,
    customer_id: &str,
    phone: &str,
) -> WebResult<E164> {
    let phone = parse_phone(phone)?;
    match service::customers::holding(app, &t.id, customer_id, &phone).await {
        Ok(_) => Ok(phone),
        Err(e) => Err(not_found_words(e)),
    }
}

/// A revocation that came another way, recorded by the signed-in person.
pub async fn record_opt_out(
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    let t = &user.tenant;
    let phone = phone_of_customer(&app, t, &id, &phone).await?;
    // The form's field is limited to the note's length; a longer one is cut, not refused.
    let note: String = posted
        .field("note")
        .trim()
        .chars()
        .take(service::OPT_OUT_NOTE_CHARS)
        .collect();
    let Ok(recorded) =
        service::RecordedOptOut::parse(posted.field("scope"), posted.field("method"), Some(&note))
    else {
        return Ok(see_other(&record_url(&id, "opt_out_invalid")));
    };
    service::record_opt_out(
        &app,
        t,
        &phone,
        &recorded,
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
    let user = &posted.user;
    let t = &user.tenant;
    let phone = parse_phone(&phone)?;
    let who = service::Who {
        source: Source::CustomerRecord,
        actor: &user.user.id,
    };
    let notice = match service::customers::request_opt_in(&app, t, &id, &phone, who, None).await {
        Ok(m) if m.status == assent_store::MessageStatus::Deferred => "opt_in_held".to_string(),
        Ok(_) => "opt_in_sent".to_string(),
        Err(service::Error::Refused {
            code: Code::Gate(reason),
            ..
        }) => format!("refused_{}", reason.as_str()),
        // Requests go from the marketing number: without one, it is as if marketing
        // were not registered.
        Err(service::Error::Refused {
            code: Code::SenderNotConfigured,
            ..
        }) => format!("refused_{}", Reason::MarketingNotRegistered.as_str()),
        Err(e) => return Err(not_found_words(e)),
    };
    Ok(see_other(&record_url(&id, &notice)))
}
