//! Cold CRUD written once for both backends.
//!
//! STYLE.md has each backend own its SQL. These statements are the exception: plain
//! reads and writes of the web app's users and sessions that both drivers accept word for
//! word, where two copies only ever drifted. They use `$1, $2, …` placeholders numbered in
//! order of first appearance: PostgreSQL reads them as positions, and SQLite as named
//! parameters that sqlx binds to the same positions (tests/sqlite/placeholders.rs in
//! assent-sqlite checks it). Hot paths
//! (claims, fan-out, snapshots, locks) keep per-backend SQL.
//!
//! [`shared_web_sql!`] stamps the functions out for one driver; the row structs
//! (`FromRow`, over any driver's row) turn what they read into models.

pub mod chain;
pub mod evidence;
pub mod lists;
pub mod overview;
pub mod relay;

use crate::codec::time;
use crate::{Customer, Session, User};

/// The start of "which customers hold these phones", oldest customer first (the caller
/// adds the tenant's parameter and the phones). Every look-up of customers by phone starts
/// from the phone's contact methods: `CROSS JOIN` keeps SQLite from walking the tenant's
/// customers in created order to satisfy the `ORDER BY` (its choice without statistics, a
/// scan of every customer per phone); PostgreSQL reads it as the inner join it is.
/// tests/sqlite/plans.rs in assent-sqlite checks the plan.
pub const PHONE_OWNERS_SQL: &str = "SELECT cm.phone, cm.customer_id FROM contact_methods cm \
     CROSS JOIN customers c WHERE c.tenant_id = cm.tenant_id AND c.id = cm.customer_id \
     AND cm.tenant_id = ";

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
    pub role: crate::Role,
    pub disabled: bool,
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
            role: r.role,
            disabled: r.disabled,
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

