//! `TestApp`: a real server on a random port over a fresh database per test, a manual
//! clock, the simulator provider, and helpers that sign webhooks exactly as Twilio does and
//! drain the send queue synchronously.
//!
//! The database is a SQLite temp file, or, when `ASSENT_TEST_POSTGRES_URL` names a
//! PostgreSQL server (`postgres://postgres@127.0.0.1:5432/postgres`), a fresh database
//! `assent_test_<unix seconds>_<random>` on it, dropped when the test ends.
#![allow(dead_code)]

use std::sync::Arc;

use assent_core::phone::E164;
use assent_provider::simulator::Simulator;
use assent_provider::{Accepted, OutboundSms, Provider, SendError};
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
    /// Dropped (the temp dir removed, the Postgres database dropped) with the last
    /// `TestApp` using it.
    _db: Arc<TestDb>,
}

pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub key: String,
}

/// Opens (and migrates) the store behind `url`, SQLite or PostgreSQL by its scheme.
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = if is_postgres(url) {
        Arc::new(
            assent_postgres::PostgresStore::open(url)
                .await
                .expect("open postgres"),
        )
    } else {
        Arc::new(
            assent_sqlite::SqliteStore::open(url)
                .await
                .expect("open sqlite"),
        )
    };
    store.migrate().await.expect("migrate");
    store
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL server to test against, when there is one.
pub fn postgres_server() -> Option<String> {
    assent_store::testing::postgres_url()
}

/// A second connection straight to the test's PostgreSQL database, outside the store.
pub async fn pg_connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("connect to postgres")
}

const PG_PREFIX: &str = "assent_test_";

/// One test's database.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { server: String, name: String },
}

impl TestDb {
    /// A fresh, empty database and its URL.
    pub async fn fresh() -> (TestDb, String) {
        let Some(server) = postgres_server() else {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}/test.db", dir.path().display());
            return (TestDb::Sqlite(dir), url);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let name = format!("{PG_PREFIX}{now}_{}", uuid::Uuid::now_v7().simple());
        let mut admin = pg_connect(&server).await;
        drop_stale_databases(&mut admin, now).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let url = database_url(&server, &name);
        (TestDb::Postgres { server, name }, url)
    }
}

/// `server` with its database path replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Drops test databases left by runs that died more than an hour ago.
async fn drop_stale_databases(admin: &mut sqlx::PgConnection, now: u64) {
    use sqlx::Row;
    let Ok(rows) =
        sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'assent\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String, _>("datname") else {
            continue;
        };
        let created = name
            .strip_prefix(PG_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|t| t + 3600 < now) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { server, name } = self else {
            return;
        };
        let (server, name, shown) = (server.clone(), name.clone(), name.clone());
        // Drop runs inside the test's runtime: drop the database from a thread with its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut admin = pg_connect(&server).await;
                // FORCE ends the connections the test's pools still hold.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(_))) {
            eprintln!("could not drop test database {shown}: {done:?}");
        }
    }
}

/// The simulator numbers its message ids from zero in every process, and the database
/// keeps provider ids unique (Twilio's are): a second process's simulator gets a prefix on
/// its ids, in what it returns and in the delivery reports it sends back.
struct Renumbered {
    sim: Arc<Simulator>,
    prefix: String,
}

#[async_trait::async_trait]
impl Provider for Renumbered {
    fn name(&self) -> &'static str {
        "simulator"
    }
    async fn send(&self, sms: &OutboundSms) -> Result<Accepted, SendError> {
        let a = self.sim.send(sms).await?;
        Ok(Accepted {
            provider_id: format!("{}{}", self.prefix, a.provider_id),
        })
    }
}

