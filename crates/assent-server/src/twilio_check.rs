//! The Twilio configuration check: what Twilio's API says about a tenant's two senders,
//! each finding with what to change. Run on start (provider `twilio`), from the settings
//! page's **Check Twilio** button and from `GET /twilio/check`.
//!
//! Twilio routes an inbound text to the number's Messaging Service's inbound URL unless the
//! service says to use the number's own webhook (`use_inbound_webhook_on_number`), so the
//! webhook checked is the one Twilio will call. A STOP is per Messaging Service: two
//! senders in one service share one STOP list.

use assent_core::consent::Channel;
use assent_core::phone::E164;
use assent_provider::twilio_account::{IncomingNumber, MessagingService, TwilioAccount};
use assent_store::Tenant;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Problem,
}

/// One thing the check found, with what to change when it is not right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// The number (masked) or `account`.
    pub subject: String,
    pub text: String,
    pub fix: Option<String>,
}

impl Finding {
    fn new(level: Level, subject: &str, text: String, fix: Option<String>) -> Finding {
        Finding {
            level,
            subject: subject.to_string(),
            text,
            fix,
        }
    }
}

fn label(c: Channel) -> &'static str {
    match c {
        Channel::Transactional => "transactional",
        Channel::Marketing => "marketing",
    }
}

fn same_url(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.trim().trim_end_matches('/') == b.trim_end_matches('/'))
}

/// Whether Twilio can reach `public_url` at all: https, and not this machine.
fn reachable(public_url: &str) -> bool {
    match url::Url::parse(public_url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            u.scheme() == "https"
                && !matches!(
                    host,
                    "localhost" | "127.0.0.1" | "[::1]" | "::1" | "0.0.0.0"
                )
                && !host.ends_with(".localhost")
        }
        Err(_) => false,
    }
}

