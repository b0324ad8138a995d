//! Registrations: the Register for Texting form and the Marketing Registration form with
//! their status, and the sending numbers. A form can be submitted while it is not yet
//! submitted or after a rejection; a pending or approved registration is shown, not
//! re-opened (resubmitting would stop the tenant's texts until a new decision).

use std::collections::HashMap;

use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_store::{Registration, RegistrationKind};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use askama::Template;

use super::session::{Posted, SignedIn};
use super::{
    Chrome, Section, TimeEl, WebError, WebResult, phone_display, registration_label, render,
    see_other,
};
use crate::AppState;
use crate::service::tenants::{self, SenderField};
use crate::service::{self, registrations};

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

/// With `ASSENT_PROVIDER=twilio`: what Twilio registered, for Assent to read its decision.
const TEXTING_TWILIO: &[Field] = &[Field {
    required: false,
    hint: "If you registered your brand with Twilio: BN and 32 more characters (Twilio console, Messaging, Regulatory Compliance, Brands). Twilio then decides, and Assent reads its decision.",
    ..field(
        "brand_sid",
        "Twilio brand registration SID (optional)",
        Input::Text,
    )
}];

const MARKETING_TWILIO: &[Field] = &[
    Field {
        required: false,
        hint: "MG and 32 more characters: the messaging service your campaign is filed under.",
        ..field(
            "messaging_service_sid",
            "Twilio messaging service SID (optional)",
            Input::Text,
        )
    },
    Field {
        required: false,
        hint: "QE and 32 more characters (Twilio console, Messaging, Regulatory Compliance, Campaigns). Twilio then decides, and Assent reads its decision.",
        ..field(
            "campaign_sid",
            "Twilio campaign SID (optional)",
            Input::Text,
        )
    },
];

fn fields_of(kind: RegistrationKind) -> &'static [Field] {
    match kind {
        RegistrationKind::Texting => TEXTING,
        RegistrationKind::Marketing => MARKETING,
    }
}

/// A form's fields: the Twilio SIDs too when Assent sends through Twilio.
fn fields_for(kind: RegistrationKind, twilio: bool) -> Vec<&'static Field> {
    let extra: &[Field] = match (twilio, kind) {
        (false, _) => &[],
        (true, RegistrationKind::Texting) => TEXTING_TWILIO,
        (true, RegistrationKind::Marketing) => MARKETING_TWILIO,
    };
    fields_of(kind).iter().chain(extra).collect()
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

/// One field of a registration form as shown.
struct FieldView {
    id: String,
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    area: bool,
    ty: &'static str,
    value: String,
    required: bool,
    described: String,
    error: Option<String>,
}

struct FormView {
    kind: &'static str,
    fields: Vec<FieldView>,
    button: &'static str,
}

/// A submitted value: text, or a list (sample messages).
enum Detail {
    Text(String),
    List(Vec<String>),
}

/// What a registration card offers under its status.
enum Next {
    Nothing,
    /// Submitted: who decides, and how. `twilio`: Assent reads Twilio's decision (and
    /// offers to check now); otherwise the operator runs `approve` or `reject`.
    Waiting {
        twilio: bool,
        approve: String,
        reject: String,
    },
    Form {
        again: bool,
        form: FormView,
    },
}

struct Card {
    id: &'static str,
    title: &'static str,
    what: &'static str,
    class: &'static str,
    label: &'static str,
    reason: Option<String>,
    updated: Option<TimeEl>,
    details: Vec<(String, Detail)>,
    next: Next,
}

struct SendersView {
    error: Option<String>,
    tx: String,
    mk: String,
}

enum PageNotice {
    Submitted,
    SendersSaved,
    CheckedApproved,
    CheckedRejected,
    CheckedPending,
    CheckFailed,
}

#[derive(Template)]
#[template(path = "registrations.html")]
struct RegistrationsPage<'a> {
    chrome: Chrome<'a>,
    notice: Option<PageNotice>,
    cards: [Card; 2],
    senders: SendersView,
}

