//! A carrier for development and tests: it accepts messages, reports `sent` then
//! `delivered` through the same status path a real provider uses, and can be told to fail
//! or block a number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use assent_core::phone::E164;
use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{Accepted, OutboundSms, Provider, SendError, StatusReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behavior {
    Deliver,
    /// The carrier accepts, then reports `failed` (30006: landline or unreachable).
    Fail,
    /// The handset blocked the sender: the send is refused with 21610.
    Block,
    /// The carrier's API answers 503: nothing is sent, the hand-off is retried.
    Unavailable,
}

pub struct Simulator {
    behaviors: Mutex<HashMap<E164, Behavior>>,
    sent: Mutex<Vec<(String, OutboundSms)>>,
    counter: AtomicU64,
    reports: mpsc::UnboundedSender<StatusReport>,
}

impl Simulator {
    /// The receiver gets the status reports the simulated carrier sends back.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<StatusReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Simulator {
                behaviors: Mutex::new(HashMap::new()),
                sent: Mutex::new(Vec::new()),
                counter: AtomicU64::new(0),
                reports: tx,
            },
            rx,
        )
    }

    pub fn set_behavior(&self, number: E164, behavior: Behavior) {
        if let Ok(mut b) = self.behaviors.lock() {
            b.insert(number, behavior);
        }
    }

    /// Everything handed to the simulated carrier, in order, with its id.
    pub fn sent(&self) -> Vec<(String, OutboundSms)> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Provider for Simulator {
    fn name(&self) -> &'static str {
        "simulator"
    }

    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let behavior = self
            .behaviors
            .lock()
            .ok()
            .and_then(|b| b.get(&sms.to).copied())
            .unwrap_or(Behavior::Deliver);
        match behavior {
            Behavior::Block => return Err(SendError::Blocked),
            Behavior::Unavailable => {
                return Err(SendError::Retryable("HTTP 503 (simulated)".into()));
            }
            Behavior::Deliver | Behavior::Fail => {}
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("SMsim{n:027x}");
        if let Ok(mut s) = self.sent.lock() {
            s.push((id.clone(), sms.clone()));
        }
        let report = |status: &str, error_code| StatusReport {
            provider_id: id.clone(),
            status: status.into(),
            error_code,
        };
        let _ = self.reports.send(report("sent", None));
        let _ = self.reports.send(match behavior {
            Behavior::Fail => report("failed", Some(30006)),
            _ => report("delivered", None),
        });
        Ok(Accepted { provider_id: id })
    }
}
