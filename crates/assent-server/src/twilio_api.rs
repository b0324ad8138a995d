//! The Twilio-compatible REST API (CONTRACT.md "Twilio-compatible sending"): code written
//! against Twilio's Messages resource, its official libraries included, sends through
//! Assent's gate by changing only its base URL and credentials.
//!
//! Each tenant has an account SID; HTTP Basic auth takes it as the user and the tenant API
//! key as the password (Twilio's auth token). A send goes through [`service::send_as`], the
//! function `POST /api/v1/messages` calls, so the queue, the gate, quiet hours and caps are
//! the same. A message's SID is its id: `SM` and the id's 32 hex digits.

use assent_core::gate::{Purpose, Reason};
use assent_core::phone::E164;
use assent_store::page::Key;
use assent_store::{Message, MessageKind, MessageStatus, Tenant, TwilioMessageFilter};
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::hash_api_key;
use crate::service;
use crate::webhooks::form_urlencoded_pairs;

pub const API_VERSION: &str = "2010-04-01";
/// Twilio's own limit is 1,600 characters; Assent's API takes ten segments' worth.
const MAX_BODY_CHARS: usize = 1530;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(create).get(list),
        )
        .route("/2010-04-01/Accounts/{account}/Messages/{file}", get(fetch))
}

/// An error in Twilio's shape: `{"code","message","more_info","status"}`, plus Assent's
/// `assent_reason` for a refusal.
#[derive(Debug)]
pub struct TwilioError {
    status: StatusCode,
    code: u32,
    message: String,
    reason: Option<String>,
}

impl TwilioError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        TwilioError {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }
    fn bad(code: u32, message: impl Into<String>, reason: &str) -> Self {
        TwilioError {
            reason: Some(reason.to_string()),
            ..TwilioError::new(StatusCode::BAD_REQUEST, code, message)
        }
    }
    fn unauthenticated() -> Self {
        TwilioError::new(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authentication Error - invalid username or password",
        )
    }
    fn not_found() -> Self {
        TwilioError::new(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        )
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        if let Some(r) = &self.reason {
            body["assent_reason"] = json!(r);
        }
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        res
    }
}

impl From<assent_store::StoreError> for TwilioError {
    fn from(e: assent_store::StoreError) -> Self {
        tracing::error!(error = %e, "twilio-compatible API: store error");
        TwilioError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "An internal server error has occurred",
        )
    }
}

type TwilioResult<T> = Result<T, TwilioError>;

/// The tenant whose account SID and API key the request's Basic auth carries.
pub struct TwilioAuth {
    pub tenant: Tenant,
    pub account_sid: String,
}

fn basic(parts: &Parts) -> Option<(String, String)> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pass) = raw.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

impl FromRequestParts<AppState> for TwilioAuth {
    type Rejection = TwilioError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (user, key) = basic(parts).ok_or_else(TwilioError::unauthenticated)?;
        let Some(tenant) = app.store.tenant_by_api_key(&hash_api_key(&key)).await? else {
            return Err(TwilioError::unauthenticated());
        };
        let Some(account) = app.store.twilio_account(&tenant.id).await? else {
            return Err(TwilioError::unauthenticated());
        };
        if !crate::auth::constant_time_eq(user.as_bytes(), account.account_sid.as_bytes()) {
            return Err(TwilioError::unauthenticated());
        }
        // The path's account must be the one authenticated.
        let path_account = parts
            .uri
            .path()
            .strip_prefix("/2010-04-01/Accounts/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        if path_account != account.account_sid {
            return Err(TwilioError::unauthenticated());
        }
        // Callbacks are signed with the key itself (Twilio's HMAC is keyed with the auth
        // token): keep the one in use.
        if account.auth_token.as_deref() != Some(key.as_str()) {
            app.store.set_twilio_auth_token(&tenant.id, &key).await?;
        }
        Ok(TwilioAuth {
            tenant,
            account_sid: account.account_sid,
        })
    }
}

/// A message's SID: `SM` and its id's hex digits.
pub fn message_sid(id: &str) -> String {
    format!("SM{}", id.replace('-', ""))
}

