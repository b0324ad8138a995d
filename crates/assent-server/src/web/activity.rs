//! What happened: conversations (each thread with its keyword events inline) and the
//! consent ledger with filters and CSV export.

use std::collections::BTreeMap;

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::{Direction, LedgerEntry, Message, Tenant};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use askama::Template;

use super::customers::{Badges, EvidenceList};
use super::pager::{PageParams, Pager};
use super::session::{Posted, SignedIn};
use super::{
    Chrome, DeferredUntil, Section, TimeEl, WebError, WebResult, phone_display, render, see_other,
    url_part,
};
use crate::AppState;
use crate::service::pages::{key_cursor, parse_key};
use crate::service::{self, ledger};
use crate::words;

#[derive(Deserialize)]
pub struct OpenQuery {
    phone: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

pub async fn conversations(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<OpenQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let mut bad_phone = false;
    if let Some(p) = q.phone.as_deref().filter(|p| !p.trim().is_empty()) {
        match E164::parse(p) {
            Ok(phone) => {
                return Ok(see_other(&format!(
                    "/conversations/{}",
                    url_part(phone.as_str())
                )));
            }
            Err(_) => bad_phone = true,
        }
    }
    let recent = app
        .store
        .conversations_page(&t.id, &q.page.seek(false, false))
        .await?;
    let total = app.store.conversation_count(&t.id).await?;
    let pager = Pager::new(&recent, &q.page, false, total, "/conversations");
    let recent = recent.items;
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
    // The page's phones' consent, read together (one page, never more).
    let now = app.clock.now();
    let phones: Vec<E164> = recent.iter().map(|c| c.phone.clone()).collect();
    let snaps = app.store.snapshots(&t.id, &phones, now).await?;
    let rows = recent
        .iter()
        .zip(snaps.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(c, snap)| RecentRow {
            url: url_part(c.phone.as_str()),
            phone: phone_display(&c.phone),
            name: c.customer_name.clone(),
            last_body: c.last_body.as_deref().map(preview_of).unwrap_or_default(),
            direction: match c.last_direction {
                Some(Direction::Inbound) => "From the customer",
                Some(Direction::Outbound) => "To the customer",
                None => "",
            },
            badges: snap.map(|s| Badges::of(&s.consent, now)),
            waiting: waiting(c),
            last: TimeEl::new(t, c.last_at),
        })
        .collect();
    Ok(render(&ConversationsPage {
        chrome: Chrome::new(&user, "Conversations", Section::Conversations),
        bad_phone,
        n_waiting,
        rows,
        pager,
    }))
}

struct RecentRow {
    url: String,
    phone: String,
    name: Option<String>,
    last_body: String,
    direction: &'static str,
    badges: Option<Badges>,
    waiting: bool,
    last: TimeEl,
}

/// The start of a message for a list: one line, at most 80 characters.
fn preview_of(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(79).collect::<String>())
    } else {
        line
    }
}

#[derive(Template)]
#[template(path = "activity/conversations.html")]
struct ConversationsPage<'a> {
    chrome: Chrome<'a>,
    bad_phone: bool,
    n_waiting: usize,
    rows: Vec<RecentRow>,
    pager: Pager,
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
        (Source::ReassignedNumber, _) => "because the number was reassigned".into(),
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

struct MessageItem {
    class: &'static str,
    who: String,
    when: TimeEl,
    /// Outbound only: its status, why, and until when it is held.
    status: Option<&'static str>,
    reason: Option<String>,
    deferred: Option<DeferredUntil>,
    body: String,
}

struct EventItem {
    line: String,
    when: TimeEl,
    evidence: EvidenceList,
}

/// One entry of a thread's timeline.
enum Item {
    Message(MessageItem),
    Event(EventItem),
}

struct Thread {
    shown: String,
    role: &'static str,
    items: Vec<Item>,
    /// The Reply box, on a thread of one of the tenant's current numbers.
    reply: Option<ReplyForm>,
}

/// A thread's Reply box: the number it goes from, what the gate lets through there, and
/// a key that makes a form sent twice one reply.
struct ReplyForm {
    index: usize,
    sender: String,
    rule: &'static str,
    key: String,
}

