//! Reading consent and its evidence, exporting the ledger, the review queue, and the
//! opt-in link tools.

use assent_core::keyword::LINK_PHRASE;
use assent_core::phone::E164;
use assent_store::{LedgerEntry, Tenant};
use axum::Json;
use axum::extract::{Path, State};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiJson, ApiQuery};
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, ledger, opt_in_tools};

pub fn event_json(e: &LedgerEntry) -> Value {
    let x = &e.entry;
    json!({
        "seq": e.seq,
        "channel": x.channel,
        "old_state": x.old_state,
        "new_state": x.new_state,
        "source": x.source.as_str(),
        "actor": x.actor,
        "occurred_at": x.occurred_at,
        "evidence": x.evidence,
        "chain_seq": e.chain_seq,
        "hash": e.hash,
    })
}

pub async fn get(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(phone): Path<String>,
) -> ApiResult<Json<Value>> {
    let phone = E164::parse(&phone).map_err(|e| ApiError::field("phone", e.to_string()))?;
    consent_json(&app, &t, &phone).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutBody {
    scope: String,
    method: String,
    note: Option<String>,
}

/// A revocation that came another way (a call, an email, in person, a letter).
pub async fn record_opt_out(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiJson(b): ApiJson<OptOutBody>,
) -> ApiResult<Json<Value>> {
    let phone = E164::parse(&phone).map_err(|e| ApiError::field("phone", e.to_string()))?;
    let recorded = service::RecordedOptOut::parse(&b.scope, &b.method, b.note.as_deref())?;
    service::record_opt_out(
        &app,
        &t,
        &phone,
        &recorded,
        service::Who {
            source: assent_core::consent::Source::Api,
            actor: "api",
        },
    )
    .await?;
    consent_json(&app, &t, &phone).await
}

/// Earlier opt-outs from another system, as CSV.
pub async fn import_consent(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    req: axum::extract::Request,
) -> ApiResult<Json<Value>> {
    let csv = crate::import::csv_body(&app, req).await?;
    Ok(Json(json!(
        crate::import::import_consent(&app, &t, csv).await?
    )))
}

/// How many of a phone's latest ledger entries `GET /consent/{e164}` shows; with more,
/// `events_truncated` is true and `GET /consent/ledger?phone=` pages through them all.
pub const CONSENT_EVENTS: usize = 100;

/// A phone's consent, toggles and its latest ledger entries, as `GET /consent/{e164}`
/// answers.
pub async fn consent_json(app: &AppState, t: &Tenant, phone: &E164) -> ApiResult<Json<Value>> {
    let phone = phone.clone();
    let now = app.clock.now();
    let snap = app.store.snapshot(&t.id, &phone, now).await?;
    // The latest entries (one page, in commit order); older ones through the ledger list.
    let latest = app
        .store
        .ledger_page(
            &t.id,
            &assent_store::page::LedgerFilter {
                phone: Some(phone.clone()),
                ..Default::default()
            },
            &assent_store::page::Seek::before(None, CONSENT_EVENTS),
        )
        .await?;
    let older = latest.prev().is_some();
    let events = latest.items;
    let marketing = service::marketing_status(&snap.consent, now).as_str();
    Ok(Json(json!({
        "phone": phone,
        "transactional": {"opted_out": snap.consent.transactional_opted_out},
        "marketing": {"status": marketing, "pending_since": snap.consent.pending_since},
        "language": snap.consent.language,
        "possibly_reassigned_since": snap.consent.possibly_reassigned,
        "under_review_until": snap.consent.review_hold_until(now),
        "toggles": {
            "on_a_record": snap.toggles.on_a_record,
            "job_notifications": snap.toggles.job_notifications,
            "marketing_updates": snap.toggles.marketing_updates,
        },
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "events_truncated": older,
    })))
}

#[derive(Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /consent/export.csv?from=&to=`: streamed from a cursor (see
/// [`ledger::csv_stream`]).
pub async fn export_csv(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    ApiQuery(r): ApiQuery<Range>,
) -> ApiResult<axum::response::Response> {
    let filter = assent_store::page::LedgerFilter {
        phone: None,
        from: ledger::bound(&t, "from", r.from.as_deref())?,
        to: ledger::bound(&t, "to", r.to.as_deref())?,
    };
    Ok(ledger::csv_response(&app, &t, filter))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    decision: String,
}

pub async fn decide_review(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReviewDecision>,
) -> ApiResult<Json<Value>> {
    let review = service::reviews::decide(&app, &t, &id, &b.decision, "api").await?;
    Ok(Json(json!(review)))
}

pub async fn opt_in_link(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let regs = app.store.registrations(&t.id).await?;
    let tools = opt_in_tools::for_tenant(&t, &regs, &app.config.public_url)?;
    Ok(Json(json!({
        "sms_uri": tools.sms_uri,
        "body": LINK_PHRASE,
        "qr_svg": opt_in_tools::qr_svg(&tools.sms_uri),
        "html_snippet": tools.html_snippet,
        "form_url": tools.form_url,
        "embed_code": tools.embed_code,
        "disclosure": tools.disclosure,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    format: Option<String>,
}

/// `GET /consent/{e164}/proof`: the dispute bundle (see [`service::proof`]), as JSON or,
/// with `?format=html`, as the printable page.
pub async fn proof(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Path(phone): Path<String>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let phone = E164::parse(&phone).map_err(|e| ApiError::field("phone", e.to_string()))?;
    let html = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("html") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or html")),
    };
    let bundle = service::proof::bundle(&app, &t, &phone).await?;
    Ok(if html {
        crate::web::proof::page(&t, &bundle)
    } else {
        Json(json!(bundle)).into_response()
    })
}
