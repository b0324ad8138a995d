//! Settings a business owner changes: the HELP contact, the terms and privacy links on the
//! opt-in form, quiet hours, the marketing frequency cap, the FCC revoke-all switch, who
//! answers keywords, and the automatic reply texts (the same settings as `PUT /settings`).

use assent_core::consent::ReplyKind;
use assent_core::quiet_hours::QuietPolicy;
use assent_store::{KeywordReplies, RateLimits, RatePreset, Settings, Tenant};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use askama::Template;

use super::session::{Posted, SignedIn};
use super::{Chrome, Section, WebResult, render, see_other};
use crate::AppState;
use crate::service::{opt_in_request_text, reply_text};

/// The editable texts: (settings key, label, what it answers).
const TEXTS: &[(&str, &str, &str)] = &[
    (
        "opt_in_request",
        "Opt-in request",
        "Sent from the customer record and the web form; it must ask for YES and carry the full disclosure.",
    ),
    (
        "opt_in_confirmation",
        "Opt-in confirmation",
        "The answer to YES or the opt-in link text.",
    ),
    (
        "opt_out",
        "Opt-out confirmation (all texts)",
        "The answer to STOP on the transactional number.",
    ),
    (
        "opt_out_marketing",
        "Opt-out confirmation (marketing)",
        "The answer to STOP on the marketing number.",
    ),
    (
        "resumed",
        "Resubscribed",
        "The answer to START, RESTART or ENROLL.",
    ),
    ("help", "Help reply", "The answer to HELP or INFO."),
];

fn kind_of(key: &str) -> Option<ReplyKind> {
    Some(match key {
        "opt_in_confirmation" => ReplyKind::OptInConfirmation,
        "opt_out" => ReplyKind::OptOutAll,
        "opt_out_marketing" => ReplyKind::OptOutMarketing,
        "resumed" => ReplyKind::Resumed,
        "help" => ReplyKind::Help,
        _ => return None,
    })
}

/// The text a tenant with these settings sends for `key`.
fn text_for(t: &Tenant, key: &str) -> String {
    match kind_of(key) {
        Some(kind) => reply_text(t, kind, assent_core::keyword::Lang::En),
        None => opt_in_request_text(t, assent_core::keyword::Lang::En),
    }
}

fn with_settings(t: &Tenant, s: &Settings) -> Tenant {
    let mut t = t.clone();
    t.settings = s.clone();
    t
}

struct ReplyText {
    key: &'static str,
    label: &'static str,
    hint: &'static str,
    value: String,
}

struct PresetOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
    minute: String,
    day: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    chrome: Chrome<'a>,
    s: &'a Settings,
    saved: bool,
    error: Option<&'a str>,
    us: bool,
    ca: bool,
    other_countries: String,
    standard: bool,
    strictest: bool,
    by_assent: bool,
    by_provider: bool,
    presets: Vec<PresetOption>,
    limits_meaning: String,
    texts: Vec<ReplyText>,
}

fn form(user: &SignedIn, s: &Settings, error: Option<&str>, saved: bool) -> Response {
    let t = with_settings(&user.tenant, s);
    let texts = TEXTS
        .iter()
        .map(|(key, label, hint)| ReplyText {
            key,
            label,
            hint,
            value: text_for(&t, key),
        })
        .collect();
    let has = |c: &str| s.countries.iter().any(|k| k == c);
    let other_countries = s
        .countries
        .iter()
        .map(String::as_str)
        .filter(|c| !matches!(*c, "US" | "CA"))
        .collect::<Vec<_>>()
        .join(", ");
    let presets = RatePreset::ALL
        .iter()
        .map(|p| {
            let (minute, day) = p.limits();
            PresetOption {
                value: p.as_str(),
                label: p.label(),
                selected: s.rate_limits.preset == Some(*p),
                minute: thousands(minute),
                day: thousands(day),
            }
        })
        .collect();
    render(&SettingsPage {
        chrome: Chrome::new(user, "Settings", Section::Settings),
        s,
        saved,
        error,
        us: has("US"),
        ca: has("CA"),
        other_countries,
        standard: s.quiet_hours == QuietPolicy::Standard,
        strictest: s.quiet_hours == QuietPolicy::Strictest,
        by_assent: s.keyword_replies == KeywordReplies::Assent,
        by_provider: s.keyword_replies == KeywordReplies::Provider,
        presets,
        limits_meaning: limits_meaning(&s.rate_limits),
        texts,
    })
}

/// `1,000`.
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What limits mean in texts: carriers count segments, so a two-segment text counts twice.
fn limits_meaning(l: &RateLimits) -> String {
    format!(
        "{} texts a minute from each sending number and {} a day in all, if each is one segment (160 plain characters); half as many of two segments.",
        thousands(l.per_sender_per_minute),
        thousands(l.per_tenant_per_day)
    )
}

