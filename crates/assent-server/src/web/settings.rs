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
use super::{Chrome, Section, TimeEl, WebResult, render, see_other, thousands};
use crate::AppState;
use crate::service::{self, opt_in_request_text, reply_text};

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

/// The business name and time zone as the page shows them (what was typed, after a
/// refusal).
struct Profile {
    name: String,
    time_zone: String,
}

/// Time zones the page suggests; any IANA name is taken.
const ZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "America/Halifax",
    "America/St_Johns",
    "America/Toronto",
    "America/Winnipeg",
    "America/Regina",
    "America/Edmonton",
    "America/Vancouver",
];

/// One recent failed sign-in.
struct FailureView {
    at: TimeEl,
    email: String,
    locked: bool,
}

/// Failed sign-ins the page lists.
const FAILURES_SHOWN: u32 = 20;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    chrome: Chrome<'a>,
    profile: Profile,
    zones: &'static [&'static str],
    failures: Vec<FailureView>,
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
    /// Which terms and privacy pages the opt-in form and snippet link to.
    terms_in_use: String,
    privacy_in_use: String,
    /// A business name too long to start marketing messages without a short brand name.
    brand_warning: Option<String>,
    /// The provider is Twilio: the page offers the configuration check.
    twilio: bool,
    /// What the check found, once the manager asked (`Err`: it could not run).
    findings: Option<Result<Vec<crate::twilio_check::Finding>, String>>,
    /// The Twilio-compatible API's account SID, and where that API is.
    account_sid: Option<String>,
    public_url: String,
    /// The reassigned-number lookup provider's name (`ASSENT_LOOKUP`), when one is set.
    lookup: Option<&'static str>,
}

async fn failures(app: &AppState, user: &SignedIn) -> WebResult<Vec<FailureView>> {
    Ok(app
        .store
        .login_failures(&user.tenant.id, FAILURES_SHOWN)
        .await?
        .into_iter()
        .map(|f| FailureView {
            at: TimeEl::new(&user.tenant, f.at),
            email: f.email,
            locked: f.locked,
        })
        .collect())
}

/// What the page shows beside the settings: the business card as typed or stored, and the
/// recent sign-in failures.
struct Shown {
    profile: Profile,
    failures: Vec<FailureView>,
    account_sid: Option<String>,
}

async fn shown(app: &AppState, user: &SignedIn, profile: Profile) -> WebResult<Shown> {
    Ok(Shown {
        profile,
        failures: failures(app, user).await?,
        account_sid: app
            .store
            .twilio_account(&user.tenant.id)
            .await?
            .map(|a| a.account_sid),
    })
}

fn form(
    app: &AppState,
    user: &SignedIn,
    shown: Shown,
    s: &Settings,
    error: Option<&str>,
    saved: bool,
) -> Response {
    form_with(app, user, shown, s, error, saved, None)
}

fn form_with(
    app: &AppState,
    user: &SignedIn,
    shown: Shown,
    s: &Settings,
    error: Option<&str>,
    saved: bool,
    findings: Option<Result<Vec<crate::twilio_check::Finding>, String>>,
) -> Response {
    let twilio = app.twilio_account.is_some();
    let Shown {
        profile,
        failures,
        account_sid,
    } = shown;
    let t = with_settings(&user.tenant, s);
    let (terms, privacy) = service::opt_in_tools::policy_links(&t, "");
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
                minute: thousands(minute.into()),
                day: thousands(day.into()),
            }
        })
        .collect();
    render(&SettingsPage {
        lookup: app.lookups.as_ref().map(|l| match l.provider {
            "twilio" => "Twilio Lookup",
            other => other,
        }),
        chrome: Chrome::new(user, "Settings", Section::Settings),
        profile,
        zones: ZONES,
        failures,
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
        terms_in_use: in_use("terms", &terms),
        privacy_in_use: in_use("privacy policy", &privacy),
        brand_warning: service::settings::brand_warning(&t.name, s),
        twilio,
        findings,
        account_sid,
        public_url: app.config.public_url.clone(),
    })
}

/// Which page of a kind is in use, in the page's words.
fn in_use(what: &str, l: &service::opt_in_tools::PolicyLink) -> String {
    if l.default {
        format!("In use: Assent's default {what} page, {}.", l.url)
    } else {
        format!("In use: your {what} page, {}.", l.url)
    }
}

