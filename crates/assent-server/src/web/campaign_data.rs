//! What the transactional campaigns run on, a page at a time: estimates (each can be
//! marked sold or dismissed here, which stops its follow-ups), recurring services and
//! calls. The rules are [`crate::service::campaigns`]'s, shared with the API.

use assent_store::EstimateStatus;
use assent_store::shared::overview::CampaignData;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use askama::Template;

use super::pager::{PageParams, Pager};
use super::session::{Posted, SignedIn};
use super::{
    Chrome, Section, TimeEl, WebError, WebResult, phone_display, render, see_other, url_part,
};
use crate::AppState;
use crate::service;

/// Where each list sits among its siblings, for the tabs above it.
struct Tab {
    href: &'static str,
    label: &'static str,
    current: bool,
}

fn tabs(current: CampaignData) -> Vec<Tab> {
    [
        (CampaignData::Estimates, "/estimates", "Estimates"),
        (
            CampaignData::RecurringServices,
            "/recurring-services",
            "Recurring services",
        ),
        (CampaignData::Calls, "/calls", "Calls"),
    ]
    .into_iter()
    .map(|(d, href, label)| Tab {
        href,
        label,
        current: d == current,
    })
    .collect()
}

struct EstimateRow {
    id: String,
    customer_url: String,
    customer: String,
    number: String,
    amount: String,
    status: &'static str,
    unsold: bool,
    phone: String,
    created: TimeEl,
}

struct ServiceRow {
    customer_url: String,
    customer: String,
    name: String,
    due: String,
    created: TimeEl,
}

struct CallRow {
    url: String,
    from: String,
    to: String,
    missed: bool,
    at: TimeEl,
}

enum Rows {
    Estimates(Vec<EstimateRow>),
    Services(Vec<ServiceRow>),
    Calls(Vec<CallRow>),
}

#[derive(Template)]
#[template(path = "campaigns/data.html")]
struct DataPage<'a> {
    chrome: Chrome<'a>,
    tabs: Vec<Tab>,
    rows: Rows,
    notice: Option<&'static str>,
    pager: Pager,
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", super::thousands(c / 100), c % 100)
}

pub fn estimate_label(s: EstimateStatus) -> &'static str {
    match s {
        EstimateStatus::Unsold => "Unsold",
        EstimateStatus::Sold => "Sold",
        EstimateStatus::Dismissed => "Dismissed",
    }
}

fn customer(id: &str, name: Option<String>) -> (String, String) {
    (
        format!("/customers/{}", url_part(id)),
        name.unwrap_or_else(|| "(customer removed)".into()),
    )
}

#[derive(serde::Deserialize, Default)]
pub struct DataQuery {
    #[serde(flatten)]
    page: PageParams,
    notice: Option<String>,
}

async fn list(
    app: &AppState,
    user: &SignedIn,
    what: CampaignData,
    q: &DataQuery,
) -> WebResult<Response> {
    let t = &user.tenant;
    let seek = q.page.seek(false, false);
    let total = app.store.campaign_data_count(&t.id, what).await?;
    let (title, rows, pager) = match what {
        CampaignData::Estimates => {
            let page = app.store.estimates_page(&t.id, &seek).await?;
            let pager = Pager::new(&page, &q.page, false, total, "/estimates");
            let rows = page
                .items
                .into_iter()
                .map(|(e, name)| {
                    let (customer_url, customer) = customer(&e.customer_id, name);
                    EstimateRow {
                        id: url_part(&e.id),
                        customer_url,
                        customer,
                        number: e.number.unwrap_or_default(),
                        amount: dollars(e.amount_cents),
                        status: estimate_label(e.status),
                        unsold: e.status == EstimateStatus::Unsold,
                        phone: e
                            .phone
                            .as_ref()
                            .map(phone_display)
                            .unwrap_or_else(|| "Every phone".into()),
                        created: TimeEl::new(t, e.created_at),
                    }
                })
                .collect();
            ("Estimates", Rows::Estimates(rows), pager)
        }
        CampaignData::RecurringServices => {
            let page = app.store.recurring_services_page(&t.id, &seek).await?;
            let pager = Pager::new(&page, &q.page, false, total, "/recurring-services");
            let rows = page
                .items
                .into_iter()
                .map(|(r, name)| {
                    let (customer_url, customer) = customer(&r.customer_id, name);
                    ServiceRow {
                        customer_url,
                        customer,
                        name: r.name,
                        due: r.due_on.format("%b %-d, %Y").to_string(),
                        created: TimeEl::new(t, r.created_at),
                    }
                })
                .collect();
            ("Recurring services", Rows::Services(rows), pager)
        }
        CampaignData::Calls => {
            let page = app.store.calls_page(&t.id, &seek).await?;
            let pager = Pager::new(&page, &q.page, false, total, "/calls");
            let rows = page
                .items
                .into_iter()
                .map(|c| CallRow {
                    url: url_part(c.from.as_str()),
                    from: phone_display(&c.from),
                    to: phone_display(&c.to),
                    missed: c.missed,
                    at: TimeEl::new(t, c.at),
                })
                .collect();
            ("Calls", Rows::Calls(rows), pager)
        }
    };
    let notice = match q.notice.as_deref() {
        Some("sold") => Some("Marked sold: its follow-up texts not yet sent are withdrawn."),
        Some("dismissed") => Some("Dismissed: its follow-up texts not yet sent are withdrawn."),
        Some("unsold") => Some("Marked unsold again: follow-ups still due will go."),
        _ => None,
    };
    Ok(render(&DataPage {
        chrome: Chrome::new(user, title, Section::Campaigns),
        tabs: tabs(what),
        rows,
        notice,
        pager,
    }))
}

pub async fn estimates(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<DataQuery>,
) -> WebResult<Response> {
    list(&app, &user, CampaignData::Estimates, &q).await
}

pub async fn recurring_services(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<DataQuery>,
) -> WebResult<Response> {
    list(&app, &user, CampaignData::RecurringServices, &q).await
}

pub async fn calls(
    user: SignedIn,
    State(app): State<AppState>,
    Query(q): Query<DataQuery>,
) -> WebResult<Response> {
    list(&app, &user, CampaignData::Calls, &q).await
}

/// **Mark sold**, **Dismiss** (or **Mark unsold**) on one estimate.
pub async fn set_estimate_status(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let status = posted.field("status");
    match service::campaigns::set_estimate_status(&app, &posted.user.tenant, &id, status).await {
        Ok(e) => Ok(see_other(&format!(
            "/estimates?notice={}",
            e.status.as_str()
        ))),
        Err(service::Error::NotFound(_)) => Err(WebError::not_found("This estimate")),
        Err(e) => Err(e.into()),
    }
}