#[derive(Template)]
#[template(path = "activity/conversation.html")]
struct ConversationPage<'a> {
    chrome: Chrome<'a>,
    notice: Option<super::Notice>,
    phone_url: String,
    owners: Vec<(String, String)>,
    threads: Vec<Thread>,
    /// Links to the page of older messages and of newer ones, when there are any.
    older: Option<String>,
    newer: Option<String>,
}

fn message_item(t: &Tenant, m: &Message, author: Option<&str>) -> Item {
    let (class, who) = match m.direction {
        Direction::Inbound => ("in", "Customer"),
        Direction::Outbound if author.is_some() => ("out", "Reply"),
        Direction::Outbound => (
            "out",
            match m.kind {
                assent_store::MessageKind::AutoReply => "Automatic reply",
                assent_store::MessageKind::OptInRequest => "Opt-in request",
                assent_store::MessageKind::Campaign => "Campaign",
                assent_store::MessageKind::Api => "Sent through the API",
                assent_store::MessageKind::Customer => "Customer",
            },
        ),
    };
    let outbound = m.direction == Direction::Outbound;
    let who = match author {
        Some(email) if outbound => format!("{who} by {email}"),
        _ => who.to_string(),
    };
    Item::Message(MessageItem {
        class,
        who,
        when: TimeEl::new(t, m.created_at),
        status: outbound.then(|| words::message_status(m.status)),
        reason: m
            .reason
            .as_ref()
            .filter(|_| outbound)
            .map(|r| words::reason(r.as_str())),
        deferred: m
            .deferred_until()
            .filter(|_| outbound)
            .map(|until| DeferredUntil::new(t, &m.phone, until)),
        body: m.body.clone(),
    })
}

fn event_item(t: &Tenant, e: &LedgerEntry) -> Option<Item> {
    Some(Item::Event(EventItem {
        line: event_line(e)?,
        when: TimeEl::new(t, e.entry.occurred_at),
        evidence: EvidenceList::new(&e.entry.evidence),
    }))
}

/// A thread's entry with where it sorts: by time, then by position.
type Placed = (DateTime<Utc>, usize, Item);

/// A conversation's threads as they are gathered (a thread is the phone and one of the
/// tenant's numbers, keyed by that number), with where each inbound text sits, by its
/// provider id, so that the events it caused can sit right after it.
///
/// Items sort by time, then by position: an event caused by a text comes right after that
/// text (before the automatic reply stamped with the same instant), other events after
/// the messages of their instant.
#[derive(Default)]
struct Timeline {
    threads: BTreeMap<String, Vec<Placed>>,
    texts: BTreeMap<String, (String, DateTime<Utc>, usize)>,
}

impl Timeline {
    fn add_messages(
        &mut self,
        t: &Tenant,
        messages: &[Message],
        authors: &std::collections::HashMap<String, String>,
    ) {
        for (i, m) in messages.iter().enumerate() {
            let ours = match m.direction {
                Direction::Inbound => &m.to,
                Direction::Outbound => &m.from,
            };
            let thread = ours.as_str().to_string();
            if let Some(sid) = &m.provider_id
                && m.direction == Direction::Inbound
            {
                self.texts
                    .insert(sid.clone(), (thread.clone(), m.created_at, 2 * i + 1));
            }
            self.threads.entry(thread).or_default().push((
                m.created_at,
                2 * i,
                message_item(t, m, authors.get(&m.id).map(String::as_str)),
            ));
        }
    }

    /// Consent events: right after the text that caused one, else at the end of their
    /// instant in their channel's thread (or nowhere, without a number for it).
    fn add_events(&mut self, t: &Tenant, ledger: &[LedgerEntry]) {
        let channel_sender = |c: &str| match c {
            "marketing" => t.senders.marketing.as_ref(),
            _ => t.senders.transactional.as_ref(),
        };
        for e in ledger {
            let Some(item) = event_item(t, e) else {
                continue;
            };
            let caused_by = e
                .entry
                .evidence
                .message_sid
                .as_ref()
                .and_then(|sid| self.texts.get(sid));
            let (thread, at, position) = match caused_by {
                Some((s, at, position)) => (s.clone(), *at, *position),
                None => match channel_sender(e.entry.channel.as_str()) {
                    Some(s) => (s.as_str().to_string(), e.entry.occurred_at, usize::MAX),
                    None => continue,
                },
            };
            self.threads
                .entry(thread)
                .or_default()
                .push((at, position, item));
        }
    }

