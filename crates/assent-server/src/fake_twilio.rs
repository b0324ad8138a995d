//! A local stand-in for Twilio's Messages API, for benchmarks and crash tests: it accepts
//! every message (201 with a fresh `sid`) and remembers what it was sent, the moment the
//! request arrives; it can be made to take its time answering, as a loaded carrier API does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;

#[derive(Clone)]
pub struct Received {
    pub messages: Arc<Mutex<Vec<(String, String)>>>,
    count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    paused: Arc<tokio::sync::watch::Sender<bool>>,
    /// Milliseconds each answer takes after the message was recorded.
    latency_ms: Arc<AtomicU64>,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            messages: Arc::default(),
            count: Arc::default(),
            arrivals: Arc::default(),
            paused: Arc::new(tokio::sync::watch::Sender::new(false)),
            latency_ms: Arc::default(),
        }
    }
}

impl Received {
    /// Holds every request until [`Received::resume`]: lets a test fill the queue first.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
    /// Answers each request `latency` after recording its message (the carrier has it from
    /// the moment it arrives; only the answer is slow).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
    /// When each message arrived, in order.
    pub fn arrivals(&self) -> Vec<std::time::Instant> {
        self.arrivals.lock().map(|a| a.clone()).unwrap_or_default()
    }
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// (To, Body) of every message, in arrival order.
    pub fn all(&self) -> Vec<(String, String)> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

async fn create(State(r): State<Received>, body: Bytes) -> impl IntoResponse {
    let _ = r.paused.subscribe().wait_for(|p| !*p).await;
    let fields = crate::webhooks::form_urlencoded_pairs(&body);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let n = r.count.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut a) = r.arrivals.lock() {
        a.push(std::time::Instant::now());
    }
    if let Ok(mut m) = r.messages.lock() {
        m.push((get("To"), get("Body")));
    }
    let latency = r.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        format!("{{\"sid\":\"SMfake{n:028}\",\"status\":\"queued\"}}"),
    )
}

/// Starts the fake on a random port; returns its base URL and what it received.
pub async fn spawn() -> std::io::Result<(String, Received)> {
    let received = Received::default();
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(create))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), received))
}
