//! The review queue: texts that mention stopping without plainly asking to stop ("we have
//! to stop this leak"). Assent never guesses; a person reads each one and decides, and the
//! decision goes in the ledger with the person as the actor (the same service function
//! as `POST /api/v1/reviews/{id}`).

use assent_core::consent::Thread;
use assent_store::{Review, ReviewDecision};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use askama::Template;
use assent_store::Tenant;

use super::pager::{PageParams, Pager};
use super::session::{Posted, SignedIn};
use super::{
    Chrome, Section, TimeEl, WebError, WebResult, phone_display, render, see_other, url_part,
};
use crate::AppState;
use crate::error::Code;
use crate::service;

fn thread_label(t: Thread) -> &'static str {
    match t {
        Thread::Transactional => "transactional number",
        Thread::Marketing => "marketing number",
        Thread::Shared => "your number",
    }
}

/// Splits the text around the word that sent it here, to highlight that word.
fn highlighted(text: &str, word: &str) -> (String, Option<String>, String) {
    let lower = text.to_lowercase();
    match lower.find(&word.to_lowercase()) {
        Some(i)
            if !word.is_empty()
                && lower.len() == text.len()
                && text.is_char_boundary(i)
                && text.is_char_boundary(i + word.len()) =>
        {
            (
                text[..i].to_string(),
                Some(text[i..i + word.len()].to_string()),
                text[i + word.len()..].to_string(),
            )
        }
        _ => (text.to_string(), None, String::new()),
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

/// How long a text has waited, and until when it may wait.
enum Deadline {
    By { age: String, when: String },
    Open(String),
    Decided,
}

enum Decided {
    Stop(Option<TimeEl>),
    NotStop(Option<TimeEl>),
    Open,
}

struct Item {
    id: String,
    url: String,
    phone: String,
    thread: &'static str,
    when: TimeEl,
    deadline: Deadline,
    before: String,
    mark: Option<String>,
    after: String,
    decided: Decided,
}

fn item(t: &Tenant, r: &Review, now: chrono::DateTime<chrono::Utc>) -> Item {
    let deadline = match (r.decision.as_ref(), r.deadline) {
        (None, Some(d)) => Deadline::By {
            age: age(r.created_at, now),
            when: super::when(t, d),
        },
        (None, None) => Deadline::Open(age(r.created_at, now)),
        _ => Deadline::Decided,
    };
    let at = r.decided_at.map(|d| TimeEl::new(t, d));
    let decided = match r.decision {
        Some(ReviewDecision::OptOut) => Decided::Stop(at),
        Some(_) => Decided::NotStop(at),
        None => Decided::Open,
    };
    let (before, mark, after) = highlighted(&r.text, &r.word);
    Item {
        id: url_part(&r.id),
        url: url_part(r.phone.as_str()),
        phone: phone_display(&r.phone),
        thread: thread_label(r.thread),
        when: TimeEl::new(t, r.created_at),
        deadline,
        before,
        mark,
        after,
        decided,
    }
}

#[derive(Template)]
#[template(path = "reviews.html")]
struct ReviewsPage<'a> {
    chrome: Chrome<'a>,
    /// A decision just recorded: whether it was a STOP.
    notice: Option<bool>,
    days: u32,
    /// How many of the tenant's reviews are still to decide ("10,000+" past the cap), on
    /// every page; `open` is only this page's.
    to_decide: String,
    open: Vec<Item>,
    done: Vec<Item>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct ReviewQuery {
    notice: Option<String>,
    #[serde(flatten)]
    page: PageParams,
}

pub async fn reviews(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<ReviewQuery>,
) -> WebResult<Response> {
    let t = &user.tenant;
    let page = app
        .store
        .reviews_page(&t.id, &q.page.seek(false, false))
        .await?;
    let total = app.store.review_count(&t.id).await?;
    let to_decide = super::pager::total_text(app.store.open_review_count(&t.id).await?);
    let pager = Pager::new(&page, &q.page, false, total, "/reviews");
    let now = app.clock.now();
    let (open, done): (Vec<&Review>, Vec<&Review>) =
        page.items.iter().partition(|r| r.decision.is_none());
    let notice = match q.notice.as_deref() {
        Some("opt_out") => Some(true),
        Some("not_opt_out") => Some(false),
        _ => None,
    };
    Ok(render(&ReviewsPage {
        chrome: Chrome::new(&user, "Review", Section::Review),
        notice,
        days: user.tenant.settings.review_deadline_days,
        to_decide,
        open: open.iter().map(|r| item(t, r, now)).collect(),
        done: done.iter().rev().map(|r| item(t, r, now)).collect(),
        pager,
    }))
}

pub async fn decide(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    let decision = posted.field("decision");
    match service::reviews::decide(&app, &user.tenant, &id, decision, &user.user.id).await {
        Ok(_) => Ok(see_other(if decision == "opt_out" {
            "/reviews?notice=opt_out"
        } else {
            "/reviews?notice=not_opt_out"
        })),
        Err(service::Error::Invalid { .. }) => Err(WebError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            message: "Choose one of the two answers.".into(),
        }),
        Err(service::Error::NotFound(_)) => Err(WebError::not_found("This review")),
        // Someone decided already (another tab, a colleague, the deadline): the first
        // decision stands; show where it stands.
        Err(service::Error::Refused {
            code: Code::AlreadyDecided,
            ..
        }) => Ok(see_other("/reviews")),
        Err(e) => Err(e.into()),
    }
}
