//! Campaigns: the list, the marketing composer (the final body with the STOP footer and
//! its segment count, live while typing and on Preview without JavaScript), and each
//! campaign's report with pause and resume. Creating, pausing and resuming go through
//! [`crate::service::campaigns`], as the API's do.

use std::collections::BTreeMap;

use assent_core::compose::{self, Encoding};
use assent_core::merge;
use assent_store::{CampaignKind, CampaignStatus, SendStatus, Tenant};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::json;

use askama::Template;

use super::pager::{PageParams, Pager};
use super::session::{Posted, SignedIn};
use super::{
    Chrome, DeferredUntil, Section, TimeEl, WebError, WebResult, phone_display, render, see_other,
    thousands, url_part,
};
use crate::AppState;
use crate::service::{self, campaigns::NewCampaign};

/// What a customer would receive: the body filled for a sample customer, with the brand in
/// front and the footer.
pub struct Preview {
    pub body: String,
    pub segments: usize,
    pub encoding: Encoding,
    pub units: usize,
}

/// The preview of a campaign of `kind`: only marketing bodies get the brand and footer.
pub fn preview_for(t: &Tenant, body: &str, kind: CampaignKind) -> Result<Preview, String> {
    let template = merge::Template::parse(body).map_err(|e| e.to_string())?;
    let filled = template.fill(&merge::values(
        Some("Dana Whitfield"),
        &t.name,
        "+15125550142",
    ));
    let body = if kind == CampaignKind::Marketing {
        service::marketing_body(t, &filled, assent_core::keyword::Lang::En)
    } else {
        filled.trim_end().to_string()
    };
    let s = compose::segments(&body);
    Ok(Preview {
        body,
        segments: s.count,
        encoding: s.encoding,
        units: s.units,
    })
}

fn segments_text(p: &Preview) -> String {
    let (per, name) = match p.encoding {
        Encoding::Gsm7 => ("characters", "GSM-7"),
        Encoding::Ucs2 => (
            "UCS-2 units (emoji and some accents make segments shorter)",
            "UCS-2",
        ),
    };
    format!(
        "{} segment{} · {} {per} · {name}",
        p.segments,
        if p.segments == 1 { "" } else { "s" },
        p.units
    )
}

struct Draft {
    kind: CampaignKind,
    name: String,
    body: String,
    tags: String,
    send_at: String,
    /// The follow-up days as typed (`2, 7, 14`): after the estimate, or before the service
    /// is due.
    days: String,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            kind: CampaignKind::Marketing,
            name: String::new(),
            body: String::new(),
            tags: String::new(),
            send_at: String::new(),
            days: String::new(),
        }
    }
}

/// The kinds the composer offers, in the order of its tabs.
const KINDS: [CampaignKind; 4] = [
    CampaignKind::Marketing,
    CampaignKind::UnsoldEstimates,
    CampaignKind::RecurringServices,
    CampaignKind::MissedCalls,
];

/// A kind from the composer's `type` field; anything else is a marketing campaign.
fn kind_from(v: &str) -> CampaignKind {
    KINDS
        .into_iter()
        .find(|k| k.as_str() == v)
        .unwrap_or(CampaignKind::Marketing)
}

/// One tab of the composer's kind chooser.
struct KindTab {
    code: &'static str,
    label: &'static str,
    current: bool,
}

/// "2, 7, 14" → [2, 7, 14]; anything that is not a list of whole days is refused in the
/// composer's words.
fn days_of(v: &str, label: &str) -> Result<Vec<u32>, String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<u32>().map_err(|_| {
                format!("{label} must be whole numbers of days separated by commas, e.g. 2, 7, 14.")
            })
        })
        .collect()
}

#[derive(Template)]
#[template(path = "campaigns/new.html")]
struct Composer<'a> {
    chrome: Chrome<'a>,
    kinds: Vec<KindTab>,
    /// The kind's code (the form's `type`), and whether it is marketing.
    kind: &'static str,
    marketing: bool,
    /// "marketing", "unsold estimates", … for the heading.
    heading: String,
    /// The days field's label ("Days after", "Days before"), for the kinds that have one.
    days_label: Option<&'static str>,
    days: &'a str,
    error: Option<String>,
    name: &'a str,
    body: &'a str,
    tags: &'a str,
    send_at: &'a str,
    zone: &'a str,
    shown: String,
    count: String,
    /// Who it would go to, once the manager asked for a preview.
    audience: Option<Audience>,
    /// The primary button: "Create campaign" until the audience was previewed, then what
    /// it will do ("Send to 1,234 phones", "Schedule for 1,234 phones").
    submit: String,
}

