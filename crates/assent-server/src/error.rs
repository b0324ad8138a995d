//! The one HTTP error type: a stable snake_case code and a sentence for people. Internal
//! errors are logged and shown only as `internal`.

use assent_core::gate::Reason;
use assent_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Every code the API answers with, listed once with its HTTP status; a test checks the
/// list against `openapi.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Bad input: the message names the field.
    InvalidField,
    /// A body the endpoint cannot read as JSON at all (its content type, or a failed read).
    InvalidRequest,
    /// A body that is not valid JSON.
    InvalidJson,
    /// A send needs a sender number the tenant has not set.
    SenderNotConfigured,
    /// No such record, or no endpoint at that path.
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// The body is over the endpoint's limit.
    BodyTooLarge,
    Unauthorized,
    /// A unique value is taken, or a request with the same key is still in progress.
    Conflict,
    AlreadyApproved,
    AlreadyDecided,
    EmailTaken,
    EstimateExists,
    Finished,
    IdempotencyKeyReused,
    /// A campaign's status kept changing under a pause or resume: try again.
    CampaignBusy,
    /// Too many requests at once (sign-ins being checked): try again shortly.
    Busy,
    Internal,
    /// The gate refused a send: 422 with the gate's reason as the code.
    Gate(Reason),
}

impl Code {
    /// The codes that are not gate reasons.
    pub const FIXED: [Code; 18] = [
        Code::InvalidField,
        Code::InvalidRequest,
        Code::InvalidJson,
        Code::SenderNotConfigured,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::BodyTooLarge,
        Code::Unauthorized,
        Code::Conflict,
        Code::AlreadyApproved,
        Code::AlreadyDecided,
        Code::EmailTaken,
        Code::EstimateExists,
        Code::Finished,
        Code::IdempotencyKeyReused,
        Code::CampaignBusy,
        Code::Busy,
        Code::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidField => "invalid_field",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidJson => "invalid_json",
            Code::SenderNotConfigured => "sender_not_configured",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::BodyTooLarge => "body_too_large",
            Code::Unauthorized => "unauthorized",
            Code::Conflict => "conflict",
            Code::AlreadyApproved => "already_approved",
            Code::AlreadyDecided => "already_decided",
            Code::EmailTaken => "email_taken",
            Code::EstimateExists => "estimate_exists",
            Code::Finished => "finished",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::CampaignBusy => "campaign_busy",
            Code::Busy => "busy",
            Code::Internal => "internal",
            Code::Gate(r) => r.as_str(),
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidField
            | Code::InvalidRequest
            | Code::SenderNotConfigured
            | Code::Gate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidJson => StatusCode::BAD_REQUEST,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Conflict
            | Code::AlreadyApproved
            | Code::AlreadyDecided
            | Code::EmailTaken
            | Code::EstimateExists
            | Code::Finished
            | Code::IdempotencyKeyReused
            | Code::CampaignBusy => StatusCode::CONFLICT,
            Code::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code compares equal to its snake_case text, as clients see it.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
        }
    }
    /// Bad input: 422 naming the field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(Code::InvalidField, format!("{field}: {message}"))
    }
    pub fn not_found(what: &str) -> Self {
        ApiError::new(Code::NotFound, format!("{what} not found"))
    }
    pub fn unauthorized() -> Self {
        ApiError::new(
            Code::Unauthorized,
            "a valid Authorization: Bearer token is required",
        )
    }
    /// A send the gate refused.
    pub fn gate(reason: Reason) -> Self {
        ApiError::new(Code::Gate(reason), gate_message(reason))
    }
}

pub fn gate_message(reason: Reason) -> &'static str {
    match reason {
        Reason::TextingNotRegistered => {
            "texting registration is not approved: submit the Register for Texting form and wait for approval"
        }
        Reason::MarketingNotRegistered => {
            "marketing registration (TCR) is not approved: no opt-in request or marketing message can be sent yet"
        }
        Reason::InvalidNumber => "the phone number is not a valid textable number",
        Reason::OptedOut => "the number has opted out of these messages",
        Reason::NoMarketingConsent => {
            "the number has not given written consent to marketing messages"
        }
        Reason::JobNotificationsOff => "Job Notifications are off for this number",
        Reason::MarketingUpdatesOff => "Marketing updates are off for this number",
        Reason::AlreadyOptedIn => "the number is already opted in to marketing messages",
        Reason::OptInThrottled => {
            "an opt-in request was sent recently or too often; wait for the customer's answer"
        }
        Reason::QuietHours => "held until the recipient's local sending hours",
        Reason::UnderReview => {
            "held while a text from this number that may mean stop waits for a person's decision"
        }
        Reason::FrequencyCap => "held by the marketing frequency cap",
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::new(Code::Conflict, m),
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Database(m) => {
                tracing::error!(error = %m, "store error");
                if std::env::var_os("ASSENT_DEBUG_ERRORS").is_some() {
                    eprintln!("store error: {m}");
                }
                ApiError::new(
                    Code::Internal,
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> Self {
        use crate::service::Error;
        match e {
            Error::Invalid { field, message } => ApiError::field(&field, message),
            Error::NotFound(what) => ApiError::not_found(&what),
            Error::Refused { code, message } => ApiError::new(code, message),
            Error::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code.as_str(), "message": self.message}})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openapi() -> serde_json::Value {
        serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json parses")
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        v.as_array()
            .expect("an enum")
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    }

    /// The document and the server agree on every error code, both ways.
    #[test]
    fn every_error_code_is_in_openapi_json_and_nothing_else_is() {
        let doc = openapi();
        let schemas = &doc["components"]["schemas"];
        let mut documented =
            strings(&schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"]);
        let mut ours: Vec<String> = Code::FIXED
            .iter()
            .map(|c| c.as_str().to_string())
            .chain(Reason::ALL.iter().map(|r| r.as_str().to_string()))
            .collect();
        documented.sort();
        ours.sort();
        assert_eq!(documented, ours);
        let mut gate = strings(&schemas["GateReason"]["enum"]);
        let mut reasons: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_string()).collect();
        gate.sort();
        reasons.sort();
        assert_eq!(gate, reasons);
    }

    #[test]
    fn each_code_has_one_status() {
        assert_eq!(
            Code::Gate(Reason::OptedOut).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(Code::Busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ApiError::new(Code::Finished, "x").status,
            StatusCode::CONFLICT
        );
        assert_eq!(Code::Gate(Reason::UnderReview), "under_review");
    }
}
