//! The Register for Texting and Marketing Registration forms (`PUT /registrations/{kind}`
//! and the Registrations page) and the operator's decision on them.

use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_store::{Registration, RegistrationKind};
use serde_json::{Value, json};

use super::error::{Error, Result};
use crate::AppState;
use crate::error::Code;

/// `texting` or `marketing`, as paths name them.
pub fn kind_of(kind: &str) -> Option<RegistrationKind> {
    match kind {
        "texting" => Some(RegistrationKind::Texting),
        "marketing" => Some(RegistrationKind::Marketing),
        _ => None,
    }
}

fn require_text(body: &Value, field: &str) -> Result<()> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Error::invalid(field, "is required"))
        }
        Some(_) => Err(Error::invalid(field, "must be a string")),
    }
}

fn require_samples(body: &Value) -> Result<()> {
    match body.get("sample_messages") {
        Some(Value::Array(a))
            if !a.is_empty()
                && a.iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty())) =>
        {
            Ok(())
        }
        Some(Value::Array(_)) | None | Some(Value::Null) => Err(Error::invalid(
            "sample_messages",
            "at least one sample message is required",
        )),
        Some(_) => Err(Error::invalid(
            "sample_messages",
            "must be a list of strings",
        )),
    }
}

fn validate_texting(body: &Value) -> Result<()> {
    for f in [
        "legal_name",
        "ein",
        "address",
        "website",
        "contact_email",
        "use_case",
    ] {
        require_text(body, f)?;
    }
    let ein: String = body["ein"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    if ein.len() != 9 {
        return Err(Error::invalid(
            "ein",
            "must be a 9-digit EIN such as 12-3456789",
        ));
    }
    if !body["contact_email"].as_str().unwrap_or("").contains('@') {
        return Err(Error::invalid("contact_email", "must be an email address"));
    }
    if let Some(p) = body.get("contact_phone").and_then(Value::as_str) {
        E164::parse(p).map_err(|e| Error::invalid("contact_phone", e.to_string()))?;
    }
    Ok(())
}

/// Checks a registration form, naming the first missing or bad field.
pub fn validate(kind: RegistrationKind, body: &Value) -> Result<()> {
    if !body.is_object() {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    match kind {
        RegistrationKind::Texting => validate_texting(body)?,
        RegistrationKind::Marketing => {
            for f in ["brand", "campaign_description", "opt_in_flow"] {
                require_text(body, f)?;
            }
        }
    }
    require_samples(body)
}

async fn current(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
) -> Result<Option<Registration>> {
    let regs = app.store.registrations(tenant_id).await?;
    Ok(match kind {
        RegistrationKind::Texting => regs.texting,
        RegistrationKind::Marketing => regs.marketing,
    })
}

/// The Twilio SIDs a form may carry (with `ASSENT_PROVIDER=twilio`): (field, prefix, what).
const TWILIO_FIELDS: [(&str, &str, &str); 3] = [
    ("brand_sid", "BN", "Twilio A2P brand registration SID"),
    (
        "messaging_service_sid",
        "MG",
        "Twilio messaging service SID",
    ),
    ("campaign_sid", "QE", "Twilio A2P campaign SID"),
];

/// A SID field's value, when given.
fn sid<'a>(details: &'a Value, field: &str) -> Option<&'a str> {
    details.get(field).and_then(Value::as_str)
}

