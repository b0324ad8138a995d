//! SMS providers behind one trait, so the consent core never knows which carrier API it
//! talks to: the [`simulator::Simulator`] for development and tests, and Twilio (REST client
//! and webhook signature).

pub mod a2p;
pub mod captcha;
pub mod lookup;
pub mod signature;
pub mod simulator;
pub mod twilio;
pub mod twilio_account;

use assent_core::phone::E164;
use async_trait::async_trait;

/// Installs ring as the process's TLS crypto provider. reqwest is built without a default
/// one (aws-lc needs cmake on the build machine), so every process that makes HTTP clients
/// calls this first; calling it again is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    pub from: E164,
    pub to: E164,
    pub body: String,
    /// Where the provider should post delivery updates.
    pub status_callback: Option<String>,
}

/// The provider took the message; `provider_id` is its id (Twilio's `MessageSid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nothing can have been sent (HTTP 503, connection refused): safe to retry.
    #[error("provider unavailable, nothing sent: {0}")]
    Retryable(String),
    /// Nothing was sent because the account has more requests open than the provider allows
    /// at once (Twilio's HTTP 429, error 20429): retried after a pause, and not counted as
    /// one of the message's attempts, since it says nothing about the message.
    #[error("provider throttled the request, nothing sent: {0}")]
    Throttled(String),
    /// The provider answered that it will not send this message.
    #[error("provider refused the message: {code:?} {message}")]
    Refused { code: Option<u32>, message: String },
    /// The handset blocked the sender (Twilio 21610): opt the thread out.
    #[error("recipient has blocked this sender (21610)")]
    Blocked,
    /// The outcome is not known (timeout, crash mid-call): never retried automatically.
    #[error("hand-off outcome unknown: {0}")]
    Unknown(String),
}

/// A delivery update pushed by a provider (or received on the status webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub provider_id: String,
    /// The number the message was sent from (Twilio's `From`): the sender whose tenant the
    /// message is of. Provider ids are unique per tenant, so the report is matched by both.
    pub from: E164,
    /// `queued`, `sent`, `delivered`, `undelivered` or `failed`.
    pub status: String,
    pub error_code: Option<u32>,
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError>;
}
