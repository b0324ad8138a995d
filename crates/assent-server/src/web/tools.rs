//! The opt-in tools: the `sms:` link, its QR code, the HTML snippet, the form's embed code
//! and a preview of the form as customers see it.

use assent_core::keyword::LINK_PHRASE;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::SignedIn;
use askama::Template;

use super::{Chrome, Section, WebError, WebResult, phone_display, render};
use crate::AppState;
use crate::error::Code;
use crate::service::{self, opt_in_tools};

struct Ready {
    phrase: &'static str,
    number: String,
    sms_uri: String,
    /// The SVG after its opening `<svg`, so the template can hide it from screen readers
    /// (the image is labelled by its wrapper).
    qr: Option<String>,
    html_snippet: String,
    form_url: String,
    embed_code: String,
    slug: String,
}

enum ToolsState {
    NotApproved,
    NoSender,
    Ready(Box<Ready>),
}

#[derive(Template)]
#[template(path = "tools.html")]
struct ToolsPage<'a> {
    chrome: Chrome<'a>,
    state: ToolsState,
}

pub async fn opt_in_tools(State(app): State<AppState>, user: SignedIn) -> WebResult<Response> {
    let t = &user.tenant;
    let state = match opt_in_tools::for_tenant(t, &user.registrations, &app.config.public_url) {
        Ok(tools) => {
            let qr = opt_in_tools::qr_svg(&tools.sms_uri).and_then(|svg| {
                svg.find("<svg")
                    .map(|i| svg[i + "<svg".len()..].to_string())
            });
            ToolsState::Ready(Box::new(Ready {
                phrase: LINK_PHRASE,
                number: t
                    .senders
                    .marketing
                    .as_ref()
                    .map(phone_display)
                    .unwrap_or_default(),
                sms_uri: tools.sms_uri,
                qr,
                html_snippet: tools.html_snippet,
                form_url: tools.form_url,
                embed_code: tools.embed_code,
                slug: super::url_part(&t.slug),
            }))
        }
        Err(service::Error::Refused {
            code: Code::SenderNotConfigured,
            ..
        }) => ToolsState::NoSender,
        Err(_) => ToolsState::NotApproved,
    };
    Ok(render(&ToolsPage {
        chrome: Chrome::new(&user, "Opt-in tools", Section::OptInTools),
        state,
    }))
}

pub async fn qr_download(user: SignedIn) -> WebResult<Response> {
    let t = &user.tenant;
    let sender = opt_in_tools::sender(t, &user.registrations).map_err(|_| WebError {
        status: StatusCode::NOT_FOUND,
        message: "The QR code is available once your Marketing Registration is approved.".into(),
    })?;
    let svg = opt_in_tools::qr_svg(&opt_in_tools::sms_uri(sender)).ok_or_else(|| WebError {
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