/// The message id a SID stands for, when it is one of Assent's.
pub fn message_id(sid: &str) -> Option<String> {
    let hex = sid.strip_prefix("SM")?;
    uuid::Uuid::try_parse(hex)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A message's status in Twilio's words: held messages are `queued`, an outcome not known
/// yet `sent`, a message the gate stopped at hand-off `failed`, one that expired unsent
/// `canceled`.
pub fn twilio_status(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Received => "received",
        MessageStatus::Queued | MessageStatus::Deferred => "queued",
        MessageStatus::Sending => "sending",
        MessageStatus::Sent | MessageStatus::Unknown => "sent",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Undelivered => "undelivered",
        MessageStatus::Failed | MessageStatus::Blocked => "failed",
        MessageStatus::Expired => "canceled",
    }
}

/// Twilio's error code for a gate refusal: 21610 for anything that is the person's (or the
/// contact record's) choice, 21211 for a number Assent does not text, 30034 for a sender
/// whose registration is not approved.
pub fn refusal_code(reason: Reason) -> u32 {
    match reason {
        Reason::InvalidNumber => 21211,
        Reason::TextingNotRegistered | Reason::MarketingNotRegistered => 30034,
        _ => 21610,
    }
}

/// The error code a message carries: a carrier's numeric code as reported, or the code of
/// the gate's reason for a message stopped at hand-off.
pub fn error_code(m: &Message) -> Option<u32> {
    let reason = m.reason.as_ref()?.as_str();
    if !matches!(
        m.status,
        MessageStatus::Failed | MessageStatus::Undelivered | MessageStatus::Blocked
    ) {
        return None;
    }
    if let Ok(n) = reason.parse::<u32>() {
        return Some(n);
    }
    reason.parse::<Reason>().ok().map(refusal_code)
}

fn date(t: DateTime<Utc>) -> String {
    t.to_rfc2822()
}

/// Twilio's message resource.
pub fn resource(account_sid: &str, m: &Message) -> Value {
    let sid = message_sid(&m.id);
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json");
    let direction = match (m.direction, m.kind) {
        (assent_store::Direction::Inbound, _) => "inbound",
        (_, MessageKind::AutoReply) => "outbound-reply",
        _ => "outbound-api",
    };
    let sent = matches!(
        m.status,
        MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Undelivered
            | MessageStatus::Unknown
    );
    json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": date(m.created_at),
        "date_sent": sent.then(|| date(m.updated_at)),
        "date_updated": date(m.updated_at),
        "direction": direction,
        "error_code": error_code(m),
        "error_message": error_code(m).and(m.reason.clone()),
        "from": m.from,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": m.segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": twilio_status(m.status),
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"),
        },
        "to": m.to,
        "uri": uri,
        "assent_status": m.status.as_str(),
        "assent_reason": m.reason,
        "assent_deferred_until": m.deferred_until(),
    })
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Which purpose a send has: `AssentPurpose` when given (its channel's sender must be
/// `From`), otherwise by `From`: the marketing sender means `marketing`, the transactional
/// one `job_notification`.
fn purpose_for(t: &Tenant, from: &E164, given: Option<&str>) -> TwilioResult<Purpose> {
    let not_sender = |what: String| {
        TwilioError::bad(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable phone number for this account{what}"
            ),
            "not_a_sender",
        )
    };
    let purpose = match given {
        Some(p) => Purpose::parse_api(p).ok_or_else(|| {
            TwilioError::bad(
                21000,
                "AssentPurpose must be job_notification, transactional_campaign, missed_call or marketing",
                "invalid_field",
            )
        })?,
        None if t.senders.marketing.as_ref() == Some(from)
            && t.senders.transactional.as_ref() != Some(from) =>
        {
            Purpose::Marketing
        }
        None => Purpose::JobNotification,
    };
    if t.sender(purpose.channel()) != Some(from) {
        return Err(not_sender(format!(
            " (it is not the {} sender)",
            purpose.channel().as_str()
        )));
    }
    Ok(purpose)
}

