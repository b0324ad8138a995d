//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_store::codec::{self, ms, time};
use assent_store::*;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::insert_message;

// Campaigns' own rows: the same SQL on both backends (see assent_store::shared).
assent_store::shared_campaign_sql!(sqlx::Postgres);

/// Records recipients in key order (two processes running one campaign then wait on each
/// other's rows in the same order, never in a cycle); only a new row gets its message.
pub(crate) async fn add_recipients(
    conn: &mut PgConnection,
    tenant_id: &str,
    recipients: &[Recipient],
) -> Result<u64> {
    let mut sorted: Vec<&Recipient> = recipients.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.campaign_id, &a.step, a.phone.as_str()).cmp(&(
            &b.campaign_id,
            &b.step,
            b.phone.as_str(),
        ))
    });
    // A campaign paused before this write holds what it queues. The campaign's row is
    // read FOR SHARE: a pause arriving meanwhile waits for this write to commit, and its
    // hold then sees these messages.
    let mut paused = std::collections::HashSet::new();
    let campaigns: std::collections::BTreeSet<&str> =
        sorted.iter().map(|r| r.campaign_id.as_str()).collect();
    for campaign in campaigns {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM campaigns WHERE tenant_id = $1 AND id = $2 FOR SHARE",
        )
        .bind(tenant_id)
        .bind(campaign)
        .fetch_optional(&mut *conn)
        .await?;
        if status.as_deref() == Some("paused") {
            paused.insert(campaign);
        }
    }
    let mut added = 0;
    for r in sorted {
        let done = sqlx::query(
            "INSERT INTO campaign_recipients (tenant_id, campaign_id, step, phone, message_id, skip_reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(&r.campaign_id)
        .bind(&r.step)
        .bind(r.phone.as_str())
        .bind(r.message.as_ref().map(|m| m.id.as_str()))
        .bind(r.skip_reason)
        .bind(ms(r.created_at))
        .execute(&mut *conn)
        .await?;
        // Only a new row gets its message: a step is never sent twice to one phone.
        if done.rows_affected() == 1 {
            added += 1;
            if let Some(m) = &r.message {
                if paused.contains(r.campaign_id.as_str()) {
                    insert_message(conn, &held_for_pause(m)).await?;
                } else {
                    insert_message(conn, m).await?;
                }
            }
        }
    }
    Ok(added)
}

pub(crate) fn send_log_from(r: &PgRow) -> Result<SendLogRow> {
    let message_id: Option<String> = r.try_get("message_id")?;
    let skip: Option<SkipReason> = r.try_get("skip_reason")?;
    let status: Option<MessageStatus> = r.try_get("status")?;
    let reason: Option<String> = r.try_get("reason")?;
    let due_at: Option<i64> = r.try_get("due_at")?;
    let deferred_until = SendLogRow::deferred_until_of(status, due_at);
    Ok(SendLogRow {
        phone: codec::phone(r.try_get("phone")?)?,
        step: r.try_get("step")?,
        message_id,
        status: SendStatus::of(skip.is_some(), status)?,
        reason: skip.map(|s| s.to_string()).or(reason),
        sent_at: r.try_get::<Option<i64>, _>("handed_off_at")?.map(time),
        opted_out_after: r.try_get::<i64, _>("opted_out_after")? > 0,
        // A skipped phone has no message, hence no status: never deferred.
        deferred_until,
    })
}

pub(crate) const SEND_LOG: &str = "SELECT r.phone, r.step, r.message_id, r.skip_reason, m.status, m.reason, m.handed_off_at, m.due_at, \
     (SELECT COUNT(*) FROM consent_ledger l WHERE l.tenant_id = r.tenant_id AND l.phone = r.phone \
        AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out' AND m.handed_off_at IS NOT NULL \
        AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000) AS opted_out_after \
     FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id \
     WHERE r.tenant_id = $1 AND r.campaign_id = $2 ORDER BY r.created_at, r.phone";

pub(crate) fn audience_from(r: &PgRow) -> Result<AudienceMember> {
    Ok(AudienceMember {
        phone: codec::phone(r.try_get("phone")?)?,
        name: r.try_get("name")?,
    })
}

/// A recipient's status as the send log shows it.
const LOG_STATUS: &str =
    "CASE WHEN r.skip_reason IS NOT NULL THEN 'skipped' ELSE COALESCE(m.status, 'queued') END";

/// The send log counted by (status, skip reason), with how many of each opted out within 7
/// days after their message; grouped in the database, so no row leaves it.
pub(crate) fn campaign_counts_sql() -> String {
    format!(
        "SELECT {LOG_STATUS} AS status, r.skip_reason, COUNT(*) AS n, \
         SUM(CASE WHEN m.handed_off_at IS NOT NULL AND EXISTS (SELECT 1 FROM consent_ledger l \
            WHERE l.tenant_id = r.tenant_id AND l.phone = r.phone \
            AND l.new_state = 'opted_out' AND l.old_state <> 'opted_out' \
            AND l.occurred_at >= m.handed_off_at AND l.occurred_at < m.handed_off_at + 604800000) \
            THEN 1 ELSE 0 END) AS opted \
         FROM campaign_recipients r LEFT JOIN messages m ON m.id = r.message_id \
         WHERE r.tenant_id = $1 AND r.campaign_id = $2 GROUP BY 1, 2"
    )
}

/// One page of the send log in key order (descending `backwards`, from a `before` key): $1 tenant, $2 campaign, $3 status or NULL,
/// $4 rows, $5/$6 the (step, phone) to resume after or NULL. The columns are
/// [`SEND_LOG`]'s.
pub(crate) fn send_log_page_sql(after: bool, backwards: bool) -> String {
    let select = SEND_LOG
        .split(" WHERE r.tenant_id")
        .next()
        .expect("SEND_LOG filters by tenant");
    // Without a cursor the range condition is left out, rather than OR'd away, so the
    // planner starts every page with a seek on the key.
    let (resume, order) = match (after, backwards) {
        (false, false) => ("", "ASC"),
        (false, true) => ("", "DESC"),
        (true, false) => ("AND (r.step, r.phone) > ($5, $6)", "ASC"),
        (true, true) => ("AND (r.step, r.phone) < ($5, $6)", "DESC"),
    };
    format!(
        "{select} WHERE r.tenant_id = $1 AND r.campaign_id = $2 \
         AND ($3 IS NULL OR {LOG_STATUS} = $3) \
         {resume} ORDER BY r.step {order}, r.phone {order} LIMIT $4"
    )
}