/// What limits mean in texts: carriers count segments, so a two-segment text counts twice.
fn limits_meaning(l: &RateLimits) -> String {
    format!(
        "{} texts a minute from each sending number and {} a day in all, if each is one segment (160 plain characters); half as many of two segments.",
        thousands(l.per_sender_per_minute.into()),
        thousands(l.per_tenant_per_day.into())
    )
}

/// A field the page posts that could not be read at all; the service checks the rest.
fn unreadable(field: &str) -> service::Error {
    service::Error::invalid(field, "must be a whole number")
}

/// Reads the sending limits: a 10DLC tier, or the manager's own numbers.
fn read_limits(posted: &Posted, s: &mut Settings) -> Result<(), service::Error> {
    let chosen = posted.field("rate_preset");
    if chosen.is_empty() {
        return Ok(());
    }
    if let Ok(p) = chosen.parse::<RatePreset>() {
        let (minute, day) = p.limits();
        s.rate_limits = RateLimits {
            preset: Some(p),
            per_sender_per_minute: minute,
            per_tenant_per_day: day,
        };
        return Ok(());
    }
    let number = |name: &str| {
        posted
            .field(name)
            .trim()
            .parse::<u32>()
            .map_err(|_| unreadable(&format!("rate_limits.{name}")))
    };
    s.rate_limits = RateLimits {
        preset: None,
        per_sender_per_minute: number("per_sender_per_minute")?,
        per_tenant_per_day: number("per_tenant_per_day")?,
    };
    Ok(())
}

