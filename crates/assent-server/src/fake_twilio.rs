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
use axum::routing::{get, post};

#[derive(Clone)]
pub struct Received {
    pub messages: Arc<Mutex<Vec<(String, String)>>>,
    count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    paused: Arc<tokio::sync::watch::Sender<bool>>,
    /// Milliseconds each answer takes after the message was recorded.
    latency_ms: Arc<AtomicU64>,
    /// The account's numbers and Messaging Services, as the configuration check reads them.
    pub account: Arc<Mutex<FakeAccount>>,
}

/// A number of the fake account (`IncomingPhoneNumbers`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FakeNumber {
    pub sid: String,
    pub phone_number: String,
    pub sms_url: String,
    pub sms_method: String,
    pub status_callback: String,
}

/// A Messaging Service of the fake account, with the numbers in its sender pool.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FakeService {
    pub sid: String,
    pub friendly_name: String,
    pub inbound_request_url: String,
    pub inbound_method: String,
    pub status_callback: String,
    pub use_inbound_webhook_on_number: bool,
    #[serde(skip)]
    pub numbers: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeAccount {
    pub numbers: Vec<FakeNumber>,
    pub services: Vec<FakeService>,
    /// Answer every account request with 401, as Twilio does for a wrong auth token.
    pub refuse: bool,
}

impl FakeAccount {
    /// A number whose SMS webhook is `sms_url` (POST).
    pub fn number(&mut self, phone: &str, sms_url: &str) {
        let n = self.numbers.len();
        self.numbers.push(FakeNumber {
            sid: format!("PN{n:032}"),
            phone_number: phone.into(),
            sms_url: sms_url.into(),
            sms_method: "POST".into(),
            status_callback: String::new(),
        });
    }

    /// A Messaging Service holding `numbers`, sending inbound texts to `inbound` (empty:
    /// to each number's own webhook).
    pub fn service(&mut self, name: &str, inbound: &str, status_callback: &str, numbers: &[&str]) {
        let n = self.services.len();
        self.services.push(FakeService {
            sid: format!("MG{n:032}"),
            friendly_name: name.into(),
            inbound_request_url: inbound.into(),
            inbound_method: "POST".into(),
            status_callback: status_callback.into(),
            use_inbound_webhook_on_number: inbound.is_empty(),
            numbers: numbers.iter().map(|n| n.to_string()).collect(),
        });
    }
}

