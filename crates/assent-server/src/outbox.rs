//! The outbox's delivery worker: status callbacks to the URL a Twilio-compatible send named
//! (form-encoded and signed with `X-Twilio-Signature` as Twilio signs them, the tenant API
//! key being the auth token), and outbound events to the tenant's endpoints (JSON, signed
//! with `Assent-Signature`).
//!
//! Deliveries are written in the transaction of the change they report (see
//! `assent_store::shared::relay`); this worker only reads and sends them, in its own task,
//! so a slow or dead receiver never holds up the send queue. At least once: a delivery is
//! marked done only after a 2xx answer; a failure is tried again with a growing delay for
//! three days. A phone's deliveries to one target go in order (one waits while an earlier one
//! is undelivered).
//!
//! Delivered and given-up deliveries are kept for the retention
//! (`ASSENT_OUTBOX_RETENTION_DAYS`, default 30) and then deleted by this worker, a bounded
//! batch at a time, about once an hour; the delivery log says how far back it goes.

use std::net::IpAddr;
use std::time::Duration as StdDuration;

use assent_store::{MessageStatus, OutboxItem};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::AppState;
use crate::twilio_api::{API_VERSION, message_sid, refusal_code, twilio_status};

/// How many deliveries one pass takes.
const BATCH: u32 = 20;
/// How long a taken delivery is left alone by other workers (a crash brings it back then).
const LEASE_SECONDS: i64 = 60;
/// How long a delivery is retried before it is given up.
const GIVE_UP_AFTER_DAYS: i64 = 3;

/// How long delivered and given-up deliveries are kept, in days, unless
/// `ASSENT_OUTBOX_RETENTION_DAYS` says otherwise.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
/// How many deliveries one delete takes (a bounded transaction, however large the backlog).
const PRUNE_BATCH: u32 = 500;
/// How often the worker deletes what is past the retention.
const PRUNE_EVERY_MINUTES: i64 = 60;

/// `ASSENT_OUTBOX_RETENTION_DAYS`: a whole number of days from 1 to 3650 (default 30).
pub fn retention_from_env() -> Result<Duration, String> {
    match std::env::var("ASSENT_OUTBOX_RETENTION_DAYS") {
        Err(_) => Ok(Duration::days(DEFAULT_RETENTION_DAYS)),
        Ok(v) => parse_retention(&v),
    }
}

fn parse_retention(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|d| (1..=3650).contains(d))
        .map(Duration::days)
        .ok_or_else(|| {
            format!("ASSENT_OUTBOX_RETENTION_DAYS {v:?} is not a number of days from 1 to 3650")
        })
}

/// Deletes the deliveries delivered or given up longer ago than the retention, a batch at a
/// time until none is left (or shutdown); returns how many went.
pub async fn prune(app: &AppState) -> assent_store::Result<u64> {
    let before = app.clock.now() - app.outbox_retention;
    let mut total = 0;
    loop {
        let n = app.store.prune_outbox(before, PRUNE_BATCH).await?;
        total += n;
        if n < u64::from(PRUNE_BATCH) || app.shutdown.is_set() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// The delay before attempt `attempts + 1`: 10 s, doubling, at most 6 hours.
pub fn backoff(attempts: u32) -> Duration {
    let secs = 10i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(20));
    Duration::seconds(secs.min(6 * 3600))
}

/// Whether outbound requests may go to private and loopback addresses
/// (`ASSENT_WEBHOOK_ALLOW_PRIVATE=1`, for tests and private networks).
pub fn allow_private_from_env() -> bool {
    std::env::var("ASSENT_WEBHOOK_ALLOW_PRIVATE").is_ok_and(|v| v == "1" || v == "true")
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Refuses a target whose host is (or resolves to) a private or loopback address, unless
/// the operator allows them.
pub async fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|_| "not a valid URL".to_string())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("only http and https targets are allowed".into());
    }
    if allow_private {
        return Ok(());
    }
    let host = u.host_str().ok_or("the URL has no host")?;
    let port = u.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve the host: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() || addrs.iter().any(|ip| is_private(*ip)) {
        return Err(
            "the target is a private or loopback address (ASSENT_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
                .into(),
        );
    }
    Ok(())
}

/// What the database wrote for a status change (`shared::relay`'s trigger).
#[derive(Deserialize)]
struct StatusChange {
    message_id: String,
    status: MessageStatus,
    reason: Option<String>,
    to: String,
    from: String,
}

