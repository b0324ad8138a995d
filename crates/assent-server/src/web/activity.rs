//! What happened: conversations (each thread with its keyword events inline) and the
//! consent ledger with filters and CSV export.

use std::collections::BTreeMap;

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::{Direction, LedgerEntry, Message, Tenant};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::customers::{evidence_html, history_table};
use super::session::SignedIn;
use super::{Page, Section, WebError, WebResult, esc, phone_display, see_other, time_el, url_part};
use crate::AppState;
use crate::api::consent::ledger_csv;

#[derive(Deserialize)]
pub struct OpenQuery {
    phone: Option<String>,
}

pub async fn conversations(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<OpenQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let mut error = String::new();
    if let Some(p) = q.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        match E164::parse(p) {
            Ok(phone) => {
                return Ok(see_other(&format!(
                    "/conversations/{}",
                    url_part(phone.as_str())
                )));
            }
            Err(_) => {
                error = "<p class=\"notice error\" role=\"alert\" id=\"phone-error\">That is not a phone number we can read. Try (512) 555-0142.</p>".into()
            }
        }
    }
    let recent = app.store.recent_conversations(&t.id, 50).await?;
    // A question or a thank-you is never acted on: a person answers it, on the marketing
    // number too, which nobody else reads. Keywords were answered automatically.
    let waiting = |c: &assent_store::ConversationSummary| {
        c.last_inbound.as_deref().is_some_and(|b| {
            matches!(
                assent_core::keyword::classify(b),
                assent_core::keyword::Classified::Ordinary
                    | assent_core::keyword::Classified::Review { .. }
            )
        })
    };
    let n_waiting = recent.iter().filter(|c| waiting(c)).count();
    let rows: String = recent
        .iter()
        .map(|c| {
            format!(
                "<li><a href=\"/conversations/{}\">{}</a>{} <span class=\"hint\">last message {}</span></li>",
                esc(&url_part(c.phone.as_str())),
                esc(&phone_display(&c.phone)),
                if waiting(c) {
                    " <span class=\"badge warn\">Waiting for an answer</span>"
                } else {
                    ""
                },
                time_el(t, c.last_at)
            )
        })
        .collect();
    let list = if rows.is_empty() {
        "<p>No conversations yet.</p>".to_string()
    } else {
        format!(
            "<h2>Recent conversations</h2><p class=\"hint\">{n_waiting} waiting for an answer.</p><ul class=\"plain\">{rows}</ul>"
        )
    };
    let body = format!(
        "<h1>Conversations</h1><form method=\"get\" action=\"/conversations\" class=\"search\">\
<label for=\"phone\">Open a phone's conversation</label>{error}<div class=\"row\">\
<input type=\"tel\" id=\"phone\" name=\"phone\" placeholder=\"(512) 555-0142\"{described}>\
<button type=\"submit\">Open</button></div></form>{list}",
        described = if error.is_empty() {
            ""
        } else {
            " aria-describedby=\"phone-error\" aria-invalid=\"true\""
        }
    );
    Ok(Page {
        title: "Conversations",
        section: Section::Conversations,
        body,
    }
    .render(&user))
}

/// A consent event as a line in a conversation, e.g. "Marketing: Opted out by STOP".
pub fn event_line(e: &LedgerEntry) -> Option<String> {
    let x = &e.entry;
    let what = match x.channel.as_str() {
        "marketing" => "Marketing",
        "transactional" => "All texts",
        _ => return None,
    };
    let change = match x.new_state.as_str() {
        "opted_out" => "Opted out",
        "opted_in" => "Opted in",
        "pending" => "Opt-in requested",
        "active" => "Resumed",
        "none" => "Consent reset",
        other => other,
    };
    let text = x
        .evidence
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let by = match (x.source, text) {
        (Source::Keyword, Some(t)) => format!("by {t}"),
        (Source::FreeText, Some(t)) => format!("by the message “{t}”"),
        (Source::OptInLink, _) => "by the opt-in link text".into(),
        (Source::WebForm, _) => "from the web form".into(),
        (Source::CustomerRecord, _) => "from the customer record".into(),
        (Source::Carrier, _) => "by the carrier (number blocked the sender)".into(),
        (Source::Review, _) => "by a person's review".into(),
        (Source::Expiry, _) => "(request expired)".into(),
        (Source::Api, _) => "through the API".into(),
        (Source::Import, _) => "by import".into(),
        (Source::Keyword, None) | (Source::FreeText, None) => "by keyword".into(),
    };
    let unchanged = if x.old_state == x.new_state {
        " (already so)"
    } else {
        ""
    };
    Some(format!("{what}: {change} {by}{unchanged}"))
}

