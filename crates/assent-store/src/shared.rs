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

        /// A new password hash; the count of failed sign-ins and any lock are cleared, and
        /// the user's sessions end (whoever knew the old password is signed out).
        pub(crate) async fn set_password(
            conn: &mut <$db as __sqlx::Database>::Connection,
            user_id: &str,
            password_hash: &str,
        ) -> $crate::Result<()> {
            let done = __sqlx::query(
                "UPDATE users SET password_hash = $1, failed_logins = 0, locked_until = NULL WHERE id = $2",
            )
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err($crate::StoreError::NotFound);
            }
            __sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// A tenant's users in email order, at most `limit` after the email `after`.
        pub(crate) async fn users_of_tenant<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            after: Option<&str>,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::User>> {
            let rows: Vec<$crate::shared::UserRow> = __sqlx::query_as(
                "SELECT * FROM users WHERE tenant_id = $1 AND email > $2 ORDER BY email LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        }

        /// Records a failed sign-in and drops the tenant's older ones beyond
        /// [`crate::LOGIN_FAILURES_KEPT`].
        pub(crate) async fn record_login_failure(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            f: &$crate::LoginFailure,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO login_failures (tenant_id, at, email, locked) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant_id)
            .bind($crate::codec::ms(f.at))
            .bind(&f.email)
            .bind(f.locked)
            .execute(&mut *conn)
            .await?;
            __sqlx::query(
                "DELETE FROM login_failures WHERE tenant_id = $1 AND id <= \
                 (SELECT id FROM login_failures WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(tenant_id)
            .bind($crate::LOGIN_FAILURES_KEPT)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// A tenant's most recent failed sign-ins, newest first, at most `limit`.
        pub(crate) async fn login_failures<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::LoginFailure>> {
            let rows: Vec<(i64, String, bool)> = __sqlx::query_as(
                "SELECT at, email, locked FROM login_failures WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant_id)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(at, email, locked)| $crate::LoginFailure {
                    at: $crate::codec::time(at),
                    email,
                    locked,
                })
                .collect())
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
    pub status: crate::EstimateStatus,
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
            status: r.status,
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
    pub thread: assent_core::consent::Thread,
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
            thread: r.thread,
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
            .bind(e.status)
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

/// A `tenants` row (its senders are read apart).
#[derive(sqlx::FromRow)]
pub struct TenantRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub settings: String,
    pub created_at: i64,
}

impl TenantRow {
    pub fn into_tenant(self, senders: crate::Senders) -> crate::Result<crate::Tenant> {
        Ok(crate::Tenant {
            time_zone: self
                .time_zone
                .parse()
                .map_err(|_| crate::codec::bad("time zone", &self.time_zone))?,
            settings: crate::codec::json("settings", &self.settings)?,
            id: self.id,
            slug: self.slug,
            name: self.name,
            senders,
            created_at: time(self.created_at),
        })
    }
}

/// A `senders` row.
#[derive(sqlx::FromRow)]
pub struct SenderRow {
    pub number: String,
    pub transactional: bool,
    pub marketing: bool,
    pub retired_at: Option<i64>,
}

/// A `registrations` row.
#[derive(sqlx::FromRow)]
pub struct RegistrationRow {
    pub kind: crate::RegistrationKind,
    pub status: assent_core::gate::RegistrationStatus,
    pub reason: Option<String>,
    pub details: String,
    pub updated_at: i64,
}

impl TryFrom<RegistrationRow> for crate::Registration {
    type Error = crate::StoreError;
    fn try_from(r: RegistrationRow) -> crate::Result<Self> {
        Ok(crate::Registration {
            kind: r.kind,
            status: r.status,
            reason: r.reason,
            details: crate::codec::json("registration details", &r.details)?,
            updated_at: time(r.updated_at),
        })
    }
}

/// A pending `registrations` row with its tenant.
#[derive(sqlx::FromRow)]
pub struct PendingRegistrationRow {
    pub tenant_id: String,
    #[sqlx(flatten)]
    pub reg: RegistrationRow,
}

/// Tenants, their senders and registrations for one driver: `shared_tenant_sql!(sqlx::Sqlite)`.
/// Reads of several statements and `set_senders` take a connection (the caller's
/// transaction for a write); the rest any executor.
#[macro_export]
macro_rules! shared_tenant_sql {
    ($db:ty) => {
        use $crate::__sqlx;

        pub(crate) async fn senders_of(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
        ) -> $crate::Result<$crate::Senders> {
            let rows: Vec<$crate::shared::SenderRow> = __sqlx::query_as(
                "SELECT number, transactional, marketing, retired_at FROM senders WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((
                    $crate::codec::phone(&r.number)?,
                    r.transactional,
                    r.marketing,
                    r.retired_at.map($crate::codec::time),
                ));
            }
            Ok($crate::Senders::from_rows(out))
        }

        pub(crate) async fn tenant_where(
            conn: &mut <$db as __sqlx::Database>::Connection,
            column: &'static str,
            value: &str,
        ) -> $crate::Result<Option<$crate::Tenant>> {
            let sql = match column {
                "id" => "SELECT * FROM tenants WHERE id = $1",
                "slug" => "SELECT * FROM tenants WHERE slug = $1",
                _ => "SELECT * FROM tenants WHERE api_key_hash = $1",
            };
            let row: Option<$crate::shared::TenantRow> = __sqlx::query_as(sql)
                .bind(value)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let senders = senders_of(conn, &row.id).await?;
            row.into_tenant(senders).map(Some)
        }

        pub(crate) async fn tenant_by_sender(
            conn: &mut <$db as __sqlx::Database>::Connection,
            number: &assent_core::phone::E164,
        ) -> $crate::Result<Option<$crate::Tenant>> {
            let id: Option<String> =
                __sqlx::query_scalar("SELECT tenant_id FROM senders WHERE number = $1")
                    .bind(number.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            match id {
                Some(id) => tenant_where(conn, "id", &id).await,
                None => Ok(None),
            }
        }

        pub(crate) async fn registrations_of<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<$crate::Registrations> {
            let rows: Vec<$crate::shared::RegistrationRow> = __sqlx::query_as(
                "SELECT kind, status, reason, details, updated_at FROM registrations WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_all(e)
            .await?;
            let mut out = $crate::Registrations {
                texting: None,
                marketing: None,
            };
            for r in rows {
                let reg = $crate::Registration::try_from(r)?;
                match reg.kind {
                    $crate::RegistrationKind::Texting => out.texting = Some(reg),
                    $crate::RegistrationKind::Marketing => out.marketing = Some(reg),
                }
            }
            Ok(out)
        }

        pub(crate) async fn tenant_count<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
        ) -> $crate::Result<u64> {
            let n: i64 = __sqlx::query_scalar("SELECT count(*) FROM tenants")
                .fetch_one(e)
                .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        pub(crate) async fn create_tenant<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            t: &$crate::Tenant,
            api_key_hash: &str,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO tenants (id, slug, name, time_zone, api_key_hash, settings, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.id)
            .bind(&t.slug)
            .bind(&t.name)
            .bind(t.time_zone.name())
            .bind(api_key_hash)
            .bind($crate::codec::to_json(&t.settings))
            .bind($crate::codec::ms(t.created_at))
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn update_settings<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            settings: &$crate::Settings,
        ) -> $crate::Result<()> {
            __sqlx::query("UPDATE tenants SET settings = $1 WHERE id = $2")
                .bind($crate::codec::to_json(settings))
                .bind(tenant_id)
                .execute(e)
                .await?;
            Ok(())
        }

        /// Inside the caller's transaction: a `Conflict` leaves it to be rolled back.
        pub(crate) async fn set_senders(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            s: &$crate::Senders,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            use assent_core::phone::E164;
            for n in [&s.transactional, &s.marketing].into_iter().flatten() {
                let other: Option<String> = __sqlx::query_scalar(
                    "SELECT tenant_id FROM senders WHERE number = $1 AND tenant_id <> $2 AND retired_at IS NULL",
                )
                .bind(n.as_str())
                .bind(tenant_id)
                .fetch_optional(&mut *conn)
                .await?;
                if other.is_some() {
                    return Err($crate::StoreError::Conflict(format!(
                        "{} is another tenant's sender",
                        n.masked()
                    )));
                }
            }
            // The numbers in use now are retired (kept: keywords sent to them still act on
            // their channel), then the new ones are current again, whoever retired them.
            __sqlx::query(
                "UPDATE senders SET retired_at = $1 WHERE tenant_id = $2 AND retired_at IS NULL",
            )
            .bind($crate::codec::ms(now))
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
            let mut numbers: Vec<&E164> = Vec::new();
            numbers.extend(s.transactional.iter());
            numbers.extend(
                s.marketing
                    .iter()
                    .filter(|m| Some(*m) != s.transactional.as_ref()),
            );
            for n in numbers {
                // A number another tenant retired is theirs no more; of two tenants racing
                // for one number, the upsert lets one win and the other finds it current.
                let taken = __sqlx::query(
                    "INSERT INTO senders (number, tenant_id, transactional, marketing, retired_at) \
                     VALUES ($1, $2, $3, $4, NULL) \
                     ON CONFLICT (number) DO UPDATE SET tenant_id = excluded.tenant_id, \
                       transactional = excluded.transactional, marketing = excluded.marketing, retired_at = NULL \
                     WHERE senders.tenant_id = excluded.tenant_id OR senders.retired_at IS NOT NULL",
                )
                .bind(n.as_str())
                .bind(tenant_id)
                .bind(s.transactional.as_ref() == Some(n))
                .bind(s.marketing.as_ref() == Some(n))
                .execute(&mut *conn)
                .await?;
                if taken.rows_affected() == 0 {
                    return Err($crate::StoreError::Conflict(format!(
                        "{} is another tenant's sender",
                        n.masked()
                    )));
                }
            }
            Ok(())
        }

        pub(crate) async fn save_registration<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            r: &$crate::Registration,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO registrations (tenant_id, kind, status, reason, details, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, kind) DO UPDATE SET status = excluded.status, reason = excluded.reason, \
                 details = excluded.details, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(r.kind.as_str())
            .bind(r.status.as_str())
            .bind(&r.reason)
            .bind($crate::codec::to_json(&r.details))
            .bind($crate::codec::ms(r.updated_at))
            .execute(e)
            .await?;
            Ok(())
        }

        /// Whether a tenant already has this name (trimmed, any case).
        pub(crate) async fn tenant_name_taken<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            name: &str,
        ) -> $crate::Result<bool> {
            let found: Option<i32> = __sqlx::query_scalar(
                "SELECT 1 FROM tenants WHERE lower(trim(name)) = lower(trim($1)) LIMIT 1",
            )
            .bind(name)
            .fetch_optional(e)
            .await?;
            Ok(found.is_some())
        }

        pub(crate) async fn update_profile<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            name: &str,
            time_zone: &str,
        ) -> $crate::Result<()> {
            let done = __sqlx::query("UPDATE tenants SET name = $1, time_zone = $2 WHERE id = $3")
                .bind(name)
                .bind(time_zone)
                .bind(tenant_id)
                .execute(e)
                .await?;
            if done.rows_affected() == 0 {
                return Err($crate::StoreError::NotFound);
            }
            Ok(())
        }

        /// Pending registrations of every tenant after `after` (tenant id, kind), in that
        /// order, at most `limit`.
        pub(crate) async fn pending_registrations<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            after: Option<&(String, $crate::RegistrationKind)>,
            limit: u32,
        ) -> $crate::Result<Vec<(String, $crate::Registration)>> {
            let (tenant, kind) = match after {
                Some((t, k)) => (t.as_str(), k.as_str()),
                None => ("", ""),
            };
            let rows: Vec<$crate::shared::PendingRegistrationRow> = __sqlx::query_as(
                "SELECT tenant_id, kind, status, reason, details, updated_at FROM registrations \
                 WHERE status = 'pending' AND (tenant_id > $1 OR (tenant_id = $1 AND kind > $2)) \
                 ORDER BY tenant_id, kind LIMIT $3",
            )
            .bind(tenant)
            .bind(kind)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            rows.into_iter()
                .map(|r| Ok((r.tenant_id, $crate::Registration::try_from(r.reg)?)))
                .collect()
        }
    };
}