fn form_view(
    user: &SignedIn,
    kind: RegistrationKind,
    before: &Value,
    retry: Option<&Retry<'_>>,
    twilio: bool,
) -> FormView {
    let typed = retry.filter(|r| r.kind == kind).map(|r| r.values);
    let error_for = |name: &str| {
        retry
            .filter(|r| r.kind == kind && r.field == name)
            .map(|r| r.message.clone())
    };
    let k = kind.as_str();
    let fields = fields_for(kind, twilio)
        .into_iter()
        .map(|f| {
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
            if !f.hint.is_empty() {
                described.push(format!("{id}-hint"));
            }
            if error.is_some() {
                described.push(format!("{id}-error"));
            }
            FieldView {
                name: f.name,
                label: f.label,
                hint: f.hint,
                area: matches!(f.input, Input::Area | Input::Lines),
                ty: match f.input {
                    Input::Email => "email",
                    Input::Url => "url",
                    Input::Tel => "tel",
                    _ => "text",
                },
                value,
                required: f.required,
                described: described.join(" "),
                error,
                id,
            }
        })
        .collect();
    FormView {
        kind: k,
        fields,
        button: match kind {
            RegistrationKind::Texting => "Submit Register for Texting",
            RegistrationKind::Marketing => "Submit Marketing Registration",
        },
    }
}

fn details_of(r: &Registration) -> Vec<(String, Detail)> {
    let Some(obj) = r.details.as_object() else {
        return Vec::new();
    };
    let fields = fields_for(r.kind, true);
    obj.iter()
        .map(|(k, v)| {
            let label = fields
                .iter()
                .find(|f| f.name == k)
                .map(|f| f.label.to_string())
                .unwrap_or_else(|| k.replace('_', " "));
            let value = match v {
                Value::String(s) => Detail::Text(s.clone()),
                Value::Array(a) => Detail::List(
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect(),
                ),
                other => Detail::Text(other.to_string()),
            };
            (label, value)
        })
        .collect()
}

fn registration_card(
    app: &AppState,
    user: &SignedIn,
    kind: RegistrationKind,
    r: &Option<Registration>,
    retry: Option<&Retry<'_>>,
) -> Card {
    let twilio = app.a2p.is_some();
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
    let before = r.as_ref().map(|r| r.details.clone()).unwrap_or(json!({}));
    let next = match status {
        RegistrationStatus::Approved => Next::Nothing,
        RegistrationStatus::Pending => Next::Waiting {
            twilio: r
                .as_ref()
                .is_some_and(|r| registrations::twilio_decides(app, r)),
            approve: format!(
                "assent registration approve --tenant {} {}",
                user.tenant.slug,
                kind.as_str()
            ),
            reject: format!(
                "assent registration reject --tenant {} {} --reason \"what to correct\"",
                user.tenant.slug,
                kind.as_str()
            ),
        },
        RegistrationStatus::Rejected => Next::Form {
            again: true,
            form: form_view(user, kind, &before, retry, twilio),
        },
        RegistrationStatus::NotSubmitted => Next::Form {
            again: false,
            form: form_view(user, kind, &before, retry, twilio),
        },
    };
    Card {
        id,
        title,
        what,
        class,
        label: registration_label(status),
        reason: r.as_ref().and_then(|r| r.reason.clone()),
        updated: r.as_ref().map(|r| TimeEl::new(&user.tenant, r.updated_at)),
        details: r.as_ref().map(details_of).unwrap_or_default(),
        next,
    }
}