fn message_html(t: &Tenant, m: &Message) -> String {
    let (class, who) = match m.direction {
        Direction::Inbound => ("in", "Customer".to_string()),
        Direction::Outbound => (
            "out",
            match m.kind {
                assent_store::MessageKind::AutoReply => "Automatic reply",
                assent_store::MessageKind::OptInRequest => "Opt-in request",
                assent_store::MessageKind::Campaign => "Campaign",
                assent_store::MessageKind::Api => "Sent through the API",
                assent_store::MessageKind::Customer => "Customer",
            }
            .to_string(),
        ),
    };
    let status = match m.direction {
        Direction::Inbound => String::new(),
        Direction::Outbound => format!(
            " · {}{}{}",
            esc(m.status.as_str()),
            m.reason
                .as_deref()
                .map(|r| format!(" ({})", esc(r)))
                .unwrap_or_default(),
            m.deferred_until()
                .map(|until| format!(" {}", super::deferred_until_el(t, &m.phone, until)))
                .unwrap_or_default()
        ),
    };
    format!(
        "<li class=\"msg {class}\"><p class=\"meta\">{who} · {when}{status}</p><p class=\"text\">{body}</p></li>",
        who = esc(&who),
        when = time_el(t, m.created_at),
        body = esc(&m.body),
    )
}

fn event_html(t: &Tenant, e: &LedgerEntry) -> Option<String> {
    Some(format!(
        "<li class=\"event\"><p><strong>{}</strong> <span class=\"hint\">{}</span></p>{}</li>",
        esc(&event_line(e)?),
        time_el(t, e.entry.occurred_at),
        evidence_html(&e.entry.evidence)
    ))
}

