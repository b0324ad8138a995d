//! The one HTTP error type: a stable snake_case code and a sentence for people. Internal
//! errors are logged and shown only as `internal`.

use assent_core::gate::Reason;
use assent_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
    /// Bad input: 422 naming the field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {message}"),
        )
    }
    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid Authorization: Bearer token is required",
        )
    }
    /// A send the gate refused.
    pub fn gate(reason: Reason) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            reason.as_str(),
            gate_message(reason),
        )
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
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Database(m) => {
                tracing::error!(error = %m, "store error");
                if std::env::var_os("ASSENT_DEBUG_ERRORS").is_some() {
                    eprintln!("store error: {m}");
                }
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; it has been logged",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}