/// The audience preview as the composer shows it.
struct Audience {
    phones: String,
    send: String,
    /// Each reason in words, with how many phones it would skip.
    skip: Vec<(String, String)>,
}

impl Audience {
    fn new(p: &crate::preview::Preview) -> Audience {
        Audience {
            phones: thousands(p.audience),
            send: thousands(p.would_send),
            skip: p
                .would_skip
                .iter()
                .map(|(code, n)| {
                    let words = match code.as_str() {
                        "sender_not_configured" => "No marketing sender number is set.".into(),
                        code => crate::words::reason(code),
                    };
                    (words, thousands(*n))
                })
                .collect(),
        }
    }
}

fn composer(user: &SignedIn, d: &Draft, error: Option<&str>) -> Response {
    composer_with(user, d, error, None)
}

fn composer_with(
    user: &SignedIn,
    d: &Draft,
    error: Option<&str>,
    audience: Option<&crate::preview::Preview>,
) -> Response {
    let t = &user.tenant;
    let (shown, count, err) = match preview_for(t, &d.body, d.kind) {
        Ok(p) => (p.body.clone(), segments_text(&p), None),
        Err(e) => (String::new(), String::new(), Some(e)),
    };
    let error = error
        .map(str::to_string)
        .or(err.map(|e| format!("Message: {e}.")));
    render(&Composer {
        chrome: Chrome::new(user, "New campaign", Section::Campaigns),
        kinds: KINDS
            .into_iter()
            .map(|k| KindTab {
                code: k.as_str(),
                label: kind_label(k),
                current: k == d.kind,
            })
            .collect(),
        kind: d.kind.as_str(),
        marketing: d.kind == CampaignKind::Marketing,
        heading: kind_label(d.kind).to_lowercase(),
        days_label: days_label(d.kind),
        days: &d.days,
        error,
        name: &d.name,
        body: &d.body,
        tags: &d.tags,
        send_at: &d.send_at,
        zone: t.time_zone.name(),
        shown,
        count,
        submit: match audience {
            _ if d.kind != CampaignKind::Marketing => "Activate".into(),
            None => "Create campaign".into(),
            Some(p) => format!(
                "{} {} phone{}",
                if d.send_at.trim().is_empty() {
                    "Send to"
                } else {
                    "Schedule for"
                },
                thousands(p.would_send),
                if p.would_send == 1 { "" } else { "s" }
            ),
        },
        audience: audience.map(Audience::new),
    })
}

/// The days field a kind has: after the estimate, or before the service is due.
fn days_label(k: CampaignKind) -> Option<&'static str> {
    match k {
        CampaignKind::UnsoldEstimates => Some("Days after"),
        CampaignKind::RecurringServices => Some("Days before"),
        _ => None,
    }
}

/// `/campaigns/new?type=unsold_estimates`: which kind the composer starts with.
#[derive(serde::Deserialize)]
pub struct NewQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub async fn new_campaign(user: SignedIn, Query(q): Query<NewQuery>) -> Response {
    let kind = kind_from(q.kind.as_deref().unwrap_or(""));
    let (body, days) = match kind {
        CampaignKind::Marketing => ("Hi {first_name|there}, ", ""),
        CampaignKind::UnsoldEstimates => (
            "Hi {first_name|there}, any questions about your estimate from {business_name}? Reply here and we'll help.",
            "2, 7, 14",
        ),
        CampaignKind::RecurringServices => (
            "Hi {first_name|there}, your service with {business_name} is due soon. Reply to book a visit.",
            "7, 1",
        ),
        CampaignKind::MissedCalls => (
            "Sorry we missed your call to {business_name}. How can we help? Reply here.",
            "",
        ),
    };
    let d = Draft {
        kind,
        body: body.into(),
        days: days.into(),
        ..Default::default()
    };
    composer(&user, &d, None)
}

/// `send_at` from a `datetime-local` field, in the tenant's zone, as RFC 3339.
fn send_at_utc(t: &Tenant, v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let local = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "Send at must be a date and time.".to_string())?;
    let tz: assent_core::Tz = t.time_zone;
    let at = tz.from_local_datetime(&local).earliest().ok_or_else(|| {
        "That time does not exist in your time zone (a clock change).".to_string()
    })?;
    Ok(Some(at.with_timezone(&Utc).to_rfc3339()))
}

