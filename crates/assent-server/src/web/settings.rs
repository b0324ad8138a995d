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

use super::session::{Posted, SignedIn, csrf_field};
use super::{Page, Section, WebResult, esc, see_other};
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

fn form(user: &SignedIn, s: &Settings, error: Option<&str>, notice: bool) -> String {
    let t = with_settings(&user.tenant, s);
    let checked = |on: bool| if on { " checked" } else { "" };
    let texts: String = TEXTS
        .iter()
        .map(|(key, label, hint)| {
            format!(
                "<div class=\"field\"><label for=\"text-{key}\">{label}</label><p class=\"hint\" id=\"text-{key}-hint\">{hint}</p>\
<textarea id=\"text-{key}\" name=\"text_{key}\" rows=\"3\" aria-describedby=\"text-{key}-hint\">{value}</textarea></div>",
                label = esc(label),
                hint = esc(hint),
                value = esc(&text_for(&t, key)),
            )
        })
        .collect();
    let cap: String = (1..=3)
        .map(|n| {
            format!(
                "<option value=\"{n}\"{}>{n}</option>",
                if s.marketing_cap_per_day == n {
                    " selected"
                } else {
                    ""
                }
            )
        })
        .collect();
    let notice = if notice {
        "<p class=\"notice ok\" role=\"status\">Settings saved.</p>"
    } else {
        ""
    };
    let error = error
        .map(|e| format!("<p class=\"notice error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let countries = countries_card(s);
    let limits = limits_field(&s.rate_limits);
    format!(
        "<h1>Settings</h1>{notice}{error}<form method=\"post\" action=\"/settings\" class=\"composer\">{csrf}\
<section class=\"card\"><h2>Contact and links</h2>\
<div class=\"field\"><label for=\"help-contact\">Help contact</label><p class=\"hint\" id=\"help-contact-hint\">Named in HELP replies, e.g. a phone number or email. Empty uses your transactional number.</p>\
<input type=\"text\" id=\"help-contact\" name=\"help_contact\" value=\"{help}\" aria-describedby=\"help-contact-hint\"></div>\
<div class=\"field\"><label for=\"terms-url\">Terms link</label><input type=\"url\" id=\"terms-url\" name=\"terms_url\" value=\"{terms}\"></div>\
<div class=\"field\"><label for=\"privacy-url\">Privacy policy link</label><input type=\"url\" id=\"privacy-url\" name=\"privacy_url\" value=\"{privacy}\"></div>\
<p class=\"hint\">Both links appear on your opt-in form.</p></section>\
{countries}\
<section class=\"card\"><h2>Sending rules</h2>\
<fieldset><legend>Quiet hours</legend>\
<div class=\"choice\"><input type=\"radio\" id=\"quiet-standard\" name=\"quiet_hours\" value=\"standard\"{standard}><label for=\"quiet-standard\">Standard: 8 am to 9 pm wherever the customer may be (their area code's time zones and their address's), narrower where either state requires</label></div>\
<div class=\"choice\"><input type=\"radio\" id=\"quiet-strictest\" name=\"quiet_hours\" value=\"strictest\"{strictest}><label for=\"quiet-strictest\">Strictest: every state's narrowest window, everywhere: 9 am to 8 pm, noon to 8 pm on Sundays</label></div></fieldset>\
<div class=\"field\"><label for=\"cap\">Marketing texts per phone per day, at most</label><select id=\"cap\" name=\"marketing_cap_per_day\">{cap}</select></div>\
<div class=\"field\"><label for=\"review-deadline\">Review deadline (business days)</label><input type=\"number\" id=\"review-deadline\" name=\"review_deadline_days\" min=\"1\" max=\"10\" value=\"{review_days}\" aria-describedby=\"review-deadline-hint\">\
<p class=\"hint\" id=\"review-deadline-hint\">A text waiting for review that nobody decides in this many business days is treated as STOP (at most 10, the FCC's limit).</p></div>\
{limits}\
<div class=\"switch\"><input type=\"checkbox\" role=\"switch\" id=\"revoke-all\" name=\"stop_revokes_all\" value=\"on\"{revoke} aria-describedby=\"revoke-all-hint\">\
<label for=\"revoke-all\">A STOP to marketing texts stops all texts</label></div>\
<p class=\"hint\" id=\"revoke-all-hint\">The FCC's revoke-all rule takes effect on 31 January 2027. Off: a STOP on the marketing number stops marketing only.</p>\
<fieldset><legend>Who answers STOP, START and HELP</legend>\
<div class=\"choice\"><input type=\"radio\" id=\"replies-assent\" name=\"keyword_replies\" value=\"assent\"{by_assent}><label for=\"replies-assent\">Assent (the texts below)</label></div>\
<div class=\"choice\"><input type=\"radio\" id=\"replies-provider\" name=\"keyword_replies\" value=\"provider\"{by_provider}><label for=\"replies-provider\">My provider (e.g. Twilio Advanced Opt-Out); Assent still answers YES</label></div></fieldset></section>\
<section class=\"card\"><h2>Automatic replies</h2><p class=\"hint\">Each starts with your business name. Clear a text to go back to the default.</p>{texts}</section>\
<button type=\"submit\" class=\"primary\">Save settings</button></form>",
        csrf = csrf_field(user),
        review_days = s.review_deadline_days,
        help = esc(&s.help_contact),
        terms = esc(&s.terms_url),
        privacy = esc(&s.privacy_url),
        standard = checked(s.quiet_hours == QuietPolicy::Standard),
        strictest = checked(s.quiet_hours == QuietPolicy::Strictest),
        revoke = checked(s.stop_revokes_all),
        by_assent = checked(s.keyword_replies == KeywordReplies::Assent),
        by_provider = checked(s.keyword_replies == KeywordReplies::Provider),
    )
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

/// The 10DLC tier (or own numbers) the sends are paced by.
fn limits_field(l: &RateLimits) -> String {
    let options: String = RatePreset::ALL
        .iter()
        .map(|p| {
            let (minute, day) = p.limits();
            format!(
                "<option value=\"{}\"{}>{}: {} a minute, {} a day</option>",
                p.as_str(),
                if l.preset == Some(*p) {
                    " selected"
                } else {
                    ""
                },
                esc(p.label()),
                thousands(minute),
                thousands(day)
            )
        })
        .collect();
    format!(
        "<fieldset><legend>Sending limits (your 10DLC tier)</legend>\
<div class=\"field\"><label for=\"rate-preset\">Tier</label><select id=\"rate-preset\" name=\"rate_preset\" aria-describedby=\"rate-meaning\">{options}<option value=\"custom\"{custom}>My own numbers (below)</option></select></div>\
<div class=\"field\"><label for=\"rate-minute\">Segments a minute per sending number</label><input type=\"number\" min=\"1\" id=\"rate-minute\" name=\"per_sender_per_minute\" value=\"{minute}\"></div>\
<div class=\"field\"><label for=\"rate-day\">Segments a day in all</label><input type=\"number\" min=\"1\" id=\"rate-day\" name=\"per_tenant_per_day\" value=\"{day}\"></div>\
<p class=\"hint\" id=\"rate-meaning\">Carriers count segments, and so does Assent. Now: {meaning} Texts beyond a limit wait, they are never dropped.</p></fieldset>",
        custom = if l.preset.is_none() { " selected" } else { "" },
        minute = l.per_sender_per_minute,
        day = l.per_tenant_per_day,
        meaning = esc(&limits_meaning(l)),
    )
}

/// Reads the limits into `s`; an error to show, or `None`.
fn read_limits(posted: &Posted, s: &mut Settings) -> Option<String> {
    let chosen = posted.field("rate_preset");
    if chosen.is_empty() {
        return None;
    }
    if let Some(p) = RatePreset::parse(chosen) {
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

/// Which countries are texted, and the CASL identification Canada needs.
fn countries_card(s: &Settings) -> String {
    let has = |c: &str| s.countries.iter().any(|k| k == c);
    let checked = |on: bool| if on { " checked" } else { "" };
    let others: Vec<&str> = s
        .countries
        .iter()
        .map(String::as_str)
        .filter(|c| !matches!(*c, "US" | "CA"))
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"hint\">Also texted (set through the API): {}.</p>",
            esc(&others.join(", "))
        )
    };
    format!(
        "<section class=\"card\"><h2>Countries</h2><input type=\"hidden\" name=\"countries_shown\" value=\"1\">\
<p class=\"hint\">Numbers from these countries are texted and taken by your opt-in form; any other number is refused.</p>\
<div class=\"choice\"><input type=\"checkbox\" id=\"country-us\" name=\"country_us\" value=\"on\"{us}><label for=\"country-us\">United States</label></div>\
<div class=\"choice\"><input type=\"checkbox\" id=\"country-ca\" name=\"country_ca\" value=\"on\"{ca} aria-describedby=\"country-ca-hint\"><label for=\"country-ca\">Canada</label></div>{others}\
<p class=\"hint\" id=\"country-ca-hint\">Canada's anti-spam law (CASL) wants your mailing address and a contact in the opt-in request and every marketing text: give both to switch Canada on. They are then added to the opt-in request and the HELP reply.</p>\
<div class=\"field\"><label for=\"mailing-address\">Mailing address</label><input type=\"text\" id=\"mailing-address\" name=\"mailing_address\" value=\"{address}\" autocomplete=\"street-address\"></div>\
<div class=\"field\"><label for=\"casl-contact\">Contact (a phone number, email or web address)</label><input type=\"text\" id=\"casl-contact\" name=\"contact\" value=\"{contact}\"></div></section>",
        us = checked(has("US")),
        ca = checked(has("CA")),
        address = esc(&s.mailing_address),
        contact = esc(&s.contact),
    )
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
    let body = form(
        &user,
        &user.tenant.settings,
        None,
        q.notice.as_deref() == Some("saved"),
    );
    Page {
        title: "Settings",
        section: Section::Settings,
        body,
    }
    .render(&user)
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
        let mut res = Page {
            title: "Settings",
            section: Section::Settings,
            body: form(user, &s, Some(&e), false),
        }
        .render(user);
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(res);
    }
    app.store.update_settings(&user.tenant.id, &s).await?;
    Ok(see_other("/settings?notice=saved"))
}