    fn into_threads(self, t: &Tenant) -> Vec<Thread> {
        self.threads
            .into_iter()
            .enumerate()
            .map(|(i, (sender, items))| thread_view(t, i, &sender, items))
            .collect()
    }
}

/// One thread as shown: the tenant's number and what it is, and its items in order.
fn thread_view(t: &Tenant, index: usize, sender: &str, mut items: Vec<Placed>) -> Thread {
    use assent_core::consent::Thread as Th;
    items.sort_by_key(|a| (a.0, a.1));
    let ours = E164::parse(sender).ok();
    let thread = ours.as_ref().and_then(|s| t.thread_of(s));
    let role = match thread {
        Some(Th::Marketing) => "marketing number",
        Some(Th::Transactional) => "transactional number",
        Some(Th::Shared) => "your number",
        None => "a former number",
    };
    let reply = thread.map(|th| ReplyForm {
        index,
        sender: sender.to_string(),
        rule: match th {
            Th::Marketing => {
                "From the marketing number a reply goes only to a phone that gave written consent (Opted in), with the opt-out footer."
            }
            _ => {
                "Sent as a job notification: it goes unless the customer stopped texts or turned Job Notifications off, and waits for their sending hours."
            }
        },
        key: service::new_id(),
    });
    Thread {
        shown: ours
            .as_ref()
            .map(phone_display)
            .unwrap_or_else(|| sender.to_string()),
        role,
        items: items.into_iter().map(|i| i.2).collect(),
        reply,
    }
}

/// Links to the customers holding the phone.
async fn owner_links(app: &AppState, t: &Tenant, phone: &E164) -> WebResult<Vec<(String, String)>> {
    let mut links = Vec::new();
    for id in app.store.customers_with_phone(&t.id, phone).await? {
        if let Some(c) = app.store.customer(&t.id, &id).await? {
            links.push((url_part(&c.id), c.name));
        }
    }
    Ok(links)
}

/// How many of a phone's messages one page of its conversation shows (the latest first;
/// "Older messages" and "Newer messages" page through the rest), and at most how many
/// consent events fall in that page's stretch of time.
const THREAD_MESSAGES: usize = 200;

/// Which page of a conversation: before one message's cursor (older) or after one
/// (newer); neither is the latest page.
#[derive(Deserialize, Default)]
pub struct ThreadQuery {
    before: Option<String>,
    after: Option<String>,
    notice: Option<String>,
}