pub async fn create(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let kind = kind_from(posted.field("type"));
    let marketing = kind == CampaignKind::Marketing;
    let d = Draft {
        kind,
        name: posted.field("name").trim().to_string(),
        body: posted.field("body").to_string(),
        // Tags and a start time are the marketing composer's; the follow-ups run on their
        // data's dates.
        tags: if marketing {
            posted.field("tags").trim().to_string()
        } else {
            String::new()
        },
        send_at: if marketing {
            posted.field("send_at").trim().to_string()
        } else {
            String::new()
        },
        days: posted.field("days").trim().to_string(),
    };
    let refuse = |status: StatusCode, message: Option<&str>| {
        let mut res = composer(user, &d, message);
        *res.status_mut() = status;
        res
    };
    let create = posted.field("action") == "create";
    // A preview is not a submission: whatever it finds wrong is shown with a 200, as the
    // body's own preview always was.
    if !create && d.body.trim().is_empty() {
        return Ok(refuse(StatusCode::OK, None));
    }
    let status = if create {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let send_at = match send_at_utc(&user.tenant, &d.send_at) {
        Ok(s) => s,
        Err(e) => return Ok(refuse(status, Some(&e))),
    };
    let days = match days_label(kind) {
        Some(label) => match days_of(&d.days, label) {
            Ok(days) => Some(days),
            Err(e) => return Ok(refuse(status, Some(&e))),
        },
        None => None,
    };
    let spec = NewCampaign {
        // The audience does not depend on the name: a preview needs none.
        name: if !create && d.name.is_empty() {
            "Preview".into()
        } else {
            d.name.clone()
        },
        kind: kind.as_str().into(),
        days_after: days
            .clone()
            .filter(|_| kind == CampaignKind::UnsoldEstimates),
        days_before: days.filter(|_| kind == CampaignKind::RecurringServices),
        body: d.body.clone(),
        tags: d
            .tags
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        send_at,
    };
    let refused = |e: service::Error| -> WebResult<Response> {
        match e {
            service::Error::Invalid { field, message } => {
                Ok(refuse(status, Some(&composer_error(&field, &message))))
            }
            e => Err(e.into()),
        }
    };
    if !create {
        // Preview: who it would reach, counted as the campaign would count them, before
        // the button that sends it.
        let c = match service::campaigns::validate(&app, &user.tenant, spec) {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        let p = crate::preview::preview(&app, &user.tenant, &c, crate::campaigns::PAGE).await?;
        return Ok(composer_with(user, &d, None, Some(&p)));
    }
    match service::campaigns::create(&app, &user.tenant, spec).await {
        Ok(c) => Ok(see_other(&format!("/campaigns/{}", url_part(&c.id)))),
        Err(e) => refused(e),
    }
}

/// The composer's words for what the service refused.
fn composer_error(field: &str, message: &str) -> String {
    match (field, message) {
        ("name", _) => "Give the campaign a name.".into(),
        ("body", "is required") => "Write the message.".into(),
        ("body", m) => format!("Message: {m}"),
        ("send_at", m) => format!("Send at {m}"),
        ("schedule.days_after", _) => "Give the days after the estimate, e.g. 2, 7, 14.".into(),
        ("schedule.days_before", _) => "Give the days before the service is due, e.g. 7, 1.".into(),
        ("schedule", m) => format!("Days: {m}."),
        (f, m) => format!("{f}: {m}"),
    }
}

/// The live preview the composer's script asks for while the manager types.
pub async fn preview_json(posted: Posted) -> Response {
    let kind = kind_from(posted.field("type"));
    match preview_for(&posted.user.tenant, posted.field("body"), kind) {
        Ok(p) => Json(json!({"body": p.body, "segments": segments_text(&p)})).into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": format!("Message: {e}.")})),
        )
            .into_response(),
    }
}

pub async fn pause(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    service::campaigns::pause(&app, &posted.user.tenant, &id).await?;
    Ok(see_other(&format!("/campaigns/{}", url_part(&id))))
}

pub async fn resume(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    service::campaigns::resume(&app, &posted.user.tenant, &id).await?;
    Ok(see_other(&format!("/campaigns/{}", url_part(&id))))
}

fn kind_label(k: CampaignKind) -> &'static str {
    match k {
        CampaignKind::Marketing => "Marketing",
        CampaignKind::UnsoldEstimates => "Unsold estimates",
        CampaignKind::RecurringServices => "Recurring services",
        CampaignKind::MissedCalls => "Missed calls",
    }
}