impl Default for Received {
    fn default() -> Self {
        Received {
            messages: Arc::default(),
            count: Arc::default(),
            arrivals: Arc::default(),
            paused: Arc::new(tokio::sync::watch::Sender::new(false)),
            latency_ms: Arc::default(),
            account: Arc::default(),
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

type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

fn refused() -> axum::response::Response {
    (
        StatusCode::UNAUTHORIZED,
        [("content-type", "application/json")],
        r#"{"code":20003,"message":"Authenticate","status":401}"#,
    )
        .into_response()
}

fn json(v: serde_json::Value) -> axum::response::Response {
    ([("content-type", "application/json")], v.to_string()).into_response()
}

/// `GET …/IncomingPhoneNumbers.json?PhoneNumber=`: the account's numbers, filtered.
async fn incoming_numbers(State(r): State<Received>, q: Query) -> axum::response::Response {
    let a = r.account.lock().map(|a| a.clone()).unwrap_or_default();
    if a.refuse {
        return refused();
    }
    let wanted = q.get("PhoneNumber");
    let list: Vec<&FakeNumber> = a
        .numbers
        .iter()
        .filter(|n| wanted.is_none_or(|w| *w == n.phone_number))
        .collect();
    json(serde_json::json!({"incoming_phone_numbers": list, "next_page_uri": null}))
}

/// One page of `items` as Twilio's v1 lists give it, `PageSize` at a time from `Page`.
fn page_of<T: serde::Serialize>(
    key: &str,
    items: &[T],
    q: &Query,
    host: &str,
    path: &str,
) -> axum::response::Response {
    let size: usize = q
        .get("PageSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
        .max(1);
    let page: usize = q.get("Page").and_then(|v| v.parse().ok()).unwrap_or(0);
    let chunk: Vec<&T> = items.iter().skip(page * size).take(size).collect();
    let next = ((page + 1) * size < items.len())
        .then(|| format!("http://{host}{path}?PageSize={size}&Page={}", page + 1));
    json(
        serde_json::json!({key: chunk, "meta": {"next_page_url": next, "page": page, "page_size": size}}),
    )
}

fn host_of(h: &axum::http::HeaderMap) -> String {
    h.get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

/// `GET /v1/Services`.
async fn services(
    State(r): State<Received>,
    headers: axum::http::HeaderMap,
    q: Query,
) -> axum::response::Response {
    let a = r.account.lock().map(|a| a.clone()).unwrap_or_default();
    if a.refuse {
        return refused();
    }
    page_of(
        "services",
        &a.services,
        &q,
        &host_of(&headers),
        "/v1/Services",
    )
}

/// `GET /v1/Services/{sid}/PhoneNumbers`.
async fn service_numbers(
    State(r): State<Received>,
    axum::extract::Path(sid): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    q: Query,
) -> axum::response::Response {
    let a = r.account.lock().map(|a| a.clone()).unwrap_or_default();
    if a.refuse {
        return refused();
    }
    let Some(s) = a.services.iter().find(|s| s.sid == sid) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let numbers: Vec<serde_json::Value> = s
        .numbers
        .iter()
        .map(|n| serde_json::json!({"phone_number": n, "service_sid": sid}))
        .collect();
    page_of(
        "phone_numbers",
        &numbers,
        &q,
        &host_of(&headers),
        &format!("/v1/Services/{sid}/PhoneNumbers"),
    )
}

/// Starts the fake on a random port; returns its base URL and what it received. It
/// answers as both api.twilio.com and messaging.twilio.com.
pub async fn spawn() -> std::io::Result<(String, Received)> {
    let received = Received::default();
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            get(incoming_numbers),
        )
        .route("/v1/Services", get(services))
        .route("/v1/Services/{sid}/PhoneNumbers", get(service_numbers))
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

/// How the Lookup fake answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupMode {
    /// 200 with `is_number_reassigned` from [`LookupFake::set_answer`] (default `no`).
    Answer,
    /// 500 with Twilio's error shape.
    Fail,
    /// Holds each request for this long before answering as `Answer` would (longer than
    /// the client's timeout makes a timeout).
    Slow(std::time::Duration),
}

/// A local stand-in for Twilio Lookup v2's Reassigned Number
/// (`GET /v2/PhoneNumbers/{E.164}?Fields=reassigned_number&LastVerifiedDate=YYYYMMDD`):
/// answers `reassigned_number` as a test set it per phone (default `no`), and counts the
/// requests, per phone too. 401 without the account's credentials (HTTP Basic), 400
/// without `Fields=reassigned_number` or a `LastVerifiedDate` of 8 digits.
#[derive(Clone)]
pub struct LookupFake {
    answers: Arc<Mutex<std::collections::HashMap<String, String>>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
    mode: Arc<Mutex<LookupMode>>,
    credentials: Arc<String>,
}

impl LookupFake {
    /// What Twilio answers for `phone` from now on (`yes`, `no`, `no_data_available`).
    pub fn set_answer(&self, phone: &str, answer: &str) {
        if let Ok(mut a) = self.answers.lock() {
            a.insert(phone.to_string(), answer.to_string());
        }
    }
    pub fn set_mode(&self, mode: LookupMode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }
    /// (phone, LastVerifiedDate) of every request, in arrival order.
    pub fn asked(&self) -> Vec<(String, String)> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
    pub fn requests(&self) -> usize {
        self.asked.lock().map(|a| a.len()).unwrap_or_default()
    }
}

async fn lookup_phone(
    State(fake): State<LookupFake>,
    axum::extract::Path(phone): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let date = q.get("LastVerifiedDate").cloned().unwrap_or_default();
    if let Ok(mut a) = fake.asked.lock() {
        a.push((phone.clone(), date.clone()));
    }
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
    if q.get("Fields").map(String::as_str) != Some("reassigned_number")
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"code": 60608, "message": "Invalid LastVerifiedDate or Fields", "status": 400})),
        )
            .into_response();
    }
    let mode = fake
        .mode
        .lock()
        .map(|m| m.clone())
        .unwrap_or(LookupMode::Answer);
    match mode {
        LookupMode::Fail => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"code": 20500, "message": "Internal Server Error", "status": 500})),
            )
                .into_response();
        }
        LookupMode::Slow(d) => tokio::time::sleep(d).await,
        LookupMode::Answer => {}
    }
    let answer = fake
        .answers
        .lock()
        .ok()
        .and_then(|a| a.get(&phone).cloned())
        .unwrap_or_else(|| "no".into());
    let national = phone.trim_start_matches("+1");
    json(serde_json::json!({
        "calling_country_code": "1",
        "country_code": "US",
        "phone_number": phone,
        "national_format": national,
        "valid": true,
        "validation_errors": [],
        "caller_name": null,
        "sim_swap": null,
        "call_forwarding": null,
        "line_type_intelligence": null,
        "line_status": null,
        "identity_match": null,
        "reassigned_number": {
            "last_verified_date": date,
            "is_number_reassigned": answer,
            "error_code": null
        },
        "sms_pumping_risk": null,
        "url": format!("https://lookups.twilio.com/v2/PhoneNumbers/{phone}")
    }))
}

/// Starts the Lookup fake on a random port for an account; returns its base URL (what
/// `ASSENT_TWILIO_LOOKUP_BASE` names) and its controls.
pub async fn spawn_lookup(
    account_sid: &str,
    auth_token: &str,
) -> std::io::Result<(String, LookupFake)> {
    use base64::Engine;
    let fake = LookupFake {
        answers: Arc::default(),
        asked: Arc::default(),
        mode: Arc::new(Mutex::new(LookupMode::Answer)),
        credentials: Arc::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"))
        )),
    };
    let app = Router::new()
        .route("/v2/PhoneNumbers/{phone}", get(lookup_phone))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), fake))
}