/// A `campaigns` row.
#[derive(sqlx::FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub kind: crate::CampaignKind,
    pub body: String,
    pub tags: String,
    pub days: String,
    pub send_at: Option<i64>,
    pub status: crate::CampaignStatus,
    pub created_at: i64,
    pub resumed_at: Option<i64>,
}

impl TryFrom<CampaignRow> for crate::Campaign {
    type Error = crate::StoreError;
    fn try_from(r: CampaignRow) -> crate::Result<Self> {
        use crate::codec;
        Ok(crate::Campaign {
            kind: r.kind,
            tags: codec::json("tags", &r.tags)?,
            days: codec::json("days", &r.days)?,
            status: r.status,
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            body: r.body,
            send_at: r.send_at.map(time),
            created_at: time(r.created_at),
            resumed_at: r.resumed_at.map(time),
        })
    }
}

/// Campaigns' own rows for one driver: `shared_campaign_sql!(sqlx::Sqlite)`. Fan-out,
/// holds and the send log stay with each backend.
#[macro_export]
macro_rules! shared_campaign_sql {
    ($db:ty) => {
        use $crate::__sqlx;

        pub(crate) async fn save_campaign<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            c: &$crate::Campaign,
        ) -> $crate::Result<()> {
            use $crate::codec::{self, ms};
            __sqlx::query(
                "INSERT INTO campaigns (tenant_id, id, name, kind, body, tags, days, send_at, status, created_at, resumed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (tenant_id, id) DO UPDATE SET \
                 status = excluded.status, resumed_at = excluded.resumed_at, send_at = excluded.send_at",
            )
            .bind(&c.tenant_id)
            .bind(&c.id)
            .bind(&c.name)
            .bind(c.kind)
            .bind(&c.body)
            .bind(codec::to_json(&c.tags))
            .bind(codec::to_json(&c.days))
            .bind(c.send_at.map(ms))
            .bind(c.status)
            .bind(ms(c.created_at))
            .bind(c.resumed_at.map(ms))
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn campaign<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::Campaign>> {
            let row: Option<$crate::shared::CampaignRow> =
                __sqlx::query_as("SELECT * FROM campaigns WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(e)
                    .await?;
            row.map(TryInto::try_into).transpose()
        }

        pub(crate) async fn campaigns<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Vec<$crate::Campaign>> {
            let rows: Vec<$crate::shared::CampaignRow> = __sqlx::query_as(
                "SELECT * FROM campaigns WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC",
            )
            .bind(tenant_id)
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        pub(crate) async fn running_campaigns<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
        ) -> $crate::Result<Vec<$crate::Campaign>> {
            let rows: Vec<$crate::shared::CampaignRow> = __sqlx::query_as(
                "SELECT * FROM campaigns WHERE status IN ('scheduled', 'sending', 'active') \
                 ORDER BY created_at, id",
            )
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        /// Moves a campaign only if its status is still `from` (see
        /// `CampaignStore::move_campaign`).
        pub(crate) async fn move_campaign<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
            from: $crate::CampaignStatus,
            to: $crate::CampaignStatus,
            resumed_at: Option<chrono::DateTime<chrono::Utc>>,
        ) -> $crate::Result<bool> {
            use $crate::codec;
            let r = __sqlx::query(
                "UPDATE campaigns SET status = $1, resumed_at = COALESCE($2, resumed_at) \
                 WHERE tenant_id = $3 AND id = $4 AND status = $5",
            )
            .bind(to)
            .bind(resumed_at.map(codec::ms))
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(from)
            .execute(e)
            .await?;
            Ok(r.rows_affected() == 1)
        }

        pub(crate) async fn recorded_steps<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
        ) -> $crate::Result<Vec<(String, assent_core::phone::E164)>> {
            let rows: Vec<(String, String)> = __sqlx::query_as(
                "SELECT step, phone FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2",
            )
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_all(e)
            .await?;
            rows.into_iter()
                .map(|(step, phone)| Ok((step, $crate::codec::phone(&phone)?)))
                .collect()
        }
    };
}
