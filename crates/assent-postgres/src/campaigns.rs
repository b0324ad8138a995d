//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_store::codec::ms;
use assent_store::*;
use sqlx::PgConnection;

use crate::insert_message;

// Campaigns' own rows: the same SQL on both backends (see assent_store::shared).
assent_store::shared_campaign_sql!(sqlx::Postgres, crate::PostgresStore, pool);

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