fn status_label(s: CampaignStatus) -> &'static str {
    match s {
        CampaignStatus::Scheduled => "Scheduled",
        CampaignStatus::Sending => "Sending",
        CampaignStatus::Active => "Active",
        CampaignStatus::Paused => "Paused",
        CampaignStatus::Finished => "Finished",
    }
}

struct ListRow {
    id: String,
    name: String,
    kind: &'static str,
    status: &'static str,
    created: TimeEl,
    recipients: String,
    sent: String,
    delivered: String,
    skipped: String,
    opted_out_after: String,
}

#[derive(Template)]
#[template(path = "campaigns/list.html")]
struct ListPage<'a> {
    chrome: Chrome<'a>,
    rows: Vec<ListRow>,
    pager: Pager,
}

pub async fn campaigns(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<PageParams>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let page = app
        .store
        .campaigns_page(&t.id, &q.seek(false, false))
        .await?;
    let total = app.store.campaign_count(&t.id).await?;
    let pager = Pager::new(&page, &q, false, total, "/campaigns");
    let rows = page
        .items
        .into_iter()
        .map(|(c, n)| {
            let of = |s: SendStatus| n.by_status.get(&s).copied().unwrap_or(0);
            ListRow {
                id: url_part(&c.id),
                name: c.name,
                kind: kind_label(c.kind),
                status: status_label(c.status),
                created: TimeEl::new(t, c.created_at),
                recipients: thousands(n.recipients),
                // Handed to the carrier, whatever it said since.
                sent: thousands(
                    of(SendStatus::Sent) + of(SendStatus::Delivered) + of(SendStatus::Undelivered),
                ),
                delivered: thousands(of(SendStatus::Delivered)),
                skipped: thousands(of(SendStatus::Skipped)),
                opted_out_after: thousands(n.opted_out_after),
            }
        })
        .collect();
    Ok(render(&ListPage {
        chrome: Chrome::new(&user, "Campaigns", Section::Campaigns),
        rows,
        pager,
    }))
}

struct SkippedRow {
    url: String,
    phone: String,
    step: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "campaigns/skipped.html")]
struct SkippedPage<'a> {
    chrome: Chrome<'a>,
    id: String,
    rows: Vec<SkippedRow>,
    pager: Pager,
}

/// A campaign's skipped recipients with the gate's reason, 50 a page in key order.
pub async fn skipped(
    user: SignedIn,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let c = match service::campaigns::load(&app, t, &id).await {
        Err(service::Error::NotFound(_)) => return Err(WebError::not_found("This campaign")),
        other => other?,
    };
    let counts = app.store.campaign_counts(&t.id, &id).await?;
    let total = counts
        .by_status
        .get(&SendStatus::Skipped)
        .copied()
        .unwrap_or(0);
    let key = |v: &Option<String>| v.as_deref().and_then(service::campaigns::parse_log_cursor);
    let status = Some(SendStatus::Skipped);
    let per_page = service::pages::WEB_PAGE;
    let (rows, prev_key, next_key) = match key(&q.before) {
        Some(b) => {
            let page = app
                .store
                .send_log_page_before(&t.id, &id, status, Some(&b), per_page)
                .await?;
            let next = page.rows.last().map(key_of);
            (page.rows, page.next, next)
        }
        None => {
            let after = key(&q.after);
            let page = app
                .store
                .send_log_page(&t.id, &id, status, after.as_ref(), per_page)
                .await?;
            let prev = after.as_ref().and(page.rows.first().map(key_of));
            (page.rows, prev, page.next)
        }
    };
    let base = format!("/campaigns/{}/skipped", url_part(&id));
    let pager = Pager::of_keys(
        &q,
        rows.len(),
        total,
        &base,
        prev_key.map(|k| service::campaigns::log_cursor(&k)),
        next_key.map(|k| service::campaigns::log_cursor(&k)),
    );
    let rows = rows
        .iter()
        .map(|r| {
            let reason = r.reason.as_deref().unwrap_or("");
            SkippedRow {
                url: url_part(r.phone.as_str()),
                phone: phone_display(&r.phone),
                step: r.step.clone(),
                reason: crate::words::reason(reason),
            }
        })
        .collect();
    Ok(render(&SkippedPage {
        chrome: Chrome::new(&user, &format!("{}: skipped", c.name), Section::Campaigns),
        id: url_part(&c.id),
        rows,
        pager,
    }))
}

/// Which button the report offers.
enum Control {
    Pause,
    Resume,
    None,
}

struct SendRow {
    url: String,
    phone: String,
    step: String,
    status: String,
    reason: String,
    deferred: Option<DeferredUntil>,
    sent: Option<TimeEl>,
    opted_out_after: bool,
}

