//! Reassigned-number checks and status-callback history, written once for both backends
//! ([`shared_evidence_sql!`] stamps out the functions a backend's [`crate::EvidenceStore`]
//! calls). Tables from migration `evidence` (SQLite 0028, PostgreSQL 0027).

use crate::codec::time;
use crate::{ReassignedCheck, StatusEvent, StoreError};

/// A `reassigned_checks` row.
#[derive(sqlx::FromRow)]
pub struct CheckRow {
    pub tenant_id: String,
    pub phone: String,
    pub asked_at: i64,
    pub provider: String,
    pub last_verified_date: String,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub message_id: Option<String>,
}

impl TryFrom<CheckRow> for ReassignedCheck {
    type Error = StoreError;
    fn try_from(r: CheckRow) -> Result<Self, StoreError> {
        Ok(ReassignedCheck {
            tenant_id: r.tenant_id,
            phone: crate::codec::phone(&r.phone)?,
            asked_at: time(r.asked_at),
            provider: r.provider,
            last_verified_date: r.last_verified_date,
            answer: r.answer,
            error: r.error,
            message_id: r.message_id,
        })
    }
}

/// A `message_status_events` row.
#[derive(sqlx::FromRow)]
pub struct EventRow {
    pub tenant_id: String,
    pub message_id: String,
    pub provider_id: String,
    pub status: String,
    pub error_code: Option<i64>,
    pub received_at: i64,
}

impl From<EventRow> for StatusEvent {
    fn from(r: EventRow) -> Self {
        StatusEvent {
            tenant_id: r.tenant_id,
            message_id: r.message_id,
            provider_id: r.provider_id,
            status: r.status,
            error_code: r.error_code,
            received_at: time(r.received_at),
        }
    }
}

