//! Twilio Lookup v2's Reassigned Number package: whether a US number changed hands since a
//! date (`GET /v2/PhoneNumbers/{E.164}?Fields=reassigned_number&LastVerifiedDate=YYYYMMDD`
//! on `https://lookups.twilio.com`, HTTP Basic with the account SID and auth token). The
//! answer's `reassigned_number` object holds `last_verified_date`, `is_number_reassigned`
//! (`yes`, `no` or `no_data_available`) and `error_code`.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct LookupConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// `https://lookups.twilio.com`, or a local fake in tests (`ASSENT_TWILIO_LOOKUP_BASE`).
    pub base: String,
    pub timeout: Duration,
}

/// What Twilio answered about one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassigned {
    /// `yes`, `no` or `no_data_available`.
    pub answer: String,
    /// Twilio's `error_code` beside the answer, when it gave one.
    pub error_code: Option<String>,
}

/// The three answers Twilio gives; anything else is not an answer.
pub const ANSWERS: [&str; 3] = ["yes", "no", "no_data_available"];

/// Reads a Lookup v2 answer: `Ok` with the answer when `is_number_reassigned` is one of
/// [`ANSWERS`]; otherwise `Err` naming what came instead (an `error_code` and no answer is
/// a failed lookup, never taken for "no").
pub fn read_answer(v: &Value) -> Result<Reassigned, String> {
    let r = v.get("reassigned_number").unwrap_or(&Value::Null);
    let error_code = match r.get("error_code") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match r.get("is_number_reassigned").and_then(Value::as_str) {
        Some(a) if ANSWERS.contains(&a) => Ok(Reassigned {
            answer: a.to_string(),
            error_code,
        }),
        other => Err(match (other, error_code) {
            (_, Some(code)) => format!("Twilio Lookup error {code}"),
            (Some(a), None) => format!("unexpected is_number_reassigned {a:?}"),
            (None, None) => "no reassigned_number answer".to_string(),
        }),
    }
}

pub struct Lookup {
    config: LookupConfig,
    http: reqwest::Client,
}

impl Lookup {
    pub fn new(config: LookupConfig) -> Result<Self, String> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Lookup { config, http })
    }

    /// Asks whether `phone` (E.164) changed hands since `last_verified` (`YYYYMMDD`).
    /// `Err` for anything but an answer: unreachable, a timeout, a non-2xx status, or a
    /// body without one of [`ANSWERS`].
    pub async fn reassigned(&self, phone: &str, last_verified: &str) -> Result<Reassigned, String> {
        if last_verified.len() != 8 || !last_verified.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "LastVerifiedDate {last_verified:?} is not YYYYMMDD"
            ));
        }
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let url = format!(
            "{}/v2/PhoneNumbers/%2B{digits}?Fields=reassigned_number&LastVerifiedDate={last_verified}",
            self.config.base.trim_end_matches('/'),
        );
        let r = self
            .http
            .get(&url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "Twilio Lookup timed out".to_string()
                } else {
                    format!("could not reach Twilio Lookup: {e}")
                }
            })?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(format!(
                "Twilio Lookup answered {}: {message}",
                status.as_u16()
            ));
        }
        read_answer(&body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_and_errors_are_not_answers() {
        let v = json!({"phone_number": "+15125550142", "reassigned_number":
            {"last_verified_date": "20240115", "is_number_reassigned": "no", "error_code": null}});
        assert_eq!(
            read_answer(&v).unwrap(),
            Reassigned {
                answer: "no".into(),
                error_code: None
            }
        );
        for a in ANSWERS {
            let v = json!({"reassigned_number": {"is_number_reassigned": a}});
            assert_eq!(read_answer(&v).unwrap().answer, a);
        }
        let v = json!({"reassigned_number": {"is_number_reassigned": null, "error_code": "60617"}});
        assert_eq!(read_answer(&v).unwrap_err(), "Twilio Lookup error 60617");
        assert!(read_answer(&json!({})).is_err());
        assert!(
            read_answer(&json!({"reassigned_number": {"is_number_reassigned": true}})).is_err()
        );
    }
}
