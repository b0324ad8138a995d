//! A tenant's settings (`PUT /settings` and the Settings page): one check of a whole new
//! set of settings against the current one, so the endpoint and the page accept and
//! refuse the same things.

use assent_core::compose;
use assent_core::keyword::Lang;
use assent_core::quiet_hours::NANP_COUNTRIES;
use assent_store::{MAX_REASSIGNED_CHECK_DAYS, MAX_REVIEW_DEADLINE_DAYS, Settings, Tenant};

use super::error::{Error, Result};
use crate::AppState;

/// The reply kinds a tenant may word itself, as `reply_texts` keys name them (with `.es`
/// or `.fr` for another language).
pub const REPLY_KINDS: [&str; 7] = [
    "opt_out",
    "opt_out_marketing",
    "resumed",
    "opt_in_confirmation",
    "help",
    "opt_in_request",
    "marketing_footer",
];

/// A link shown on the public opt-in form: empty, or an absolute http(s) URL with a host
/// (never `javascript:` or `data:`, which would run on the form's page). Trimmed.
pub fn link(field: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
            Ok(v.to_string())
        }
        _ => Err(Error::invalid(
            field,
            "must be empty or a web address starting with https://",
        )),
    }
}

fn check_numbers(s: &mut Settings) -> Result<()> {
    // A named 10DLC tier sets both numbers; a number that contradicts it is refused.
    s.rate_limits = s.rate_limits.resolved().map_err(|number| {
        Error::invalid(
            &format!("rate_limits.{number}"),
            "differs from rate_limits.preset; leave the preset out to set your own numbers",
        )
    })?;
    if !(1..=3).contains(&s.marketing_cap_per_day) {
        return Err(Error::invalid(
            "marketing_cap_per_day",
            "must be between 1 and 3",
        ));
    }
    if s.rate_limits.per_sender_per_minute == 0 {
        return Err(Error::invalid(
            "rate_limits.per_sender_per_minute",
            "must be at least 1",
        ));
    }
    if s.rate_limits.per_tenant_per_day == 0 {
        return Err(Error::invalid(
            "rate_limits.per_tenant_per_day",
            "must be at least 1",
        ));
    }
    if !(1..=MAX_REVIEW_DEADLINE_DAYS).contains(&s.review_deadline_days) {
        return Err(Error::invalid(
            "review_deadline_days",
            "must be between 1 and 10 business days (the FCC allows 10)",
        ));
    }
    if s.reassigned_check_days > MAX_REASSIGNED_CHECK_DAYS {
        return Err(Error::invalid(
            "reassigned_check_days",
            "must be a whole number of days from 0 (check every consent) to 365",
        ));
    }
    Ok(())
}

fn check_countries(s: &Settings, before: &Settings) -> Result<()> {
    if s.countries.is_empty() {
        return Err(Error::invalid(
            "countries",
            "must name at least one country",
        ));
    }
    if let Some(c) = s
        .countries
        .iter()
        .find(|c| !NANP_COUNTRIES.contains(&c.as_str()))
    {
        return Err(Error::invalid(
            "countries",
            format!(
                "{c:?} is not a country Assent can text (one of {})",
                NANP_COUNTRIES.join(", ")
            ),
        ));
    }
    match s.canada_problem(before) {
        Some((field, why)) => Err(Error::invalid(field, why)),
        None => Ok(()),
    }
}

fn check_links(s: &mut Settings, before: &Settings) -> Result<()> {
    // As for reply texts: a link stored before this check stays until it is changed.
    if s.terms_url != before.terms_url {
        s.terms_url = link("terms_url", &s.terms_url)?;
    }
    if s.privacy_url != before.privacy_url {
        s.privacy_url = link("privacy_url", &s.privacy_url)?;
    }
    Ok(())
}

fn check_reply_texts(t: &Tenant, s: &Settings) -> Result<()> {
    for k in s.reply_texts.keys() {
        let (kind, lang) = k.split_once('.').unwrap_or((k.as_str(), "en"));
        let known_lang =
            k.split_once('.').is_none() || lang.parse::<Lang>().ok().is_some_and(|l| l != Lang::En);
        if !REPLY_KINDS.contains(&kind) || !known_lang {
            return Err(Error::invalid(
                &format!("reply_texts.{k}"),
                "is not a reply kind (opt_out, opt_out_marketing, resumed, opt_in_confirmation, help, opt_in_request or marketing_footer, optionally with .es or .fr)",
            ));
        }
    }
    let mut with = t.clone();
    with.settings = s.clone();
    let contact = super::contact_of(&with);
    for (k, text) in &s.reply_texts {
        // A text saved before these checks existed stays until it is changed; a change
        // of some other setting is not refused over it.
        if t.settings.reply_texts.get(k) == Some(text) {
            continue;
        }
        let filled = compose::fill(text, &t.name, &contact);
        let kind = k.split_once('.').map_or(k.as_str(), |(kind, _)| kind);
        compose::check_reply(kind, &filled, &t.name)
            .map_err(|e| Error::invalid(&format!("reply_texts.{k}"), e))?;
    }
    Ok(())
}

