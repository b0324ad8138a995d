//! Customer search and the customer record: each phone's Notifications toggles, its
//! marketing consent with the ledger's history and evidence, and Send opt-in request.
//! Saving and sending go through the same service functions as the API, with source
//! `customer_record` and the signed-in user as the actor.

use assent_core::consent::{MarketingStatus, Source};
use assent_core::gate::{Decision, Purpose, Reason, Stage};
use assent_core::phone::E164;
use assent_store::page::CustomerFilter;
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
use crate::{service, words};

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    /// A marketing status code (`opted_in`, …); empty or unknown is every status.
    marketing: Option<String>,
    tag: Option<String>,
    notice: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

/// The marketing filter's choices: the status codes and their labels.
const MARKETING_CHOICES: [MarketingStatus; 4] = [
    MarketingStatus::OptedIn,
    MarketingStatus::Pending,
    MarketingStatus::OptedOut,
    MarketingStatus::None,
];

pub async fn search(
    user: SignedIn,
    State(app): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> WebResult<Response> {
    let q = query.q.clone().unwrap_or_default();
    let q = q.trim();
    let marketing = query
        .marketing
        .as_deref()
        .and_then(|m| MARKETING_CHOICES.into_iter().find(|c| c.as_str() == m));
    let tag = query
        .tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let filter = CustomerFilter {
        q: q.to_string(),
        marketing,
        tag: tag.clone(),
    };
    let t = &user.tenant;
    let found = app
        .store
        .customers_page(&t.id, &filter, &query.page.seek(false, false))
        .await?;
    let total = app.store.customer_count(&t.id, &filter).await?;
    let params: Vec<String> = [
        ("q", Some(q.to_string()).filter(|q| !q.is_empty())),
        ("marketing", marketing.map(|m| m.as_str().to_string())),
        ("tag", tag.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={}", url_part(&v))))
    .collect();
    let base = if params.is_empty() {
        "/customers".to_string()
    } else {
        format!("/customers?{}", params.join("&"))
    };
    let pager = Pager::new(&found, &query.page, false, total, &base);
    // The page's phones' consent, read together (one page of customers, never more).
    let now = app.clock.now();
    let phones: Vec<E164> = found
        .items
        .iter()
        .flat_map(|c| c.phones.iter().map(|p| p.number.clone()))
        .collect();
    let snaps = app.store.snapshots(&t.id, &phones, now).await?;
    let mut snaps = snaps.iter();
    let rows = found
        .items
        .iter()
        .map(|c| SearchRow {
            id: url_part(&c.id),
            name: c.name.clone(),
            phones: c
                .phones
                .iter()
                .map(|p| {
                    let badges = snaps.next().map(|s| Badges::of(&s.consent, now));
                    (phone_display(&p.number), badges)
                })
                .collect(),
            address: c.address.clone().unwrap_or_default(),
            tags: c.tags.join(", "),
        })
        .collect();
    let heading = match (q.is_empty(), marketing.is_some() || tag.is_some()) {
        (true, false) => "Newest customers".to_string(),
        (true, true) => "Customers matching the filters".to_string(),
        (false, _) => format!("Customers matching “{q}”"),
    };
    Ok(render(&SearchPage {
        chrome: Chrome::new(&user, "Customers", Section::Customers),
        notice: query.notice.as_deref().and_then(Notice::of),
        q,
        marketing: marketing.map(|m| m.as_str()).unwrap_or(""),
        marketing_choices: MARKETING_CHOICES
            .iter()
            .map(|m| (m.as_str(), words::marketing(*m)))
            .collect(),
        tag: tag.unwrap_or_default(),
        heading,
        rows,
        pager,
    }))
}

/// A phone's two consent badges, each saying what it is about: `Job texts: Receiving`,
/// `Marketing: Opted in`.
pub struct Badges {
    pub job: &'static str,
    pub job_class: &'static str,
    pub marketing: String,
    pub marketing_class: &'static str,
}

impl Badges {
    pub fn of(c: &assent_core::consent::ConsentState, now: chrono::DateTime<chrono::Utc>) -> Self {
        let m = service::marketing_status(c, now);
        Badges {
            job: words::job_texts_badge(c.transactional_opted_out),
            job_class: if c.transactional_opted_out {
                "bad"
            } else {
                "ok"
            },
            marketing: words::marketing_badge(m),
            marketing_class: words::marketing_class(m),
        }
    }
}

struct SearchRow {
    id: String,
    name: String,
    phones: Vec<(String, Option<Badges>)>,
    address: String,
    tags: String,
}

#[derive(Template)]
#[template(path = "customers/search.html")]
struct SearchPage<'a> {
    chrome: Chrome<'a>,
    notice: Option<Notice>,
    q: &'a str,
    marketing: &'a str,
    marketing_choices: Vec<(&'static str, &'static str)>,
    tag: String,
    heading: String,
    rows: Vec<SearchRow>,
    pager: Pager,
}

/// The Add customer form, empty or as posted with what is wrong.
#[derive(Template)]
#[template(path = "customers/new.html")]
struct NewCustomerPage<'a> {
    chrome: Chrome<'a>,
    name: String,
    phone: String,
    address: String,
    tags: String,
    error: Option<String>,
    /// The field the error is about (`name`, `phone`, `address`, `tags`), or empty.
    bad: &'static str,
}

pub async fn new_customer(user: SignedIn) -> Response {
    render(&NewCustomerPage {
        chrome: Chrome::new(&user, "Add customer", Section::Customers),
        name: String::new(),
        phone: String::new(),
        address: String::new(),
        tags: String::new(),
        error: None,
        bad: "",
    })
}

/// The Add customer form's field for one of the service's field names.
fn form_field(api_field: &str) -> (&'static str, &'static str) {
    if api_field.starts_with("phones") {
        ("phone", "Phone")
    } else if api_field.starts_with("tags") {
        ("tags", "Tags")
    } else if api_field == "address" {
        ("address", "Address")
    } else {
        ("name", "Name")
    }
}

pub async fn create(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let phone = posted.field("phone").trim().to_string();
    let input = service::customers::NewCustomer {
        name: posted.field("name").to_string(),
        phones: if phone.is_empty() {
            Vec::new()
        } else {
            vec![service::customers::NewPhone {
                number: phone.clone(),
                job_notifications: None,
                marketing_updates: None,
            }]
        },
        address: Some(posted.field("address").to_string()),
        tags: service::customers::split_tags(posted.field("tags")),
    };
    let who = service::Who {
        source: Source::CustomerRecord,
        actor: &user.user.id,
    };
    match service::customers::create(&app, &user.tenant.id, input, who).await {
        Ok(c) => Ok(see_other(&record_url(&c.id, "customer_added"))),
        Err(service::Error::Invalid { field, message }) => {
            let (key, label) = form_field(&field);
            let page = NewCustomerPage {
                chrome: Chrome::new(user, "Add customer", Section::Customers),
                name: posted.field("name").to_string(),
                phone,
                address: posted.field("address").to_string(),
                tags: posted.field("tags").to_string(),
                error: Some(format!("{label} {message}.")),
                bad: key,
            };
            let mut res = render(&page);
            *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

/// The record's Edit next to Contact Methods: each phone with Remove, and Add phone.
#[derive(Template)]
#[template(path = "customers/contact_methods.html")]
struct ContactMethodsPage<'a> {
    chrome: Chrome<'a>,
    notice: Option<Notice>,
    id: String,
    /// (shown, path part)
    phones: Vec<(String, String)>,
    phone: String,
    error: Option<String>,
}

fn contact_methods_page<'a>(
    user: &'a SignedIn,
    title: &'a str,
    c: &Customer,
    notice: Option<Notice>,
    phone: String,
    error: Option<String>,
) -> ContactMethodsPage<'a> {
    ContactMethodsPage {
        chrome: Chrome::new(user, title, Section::Customers),
        notice,
        id: url_part(&c.id),
        phones: c
            .phones
            .iter()
            .map(|p| (phone_display(&p.number), url_part(p.number.as_str())))
            .collect(),
        phone,
        error,
    }
}

pub async fn contact_methods(
    user: SignedIn,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RecordQuery>,
) -> WebResult<Response> {
    let c = app
        .store
        .customer(&user.tenant.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This customer"))?;
    let title = format!("Contact Methods of {}", c.name);
    Ok(render(&contact_methods_page(
        &user,
        &title,
        &c,
        q.notice.as_deref().and_then(Notice::of),
        String::new(),
        None,
    )))
}

fn contact_methods_url(id: &str, notice: &str) -> String {
    format!(
        "/customers/{}/contact-methods?notice={notice}",
        url_part(id)
    )
}

pub async fn add_phone(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    let p = service::customers::NewPhone {
        number: posted.field("phone").trim().to_string(),
        job_notifications: None,
        marketing_updates: None,
    };
    let who = service::Who {
        source: Source::CustomerRecord,
        actor: &user.user.id,
    };
    match service::customers::add_phone(&app, &user.tenant.id, &id, &p, who).await {
        Ok(_) => Ok(see_other(&contact_methods_url(&id, "phone_added"))),
        Err(service::Error::Invalid { message, .. }) => {
            let c = app
                .store
                .customer(&user.tenant.id, &id)
                .await?
                .ok_or_else(|| WebError::not_found("This customer"))?;
            let title = format!("Contact Methods of {}", c.name);
            let page = contact_methods_page(
                user,
                &title,
                &c,
                None,
                p.number,
                Some(format!("Phone {message}.")),
            );
            let mut res = render(&page);
            *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(not_found_words(e)),
    }
}

pub async fn remove_phone(
    State(app): State<AppState>,
    Path((id, phone)): Path<(String, String)>,
    posted: Posted,
) -> WebResult<Response> {
    let phone = parse_phone(&phone)?;
    service::customers::remove_phone(&app, &posted.user.tenant.id, &id, &phone)
        .await
        .map_err(not_found_words)?;
    Ok(see_other(&contact_methods_url(&id, "phone_removed")))
}

#[derive(Deserialize)]
pub struct RecordQuery {
    notice: Option<String>,
}

/// Who made a ledger change: a person by email (`you` marked), else the actor's word
/// (`api`, `customer`, `assent`).
pub fn actor_label(user: &SignedIn, team: &service::ledger::Team, actor: &str) -> String {
    if actor == user.user.id {
        format!("{} (you)", user.user.email)
    } else {
        service::ledger::actor_name(team, actor)
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
    pub fn new(
        user: &SignedIn,
        team: &service::ledger::Team,
        entries: &[LedgerEntry],
        caption: &str,
    ) -> Self {
        let rows = entries
            .iter()
            .rev()
            .map(|e| {
                let x = &e.entry;
                HistoryRow {
                    when: TimeEl::new(&user.tenant, x.occurred_at),
                    channel: words::ledger_topic(x.channel.as_str()),
                    change: words::ledger_change(
                        x.channel.as_str(),
                        x.old_state.as_str(),
                        x.new_state.as_str(),
                    ),
                    source: words::source(x.source),
                    actor: actor_label(user, team, x.actor.as_str()),
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
    job_badge: &'static str,
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
    edit_url: String,
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
    (snap, history, older_history): (&assent_store::PhoneSnapshot, &[LedgerEntry], bool),
    team: &service::ledger::Team,
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
    let status_class = words::marketing_class(marketing);
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
            ..History::new(user, team, history, &format!("Consent history of {number}"))
        },
        number,
        base,
        phone_url: url_part(p.number.as_str()),
        job: p.job_notifications,
        mk: p.marketing_updates,
        language,
        status: words::marketing(marketing),
        job_badge: words::job_texts_badge(snap.consent.transactional_opted_out),
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
    let team = service::ledger::team(app.store.as_ref(), &t.id).await?;
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
            (&snap, history.items.as_slice(), older),
            &team,
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
        edit_url: format!("/customers/{}/contact-methods", url_part(&customer.id)),
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
pub(super) async fn phone_of_customer(
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
