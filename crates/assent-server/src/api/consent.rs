//! Reading consent and its evidence, exporting the ledger, the review queue, and the
//! opt-in link tools.

use assent_core::compose;
use assent_core::keyword::LINK_PHRASE;
use assent_core::phone::E164;
use assent_store::{LedgerEntry, Tenant};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiJson;
use crate::AppState;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiResult};
use crate::service;

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
    let scope = b
        .scope
        .parse::<assent_core::consent::Scope>()
        .ok()
        .ok_or_else(|| ApiError::field("scope", "must be marketing or all"))?;
    let method = b
        .method
        .parse::<service::OptOutMethod>()
        .ok()
        .ok_or_else(|| {
            ApiError::field(
                "method",
                "must be phone_call, email, in_person, letter or other",
            )
        })?;
    let note = b.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::field("note", "must be at most 1,000 characters"));
    }
    service::record_opt_out(
        &app,
        &t,
        &phone,
        &service::RecordedOptOut {
            scope,
            method,
            note,
        },
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
    body: String,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        crate::import::import_consent(&app, &t, &body).await?
    )))
}

/// A phone's consent, toggles and ledger, as `GET /consent/{e164}` answers.
pub async fn consent_json(app: &AppState, t: &Tenant, phone: &E164) -> ApiResult<Json<Value>> {
    let phone = phone.clone();
    let now = app.clock.now();
    let snap = app.store.snapshot(&t.id, &phone, now).await?;
    let events = app.store.ledger_for_phone(&t.id, &phone).await?;
    let marketing = if snap.consent.pending_expired(now) {
        "none"
    } else {
        snap.consent.marketing.as_str()
    };
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
    })))
}

#[derive(Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// A bound of the export: an RFC 3339 time as given, or a date read as whole days in the
/// tenant's zone (`to=2026-01-31` includes the 31st), as the web's ledger filter reads it.
fn parse_time(t: &Tenant, field: &str, v: &Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(s) = v.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Some(d) = service::day_start(t, s, field == "to") {
        return Ok(Some(d));
    }
    Err(ApiError::field(
        field,
        "must be a date (YYYY-MM-DD) or an RFC 3339 time",
    ))
}

/// Quotes a CSV cell; free text that a spreadsheet would run as a formula is defused.
fn cell(s: &str, free_text: bool) -> String {
    let s = if free_text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn ledger_csv(entries: &[LedgerEntry]) -> String {
    let mut out = String::from(
        "seq,occurred_at,phone,channel,old_state,new_state,source,actor,message_sid,text,rule,ip,user_agent,page,disclosure\n",
    );
    for e in entries {
        let x = &e.entry;
        let ev = &x.evidence;
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let row = [
            cell(&e.seq.to_string(), false),
            cell(
                &x.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                false,
            ),
            cell(x.phone.as_str(), false),
            cell(x.channel.as_str(), false),
            cell(x.old_state.as_str(), false),
            cell(x.new_state.as_str(), false),
            cell(x.source.as_str(), false),
            cell(&x.actor, true),
            cell(&o(&ev.message_sid), true),
            cell(&o(&ev.text), true),
            cell(&o(&ev.rule), true),
            cell(&o(&ev.ip), true),
            cell(&o(&ev.user_agent), true),
            cell(&o(&ev.page), true),
            cell(&o(&ev.disclosure), true),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

pub async fn export_csv(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
    Query(r): Query<Range>,
) -> ApiResult<impl IntoResponse> {
    let from = parse_time(&t, "from", &r.from)?;
    let to = parse_time(&t, "to", &r.to)?;
    let entries = app.store.ledger(&t.id, from, to).await?;
    Ok((
        [
            ("content-type", "text/csv; charset=utf-8".to_string()),
            (
                "content-disposition",
                format!("attachment; filename=\"{}-consent-ledger.csv\"", t.slug),
            ),
        ],
        ledger_csv(&entries),
    ))
}

pub async fn reviews(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let now = app.clock.now();
    let r = app.store.reviews(&t.id).await?;
    let reviews: Vec<Value> = r
        .iter()
        .map(|r| {
            let mut v = json!(r);
            v["age_seconds"] = json!((now - r.created_at).num_seconds().max(0));
            v
        })
        .collect();
    Ok(Json(json!({"reviews": reviews})))
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
    let opt_out = match b.decision.as_str() {
        "opt_out" => true,
        "not_opt_out" => false,
        _ => {
            return Err(ApiError::field(
                "decision",
                "must be opt_out or not_opt_out",
            ));
        }
    };
    let review = app
        .store
        .review(&t.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("review"))?;
    if review.decision.is_some() {
        return Err(ApiError::new(
            crate::error::Code::AlreadyDecided,
            "this review was already decided",
        ));
    }
    match service::decide_review(&app, &t, &review, opt_out, "api").await {
        Err(assent_store::StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                crate::error::Code::AlreadyDecided,
                "this review was already decided",
            ));
        }
        other => other?,
    }
    app.wake.notify_one();
    let review = app.store.review(&t.id, &id).await?;
    Ok(Json(json!(review)))
}

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (`%20`, never `+`,
/// as RFC 5724 wants for `sms:` bodies).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn sms_uri(sender: &E164) -> String {
    format!("sms:{}?&body={}", sender, percent_encode(LINK_PHRASE))
}

pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

pub async fn opt_in_link(
    TenantAuth(t): TenantAuth,
    State(app): State<AppState>,
) -> ApiResult<Json<Value>> {
    let regs = app.store.registrations(&t.id).await?;
    if regs.marketing_status() != assent_core::gate::RegistrationStatus::Approved {
        return Err(ApiError::gate(
            assent_core::gate::Reason::MarketingNotRegistered,
        ));
    }
    let Some(sender) = t.senders.marketing.as_ref() else {
        return Err(ApiError::new(
            crate::error::Code::SenderNotConfigured,
            "set a marketing sender first (PUT /senders)",
        ));
    };
    let tools = link_tools(&t, sender, &app.config.public_url);
    Ok(Json(json!({
        "sms_uri": tools.sms_uri,
        "body": LINK_PHRASE,
        "qr_svg": qr_svg(&tools.sms_uri),
        "html_snippet": tools.html_snippet,
        "form_url": tools.form_url,
        "embed_code": tools.embed_code,
        "disclosure": tools.disclosure,
    })))
}

/// What the opt-in tools hand out for a tenant whose marketing registration is approved.
pub struct LinkTools {
    pub sms_uri: String,
    pub html_snippet: String,
    pub form_url: String,
    pub embed_code: String,
    pub disclosure: String,
}

/// The link with its disclosure, for an email template.
#[derive(askama::Template)]
#[template(path = "snippets/link.html")]
struct LinkSnippet<'a> {
    uri: &'a str,
    name: &'a str,
    disclosure: &'a str,
}

/// The form in an iframe that tells the form which page it is on.
#[derive(askama::Template)]
#[template(path = "snippets/embed.html")]
struct EmbedCode<'a> {
    frame_id: &'a str,
    name: &'a str,
    form_url: &'a str,
}