#[derive(Template)]
#[template(path = "campaigns/report.html")]
struct Report<'a> {
    chrome: Chrome<'a>,
    id: String,
    kind: &'static str,
    status: &'static str,
    body: &'a str,
    send_at: Option<TimeEl>,
    control: Control,
    counts: BTreeMap<SendStatus, u64>,
    opted_out_after: u64,
    recipients: u64,
    skipped_by_reason: Vec<(String, u64)>,
    skipped: Vec<(String, String)>,
    /// Skipped recipients beyond those listed.
    skipped_more: u64,
    sends: Vec<SendRow>,
    /// Query strings of the send log's neighbouring pages.
    prev: Option<String>,
    next: Option<String>,
}

/// How many send log rows the report page shows at a time.
const LOG_PAGE: usize = 50;

/// Where the report's send log page starts: after one key, or before one (the previous
/// page). A cursor that is not one shows the first page.
#[derive(serde::Deserialize)]
pub struct LogPageQuery {
    after: Option<String>,
    before: Option<String>,
}

pub async fn campaign(
    user: SignedIn,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogPageQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let report = match service::campaigns::report(&app, t, &id).await {
        Err(service::Error::NotFound(_)) => return Err(WebError::not_found("This campaign")),
        other => other?,
    };
    let skipped = report
        .skipped
        .iter()
        .map(|r| {
            let reason = r.reason.as_deref().unwrap_or("");
            (phone_display(&r.phone), crate::words::reason(reason))
        })
        .collect();
    let after = q
        .after
        .as_deref()
        .and_then(service::campaigns::parse_log_cursor);
    let before = q
        .before
        .as_deref()
        .and_then(service::campaigns::parse_log_cursor);
    // A page read backwards (the previous link) knows there is a page after it, since it
    // came from one; a page read forwards knows one before it when it started after a key.
    let (page, prev_key, next_key) = match before {
        Some(b) => {
            let page = app
                .store
                .send_log_page_before(&t.id, &id, None, Some(&b), LOG_PAGE)
                .await?;
            let next = page.rows.last().map(key_of);
            let prev = page.next.clone();
            (page, prev, next)
        }
        None => {
            let page = app
                .store
                .send_log_page(&t.id, &id, None, after.as_ref(), LOG_PAGE)
                .await?;
            let prev = after.as_ref().and(page.rows.first().map(key_of));
            let next = page.next.clone();
            (page, prev, next)
        }
    };
    let prev = prev_key.map(|k| format!("before={}", service::campaigns::log_cursor(&k)));
    let next = next_key.map(|k| format!("after={}", service::campaigns::log_cursor(&k)));
    let sends = page
        .rows
        .iter()
        .map(|r| SendRow {
            url: url_part(r.phone.as_str()),
            phone: phone_display(&r.phone),
            step: r.step.clone(),
            status: crate::words::send_status(r.status).to_string(),
            reason: r
                .reason
                .as_deref()
                .map(crate::words::reason)
                .unwrap_or_default(),
            deferred: r
                .deferred_until
                .map(|until| DeferredUntil::new(t, &r.phone, until)),
            sent: r.sent_at.map(|s| TimeEl::new(t, s)),
            opted_out_after: r.opted_out_after,
        })
        .collect();
    let c = &report.campaign;
    let control = match c.status {
        CampaignStatus::Paused => Control::Resume,
        CampaignStatus::Finished => Control::None,
        _ => Control::Pause,
    };
    Ok(render(&Report {
        chrome: Chrome::new(&user, &c.name, Section::Campaigns),
        id: url_part(&c.id),
        kind: kind_label(c.kind),
        status: status_label(c.status),
        body: &c.body,
        send_at: c.send_at.map(|s| TimeEl::new(t, s)),
        control,
        counts: report.counts.clone(),
        opted_out_after: report.opted_out_after,
        recipients: report.recipients,
        skipped_more: report
            .counts
            .get(&SendStatus::Skipped)
            .copied()
            .unwrap_or(0)
            .saturating_sub(report.skipped.len() as u64),
        skipped_by_reason: report
            .skipped_by_reason
            .iter()
            .map(|(reason, n)| {
                let text = crate::words::reason(reason);
                (text, *n)
            })
            .collect(),
        skipped,
        sends,
        prev,
        next,
    }))
}

fn key_of(r: &assent_store::SendLogRow) -> assent_store::SendLogKey {
    assent_store::SendLogKey {
        step: r.step.clone(),
        phone: r.phone.as_str().to_string(),
    }
}
