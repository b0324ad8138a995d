//! Twilio's REST API, as a thin client: `POST /2010-04-01/Accounts/{sid}/Messages.json`,
//! form-encoded, HTTP Basic auth. What can and cannot be retried follows from what can
//! have been sent: a 429 or 503 answer, or a connection refused before the request went
//! out, sent nothing; a timeout or any other failure might have. A 429 is Twilio's answer to
//! too many requests open at once on the account, not to this message.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::{Accepted, OutboundSms, Provider, SendError};

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://api.twilio.com`, or a local fake in tests.
    pub api_base: String,
    pub timeout: Duration,
}

pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct TwilioError {
    code: Option<u32>,
    message: Option<String>,
}

impl Twilio {
    pub fn new(config: TwilioConfig) -> Result<Self, SendError> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SendError::Refused {
                code: None,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Twilio { config, http })
    }

    fn url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base.trim_end_matches('/'),
            self.config.account_sid
        )
    }
}

/// Sorts a failed call into what it means for retrying.
fn classify_transport(e: &reqwest::Error) -> SendError {
    if e.is_connect() && !e.is_timeout() {
        SendError::Retryable(format!("connection failed: {e}"))
    } else {
        SendError::Unknown(format!("request failed: {e}"))
    }
}

#[async_trait]
impl Provider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("To", sms.to.as_str()),
            ("From", sms.from.as_str()),
            ("Body", sms.body.as_str()),
        ];
        if let Some(cb) = &sms.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let response = self
            .http
            .post(self.url())
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            if status.is_success() {
                // Twilio took it but we lost the answer: we cannot know its id.
                SendError::Unknown(format!("answer lost after acceptance: {e}"))
            } else {
                classify_transport(&e)
            }
        })?;
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(c) => Ok(Accepted { provider_id: c.sid }),
                Err(e) => Err(SendError::Unknown(format!(
                    "unreadable answer to a {status}: {e}"
                ))),
            };
        }
        if status.as_u16() == 429 {
            return Err(SendError::Throttled(format!("HTTP {status}")));
        }
        if status.as_u16() == 503 {
            return Err(SendError::Retryable(format!("HTTP {status}")));
        }
        let err: Option<TwilioError> = serde_json::from_slice(&body).ok();
        let code = err.as_ref().and_then(|e| e.code);
        let message = err
            .and_then(|e| e.message)
            .unwrap_or_else(|| format!("HTTP {status}"));
        if code == Some(21610) {
            return Err(SendError::Blocked);
        }
        if status.is_client_error() {
            // Twilio refused the request outright: no message was created.
            return Err(SendError::Refused { code, message });
        }
        Err(SendError::Unknown(format!("HTTP {status}: {message}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_core::phone::E164;
    use wiremock::matchers::{body_string_contains, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn client(base: &str, timeout_ms: u64) -> Twilio {
        Twilio::new(TwilioConfig {
            account_sid: SID.into(),
            auth_token: "secret-token".into(),
            api_base: base.into(),
            timeout: Duration::from_millis(timeout_ms),
        })
        .unwrap()
    }

    fn sms() -> OutboundSms {
        OutboundSms {
            from: E164::parse("+15125550100").unwrap(),
            to: E164::parse("+15125550142").unwrap(),
            body: "Acme: on our way & 10% off".into(),
            status_callback: Some("https://assent.example/webhooks/twilio/status".into()),
        }
    }

    fn messages_path() -> String {
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    }

    #[tokio::test]
    async fn sends_the_exact_request_twilio_expects_and_keeps_the_sid() {
        let server = MockServer::start().await;
        // base64("AC…:secret-token")
        let auth = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{SID}:secret-token")
            )
        );
        Mock::given(method("POST"))
            .and(path(messages_path()))
            .and(header("authorization", auth.as_str()))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains("To=%2B15125550142"))
            .and(body_string_contains("From=%2B15125550100"))
            .and(body_string_contains(
                "Body=Acme%3A+on+our+way+%26+10%25+off",
            ))
            .and(body_string_contains(
                "StatusCallback=https%3A%2F%2Fassent.example%2Fwebhooks%2Ftwilio%2Fstatus",
            ))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(serde_json::json!({"sid": "SM123", "status": "queued"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let a = client(&server.uri(), 2000).send(&sms()).await.unwrap();
        assert_eq!(a.provider_id, "SM123");
    }

    #[tokio::test]
    async fn a_503_is_retryable_and_a_429_throttled() {
        for code in [503, 429] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(ResponseTemplate::new(code).set_body_json(
                    serde_json::json!({"code": 20429, "message": "Too Many Requests"}),
                ))
                .mount(&server)
                .await;
            let e = client(&server.uri(), 2000).send(&sms()).await.unwrap_err();
            match code {
                503 => assert!(matches!(e, SendError::Retryable(_)), "{code}: {e:?}"),
                _ => assert!(matches!(e, SendError::Throttled(_)), "{code}: {e:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_timeout_is_unknown_never_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_delay(Duration::from_millis(500))
                    .set_body_json(serde_json::json!({"sid": "SMlate"})),
            )
            .mount(&server)
            .await;
        let e = client(&server.uri(), 100).send(&sms()).await.unwrap_err();
        assert!(matches!(e, SendError::Unknown(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_500_is_unknown() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;
        let e = client(&server.uri(), 2000).send(&sms()).await.unwrap_err();
        assert!(matches!(e, SendError::Unknown(_)), "{e:?}");
    }

    #[tokio::test]
    async fn connection_refused_is_retryable() {
        // Nothing listens on a port we just bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = client(&format!("http://127.0.0.1:{port}"), 2000)
            .send(&sms())
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Retryable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn error_21610_is_a_carrier_block_and_other_400s_are_refusals() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})))
            .mount(&server)
            .await;
        assert_eq!(
            client(&server.uri(), 2000).send(&sms()).await.unwrap_err(),
            SendError::Blocked
        );

        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})))
            .mount(&server)
            .await;
        let e = client(&server.uri(), 2000).send(&sms()).await.unwrap_err();
        assert_eq!(
            e,
            SendError::Refused {
                code: Some(21211),
                message: "Invalid 'To' Phone Number".into()
            }
        );
    }
}
