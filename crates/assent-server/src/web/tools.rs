//! The opt-in tools: the `sms:` link, its QR code, the HTML snippet, the form's embed code
//! and a preview of the form as customers see it.

use assent_core::gate::RegistrationStatus;
use assent_core::keyword::LINK_PHRASE;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::SignedIn;
use super::{Page, Section, WebError, WebResult, esc, phone_display};
use crate::AppState;
use crate::api::consent::{link_tools, qr_svg};

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
