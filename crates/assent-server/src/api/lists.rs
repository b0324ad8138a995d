//! Every list endpoint: one keyset page a request (`limit` 1–1000, default 100; `after`
//! the previous page's `next`), answered as `{"<things>": […], "next": cursor | null}`.

use std::collections::BTreeMap;

use assent_core::phone::E164;
use assent_store::page::{LedgerFilter, MessageFilter, Page, Seek};
use assent_store::{Direction, MessageKind, MessageStatus, SendStatus};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiQuery;
use super::consent::event_json;
use super::customers::customer_json;
use super::messages::message_json;
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service::{ledger, pages};

/// `limit` and `after`, kept as text so a bad value is refused naming its field.
#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

impl PageQuery {
    fn seek(&self) -> ApiResult<Seek> {
        Ok(pages::api_seek(
            self.limit.as_deref(),
            self.after.as_deref(),
            false,
        )?)
    }
}

/// `{"<name>": […], "next": …}`.
fn answer<T>(name: &str, page: &Page<T>, item: impl Fn(&T) -> Value) -> Json<Value> {
    let items: Vec<Value> = page.items.iter().map(item).collect();
    let mut out = serde_json::Map::new();
    out.insert(name.to_string(), Value::Array(items));
    out.insert("next".into(), json!(page.next().map(pages::key_cursor)));
    Json(Value::Object(out))
}

#[derive(Deserialize)]
pub struct CustomerQuery {
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /customers?q=`: newest first; `q` searches names and phone digits as the web
/// app's search does.
pub async fn customers(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> ApiResult<Json<Value>> {
    let seek = q.page.seek()?;
    let page = app
        .store
        .customers_page(
            &t.id,
            &assent_store::page::CustomerFilter::search(q.q.as_deref().unwrap_or("")),
            &seek,
        )
        .await?;
    Ok(answer("customers", &page, customer_json))
}

/// `GET /conversations`: phones with messages, the most recently active first.
pub async fn conversations(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = app.store.conversations_page(&t.id, &q.seek()?).await?;
    Ok(answer(
        "conversations",
        &page,
        |c| json!({"phone": c.phone, "last_at": c.last_at, "last_inbound": c.last_inbound}),
    ))
}

#[derive(Deserialize)]
pub struct MessageQuery {
    phone: Option<String>,
    status: Option<String>,
    direction: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// A filter's value: empty is none, anything else one of `T`'s texts.
fn one_of<T: std::str::FromStr>(
    field: &str,
    v: Option<&str>,
    texts: &[&str],
) -> ApiResult<Option<T>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::field(field, format!("must be one of {}", texts.join(", ")))),
    }
}

fn message_filter(q: &MessageQuery) -> ApiResult<MessageFilter> {
    let phone = match q.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(E164::parse(p).map_err(|e| ApiError::field("phone", e.to_string()))?),
        None => None,
    };
    Ok(MessageFilter {
        phone,
        status: one_of::<MessageStatus>("status", q.status.as_deref(), &MessageStatus::TEXTS)?,
        direction: one_of::<Direction>("direction", q.direction.as_deref(), &Direction::TEXTS)?,
        kind: one_of::<MessageKind>("kind", q.kind.as_deref(), &MessageKind::TEXTS)?,
    })
}

/// `GET /messages?phone=`: a phone's messages oldest first; without `phone`, the tenant's
/// newest first. `status`, `direction` and `kind` filter either.
pub async fn messages(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Json<Value>> {
    let filter = message_filter(&q)?;
    let seek = pages::api_seek(q.limit.as_deref(), q.after.as_deref(), true)?;
    let page = app.store.messages_page(&t.id, &filter, &seek).await?;
    Ok(answer("messages", &page, message_json))
}

/// `GET /deliveries`: outbound messages newest first with what the carrier reported
/// (`status`, `reason`, `provider_id`); `status` and `phone` filter.
pub async fn deliveries(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Json<Value>> {
    let mut filter = message_filter(&q)?;
    filter.direction = Some(Direction::Outbound);
    let seek = pages::api_seek(q.limit.as_deref(), q.after.as_deref(), true)?;
    let page = app.store.messages_page(&t.id, &filter, &seek).await?;
    Ok(answer("deliveries", &page, |m| {
        json!({
            "message_id": m.id,
            "to": m.to,
            "kind": m.kind,
            "status": m.status.as_str(),
            "reason": m.reason,
            "provider_id": m.provider_id,
            "segments": m.segments,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
        })
    }))
}

#[derive(Deserialize)]
pub struct LedgerQuery {
    phone: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// `GET /consent/ledger?phone=&from=&to=`: ledger entries oldest first (dates as the
/// export reads them).
pub async fn ledger(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> ApiResult<Json<Value>> {
    let phone = match q.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(E164::parse(p).map_err(|e| ApiError::field("phone", e.to_string()))?),
        None => None,
    };
    let filter = LedgerFilter {
        phone,
        from: ledger::bound(&t, "from", q.from.as_deref())?,
        to: ledger::bound(&t, "to", q.to.as_deref())?,
    };
    let page = app
        .store
        .ledger_page(&t.id, &filter, &q.page.seek()?)
        .await?;
    Ok(answer("entries", &page, |e| {
        let mut v = event_json(e);
        v["phone"] = json!(e.entry.phone);
        v
    }))
}

/// `GET /campaigns`: newest first, each with its counts (grouped in the database, a page
/// at a time).
pub async fn campaigns(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = app.store.campaigns_page(&t.id, &q.seek()?).await?;
    Ok(answer("campaigns", &page, |(c, n)| {
        // Every status is counted, nobody's as 0.
        let mut counts: BTreeMap<String, u64> = SendStatus::TEXTS
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        counts.extend(n.by_status.iter().map(|(s, k)| (s.to_string(), *k)));
        let mut counts = json!(counts);
        counts["opted_out_after"] = json!(n.opted_out_after);
        json!({
            "id": c.id,
            "name": c.name,
            "type": c.kind,
            "status": c.status,
            "send_at": c.send_at,
            "created_at": c.created_at,
            "recipients": n.recipients,
            "counts": counts,
        })
    }))
}

/// `GET /reviews`: oldest first, decided ones included, each with how long it has waited.
pub async fn reviews(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let now = app.clock.now();
    let page = app.store.reviews_page(&t.id, &q.seek()?).await?;
    Ok(answer("reviews", &page, |r| {
        let mut v = json!(r);
        v["age_seconds"] = json!((now - r.created_at).num_seconds().max(0));
        v
    }))
}
