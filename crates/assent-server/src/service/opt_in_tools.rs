//! The opt-in tools a tenant hands out once its marketing registration is approved: the
//! `sms:` link with the opt-in phrase, its QR code, an HTML snippet and the hosted form's
//! embed code (`GET /opt-in/link` and the Opt-in tools page).

use assent_core::compose;
use assent_core::gate::{Reason, RegistrationStatus};
use assent_core::keyword::LINK_PHRASE;
use assent_core::phone::E164;
use assent_store::{Registrations, Tenant};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::{Error, Result};
use crate::error::Code;

/// Everything but RFC 3986's unreserved characters.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or a query value: `%20`, never `+`, as RFC 5724 wants
/// for `sms:` bodies.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RESERVED).to_string()
}

pub fn sms_uri(sender: &E164) -> String {
    format!("sms:{}?&body={}", sender, percent_encode(LINK_PHRASE))
}

pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// The marketing sender the tools point at: only once the marketing registration is
/// approved (the gate's refusal otherwise), and only when one is set.
pub fn sender<'a>(t: &'a Tenant, regs: &Registrations) -> Result<&'a E164> {
    if regs.marketing_status() != RegistrationStatus::Approved {
        return Err(Error::gate(Reason::MarketingNotRegistered));
    }
    t.senders.marketing.as_ref().ok_or_else(|| {
        Error::refused(
            Code::SenderNotConfigured,
            "set a marketing sender first (PUT /senders)",
        )
    })
}

/// The tools for a tenant, or why it has none yet (see [`sender`]).
pub fn for_tenant(t: &Tenant, regs: &Registrations, public_url: &str) -> Result<LinkTools> {
    Ok(link_tools(t, sender(t, regs)?, public_url))
}

/// What the opt-in tools hand out for a tenant whose marketing registration is approved.
pub struct LinkTools {
    pub sms_uri: String,
    pub html_snippet: String,
    pub form_url: String,
    pub embed_code: String,
    pub disclosure: String,
}

/// A terms or privacy link the opt-in surfaces show: the tenant's own page, or while it
/// set none, Assent's default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLink {
    pub url: String,
    /// Assent's default page (`/optin/{slug}/terms` or `/privacy`).
    pub default: bool,
}

/// The terms and privacy links of a tenant; the default pages' addresses start with `base`
/// (the public URL, or empty for a link from the form's own page).
pub fn policy_links(t: &Tenant, base: &str) -> (PolicyLink, PolicyLink) {
    let link = |own: &str, page: &str| match own.trim() {
        "" => PolicyLink {
            url: format!("{base}/optin/{}/{page}", t.slug),
            default: true,
        },
        own => PolicyLink {
            url: own.to_string(),
            default: false,
        },
    };
    (
        link(&t.settings.terms_url, "terms"),
        link(&t.settings.privacy_url, "privacy"),
    )
}

/// The link with its disclosure, for an email template.
#[derive(askama::Template)]
#[template(path = "snippets/link.html")]
struct LinkSnippet<'a> {
    uri: &'a str,
    name: &'a str,
    disclosure: &'a str,
    terms_url: &'a str,
    privacy_url: &'a str,
}

/// The form in an iframe that tells the form which page it is on.
#[derive(askama::Template)]
#[template(path = "snippets/embed.html")]
struct EmbedCode<'a> {
    frame_id: &'a str,
    name: &'a str,
    form_url: &'a str,
}

pub fn link_tools(t: &Tenant, sender: &E164, public_url: &str) -> LinkTools {
    let uri = sms_uri(sender);
    let disclosure = compose::disclosure(&t.name);
    let form_url = format!("{}/optin/{}", public_url, t.slug);
    let (terms, privacy) = policy_links(t, public_url);
    let html_snippet = LinkSnippet {
        uri: &uri,
        name: &t.name,
        disclosure: &disclosure,
        terms_url: &terms.url,
        privacy_url: &privacy.url,
    }
    .to_string();
    let embed_code = EmbedCode {
        frame_id: &format!("assent-optin-{}", t.slug),
        name: &t.name,
        form_url: &form_url,
    }
    .to_string();
    LinkTools {
        sms_uri: uri,
        html_snippet,
        form_url,
        embed_code,
        disclosure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_uri_uses_percent_20_never_plus() {
        let u = sms_uri(&E164::parse("+15125550101").unwrap());
        assert_eq!(
            u,
            "sms:+15125550101?&body=I%20would%20like%20to%20sign%20up%20for%20marketing%20text%20messages%21"
        );
    }

    /// The snippet and the embed code are copied into other sites: their bytes are what
    /// the hand-built strings were, with the name escaped by named entities.
    #[test]
    fn link_snippets_escape_the_name_and_keep_their_shape() {
        let t = Tenant {
            id: "t1".into(),
            slug: "bob-s".into(),
            name: "Bob's <Heat> & Air".into(),
            time_zone: assent_core::Tz::America__Chicago,
            settings: Default::default(),
            senders: Default::default(),
            created_at: chrono::Utc::now(),
        };
        let sender = E164::parse("+15125550101").unwrap();
        let tools = link_tools(&t, &sender, "https://assent.example");
        let name = "Bob&#39;s &lt;Heat&gt; &amp; Air";
        assert_eq!(
            tools.html_snippet,
            format!(
                "<p><a href=\"{uri}\">Text us to get {name} offers by SMS</a></p>\n<p style=\"font-size:small\">{disclosure} <a href=\"https://assent.example/optin/bob-s/terms\">Terms</a> · <a href=\"https://assent.example/optin/bob-s/privacy\">Privacy Policy</a>.</p>",
                uri = tools.sms_uri.replace('&', "&amp;"),
                disclosure = compose::disclosure(&t.name)
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('\'', "&#39;"),
            )
        );
        assert_eq!(
            tools.embed_code,
            format!(
                "<iframe id=\"assent-optin-bob-s\" title=\"Sign up for text messages from {name}\" src=\"https://assent.example/optin/bob-s\" style=\"border:0;width:100%;max-width:480px;height:520px\"></iframe>\n<script>document.getElementById(\"assent-optin-bob-s\").src = \"https://assent.example/optin/bob-s?page=\" + encodeURIComponent(window.location.href);</script>"
            )
        );
    }
}