/// Checks the Twilio SIDs a form carries: the brand's on Register for Texting, the
/// messaging service's and the campaign's (both or neither) on Marketing Registration.
/// Empty ones are dropped.
fn twilio_sids(app: &AppState, kind: RegistrationKind, details: &mut Value) -> Result<()> {
    let Some(obj) = details.as_object_mut() else {
        return Ok(());
    };
    for (field, prefix, what) in TWILIO_FIELDS {
        match obj.get(field) {
            None => continue,
            Some(Value::String(v)) if v.trim().is_empty() => {
                obj.remove(field);
                continue;
            }
            Some(Value::Null) => {
                obj.remove(field);
                continue;
            }
            Some(Value::String(v)) => {
                let v = v.trim().to_string();
                let allowed = match kind {
                    RegistrationKind::Texting => field == "brand_sid",
                    RegistrationKind::Marketing => field != "brand_sid",
                };
                if !allowed {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "belongs on the other registration, not on {}",
                            kind.as_str()
                        ),
                    ));
                }
                if app.a2p.is_none() {
                    return Err(Error::invalid(
                        field,
                        "is taken only when Assent sends through Twilio (ASSENT_PROVIDER=twilio)",
                    ));
                }
                if !assent_provider::a2p::is_sid(prefix, &v) {
                    return Err(Error::invalid(
                        field,
                        format!("must be a {what}: {prefix} and 32 hexadecimal digits"),
                    ));
                }
                obj.insert(field.to_string(), Value::String(v));
            }
            Some(_) => return Err(Error::invalid(field, "must be a string")),
        }
    }
    match (
        obj.contains_key("messaging_service_sid"),
        obj.contains_key("campaign_sid"),
    ) {
        (true, false) => Err(Error::invalid(
            "campaign_sid",
            "is required with messaging_service_sid",
        )),
        (false, true) => Err(Error::invalid(
            "messaging_service_sid",
            "is required with campaign_sid (Twilio files a campaign under its messaging service)",
        )),
        _ => Ok(()),
    }
}

/// Whether Twilio decides this registration: Assent sends through Twilio and the form
/// names what to ask Twilio about.
pub fn twilio_decides(app: &AppState, r: &Registration) -> bool {
    app.a2p.is_some()
        && match r.kind {
            RegistrationKind::Texting => sid(&r.details, "brand_sid").is_some(),
            RegistrationKind::Marketing => sid(&r.details, "campaign_sid").is_some(),
        }
}

/// Checks a submitted form and saves it as pending, for the operator (or Twilio) to decide.
pub async fn submit(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
    mut details: Value,
) -> Result<()> {
    validate(kind, &details)?;
    twilio_sids(app, kind, &mut details)?;
    // Back to `pending` would stop every text until the operator decides again.
    if current(app, tenant_id, kind)
        .await?
        .is_some_and(|r| r.status == RegistrationStatus::Approved)
    {
        return Err(Error::refused(
            Code::AlreadyApproved,
            "this registration is approved; resubmitting it would stop sending until a new decision, so the operator first marks it rejected (with a reason) to let it be resubmitted",
        ));
    }
    let reg = Registration {
        kind,
        status: RegistrationStatus::Pending,
        reason: None,
        details,
        updated_at: app.clock.now(),
    };
    app.store.save_registration(tenant_id, &reg).await?;
    Ok(())
}

/// Records the operator's (or the provider's) decision on a registration, keeping the
/// details submitted.
pub async fn decide(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
    status: RegistrationStatus,
    reason: Option<String>,
) -> Result<()> {
    let details = current(app, tenant_id, kind)
        .await?
        .map(|r| r.details)
        .unwrap_or_else(|| json!({}));
    app.store
        .save_registration(
            tenant_id,
            &Registration {
                kind,
                status,
                reason,
                details,
                updated_at: app.clock.now(),
            },
        )
        .await?;
    Ok(())
}

/// What Twilio said about a registration, and what Assent made of it.
#[derive(Debug, Clone)]
pub struct TwilioCheck {
    pub status: RegistrationStatus,
    pub reason: Option<String>,
    /// Twilio's own word (`APPROVED`, `IN_REVIEW`, `VERIFIED`, `FAILED`, …).
    pub twilio_status: String,
    /// Whether the registration's status or reason changed.
    pub changed: bool,
}

