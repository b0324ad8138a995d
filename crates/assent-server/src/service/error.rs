//! What a service refuses, in terms both edges can show: the API turns it into its JSON
//! error (`From<Error> for ApiError`), the web app into a form's message or an error page
//! (`From<Error> for WebError`, and each form's own wording of [`Error::Invalid`]).

use assent_core::gate::Reason;
use assent_store::StoreError;

use crate::error::Code;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input. `field` is the API's name for it (`rate_limits.per_tenant_per_day`,
    /// `phones[1].number`), so a form can say it in its own words.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The thing asked for does not exist for this tenant; the words name it (`campaign`).
    #[error("{0} not found")]
    NotFound(String),
    /// A rule refused the request given the thing's state (a finished campaign, an
    /// approved registration, a missing sender): the stable code and a sentence.
    #[error("{message}")]
    Refused { code: Code, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Error::NotFound(what.to_string())
    }

    pub fn refused(code: Code, message: impl Into<String>) -> Self {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    /// The gate refused: its reason is the code.
    pub fn gate(reason: Reason) -> Self {
        Error::refused(Code::Gate(reason), crate::error::gate_message(reason))
    }
}
