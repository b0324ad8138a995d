//! Campaigns: the list, the marketing composer (the final body with the STOP footer and
//! its segment count, live while typing and on Preview without JavaScript), and each
//! campaign's report with pause and resume. Creating, pausing and resuming go through the
//! API's functions.

use std::collections::BTreeMap;

use assent_core::compose::{self, Encoding};
use assent_core::merge::{self, Template};
use assent_store::{CampaignKind, CampaignStatus, Tenant};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::json;

use super::session::{Posted, SignedIn, csrf_field};
use super::{Page, Section, WebError, WebResult, esc, phone_display, see_other, time_el, url_part};
use crate::AppState;
use crate::api::campaigns::{NewCampaign, create_campaign, pause_campaign, resume_campaign};

/// What a customer would receive: the body filled for a sample customer, with the footer.
pub struct Preview {
    pub body: String,
    pub segments: usize,
    pub encoding: Encoding,
    pub units: usize,
}

pub fn preview(t: &Tenant, body: &str) -> Result<Preview, String> {
    let template = Template::parse(body).map_err(|e| e.to_string())?;
    let filled = template.fill(&merge::values(
        Some("Dana Whitfield"),
        &t.name,
        "+15125550142",
    ));
    let body = compose::with_marketing_footer(&filled);
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

#[derive(Default)]
struct Draft {
    name: String,
    body: String,
    tags: String,
    send_at: String,
}

fn composer(user: &SignedIn, d: &Draft, error: Option<&str>) -> String {
    let t = &user.tenant;
    let (shown, count, err) = match preview(t, &d.body) {
        Ok(p) => (p.body.clone(), segments_text(&p), None),
        Err(e) => (String::new(), String::new(), Some(e)),
    };
    let error = error
        .map(str::to_string)
        .or(err.map(|e| format!("Message: {e}.")))
        .map(|e| {
            format!(
                "<p class=\"notice error\" role=\"alert\" id=\"composer-error\">{}</p>",
                esc(&e)
            )
        })
        .unwrap_or_default();
    format!(
        "<p class=\"crumbs\"><a href=\"/campaigns\">Campaigns</a> ›</p><h1>New marketing campaign</h1>\
<p>Goes to every phone that gave written consent (Opted in), or only to customers with one of the tags. Each phone passes the gate once; anyone it refuses is listed in the report with the reason.</p>{error}\
<div class=\"grid2\"><form method=\"post\" action=\"/campaigns/new\" class=\"card composer\">{csrf}\
<div class=\"field\"><label for=\"c-name\">Campaign name</label><input type=\"text\" id=\"c-name\" name=\"name\" value=\"{name}\" required></div>\
<div class=\"field\"><label for=\"campaign-body\">Message</label>\
<p class=\"hint\" id=\"c-body-hint\">Merge fields: {{first_name}}, {{last_name}}, {{name}}, {{business_name}}, {{phone}}; a fallback after a bar, e.g. {{first_name|there}}. “Reply STOP to opt out” is added for you.</p>\
<textarea id=\"campaign-body\" name=\"body\" rows=\"6\" required aria-describedby=\"c-body-hint\">{body}</textarea></div>\
<div class=\"field\"><label for=\"c-tags\">Only customers tagged (optional)</label>\
<p class=\"hint\" id=\"c-tags-hint\">Separate tags with commas or spaces; empty sends to every opted-in number.</p>\
<input type=\"text\" id=\"c-tags\" name=\"tags\" value=\"{tags}\" aria-describedby=\"c-tags-hint\"></div>\
<div class=\"field\"><label for=\"c-send-at\">Send at (optional, {zone})</label>\
<p class=\"hint\" id=\"c-send-hint\">Empty sends now. Quiet hours still hold each text until the customer's local sending hours.</p>\
<input type=\"datetime-local\" id=\"c-send-at\" name=\"send_at\" value=\"{send_at}\" aria-describedby=\"c-send-hint\"></div>\
<div class=\"row\"><button type=\"submit\" name=\"action\" value=\"preview\">Preview</button>\
<button type=\"submit\" name=\"action\" value=\"create\" class=\"primary\">Create campaign</button></div></form>\
<section class=\"card\" aria-labelledby=\"preview-title\"><h2 id=\"preview-title\">What customers receive</h2>\
<p class=\"hint\">Filled in for a sample customer, Dana Whitfield.</p>\
<p class=\"sms text\" id=\"preview-body\" aria-live=\"polite\">{shown}</p>\
<p id=\"preview-segments\" aria-live=\"polite\"><strong>{count}</strong></p></section></div>",
        csrf = csrf_field(user),
        name = esc(&d.name),
        body = esc(&d.body),
        tags = esc(&d.tags),
        send_at = esc(&d.send_at),
        zone = esc(&t.time_zone),
        shown = esc(&shown),
        count = esc(&count),
    )
}

pub async fn new_campaign(user: SignedIn) -> Response {
    let d = Draft {
        body: "Hi {first_name|there}, ".into(),
        ..Default::default()
    };
    Page {
        title: "New campaign",
        section: Section::Campaigns,
        body: composer(&user, &d, None),
    }
    .render(&user)
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
    let tz: assent_core::Tz = t
        .time_zone
        .parse()
        .unwrap_or(assent_core::Tz::America__New_York);
    let at = tz.from_local_datetime(&local).earliest().ok_or_else(|| {
        "That time does not exist in your time zone (a clock change).".to_string()
    })?;
    Ok(Some(at.with_timezone(&Utc).to_rfc3339()))
}

pub async fn create(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let d = Draft {
        name: posted.field("name").trim().to_string(),
        body: posted.field("body").to_string(),
        tags: posted.field("tags").trim().to_string(),
        send_at: posted.field("send_at").trim().to_string(),
    };
    let refuse = |status: StatusCode, message: Option<&str>| {
        let mut res = Page {
            title: "New campaign",
            section: Section::Campaigns,
            body: composer(user, &d, message),
        }
        .render(user);
        *res.status_mut() = status;
        res
    };
    if posted.field("action") != "create" {
        return Ok(refuse(StatusCode::OK, None));
    }
    if d.name.is_empty() {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Give the campaign a name."),
        ));
    }
    if d.body.trim().is_empty() {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Write the message."),
        ));
    }
    let send_at = match send_at_utc(&user.tenant, &d.send_at) {
        Ok(s) => s,
        Err(e) => return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, Some(&e))),
    };
    let tags: Vec<&str> = d
        .tags
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    let spec: NewCampaign = serde_json::from_value(json!({
        "name": d.name,
        "type": "marketing",
        "body": d.body,
        "audience": {"tags": tags},
        "send_at": send_at,
    }))
    .map_err(|e| WebError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })?;
    match create_campaign(&app, &user.tenant, spec).await {
        Ok(c) => Ok(see_other(&format!("/campaigns/{}", url_part(&c.id)))),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let message = e.message.replacen("body: ", "Message: ", 1);
            Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, Some(&message)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The live preview the composer's script asks for while the manager types.
pub async fn preview_json(posted: Posted) -> Response {
    match preview(&posted.user.tenant, posted.field("body")) {
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
    pause_campaign(&app, &posted.user.tenant, &id).await?;
    Ok(see_other(&format!("/campaigns/{}", url_part(&id))))
}

pub async fn resume(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    resume_campaign(&app, &posted.user.tenant, &id).await?;
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

pub async fn campaigns(user: SignedIn, State(app): State<AppState>) -> WebResult<Response> {
    let t = &user.tenant;
    let list = app.store.campaigns(&t.id).await?;
    let rows: String = list
        .iter()
        .map(|c| {
            format!(
                "<tr><td><a href=\"/campaigns/{id}\">{name}</a></td><td>{kind}</td><td>{status}</td><td>{created}</td></tr>",
                id = esc(&url_part(&c.id)),
                name = esc(&c.name),
                kind = kind_label(c.kind),
                status = status_label(c.status),
                created = time_el(t, c.created_at),
            )
        })
        .collect();
    let table = if list.is_empty() {
        "<p>No campaigns yet.</p>".to_string()
    } else {
        format!(
            "<div class=\"table-wrap\"><table><caption>Campaigns, newest first</caption><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Type</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    Ok(Page {
        title: "Campaigns",
        section: Section::Campaigns,
        body: format!(
            "<h1>Campaigns</h1><p><a class=\"button primary\" href=\"/campaigns/new\">New marketing campaign</a> <span class=\"hint\">Transactional campaigns (unsold estimates, recurring services, missed calls) are set up through the API.</span></p>{table}"
        ),
    }
    .render(&user))
}

pub async fn campaign(
    user: SignedIn,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let c = app
        .store
        .campaign(&t.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This campaign"))?;
    let log = app.store.send_log(&t.id, &id).await?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &log {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let opted_out_after = log.iter().filter(|r| r.opted_out_after).count();
    let count_items: String = counts
        .iter()
        .map(|(k, n)| format!("<div><dt>{}</dt><dd>{n}</dd></div>", esc(k)))
        .collect();
    let skipped: String = log
        .iter()
        .filter(|r| r.status == "skipped")
        .map(|r| {
            let reason = r.reason.as_deref().unwrap_or("");
            format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&phone_display(&r.phone)),
                esc(super::reason_text(reason).unwrap_or(reason))
            )
        })
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Skipped, and why</h2><div class=\"table-wrap\"><table><caption>Recipients the gate left out</caption><thead><tr><th scope=\"col\">Phone</th><th scope=\"col\">Reason</th></tr></thead><tbody>{skipped}</tbody></table></div>"
        )
    };
    let sends: String = log
        .iter()
        .map(|r| {
            format!(
                "<tr><td><a href=\"/conversations/{url}\">{phone}</a></td><td>{step}</td><td>{status}</td><td>{reason}</td><td>{sent}</td><td>{out}</td></tr>",
                url = esc(&url_part(r.phone.as_str())),
                phone = esc(&phone_display(&r.phone)),
                step = esc(&r.step),
                status = esc(&r.status),
                reason = match r.deferred_until {
                    Some(until) => format!(
                        "{} {}",
                        esc(r.reason.as_deref().unwrap_or("")),
                        super::deferred_until_el(t, &r.phone, until)
                    ),
                    None => esc(r.reason.as_deref().unwrap_or("")),
                },
                sent = r.sent_at.map(|s| time_el(t, s)).unwrap_or_default(),
                out = if r.opted_out_after { "Yes" } else { "" },
            )
        })
        .collect();
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/campaigns\">Campaigns</a> ›</p><h1>{name}</h1>\
<dl class=\"facts\"><dt>Type</dt><dd>{kind}</dd><dt>Status</dt><dd>{status}</dd><dt>Message</dt><dd class=\"text\">{body}</dd>{send_at}</dl>{control}\
<h2>Report</h2><p>{total} recipients, each counted once by its current status.</p>\
<dl class=\"counts\">{count_items}<div><dt>opted out afterwards</dt><dd>{opted_out_after}</dd></div></dl>{skipped}\
<h2>Send log</h2><div class=\"table-wrap\"><table><caption>Every recipient of every step</caption><thead><tr><th scope=\"col\">Phone</th><th scope=\"col\">Step</th><th scope=\"col\">Status</th><th scope=\"col\">Reason</th><th scope=\"col\">Sent</th><th scope=\"col\">Opted out after</th></tr></thead><tbody>{sends}</tbody></table></div>",
        name = esc(&c.name),
        kind = kind_label(c.kind),
        status = status_label(c.status),
        body = esc(&c.body),
        send_at = c
            .send_at
            .map(|s| format!("<dt>Send at</dt><dd>{}</dd>", time_el(t, s)))
            .unwrap_or_default(),
        total = log.len(),
        control = match c.status {
            CampaignStatus::Paused => format!(
                "<form method=\"post\" action=\"/campaigns/{id}/resume\">{csrf}<button type=\"submit\" class=\"primary\">Resume</button> <span class=\"hint\">Nobody already sent to is sent to again.</span></form>",
                id = esc(&url_part(&c.id)),
                csrf = csrf_field(&user),
            ),
            CampaignStatus::Finished => String::new(),
            _ => format!(
                "<form method=\"post\" action=\"/campaigns/{id}/pause\">{csrf}<button type=\"submit\">Pause</button> <span class=\"hint\">Holds messages not yet handed to the carrier.</span></form>",
                id = esc(&url_part(&c.id)),
                csrf = csrf_field(&user),
            ),
        },
    );
    Ok(Page {
        title: &c.name,
        section: Section::Campaigns,
        body,
    }
    .render(&user))
}