pub fn link_tools(t: &Tenant, sender: &E164, public_url: &str) -> LinkTools {
    let uri = sms_uri(sender);
    let disclosure = compose::disclosure(&t.name);
    let form_url = format!("{}/optin/{}", public_url, t.slug);
    let html_snippet = LinkSnippet {
        uri: &uri,
        name: &t.name,
        disclosure: &disclosure,
    }
    .to_string();
    let embed_code = EmbedCode {
        frame_id: &format!("assent-optin-{}", t.slug),
        name: &t.name,
        form_url: &form_url,
    }
    .to_string();
    LinkTools {
        sms_uri: uri,
        html_snippet,
        form_url,
        embed_code,
        disclosure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_uri_uses_percent_20_never_plus() {
        let u = sms_uri(&E164::parse("+15125550101").unwrap());
        assert_eq!(
            u,
            "sms:+15125550101?&body=I%20would%20like%20to%20sign%20up%20for%20marketing%20text%20messages%21"
        );
    }

    /// The snippet and the embed code are copied into other sites: their bytes are what
    /// the hand-built strings were, with the name escaped by named entities.
    #[test]
    fn link_snippets_escape_the_name_and_keep_their_shape() {
        let t = Tenant {
            id: "t1".into(),
            slug: "bob-s".into(),
            name: "Bob's <Heat> & Air".into(),
            time_zone: assent_core::Tz::America__Chicago,
            settings: Default::default(),
            senders: Default::default(),
            created_at: chrono::Utc::now(),
        };
        let sender = E164::parse("+15125550101").unwrap();
        let tools = link_tools(&t, &sender, "https://assent.example");
        let name = "Bob&#39;s &lt;Heat&gt; &amp; Air";
        assert_eq!(
            tools.html_snippet,
            format!(
                "<p><a href=\"{uri}\">Text us to get {name} offers by SMS</a></p>\n<p style=\"font-size:small\">{disclosure}</p>",
                uri = tools.sms_uri.replace('&', "&amp;"),
                disclosure = compose::disclosure(&t.name)
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('\'', "&#39;"),
            )
        );
        assert_eq!(
            tools.embed_code,
            format!(
                "<iframe id=\"assent-optin-bob-s\" title=\"Sign up for text messages from {name}\" src=\"https://assent.example/optin/bob-s\" style=\"border:0;width:100%;max-width:480px;height:520px\"></iframe>\n<script>document.getElementById(\"assent-optin-bob-s\").src = \"https://assent.example/optin/bob-s?page=\" + encodeURIComponent(window.location.href);</script>"
            )
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("a,b", true), "\"a,b\"");
        assert_eq!(cell("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)", true), "'=HYPERLINK(1)");
        assert_eq!(cell("+15125550142", false), "+15125550142");
    }
}
