//! Cold CRUD written once for both backends.
//!
//! STYLE.md has each backend own its SQL. These statements are the exception: plain
//! reads and writes of the web app's users and sessions that both drivers accept word for
//! word, where two copies only ever drifted. They use `$1, $2, …` placeholders numbered in
//! order of first appearance: PostgreSQL reads them as positions, and SQLite as named
//! parameters that sqlx binds to the same positions (tests/placeholders.rs in
//! assent-sqlite checks it). Hot paths
//! (claims, fan-out, snapshots, locks) keep per-backend SQL.
//!
//! [`shared_web_sql!`] stamps the functions out for one driver; the row structs
//! (`FromRow`, over any driver's row) turn what they read into models.

use crate::codec::time;
use crate::{Customer, Session, User};

/// A `users` row.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            password_hash: r.password_hash,
            failed_logins: u32::try_from(r.failed_logins.max(0)).unwrap_or(u32::MAX),
            locked_until: r.locked_until.map(time),
            created_at: time(r.created_at),
        }
    }
}

/// A session joined with its user.
#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub csrf_token: String,
    pub session_created: i64,
    pub expires_at: i64,
    #[sqlx(flatten)]
    pub user: UserRow,
}

impl From<SessionRow> for (Session, User) {
    fn from(r: SessionRow) -> Self {
        let user = User::from(r.user);
        let session = Session {
            id_hash: r.id_hash,
            user_id: user.id.clone(),
            csrf_token: r.csrf_token,
            created_at: time(r.session_created),
            expires_at: time(r.expires_at),
        };
        (session, user)
    }
}

/// A `customers` row, without its phones.
#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub address: Option<String>,
    pub tags: String,
    pub created_at: i64,
}

impl TryFrom<CustomerRow> for Customer {
    type Error = crate::StoreError;
    fn try_from(r: CustomerRow) -> crate::Result<Self> {
        Ok(Customer {
            id: r.id,
            name: r.name,
            address: r.address,
            tags: crate::codec::json("tags", &r.tags)?,
            phones: Vec::new(),
            created_at: time(r.created_at),
        })
    }
}

/// The web app's users and sessions for one driver: `shared_web_sql!(sqlx::Sqlite)`.
/// Single statements take any executor of that driver (a pool, a connection, the SQLite
/// writer's connection); two statements take a connection.
#[macro_export]
macro_rules! shared_web_sql {
    ($db:ty) => {
        use $crate::__sqlx;

        pub(crate) async fn create_user<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            u: &$crate::User,
        ) -> $crate::Result<()> {
            use $crate::codec::ms;
            __sqlx::query(
                "INSERT INTO users (id, tenant_id, email, password_hash, failed_logins, locked_until, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&u.id)
            .bind(&u.tenant_id)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(i64::from(u.failed_logins))
            .bind(u.locked_until.map(ms))
            .bind(ms(u.created_at))
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn user_by_email<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            email: &str,
        ) -> $crate::Result<Option<$crate::User>> {
            let row: Option<$crate::shared::UserRow> =
                __sqlx::query_as("SELECT * FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(e)
                    .await?;
            Ok(row.map(Into::into))
        }

        pub(crate) async fn count_login_attempt<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            user_id: &str,
            now: chrono::DateTime<chrono::Utc>,
            max: u32,
            lock_until: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<bool> {
            use $crate::codec::ms;
            // Counted before the password is checked, and refused while locked, in one
            // statement: parallel guesses cannot all be checked against one lock read.
            // Right-hand sides read the row as it was: a lock that ran out starts a new count.
            let done = __sqlx::query(
                "UPDATE users SET \
                   failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN 1 \
                     ELSE failed_logins + 1 END, \
                   locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= $1 THEN NULL \
                     WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
                 WHERE id = $4 AND (locked_until IS NULL OR locked_until <= $1)",
            )
            .bind(ms(now))
            .bind(i64::from(max))
            .bind(ms(lock_until))
            .bind(user_id)
            .execute(e)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(crate) async fn clear_failed_logins<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            user_id: &str,
        ) -> $crate::Result<()> {
            __sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                .bind(user_id)
                .execute(e)
                .await?;
            Ok(())
        }

        pub(crate) async fn create_session(
            conn: &mut <$db as __sqlx::Database>::Connection,
            s: &$crate::Session,
        ) -> $crate::Result<()> {
            use $crate::codec::ms;
            __sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2")
                .bind(&s.user_id)
                .bind(ms(s.created_at))
                .execute(&mut *conn)
                .await?;
            __sqlx::query(
                "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id_hash)
            .bind(&s.user_id)
            .bind(&s.csrf_token)
            .bind(ms(s.created_at))
            .bind(ms(s.expires_at))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(crate) async fn session<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            id_hash: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<Option<($crate::Session, $crate::User)>> {
            let row: Option<$crate::shared::SessionRow> = __sqlx::query_as(
                "SELECT s.id_hash, s.csrf_token, s.created_at AS session_created, s.expires_at, u.* \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
            )
            .bind(id_hash)
            .bind($crate::codec::ms(now))
            .fetch_optional(e)
            .await?;
            Ok(row.map(Into::into))
        }

        pub(crate) async fn delete_session<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            id_hash: &str,
        ) -> $crate::Result<()> {
            __sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(e)
                .await?;
            Ok(())
        }

        /// Customers matching a search (see `customer_search_patterns`), newest first,
        /// without their phones (the backend adds them).
        pub(crate) async fn search_customers_only<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            q: &str,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::Customer>> {
            let (name, digits) = $crate::customer_search_patterns(q);
            let rows: Vec<$crate::shared::CustomerRow> = __sqlx::query_as(
                "SELECT id, name, address, tags, created_at FROM customers c \
                 WHERE c.tenant_id = $1 AND (lower(c.name) LIKE $2 ESCAPE '\\' \
                   OR (CAST($3 AS TEXT) IS NOT NULL AND EXISTS (SELECT 1 FROM contact_methods m \
                     WHERE m.tenant_id = c.tenant_id AND m.customer_id = c.id AND m.phone LIKE $3))) \
                 ORDER BY c.created_at DESC, c.id DESC LIMIT $4",
            )
            .bind(tenant_id)
            .bind(&name)
            .bind(&digits)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }
    };
}