/// The web app's users and sessions for one driver, and [`crate::WebStore`] for the
/// backend's store: `shared_web_sql!(sqlx::Sqlite, crate::SqliteStore, reader)`, where
/// `reader` is the store's pool for reads. Writes go through the store's `write()`, whose
/// guard has `conn()` and `commit()`, and commit before the call returns. Single
/// statements take any executor of that driver (a pool, a connection, the SQLite writer's
/// connection); two statements take a connection.
#[macro_export]
macro_rules! shared_web_sql {
    ($db:ty, $store:ty, $read:ident) => {
        use $crate::__sqlx;

        #[async_trait::async_trait]
        impl $crate::WebStore for $store {
            async fn create_user(&self, user: &$crate::User) -> $crate::Result<()> {
                let mut w = self.write().await?;
                create_user(w.conn(), user).await?;
                w.commit().await
            }

            async fn user_by_email(&self, email: &str) -> $crate::Result<Option<$crate::User>> {
                user_by_email(&self.$read, email).await
            }

            async fn count_login_attempt(
                &self,
                user_id: &str,
                now: $crate::__chrono::DateTime<$crate::__chrono::Utc>,
                max: u32,
                lock_until: $crate::__chrono::DateTime<$crate::__chrono::Utc>,
            ) -> $crate::Result<bool> {
                let mut w = self.write().await?;
                let counted = count_login_attempt(w.conn(), user_id, now, max, lock_until).await?;
                w.commit().await?;
                Ok(counted)
            }

            async fn clear_failed_logins(&self, user_id: &str) -> $crate::Result<()> {
                let mut w = self.write().await?;
                clear_failed_logins(w.conn(), user_id).await?;
                w.commit().await
            }

            async fn set_password(&self, user_id: &str, password_hash: &str) -> $crate::Result<()> {
                let mut w = self.write().await?;
                set_password(w.conn(), user_id, password_hash).await?;
                w.commit().await
            }

            async fn tenant_user(
                &self,
                tenant_id: &str,
                user_id: &str,
            ) -> $crate::Result<Option<$crate::User>> {
                tenant_user(&self.$read, tenant_id, user_id).await
            }

            async fn set_user_access(
                &self,
                tenant_id: &str,
                user_id: &str,
                role: $crate::Role,
                disabled: bool,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                set_user_access(w.conn(), tenant_id, user_id, role, disabled).await?;
                w.commit().await
            }

            async fn delete_user(&self, tenant_id: &str, user_id: &str) -> $crate::Result<()> {
                let mut w = self.write().await?;
                delete_user(w.conn(), tenant_id, user_id).await?;
                w.commit().await
            }

            async fn users_of_tenant(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::User>> {
                users_of_tenant(&self.$read, tenant_id, after, limit).await
            }

            async fn record_login_failure(
                &self,
                tenant_id: &str,
                failure: &$crate::LoginFailure,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                record_login_failure(w.conn(), tenant_id, failure).await?;
                w.commit().await
            }

            async fn login_failures(
                &self,
                tenant_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::LoginFailure>> {
                login_failures(&self.$read, tenant_id, limit).await
            }

            async fn create_session(&self, session: &$crate::Session) -> $crate::Result<()> {
                let mut w = self.write().await?;
                create_session(w.conn(), session).await?;
                w.commit().await
            }

            async fn session(
                &self,
                id_hash: &str,
                now: $crate::__chrono::DateTime<$crate::__chrono::Utc>,
            ) -> $crate::Result<Option<($crate::Session, $crate::User)>> {
                session(&self.$read, id_hash, now).await
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::Result<()> {
                let mut w = self.write().await?;
                delete_session(w.conn(), id_hash).await?;
                w.commit().await
            }

            async fn authors(
                &self,
                tenant_id: &str,
                message_ids: &[String],
            ) -> $crate::Result<Vec<(String, String)>> {
                authors(&self.$read, tenant_id, message_ids).await
            }
        }

        pub(crate) async fn create_user<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            u: &$crate::User,
        ) -> $crate::Result<()> {
            use $crate::codec::ms;
            __sqlx::query(
                "INSERT INTO users (id, tenant_id, email, password_hash, failed_logins, locked_until, created_at, role, disabled) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&u.id)
            .bind(&u.tenant_id)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(i64::from(u.failed_logins))
            .bind(u.locked_until.map(ms))
            .bind(ms(u.created_at))
            .bind(u.role.as_str())
            .bind(u.disabled)
            .execute(e)
            .await?;
            Ok(())
        }

        /// One of a tenant's users by id.
        pub(crate) async fn tenant_user<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            user_id: &str,
        ) -> $crate::Result<Option<$crate::User>> {
            let row: Option<$crate::shared::UserRow> =
                __sqlx::query_as("SELECT * FROM users WHERE id = $1 AND tenant_id = $2")
                    .bind(user_id)
                    .bind(tenant_id)
                    .fetch_optional(e)
                    .await?;
            Ok(row.map(Into::into))
        }

        /// A user's role and whether they are disabled; disabling ends their sessions.
        /// `NotFound` when the tenant has no such user.
        pub(crate) async fn set_user_access(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            user_id: &str,
            role: $crate::Role,
            disabled: bool,
        ) -> $crate::Result<()> {
            let done = __sqlx::query(
                "UPDATE users SET role = $1, disabled = $2 WHERE id = $3 AND tenant_id = $4",
            )
            .bind(role.as_str())
            .bind(disabled)
            .bind(user_id)
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err($crate::StoreError::NotFound);
            }
            if disabled {
                __sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Removes a user and their sessions (what they recorded keeps their name as
        /// written). `NotFound` when the tenant has no such user.
        pub(crate) async fn delete_user(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            user_id: &str,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE id = $1 AND tenant_id = $2)",
            )
            .bind(user_id)
            .bind(tenant_id)
            .execute(&mut *conn)
            .await?;
            let done = __sqlx::query("DELETE FROM users WHERE id = $1 AND tenant_id = $2")
                .bind(user_id)
                .bind(tenant_id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err($crate::StoreError::NotFound);
            }
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

        pub(crate) async fn authors<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            message_ids: &[String],
        ) -> $crate::Result<Vec<(String, String)>> {
            if message_ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut sql = $crate::page::Sql::new(
                "SELECT message_id, user_id FROM message_authors WHERE tenant_id = ",
            );
            let p = sql.param();
            sql.push(&p).push(" AND");
            sql.in_list("message_id", message_ids.len());
            let mut query =
                __sqlx::query_as::<_, (String, String)>(__sqlx::AssertSqlSafe(sql.text))
                    .bind(tenant_id);
            for id in message_ids {
                query = query.bind(id.clone());
            }
            Ok(query.fetch_all(e).await?)
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
    pub decision: Option<crate::ReviewDecision>,
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

/// Reviews, estimates, recurring services and calls for one driver, and
/// [`crate::CampaignInputStore`] for the backend's store (arguments and writes as in
/// [`shared_web_sql!`]). Writes of two statements take a connection (the caller's
/// transaction); the rest any executor.
#[macro_export]
macro_rules! shared_cold_sql {
    ($db:ty, $store:ty, $read:ident) => {
        use $crate::__sqlx;

        #[async_trait::async_trait]
        impl $crate::CampaignInputStore for $store {
            async fn save_estimate(&self, tenant_id: &str, e: &$crate::Estimate) -> $crate::Result<()> {
                let mut w = self.write().await?;
                save_estimate(w.conn(), tenant_id, e).await?;
                w.commit().await
            }

            async fn estimate(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::Estimate>> {
                estimate(&self.$read, tenant_id, id).await
            }

            async fn unsold_estimates(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::Estimate>> {
                unsold_estimates(&self.$read, tenant_id, after, limit).await
            }

            async fn save_recurring_service(
                &self,
                tenant_id: &str,
                r: &$crate::RecurringService,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                save_recurring_service(w.conn(), tenant_id, r).await?;
                w.commit().await
            }

            async fn recurring_services(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::Result<Vec<$crate::RecurringService>> {
                recurring_services(&self.$read, tenant_id, after, limit).await
            }

            async fn campaign_inputs_version(&self, tenant_id: &str) -> $crate::Result<Option<i64>> {
                campaign_inputs_version(&self.$read, tenant_id).await
            }

            async fn save_call(&self, tenant_id: &str, call: &$crate::Call) -> $crate::Result<()> {
                let mut w = self.write().await?;
                save_call(w.conn(), tenant_id, call).await?;
                w.commit().await
            }
        }

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

        /// At most `limit` unsold estimates after the id `after`, in id order (on
        /// `estimates_unsold_page`).
        pub(crate) async fn unsold_estimates<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            after: Option<&str>,
            limit: usize,
        ) -> $crate::Result<Vec<$crate::Estimate>> {
            let rows: Vec<$crate::shared::EstimateRow> = __sqlx::query_as(
                "SELECT * FROM estimates WHERE tenant_id = $1 AND status = 'unsold' AND id > $2 \
                 ORDER BY id LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
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

        /// At most `limit` recurring services after the id `after`, in id order (on the
        /// primary key).
        pub(crate) async fn recurring_services<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            after: Option<&str>,
            limit: usize,
        ) -> $crate::Result<Vec<$crate::RecurringService>> {
            let rows: Vec<$crate::shared::RecurringRow> = __sqlx::query_as(
                "SELECT * FROM recurring_services WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
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

/// Tenants, their senders and registrations for one driver, and [`crate::TenantDirectory`]
/// for the backend's store: `shared_tenant_sql!(sqlx::Sqlite, SqliteStore, reader)` (as in
/// [`shared_web_sql!`]). Reads of several statements and `set_senders` take a connection
/// (the caller's transaction for a write); the rest any executor.
#[macro_export]
macro_rules! shared_tenant_sql {
    ($db:ty, $store:ty, $read:ident) => {
        use $crate::__sqlx;

        #[async_trait::async_trait]
        impl $crate::TenantDirectory for $store {
            async fn tenant_count(&self) -> $crate::Result<u64> {
                tenant_count(&self.$read).await
            }

            async fn tenant(&self, id: &str) -> $crate::Result<Option<$crate::Tenant>> {
                tenant_where(&mut *self.$read.acquire().await?, "id", id).await
            }

            async fn tenant_by_slug(&self, slug: &str) -> $crate::Result<Option<$crate::Tenant>> {
                tenant_where(&mut *self.$read.acquire().await?, "slug", slug).await
            }

            async fn tenant_slugs_page(
                &self,
                after: Option<&str>,
                limit: usize,
            ) -> $crate::Result<Vec<String>> {
                tenant_slugs_page(&self.$read, after, limit).await
            }

            async fn tenant_by_api_key(
                &self,
                hash: &str,
            ) -> $crate::Result<Option<$crate::Tenant>> {
                tenant_where(&mut *self.$read.acquire().await?, "api_key_hash", hash).await
            }

            async fn tenant_by_sender(
                &self,
                number: &assent_core::phone::E164,
            ) -> $crate::Result<Option<$crate::Tenant>> {
                tenant_by_sender(&mut *self.$read.acquire().await?, number).await
            }

            async fn registrations(&self, tenant_id: &str) -> $crate::Result<$crate::Registrations> {
                registrations_of(&mut *self.$read.acquire().await?, tenant_id).await
            }

            async fn tenant_name_taken(&self, name: &str) -> $crate::Result<bool> {
                tenant_name_taken(&self.$read, name).await
            }

            async fn pending_registrations(
                &self,
                after: Option<&(String, $crate::RegistrationKind)>,
                limit: u32,
            ) -> $crate::Result<Vec<(String, $crate::Registration)>> {
                pending_registrations(&self.$read, after, limit).await
            }
        }

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

        pub(crate) async fn tenant_slugs_page<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            after: Option<&str>,
            limit: usize,
        ) -> $crate::Result<Vec<String>> {
            Ok(__sqlx::query_scalar(
                "SELECT slug FROM tenants WHERE slug > $1 ORDER BY slug LIMIT $2",
            )
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(e)
            .await?)
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

        /// The tenant and its registrations, as every snapshot needs them.
        pub(crate) async fn load_tenant_context(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
        ) -> $crate::Result<$crate::shared::TenantContext> {
            let tenant = tenant_where(conn, "id", tenant_id)
                .await?
                .ok_or($crate::StoreError::NotFound)?;
            let registrations = registrations_of(&mut *conn, tenant_id).await?;
            Ok((std::sync::Arc::new(tenant), std::sync::Arc::new(registrations)))
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

/// Campaigns' own rows for one driver, and [`crate::CampaignRecords`] for the backend's
/// store: `shared_campaign_sql!(sqlx::Sqlite, crate::SqliteStore, reader)` (as in
/// [`shared_web_sql!`]). Fan-out and holds stay with each backend.
#[macro_export]
macro_rules! shared_campaign_sql {
    ($db:ty, $store:ty, $read:ident) => {
        use $crate::__sqlx;

        #[async_trait::async_trait]
        impl $crate::CampaignRecords for $store {
            async fn save_campaign(&self, c: &$crate::Campaign) -> $crate::Result<()> {
                let mut w = self.write().await?;
                save_campaign(w.conn(), c).await?;
                w.commit().await
            }

            async fn campaign(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::Campaign>> {
                campaign(&self.$read, tenant_id, id).await
            }

            async fn active_campaigns(
                &self,
                tenant_id: &str,
                kind: $crate::CampaignKind,
            ) -> $crate::Result<Vec<$crate::Campaign>> {
                active_campaigns(&self.$read, tenant_id, kind).await
            }

            async fn running_campaigns(&self) -> $crate::Result<Vec<$crate::Campaign>> {
                running_campaigns(&self.$read).await
            }

            async fn recorded_steps(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                steps: &[String],
            ) -> $crate::Result<Vec<(String, assent_core::phone::E164)>> {
                recorded_steps(&self.$read, tenant_id, campaign_id, steps).await
            }

            async fn campaign_recorded(&self, tenant_id: &str, campaign_id: &str) -> $crate::Result<bool> {
                campaign_recorded(&self.$read, tenant_id, campaign_id).await
            }

            async fn campaign_settled(&self, tenant_id: &str, campaign_id: &str) -> $crate::Result<bool> {
                campaign_settled(&self.$read, tenant_id, campaign_id).await
            }

            async fn uncomposed_recipients(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                step: &str,
                after: Option<&assent_core::phone::E164>,
                limit: usize,
            ) -> $crate::Result<Vec<assent_core::phone::E164>> {
                uncomposed_recipients(&self.$read, tenant_id, campaign_id, step, after, limit).await
            }

            async fn send_log(
                &self,
                tenant_id: &str,
                campaign_id: &str,
            ) -> $crate::Result<Vec<$crate::SendLogRow>> {
                send_log(&self.$read, tenant_id, campaign_id).await
            }

            async fn campaign_counts(
                &self,
                tenant_id: &str,
                campaign_id: &str,
            ) -> $crate::Result<$crate::CampaignCounts> {
                campaign_counts(&self.$read, tenant_id, campaign_id).await
            }

            async fn send_log_page(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                status: Option<$crate::SendStatus>,
                after: Option<&$crate::SendLogKey>,
                limit: usize,
            ) -> $crate::Result<$crate::SendLogPage> {
                let (r, t, c) = (&self.$read, tenant_id, campaign_id);
                let rows = send_log_rows(r, t, c, status, after, limit, false).await?;
                Ok($crate::SendLogPage::of(rows, limit))
            }

            async fn send_log_page_before(
                &self,
                tenant_id: &str,
                campaign_id: &str,
                status: Option<$crate::SendStatus>,
                before: Option<&$crate::SendLogKey>,
                limit: usize,
            ) -> $crate::Result<$crate::SendLogPage> {
                let (r, t, c) = (&self.$read, tenant_id, campaign_id);
                let rows = send_log_rows(r, t, c, status, before, limit, true).await?;
                Ok($crate::SendLogPage::of_backwards(rows, limit))
            }
        }

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

        /// A tenant's active campaigns of one kind (a missed call looks for its text-back
        /// campaigns), oldest first: served by `campaigns_running (status)`.
        pub(crate) async fn active_campaigns<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            kind: $crate::CampaignKind,
        ) -> $crate::Result<Vec<$crate::Campaign>> {
            let rows: Vec<$crate::shared::CampaignRow> = __sqlx::query_as(
                "SELECT * FROM campaigns WHERE status = 'active' AND tenant_id = $1 AND kind = $2 \
                 ORDER BY created_at, id",
            )
            .bind(tenant_id)
            .bind(kind)
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

        /// Which of `campaigns` are paused, each row read with `lock` after it (PostgreSQL
        /// `FOR SHARE`, in key order: a pause arriving meanwhile waits for the caller's
        /// write, and its hold then sees what that write queued; SQLite nothing, its one
        /// writer already orders the two).
        pub(crate) async fn paused_campaigns<'a>(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            campaigns: impl Iterator<Item = &'a str>,
            lock: &'static str,
        ) -> $crate::Result<std::collections::HashSet<&'a str>> {
            let sql = format!("SELECT status FROM campaigns WHERE tenant_id = $1 AND id = $2{lock}");
            let mut paused = std::collections::HashSet::new();
            for campaign in campaigns.collect::<std::collections::BTreeSet<_>>() {
                let status: Option<String> = __sqlx::query_scalar(__sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(tenant_id)
                    .bind(campaign)
                    .fetch_optional(&mut *conn)
                    .await?;
                if status.as_deref() == Some("paused") {
                    paused.insert(campaign);
                }
            }
            Ok(paused)
        }

        /// Which of `steps` a campaign has recorded, with their phones (on the primary key).
        pub(crate) async fn recorded_steps<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
            steps: &[String],
        ) -> $crate::Result<Vec<(String, assent_core::phone::E164)>> {
            if steps.is_empty() {
                return Ok(Vec::new());
            }
            let mut sql = $crate::page::Sql::new(
                "SELECT step, phone FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 AND",
            );
            sql.param();
            sql.param();
            sql.in_list("step", steps.len());
            let mut query =
                __sqlx::query_as::<_, (String, String)>(__sqlx::AssertSqlSafe(sql.text))
                    .bind(tenant_id)
                    .bind(campaign_id);
            for step in steps {
                query = query.bind(step.as_str());
            }
            let rows = query.fetch_all(e).await?;
            rows.into_iter()
                .map(|(step, phone)| Ok((step, $crate::codec::phone(&phone)?)))
                .collect()
        }

        pub(crate) async fn campaign_recorded<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
        ) -> $crate::Result<bool> {
            Ok(__sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2)",
            )
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_one(e)
            .await?)
        }

        pub(crate) async fn campaign_settled<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
        ) -> $crate::Result<bool> {
            // The counters count a recipient not yet composed as queued; walking the send
            // log instead read every row of a large campaign on each of the runner's ticks.
            Ok(__sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM campaign_counts WHERE tenant_id = $1 AND campaign_id = $2 \
                 AND status IN ('queued', 'deferred', 'sending') AND n > 0)",
            )
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_one(e)
            .await?)
        }

        /// A range of the send log's key in order, skipping rows already composed or
        /// skipped (no index of their own: the runner's cursor moves forward, so each row
        /// is passed over about once).
        pub(crate) async fn uncomposed_recipients<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
            step: &str,
            after: Option<&assent_core::phone::E164>,
            limit: usize,
        ) -> $crate::Result<Vec<assent_core::phone::E164>> {
            let phones: Vec<String> = __sqlx::query_scalar(
                "SELECT phone FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 AND step = $3 \
                 AND phone > $4 AND message_id IS NULL AND skip_reason IS NULL ORDER BY phone LIMIT $5",
            )
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(step)
            .bind(after.map_or("", |p| p.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(e)
            .await?;
            phones.iter().map(|p| $crate::codec::phone(p)).collect()
        }

        pub(crate) async fn campaign_counts<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
        ) -> $crate::Result<$crate::CampaignCounts> {
            let sql = $crate::shared::campaign_counts_sql(1);
            let rows: Vec<$crate::shared::CountRow> = __sqlx::query_as(__sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(campaign_id)
                .fetch_all(e)
                .await?;
            let mut counts = $crate::shared::fold_counts(rows)?;
            Ok(counts.remove(campaign_id).unwrap_or_default())
        }

        pub(crate) async fn send_log<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
        ) -> $crate::Result<Vec<$crate::SendLogRow>> {
            let rows: Vec<$crate::shared::SendLogEntry> = __sqlx::query_as($crate::shared::SEND_LOG)
                .bind(tenant_id)
                .bind(campaign_id)
                .fetch_all(e)
                .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        /// Up to `limit + 1` send log rows from `from` on (back from it when `backwards`),
        /// in the direction read; the extra row only says there is more.
        pub(crate) async fn send_log_rows<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
            status: Option<$crate::SendStatus>,
            from: Option<&$crate::SendLogKey>,
            limit: usize,
            backwards: bool,
        ) -> $crate::Result<Vec<$crate::SendLogRow>> {
            let sql = $crate::shared::send_log_page_sql(from.is_some(), backwards);
            // Built from constants only; every value is bound.
            let mut q = __sqlx::query_as::<_, $crate::shared::SendLogEntry>(__sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(status);
            if let Some(k) = from {
                q = q.bind(k.step.as_str()).bind(k.phone.as_str());
            }
            let rows = q
                .bind(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1)
                .fetch_all(e)
                .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        /// Holds a paused campaign's queued messages (`paused`), or lets a resumed one's go;
        /// how many messages moved.
        pub(crate) async fn hold_campaign<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            campaign_id: &str,
            paused: bool,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            let q = if paused {
                __sqlx::query(
                    "UPDATE messages SET status = 'deferred', reason = 'campaign_paused', updated_at = $1, due_at = $2 \
                     WHERE tenant_id = $3 AND status IN ('queued', 'deferred') AND id IN \
                     (SELECT message_id FROM campaign_recipients WHERE tenant_id = $3 AND campaign_id = $4 AND message_id IS NOT NULL) \
                     AND EXISTS (SELECT 1 FROM campaigns WHERE tenant_id = $3 AND id = $4 AND status = 'paused')",
                )
                .bind($crate::codec::ms(now))
                .bind($crate::PAUSED_UNTIL_MS)
            } else {
                __sqlx::query(
                    "UPDATE messages SET status = 'queued', reason = NULL, due_at = $1, updated_at = $1 \
                     WHERE tenant_id = $2 AND status = 'deferred' AND reason = 'campaign_paused' AND id IN \
                     (SELECT message_id FROM campaign_recipients WHERE tenant_id = $2 AND campaign_id = $3 AND message_id IS NOT NULL) \
                     AND NOT EXISTS (SELECT 1 FROM campaigns WHERE tenant_id = $2 AND id = $3 AND status = 'paused')",
                )
                .bind($crate::codec::ms(now))
            };
            let r = q.bind(tenant_id).bind(campaign_id).execute(e).await?;
            Ok(r.rows_affected())
        }

        /// Blocks the queued messages of an estimate's follow-up steps (`ESTIMATE_ID:…`).
        pub(crate) async fn withdraw_estimate_steps<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            estimate_id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            let r = __sqlx::query(
                "UPDATE messages SET status = 'blocked', reason = 'estimate_closed', updated_at = $1 \
                 WHERE tenant_id = $2 AND status IN ('queued', 'deferred') AND id IN \
                 (SELECT message_id FROM campaign_recipients WHERE tenant_id = $2 AND message_id IS NOT NULL \
                  AND substr(step, 1, length($3) + 1) = $3 || ':')",
            )
            .bind($crate::codec::ms(now))
            .bind(tenant_id)
            .bind(estimate_id)
            .execute(e)
            .await?;
            Ok(r.rows_affected())
        }
    };
}

/// The tenant and its registrations, as every snapshot needs them.
pub type TenantContext = (
    std::sync::Arc<crate::Tenant>,
    std::sync::Arc<crate::Registrations>,
);

/// A `contact_methods` row (with its customer when read for several).
#[derive(sqlx::FromRow)]
pub struct ContactRow {
    pub phone: String,
    pub job_notifications: bool,
    pub marketing_updates: bool,
}

impl TryFrom<ContactRow> for crate::ContactMethod {
    type Error = crate::StoreError;
    fn try_from(r: ContactRow) -> crate::Result<Self> {
        Ok(crate::ContactMethod {
            number: crate::codec::phone(&r.phone)?,
            job_notifications: r.job_notifications,
            marketing_updates: r.marketing_updates,
        })
    }
}

/// A `consent_ledger` row.
#[derive(sqlx::FromRow)]
pub struct LedgerRow {
    pub seq: i64,
    pub phone: String,
    pub channel: assent_core::consent::Topic,
    pub old_state: assent_core::consent::LedgerState,
    pub new_state: assent_core::consent::LedgerState,
    pub source: assent_core::consent::Source,
    pub actor: crate::Actor,
    pub occurred_at: i64,
    pub message_sid: Option<String>,
    pub body: Option<String>,
    pub rule: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub page: Option<String>,
    pub disclosure: Option<String>,
    pub request_id: Option<String>,
    pub chain_seq: Option<i64>,
    pub hash: Option<String>,
}

impl TryFrom<LedgerRow> for crate::LedgerEntry {
    type Error = crate::StoreError;
    fn try_from(r: LedgerRow) -> crate::Result<Self> {
        Ok(crate::LedgerEntry {
            seq: r.seq,
            entry: crate::NewLedgerEntry {
                phone: crate::codec::phone(&r.phone)?,
                channel: r.channel,
                old_state: r.old_state,
                new_state: r.new_state,
                source: r.source,
                actor: r.actor,
                occurred_at: time(r.occurred_at),
                evidence: crate::Evidence {
                    message_sid: r.message_sid,
                    text: r.body,
                    rule: r.rule,
                    ip: r.ip,
                    user_agent: r.user_agent,
                    page: r.page,
                    disclosure: r.disclosure,
                    request: r.request_id,
                },
            },
            chain_seq: r.chain_seq,
            hash: r.hash,
        })
    }
}

/// A `messages` row.
#[derive(sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub tenant_id: String,
    pub direction: crate::Direction,
    pub channel: assent_core::consent::Channel,
    pub from_number: String,
    pub to_number: String,
    pub phone: String,
    pub body: String,
    pub kind: crate::MessageKind,
    pub purpose: Option<String>,
    pub status: crate::MessageStatus,
    pub reason: Option<crate::MessageReason>,
    pub provider_id: Option<String>,
    pub segments: i32,
    pub priority: i32,
    pub due_at: i64,
    pub expires_at: Option<i64>,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<MessageRow> for crate::Message {
    type Error = crate::StoreError;
    fn try_from(r: MessageRow) -> crate::Result<Self> {
        use crate::codec;
        Ok(crate::Message {
            from: codec::phone(&r.from_number)?,
            to: codec::phone(&r.to_number)?,
            phone: codec::phone(&r.phone)?,
            purpose: codec::purpose(r.purpose.as_deref())?,
            segments: u32::try_from(r.segments).unwrap_or(0),
            priority: u8::try_from(r.priority).unwrap_or(u8::MAX),
            due_at: time(r.due_at),
            expires_at: r.expires_at.map(time),
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
            id: r.id,
            tenant_id: r.tenant_id,
            direction: r.direction,
            channel: r.channel,
            body: r.body,
            kind: r.kind,
            status: r.status,
            reason: r.reason,
            provider_id: r.provider_id,
            idempotency_key: r.idempotency_key,
        })
    }
}

/// A row of [`SEND_LOG`].
#[derive(sqlx::FromRow)]
pub struct SendLogEntry {
    pub phone: String,
    pub step: String,
    pub message_id: Option<String>,
    pub skip_reason: Option<crate::SkipReason>,
    pub status: Option<crate::MessageStatus>,
    pub reason: Option<String>,
    pub handed_off_at: Option<i64>,
    pub due_at: Option<i64>,
    pub opted_out_after: i64,
}

impl TryFrom<SendLogEntry> for crate::SendLogRow {
    type Error = crate::StoreError;
    fn try_from(r: SendLogEntry) -> crate::Result<Self> {
        Ok(crate::SendLogRow {
            phone: crate::codec::phone(&r.phone)?,
            step: r.step,
            message_id: r.message_id,
            status: crate::SendStatus::of(r.skip_reason.is_some(), r.status)?,
            reason: r.skip_reason.map(|s| s.to_string()).or(r.reason),
            sent_at: r.handed_off_at.map(time),
            opted_out_after: r.opted_out_after > 0,
            // A skipped phone has no message, hence no status: never deferred.
            deferred_until: crate::SendLogRow::deferred_until_of(r.status, r.due_at),
        })
    }
}

/// A member of a marketing audience: a phone and its oldest customer's name.
#[derive(sqlx::FromRow)]
pub struct AudienceRow {
    pub phone: String,
    pub name: Option<String>,
}

impl TryFrom<AudienceRow> for crate::AudienceMember {
    type Error = crate::StoreError;
    fn try_from(r: AudienceRow) -> crate::Result<Self> {
        Ok(crate::AudienceMember {
            phone: crate::codec::phone(&r.phone)?,
            name: r.name,
        })
    }
}

/// A campaign's send log, every row (`$1` tenant, `$2` campaign), in the order written.
pub const SEND_LOG: &str = "SELECT r.phone, r.step, r.message_id, r.skip_reason, m.status, m.reason, m.handed_off_at, m.due_at, \
     (SELECT COUNT(*) FROM consent_ledger l WHERE l.tenant_id = r.tenant_id AND l.phone = r.phone \
        AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out' AND m.handed_off_at IS NOT NULL \
        AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000) AS opted_out_after \
     FROM campaign_recipients r LEFT JOIN messages m ON m.tenant_id = r.tenant_id AND m.id = r.message_id \
     WHERE r.tenant_id = $1 AND r.campaign_id = $2 ORDER BY r.created_at, r.phone";

/// A recipient's status as the send log shows it.
const LOG_STATUS: &str =
    "CASE WHEN r.skip_reason IS NOT NULL THEN 'skipped' ELSE COALESCE(m.status, 'queued') END";

/// A row of [`campaign_counts_sql`]: campaign, status (or `opted_out_after`), skip reason
/// (`''` for none) and how many.
pub type CountRow = (String, String, String, i64);

/// The counters of `campaigns` campaigns (`$1` tenant, then their ids): the rows the
/// database keeps in `campaign_counts`, updated in the transaction of each change to the
/// send log, its messages or the consent ledger (by triggers; SQLite's recording of
/// recipients counts itself: docs/SCALING.md, "Campaign counters"). A report reads one
/// campaign's few rows, the campaigns list a page's; neither touches the send log.
pub fn campaign_counts_sql(campaigns: usize) -> String {
    let mut sql = crate::page::Sql::new(
        "SELECT campaign_id, status, reason, n FROM campaign_counts WHERE tenant_id = $1 AND",
    );
    sql.param();
    sql.in_list("campaign_id", campaigns);
    sql.text
}

/// The rows of [`campaign_counts_sql`] added up per campaign; a status nobody has now
/// (a counter back at 0) is left out.
pub fn fold_counts(
    rows: Vec<CountRow>,
) -> crate::Result<std::collections::HashMap<String, crate::CampaignCounts>> {
    let mut out: std::collections::HashMap<String, crate::CampaignCounts> = Default::default();
    for (id, status, reason, n) in rows {
        let c = out.entry(id).or_default();
        let n = u64::try_from(n).unwrap_or(0);
        if status == "opted_out_after" {
            c.opted_out_after += n;
            continue;
        }
        if n == 0 {
            continue;
        }
        let status: crate::SendStatus = crate::codec::column("campaign message status", &status)?;
        c.recipients += n;
        *c.by_status.entry(status).or_default() += n;
        if !reason.is_empty() {
            *c.skipped_by_reason.entry(reason).or_default() += n;
        }
    }
    Ok(out)
}

/// One page of the send log in key order (descending `backwards`, from a `before` key):
/// `$1` tenant, `$2` campaign, `$3` status or NULL, then the (step, phone) to resume after
/// (`$4`, `$5`) when `after`, then the number of rows. The columns are [`SEND_LOG`]'s.
pub fn send_log_page_sql(after: bool, backwards: bool) -> String {
    let select = SEND_LOG
        .split(" WHERE r.tenant_id")
        .next()
        .expect("SEND_LOG filters by tenant");
    // Without a cursor the range condition is left out, rather than OR'd away, so the
    // planner starts every page with a seek on the key. (SQLite numbers `$N` in order of
    // first appearance, hence the limit's number follows the cursor's.)
    let (resume, order, limit) = match (after, backwards) {
        (false, false) => ("", "ASC", "$4"),
        (false, true) => ("", "DESC", "$4"),
        (true, false) => ("AND (r.step, r.phone) > ($4, $5)", "ASC", "$6"),
        (true, true) => ("AND (r.step, r.phone) < ($4, $5)", "DESC", "$6"),
    };
    format!(
        "{select} WHERE r.tenant_id = $1 AND r.campaign_id = $2 \
         AND ($3 IS NULL OR {LOG_STATUS} = $3) \
         {resume} ORDER BY r.step {order}, r.phone {order} LIMIT {limit}"
    )
}

/// Customers, the ledger's cold reads, single messages and the plain writes of a
/// transaction's plan, for one driver, and [`crate::CustomerLookup`] and
/// [`crate::MessageLookup`] for the backend's store: `shared_store_sql!(sqlx::Sqlite,
/// SqliteStore, reader)`. What needs a backend's own SQL (snapshots, the ledger's and messages' bulk inserts, locks) stays
/// with it. Functions of several statements take a connection; the rest any executor.
#[macro_export]
macro_rules! shared_store_sql {
    ($db:ty, $store:ty, $read:ident) => {
        #[async_trait::async_trait]
        impl $crate::CustomerLookup for $store {
            async fn phone_owners(
                &self,
                tenant_id: &str,
                phones: &[assent_core::phone::E164],
            ) -> $crate::Result<Vec<(assent_core::phone::E164, String)>> {
                phone_owners(&self.$read, tenant_id, phones).await
            }

            async fn customers_with_phone(
                &self,
                tenant_id: &str,
                phone: &assent_core::phone::E164,
            ) -> $crate::Result<Vec<String>> {
                customers_with_phone(&self.$read, tenant_id, phone).await
            }

            async fn customer(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::Customer>> {
                customer(&mut *self.$read.acquire().await?, tenant_id, id).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::MessageLookup for $store {
            async fn message(&self, tenant_id: &str, id: &str) -> $crate::Result<Option<$crate::Message>> {
                message(&self.$read, tenant_id, id).await
            }

            async fn message_by_idempotency_key(
                &self,
                tenant_id: &str,
                key: &str,
            ) -> $crate::Result<Option<$crate::Message>> {
                message_by_idempotency_key(&self.$read, tenant_id, key).await
            }

            async fn message_by_provider_id(
                &self,
                tenant_id: &str,
                provider_id: &str,
            ) -> $crate::Result<Option<$crate::Message>> {
                message_by_provider_id(&self.$read, tenant_id, provider_id).await
            }

            async fn in_flight(
                &self,
                tenant_id: &str,
                phone: &assent_core::phone::E164,
                since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<u64> {
                in_flight(&self.$read, tenant_id, phone, since).await
            }

            async fn queue_depth(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::QueueDepth> {
                queue_depth(&self.$read, now).await
            }
        }

        /// A customer's own rows: the customer, its tags and its contact methods (the
        /// ledger entries are the caller's).
        pub(crate) async fn insert_customer_rows(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            c: &$crate::Customer,
        ) -> $crate::Result<()> {
            use $crate::codec;
            $crate::__sqlx::query(
                "INSERT INTO customers (tenant_id, id, name, address, tags, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant_id)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.address)
            .bind(codec::to_json(&c.tags))
            .bind(codec::ms(c.created_at))
            .execute(&mut *conn)
            .await?;
            for tag in &c.tags {
                $crate::__sqlx::query(
                    "INSERT INTO customer_tags (tenant_id, customer_id, tag) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant_id)
                .bind(&c.id)
                .bind(tag)
                .execute(&mut *conn)
                .await?;
            }
            for (i, p) in c.phones.iter().enumerate() {
                $crate::__sqlx::query(
                    "INSERT INTO contact_methods (tenant_id, customer_id, phone, position, \
                     job_notifications, marketing_updates) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(tenant_id)
                .bind(&c.id)
                .bind(p.number.as_str())
                .bind(i32::try_from(i).unwrap_or(i32::MAX))
                .bind(p.job_notifications)
                .bind(p.marketing_updates)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        pub(crate) async fn customer(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::Customer>> {
            let row: Option<$crate::shared::CustomerRow> = $crate::__sqlx::query_as(
                "SELECT id, name, address, tags, created_at FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let phones: Vec<$crate::shared::ContactRow> = $crate::__sqlx::query_as(
                "SELECT phone, job_notifications, marketing_updates FROM contact_methods \
                 WHERE tenant_id = $1 AND customer_id = $2 ORDER BY position",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            let mut customer = $crate::Customer::try_from(row)?;
            customer.phones = phones
                .into_iter()
                .map(TryInto::try_into)
                .collect::<$crate::Result<_>>()?;
            Ok(Some(customer))
        }

        /// Ids of the customers holding `phone`, oldest first. The order is a subquery, so
        /// both planners start from the phone's index rather than the customers.
        pub(crate) async fn customers_with_phone<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
        ) -> $crate::Result<Vec<String>> {
            Ok($crate::__sqlx::query_scalar(
                "SELECT cm.customer_id FROM contact_methods cm WHERE cm.tenant_id = $1 AND cm.phone = $2 \
                 ORDER BY (SELECT c.created_at FROM customers c WHERE c.tenant_id = cm.tenant_id \
                   AND c.id = cm.customer_id), cm.customer_id",
            )
            .bind(tenant_id)
            .bind(phone.as_str())
            .fetch_all(e)
            .await?)
        }

        /// The (phone, customer id) pairs of the given phones that are on a record, oldest
        /// customer first (an import looks up a batch of its rows at a time).
        pub(crate) async fn phone_owners<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            phones: &[assent_core::phone::E164],
        ) -> $crate::Result<Vec<(assent_core::phone::E164, String)>> {
            if phones.is_empty() {
                return Ok(Vec::new());
            }
            let mut sql = $crate::page::Sql::new($crate::shared::PHONE_OWNERS_SQL);
            let p = sql.param();
            sql.push(&p).push(" AND");
            sql.in_list("cm.phone", phones.len());
            sql.push(" ORDER BY c.created_at, c.id");
            let mut query = $crate::__sqlx::query_as::<_, (String, String)>(
                $crate::__sqlx::AssertSqlSafe(sql.text),
            )
            .bind(tenant_id);
            for phone in phones {
                query = query.bind(phone.as_str());
            }
            let rows = query.fetch_all(e).await?;
            rows.into_iter()
                .map(|(phone, id)| Ok(($crate::codec::phone(&phone)?, id)))
                .collect()
        }

        /// Sets one contact method's toggles; how many rows changed (0: no such record).
        /// A phone added to a customer, last among its contact methods; `NotFound` without
        /// the customer, `Conflict` when it already holds the phone.
        pub(crate) async fn insert_phone_row(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            customer_id: &str,
            p: &$crate::ContactMethod,
        ) -> $crate::Result<()> {
            let exists: Option<i64> = $crate::__sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM customers WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?;
            if exists.is_none() {
                return Err($crate::StoreError::NotFound);
            }
            let held: Option<i64> = $crate::__sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) FROM contact_methods \
                 WHERE tenant_id = $1 AND customer_id = $2 AND phone = $3",
            )
            .bind(tenant_id)
            .bind(customer_id)
            .bind(p.number.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            if held.is_some() {
                return Err($crate::StoreError::Conflict(
                    "this customer already has that phone".to_string(),
                ));
            }
            $crate::__sqlx::query(
                "INSERT INTO contact_methods (tenant_id, customer_id, phone, position, \
                 job_notifications, marketing_updates) \
                 SELECT $1, $2, $3, COALESCE(MAX(position) + 1, 0), $4, $5 FROM contact_methods \
                 WHERE tenant_id = $1 AND customer_id = $2",
            )
            .bind(tenant_id)
            .bind(customer_id)
            .bind(p.number.as_str())
            .bind(p.job_notifications)
            .bind(p.marketing_updates)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Deletes one contact method; how many rows went (0: the customer has no such phone).
        pub(crate) async fn delete_phone_row<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            customer_id: &str,
            phone: &assent_core::phone::E164,
        ) -> $crate::Result<u64> {
            let done = $crate::__sqlx::query(
                "DELETE FROM contact_methods WHERE tenant_id = $1 AND customer_id = $2 AND phone = $3",
            )
            .bind(tenant_id)
            .bind(customer_id)
            .bind(phone.as_str())
            .execute(e)
            .await?;
            Ok(done.rows_affected())
        }

        pub(crate) async fn update_toggles<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            customer_id: &str,
            phone: &assent_core::phone::E164,
            (job, marketing): (bool, bool),
        ) -> $crate::Result<u64> {
            let done = $crate::__sqlx::query(
                "UPDATE contact_methods SET job_notifications = $1, marketing_updates = $2 \
                 WHERE tenant_id = $3 AND customer_id = $4 AND phone = $5",
            )
            .bind(job)
            .bind(marketing)
            .bind(tenant_id)
            .bind(customer_id)
            .bind(phone.as_str())
            .execute(e)
            .await?;
            Ok(done.rows_affected())
        }

        /// One of the tenant's messages by `sql` (a constant, `tenant_id = $1 AND … = $2`)
        /// on `value`: every lookup of a message names its tenant.
        async fn message_where<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            sql: &'static str,
            tenant_id: &str,
            value: &str,
        ) -> $crate::Result<Option<$crate::Message>> {
            let row = $crate::__sqlx::query_as::<_, $crate::shared::MessageRow>(sql)
                .bind(tenant_id)
                .bind(value)
                .fetch_optional(e)
                .await?;
            row.map(TryInto::try_into).transpose()
        }

        pub(crate) async fn message<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::Message>> {
            let sql = "SELECT * FROM messages WHERE tenant_id = $1 AND id = $2";
            message_where(e, sql, tenant_id, id).await
        }

        pub(crate) async fn message_by_idempotency_key<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            key: &str,
        ) -> $crate::Result<Option<$crate::Message>> {
            let sql = "SELECT * FROM messages WHERE tenant_id = $1 AND idempotency_key = $2";
            message_where(e, sql, tenant_id, key).await
        }

        pub(crate) async fn message_by_provider_id<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            provider_id: &str,
        ) -> $crate::Result<Option<$crate::Message>> {
            let sql = "SELECT * FROM messages WHERE tenant_id = $1 AND provider_id = $2";
            message_where(e, sql, tenant_id, provider_id).await
        }

        pub(crate) async fn in_flight<'c>(
            e: impl $crate::__sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
            since: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            let n: i64 = $crate::__sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE tenant_id = $1 AND phone = $2 \
                 AND status = 'sending' AND call_started_at > $3",
            )
            .bind(tenant_id)
            .bind(phone.as_str())
            .bind($crate::codec::ms(since))
            .fetch_one(e)
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        /// The send queue as the database holds it (every process's messages, whichever
        /// one is asked): see `QueueStore::queue_depth`.
        pub(crate) async fn queue_depth(
            pool: &$crate::__sqlx::Pool<$db>,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<$crate::QueueDepth> {
            let mut depth = $crate::QueueDepth::default();
            let rows: Vec<(String, i64)> = $crate::__sqlx::query_as(
                "SELECT status, COUNT(*) FROM messages WHERE status IN ('queued', 'deferred') GROUP BY status",
            )
            .fetch_all(pool)
            .await?;
            for (status, n) in rows {
                let n = u64::try_from(n).unwrap_or(0);
                match status.as_str() {
                    "queued" => depth.queued = n,
                    _ => depth.deferred = n,
                }
            }
            let sending: i64 =
                $crate::__sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE status = 'sending'")
                    .fetch_one(pool)
                    .await?;
            depth.sending = u64::try_from(sending).unwrap_or(0);
            let oldest: Option<i64> = $crate::__sqlx::query_scalar(
                "SELECT MIN(due_at) FROM messages WHERE status IN ('queued', 'deferred') AND due_at <= $1",
            )
            .bind($crate::codec::ms(now))
            .fetch_one(pool)
            .await?;
            depth.oldest_due = oldest.map($crate::codec::time);
            Ok(depth)
        }

        /// See `CampaignStore::marketing_audience` (cold: the fan-out pages with
        /// `audience_page`). `opted_in` is the backend's test of a consent row `k` whose
        /// marketing is opted in (the drivers read JSON text differently).
        pub(crate) async fn marketing_audience(
            pool: &$crate::__sqlx::Pool<$db>,
            tenant_id: &str,
            tags: &[String],
            opted_in: &'static str,
        ) -> $crate::Result<Vec<$crate::AudienceMember>> {
            use $crate::__sqlx;
            if tags.is_empty() {
                let sql = format!(
                    "SELECT k.phone, (SELECT c.name FROM contact_methods cm CROSS JOIN customers c \
                       WHERE c.tenant_id = cm.tenant_id AND c.id = cm.customer_id \
                       AND cm.tenant_id = k.tenant_id AND cm.phone = k.phone \
                       ORDER BY c.created_at, c.id LIMIT 1) AS name \
                     FROM consent k WHERE k.tenant_id = $1 AND {opted_in} ORDER BY k.phone"
                );
                let rows: Vec<$crate::shared::AudienceRow> =
                    __sqlx::query_as(__sqlx::AssertSqlSafe(sql))
                        .bind(tenant_id)
                        .fetch_all(pool)
                        .await?;
                return rows.into_iter().map(TryInto::try_into).collect();
            }
            let mut out: Vec<$crate::AudienceMember> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for tag in tags {
                let rows: Vec<$crate::shared::AudienceRow> = __sqlx::query_as(
                    "SELECT cm.phone, c.name FROM customer_tags t JOIN customers c \
                       ON c.tenant_id = t.tenant_id AND c.id = t.customer_id \
                     JOIN contact_methods cm ON cm.tenant_id = c.tenant_id AND cm.customer_id = c.id \
                     WHERE t.tenant_id = $1 AND t.tag = $2 ORDER BY c.created_at, c.id, cm.position",
                )
                .bind(tenant_id)
                .bind(tag)
                .fetch_all(pool)
                .await?;
                for r in rows {
                    let m = $crate::AudienceMember::try_from(r)?;
                    if seen.insert(m.phone.clone()) {
                        out.push(m);
                    }
                }
            }
            Ok(out)
        }

        /// See `QueueStore::retry_later`, in the caller's transaction; `lock` is appended to
        /// the read of the row (PostgreSQL ` FOR UPDATE`, SQLite nothing: its one writer
        /// already orders the two).
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn retry_later_in(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            id: &str,
            reason: &$crate::MessageReason,
            now: chrono::DateTime<chrono::Utc>,
            max_attempts: Option<u32>,
            backoff: &(dyn Fn(u32) -> chrono::Duration + Send + Sync),
            lock: &'static str,
        ) -> $crate::Result<$crate::MessageStatus> {
            use $crate::codec::ms;
            let sql = format!(
                "SELECT CAST(attempts AS BIGINT), CAST(segments AS BIGINT), handed_off_at FROM messages \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'sending'{lock}"
            );
            let Some((attempts, segments, handed_off_at)) =
                $crate::__sqlx::query_as::<_, (i64, i64, Option<i64>)>($crate::__sqlx::AssertSqlSafe(sql))
                    .bind(tenant_id)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?
            else {
                return Err($crate::StoreError::NotFound);
            };
            let $crate::decide::Retry {
                status,
                attempts,
                due_at,
            } = $crate::decide::retry(
                u32::try_from(attempts).unwrap_or(u32::MAX),
                max_attempts,
                now,
                backoff,
            );
            // Nothing was sent: the claim's count against the daily cap is given back, and
            // the frequency cap must not count this message as handed off.
            if let Some(at) = handed_off_at {
                let claim = (tenant_id.to_string(), id.to_string(), at, segments);
                give_back_handoffs(conn, &[claim], now).await?;
            }
            $crate::__sqlx::query(
                "UPDATE messages SET status = $1, reason = $2, attempts = $3, due_at = $4, updated_at = $5, \
                 handed_off_at = NULL WHERE tenant_id = $6 AND id = $7",
            )
            .bind(status)
            .bind(reason)
            .bind(i64::from(attempts))
            .bind(ms(due_at))
            .bind(ms(now))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(status)
        }

        /// See `QueueStore::recover_orphaned_sends`, in the caller's transaction; `lock` is
        /// appended to the read of the claims put back (PostgreSQL ` FOR UPDATE`, taken in
        /// key order; SQLite nothing: its one writer orders everything). Started calls are
        /// marked first, so the hour buckets are the last rows taken, as a claim takes them.
        pub(crate) async fn recover_orphaned_sends(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            claimed_before: chrono::DateTime<chrono::Utc>,
            started_before: chrono::DateTime<chrono::Utc>,
            now: chrono::DateTime<chrono::Utc>,
            lock: &'static str,
        ) -> $crate::Result<(u64, u64)> {
            use $crate::codec::ms;
            let unknown = $crate::__sqlx::query(
                "UPDATE messages SET status = 'unknown', reason = 'handoff_interrupted', updated_at = $1 \
                 WHERE status = 'sending' AND call_started_at < $2",
            )
            .bind(ms(now))
            .bind(ms(started_before))
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let unstarted: Vec<$crate::decide::Unstarted> =
                $crate::__sqlx::query_as($crate::__sqlx::AssertSqlSafe(format!(
                    "SELECT tenant_id, id, handed_off_at, CAST(segments AS BIGINT) FROM messages \
                     WHERE status = 'sending' AND call_started_at IS NULL AND handed_off_at < $1 \
                     ORDER BY tenant_id, id{lock}"
                )))
                .bind(ms(claimed_before))
                .fetch_all(&mut *conn)
                .await?;
            let requeued = put_back_unstarted(conn, &unstarted, now).await?;
            Ok((requeued, unknown))
        }

        /// Gives back the count of claims that were never handed off after all against
        /// each tenant's daily cap ([`$crate::decide::handoff_refunds`]), bucket by bucket in
        /// key order as a claim takes them.
        pub(crate) async fn give_back_handoffs(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            unstarted: &[$crate::decide::Unstarted],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            let now_ms = $crate::codec::ms(now);
            for (tenant_id, hour, n) in $crate::decide::handoff_refunds(unstarted, now_ms) {
                $crate::__sqlx::query(
                    "UPDATE tenant_handoffs SET n = CASE WHEN n > $3 THEN n - $3 ELSE 0 END \
                     WHERE tenant_id = $1 AND hour = $2",
                )
                .bind(tenant_id)
                .bind(hour)
                .bind(n)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Puts claims whose call never started (locked by the caller, where rows are
        /// locked) back in the queue, and gives back their count against each tenant's
        /// daily cap ([`$crate::decide::handoff_refunds`]), bucket by bucket in key order
        /// as a claim takes them. Returns how many went back. A sweep or a shutdown: at
        /// most the claims in flight, so a statement each is no cost.
        pub(crate) async fn put_back_unstarted(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            unstarted: &[$crate::decide::Unstarted],
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<u64> {
            use $crate::codec::ms;
            give_back_handoffs(conn, unstarted, now).await?;
            let mut requeued = 0;
            for (tenant_id, id, _, _) in unstarted {
                // `handed_off_at` goes too: the frequency cap counts hand-offs by it, and
                // this one never happened.
                requeued += $crate::__sqlx::query(
                    "UPDATE messages SET status = 'queued', reason = NULL, handed_off_at = NULL, updated_at = $1 \
                     WHERE tenant_id = $2 AND id = $3 AND status = 'sending' AND call_started_at IS NULL",
                )
                .bind(ms(now))
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
            Ok(requeued)
        }

        /// The phone's new consent, when the plan changed it.
        pub(crate) async fn write_consent(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
            plan: &$crate::Plan,
            now_ms: i64,
        ) -> $crate::Result<()> {
            let Some(state) = &plan.consent else {
                return Ok(());
            };
            $crate::__sqlx::query(
                "INSERT INTO consent (tenant_id, phone, state, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, phone) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(phone.as_str())
            .bind($crate::codec::to_json(state))
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// The rest of a plan after its consent, ledger entries and messages: the author of
        /// its outbound messages, the review it opens or closes, held messages released,
        /// toggles.
        pub(crate) async fn write_plan_rest(
            conn: &mut <$db as $crate::__sqlx::Database>::Connection,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
            plan: &$crate::Plan,
            now_ms: i64,
        ) -> $crate::Result<()> {
            if let Some(user_id) = &plan.author {
                for m in plan.messages.iter().filter(|m| m.direction == $crate::Direction::Outbound) {
                    $crate::__sqlx::query(
                        "INSERT INTO message_authors (tenant_id, message_id, user_id) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(tenant_id)
                    .bind(&m.id)
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            if let Some(r) = &plan.review {
                $crate::__sqlx::query(
                    "INSERT INTO reviews (tenant_id, id, phone, thread, message_id, body, word, created_at, deadline_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant_id)
                .bind(&r.id)
                .bind(phone.as_str())
                .bind(r.thread)
                .bind(&r.message_id)
                .bind(&r.text)
                .bind(&r.word)
                .bind(now_ms)
                .bind($crate::codec::ms(r.deadline))
                .execute(&mut *conn)
                .await?;
            }
            if let Some((id, decision)) = &plan.review_decision {
                let closed = $crate::__sqlx::query(
                    "UPDATE reviews SET decision = $1, decided_at = $2 \
                     WHERE tenant_id = $3 AND id = $4 AND decision IS NULL",
                )
                .bind(decision)
                .bind(now_ms)
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                // Two people (or a person and the deadline) deciding at once: the first
                // decision stands and the second changes nothing.
                if closed.rows_affected() == 0 {
                    return Err($crate::StoreError::Conflict(
                        "the review was already decided".into(),
                    ));
                }
            }
            if plan.release_held {
                $crate::__sqlx::query(
                    "UPDATE messages SET due_at = $1 WHERE tenant_id = $2 AND phone = $3 \
                     AND status = 'deferred' AND reason = 'under_review'",
                )
                .bind(now_ms)
                .bind(tenant_id)
                .bind(phone.as_str())
                .execute(&mut *conn)
                .await?;
            }
            if let Some(id) = &plan.release_request {
                // Only while still held: one already handed off is not sent twice.
                $crate::__sqlx::query(
                    "UPDATE messages SET due_at = $1, purpose = 'opt_in_request_customer' \
                     WHERE tenant_id = $2 AND id = $3 AND status IN ('queued', 'deferred')",
                )
                .bind(now_ms)
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            if let Some((customer_id, job, marketing)) = &plan.toggles {
                update_toggles(&mut *conn, tenant_id, customer_id, phone, (*job, *marketing))
                    .await?;
            }
            if plan.marketing_updates_on {
                $crate::__sqlx::query(
                    "UPDATE contact_methods SET marketing_updates = $1 WHERE tenant_id = $2 AND phone = $3",
                )
                .bind(true)
                .bind(tenant_id)
                .bind(phone.as_str())
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }
    };
}