pub async fn conversation(
    user: SignedIn,
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> WebResult<Response> {
    use assent_store::page::{LedgerFilter, MessageFilter, Seek};
    let t = &user.tenant;
    let phone = E164::parse(&phone).map_err(|_| WebError::not_found("This phone number"))?;
    let mut timeline = Timeline::default();
    let filter = MessageFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let key = |c: &Option<String>| c.as_deref().and_then(|c| parse_key(c, true));
    let seek = match (key(&q.after), key(&q.before)) {
        (Some(k), _) => Seek::after(Some(k), THREAD_MESSAGES),
        (None, Some(k)) => Seek::before(Some(k), THREAD_MESSAGES),
        (None, None) => Seek::before(None, THREAD_MESSAGES),
    };
    let page = app.store.messages_page(&t.id, &filter, &seek).await?;
    // The consent events of this page's stretch of time: from its first message (from the
    // start on the oldest page) to the first message of the next page (to now on the
    // latest), so each event is on exactly one page.
    let next_first = match page.next() {
        Some(k) => app
            .store
            .messages_page(&t.id, &filter, &Seek::after(Some(k.clone()), 1))
            .await?
            .items
            .first()
            .map(|m| m.created_at),
        None => None,
    };
    let from = page.prev().and(page.items.first()).map(|m| m.created_at);
    let events = app
        .store
        .ledger_page(
            &t.id,
            &LedgerFilter {
                phone: Some(phone.clone()),
                from,
                to: next_first,
            },
            &Seek::before(None, THREAD_MESSAGES),
        )
        .await?;
    // Who wrote the replies sent from here, by email (one read for the page's messages).
    let outbound: Vec<String> = page
        .items
        .iter()
        .filter(|m| m.direction == Direction::Outbound)
        .map(|m| m.id.clone())
        .collect();
    let written = app.store.authors(&t.id, &outbound).await?;
    let authors = if written.is_empty() {
        std::collections::HashMap::new()
    } else {
        let team = ledger::team(app.store.as_ref(), &t.id).await?;
        written
            .into_iter()
            .map(|(m, u)| (m, ledger::actor_name(&team, &u)))
            .collect()
    };
    timeline.add_messages(t, &page.items, &authors);
    timeline.add_events(t, &events.items);
    let threads = timeline.into_threads(t);
    let owners = owner_links(&app, t, &phone).await?;
    let title = format!("Conversation with {}", phone_display(&phone));
    let here = format!("/conversations/{}", url_part(phone.as_str()));
    Ok(render(&ConversationPage {
        chrome: Chrome::new(&user, &title, Section::Conversations),
        notice: q.notice.as_deref().and_then(super::Notice::of),
        phone_url: url_part(phone.as_str()),
        owners,
        threads,
        older: page
            .prev()
            .map(|k| format!("{here}?before={}", url_part(&key_cursor(k)))),
        newer: page
            .next()
            .map(|k| format!("{here}?after={}", url_part(&key_cursor(k)))),
    }))
}

#[derive(Deserialize, Default)]
pub struct LedgerQuery {
    phone: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

struct Filter {
    range: assent_store::page::LedgerFilter,
    errors: Vec<&'static str>,
}

fn read_filter(t: &Tenant, f: &LedgerQuery) -> Filter {
    let mut errors = Vec::new();
    let phone = f
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| {
            E164::parse(p)
                .map_err(|_| errors.push("The phone number could not be read."))
                .ok()
        });
    let mut bound = |field: &str, v: &Option<String>, error: &'static str| {
        ledger::bound(t, field, v.as_deref())
            .map_err(|_| errors.push(error))
            .ok()
            .flatten()
    };
    let from = bound("from", &f.from, "From must be a date.");
    let to = bound("to", &f.to, "To must be a date.");
    Filter {
        range: assent_store::page::LedgerFilter { phone, from, to },
        errors,
    }
}

pub async fn compliance(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<LedgerQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let f = read_filter(t, &q);
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
    // Newest first: one page of the ledger, and its size counted in the database.
    let (page, count) = if f.errors.is_empty() {
        let page = app
            .store
            .ledger_page(&t.id, &f.range, &q.page.seek(false, true))
            .await?;
        (page, app.store.ledger_count(&t.id, &f.range).await?)
    } else {
        (
            assent_store::page::Page::of(Vec::new(), &assent_store::page::Seek::first(1)),
            0,
        )
    };
    let base = if query.is_empty() {
        "/compliance".to_string()
    } else {
        format!("/compliance?{query}")
    };
    let pager = Pager::new(&page, &q.page, true, count, &base);
    // One table, filtered or not, in the words every page uses.
    let team = ledger::team(app.store.as_ref(), &t.id).await?;
    let rows = phone_ledger_rows(&user, &team, &page.items);
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    Ok(render(&CompliancePage {
        chrome: Chrome::new(&user, "Compliance", Section::Compliance),
        phone: v(&q.phone),
        from: v(&q.from),
        to: v(&q.to),
        errors: f.errors,
        export,
        count: super::pager::total_text(count),
        rows,
        pager,
    }))
}

