//! Twilio's A2P 10DLC registrations, read-only: a brand's status
//! (`GET /v1/a2p/BrandRegistrations/{BN…}`) and a campaign's
//! (`GET /v1/Services/{MG…}/Compliance/Usa2p/{QE…}`), on the Messaging API
//! (`https://messaging.twilio.com`), with the account's credentials. Twilio (with The
//! Campaign Registry and the carriers) decides; Assent only reads the decision.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct A2pConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://messaging.twilio.com`, or a local fake in tests.
    pub base: String,
    pub timeout: Duration,
}

/// What Twilio's answer means for a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    /// Failed (or suspended, deleted, expired): the reason Twilio gave.
    Rejected(String),
    /// Still under review.
    Pending,
}

/// Twilio's own status word (`APPROVED`, `IN_REVIEW`, `VERIFIED`, …) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub twilio_status: String,
    pub verdict: Verdict,
}

pub struct A2p {
    config: A2pConfig,
    http: reqwest::Client,
}

/// The reason Twilio gives for a failure: `failure_reason`, else the descriptions in
/// `errors`, else the status itself.
fn reason(v: &Value, status: &str) -> String {
    if let Some(r) = v
        .get("failure_reason")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return r.trim().to_string();
    }
    let errors: Vec<String> = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    e.get("description")
                        .or_else(|| e.get("message"))
                        .and_then(Value::as_str)
                        .map(|s| s.trim().to_string())
                        .or_else(|| e.as_str().map(str::to_string))
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() {
        format!("Twilio reports the registration as {status}")
    } else {
        errors.join("; ")
    }
}

/// A brand registration's `status`: APPROVED; PENDING or IN_REVIEW; FAILED, SUSPENDED or
/// DELETED (anything unknown waits).
pub fn brand_verdict(v: &Value) -> Checked {
    let status = v
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let verdict = match status.as_str() {
        "APPROVED" => Verdict::Approved,
        "FAILED" | "SUSPENDED" | "DELETED" | "REGISTRATION_FAILED" => {
            Verdict::Rejected(reason(v, &status))
        }
        _ => Verdict::Pending,
    };
    Checked {
        twilio_status: status,
        verdict,
    }
}

/// A campaign's (`us_app_to_person`) `campaign_status`: VERIFIED; IN_PROGRESS or PENDING;
/// FAILED, SUSPENDED or EXPIRED (anything unknown waits).
pub fn campaign_verdict(v: &Value) -> Checked {
    let status = v
        .get("campaign_status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let verdict = match status.as_str() {
        "VERIFIED" => Verdict::Approved,
        "FAILED" | "SUSPENDED" | "EXPIRED" | "DELETED" => Verdict::Rejected(reason(v, &status)),
        _ => Verdict::Pending,
    };
    Checked {
        twilio_status: status,
        verdict,
    }
}

/// A SID as Twilio writes them: a two-letter prefix and 32 hex digits.
pub fn is_sid(prefix: &str, s: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl A2p {
    pub fn new(config: A2pConfig) -> Result<Self, String> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(A2p { config, http })
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.config.base.trim_end_matches('/'));
        let r = self
            .http
            .get(&url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .send()
            .await
            .map_err(|e| format!("could not reach Twilio: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(format!("Twilio answered {}: {message}", status.as_u16()));
        }
        Ok(body)
    }

    /// A brand registration's status.
    pub async fn brand(&self, brand_sid: &str) -> Result<Checked, String> {
        let v = self
            .get(&format!("/v1/a2p/BrandRegistrations/{brand_sid}"))
            .await?;
        Ok(brand_verdict(&v))
    }

    /// A campaign's status, under its messaging service.
    pub async fn campaign(
        &self,
        messaging_service_sid: &str,
        campaign_sid: &str,
    ) -> Result<Checked, String> {
        let v = self
            .get(&format!(
                "/v1/Services/{messaging_service_sid}/Compliance/Usa2p/{campaign_sid}"
            ))
            .await?;
        Ok(campaign_verdict(&v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_map_to_decisions() {
        assert_eq!(
            brand_verdict(&json!({"status": "APPROVED"})).verdict,
            Verdict::Approved
        );
        assert_eq!(
            brand_verdict(&json!({"status": "IN_REVIEW"})).verdict,
            Verdict::Pending
        );
        assert_eq!(
            brand_verdict(&json!({"status": "FAILED", "failure_reason": "EIN does not match"}))
                .verdict,
            Verdict::Rejected("EIN does not match".into())
        );
        assert_eq!(
            campaign_verdict(&json!({"campaign_status": "FAILED",
                "errors": [{"error_code": 30896, "description": "Opt-in flow is unclear"}]}))
            .verdict,
            Verdict::Rejected("Opt-in flow is unclear".into())
        );
        assert_eq!(
            campaign_verdict(&json!({"campaign_status": "VERIFIED"})).verdict,
            Verdict::Approved
        );
        assert_eq!(
            campaign_verdict(&json!({"campaign_status": "IN_PROGRESS"})).verdict,
            Verdict::Pending
        );
        assert!(is_sid("BN", &format!("BN{}", "0a".repeat(16))));
        assert!(!is_sid("BN", "BN123"));
        assert!(!is_sid("QE", &format!("BN{}", "0a".repeat(16))));
    }
}