/// A status callback must be an absolute http(s) URL.
fn callback_url(v: &str) -> TwilioResult<String> {
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(v.to_string()),
        _ => Err(TwilioError::bad(
            21609,
            "The StatusCallback URL is not a valid http or https URL",
            "invalid_field",
        )),
    }
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
pub async fn create(
    auth: TwilioAuth,
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> TwilioResult<(StatusCode, axum::Json<Value>)> {
    let t = &auth.tenant;
    let pairs = form_urlencoded_pairs(&body);
    let to = field(&pairs, "To")
        .ok_or_else(|| TwilioError::bad(21604, "A 'To' phone number is required", "missing_to"))?;
    let from = field(&pairs, "From").ok_or_else(|| {
        TwilioError::bad(21603, "A 'From' phone number is required", "missing_from")
    })?;
    let text = field(&pairs, "Body")
        .ok_or_else(|| TwilioError::bad(21602, "Message body is required", "missing_body"))?;
    if text.chars().count() > MAX_BODY_CHARS {
        return Err(TwilioError::bad(
            21617,
            format!("The message body exceeds the {MAX_BODY_CHARS} character limit"),
            "body_too_long",
        ));
    }
    let callback = field(&pairs, "StatusCallback")
        .map(callback_url)
        .transpose()?;
    let from = E164::parse(from).map_err(|_| {
        TwilioError::bad(
            21606,
            format!("The From phone number {from} is not a valid, SMS-capable phone number for this account"),
            "not_a_sender",
        )
    })?;
    let purpose = purpose_for(t, &from, field(&pairs, "AssentPurpose"))?;
    let refuse = |reason: Reason| {
        app.metrics.gate_refusals.increment(1);
        let message = match reason {
            Reason::OptedOut => "Attempt to send to unsubscribed recipient".to_string(),
            Reason::InvalidNumber => format!("The 'To' number {to} is not a valid phone number"),
            _ => crate::error::gate_message(reason).to_string(),
        };
        TwilioError::bad(refusal_code(reason), message, reason.as_str())
    };
    let Ok(phone) = E164::parse(to) else {
        return Err(refuse(Reason::InvalidNumber));
    };
    let id = service::new_id();
    if let Some(url) = &callback {
        app.store.set_status_callback(&t.id, &id, url).await?;
    }
    let sent = service::send_as(
        &app,
        t,
        &phone,
        purpose,
        text,
        MessageKind::Api,
        None,
        service::WrittenAs {
            id: Some(&id),
            author: None,
        },
    )
    .await;
    let refused = match sent {
        Ok(Ok(m)) => {
            app.metrics.api_sends.increment(1);
            app.wake.notify_one();
            return Ok((
                StatusCode::CREATED,
                axum::Json(resource(&auth.account_sid, &m)),
            ));
        }
        Ok(Err(reason)) => refuse(reason),
        Err(e) => {
            tracing::error!(error = %e, "twilio-compatible send failed");
            TwilioError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "An internal server error has occurred",
            )
        }
    };
    // Nothing was queued: the callback has nothing to report.
    if callback.is_some() {
        app.store.forget_status_callback(&t.id, &id).await?;
    }
    Err(refused)
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`.
pub async fn fetch(
    auth: TwilioAuth,
    State(app): State<AppState>,
    Path((_, file)): Path<(String, String)>,
) -> TwilioResult<axum::Json<Value>> {
    let id = file
        .strip_suffix(".json")
        .and_then(message_id)
        .ok_or_else(TwilioError::not_found)?;
    match app.store.message(&auth.tenant.id, &id).await? {
        Some(m) => Ok(axum::Json(resource(&auth.account_sid, &m))),
        None => Err(TwilioError::not_found()),
    }
}

/// A `DateSent` filter's value: a day (`YYYY-MM-DD`) or an instant (`…T…Z`); the day is
/// the whole UTC day.
fn date_value(name: &str, v: &str) -> TwilioResult<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let start = d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Ok((start, Some(start + Duration::days(1))));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| (t.with_timezone(&Utc), None))
        .map_err(|_| {
            TwilioError::bad(
                21000,
                format!("{name} must be a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM:SSZ)"),
                "invalid_field",
            )
        })
}

/// A `PageToken` as `next_page_uri` writes it: the previous page's last message's creation
/// time (ms) and insertion order, `AT_SEQ`.
fn page_token(v: &str) -> Option<Key> {
    let (at, seq) = v.split_once('_')?;
    let at = at.parse::<i64>().ok()?;
    let seq = seq.parse::<i64>().ok()?;
    Some(Key {
        at,
        id: seq.to_string(),
    })
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: newest first, filtered by `To`,
/// `From`, `DateSent` (that day), `DateSent<` (on or before) and `DateSent>` (on or
/// after), a page of `PageSize` (default 50, at most 1,000) at a time; `next_page_uri`
/// carries the next page's `PageToken`.
pub async fn list(
    auth: TwilioAuth,
    State(app): State<AppState>,
    uri: axum::http::Uri,
) -> TwilioResult<axum::Json<Value>> {
    let pairs = form_urlencoded_pairs(uri.query().unwrap_or_default().as_bytes());
    let phone = |name: &str| -> TwilioResult<Option<E164>> {
        field(&pairs, name)
            .map(|v| {
                // A `+` arrives as a space when the query was form-encoded by hand.
                let v = if v.starts_with(' ') {
                    format!("+{}", v.trim())
                } else {
                    v.to_string()
                };
                E164::parse(&v).map_err(|_| {
                    TwilioError::bad(
                        21211,
                        format!("{name} is not a valid phone number"),
                        "invalid_field",
                    )
                })
            })
            .transpose()
    };
    let mut f = TwilioMessageFilter {
        to: phone("To")?,
        from: phone("From")?,
        limit: 50,
        ..Default::default()
    };
    if let Some(v) = field(&pairs, "DateSent") {
        let (start, end) = date_value("DateSent", v)?;
        f.sent_from = Some(start);
        f.sent_before = Some(end.unwrap_or(start + Duration::milliseconds(1)));
    }
    if let Some(v) = field(&pairs, "DateSent<") {
        let (start, end) = date_value("DateSent<", v)?;
        let bound = end.unwrap_or(start + Duration::milliseconds(1));
        f.sent_before = Some(f.sent_before.map_or(bound, |b| b.min(bound)));
    }
    if let Some(v) = field(&pairs, "DateSent>") {
        let (start, _) = date_value("DateSent>", v)?;
        f.sent_from = Some(f.sent_from.map_or(start, |s| s.max(start)));
    }
    if let Some(v) = field(&pairs, "PageSize") {
        f.limit = v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                TwilioError::bad(
                    21000,
                    "PageSize must be a number from 1 to 1000",
                    "invalid_field",
                )
            })?;
    }
    if let Some(v) = field(&pairs, "PageToken") {
        f.after =
            Some(page_token(v).ok_or_else(|| {
                TwilioError::bad(21000, "PageToken is not valid", "invalid_field")
            })?);
    }
    let page: u64 = field(&pairs, "Page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (messages, next) = app.store.twilio_messages(&auth.tenant.id, &f).await?;
    let base = format!("/{API_VERSION}/Accounts/{}/Messages.json", auth.account_sid);
    // The filters, carried from page to page.
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "To" | "From" | "DateSent" | "DateSent<" | "DateSent>"
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page_uri = |page: u64, token: Option<&Key>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair("PageSize", &f.limit.to_string());
        q.append_pair("Page", &page.to_string());
        if let Some(k) = token {
            q.append_pair("PageToken", &format!("{}_{}", k.at, k.id));
        }
        format!("{base}?{}", q.finish())
    };
    let start = page * u64::from(f.limit);
    let n = messages.len() as u64;
    Ok(axum::Json(json!({
        "messages": messages.iter().map(|m| resource(&auth.account_sid, m)).collect::<Vec<_>>(),
        "end": if n == 0 { start } else { start + n - 1 },
        "first_page_uri": page_uri(0, None),
        "next_page_uri": next.as_ref().map(|t| page_uri(page + 1, Some(t))),
        "page": page,
        "page_size": f.limit,
        "previous_page_uri": null,
        "start": start,
        "uri": page_uri(page, f.after.as_ref()),
    })))
}
