//! The review queue: texts that mention stopping without plainly asking to stop ("we have
//! to stop this leak"). Assent never guesses; a person reads each one and decides, and the
//! decision goes in the ledger with the person as the actor (the same service function
//! as `POST /api/v1/reviews/{id}`).

use assent_core::consent::Thread;
use assent_store::Review;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, SignedIn, csrf_field};
use super::{Page, Section, WebError, WebResult, esc, phone_display, see_other, time_el, url_part};
use crate::AppState;
use crate::service;

fn thread_label(t: Thread) -> &'static str {
    match t {
        Thread::Transactional => "transactional number",
        Thread::Marketing => "marketing number",
        Thread::Shared => "your number",
    }
}

/// Highlights the word that sent the text here.
fn highlighted(text: &str, word: &str) -> String {
    let lower = text.to_lowercase();
    match lower.find(&word.to_lowercase()) {
        Some(i)
            if !word.is_empty()
                && lower.len() == text.len()
                && text.is_char_boundary(i)
                && text.is_char_boundary(i + word.len()) =>
        {
            format!(
                "{}<mark>{}</mark>{}",
                esc(&text[..i]),
                esc(&text[i..i + word.len()]),
                esc(&text[i + word.len()..])
            )
        }
        _ => esc(text),
    }
}

/// How long ago, in words a person reads at a glance ("3 h", "2 days").
fn age(since: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let d = now - since;
    if d.num_hours() < 1 {
        format!("{} min", d.num_minutes().max(0))
    } else if d.num_hours() < 48 {
        format!("{} h", d.num_hours())
    } else {
        format!("{} days", d.num_days())
    }
}

fn item(user: &SignedIn, r: &Review, now: chrono::DateTime<chrono::Utc>) -> String {
    let t = &user.tenant;
    let deadline = match (r.decision.as_ref(), r.deadline) {
        (None, Some(d)) => format!(
            " · waiting {age} · <span data-testid=\"deadline\">treated as STOP if undecided by {when}</span>",
            age = age(r.created_at, now),
            when = super::when(t, d),
        ),
        (None, None) => format!(" · waiting {}", age(r.created_at, now)),
        _ => String::new(),
    };
    let decided = match r.decision.as_deref() {
        Some("opt_out") => format!(
            "<p><span class=\"badge bad\">Treated as STOP</span> {}</p>",
            r.decided_at.map(|d| time_el(t, d)).unwrap_or_default()
        ),
        Some(_) => format!(
            "<p><span class=\"badge none\">Not a request to stop</span> {}</p>",
            r.decided_at.map(|d| time_el(t, d)).unwrap_or_default()
        ),
        None => format!(
            "<form method=\"post\" action=\"/reviews/{id}\" class=\"row wrap\">{csrf}\
<button type=\"submit\" name=\"decision\" value=\"opt_out\" class=\"primary\">Treat as STOP</button>\
<button type=\"submit\" name=\"decision\" value=\"not_opt_out\">Not a request to stop</button></form>",
            id = esc(&url_part(&r.id)),
            csrf = csrf_field(user),
        ),
    };
    format!(
        "<li class=\"card\"><p class=\"meta\"><a href=\"/conversations/{url}\">{phone}</a> to your {thread} · {when}{deadline}</p>\
<blockquote class=\"text\">{text}</blockquote>{decided}</li>",
        url = esc(&url_part(r.phone.as_str())),
        phone = esc(&phone_display(&r.phone)),
        thread = thread_label(r.thread),
        when = time_el(t, r.created_at),
        text = highlighted(&r.text, &r.word),
    )
}

#[derive(Deserialize)]
pub struct ReviewQuery {
    notice: Option<String>,
}

pub async fn reviews(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<ReviewQuery>,
) -> WebResult<Response> {
    let all = app.store.reviews(&user.tenant.id).await?;
    let now = app.clock.now();
    let (open, done): (Vec<&Review>, Vec<&Review>) = all.iter().partition(|r| r.decision.is_none());
    let open_html = if open.is_empty() {
        "<p>Nothing to review.</p>".to_string()
    } else {
        format!(
            "<ol class=\"plain reviews\">{}</ol>",
            open.iter().map(|r| item(&user, r, now)).collect::<String>()
        )
    };
    let done_html = if done.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Decided</h2><ol class=\"plain reviews\">{}</ol>",
            done.iter()
                .rev()
                .map(|r| item(&user, r, now))
                .collect::<String>()
        )
    };
    let notice = match q.notice.as_deref() {
        Some("opt_out") => {
            "<p class=\"notice ok\" role=\"status\">Recorded: the customer is no longer texted on that number, and was sent the opt-out confirmation.</p>"
        }
        Some("not_opt_out") => {
            "<p class=\"notice ok\" role=\"status\">Recorded: nothing changes for this customer.</p>"
        }
        _ => "",
    };
    let body = format!(
        "<h1>Review</h1>{notice}<p>Texts that mention stopping but do not plainly ask to stop. Assent does not guess: read each one and decide. Your decision is kept in the consent ledger.</p>\
<p class=\"hint\">While a text waits here, only job notifications, missed-call text-backs and automatic replies go to that number. One left undecided for {days} business days is treated as STOP, as the FCC expects revocations to be honoured promptly (change this in <a href=\"/settings\">Settings</a>).</p>\
<h2>To decide ({n})</h2>{open_html}{done_html}",
        days = user.tenant.settings.review_deadline_days,
        n = open.len(),
    );
    Ok(Page {
        title: "Review",
        section: Section::Review,
        body,
    }
    .render(&user))
}

pub async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    let opt_out = match posted.field("decision") {
        "opt_out" => true,
        "not_opt_out" => false,
        _ => {
            return Err(WebError {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                message: "Choose one of the two answers.".into(),
            });
        }
    };
    let review = app
        .store
        .review(&user.tenant.id, &id)
        .await?
        .ok_or_else(|| WebError::not_found("This review"))?;
    if review.decision.is_some() {
        // Someone decided already (another tab, a colleague): show where it stands.
        return Ok(see_other("/reviews"));
    }
    match service::decide_review(&app, &user.tenant, &review, opt_out, &user.user.id).await {
        // Decided meanwhile (a colleague, the deadline): the first decision stands.
        Err(assent_store::StoreError::Conflict(_)) => return Ok(see_other("/reviews")),
        other => other?,
    }
    app.wake.notify_one();
    Ok(see_other(if opt_out {
        "/reviews?notice=opt_out"
    } else {
        "/reviews?notice=not_opt_out"
    }))
}