/// The short brand name: empty, or a name of at most 30 characters (it starts every
/// marketing message, so a carrier can tell whose it is). Trimmed.
fn check_brand(s: &mut Settings) -> Result<()> {
    s.short_brand_name = s.short_brand_name.trim().to_string();
    let n = s.short_brand_name.chars().count();
    if n > compose::MAX_BRAND_CHARS {
        return Err(Error::invalid(
            "short_brand_name",
            format!(
                "is {n} characters; it must be at most {} (it starts every marketing message)",
                compose::MAX_BRAND_CHARS
            ),
        ));
    }
    if s.short_brand_name.contains(['{', '}', '\n', '\r']) {
        return Err(Error::invalid(
            "short_brand_name",
            "must be a plain name on one line",
        ));
    }
    Ok(())
}

/// The provider's opt-in keyword: empty (START) or one of the opt-in words Assent also
/// reads as START, upper-cased. YES is refused: it is Assent's own confirmation word.
fn check_opt_in_keyword(s: &mut Settings) -> Result<()> {
    let k = s.provider_opt_in_keyword.trim().to_ascii_uppercase();
    let known: Vec<&str> = assent_core::keyword::OPT_IN_WORDS
        .iter()
        .map(|(w, _)| *w)
        .collect();
    if !k.is_empty() && !known.contains(&k.as_str()) {
        return Err(Error::invalid(
            "provider_opt_in_keyword",
            format!(
                "must be empty (START) or one of {} as configured in the provider's opt-in keywords",
                known.join(", ")
            ),
        ));
    }
    s.provider_opt_in_keyword = k;
    Ok(())
}

/// Why marketing messages of a business named `name` with these settings need attention:
/// a name over 30 characters without a short brand name still starts every marketing
/// message, whole, and costs segments.
pub fn brand_warning(name: &str, s: &Settings) -> Option<String> {
    let n = name.trim().chars().count();
    (n > compose::MAX_BRAND_CHARS && s.short_brand_name.trim().is_empty()).then(|| {
        format!(
            "The business name is {n} characters: marketing messages start with all of it. \
             Set a short brand name of at most {} characters.",
            compose::MAX_BRAND_CHARS
        )
    })
}

/// Checks `new` as the tenant's next settings, naming the first bad field; returns them
/// as they would be stored (a tier's numbers filled in, links trimmed).
pub fn check(t: &Tenant, mut new: Settings) -> Result<Settings> {
    let before = &t.settings;
    check_brand(&mut new)?;
    check_opt_in_keyword(&mut new)?;
    check_numbers(&mut new)?;
    check_countries(&new, before)?;
    check_links(&mut new, before)?;
    check_reply_texts(t, &new)?;
    Ok(new)
}

/// Checks and stores the tenant's new settings.
pub async fn update(app: &AppState, t: &Tenant, new: Settings) -> Result<Settings> {
    let settings = check(t, new)?;
    app.store.update_settings(&t.id, &settings).await?;
    // Which parts changed, never their values (they hold contact details).
    let changed = changed_fields(&t.settings, &settings);
    tracing::info!(tenant = %t.id, changed = %changed.join(","), "settings changed");
    Ok(settings)
}

/// The names of the top-level settings that differ between `before` and `after`.
fn changed_fields(before: &Settings, after: &Settings) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(a.keys().filter(|k| !b.contains_key(*k)).cloned())
        .collect();
    names.sort();
    names
}

/// The longest business name taken (it starts every automatic reply).
pub const MAX_BUSINESS_NAME: usize = 100;

/// Checks a business name and a time zone (an IANA name such as `America/Chicago`), each
/// when given, against the tenant's current ones; returns them as they would be stored.
pub fn check_profile(
    t: &Tenant,
    name: Option<&str>,
    time_zone: Option<&str>,
) -> Result<(String, assent_core::Tz)> {
    let name = match name {
        None => t.name.clone(),
        Some(n) => {
            let n = n.trim();
            if n.is_empty() {
                return Err(Error::invalid("business_name", "is required"));
            }
            if n.chars().count() > MAX_BUSINESS_NAME {
                return Err(Error::invalid(
                    "business_name",
                    format!("must be at most {MAX_BUSINESS_NAME} characters"),
                ));
            }
            if n.chars().any(char::is_control) {
                return Err(Error::invalid("business_name", "must be one line of text"));
            }
            n.to_string()
        }
    };
    let tz = match time_zone {
        None => t.time_zone,
        Some(z) => z.trim().parse().map_err(|_| {
            Error::invalid(
                "time_zone",
                "must be an IANA time zone such as America/Chicago",
            )
        })?,
    };
    Ok((name, tz))
}

/// Stores a checked business name and time zone when either differs from the tenant's.
pub async fn update_profile(
    app: &AppState,
    t: &Tenant,
    name: &str,
    time_zone: assent_core::Tz,
) -> Result<()> {
    if name == t.name && time_zone == t.time_zone {
        return Ok(());
    }
    app.store.update_profile(&t.id, name, &time_zone).await?;
    tracing::info!(tenant = %t.slug, time_zone = %time_zone.name(), "business name or time zone changed");
    Ok(())
}
