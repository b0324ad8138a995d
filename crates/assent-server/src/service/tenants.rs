//! Tenants and their sending numbers: `POST /tenants` and `assent tenant create` create a
//! tenant the same way, and `PUT /senders` and the registrations page read the numbers
//! the same way.

use assent_core::Tz;
use assent_core::phone::E164;
use assent_store::{Senders, Settings, StoreError, Tenant};

use super::error::{Error, Result};
use crate::AppState;
use crate::auth::{hash_api_key, random_token};
use crate::error::Code;

fn slugify(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() { "tenant".into() } else { s }
}

/// Creates a tenant and its first API key (shown once). The slug comes from the name; a
/// taken one gets a number (`acme-2`). A name another tenant already has (trimmed, in any
/// case) is refused (`Conflict`) unless `allow_duplicate_name`: a second `tenant create`
/// with the same name is more often a mistake than a second business.
pub async fn create(
    app: &AppState,
    name: &str,
    time_zone: Option<&str>,
    allow_duplicate_name: bool,
) -> Result<(Tenant, String)> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "is required"));
    }
    let tz: Tz = time_zone
        .unwrap_or("America/New_York")
        .parse()
        .map_err(|_| {
            Error::invalid(
                "time_zone",
                "must be an IANA time zone such as America/Chicago",
            )
        })?;
    if !allow_duplicate_name && app.store.tenant_name_taken(name).await? {
        return Err(Error::refused(
            Code::Conflict,
            format!(
                "a tenant named {name:?} already exists; to create another with the same name, pass allow_duplicate_name (assent tenant create --allow-duplicate-name)"
            ),
        ));
    }
    let base = slugify(name);
    let key = random_token("ak_");
    for attempt in 0..20 {
        let slug = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{}", attempt + 1)
        };
        let tenant = Tenant {
            id: super::new_id(),
            slug,
            name: name.to_string(),
            time_zone: tz,
            settings: Settings::default(),
            senders: Senders::default(),
            created_at: app.clock.now(),
        };
        match app.store.create_tenant(&tenant, &hash_api_key(&key)).await {
            Ok(()) => return Ok((tenant, key)),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::refused(
        Code::Conflict,
        "could not find a free slug for this name",
    ))
}

/// What a request says of one sending number.
#[derive(Debug, Clone, Copy)]
pub enum SenderField<'a> {
    /// Not given: the number stays as it is.
    Keep,
    /// Given empty on the form: no number.
    Clear,
    /// An E.164 number.
    Set(&'a str),
}

/// The numbers asked for, read against the current ones. An invalid number is refused
/// naming its field (`transactional`, `marketing`), the transactional one first.
pub fn senders(
    current: &Senders,
    transactional: SenderField,
    marketing: SenderField,
) -> Result<Senders> {
    let read = |field: &str, v: SenderField, now: &Option<E164>| -> Result<Option<E164>> {
        match v {
            SenderField::Keep => Ok(now.clone()),
            SenderField::Clear => Ok(None),
            SenderField::Set(s) => E164::parse(s)
                .map(Some)
                .map_err(|e| Error::invalid(field, e.to_string())),
        }
    };
    Ok(Senders {
        transactional: read("transactional", transactional, &current.transactional)?,
        marketing: read("marketing", marketing, &current.marketing)?,
        former: Vec::new(),
    })
}

/// Reads and saves a tenant's numbers; a number another tenant uses is a store
/// `Conflict`.
pub async fn set_senders(
    app: &AppState,
    t: &Tenant,
    transactional: SenderField<'_>,
    marketing: SenderField<'_>,
) -> Result<Senders> {
    let senders = senders(&t.senders, transactional, marketing)?;
    app.store
        .set_senders(&t.id, &senders, app.clock.now())
        .await?;
    Ok(senders)
}