/// The form Twilio posts to a status callback, and whether it is one Twilio would send
/// (queued and held messages are not reported).
fn callback_form(account_sid: &str, c: &StatusChange) -> Option<Vec<(String, String)>> {
    let status = twilio_status(c.status);
    if matches!(status, "queued" | "received") {
        return None;
    }
    let sid = message_sid(&c.message_id);
    let mut form = vec![
        ("AccountSid", account_sid.to_string()),
        ("ApiVersion", API_VERSION.to_string()),
        ("From", c.from.clone()),
        ("MessageSid", sid.clone()),
        ("MessageStatus", status.to_string()),
        ("SmsSid", sid),
        ("SmsStatus", status.to_string()),
        ("To", c.to.clone()),
    ];
    let code = c.reason.as_deref().and_then(|r| {
        if !matches!(status, "failed" | "undelivered") {
            return None;
        }
        r.parse::<u32>().ok().or_else(|| {
            r.parse::<assent_core::gate::Reason>()
                .ok()
                .map(refusal_code)
        })
    });
    if let Some(code) = code {
        form.push(("ErrorCode", code.to_string()));
    }
    Some(form.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

enum Outcome {
    Delivered,
    /// Nothing to send (a status Twilio does not report).
    Skipped,
    Failed(String),
    /// Never to be tried again (a target that is not allowed).
    Refused(String),
}

async fn deliver_one(app: &AppState, http: &reqwest::Client, item: &OutboxItem) -> Outcome {
    if let Err(e) = check_target(&item.url, app.webhook_allow_private).await {
        return Outcome::Refused(e);
    }
    match item.kind.as_str() {
        "status_callback" => {
            let change: StatusChange = match serde_json::from_str(&item.body) {
                Ok(c) => c,
                Err(e) => return Outcome::Refused(format!("unreadable delivery: {e}")),
            };
            let account = match app.store.twilio_account(&item.tenant_id).await {
                Ok(Some(a)) => a,
                Ok(None) => return Outcome::Refused("the tenant has no account".into()),
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let Some(form) = callback_form(&account.account_sid, &change) else {
                return Outcome::Skipped;
            };
            let token = account.auth_token.unwrap_or_default();
            let signature = assent_provider::signature::sign(&token, &item.url, &form);
            let sent = http
                .post(&item.url)
                .header("X-Twilio-Signature", signature)
                .header("I-Twilio-Idempotency-Token", &item.event_id)
                .form(&form)
                .send()
                .await;
            answer(sent)
        }
        "event" => {
            let Some(endpoint_id) = &item.endpoint_id else {
                return Outcome::Refused("an event without an endpoint".into());
            };
            let endpoint = match app
                .store
                .webhook_endpoint(&item.tenant_id, endpoint_id)
                .await
            {
                Ok(Some(e)) => e,
                Ok(None) => return Outcome::Refused("the endpoint was deleted".into()),
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let t = app.clock.now().timestamp();
            let signature =
                assent_provider::signature::event_signature(&endpoint.secret, t, &item.body);
            let sent = http
                .post(&item.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Assent-Signature", signature)
                .header("Assent-Event-Id", &item.event_id)
                .body(item.body.clone())
                .send()
                .await;
            answer(sent)
        }
        other => Outcome::Refused(format!("unknown delivery kind {other:?}")),
    }
}

fn answer(sent: reqwest::Result<reqwest::Response>) -> Outcome {
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) => Outcome::Failed(format!("the target answered {}", r.status())),
        Err(e) => Outcome::Failed(format!("the request failed: {e}")),
    }
}

/// The HTTP client deliveries go through: short timeouts, no redirects (a delivery goes
/// only to the URL the tenant gave).
pub fn http_client() -> reqwest::Client {
    assent_provider::install_crypto();
    reqwest::Client::builder()
        .timeout(StdDuration::from_secs(10))
        .connect_timeout(StdDuration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// One pass: takes the due deliveries and sends each. Returns how many were taken.
pub async fn deliver_due(app: &AppState, http: &reqwest::Client) -> assent_store::Result<usize> {
    let now = app.clock.now();
    let items = app
        .store
        .claim_outbox(now, now + Duration::seconds(LEASE_SECONDS), BATCH)
        .await?;
    for item in &items {
        let outcome = deliver_one(app, http, item).await;
        let now = app.clock.now();
        match outcome {
            Outcome::Delivered | Outcome::Skipped => {
                app.store
                    .outbox_delivered(&item.tenant_id, item.id, now)
                    .await?
            }
            Outcome::Failed(e) => {
                let retry: Option<DateTime<Utc>> = (now
                    < item.created_at + Duration::days(GIVE_UP_AFTER_DAYS))
                .then(|| now + backoff(item.attempts));
                tracing::warn!(delivery = item.id, kind = %item.kind, attempts = item.attempts, error = %e, "outbox delivery failed");
                app.store
                    .outbox_failed(&item.tenant_id, item.id, &e, retry, now)
                    .await?;
            }
            Outcome::Refused(e) => {
                tracing::warn!(delivery = item.id, kind = %item.kind, error = %e, "outbox delivery refused");
                app.store
                    .outbox_failed(&item.tenant_id, item.id, &e, None, now)
                    .await?;
            }
        }
    }
    Ok(items.len())
}

/// Runs until shutdown, a pass at a time; waits a second when there was nothing to do.
/// Prunes what is past the retention on start and then hourly.
pub async fn run(app: AppState) {
    let http = http_client();
    let mut next_prune = app.clock.now();
    while !app.shutdown.is_set() {
        if app.clock.now() >= next_prune {
            match prune(&app).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(deleted = n, "outbox: deliveries past the retention deleted")
                }
                Err(e) => tracing::error!(error = %e, "outbox: cannot delete old deliveries"),
            }
            next_prune = app.clock.now() + Duration::minutes(PRUNE_EVERY_MINUTES);
        }
        let busy = match deliver_due(&app, &http).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read the deliveries");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                _ = app.shutdown.wait() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::seconds(10));
        assert_eq!(backoff(2), Duration::seconds(20));
        assert_eq!(backoff(40), Duration::hours(6));
    }

    #[test]
    fn retention_is_a_number_of_days() {
        assert_eq!(parse_retention("30"), Ok(Duration::days(30)));
        assert_eq!(parse_retention(" 7 "), Ok(Duration::days(7)));
        for bad in ["0", "-1", "3651", "30d", ""] {
            let e = parse_retention(bad).unwrap_err();
            assert!(e.contains("ASSENT_OUTBOX_RETENTION_DAYS"), "{e}");
        }
    }

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "100.64.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:4860:4860::8888"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_unless_allowed() {
        assert!(check_target("http://127.0.0.1:9/cb", false).await.is_err());
        assert!(check_target("http://127.0.0.1:9/cb", true).await.is_ok());
        assert!(check_target("ftp://example.com/", true).await.is_err());
    }
}