pub async fn conversation(
    user: SignedIn,
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let phone = E164::parse(&phone).map_err(|_| WebError::not_found("This phone number"))?;
    let messages = app.store.messages_for_phone(&t.id, &phone).await?;
    let ledger = app.store.ledger_for_phone(&t.id, &phone).await?;
    // A thread is the phone and one of the tenant's numbers.
    let sender_of = |m: &Message| match m.direction {
        Direction::Inbound => m.to.clone(),
        Direction::Outbound => m.from.clone(),
    };
    // Items sort by time, then by position: an event caused by a text comes right after
    // that text (before the automatic reply stamped with the same instant), other events
    // after the messages of their instant.
    let mut threads: BTreeMap<String, Vec<(DateTime<Utc>, usize, String)>> = BTreeMap::new();
    let mut sid_thread: BTreeMap<String, (String, DateTime<Utc>, usize)> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        let s = sender_of(m);
        if let Some(sid) = &m.provider_id
            && m.direction == Direction::Inbound
        {
            sid_thread.insert(
                sid.clone(),
                (s.as_str().to_string(), m.created_at, 2 * i + 1),
            );
        }
        threads.entry(s.as_str().to_string()).or_default().push((
            m.created_at,
            2 * i,
            message_html(t, m),
        ));
    }
    let channel_sender = |c: &str| match c {
        "marketing" => t.senders.marketing.as_ref(),
        _ => t.senders.transactional.as_ref(),
    };
    for e in &ledger {
        let Some(line) = event_html(t, e) else {
            continue;
        };
        // An event caused by a text sits right after it; others go to their channel's thread.
        let (thread, at, position) = match e
            .entry
            .evidence
            .message_sid
            .as_ref()
            .and_then(|sid| sid_thread.get(sid))
        {
            Some((s, at, position)) => (s.clone(), *at, *position),
            None => match channel_sender(&e.entry.channel) {
                Some(s) => (s.as_str().to_string(), e.entry.occurred_at, usize::MAX),
                None => continue,
            },
        };
        threads
            .entry(thread)
            .or_default()
            .push((at, position, line));
    }
    let mut sections = String::new();
    for (sender, mut items) in threads {
        items.sort_by_key(|a| (a.0, a.1));
        let role = match E164::parse(&sender).ok().and_then(|s| t.thread_of(&s)) {
            Some(assent_core::consent::Thread::Marketing) => "marketing number",
            Some(assent_core::consent::Thread::Transactional) => "transactional number",
            Some(assent_core::consent::Thread::Shared) => "your number",
            None => "a former number",
        };
        let shown = E164::parse(&sender)
            .map(|s| phone_display(&s))
            .unwrap_or(sender.clone());
        sections.push_str(&format!(
            "<section class=\"card thread\"><h2>With {} ({})</h2><ol class=\"timeline\">{}</ol></section>",
            esc(&shown),
            esc(role),
            items.into_iter().map(|i| i.2).collect::<String>()
        ));
    }
    if sections.is_empty() {
        sections = "<p>No messages with this number yet.</p>".into();
    }
    let owners = app.store.customers_with_phone(&t.id, &phone).await?;
    let mut links = Vec::new();
    for id in owners {
        if let Some(c) = app.store.customer(&t.id, &id).await? {
            links.push(format!(
                "<a href=\"/customers/{}\">{}</a>",
                esc(&url_part(&c.id)),
                esc(&c.name)
            ));
        }
    }
    let owners = if links.is_empty() {
        "<p>Not on any customer record.</p>".to_string()
    } else {
        format!("<p>Customer: {}</p>", links.join(", "))
    };
    let title = format!("Conversation with {}", phone_display(&phone));
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/conversations\">Conversations</a> ›</p><h1>{}</h1>{owners}{sections}",
        esc(&title)
    );
    Ok(Page {
        title: &title,
        section: Section::Conversations,
        body,
    }
    .render(&user))
}