struct LedgerRow {
    seq: i64,
    when: TimeEl,
    url: String,
    phone: String,
    channel: String,
    change: String,
    source: &'static str,
    actor: String,
    evidence: EvidenceList,
}

#[derive(Template)]
#[template(path = "activity/compliance.html")]
struct CompliancePage<'a> {
    chrome: Chrome<'a>,
    phone: String,
    from: String,
    to: String,
    errors: Vec<&'static str>,
    export: String,
    count: String,
    rows: Vec<LedgerRow>,
    pager: Pager,
}

fn phone_ledger_rows(
    user: &SignedIn,
    team: &ledger::Team,
    entries: &[LedgerEntry],
) -> Vec<LedgerRow> {
    entries
        .iter()
        .rev()
        .map(|e| {
            let x = &e.entry;
            LedgerRow {
                seq: e.seq,
                when: TimeEl::new(&user.tenant, x.occurred_at),
                url: url_part(x.phone.as_str()),
                phone: phone_display(&x.phone),
                channel: words::ledger_topic(x.channel.as_str()),
                change: words::ledger_change(
                    x.channel.as_str(),
                    x.old_state.as_str(),
                    x.new_state.as_str(),
                ),
                source: words::source(x.source),
                actor: super::customers::actor_label(user, team, x.actor.as_str()),
                evidence: EvidenceList::new(&x.evidence),
            }
        })
        .collect()
}

/// The Compliance page's export: the filtered ledger as CSV, streamed from a cursor (see
/// [`ledger::csv_stream`]).
pub async fn export_csv(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<LedgerQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let f = read_filter(t, &q);
    if let Some(e) = f.errors.first() {
        return Err(WebError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            message: (*e).to_string(),
        });
    }
    Ok(ledger::csv_response(&app, t, f.range))
}

/// How long a reply may be (the API's limit for a message).
const MAX_REPLY_CHARS: usize = 1530;

/// A thread's Reply: through the gate from the thread's number, a job notification on the
/// transactional (or shared) number, a marketing message on the marketing number (so only
/// to an opted-in phone). Recorded with the signed-in person as its author; a refusal comes
/// back as the gate's reason in words.
pub async fn reply(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    use assent_core::consent::Thread as Th;
    use assent_core::gate::Purpose;
    let user = &posted.user;
    let t = &user.tenant;
    let phone = E164::parse(&phone).map_err(|_| WebError::not_found("This phone number"))?;
    let back = |notice: &str| {
        see_other(&format!(
            "/conversations/{}?notice={notice}",
            url_part(phone.as_str())
        ))
    };
    let body = posted.field("body").trim();
    if body.is_empty() {
        return Ok(back("reply_empty"));
    }
    if body.chars().count() > MAX_REPLY_CHARS {
        return Ok(back("reply_too_long"));
    }
    let purpose = match E164::parse(posted.field("thread"))
        .ok()
        .and_then(|s| t.thread_of(&s))
    {
        Some(Th::Marketing) => Purpose::Marketing,
        Some(Th::Transactional | Th::Shared) => Purpose::JobNotification,
        None => return Ok(back("reply_no_sender")),
    };
    let key = Some(posted.field("key").trim())
        .filter(|k| !k.is_empty())
        .map(|k| format!("web-reply:{}:{k}", user.user.id));
    // The same form sent twice is one reply.
    if let Some(k) = &key
        && app
            .store
            .message_by_idempotency_key(&t.id, k)
            .await?
            .is_some()
    {
        return Ok(back("reply_sent"));
    }
    let sent = service::send_as(
        &app,
        t,
        &phone,
        purpose,
        body,
        assent_store::MessageKind::Api,
        key,
        service::WrittenAs {
            id: None,
            author: Some(&user.user.id),
        },
    )
    .await?;
    match sent {
        Ok(m) => {
            app.wake.notify_one();
            if m.status == assent_store::MessageStatus::Deferred {
                Ok(back("reply_held"))
            } else {
                Ok(back("reply_sent"))
            }
        }
        Err(reason) => {
            app.metrics.gate_refusals.increment(1);
            Ok(back(&format!("reply_refused_{}", reason.as_str())))
        }
    }
}