/// Reads the countries card, when the page showed it.
fn read_countries(posted: &Posted, s: &mut Settings) {
    if !posted.ticked("countries_shown") {
        return;
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
    // Countries the page does not offer (set through the API) stay.
    countries.extend(
        s.countries
            .iter()
            .filter(|c| !matches!(c.as_str(), "US" | "CA"))
            .cloned(),
    );
    s.countries = countries;
}

/// Reads the reply texts the page shows. A text equal to the default is no override, so
/// it follows the business name and contact when they change: the default with the new
/// contact, or the one the form showed (the old contact), when the contact changed in
/// this same save. Texts the page does not show (other languages, the marketing footer)
/// are kept.
fn read_texts(posted: &Posted, before: &Tenant, s: &mut Settings) {
    let bare = |settings: &Settings| {
        let mut d = settings.clone();
        d.reply_texts.clear();
        with_settings(before, &d)
    };
    let (new_defaults, shown_defaults) = (bare(s), bare(&before.settings));
    for (key, _, _) in TEXTS {
        s.reply_texts.remove(*key);
        let typed = posted.field(&format!("text_{key}")).trim().to_string();
        if typed.is_empty()
            || typed == text_for(&new_defaults, key)
            || typed == text_for(&shown_defaults, key)
        {
            continue;
        }
        s.reply_texts.insert((*key).to_string(), typed);
    }
}

/// The settings the page asks for, or the first field that could not be read (they are
/// still returned, to be shown again as typed).
fn read_form(posted: &Posted, before: &Tenant) -> (Settings, Option<service::Error>) {
    let mut s = before.settings.clone();
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
    s.terms_url = posted.field("terms_url").to_string();
    s.privacy_url = posted.field("privacy_url").to_string();
    s.short_brand_name = posted.field("short_brand_name").trim().to_string();
    s.provider_opt_in_keyword = posted.field("provider_opt_in_keyword").trim().to_string();
    read_countries(posted, &mut s);
    let mut error = read_limits(posted, &mut s).err();
    let check_days = posted.field("reassigned_check_days").trim();
    // Shown only with a lookup provider; a form without it keeps the setting.
    if !check_days.is_empty() {
        match check_days.parse::<u32>() {
            Ok(n) => s.reassigned_check_days = n,
            Err(_) => error = error.or(Some(unreadable("reassigned_check_days"))),
        }
    }
    let days = posted.field("review_deadline_days").trim();
    // A form from before this field existed keeps the setting.
    if !days.is_empty() {
        match days.parse::<u32>() {
            Ok(n) => s.review_deadline_days = n,
            Err(_) => error = error.or(Some(unreadable("review_deadline_days"))),
        }
    }
    match posted.field("marketing_cap_per_day").trim().parse::<u32>() {
        Ok(n) => s.marketing_cap_per_day = n,
        Err(_) => error = error.or(Some(unreadable("marketing_cap_per_day"))),
    }
    read_texts(posted, before, &mut s);
    (s, error)
}

/// What the service refused, in the page's words.
fn error_words(field: &str, message: &str) -> String {
    match field {
        "marketing_cap_per_day" => "Marketing texts per day must be 1, 2 or 3.".into(),
        "review_deadline_days" => "The review deadline must be 1 to 10 business days.".into(),
        "reassigned_check_days" => {
            "Check consents older than must be a whole number of days from 0 to 365.".into()
        }
        f if f.starts_with("rate_limits.") => {
            "Your own sending limits must be whole numbers of at least 1.".into()
        }
        "countries" if message.starts_with("must name") => {
            "Choose at least one country to text.".into()
        }
        "contact" => "To text Canadian numbers, give a contact (CASL).".into(),
        "mailing_address" => "To text Canadian numbers, give your mailing address (CASL).".into(),
        "terms_url" => "The terms link must start with https://".into(),
        "privacy_url" => "The privacy policy link must start with https://".into(),
        "short_brand_name" => format!("The short brand name {message}."),
        "provider_opt_in_keyword" => format!("The provider's opt-in keyword {message}."),
        "business_name" => format!("The business name {message}."),
        "time_zone" => {
            "The time zone must be an IANA name such as America/Chicago (see the suggestions)."
                .into()
        }
        f => match f
            .strip_prefix("reply_texts.")
            .and_then(|k| TEXTS.iter().find(|(key, _, _)| *key == k))
        {
            Some((_, label, _)) => format!("The {label} {message}."),
            None => format!("{field}: {message}"),
        },
    }
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    notice: Option<String>,
}

fn profile_of(t: &Tenant) -> Profile {
    Profile {
        name: t.name.clone(),
        time_zone: t.time_zone.name().to_string(),
    }
}

pub async fn show(
    State(app): State<AppState>,
    user: SignedIn,
    Query(q): Query<SettingsQuery>,
) -> WebResult<Response> {
    let shown = shown(&app, &user, profile_of(&user.tenant)).await?;
    Ok(form(
        &app,
        &user,
        shown,
        &user.tenant.settings,
        None,
        q.notice.as_deref() == Some("saved"),
    ))
}

/// The business card's fields, when the page showed it (a form from before it existed
/// keeps both).
fn read_profile(posted: &Posted) -> Option<Profile> {
    posted.ticked("profile_shown").then(|| Profile {
        name: posted.field("business_name").to_string(),
        time_zone: posted.field("time_zone").to_string(),
    })
}

pub async fn save(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    posted.user.owner_only()?;
    let user = &posted.user;
    let (s, unreadable) = read_form(&posted, &user.tenant);
    let typed = read_profile(&posted);
    // The name and zone are checked first, and stored only once the settings were.
    let profile = service::settings::check_profile(
        &user.tenant,
        typed.as_ref().map(|p| p.name.as_str()),
        typed.as_ref().map(|p| p.time_zone.as_str()),
    );
    let saved = match (unreadable, profile) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok((name, tz))) => {
            match service::settings::update(&app, &user.tenant, s.clone()).await {
                Ok(_) => service::settings::update_profile(&app, &user.tenant, &name, tz).await,
                Err(e) => Err(e),
            }
        }
    };
    match saved {
        Ok(()) => Ok(see_other("/settings?notice=saved")),
        Err(service::Error::Invalid { field, message }) => {
            let profile = typed.unwrap_or_else(|| profile_of(&user.tenant));
            let shown = shown(&app, user, profile).await?;
            let mut res = form(
                &app,
                user,
                shown,
                &s,
                Some(&error_words(&field, &message)),
                false,
            );
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

/// The **Check Twilio** button: what Twilio's API says about the senders, on the page.
pub async fn twilio_check(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    posted.user.owner_only()?;
    let user = &posted.user;
    let findings = match &app.twilio_account {
        Some(account) => {
            crate::twilio_check::check(account, &user.tenant, &app.config.public_url).await
        }
        None => Err(
            "The provider is not Twilio (ASSENT_PROVIDER=twilio): there is nothing to check."
                .into(),
        ),
    };
    let shown = shown(&app, user, profile_of(&user.tenant)).await?;
    Ok(form_with(
        &app,
        user,
        shown,
        &user.tenant.settings,
        None,
        false,
        Some(findings),
    ))
}