#[derive(Deserialize, Default)]
pub struct LedgerFilter {
    phone: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

struct Filter {
    phone: Option<E164>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    errors: Vec<&'static str>,
}

fn read_filter(t: &Tenant, f: &LedgerFilter) -> Filter {
    let given = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let mut errors = Vec::new();
    let phone = given(&f.phone).and_then(|p| {
        E164::parse(&p)
            .map_err(|_| errors.push("The phone number could not be read."))
            .ok()
    });
    let from = given(&f.from).and_then(|s| {
        let d = crate::service::day_start(t, &s, false);
        if d.is_none() {
            errors.push("From must be a date.");
        }
        d
    });
    let to = given(&f.to).and_then(|s| {
        let d = crate::service::day_start(t, &s, true);
        if d.is_none() {
            errors.push("To must be a date.");
        }
        d
    });
    Filter {
        phone,
        from,
        to,
        errors,
    }
}

async fn filtered_ledger(app: &AppState, t: &Tenant, f: &Filter) -> WebResult<Vec<LedgerEntry>> {
    let entries = match &f.phone {
        Some(p) => app
            .store
            .ledger_for_phone(&t.id, p)
            .await?
            .into_iter()
            .filter(|e| {
                f.from.is_none_or(|from| e.entry.occurred_at >= from)
                    && f.to.is_none_or(|to| e.entry.occurred_at < to)
            })
            .collect(),
        None => app.store.ledger(&t.id, f.from, f.to).await?,
    };
    Ok(entries)
}

const LEDGER_PAGE_ROWS: usize = 500;

pub async fn compliance(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<LedgerFilter>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let f = read_filter(t, &q);
    let entries = if f.errors.is_empty() {
        filtered_ledger(&app, t, &f).await?
    } else {
        Vec::new()
    };
    let shown_from = entries.len().saturating_sub(LEDGER_PAGE_ROWS);
    let shown = &entries[shown_from..];
    let mut table = history_table(&user, shown, "Consent ledger, newest first");
    // The ledger table names the phone too.
    if f.phone.is_none() && !shown.is_empty() {
        table = phone_ledger_table(&user, shown);
    }
    let more = if shown_from > 0 {
        format!(
            "<p class=\"hint\">Showing the newest {LEDGER_PAGE_ROWS} of {} entries. The CSV export has them all.</p>",
            entries.len()
        )
    } else {
        String::new()
    };
    let errors: String = f
        .errors
        .iter()
        .map(|e| format!("<p class=\"notice error\" role=\"alert\">{}</p>", esc(e)))
        .collect();
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let query = [("phone", &q.phone), ("from", &q.from), ("to", &q.to)]
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| format!("{k}={}", url_part(v.trim())))
        })
        .collect::<Vec<_>>()
        .join("&");
    let export = if query.is_empty() {
        "/compliance/export.csv".to_string()
    } else {
        format!("/compliance/export.csv?{query}")
    };
    let body = format!(
        "<h1>Compliance</h1><p>Every consent change with its evidence, in commit order. Entries are never changed or deleted.</p>\
<form method=\"get\" action=\"/compliance\" class=\"filters card\"><h2>Filter</h2><div class=\"row wrap\">\
<div><label for=\"f-phone\">Phone</label><input type=\"tel\" id=\"f-phone\" name=\"phone\" value=\"{phone}\"></div>\
<div><label for=\"f-from\">From</label><input type=\"date\" id=\"f-from\" name=\"from\" value=\"{from}\"></div>\
<div><label for=\"f-to\">To</label><input type=\"date\" id=\"f-to\" name=\"to\" value=\"{to}\"></div>\
<div class=\"actions\"><button type=\"submit\">Apply filters</button> <a href=\"/compliance\">Clear</a></div></div></form>\
{errors}<p><a class=\"button primary\" href=\"{export}\" download>Export CSV</a> <span class=\"hint\">{count} entries</span></p>{more}{table}",
        phone = v(&q.phone),
        from = v(&q.from),
        to = v(&q.to),
        export = esc(&export),
        count = entries.len(),
    );
    Ok(Page {
        title: "Compliance",
        section: Section::Compliance,
        body,
    }
    .render(&user))
}

fn phone_ledger_table(user: &SignedIn, entries: &[LedgerEntry]) -> String {
    let rows: String = entries
        .iter()
        .rev()
        .map(|e| {
            let x = &e.entry;
            format!(
                "<tr><td data-label=\"#\">{seq}</td><td data-label=\"When\">{when}</td><td data-label=\"Phone\"><a href=\"/conversations/{url}\">{phone}</a></td><td data-label=\"What\">{channel}</td><td data-label=\"Change\">{old} → <strong>{new}</strong></td><td data-label=\"Source\">{source}</td><td data-label=\"By\">{actor}</td><td data-label=\"Evidence\">{evidence}</td></tr>",
                seq = e.seq,
                when = time_el(&user.tenant, x.occurred_at),
                url = esc(&url_part(x.phone.as_str())),
                phone = esc(&phone_display(&x.phone)),
                channel = esc(&x.channel.replace('_', " ")),
                old = esc(&x.old_state.replace('_', " ")),
                new = esc(&x.new_state.replace('_', " ")),
                source = esc(super::customers::source_label(x.source)),
                actor = esc(if x.actor == user.user.id { &user.user.email } else { &x.actor }),
                evidence = evidence_html(&x.evidence),
            )
        })
        .collect();
    format!(
        "<div class=\"table-wrap\"><table class=\"history stack\"><caption>Consent ledger, newest first</caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">When</th><th scope=\"col\">Phone</th><th scope=\"col\">What</th><th scope=\"col\">Change</th><th scope=\"col\">Source</th><th scope=\"col\">By</th><th scope=\"col\">Evidence</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

pub async fn export_csv(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<LedgerFilter>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let f = read_filter(t, &q);
    if let Some(e) = f.errors.first() {
        return Err(WebError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            message: (*e).to_string(),
        });
    }
    let entries = filtered_ledger(&app, t, &f).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-consent-ledger.csv\"", t.slug),
            ),
        ],
        ledger_csv(&entries),
    )
        .into_response())
}
