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

/// An `estimates` row.
#[derive(sqlx::FromRow)]
pub struct EstimateRow {
    pub id: String,
    pub customer_id: String,
    pub phone: Option<String>,
    pub number: Option<String>,
    pub amount_cents: i64,
    pub status: String,
    pub created_at: i64,
}

impl TryFrom<EstimateRow> for crate::Estimate {
    type Error = crate::StoreError;
    fn try_from(r: EstimateRow) -> crate::Result<Self> {
        Ok(crate::Estimate {
            id: r.id,
            customer_id: r.customer_id,
            phone: r.phone.as_deref().map(crate::codec::phone).transpose()?,
            number: r.number,
            amount_cents: r.amount_cents,
            status: crate::codec::parse_enum("estimate status", &r.status)?,
            created_at: time(r.created_at),
        })
    }
}

/// A `recurring_services` row.
#[derive(sqlx::FromRow)]
pub struct RecurringRow {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub due_on: String,
    pub created_at: i64,
}

impl TryFrom<RecurringRow> for crate::RecurringService {
    type Error = crate::StoreError;
    fn try_from(r: RecurringRow) -> crate::Result<Self> {
        Ok(crate::RecurringService {
            due_on: chrono::NaiveDate::parse_from_str(&r.due_on, "%Y-%m-%d")
                .map_err(|_| crate::codec::bad("due_on", &r.due_on))?,
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            created_at: time(r.created_at),
        })
    }
}

/// A `reviews` row, with its tenant.
#[derive(sqlx::FromRow)]
pub struct ReviewRow {
    pub tenant_id: String,
    pub id: String,
    pub phone: String,
    pub thread: String,
    pub message_id: String,
    pub body: String,
    pub word: String,
    pub decision: Option<String>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub deadline_at: Option<i64>,
}

impl TryFrom<ReviewRow> for (String, crate::Review) {
    type Error = crate::StoreError;
    fn try_from(r: ReviewRow) -> crate::Result<Self> {
        let review = crate::Review {
            id: r.id,
            phone: crate::codec::phone(&r.phone)?,
            thread: crate::codec::thread(&r.thread)?,
            message_id: r.message_id,
            text: r.body,
            word: r.word,
            decision: r.decision,
            created_at: time(r.created_at),
            decided_at: r.decided_at.map(time),
            deadline: r.deadline_at.map(time),
        };
        Ok((r.tenant_id, review))
    }
}

impl TryFrom<ReviewRow> for crate::Review {
    type Error = crate::StoreError;
    fn try_from(r: ReviewRow) -> crate::Result<Self> {
        <(String, crate::Review)>::try_from(r).map(|(_, review)| review)
    }
}

/// Reviews, estimates, recurring services and calls for one driver:
/// `shared_cold_sql!(sqlx::Sqlite)`. Writes of two statements take a connection (the
/// caller's transaction); the rest any executor.
#[macro_export]
macro_rules! shared_cold_sql {
    ($db:ty) => {
        use $crate::__sqlx;

        /// Tells the campaign runner that a tenant's estimates or recurring services changed.
        pub(crate) async fn bump_campaign_inputs(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO campaign_inputs (tenant_id, version) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET version = campaign_inputs.version + 1",
            )
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(crate) async fn reviews<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Vec<$crate::Review>> {
            let rows: Vec<$crate::shared::ReviewRow> =
                __sqlx::query_as("SELECT * FROM reviews WHERE tenant_id = $1 ORDER BY created_at, id")
                    .bind(tenant_id)
                    .fetch_all(e)
                    .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        pub(crate) async fn overdue_reviews<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            now: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> $crate::Result<Vec<(String, $crate::Review)>> {
            let rows: Vec<$crate::shared::ReviewRow> = __sqlx::query_as(
                "SELECT * FROM reviews WHERE decision IS NULL AND deadline_at <= $1 \
                 ORDER BY deadline_at LIMIT $2",
            )
            .bind($crate::codec::ms(now))
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        pub(crate) async fn review<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::Review>> {
            let row: Option<$crate::shared::ReviewRow> =
                __sqlx::query_as("SELECT * FROM reviews WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(e)
                    .await?;
            row.map(TryInto::try_into).transpose()
        }

        pub(crate) async fn save_estimate(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            e: &$crate::Estimate,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO estimates (tenant_id, id, customer_id, phone, number, amount_cents, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status",
            )
            .bind(tenant_id)
            .bind(&e.id)
            .bind(&e.customer_id)
            .bind(e.phone.as_ref().map(|p| p.as_str()))
            .bind(&e.number)
            .bind(e.amount_cents)
            .bind($crate::codec::enum_str(&e.status))
            .bind($crate::codec::ms(e.created_at))
            .execute(&mut *conn)
            .await?;
            bump_campaign_inputs(conn, tenant_id).await
        }

        pub(crate) async fn estimate<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::Estimate>> {
            let row: Option<$crate::shared::EstimateRow> =
                __sqlx::query_as("SELECT * FROM estimates WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(e)
                    .await?;
            row.map(TryInto::try_into).transpose()
        }

        pub(crate) async fn unsold_estimates<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Vec<$crate::Estimate>> {
            let rows: Vec<$crate::shared::EstimateRow> = __sqlx::query_as(
                "SELECT * FROM estimates WHERE tenant_id = $1 AND status = 'unsold' ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        pub(crate) async fn save_recurring_service(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            r: &$crate::RecurringService,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO recurring_services (tenant_id, id, customer_id, name, due_on, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant_id)
            .bind(&r.id)
            .bind(&r.customer_id)
            .bind(&r.name)
            .bind(r.due_on.format("%Y-%m-%d").to_string())
            .bind($crate::codec::ms(r.created_at))
            .execute(&mut *conn)
            .await?;
            bump_campaign_inputs(conn, tenant_id).await
        }

        pub(crate) async fn recurring_services<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Vec<$crate::RecurringService>> {
            let rows: Vec<$crate::shared::RecurringRow> = __sqlx::query_as(
                "SELECT * FROM recurring_services WHERE tenant_id = $1 ORDER BY due_on, id",
            )
            .bind(tenant_id)
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        pub(crate) async fn campaign_inputs_version<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Option<i64>> {
            let v: Option<i64> =
                __sqlx::query_scalar("SELECT version FROM campaign_inputs WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(e)
                    .await?;
            Ok(Some(v.unwrap_or(0)))
        }

        pub(crate) async fn save_call<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            call: &$crate::Call,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO calls (tenant_id, id, from_number, to_number, missed, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant_id)
            .bind(&call.id)
            .bind(call.from.as_str())
            .bind(call.to.as_str())
            .bind(call.missed)
            .bind($crate::codec::ms(call.at))
            .execute(e)
            .await?;
            Ok(())
        }
    };
}
