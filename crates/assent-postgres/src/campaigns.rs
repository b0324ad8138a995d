//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_store::codec::ms;
use assent_store::*;
use sqlx::PgConnection;

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
    // The page's send log in one statement; a (campaign, step, phone) already recorded is
    // skipped by its key and not returned, so it gets no message (a step is never sent
    // twice to one phone). The statement's counting trigger then runs once for the page.
    let col = |f: &dyn Fn(&Recipient) -> Option<&str>| -> Vec<Option<&str>> {
        sorted.iter().map(|r| f(r)).collect()
    };
    let new: Vec<(String, String, String)> = sqlx::query_as(
        "INSERT INTO campaign_recipients (tenant_id, campaign_id, step, phone, message_id, skip_reason, created_at) \
         SELECT $1, c, s, p, m, k, t FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], \
           $6::text[], $7::bigint[]) WITH ORDINALITY AS x(c, s, p, m, k, t, n) ORDER BY n \
         ON CONFLICT DO NOTHING RETURNING campaign_id, step, phone",
    )
    .bind(tenant_id)
    .bind(col(&|r| Some(r.campaign_id.as_str())))
    .bind(col(&|r| Some(r.step.as_str())))
    .bind(col(&|r| Some(r.phone.as_str())))
    .bind(col(&|r| r.message.as_ref().map(|m| m.id.as_str())))
    .bind(col(&|r| r.skip_reason.map(|k| k.as_str())))
    .bind(sorted.iter().map(|r| ms(r.created_at)).collect::<Vec<i64>>())
    .fetch_all(&mut *conn)
    .await?;
    let added = new.len() as u64;
    let mut new: std::collections::HashSet<(String, String, String)> = new.into_iter().collect();
    let messages: Vec<Message> = sorted
        .iter()
        .filter(|r| {
            new.remove(&(
                r.campaign_id.clone(),
                r.step.clone(),
                r.phone.as_str().to_string(),
            ))
        })
        .filter_map(|r| {
            r.message.as_ref().map(|m| {
                if paused.contains(r.campaign_id.as_str()) {
                    held_for_pause(m)
                } else {
                    m.clone()
                }
            })
        })
        .collect();
    crate::insert_messages(conn, &messages).await?;
    Ok(added)
}
