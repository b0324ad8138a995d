//! `TestApp`: a real server on a random port over a fresh database per test (a SQLite temp
//! file), a manual clock, the simulator provider, and helpers that sign webhooks exactly as
//! Twilio does and drain the send queue synchronously.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use assent_core::phone::E164;
use assent_server::{AppState, Config, ManualClock};
use assent_store::Store;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const TX: &str = "+15125550100";
pub const MK: &str = "+15125550101";
pub const PHONE: &str = "+15125550142";
pub const ADMIN: &str = "test-admin-token";
pub const AUTH_TOKEN: &str = "test-twilio-auth-token";

/// Wednesday 4 March 2026, 12:00 in Austin: inside every quiet-hours window.
pub fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 18, 0, 0).unwrap()
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: AppState,
    pub clock: Arc<ManualClock>,
    pub db_url: String,
    _dir: tempfile::TempDir,
}

pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub key: String,
}

pub async fn open_store(url: &str) -> Arc<dyn Store> {
    let store = assent_sqlite::SqliteStore::open(url)
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = format!("sqlite://{}/test.db", dir.path().display());
        let store = open_store(&db_url).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let clock = Arc::new(ManualClock::new(noon()));
        let config = Config {
            public_url: base.clone(),
            admin_token: Some(ADMIN.into()),
            twilio_auth_token: Some(AUTH_TOKEN.into()),
            twilio_account_sid: Some("ACtest".into()),
            trust_proxy: false,
        };
        let app = AppState::with_simulator(store, clock.clone(), config);
        // No background worker: tests drain the queue themselves, deterministically.
        tokio::spawn(assent_server::serve(app.clone(), listener, false));
        TestApp {
            base,
            client: reqwest::Client::new(),
            app,
            clock,
            db_url,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}/api/v1{}", self.base, path);
        let mut req = self
            .client
            .request(method.parse().expect("method"), url)
            .header("Authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call("GET", path, key, None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, key, Some(body)).await
    }
    pub async fn put(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", path, key, Some(body)).await
    }

    /// A tenant with senders and nothing approved.
    pub async fn bare_tenant(&self, name: &str) -> Tenant {
        let (s, v) = self
            .post(
                "/tenants",
                ADMIN,
                json!({"name": name, "time_zone": "America/Chicago"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let t = Tenant {
            id: v["id"].as_str().unwrap().into(),
            slug: v["slug"].as_str().unwrap().into(),
            key: v["api_key"].as_str().unwrap().into(),
        };
        let (s, v) = self
            .put(
                "/senders",
                &t.key,
                json!({"transactional": TX, "marketing": MK}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        t
    }

    pub async fn approve(&self, t: &Tenant, kind: &str) {
        let body = match kind {
            "texting" => {
                json!({"legal_name": "Acme Plumbing LLC", "ein": "12-3456789", "address": "1 Main St, Austin, TX",
                "website": "https://acme.example", "contact_email": "owner@acme.example", "use_case": "job notifications",
                "sample_messages": ["Acme Plumbing: your plumber is on the way"]})
            }
            _ => {
                json!({"brand": "Acme Plumbing", "campaign_description": "seasonal offers", "opt_in_flow": "double opt-in",
                "sample_messages": ["Acme Plumbing: 10% off AC tune-ups this week"]})
            }
        };
        let (s, v) = self
            .put(&format!("/registrations/{kind}"), &t.key, body)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = self
            .post(
                &format!("/tenants/{}/registrations/{kind}/decision", t.id),
                ADMIN,
                json!({"status": "approved"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// A tenant with both registrations approved and a customer holding `PHONE`.
    pub async fn tenant(&self) -> (Tenant, String) {
        let t = self.bare_tenant("Acme Plumbing").await;
        self.approve(&t, "texting").await;
        self.approve(&t, "marketing").await;
        let c = self
            .customer(&t, "Dana", "(512) 555-0142", true, true)
            .await;
        (t, c)
    }

    pub async fn customer(
        &self,
        t: &Tenant,
        name: &str,
        phone: &str,
        job: bool,
        mk: bool,
    ) -> String {
        let (s, v) = self
            .post("/customers", &t.key, json!({"name": name, "phones": [{"number": phone, "job_notifications": job, "marketing_updates": mk}]}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Posts an inbound text signed as Twilio signs it; returns the HTTP status.
    pub async fn inbound_with(&self, params: &[(&str, &str)]) -> StatusCode {
        let url = format!("{}/webhooks/twilio/sms", self.base);
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &owned);
        self.client
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .form(&owned)
            .send()
            .await
            .expect("webhook")
            .status()
    }

    pub async fn inbound(&self, from: &str, to: &str, body: &str) -> StatusCode {
        let sid = format!("SM{}", uuid_like());
        self.inbound_with(&[
            ("MessageSid", &sid),
            ("AccountSid", "ACtest"),
            ("From", from),
            ("To", to),
            ("Body", body),
        ])
        .await
    }

    pub async fn drain(&self) -> usize {
        assent_server::dispatch::drain(&self.app)
            .await
            .expect("drain")
    }

    /// What reached the simulated carrier: (to, from, body).
    pub fn sent(&self) -> Vec<(String, String, String)> {
        self.app
            .simulator
            .as_ref()
            .expect("simulator")
            .sent()
            .into_iter()
            .map(|(_, s)| (s.to.to_string(), s.from.to_string(), s.body))
            .collect()
    }

    pub fn sent_to(&self, phone: &str) -> Vec<(String, String, String)> {
        self.sent().into_iter().filter(|s| s.0 == phone).collect()
    }

    pub async fn consent(&self, t: &Tenant, phone: &str) -> Value {
        let (s, v) = self.get(&format!("/consent/{}", phone), &t.key).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    pub async fn messages(&self, t: &Tenant, phone: &str) -> Vec<Value> {
        let (s, v) = self
            .get(
                &format!("/messages?phone={}", phone.replace('+', "%2B")),
                &t.key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["messages"].as_array().cloned().unwrap_or_default()
    }
}

pub fn e164(s: &str) -> E164 {
    E164::parse(s).expect("phone")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:032x}",
        N.fetch_add(1, Ordering::Relaxed) + (std::process::id() as u64) * 1_000_000_000
    )
}