/// Stamps out the evidence functions and [`crate::EvidenceStore`] for one backend (`$db`:
/// `sqlx::Sqlite` or `sqlx::Postgres`; `$json_ids`: SQL listing the strings of the JSON
/// array in `$2`; `$store` and `$read` as in [`crate::shared_web_sql!`]). Reads take any
/// executor; writes take a connection in a transaction.
#[macro_export]
macro_rules! shared_evidence_sql {
    ($db:ty, $json_ids:literal, $store:ty, $read:ident) => {
        use $crate::__chrono::{DateTime, Utc};
        use $crate::__sqlx;
        use $crate::codec::ms;

        #[async_trait::async_trait]
        impl $crate::EvidenceStore for $store {
            async fn record_reassigned_check(
                &self,
                check: &$crate::ReassignedCheck,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                record_reassigned_check(w.conn(), check).await?;
                w.commit().await
            }

            async fn answered_check_since(
                &self,
                tenant_id: &str,
                phone: &assent_core::phone::E164,
                since: DateTime<Utc>,
            ) -> $crate::Result<Option<$crate::ReassignedCheck>> {
                answered_check_since(&self.$read, tenant_id, phone, since).await
            }

            async fn reassigned_checks(
                &self,
                tenant_id: &str,
                phone: &assent_core::phone::E164,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::ReassignedCheck>> {
                reassigned_checks(&self.$read, tenant_id, phone, limit).await
            }

            async fn settle_claimed(
                &self,
                outcomes: &[$crate::ClaimOutcome],
                claimed_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> $crate::Result<u64> {
                if outcomes.is_empty() {
                    return Ok(0);
                }
                let mut w = self.write().await?;
                // Not handed off after all: what the claim counted against the daily cap
                // goes back, after the messages' rows (the hour buckets last, as a claim).
                let mut refunds: Vec<$crate::decide::Unstarted> = Vec::new();
                for o in outcomes {
                    if let Some(segments) = settle_claimed(w.conn(), o, claimed_at, now).await? {
                        let at = $crate::codec::ms(claimed_at);
                        refunds.push((o.tenant_id.clone(), o.id.clone(), at, segments));
                    }
                }
                // From shared_store_sql!, which each backend expands beside this module.
                super::give_back_handoffs(w.conn(), &refunds, now).await?;
                w.commit().await?;
                Ok(refunds.len() as u64)
            }

            async fn record_status_events(
                &self,
                events: &[$crate::StatusEvent],
            ) -> $crate::Result<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut w = self.write().await?;
                for e in events {
                    record_status_event(w.conn(), e).await?;
                }
                w.commit().await
            }

            async fn status_events(
                &self,
                tenant_id: &str,
                message_ids: &[String],
                limit: u32,
            ) -> $crate::Result<Vec<$crate::StatusEvent>> {
                status_events(&self.$read, tenant_id, message_ids, limit).await
            }
        }

        const CHECK_COLUMNS: &str = "tenant_id, phone, asked_at, provider, last_verified_date, answer, error, message_id";

        pub(crate) async fn record_reassigned_check<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            c: &$crate::ReassignedCheck,
        ) -> $crate::Result<()> {
            __sqlx::query(__sqlx::AssertSqlSafe(format!(
                "INSERT INTO reassigned_checks ({CHECK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )))
            .bind(&c.tenant_id)
            .bind(c.phone.as_str())
            .bind(ms(c.asked_at))
            .bind(&c.provider)
            .bind(&c.last_verified_date)
            .bind(&c.answer)
            .bind(&c.error)
            .bind(&c.message_id)
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn answered_check_since<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
            since: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<Option<$crate::ReassignedCheck>> {
            let row: Option<$crate::shared::evidence::CheckRow> = __sqlx::query_as(__sqlx::AssertSqlSafe(format!(
                "SELECT {CHECK_COLUMNS} FROM reassigned_checks \
                 WHERE tenant_id = $1 AND phone = $2 AND asked_at >= $3 AND answer IS NOT NULL \
                 ORDER BY asked_at DESC LIMIT 1"
            )))
            .bind(tenant_id)
            .bind(phone.as_str())
            .bind(ms(since))
            .fetch_optional(e)
            .await?;
            row.map(TryInto::try_into).transpose()
        }

        pub(crate) async fn reassigned_checks<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            phone: &assent_core::phone::E164,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::ReassignedCheck>> {
            let rows: Vec<$crate::shared::evidence::CheckRow> = __sqlx::query_as(__sqlx::AssertSqlSafe(format!(
                "SELECT {CHECK_COLUMNS} FROM reassigned_checks \
                 WHERE tenant_id = $1 AND phone = $2 ORDER BY asked_at, id LIMIT $3"
            )))
            .bind(tenant_id)
            .bind(phone.as_str())
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            rows.into_iter().map(TryInto::try_into).collect()
        }

        /// One claimed message that does not go after all, with its segments; None when it
        /// was no longer this claim's (requeued by a sweep, or started).
        pub(crate) async fn settle_claimed<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            o: &$crate::ClaimOutcome,
            claimed_at: chrono::DateTime<chrono::Utc>,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<Option<i64>> {
            Ok(__sqlx::query_scalar(
                "UPDATE messages SET status = $1, reason = $2, due_at = $3, updated_at = $4, \
                   handed_off_at = NULL \
                 WHERE tenant_id = $5 AND id = $6 AND status = 'sending' \
                   AND call_started_at IS NULL AND handed_off_at = $7 \
                 RETURNING CAST(segments AS BIGINT)",
            )
            .bind(o.status.as_str())
            .bind(&o.reason)
            .bind(ms(o.due_at))
            .bind(ms(now))
            .bind(&o.tenant_id)
            .bind(&o.id)
            .bind(ms(claimed_at))
            .fetch_optional(e)
            .await?)
        }

        pub(crate) async fn record_status_event<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            ev: &$crate::StatusEvent,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO message_status_events \
                 (tenant_id, message_id, provider_id, status, error_code, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&ev.tenant_id)
            .bind(&ev.message_id)
            .bind(&ev.provider_id)
            .bind(&ev.status)
            .bind(ev.error_code)
            .bind(ms(ev.received_at))
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn status_events<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            message_ids: &[String],
            limit: u32,
        ) -> $crate::Result<Vec<$crate::StatusEvent>> {
            if message_ids.is_empty() {
                return Ok(Vec::new());
            }
            let ids = serde_json::to_string(message_ids)
                .map_err(|e| $crate::StoreError::Database(e.to_string()))?;
            let rows: Vec<$crate::shared::evidence::EventRow> = __sqlx::query_as(__sqlx::AssertSqlSafe(format!(
                "SELECT tenant_id, message_id, provider_id, status, error_code, received_at \
                 FROM message_status_events WHERE tenant_id = $1 AND message_id IN ({}) \
                 ORDER BY id LIMIT $3",
                $json_ids
            )))
            .bind(tenant_id)
            .bind(ids)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        }
    };
}
