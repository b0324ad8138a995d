//! Registrations: the Register for Texting form and the Marketing Registration form with
//! their status, and the sending numbers. A form can be submitted while it is not yet
//! submitted or after a rejection; a pending or approved registration is shown, not
//! re-opened (resubmitting would stop the tenant's texts until a new decision).

use std::collections::HashMap;

use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_store::{Registration, RegistrationKind, Senders};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{Posted, SignedIn, csrf_field};
use super::{
    Page, Section, WebError, WebResult, esc, phone_display, registration_label, see_other, time_el,
};
use crate::AppState;
use crate::api::validate_registration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Text,
    Email,
    Url,
    Tel,
    Area,
    /// One sample message per line.
    Lines,
}

struct Field {
    name: &'static str,
    label: &'static str,
    input: Input,
    required: bool,
    hint: &'static str,
}

const fn field(name: &'static str, label: &'static str, input: Input) -> Field {
    Field {
        name,
        label,
        input,
        required: true,
        hint: "",
    }
}

const TEXTING: &[Field] = &[
    field("legal_name", "Legal business name", Input::Text),
    Field {
        hint: "9 digits, such as 12-3456789",
        ..field("ein", "EIN (employer identification number)", Input::Text)
    },
    field("address", "Business address", Input::Text),
    field("website", "Website", Input::Url),
    field("contact_email", "Contact email", Input::Email),
    Field {
        required: false,
        ..field("contact_phone", "Contact phone (optional)", Input::Tel)
    },
    Field {
        hint: "What you text customers about, e.g. appointment reminders and estimate follow-ups.",
        ..field("use_case", "How you text customers", Input::Area)
    },
    Field {
        hint: "One message per line, as customers will read them.",
        ..field("sample_messages", "Sample messages", Input::Lines)
    },
];

const MARKETING: &[Field] = &[
    field("brand", "Brand name", Input::Text),
    Field {
        hint: "What your marketing texts offer, and how often.",
        ..field("campaign_description", "Campaign description", Input::Area)
    },
    Field {
        hint: "How customers give written consent.",
        ..field("opt_in_flow", "How customers opt in", Input::Area)
    },
    Field {
        hint: "One message per line; marketing texts end with “Reply STOP to opt out”.",
        ..field("sample_messages", "Sample messages", Input::Lines)
    },
];

fn fields_of(kind: RegistrationKind) -> &'static [Field] {
    match kind {
        RegistrationKind::Texting => TEXTING,
        RegistrationKind::Marketing => MARKETING,
    }
}

/// A form being shown again with what was typed and the error beside its field.
struct Retry<'a> {
    kind: RegistrationKind,
    values: &'a HashMap<String, String>,
    field: String,
    message: String,
}

