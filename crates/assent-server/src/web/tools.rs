//! Registrations (both forms' status and the sending numbers) and the opt-in tools: the
//! `sms:` link, its QR code, the HTML snippet, the form's embed code and a preview.

use assent_core::gate::RegistrationStatus;
use assent_core::keyword::LINK_PHRASE;
use assent_store::Registration;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::SignedIn;
use super::{Page, Section, WebError, WebResult, esc, phone_display, registration_label, time_el};
use crate::AppState;
use crate::api::consent::{link_tools, qr_svg};

fn details_list(r: &Registration) -> String {
    let Some(obj) = r.details.as_object() else {
        return String::new();
    };
    let items: String = obj
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => esc(s),
                serde_json::Value::Array(a) => format!(
                    "<ul>{}</ul>",
                    a.iter()
                        .map(|x| format!(
                            "<li>{}</li>",
                            esc(x
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                                .as_str())
                        ))
                        .collect::<String>()
                ),
                other => esc(&other.to_string()),
            };
            format!("<dt>{}</dt><dd>{value}</dd>", esc(&k.replace('_', " ")))
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
    id: &str,
    title: &str,
    what: &str,
    api: &str,
    r: &Option<Registration>,
) -> String {
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
    let next = match status {
        RegistrationStatus::Approved => String::new(),
        RegistrationStatus::Pending => "<p>Waiting for the decision. Nothing to do now.</p>".into(),
        _ => format!(
            "<p>To submit it, send the form's fields to <code>{}</code> (see the API reference); the decision comes from your operator or provider.</p>",
            esc(api)
        ),
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}</h2><p>{what}</p>\
<p>Status: <span class=\"badge {class}\" data-testid=\"{id}-status\">{label}</span></p>{reason}{updated}{next}{details}</section>",
        title = esc(title),
        what = esc(what),
        label = registration_label(status),
        details = r.as_ref().map(details_list).unwrap_or_default(),
    )
}

pub async fn registrations(user: SignedIn) -> WebResult<Response> {
    let regs = &user.registrations;
    let senders = &user.tenant.senders;
    let sender = |n: &Option<assent_core::phone::E164>| {
        n.as_ref()
            .map(|n| esc(&phone_display(n)))
            .unwrap_or_else(|| "<em>not set</em>".into())
    };
    let body = format!(
        "<h1>Registrations</h1><p>Carriers block texts from businesses that are not registered. Both registrations below must be approved before Assent sends marketing texts.</p>\
<div class=\"grid2\">{texting}{marketing}</div>\
<section class=\"card\" aria-labelledby=\"senders\"><h2 id=\"senders\">Sending numbers</h2>\
<dl class=\"facts\"><dt>Transactional (job notifications, reminders)</dt><dd>{tx}</dd><dt>Marketing (offers, opt-in requests)</dt><dd>{mk}</dd></dl>\
<p class=\"hint\">Set them with <code>PUT /api/v1/senders</code>.</p></section>",
        texting = registration_card(
            &user,
            "texting",
            "Register for Texting",
            "Your business details and how you text customers. Until it is approved, no message of any kind leaves.",
            "PUT /api/v1/registrations/texting",
            &regs.texting
        ),
        marketing = registration_card(
            &user,
            "marketing",
            "Marketing Registration",
            "Your brand and marketing campaign at The Campaign Registry (TCR). Until it is approved, no opt-in request or marketing message leaves, and the opt-in tools are off.",
            "PUT /api/v1/registrations/marketing",
            &regs.marketing
        ),
        tx = sender(&senders.transactional),
        mk = sender(&senders.marketing),
    );
    Ok(Page {
        title: "Registrations",
        section: Section::Registrations,
        body,
    }
    .render(&user))
}

/// The QR code as an accessible inline image.
fn qr_inline(svg: &str) -> String {
    let svg = svg.find("<svg").map(|i| &svg[i..]).unwrap_or(svg).replacen(
        "<svg",
        "<svg aria-hidden=\"true\" focusable=\"false\"",
        1,
    );
    format!(
        "<div class=\"qr\" role=\"img\" aria-label=\"QR code that opens a text to your marketing number\">{svg}</div>"
    )
}

