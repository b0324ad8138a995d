//! Local stand-ins for Twilio: its Messages API, for benchmarks and crash tests, and its A2P
//! registrations ([`spawn_a2p`]). The Messages fake accepts
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

/// A local stand-in for Twilio's A2P registrations on the Messaging API: a brand
/// (`GET /v1/a2p/BrandRegistrations/{BN…}`) or a campaign
/// (`GET /v1/Services/{MG…}/Compliance/Usa2p/{QE…}`) answers the JSON a test set for its
/// SID, 404 otherwise, and 401 without the account's credentials (HTTP Basic).
#[derive(Clone, Default)]
pub struct A2pFake {
    resources: Arc<Mutex<std::collections::HashMap<String, serde_json::Value>>>,
    requests: Arc<AtomicU64>,
    credentials: Arc<String>,
}

impl A2pFake {
    /// What Twilio answers for this SID from now on (a campaign's under `MG…/QE…`).
    pub fn set(&self, key: &str, resource: serde_json::Value) {
        if let Ok(mut r) = self.resources.lock() {
            r.insert(key.to_string(), resource);
        }
    }
    /// How many requests came in (authorised or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

fn a2p_answer(
    fake: &A2pFake,
    headers: &axum::http::HeaderMap,
    key: &str,
) -> axum::response::Response {
    fake.requests.fetch_add(1, Ordering::Relaxed);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != fake.credentials.as_str() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
            ),
        )
            .into_response();
    }
    match fake.resources.lock().ok().and_then(|r| r.get(key).cloned()) {
        Some(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(
                serde_json::json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
            ),
        )
            .into_response(),
    }
}

async fn a2p_brand(
    State(fake): State<A2pFake>,
    axum::extract::Path(sid): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    a2p_answer(&fake, &headers, &sid)
}

async fn a2p_campaign(
    State(fake): State<A2pFake>,
    axum::extract::Path((service, sid)): axum::extract::Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    a2p_answer(&fake, &headers, &format!("{service}/{sid}"))
}

/// Starts the A2P fake on a random port for an account; returns its base URL (what
/// `ASSENT_TWILIO_MESSAGING_BASE` names) and its controls.
pub async fn spawn_a2p(account_sid: &str, auth_token: &str) -> std::io::Result<(String, A2pFake)> {
    use base64::Engine;
    let fake = A2pFake {
        credentials: Arc::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"))
        )),
        ..A2pFake::default()
    };
    let app = Router::new()
        .route(
            "/v1/a2p/BrandRegistrations/{sid}",
            axum::routing::get(a2p_brand),
        )
        .route(
            "/v1/Services/{service}/Compliance/Usa2p/{sid}",
            axum::routing::get(a2p_campaign),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), fake))
}
