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
    /// The carrier's API answers 429 (too many requests open on the account): nothing is
    /// sent, the hand-off is retried without counting as an attempt.
    Throttled,
}

pub struct Simulator {
    /// By (sender, recipient): a tenant's senders are its own, so one tenant's setting
    /// never changes what happens to another tenant's messages to the same phone.
    behaviors: Mutex<HashMap<(E164, E164), Behavior>>,
    sent: Mutex<Vec<(String, OutboundSms)>>,
    counter: AtomicU64,
    /// Microseconds since the epoch when this simulator started.
    started: u64,
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
                started: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0),
                reports: tx,
            },
            rx,
        )
    }

    /// What the carrier does with messages from each of `senders` to `number`.
    pub fn set_behavior(&self, senders: &[E164], number: &E164, behavior: Behavior) {
        if let Ok(mut b) = self.behaviors.lock() {
            for from in senders {
                b.insert((from.clone(), number.clone()), behavior);
            }
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
            .and_then(|b| b.get(&(sms.from.clone(), sms.to.clone())).copied())
            .unwrap_or(Behavior::Deliver);
        match behavior {
            Behavior::Block => return Err(SendError::Blocked),
            Behavior::Throttled => {
                return Err(SendError::Throttled("HTTP 429 (simulated)".into()));
            }
            Behavior::Unavailable => {
                return Err(SendError::Retryable("HTTP 503 (simulated)".into()));
            }
            Behavior::Deliver | Behavior::Fail => {}
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Ids must stay unique across restarts and processes on one database, as a real
        // carrier's are: the time the simulator started, its process id and a counter.
        let id = format!(
            "SMsim{:013x}{:06x}{n:08x}",
            self.started,
            std::process::id() & 0xff_ffff
        );
        if let Ok(mut s) = self.sent.lock() {
            s.push((id.clone(), sms.clone()));
        }
        let report = |status: &str, error_code| StatusReport {
            provider_id: id.clone(),
            from: sms.from.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sms() -> OutboundSms {
        OutboundSms {
            from: E164::parse("+15125550100").unwrap(),
            to: E164::parse("+15125550142").unwrap(),
            body: "hi".into(),
            status_callback: None,
        }
    }

    /// A restarted simulator on a kept database must not reuse the ids of the last run
    /// (the database keeps provider ids unique).
    #[tokio::test]
    async fn ids_are_unique_across_restarts() {
        let (a, _ra) = Simulator::new();
        let first = a.send(&sms()).await.unwrap().provider_id;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (b, _rb) = Simulator::new();
        let again = b.send(&sms()).await.unwrap().provider_id;
        assert_ne!(first, again);
        assert_eq!(first.len(), again.len());
        assert!(first.starts_with("SMsim"));
    }
}