fn copy_block(id: &str, label: &str, what: &str, value: &str, rows: u8) -> String {
    let field = if rows <= 1 {
        format!(
            "<input type=\"text\" id=\"{id}\" readonly value=\"{}\">",
            esc(value)
        )
    } else {
        format!(
            "<textarea id=\"{id}\" readonly rows=\"{rows}\">{}</textarea>",
            esc(value)
        )
    };
    format!(
        "<div class=\"copy\"><label for=\"{id}\">{label}</label>{field}\
<button type=\"button\" class=\"copy-button\" data-copy=\"{id}\">Copy {what}</button>\
<span class=\"copied\" role=\"status\" aria-live=\"polite\"></span></div>",
    )
}

pub async fn opt_in_tools(State(app): State<AppState>, user: SignedIn) -> WebResult<Response> {
    let t = &user.tenant;
    let body = if user.registrations.marketing_status() != RegistrationStatus::Approved {
        "<h1>Opt-in tools</h1><p class=\"notice error\">The opt-in link, QR code and web form are available once your Marketing Registration is approved. See <a href=\"/registrations\">Registrations</a>.</p>".to_string()
    } else if let Some(sender) = t.senders.marketing.as_ref() {
        let tools = link_tools(t, sender, &app.config.public_url);
        let qr = qr_svg(&tools.sms_uri)
            .map(|s| qr_inline(&s))
            .unwrap_or_default();
        format!(
            "<h1>Opt-in tools</h1><p>Three ways for customers to give written consent to your marketing texts. Each one ends with the customer texting you, so consent is always double opt-in.</p>\
<section class=\"card\"><h2 id=\"link\">Opt-in link</h2>\
<p>For email templates and your website. On a phone it opens the messaging app with the text “{phrase}” addressed to {number}; sending it opts the customer in.</p>\
{link}<p><a href=\"{uri}\">Try the link</a> (on a phone)</p></section>\
<section class=\"card\"><h2 id=\"qr\">QR code</h2><p>For flyers, trucks and invoices: scanning it opens the same text.</p>\
{qr}<p><a href=\"/opt-in-tools/qr.svg\" download=\"opt-in-qr.svg\" class=\"button\">Download QR code (SVG)</a></p></section>\
<section class=\"card\"><h2 id=\"snippet\">HTML snippet</h2><p>The link with the disclosure customers must see, ready for an email template.</p>{snippet}</section>\
<section class=\"card\"><h2 id=\"embed\">Web form</h2><p>Your hosted form is at <a href=\"{form_url}\">{form_url}</a>. Paste this code into your website to embed it; it tells Assent which page the customer signed up on.</p>{embed}\
<h3>Preview</h3><iframe class=\"preview\" src=\"/optin/{slug}\" title=\"Preview of your opt-in form as customers see it\"></iframe></section>",
            phrase = esc(LINK_PHRASE),
            number = esc(&phone_display(sender)),
            link = copy_block("sms-link", "Opt-in link", "opt-in link", &tools.sms_uri, 1),
            uri = esc(&tools.sms_uri),
            snippet = copy_block(
                "html-snippet",
                "HTML snippet",
                "HTML snippet",
                &tools.html_snippet,
                5
            ),
            form_url = esc(&tools.form_url),
            embed = copy_block(
                "embed-code",
                "Embed code",
                "embed code",
                &tools.embed_code,
                5
            ),
            slug = esc(&super::url_part(&t.slug)),
        )
    } else {
        "<h1>Opt-in tools</h1><p class=\"notice error\">Set a marketing sending number first (<code>PUT /api/v1/senders</code>).</p>".to_string()
    };
    Ok(Page {
        title: "Opt-in tools",
        section: Section::OptInTools,
        body,
    }
    .render(&user))
}

pub async fn qr_download(user: SignedIn) -> WebResult<Response> {
    let t = &user.tenant;
    let sender = t
        .senders
        .marketing
        .as_ref()
        .filter(|_| user.registrations.marketing_status() == RegistrationStatus::Approved)
        .ok_or_else(|| WebError {
            status: StatusCode::NOT_FOUND,
            message: "The QR code is available once your Marketing Registration is approved."
                .into(),
        })?;
    let svg = qr_svg(&crate::api::consent::sms_uri(sender)).ok_or_else(|| WebError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "The QR code could not be drawn.".into(),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-opt-in-qr.svg\"", t.slug),
            ),
        ],
        svg,
    )
        .into_response())
}
