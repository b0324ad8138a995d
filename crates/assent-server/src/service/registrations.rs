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

/// Checks a submitted form and saves it as pending, for the operator to decide.
pub async fn submit(
    app: &AppState,
    tenant_id: &str,
    kind: RegistrationKind,
    details: Value,
) -> Result<()> {
    validate(kind, &details)?;
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