/// Asks Twilio for its decision on a tenant's registration and records it: approved,
/// rejected with Twilio's reason, or still pending. A registration already decided the
/// same way is left as it is.
pub async fn check_with_twilio(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
) -> Result<TwilioCheck> {
    let Some(a2p) = app.a2p.clone() else {
        return Err(Error::refused(
            Code::Conflict,
            "Assent reads registration decisions from Twilio only when it sends through Twilio (ASSENT_PROVIDER=twilio); otherwise the operator decides with `assent registration approve|reject`",
        ));
    };
    let Some(reg) = current(app, tenant_id, kind).await? else {
        return Err(Error::not_found("registration"));
    };
    let checked = match kind {
        RegistrationKind::Texting => match sid(&reg.details, "brand_sid") {
            Some(brand) => a2p.brand(brand).await,
            None => {
                return Err(Error::invalid(
                    "brand_sid",
                    "is not on this registration: submit it with your Twilio brand registration SID (BN…) for Assent to check",
                ));
            }
        },
        RegistrationKind::Marketing => match (
            sid(&reg.details, "messaging_service_sid"),
            sid(&reg.details, "campaign_sid"),
        ) {
            (Some(service), Some(campaign)) => a2p.campaign(service, campaign).await,
            _ => {
                return Err(Error::invalid(
                    "campaign_sid",
                    "is not on this registration: submit it with your messaging service SID (MG…) and campaign SID (QE…) for Assent to check",
                ));
            }
        },
    }
    .map_err(|e| Error::refused(Code::Busy, e))?;
    use assent_provider::a2p::Verdict;
    let (status, reason) = match checked.verdict {
        Verdict::Approved => (RegistrationStatus::Approved, None),
        Verdict::Rejected(why) => (RegistrationStatus::Rejected, Some(why)),
        Verdict::Pending => (RegistrationStatus::Pending, None),
    };
    let changed = reg.status != status || reg.reason != reason;
    if changed {
        decide(app, tenant_id, kind, status, reason.clone()).await?;
        tracing::info!(
            tenant = %tenant_id,
            kind = kind.as_str(),
            status = status.as_str(),
            twilio_status = %checked.twilio_status,
            "registration decided by Twilio"
        );
    }
    Ok(TwilioCheck {
        status,
        reason,
        twilio_status: checked.twilio_status,
        changed,
    })
}

/// One pass over every pending registration Twilio decides: each is checked with Twilio,
/// a page at a time. Returns how many changed.
pub async fn check_pending_with_twilio(app: &AppState) -> Result<u64> {
    let mut after: Option<(String, RegistrationKind)> = None;
    let mut changed = 0;
    loop {
        let page = app.store.pending_registrations(after.as_ref(), 100).await?;
        for (tenant_id, reg) in &page {
            if !twilio_decides(app, reg) {
                continue;
            }
            match check_with_twilio(app, tenant_id, reg.kind).await {
                Ok(c) if c.changed => changed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(tenant = %tenant_id, kind = reg.kind.as_str(), error = %e, "could not check a registration with Twilio")
                }
            }
        }
        match page.last() {
            Some((t, r)) if page.len() == 100 => after = Some((t.clone(), r.kind)),
            _ => return Ok(changed),
        }
    }
}

/// How often pending registrations are checked with Twilio.
pub const TWILIO_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The hourly check (with `ASSENT_PROVIDER=twilio`): the first pass a minute after start,
/// until shutdown.
pub async fn run_twilio_checks(app: AppState) {
    let first = std::time::Duration::from_secs(60);
    twilio_checks_every(app, first, TWILIO_CHECK_EVERY).await;
}

/// The scheduled check's loop: a pass `first` after start, then one every `every`; it
/// stops at shutdown, waiting or not (a pass in progress finishes first). Returns how many
/// passes ran.
pub async fn twilio_checks_every(
    app: AppState,
    first: std::time::Duration,
    every: std::time::Duration,
) -> u64 {
    let mut wait = first;
    let mut passes = 0;
    loop {
        tokio::select! {
            _ = app.shutdown.wait() => return passes,
            _ = tokio::time::sleep(wait) => {}
        }
        match check_pending_with_twilio(&app).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(n, "registrations decided by Twilio");
                app.wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "could not check registrations with Twilio"),
        }
        passes += 1;
        wait = every;
    }
}
