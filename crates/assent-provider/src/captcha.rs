//! The opt-in form's captcha hook. Cloudflare Turnstile, hCaptcha and Google reCAPTCHA (v2)
//! share one protocol: the widget puts a token in the form, and the server asks the
//! provider's `siteverify` endpoint about it with a form POST of `secret`, `response` and
//! `remoteip`, answered `{"success": true|false, …}`.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "turnstile" => Kind::Turnstile,
            "hcaptcha" => Kind::Hcaptcha,
            "recaptcha" => Kind::Recaptcha,
            _ => return None,
        })
    }
    /// The widget's script.
    pub fn script_url(self) -> &'static str {
        match self {
            Kind::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/api.js",
            Kind::Hcaptcha => "https://js.hcaptcha.com/1/api.js",
            Kind::Recaptcha => "https://www.google.com/recaptcha/api.js",
        }
    }
    /// The class of the element the script turns into the widget.
    pub fn widget_class(self) -> &'static str {
        match self {
            Kind::Turnstile => "cf-turnstile",
            Kind::Hcaptcha => "h-captcha",
            Kind::Recaptcha => "g-recaptcha",
        }
    }
    /// The form field the widget fills with its token.
    pub fn token_field(self) -> &'static str {
        match self {
            Kind::Turnstile => "cf-turnstile-response",
            Kind::Hcaptcha => "h-captcha-response",
            Kind::Recaptcha => "g-recaptcha-response",
        }
    }
    pub fn verify_url(self) -> &'static str {
        match self {
            Kind::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Kind::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Kind::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }
    /// Origins the form page must allow scripts and frames from.
    pub fn origins(self) -> &'static str {
        match self {
            Kind::Turnstile => "https://challenges.cloudflare.com",
            Kind::Hcaptcha => "https://hcaptcha.com https://*.hcaptcha.com",
            Kind::Recaptcha => "https://www.google.com https://www.gstatic.com",
        }
    }
}

/// A configured captcha: the public site key for the widget and the secret for checks.
#[derive(Clone)]
pub struct Captcha {
    pub kind: Kind,
    pub site_key: String,
    secret: String,
    verify_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Captcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Captcha")
            .field("kind", &self.kind)
            .field("site_key", &self.site_key)
            .field("verify_url", &self.verify_url)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    success: bool,
    /// The site the widget was solved on.
    #[serde(default)]
    hostname: Option<String>,
}

impl Captcha {
    /// `verify_url` replaces the provider's endpoint (a local fake in tests).
    pub fn new(
        kind: Kind,
        site_key: String,
        secret: String,
        verify_url: Option<String>,
    ) -> Result<Captcha, String> {
        if site_key.trim().is_empty() || secret.trim().is_empty() {
            return Err("a captcha needs both a site key and a secret".into());
        }
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Captcha {
            kind,
            site_key,
            secret,
            verify_url: verify_url.unwrap_or_else(|| kind.verify_url().to_string()),
            http,
        })
    }

    /// Whether the provider vouches for `token`, solved on `hostname` (this server's public
    /// host: a token solved on another site that uses the same keys is no proof here);
    /// `Err` when it could not be asked (the form then refuses: an unchecked submission is
    /// what the captcha is there to stop).
    pub async fn verify(
        &self,
        token: &str,
        remote_ip: &str,
        hostname: &str,
    ) -> Result<bool, String> {
        let r = self
            .http
            .post(&self.verify_url)
            .form(&[
                ("secret", self.secret.as_str()),
                ("response", token),
                ("remoteip", remote_ip),
            ])
            .send()
            .await
            .map_err(|e| format!("captcha check: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("captcha check answered {}", r.status()));
        }
        let a: Answer = r
            .json()
            .await
            .map_err(|e| format!("captcha check: unreadable answer: {e}"))?;
        let on_this_site = a
            .hostname
            .as_deref()
            .is_some_and(|h| h.trim_end_matches('.').eq_ignore_ascii_case(hostname));
        Ok(a.success && on_this_site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn asks_siteverify_with_the_secret_token_and_address() {
        crate::install_crypto();
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains("secret=s3cret"))
            .and(body_string_contains("response=good"))
            .and(body_string_contains("remoteip=203.0.113.7"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"success": true, "hostname": "sms.acme.example"}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"success": false, "error-codes": ["invalid-input-response"]}),
            ))
            .mount(&server)
            .await;
        let c = Captcha::new(
            Kind::Turnstile,
            "site".into(),
            "s3cret".into(),
            Some(server.uri()),
        )
        .unwrap();
        let here = "sms.acme.example";
        assert_eq!(c.verify("good", "203.0.113.7", here).await, Ok(true));
        assert_eq!(c.verify("forged", "203.0.113.7", here).await, Ok(false));
        // Solved on another site with the same keys: no.
        assert_eq!(
            c.verify("good", "203.0.113.7", "other.example").await,
            Ok(false)
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let down = Captcha::new(
            Kind::Hcaptcha,
            "site".into(),
            "s3cret".into(),
            Some("http://127.0.0.1:9".into()),
        )
        .unwrap();
        assert!(down.verify("good", "203.0.113.7", "x").await.is_err());
        assert!(Captcha::new(Kind::Recaptcha, "site".into(), " ".into(), None).is_err());
        assert_eq!(Kind::parse("Turnstile"), Some(Kind::Turnstile));
        assert_eq!(Kind::parse("friendly"), None);
    }
}
