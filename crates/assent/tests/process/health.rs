//! `/healthz` tells the truth about a real `assent serve`: with the SQLite file's write
//! lock held by another process it says 503 (with `Retry-After`), and with PostgreSQL gone
//! it, and the API, answer within seconds, not after half a minute.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::support::{Server, free_port};

const ADMIN: &str = "health-admin";

async fn start(db: &str, port: u16) -> Server {
    assent_provider::install_crypto();
    let child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("ASSENT_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server::healthy(child, port, Duration::from_secs(60)).await
}

/// Twilio gives a webhook 15 s; an answer must come well inside that. The bound only
/// turns "no answer for 30 s" into a failure instead of a hang.
fn impatient() -> reqwest::Client {
    assent_provider::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(12))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_fails_while_another_process_holds_the_sqlite_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/health.db", dir.path().display());
    let port = free_port();
    let _server = start(&db, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = impatient();

    let mut other = sqlx::SqliteConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let r = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    // Healthy again, and the writer works (the abandoned check left nothing behind).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.get(format!("{base}/healthz")).send().await.unwrap();
        if r.status().is_success() {
            break;
        }
        assert!(Instant::now() < deadline, "never healthy again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = c
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Acme Plumbing"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
}

/// A TCP relay to PostgreSQL that the test can cut, as a database host going away.
struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn to(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                inner.lock().unwrap().push(pipe);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { port, tasks }
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn with_postgres_gone_health_and_the_api_answer_within_seconds() {
    let Some(server) = assent_store::testing::postgres_url_or_skip() else {
        return;
    };
    let name = format!("assent_health_{}_{}", std::process::id(), free_port());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    // postgres://USER@HOST:PORT/DB → the relay in place of HOST:PORT.
    let (scheme_user, rest) = server.rsplit_once('@').unwrap();
    let host_port = rest.split('/').next().unwrap().to_string();
    let relay = Relay::to(host_port).await;
    let db = format!("{scheme_user}@127.0.0.1:{}/{name}", relay.port);

    let port = free_port();
    let app = start(&db, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = impatient();

    relay.cut();
    let r = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let r = c
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "Acme Plumbing"}))
        .send()
        .await
        .expect("an answer in time");
    assert!(r.status().is_server_error(), "{}", r.status());

    drop(app);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

/// A relay to PostgreSQL that can be cut and then restored on the same port, as a
/// database host that goes away and comes back.
struct Switch {
    port: u16,
    down: Arc<std::sync::atomic::AtomicBool>,
    pipes: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Switch {
    async fn to(target: String) -> Switch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pipes: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (d, p) = (down.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                p.lock().unwrap().push(pipe);
            }
        });
        Switch { port, down, pipes }
    }

    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in self.pipes.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn with_postgres_back_health_recovers_by_itself_and_nothing_accepted_is_lost() {
    let Some(server) = assent_store::testing::postgres_url_or_skip() else {
        return;
    };
    let name = format!("assent_back_{}_{}", std::process::id(), free_port());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (scheme_user, rest) = server.rsplit_once('@').unwrap();
    let host_port = rest.split('/').next().unwrap().to_string();
    let switch = Switch::to(host_port).await;
    let db = format!("{scheme_user}@127.0.0.1:{}/{name}", switch.port);

    let port = free_port();
    let app = start(&db, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let c = impatient();
    let created = |name: &'static str| {
        let (c, base) = (c.clone(), base.clone());
        async move {
            c.post(format!("{base}/api/v1/tenants"))
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({ "name": name }))
                .send()
                .await
                .expect("an answer in time")
                .status()
        }
    };
    assert_eq!(
        created("Before Plumbing").await,
        reqwest::StatusCode::CREATED
    );

    switch.cut();
    let r = c.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(created("During Plumbing").await.is_server_error());

    // Back: health says so by itself, without a restart, and the API takes writes again.
    switch.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.get(format!("{base}/healthz")).send().await.unwrap();
        if r.status().is_success() {
            break;
        }
        assert!(Instant::now() < deadline, "healthz still {}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        created("After Plumbing").await,
        reqwest::StatusCode::CREATED
    );
    drop(app);

    // What was acknowledged is there; what was refused is not.
    let mut check =
        sqlx::PgConnection::connect(&format!("{}/{name}", server.rsplit_once('/').unwrap().0))
            .await
            .unwrap();
    let mut names: Vec<String> = sqlx::query_scalar("SELECT name FROM tenants")
        .fetch_all(&mut check)
        .await
        .unwrap();
    names.sort();
    assert_eq!(names, ["After Plumbing", "Before Plumbing"]);
    drop(check);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}
