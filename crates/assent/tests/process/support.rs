//! What the process tests share: free ports, a server process that is killed when dropped,
//! JSON calls, and a database per run (a SQLite file, or a fresh PostgreSQL database).

use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `assent` process, killed (and reaped) when dropped so that a failing test
/// leaves nothing behind.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Waits until `/healthz` on `port` answers 2xx. The bound only turns a server that
    /// never comes up into a failure instead of a hang.
    pub async fn healthy(child: Child, port: u16, within: Duration) -> Server {
        assent_provider::install_crypto();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("assent serve did not start");
    }
}

/// A JSON request that must succeed; its answer (`null` when there is no body).
pub async fn call(
    c: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Value,
) -> Value {
    let r = c
        .request(method.parse().unwrap(), url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// A database for one run: a SQLite file, or a fresh PostgreSQL database dropped by
/// [`Db::drop_it`].
pub enum Db {
    /// The directory is removed when the run ends.
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin: String,
        name: String,
        url: String,
    },
}

impl Db {
    pub fn sqlite(file: &str) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/{file}", dir.path().display());
        Db::Sqlite { _dir: dir, url }
    }

    /// `None` (the run is skipped) when no PostgreSQL server is named.
    pub async fn postgres(prefix: &str) -> Option<Db> {
        let admin = assent_store::testing::postgres_url_or_skip()?;
        Some(Db::postgres_on(&admin, prefix).await)
    }

    /// A fresh database on the server `admin` names.
    pub async fn postgres_on(admin: &str, prefix: &str) -> Db {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("assent_{prefix}_{}_{nanos}", std::process::id());
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
        let url = format!("{base}/{name}");
        Db::Postgres {
            admin: admin.to_string(),
            name,
            url,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Db::Sqlite { url, .. } | Db::Postgres { url, .. } => url,
        }
    }

    /// Runs one statement; the rows' first columns as text.
    pub async fn column(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Db::Sqlite { url, .. } => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
            Db::Postgres { url, .. } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
            }
        }
    }

    pub async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Db::Sqlite { url, .. } => {
                let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            Db::Postgres { url, .. } => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    pub async fn drop_it(self) {
        if let Db::Postgres { admin, name, .. } = self
            && let Ok(mut c) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await;
        }
    }
}