/// A field's value as text: what was just typed, or what was submitted before.
fn value_of(f: &Field, typed: Option<&HashMap<String, String>>, before: &Value) -> String {
    if let Some(v) = typed {
        return v.get(f.name).cloned().unwrap_or_default();
    }
    match before.get(f.name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn form_html(
    user: &SignedIn,
    kind: RegistrationKind,
    before: &Value,
    retry: Option<&Retry<'_>>,
) -> String {
    let typed = retry.filter(|r| r.kind == kind).map(|r| r.values);
    let error_for = |name: &str| {
        retry
            .filter(|r| r.kind == kind && r.field == name)
            .map(|r| r.message.clone())
    };
    let k = kind.as_str();
    let mut out = format!(
        "<form method=\"post\" action=\"/registrations/{k}\" class=\"registration\">{}",
        csrf_field(user)
    );
    for f in fields_of(kind) {
        let id = format!("{k}-{}", f.name);
        let mut value = value_of(f, typed, before);
        if value.is_empty() && typed.is_none() && kind == RegistrationKind::Marketing {
            value = match f.name {
                "brand" => user.tenant.name.clone(),
                "opt_in_flow" => "Double opt-in through Assent: customers text our opt-in phrase, scan our QR code or use our web form (unticked consent box beside the full disclosure), or we send a request from their customer record; they are opted in only after replying YES.".into(),
                _ => value,
            };
        }
        let error = error_for(f.name);
        let mut described = Vec::new();
        let hint = if f.hint.is_empty() {
            String::new()
        } else {
            described.push(format!("{id}-hint"));
            format!("<p class=\"hint\" id=\"{id}-hint\">{}</p>", esc(f.hint))
        };
        let error_html = match &error {
            Some(m) => {
                described.push(format!("{id}-error"));
                format!(
                    "<p class=\"notice error\" id=\"{id}-error\" role=\"alert\">{}</p>",
                    esc(m)
                )
            }
            None => String::new(),
        };
        let mut attrs = String::new();
        if f.required {
            attrs.push_str(" required");
        }
        if !described.is_empty() {
            attrs.push_str(&format!(" aria-describedby=\"{}\"", described.join(" ")));
        }
        if error.is_some() {
            attrs.push_str(" aria-invalid=\"true\"");
        }
        let control = match f.input {
            Input::Area | Input::Lines => format!(
                "<textarea id=\"{id}\" name=\"{name}\" rows=\"4\"{attrs}>{value}</textarea>",
                name = f.name,
                value = esc(&value)
            ),
            other => format!(
                "<input type=\"{ty}\" id=\"{id}\" name=\"{name}\" value=\"{value}\"{attrs}>",
                ty = match other {
                    Input::Email => "email",
                    Input::Url => "url",
                    Input::Tel => "tel",
                    _ => "text",
                },
                name = f.name,
                value = esc(&value)
            ),
        };
        out.push_str(&format!(
            "<div class=\"field\"><label for=\"{id}\">{label}</label>{hint}{control}{error_html}</div>",
            label = esc(f.label)
        ));
    }
    let button = match kind {
        RegistrationKind::Texting => "Submit Register for Texting",
        RegistrationKind::Marketing => "Submit Marketing Registration",
    };
    out.push_str(&format!(
        "<button type=\"submit\" class=\"primary\">{button}</button></form>"
    ));
    out
}

fn details_list(r: &Registration) -> String {
    let Some(obj) = r.details.as_object() else {
        return String::new();
    };
    let fields = fields_of(r.kind);
    let items: String = obj
        .iter()
        .map(|(k, v)| {
            let label = fields
                .iter()
                .find(|f| f.name == k)
                .map(|f| f.label.to_string())
                .unwrap_or_else(|| k.replace('_', " "));
            let value = match v {
                Value::String(s) => esc(s),
                Value::Array(a) => format!(
                    "<ul>{}</ul>",
                    a.iter()
                        .map(|x| format!(
                            "<li>{}</li>",
                            esc(&x
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string()))
                        ))
                        .collect::<String>()
                ),
                other => esc(&other.to_string()),
            };
            format!("<dt>{}</dt><dd>{value}</dd>", esc(&label))
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(
            "<details><summary>What was submitted</summary><dl class=\"facts\">{items}</dl></details>"
        )
    }
}

fn registration_card(
    user: &SignedIn,
    kind: RegistrationKind,
    r: &Option<Registration>,
    retry: Option<&Retry<'_>>,
) -> String {
    let (id, title, what) = match kind {
        RegistrationKind::Texting => (
            "texting",
            "Register for Texting",
            "Your business details and how you text customers. Until it is approved, no message of any kind leaves.",
        ),
        RegistrationKind::Marketing => (
            "marketing",
            "Marketing Registration",
            "Your brand and marketing campaign at The Campaign Registry (TCR). Until it is approved, no opt-in request or marketing message leaves, and the opt-in tools are off.",
        ),
    };
    let status = r
        .as_ref()
        .map(|r| r.status)
        .unwrap_or(RegistrationStatus::NotSubmitted);
    let class = match status {
        RegistrationStatus::Approved => "ok",
        RegistrationStatus::Rejected => "bad",
        RegistrationStatus::Pending => "warn",
        RegistrationStatus::NotSubmitted => "none",
    };
    let reason = r
        .as_ref()
        .and_then(|r| r.reason.as_deref())
        .map(|why| format!("<p>Reason: {}</p>", esc(why)))
        .unwrap_or_default();
    let updated = r
        .as_ref()
        .map(|r| {
            format!(
                "<p class=\"hint\">Last change: {}</p>",
                time_el(&user.tenant, r.updated_at)
            )
        })
        .unwrap_or_default();
    let before = r.as_ref().map(|r| r.details.clone()).unwrap_or(json!({}));
    let next = match status {
        RegistrationStatus::Approved => String::new(),
        RegistrationStatus::Pending => {
            "<p>Waiting for the decision; nothing to do now.</p>".to_string()
        }
        RegistrationStatus::Rejected => format!(
            "<h3>Correct and submit again</h3>{}",
            form_html(user, kind, &before, retry)
        ),
        RegistrationStatus::NotSubmitted => form_html(user, kind, &before, retry),
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}</h2><p>{what}</p>\
<p>Status: <span class=\"badge {class}\" data-testid=\"{id}-status\">{label}</span></p>{reason}{updated}{details}{next}</section>",
        title = esc(title),
        what = esc(what),
        label = registration_label(status),
        details = r.as_ref().map(details_list).unwrap_or_default(),
    )
}

fn senders_card(user: &SignedIn, error: Option<&str>, typed: Option<(&str, &str)>) -> String {
    let s = &user.tenant.senders;
    let shown = |n: &Option<E164>| n.as_ref().map(phone_display).unwrap_or_default();
    let (tx, mk) = match typed {
        Some((tx, mk)) => (tx.to_string(), mk.to_string()),
        None => (shown(&s.transactional), shown(&s.marketing)),
    };
    let error = error
        .map(|e| {
            format!(
                "<p class=\"notice error\" role=\"alert\" id=\"senders-error\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    format!(
        "<section class=\"card\" aria-labelledby=\"senders\"><h2 id=\"senders\">Sending numbers</h2>\
<p>Each kind of message leaves from its own number (they may be the same; then a STOP to it stops everything).</p>{error}\
<form method=\"post\" action=\"/senders\">{csrf}<div class=\"row wrap\">\
<div><label for=\"sender-tx\">Transactional number</label><p class=\"hint\" id=\"sender-tx-hint\">Job notifications, reminders, missed-call text-backs.</p>\
<input type=\"tel\" id=\"sender-tx\" name=\"transactional\" value=\"{tx}\" aria-describedby=\"sender-tx-hint\"></div>\
<div><label for=\"sender-mk\">Marketing number</label><p class=\"hint\" id=\"sender-mk-hint\">Offers and opt-in requests.</p>\
<input type=\"tel\" id=\"sender-mk\" name=\"marketing\" value=\"{mk}\" aria-describedby=\"sender-mk-hint\"></div></div>\
<button type=\"submit\">Save numbers</button></form></section>",
        csrf = csrf_field(user),
        tx = esc(&tx),
        mk = esc(&mk),
    )
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

fn page(
    user: &SignedIn,
    notice: Option<&str>,
    retry: Option<&Retry<'_>>,
    senders: String,
) -> Response {
    let regs = &user.registrations;
    let notice = match notice {
        Some("submitted") => {
            "<p class=\"notice ok\" role=\"status\">Submitted. The registration is pending until a decision comes back.</p>"
        }
        Some("senders_saved") => {
            "<p class=\"notice ok\" role=\"status\">Sending numbers saved.</p>"
        }
        _ => "",
    };
    let body = format!(
        "<h1>Registrations</h1>{notice}<p>Carriers block texts from businesses that are not registered. Both registrations must be approved before Assent sends marketing texts.</p>\
<div class=\"grid2\">{texting}{marketing}</div>{senders}",
        texting = registration_card(user, RegistrationKind::Texting, &regs.texting, retry),
        marketing = registration_card(user, RegistrationKind::Marketing, &regs.marketing, retry),
    );
    Page {
        title: "Registrations",
        section: Section::Registrations,
        body,
    }
    .render(user)
}

pub async fn registrations(user: SignedIn, Query(q): Query<PageQuery>) -> Response {
    let senders = senders_card(&user, None, None);
    page(&user, q.notice.as_deref(), None, senders)
}

pub async fn submit(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let kind = match kind.as_str() {
        "texting" => RegistrationKind::Texting,
        "marketing" => RegistrationKind::Marketing,
        _ => return Err(WebError::not_found("This registration")),
    };
    let user = &posted.user;
    let current = match kind {
        RegistrationKind::Texting => user.registrations.texting.as_ref(),
        RegistrationKind::Marketing => user.registrations.marketing.as_ref(),
    }
    .map(|r| r.status)
    .unwrap_or_default();
    if matches!(
        current,
        RegistrationStatus::Pending | RegistrationStatus::Approved
    ) {
        // Nothing to resubmit (a stale page or a double click).
        return Ok(see_other("/registrations"));
    }
    let mut body = serde_json::Map::new();
    for f in fields_of(kind) {
        let v = posted.field(f.name).trim();
        match f.input {
            Input::Lines => {
                let lines: Vec<Value> = v
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect();
                body.insert(f.name.into(), Value::Array(lines));
            }
            _ if v.is_empty() && !f.required => {}
            _ => {
                body.insert(f.name.into(), Value::String(v.to_string()));
            }
        }
    }
    let body = Value::Object(body);
    if let Err(e) = validate_registration(kind, &body) {
        let (field, message) = e
            .message
            .split_once(": ")
            .map(|(f, m)| (f.to_string(), m.to_string()))
            .unwrap_or_else(|| (String::new(), e.message.clone()));
        let label = fields_of(kind)
            .iter()
            .find(|f| f.name == field)
            .map(|f| f.label)
            .unwrap_or("This field");
        let retry = Retry {
            kind,
            values: &posted.fields,
            field,
            message: format!("{label} {message}."),
        };
        let mut res = page(user, None, Some(&retry), senders_card(user, None, None));
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(res);
    }
    app.store
        .save_registration(
            &user.tenant.id,
            &Registration {
                kind,
                status: RegistrationStatus::Pending,
                reason: None,
                details: body,
                updated_at: app.clock.now(),
            },
        )
        .await?;
    Ok(see_other("/registrations?notice=submitted"))
}

pub async fn save_senders(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    let (tx_raw, mk_raw) = (
        posted.field("transactional").trim(),
        posted.field("marketing").trim(),
    );
    let parse = |label: &str, v: &str| -> Result<Option<E164>, String> {
        if v.is_empty() {
            return Ok(None);
        }
        E164::parse(v)
            .map(Some)
            .map_err(|e| format!("{label}: {e}."))
    };
    let refuse = |message: String| {
        let mut res = page(
            user,
            None,
            None,
            senders_card(user, Some(&message), Some((tx_raw, mk_raw))),
        );
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        res
    };
    let senders = match (
        parse("Transactional number", tx_raw),
        parse("Marketing number", mk_raw),
    ) {
        (Ok(transactional), Ok(marketing)) => Senders {
            transactional,
            marketing,
            former: Vec::new(),
        },
        (Err(m), _) | (_, Err(m)) => return Ok(refuse(m)),
    };
    match app
        .store
        .set_senders(&user.tenant.id, &senders, app.clock.now())
        .await
    {
        Ok(()) => Ok(see_other("/registrations?notice=senders_saved")),
        Err(assent_store::StoreError::Conflict(_)) => Ok(refuse(
            "One of these numbers is already used by another business in Assent.".into(),
        )
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
