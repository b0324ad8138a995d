//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_core::phone::E164;
use assent_store::codec::{self, ms, time};
use assent_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

// Campaigns' own rows: the same SQL on both backends (see assent_store::shared).
assent_store::shared_campaign_sql!(sqlx::Sqlite);

pub(crate) async fn add_recipients(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    recipients: &[Recipient],
) -> Result<u64> {
    // What is already recorded is looked up by range, one (campaign, step) at a time, under
    // the writer's lock: nothing else can record between the look and the insert, and a
    // (campaign, step, phone) already recorded is never queued again. (RETURNING from an
    // INSERT OR IGNORE would name the new rows too, at twice the cost of the insert.)
    let mut groups: std::collections::BTreeMap<(&str, &str), (&str, &str)> = Default::default();
    for r in recipients {
        let p = r.phone.as_str();
        groups
            .entry((r.campaign_id.as_str(), r.step.as_str()))
            .and_modify(|(lo, hi)| {
                *lo = (*lo).min(p);
                *hi = (*hi).max(p);
            })
            .or_insert((p, p));
    }
    let mut recorded: std::collections::HashMap<(&str, &str), std::collections::HashSet<String>> =
        Default::default();
    for ((campaign, step), (lo, hi)) in groups {
        let phones: Vec<String> = sqlx::query_scalar(
            "SELECT phone FROM campaign_recipients WHERE tenant_id = ? AND campaign_id = ? AND step = ? \
             AND phone >= ? AND phone <= ?",
        )
        .bind(tenant_id)
        .bind(campaign)
        .bind(step)
        .bind(lo)
        .bind(hi)
        .fetch_all(&mut *conn)
        .await?;
        recorded.insert((campaign, step), phones.into_iter().collect());
    }
    let mut seen = std::collections::HashSet::new();
    let new: Vec<&Recipient> = recipients
        .iter()
        .filter(|r| {
            let key = (r.campaign_id.as_str(), r.step.as_str(), r.phone.as_str());
            let known = recorded
                .get(&(key.0, key.1))
                .is_some_and(|phones| phones.contains(key.2));
            !known && seen.insert(key)
        })
        .collect();
    let rows = new
        .iter()
        .map(|r| {
            vec![
                tenant_id.into(),
                r.campaign_id.as_str().into(),
                r.step.as_str().into(),
                r.phone.as_str().into(),
                r.message.as_ref().map(|m| m.id.clone()).into(),
                r.skip_reason.map(|s| s.as_str().to_string()).into(),
                ms(r.created_at).into(),
            ]
        })
        .collect();
    crate::bulk::insert(
        conn,
        "INSERT INTO campaign_recipients (tenant_id, campaign_id, step, phone, message_id, skip_reason, created_at)",
        7,
        rows,
    )
    .await?;
    // A campaign paused before this write holds what it queues (the pause and this write
    // are serialized by the one writer, so nothing slips out between them).
    let mut paused = std::collections::HashSet::new();
    for campaign in new
        .iter()
        .map(|r| r.campaign_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(campaign)
                .fetch_optional(&mut *conn)
                .await?;
        if status.as_deref() == Some("paused") {
            paused.insert(campaign);
        }
    }
    let messages = new
        .iter()
        .filter_map(|r| {
            let m = r.message.as_ref()?;
            Some(if paused.contains(r.campaign_id.as_str()) {
                crate::message_row(&held_for_pause(m))
            } else {
                crate::message_row(m)
            })
        })
        .collect();
    crate::bulk::insert(conn, crate::MESSAGE_INSERT, 21, messages).await?;
    Ok(new.len() as u64)
}

pub(crate) fn send_log_from(r: &SqliteRow) -> Result<SendLogRow> {
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
     WHERE r.tenant_id = ? AND r.campaign_id = ? ORDER BY r.created_at, r.phone";

pub(crate) fn audience_from(r: &SqliteRow) -> Result<AudienceMember> {
    Ok(AudienceMember {
        phone: E164::parse(r.try_get::<&str, _>("phone")?)
            .map_err(|e| StoreError::Database(e.to_string()))?,
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
         WHERE r.tenant_id = ?1 AND r.campaign_id = ?2 GROUP BY 1, 2"
    )
}

/// One page of the send log in key order (descending `backwards`, from a `before` key): ?1 tenant, ?2 campaign, ?3 status or NULL,
/// ?4 rows, ?5/?6 the (step, phone) to resume after or NULL. The columns are
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
        (true, false) => ("AND (r.step, r.phone) > (?5, ?6)", "ASC"),
        (true, true) => ("AND (r.step, r.phone) < (?5, ?6)", "DESC"),
    };
    format!(
        "{select} WHERE r.tenant_id = ?1 AND r.campaign_id = ?2 \
         AND (?3 IS NULL OR {LOG_STATUS} = ?3) \
         {resume} ORDER BY r.step {order}, r.phone {order} LIMIT ?4"
    )
}