fn renumbered_simulator(
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    config: Config,
    prefix: String,
) -> AppState {
    let (sim, mut reports) = Simulator::new();
    let sim = Arc::new(sim);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let p = prefix.clone();
    tokio::spawn(async move {
        while let Some(mut r) = reports.recv().await {
            r.provider_id = format!("{p}{}", r.provider_id);
            if tx.send(r).is_err() {
                break;
            }
        }
    });
    let provider = Arc::new(Renumbered {
        sim: sim.clone(),
        prefix,
    });
    let mut app = AppState::new(store, provider, clock, config);
    app.simulator = Some(sim);
    app.reports = Some(Arc::new(tokio::sync::Mutex::new(rx)));
    app
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let (db, db_url) = TestDb::fresh().await;
        let clock = Arc::new(ManualClock::new(noon()));
        TestApp::serve(Arc::new(db), db_url, clock, None, |_| {}).await
    }

    /// A server whose configuration `tweak` changes first.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (db, db_url) = TestDb::fresh().await;
        let clock = Arc::new(ManualClock::new(noon()));
        TestApp::serve(Arc::new(db), db_url, clock, None, tweak).await
    }

    /// A server whose state `tweak` changes before it serves (a Twilio account API, …).
    pub async fn spawn_with_app(tweak: impl FnOnce(&mut AppState, &str)) -> TestApp {
        let (db, db_url) = TestDb::fresh().await;
        let clock = Arc::new(ManualClock::new(noon()));
        TestApp::serve_with(Arc::new(db), db_url, clock, None, |_| {}, tweak).await
    }

    /// A server behind a reverse proxy (`ASSENT_TRUST_PROXY=1`): the client's address is
    /// the first of `X-Forwarded-For`.
    pub async fn spawn_behind_proxy() -> TestApp {
        let (db, db_url) = TestDb::fresh().await;
        let clock = Arc::new(ManualClock::new(noon()));
        TestApp::serve(Arc::new(db), db_url, clock, None, |c| c.trust_proxy = true).await
    }

    /// A second server on this app's database and clock, with its own store (connection
    /// pool), simulator and in-memory state: another process of the same deployment.
    pub async fn another_process(&self) -> TestApp {
        use std::sync::atomic::{AtomicU64, Ordering};
        static PROCESSES: AtomicU64 = AtomicU64::new(1);
        let n = PROCESSES.fetch_add(1, Ordering::Relaxed);
        TestApp::serve(
            self._db.clone(),
            self.db_url.clone(),
            self.clock.clone(),
            Some(format!("p{n}-")),
            |c| {
                c.trust_proxy = self.app.config.trust_proxy;
                c.captcha = self.app.config.captcha.clone();
            },
        )
        .await
    }

    async fn serve(
        db: Arc<TestDb>,
        db_url: String,
        clock: Arc<ManualClock>,
        provider_prefix: Option<String>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        TestApp::serve_with(db, db_url, clock, provider_prefix, tweak, |_, _| {}).await
    }

    async fn serve_with(
        db: Arc<TestDb>,
        db_url: String,
        clock: Arc<ManualClock>,
        provider_prefix: Option<String>,
        tweak: impl FnOnce(&mut Config),
        tweak_app: impl FnOnce(&mut AppState, &str),
    ) -> TestApp {
        let store = open_store(&db_url).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut config = Config {
            public_url: base.clone(),
            admin_token: Some(ADMIN.into()),
            twilio_auth_token: Some(AUTH_TOKEN.into()),
            twilio_account_sid: Some("ACtest".into()),
            trust_proxy: false,
            captcha: None,
            import_max_bytes: assent_server::import::DEFAULT_MAX_BYTES,
            twilio_messaging_base: None,
        };
        tweak(&mut config);
        let mut app = match provider_prefix {
            None => AppState::with_simulator(store, clock.clone(), config),
            Some(prefix) => renumbered_simulator(store, clock.clone(), config, prefix),
        };
        tweak_app(&mut app, &base);
        // No background worker: tests drain the queue themselves, deterministically.
        tokio::spawn(assent_server::serve(app.clone(), listener, false));
        TestApp {
            base,
            client: reqwest::Client::new(),
            app,
            clock,
            db_url,
            _db: db,
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

    /// Starts the double opt-in for a customer's phone; the request's message id.
    pub async fn request_opt_in(&self, t: &Tenant, customer: &str, phone: &str) -> String {
        let (s, v) = self
            .post(
                &format!("/customers/{customer}/phones/{phone}/opt-in-requests"),
                &t.key,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["message_id"].as_str().expect("message_id").to_string()
    }

    /// What the simulated carrier does with the tenant's texts to `phone` from now on
    /// (`deliver`, `fail`, `block`, `unavailable`).
    pub async fn simulate(&self, t: &Tenant, phone: &str, behavior: &str) {
        let (s, v) = self
            .put(
                &format!("/simulator/numbers/{phone}"),
                &t.key,
                json!({"behavior": behavior}),
            )
            .await;
        assert!(s.is_success(), "{v}");
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
