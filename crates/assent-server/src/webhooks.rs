//! Twilio-compatible webhooks: inbound texts and delivery status. A webhook is acknowledged
//! only after what it changed is durably stored, and an opt-out only after no message to
//! that phone is still in the provider's hands.

use std::collections::HashMap;
use std::time::Duration;

use assent_core::phone::{E164, mask};
use assent_provider::{StatusReport, signature};
use assent_store::Tenant;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::AppState;
use crate::error::ApiError;
use crate::service::{self, Inbound, InboundOutcome};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/twilio/sms", post(sms))
        .route("/webhooks/twilio/status", post(status))
}

const TWIML_EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

fn twiml() -> Response {
    ([("content-type", "text/xml")], TWIML_EMPTY).into_response()
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded_pairs(body)
}

/// `application/x-www-form-urlencoded` decoding, `+` as space; bytes that are not UTF-8
/// become U+FFFD.
pub fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The carrier's text as it came, less any U+0000 (PostgreSQL cannot store it, and a
/// refused webhook would be retried until Twilio gives up: a `STOP\0` must count as STOP).
/// Applied after the signature check, which covers the bytes as sent.
pub(crate) fn without_nul(params: Vec<(String, String)>) -> Vec<(String, String)> {
    params
        .into_iter()
        .map(|(k, v)| (k.replace('\0', ""), v.replace('\0', "")))
        .collect()
}

/// Checks `X-Twilio-Signature` against the public URL when an auth token is configured.
fn signed(
    app: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    params: &[(String, String)],
) -> bool {
    let Some(token) = app.config.twilio_auth_token.as_deref() else {
        return true;
    };
    let Some(sig) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let url = format!(
        "{}{}",
        app.config.public_url.trim_end_matches('/'),
        path_and_query
    );
    signature::verify(token, &url, params, sig)
}

/// Records and acts on an inbound text. For an opt-out, and for a webhook Twilio retries,
/// it answers only once no message to the phone may still reach the carrier: every later
/// provider call re-checks consent under the phone's lock and is blocked, and the calls
/// already started are waited for. When they do not end within [`STOP_WAIT`] this is an
/// error (a 5xx): Twilio retries the webhook, and the retry waits again.
pub async fn process_inbound(
    app: &AppState,
    tenant: &Tenant,
    inbound: &Inbound,
) -> Result<InboundOutcome, assent_store::StoreError> {
    let outcome = service::receive(app, tenant, inbound).await?;
    if outcome.duplicate {
        app.metrics.inbound_duplicates.increment(1);
    } else {
        app.metrics.inbound.increment(1);
        if outcome.opted_out {
            app.metrics.opt_outs.increment(1);
        }
    }
    if outcome.reply.is_some() {
        app.wake.notify_one();
    }
    // A retried webhook may be a STOP whose first answer was this error.
    if outcome.opted_out || outcome.duplicate {
        settle_calls(app, tenant, &inbound.from).await?;
    }
    Ok(outcome)
}

/// How long an opt-out waits for calls to its phone already started; below Twilio's 15 s
/// webhook timeout, so the answer is ours.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// A provider call started longer ago than this has ended one way or the other (the
/// Twilio client gives up after 15 s), whatever its row still says.
const CALL_LIFETIME: chrono::Duration = chrono::Duration::seconds(20);

async fn settle_calls(
    app: &AppState,
    tenant: &Tenant,
    phone: &E164,
) -> Result<(), assent_store::StoreError> {
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    loop {
        let since = app.clock.now() - CALL_LIFETIME;
        if app.store.in_flight(&tenant.id, phone, since).await? == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(phone = %phone.masked(), "a message to an opted-out phone is still with the provider: not acknowledged, so that the webhook is retried");
            return Err(assent_store::StoreError::Database(
                "a message to this phone is still being handed to the provider".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sms(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    if !signed(&app, &headers, &uri, &params) {
        app.metrics.signature_failures.increment(1);
        tracing::warn!("inbound webhook with a bad or missing signature refused");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let params = without_nul(params);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (Some(sid), Some(from), Some(to)) = (p.get("MessageSid"), p.get("From"), p.get("To"))
    else {
        return ApiError::field("MessageSid", "MessageSid, From and To are required")
            .into_response();
    };
    let (Ok(from), Ok(to)) = (E164::parse(from), E164::parse(to)) else {
        tracing::warn!(from = %mask(from), to = %mask(to), "inbound with an unreadable number ignored");
        return twiml();
    };
    let tenant = match app.store.tenant_by_sender(&to).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::info!(to = %to.masked(), "inbound to a number that is no tenant's sender");
            return twiml();
        }
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
        }
    };
    let inbound = Inbound {
        message_sid: sid.to_string(),
        from,
        to,
        body: p.get("Body").copied().unwrap_or_default().to_string(),
        provider_answered: p.get("OptOutType").is_some_and(|v| !v.trim().is_empty()),
        provider_keyword: p
            .get("OptOutType")
            .and_then(|v| v.trim().to_ascii_uppercase().parse().ok()),
    };
    match process_inbound(&app, &tenant, &inbound).await {
        Ok(_) => twiml(),
        Err(e) => {
            // Not acknowledged: Twilio retries, and the MessageSid keeps it to one change.
            tracing::error!(error = %e, "inbound processing failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

async fn status(
    State(app): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    if !signed(&app, &headers, &uri, &params) {
        app.metrics.signature_failures.increment(1);
        tracing::warn!("status webhook with a bad or missing signature refused");
        return (StatusCode::FORBIDDEN, "invalid signature").into_response();
    }
    let params = without_nul(params);
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (Some(sid), Some(st)) = (p.get("MessageSid"), p.get("MessageStatus")) else {
        return ApiError::field("MessageSid", "MessageSid and MessageStatus are required")
            .into_response();
    };
    // The sender names the tenant: a provider id is unique per tenant only.
    let Some(from) = p.get("From") else {
        return ApiError::field(
            "From",
            "From (the number the message was sent from) is required",
        )
        .into_response();
    };
    let Ok(from) = E164::parse(from) else {
        tracing::warn!(from = %mask(from), "status report from an unreadable number ignored");
        return StatusCode::NO_CONTENT.into_response();
    };
    let report = StatusReport {
        provider_id: sid.to_string(),
        from,
        status: st.to_string(),
        error_code: p.get("ErrorCode").and_then(|c| c.parse().ok()),
    };
    match crate::dispatch::apply_status(&app, &report).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status callback failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_and_percent() {
        let p = form_urlencoded_pairs(
            b"From=%2B15125550142&Body=please+stop+texting+me&X=%E2%80%99&Y=100%",
        );
        assert_eq!(p[0], ("From".into(), "+15125550142".into()));
        assert_eq!(p[1].1, "please stop texting me");
        assert_eq!(p[2].1, "’");
        assert_eq!(p[3].1, "100%");
    }
}
