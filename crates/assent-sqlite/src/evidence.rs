//! Reassigned-number checks and status-callback history (see
//! `assent_store::shared::evidence`).

use assent_core::phone::E164;
use assent_store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::SqliteStore;

mod sql {
    assent_store::shared_evidence_sql!(sqlx::Sqlite, "SELECT value FROM json_each($2)");
}

#[async_trait]
impl EvidenceStore for SqliteStore {
    async fn record_reassigned_check(&self, check: &ReassignedCheck) -> Result<()> {
        let mut w = self.batch.begin().await?;
        sql::record_reassigned_check(w.conn(), check).await?;
        w.commit().await
    }

    async fn answered_check_since(
        &self,
        tenant_id: &str,
        phone: &E164,
        since: DateTime<Utc>,
    ) -> Result<Option<ReassignedCheck>> {
        sql::answered_check_since(&self.reader, tenant_id, phone, since).await
    }

    async fn reassigned_checks(
        &self,
        tenant_id: &str,
        phone: &E164,
        limit: u32,
    ) -> Result<Vec<ReassignedCheck>> {
        sql::reassigned_checks(&self.reader, tenant_id, phone, limit).await
    }

    async fn settle_claimed(
        &self,
        outcomes: &[ClaimOutcome],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if outcomes.is_empty() {
            return Ok(0);
        }
        let mut w = self.batch.begin().await?;
        let mut n = 0;
        for o in outcomes {
            if sql::settle_claimed(w.conn(), o, claimed_at, now).await? {
                n += 1;
            }
        }
        w.commit().await?;
        Ok(n)
    }

    async fn record_status_events(&self, events: &[StatusEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut w = self.batch.begin().await?;
        for e in events {
            sql::record_status_event(w.conn(), e).await?;
        }
        w.commit().await
    }

    async fn status_events(
        &self,
        tenant_id: &str,
        message_ids: &[String],
        limit: u32,
    ) -> Result<Vec<StatusEvent>> {
        sql::status_events(&self.reader, tenant_id, message_ids, limit).await
    }
}
