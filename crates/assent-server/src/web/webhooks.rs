//! `/settings/webhooks`: the tenant's outbound-event endpoints (add, delete) and each one's
//! delivery log, a page at a time, with **Resend** (CONTRACT.md "Outbound events"). The rules
//! live in [`crate::service::events`]; the API's `/webhook-endpoints` calls the same.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::session::{Posted, SignedIn};
use super::{Chrome, Section, TimeEl, WebResult, render, see_other};
use crate::AppState;
use crate::service::{self, events::EVENT_TYPES};

/// Endpoints and deliveries a page shows.
const PAGE: u32 = 50;

pub struct EndpointView {
    id: String,
    url: String,
    events: String,
    created: TimeEl,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct EndpointsPage<'a> {
    chrome: Chrome<'a>,
    endpoints: Vec<EndpointView>,
    event_types: &'static [&'static str],
    error: Option<String>,
    url: String,
    /// The secret of the endpoint just added (shown once).
    secret: Option<String>,
}

async fn endpoints_page(
    app: &AppState,
    user: &SignedIn,
    error: Option<String>,
    url: String,
    secret: Option<String>,
) -> WebResult<Response> {
    let endpoints = app
        .store
        .webhook_endpoints(&user.tenant.id, None, PAGE)
        .await?
        .into_iter()
        .map(|e| EndpointView {
            created: TimeEl::new(&user.tenant, e.created_at),
            events: e.events.join(", "),
            id: e.id,
            url: e.url,
        })
        .collect();
    Ok(render(&EndpointsPage {
        chrome: Chrome::new(user, "Outbound events", Section::Settings),
        endpoints,
        event_types: &EVENT_TYPES,
        error,
        url,
        secret,
    }))
}

pub async fn show(State(app): State<AppState>, user: SignedIn) -> WebResult<Response> {
    endpoints_page(&app, &user, None, String::new(), None).await
}

/// **Add endpoint**.
pub async fn add(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let url = posted.field("url").to_string();
    let events: Vec<String> = EVENT_TYPES
        .iter()
        .filter(|e| posted.ticked(&format!("event_{e}")))
        .map(|e| e.to_string())
        .collect();
    match service::events::create_endpoint(&app, &user.tenant, &url, &events).await {
        Ok(e) => endpoints_page(&app, user, None, String::new(), Some(e.secret)).await,
        Err(service::Error::Invalid { field, message }) => {
            let mut res =
                endpoints_page(&app, user, Some(format!("{field}: {message}")), url, None).await?;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

/// **Delete**.
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let now = app.clock.now();
    app.store
        .delete_webhook_endpoint(&posted.user.tenant.id, &id, now)
        .await?;
    Ok(see_other("/settings/webhooks"))
}

pub struct DeliveryView {
    id: i64,
    event_id: String,
    event_type: String,
    status: &'static str,
    attempts: u32,
    last_error: String,
    created: TimeEl,
}

#[derive(Template)]
#[template(path = "webhook_deliveries.html")]
struct DeliveriesPage<'a> {
    chrome: Chrome<'a>,
    id: String,
    url: String,
    deliveries: Vec<DeliveryView>,
    /// The cursor of the next (older) page.
    older: Option<i64>,
    resent: bool,
    /// How long delivered and failed deliveries stay in the log, in days.
    kept_days: i64,
}

#[derive(Deserialize)]
pub struct LogQuery {
    before: Option<i64>,
    resent: Option<String>,
}

/// An endpoint's delivery log, newest first, 50 a page.
pub async fn deliveries(
    State(app): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> WebResult<Response> {
    let endpoint = app
        .store
        .webhook_endpoint(&user.tenant.id, &id)
        .await?
        .ok_or_else(|| super::WebError::not_found("endpoint"))?;
    let mut rows = app
        .store
        .deliveries(&user.tenant.id, &id, q.before, PAGE + 1)
        .await?;
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let older = more.then(|| rows.last().map(|d| d.id)).flatten();
    let deliveries = rows
        .into_iter()
        .map(|d| DeliveryView {
            status: if d.delivered_at.is_some() {
                "Delivered"
            } else if d.given_up_at.is_some() {
                "Failed"
            } else {
                "Pending"
            },
            created: TimeEl::new(&user.tenant, d.created_at),
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            attempts: d.attempts,
            last_error: d.last_error.unwrap_or_default(),
        })
        .collect();
    Ok(render(&DeliveriesPage {
        chrome: Chrome::new(&user, "Outbound events", Section::Settings),
        id: endpoint.id,
        url: endpoint.url,
        deliveries,
        older,
        resent: q.resent.is_some(),
        kept_days: app.outbox_retention.num_days(),
    }))
}

/// **Resend**: the delivery goes again (same event id), from now.
pub async fn resend(
    State(app): State<AppState>,
    Path((id, delivery)): Path<(String, i64)>,
    posted: Posted,
) -> WebResult<Response> {
    let now = app.clock.now();
    if !app
        .store
        .resend_delivery(&posted.user.tenant.id, &id, delivery, now)
        .await?
    {
        return Err(super::WebError::not_found("delivery"));
    }
    app.wake.notify_one();
    Ok(see_other(&format!(
        "/settings/webhooks/{}?resent=1",
        super::url_part(&id)
    )))
}