/// Reads the limits into `s`; an error to show, or `None`.
fn read_limits(posted: &Posted, s: &mut Settings) -> Option<String> {
    let chosen = posted.field("rate_preset");
    if chosen.is_empty() {
        return None;
    }
    if let Ok(p) = chosen.parse::<RatePreset>() {
        let (minute, day) = p.limits();
        s.rate_limits = RateLimits {
            preset: Some(p),
            per_sender_per_minute: minute,
            per_tenant_per_day: day,
        };
        return None;
    }
    let number = |name: &str| {
        posted
            .field(name)
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
    };
    match (
        number("per_sender_per_minute"),
        number("per_tenant_per_day"),
    ) {
        (Some(minute), Some(day)) => {
            s.rate_limits = RateLimits {
                preset: None,
                per_sender_per_minute: minute,
                per_tenant_per_day: day,
            };
            None
        }
        _ => Some("Your own sending limits must be whole numbers of at least 1.".into()),
    }
}

/// Reads the countries card into `s`; an error to show, or `None`.
fn read_countries(posted: &Posted, before: &Settings, s: &mut Settings) -> Option<String> {
    if !posted.ticked("countries_shown") {
        return None;
    }
    s.mailing_address = posted.field("mailing_address").trim().to_string();
    s.contact = posted.field("contact").trim().to_string();
    let mut countries: Vec<String> = Vec::new();
    if posted.ticked("country_us") {
        countries.push("US".into());
    }
    if posted.ticked("country_ca") {
        countries.push("CA".into());
    }
    countries.extend(
        s.countries
            .iter()
            .filter(|c| !matches!(c.as_str(), "US" | "CA"))
            .cloned(),
    );
    s.countries = countries;
    if s.countries.is_empty() {
        return Some("Choose at least one country to text.".into());
    }
    s.canada_problem(before).map(|(field, _)| {
        let what = if field == "contact" {
            "a contact"
        } else {
            "your mailing address"
        };
        format!("To text Canadian numbers, give {what} (CASL).")
    })
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    notice: Option<String>,
}

pub async fn show(user: SignedIn, Query(q): Query<SettingsQuery>) -> Response {
    form(
        &user,
        &user.tenant.settings,
        None,
        q.notice.as_deref() == Some("saved"),
    )
}

/// A link shown on the public opt-in form: empty, or an absolute http(s) URL with a host
/// (never `javascript:` or `data:`, which would run on the form's page). Checked the same
/// way here and in `PUT /settings`.
pub(crate) fn link(label: &str, v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => {
            Ok(v.to_string())
        }
        _ => Err(format!("{label} must start with https://")),
    }
}

pub async fn save(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let mut s = user.tenant.settings.clone();
    s.help_contact = posted.field("help_contact").trim().to_string();
    s.quiet_hours = match posted.field("quiet_hours") {
        "strictest" => QuietPolicy::Strictest,
        _ => QuietPolicy::Standard,
    };
    s.keyword_replies = match posted.field("keyword_replies") {
        "provider" => KeywordReplies::Provider,
        _ => KeywordReplies::Assent,
    };
    s.stop_revokes_all = posted.ticked("stop_revokes_all");
    let mut error = read_countries(&posted, &user.tenant.settings, &mut s);
    error = error.or(read_limits(&posted, &mut s));
    match posted.field("review_deadline_days").trim().parse::<u32>() {
        Ok(n) if (1..=assent_store::MAX_REVIEW_DEADLINE_DAYS).contains(&n) => {
            s.review_deadline_days = n;
        }
        // A form from before this field existed keeps the setting.
        _ if posted.field("review_deadline_days").trim().is_empty() => {}
        _ => {
            error = error.or(Some(
                "The review deadline must be 1 to 10 business days.".to_string(),
            ));
        }
    }
    match posted.field("marketing_cap_per_day").parse::<u32>() {
        Ok(n) if (1..=3).contains(&n) => s.marketing_cap_per_day = n,
        _ => error = Some("Marketing texts per day must be 1, 2 or 3.".to_string()),
    }
    match (
        link("The terms link", posted.field("terms_url")),
        link("The privacy policy link", posted.field("privacy_url")),
    ) {
        (Ok(terms), Ok(privacy)) => {
            s.terms_url = terms;
            s.privacy_url = privacy;
        }
        (Err(e), _) | (_, Err(e)) => error = error.or(Some(e)),
    }
    // A text equal to the default is no override, so it follows the business name and
    // contact when they change: the default with the new contact, or the one the form
    // showed (the old contact), when the contact changed in this same save.
    let bare = |settings: &Settings| {
        let mut d = settings.clone();
        d.reply_texts.clear();
        with_settings(&user.tenant, &d)
    };
    let (new_defaults, shown_defaults) = (bare(&s), bare(&user.tenant.settings));
    s.reply_texts.clear();
    for (key, label, _) in TEXTS {
        let typed = posted.field(&format!("text_{key}")).trim().to_string();
        if typed.is_empty()
            || typed == text_for(&new_defaults, key)
            || typed == text_for(&shown_defaults, key)
        {
            continue;
        }
        let filled = assent_core::compose::fill(
            &typed,
            &user.tenant.name,
            &crate::service::contact_of(&new_defaults),
        );
        if let Err(e) = assent_core::compose::check_reply(key, &filled, &user.tenant.name) {
            error = error.or(Some(format!("The {label} {e}.")));
        }
        s.reply_texts.insert((*key).to_string(), typed);
    }
    if let Some(e) = error {
        let mut res = form(user, &s, Some(&e), false);
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(res);
    }
    app.store.update_settings(&user.tenant.id, &s).await?;
    Ok(see_other("/settings?notice=saved"))
}