fn senders_card(user: &SignedIn, error: Option<&str>, typed: Option<(&str, &str)>) -> SendersView {
    let s = &user.tenant.senders;
    let shown = |n: &Option<E164>| n.as_ref().map(phone_display).unwrap_or_default();
    let (tx, mk) = match typed {
        Some((tx, mk)) => (tx.to_string(), mk.to_string()),
        None => (shown(&s.transactional), shown(&s.marketing)),
    };
    SendersView {
        error: error.map(str::to_string),
        tx,
        mk,
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

fn page(
    app: &AppState,
    user: &SignedIn,
    notice: Option<&str>,
    retry: Option<&Retry<'_>>,
    senders: SendersView,
) -> Response {
    let regs = &user.registrations;
    let notice = match notice {
        Some("submitted") => Some(PageNotice::Submitted),
        Some("senders_saved") => Some(PageNotice::SendersSaved),
        Some("checked_approved") => Some(PageNotice::CheckedApproved),
        Some("checked_rejected") => Some(PageNotice::CheckedRejected),
        Some("checked_pending") => Some(PageNotice::CheckedPending),
        Some("check_failed") => Some(PageNotice::CheckFailed),
        _ => None,
    };
    render(&RegistrationsPage {
        chrome: Chrome::new(user, "Registrations", Section::Registrations),
        notice,
        cards: [
            registration_card(app, user, RegistrationKind::Texting, &regs.texting, retry),
            registration_card(
                app,
                user,
                RegistrationKind::Marketing,
                &regs.marketing,
                retry,
            ),
        ],
        senders,
    })
}

pub async fn registrations(
    State(app): State<AppState>,
    user: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    let senders = senders_card(&user, None, None);
    page(&app, &user, q.notice.as_deref(), None, senders)
}

/// The **Check status** button: asks Twilio for its decision now.
pub async fn check(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    posted.user.owner_only()?;
    let kind =
        registrations::kind_of(&kind).ok_or_else(|| WebError::not_found("This registration"))?;
    let notice = match registrations::check_with_twilio(&app, &posted.user.tenant.id, kind).await {
        Ok(c) => match c.status {
            RegistrationStatus::Approved => "checked_approved",
            RegistrationStatus::Rejected => "checked_rejected",
            _ => "checked_pending",
        },
        Err(service::Error::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "checking a registration with Twilio failed");
            "check_failed"
        }
    };
    Ok(see_other(&format!(
        "/registrations?notice={notice}#{}",
        kind.as_str()
    )))
}

pub async fn submit(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    posted.user.owner_only()?;
    let kind =
        registrations::kind_of(&kind).ok_or_else(|| WebError::not_found("This registration"))?;
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
    for f in fields_for(kind, app.a2p.is_some()) {
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
    match registrations::submit(&app, &user.tenant.id, kind, Value::Object(body)).await {
        Ok(()) => Ok(see_other("/registrations?notice=submitted")),
        Err(service::Error::Invalid { field, message }) => {
            let label = fields_for(kind, true)
                .into_iter()
                .find(|f| f.name == field)
                .map(|f| f.label)
                .unwrap_or("This field");
            let retry = Retry {
                kind,
                values: &posted.fields,
                field,
                message: format!("{label} {message}."),
            };
            let mut res = page(
                &app,
                user,
                None,
                Some(&retry),
                senders_card(user, None, None),
            );
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn save_senders(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    posted.user.owner_only()?;
    let user = &posted.user;
    let (tx_raw, mk_raw) = (
        posted.field("transactional").trim(),
        posted.field("marketing").trim(),
    );
    let refuse = |message: String| {
        let mut res = page(
            &app,
            user,
            None,
            None,
            senders_card(user, Some(&message), Some((tx_raw, mk_raw))),
        );
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        res
    };
    // An empty box is no number.
    fn field(v: &str) -> SenderField<'_> {
        if v.is_empty() {
            SenderField::Clear
        } else {
            SenderField::Set(v)
        }
    }
    match tenants::set_senders(&app, &user.tenant, field(tx_raw), field(mk_raw)).await {
        Ok(_) => Ok(see_other("/registrations?notice=senders_saved")),
        Err(service::Error::Invalid { field, message }) => {
            let label = if field == "transactional" {
                "Transactional number"
            } else {
                "Marketing number"
            };
            Ok(refuse(format!("{label}: {message}.")))
        }
        Err(service::Error::Store(assent_store::StoreError::Conflict(_))) => Ok(refuse(
            "One of these numbers is already used by another business in Assent.".into(),
        )
        .into_response()),
        Err(e) => Err(e.into()),
    }
}