/// Checks `t`'s senders against the account. `Err` is a check that could not run (Twilio
/// unreachable, credentials refused), in words to show.
pub async fn check(
    account: &TwilioAccount,
    t: &Tenant,
    public_url: &str,
) -> Result<Vec<Finding>, String> {
    let base = public_url.trim_end_matches('/');
    let sms_url = format!("{base}/webhooks/twilio/sms");
    let status_url = format!("{base}/webhooks/twilio/status");
    let mut out = Vec::new();
    if !reachable(base) {
        out.push(Finding::new(
            Level::Warning,
            "account",
            format!("ASSENT_PUBLIC_URL is {base}: Twilio can reach only a public https address."),
            Some("Set ASSENT_PUBLIC_URL to the https address Twilio posts to, e.g. https://sms.example.com.".into()),
        ));
    }
    let services = account.services().await?;
    let mut senders: Vec<(Channel, &E164)> = Vec::new();
    for c in [Channel::Transactional, Channel::Marketing] {
        match t.sender(c) {
            Some(n) => senders.push((c, n)),
            None => out.push(Finding::new(
                Level::Problem,
                "account",
                format!("No {} number is set in Assent.", label(c)),
                Some(format!(
                    "Set senders.{} with PUT /senders (an E.164 number of this Twilio account).",
                    label(c)
                )),
            )),
        }
    }
    let shared = senders.len() == 2 && senders[0].1 == senders[1].1;
    let mut service_of: Vec<(Channel, Option<&MessagingService>)> = Vec::new();
    for (c, number) in &senders {
        if shared && *c == Channel::Marketing {
            continue;
        }
        let who = number.masked();
        let role = if shared { "shared" } else { label(*c) };
        let found: Option<IncomingNumber> = account.incoming_number(number.as_str()).await?;
        let Some(found) = found else {
            out.push(Finding::new(
                Level::Problem,
                &who,
                format!(
                    "The {role} number {} is not a number of Twilio account {}.",
                    number.as_str(),
                    account.account_sid()
                ),
                Some("Buy or port it into this account, or correct the number in Assent (PUT /senders).".into()),
            ));
            continue;
        };
        out.push(Finding::new(
            Level::Ok,
            &who,
            format!("The {role} number is in the account ({}).", found.sid),
            None,
        ));
        let service = services
            .iter()
            .find(|s| s.numbers.iter().any(|n| n == number.as_str()));
        service_of.push((*c, service));
        match service {
            Some(s) => out.push(Finding::new(
                Level::Ok,
                &who,
                format!(
                    "It belongs to Messaging Service {} ({}).",
                    s.friendly_name, s.sid
                ),
                None,
            )),
            None => out.push(Finding::new(
                Level::Warning,
                &who,
                "It belongs to no Messaging Service, so Advanced Opt-Out cannot be set up for it and STOP, START and HELP arrive without OptOutType.".into(),
                Some("Put it in a Messaging Service of its own with Advanced Opt-Out on (see the README's Twilio section).".into()),
            )),
        }
        // The webhook Twilio will call for an inbound text to this number.
        let (webhook, method, place) = match service {
            Some(s) if !s.use_inbound_webhook_on_number => (
                s.inbound_request_url.as_deref(),
                s.inbound_method.as_deref(),
                format!(
                    "In Messaging Service {}, Integration, Incoming Messages: choose \"Send a webhook\" with {sms_url} (HTTP POST)",
                    s.friendly_name
                ),
            ),
            _ => (
                found.sms_url.as_deref(),
                found.sms_method.as_deref(),
                format!(
                    "In the number's Messaging configuration, set \"A message comes in\" to Webhook {sms_url} (HTTP POST)"
                ),
            ),
        };
        let post = method.is_none_or(|m| m.eq_ignore_ascii_case("POST"));
        if same_url(webhook, &sms_url) && post {
            out.push(Finding::new(
                Level::Ok,
                &who,
                format!("Its inbound texts go to {sms_url}."),
                None,
            ));
        } else {
            let now = match webhook.map(str::trim).filter(|w| !w.is_empty()) {
                Some(w) if !post => format!("Its inbound texts go to {w} by GET."),
                Some(w) => format!("Its inbound texts go to {w}, not to Assent."),
                None => "Its inbound texts go nowhere: no webhook is set.".into(),
            };
            out.push(Finding::new(
                Level::Problem,
                &who,
                now,
                Some(format!("{place}.")),
            ));
        }
        // Delivery reports: Assent asks for them on every message it sends; a service's
        // own callback covers messages sent from elsewhere (the console) too.
        match service {
            Some(s) if same_url(s.status_callback.as_deref(), &status_url) => out.push(Finding::new(
                Level::Ok,
                &who,
                format!("Its Messaging Service reports delivery to {status_url}."),
                None,
            )),
            Some(s) => out.push(Finding::new(
                Level::Warning,
                &who,
                match s.status_callback.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
                    Some(u) => format!("Its Messaging Service's status callback is {u}: Assent's own messages still report to {status_url}, others do not."),
                    None => format!("Its Messaging Service has no status callback: Assent's own messages still report to {status_url}, others do not."),
                },
                Some(format!(
                    "In Messaging Service {}, Integration, set Delivery Status Callback to {status_url}.",
                    s.friendly_name
                )),
            )),
            None => out.push(Finding::new(
                Level::Ok,
                &who,
                format!("Assent asks for delivery reports at {status_url} on every message it sends."),
                None,
            )),
        }
    }
    if shared {
        out.push(Finding::new(
            Level::Warning,
            "account",
            "One number serves both channels: a STOP to it stops every text, job notifications included.".into(),
            Some("Use a second number for marketing, in its own Messaging Service.".into()),
        ));
    } else if let [(_, Some(a)), (_, Some(b))] = service_of.as_slice()
        && a.sid == b.sid
    {
        out.push(Finding::new(
            Level::Warning,
            "account",
            format!(
                "Both numbers are in Messaging Service {} ({}): Twilio keeps one STOP list per service, so a STOP to the marketing number also blocks job notifications from the transactional number.",
                a.friendly_name, a.sid
            ),
            Some("Move the marketing number to a Messaging Service of its own, with its own Advanced Opt-Out.".into()),
        ));
    } else if service_of.len() == 2 && service_of.iter().all(|(_, s)| s.is_some()) {
        out.push(Finding::new(
            Level::Ok,
            "account",
            "The two numbers are in separate Messaging Services: a marketing STOP does not reach job notifications.".into(),
            None,
        ));
    }
    Ok(out)
}

/// Logs every tenant's findings that need attention (on start, provider `twilio`).
pub async fn log_findings(account: &TwilioAccount, t: &Tenant, public_url: &str) {
    match check(account, t, public_url).await {
        Ok(findings) => {
            for f in findings.iter().filter(|f| f.level != Level::Ok) {
                tracing::warn!(tenant = %t.slug, subject = %f.subject, fix = f.fix.as_deref().unwrap_or(""), "Twilio check: {}", f.text);
            }
        }
        Err(e) => tracing::warn!(tenant = %t.slug, "Twilio check could not run: {e}"),
    }
}

/// The check for every tenant, a page of tenants at a time, logged (on start).
pub async fn check_all(app: crate::AppState) {
    let Some(account) = app.twilio_account.clone() else {
        return;
    };
    let mut after: Option<String> = None;
    loop {
        let slugs = match app.store.tenant_slugs_page(after.as_deref(), 100).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Twilio check: tenants could not be read");
                return;
            }
        };
        for slug in &slugs {
            if let Ok(Some(t)) = app.store.tenant_by_slug(slug).await {
                log_findings(&account, &t, &app.config.public_url).await;
            }
        }
        match slugs.last() {
            Some(last) if slugs.len() == 100 => after = Some(last.clone()),
            _ => return,
        }
    }
}
