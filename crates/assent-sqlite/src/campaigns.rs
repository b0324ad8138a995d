//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_store::codec::ms;
use assent_store::*;
use sqlx::SqliteConnection;

// Campaigns' own rows: the same SQL on both backends (see assent_store::shared).
assent_store::shared_campaign_sql!(sqlx::Sqlite, crate::SqliteStore, reader);

/// The recipients' (campaign, step) groups, each with its first and last phone: what is
/// already recorded is looked up by range, one group at a time.
fn phone_ranges(
    recipients: &[Recipient],
) -> std::collections::BTreeMap<(&str, &str), (&str, &str)> {
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
    groups
}

/// The phones of one (campaign, step) recorded between `lo` and `hi` (only those still
/// waiting to be composed, when `uncomposed`): one range of the send log's key.
async fn phones_in_range(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    (campaign, step): (&str, &str),
    (lo, hi): (&str, &str),
    uncomposed: bool,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT phone FROM campaign_recipients WHERE tenant_id = ? AND campaign_id = ? AND step = ? \
         AND phone >= ? AND phone <= ? AND (NOT ? OR (message_id IS NULL AND skip_reason IS NULL))",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(step)
    .bind(lo)
    .bind(hi)
    .bind(uncomposed)
    .fetch_all(&mut *conn)
    .await?)
}

/// Adds to a campaign's counters, one UPSERT per (campaign, status, reason).
async fn add_counts(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    counts: impl Iterator<Item = (&str, &str, &str, i64)>,
) -> Result<()> {
    for (campaign, status, reason, n) in counts {
        sqlx::query(
            "INSERT INTO campaign_counts (tenant_id, campaign_id, status, reason, n) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, campaign_id, status, reason) DO UPDATE SET n = n + excluded.n",
        )
        .bind(tenant_id)
        .bind(campaign)
        .bind(status)
        .bind(reason)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn add_recipients(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    recipients: &[Recipient],
) -> Result<u64> {
    // What is already recorded is looked up by range, one (campaign, step) at a time, under
    // the writer's lock: nothing else can record between the look and the insert, and a
    // (campaign, step, phone) already recorded is never queued again. (RETURNING from an
    // INSERT OR IGNORE would name the new rows too, at twice the cost of the insert.)
    let groups = phone_ranges(recipients);
    let mut recorded: std::collections::HashMap<(&str, &str), std::collections::HashSet<String>> =
        Default::default();
    for ((campaign, step), range) in groups {
        let phones = phones_in_range(conn, tenant_id, (campaign, step), range, false).await?;
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
    if new.is_empty() {
        return Ok(0);
    }
    // The counts of the batch go in below, one row per (campaign, status, reason): no
    // trigger counts a recipient (migration 0035), and the one that counts a new message
    // stands aside for this write's (0031).
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
    let campaigns = new.iter().map(|r| r.campaign_id.as_str());
    let paused = paused_campaigns(conn, tenant_id, campaigns, "").await?;
    // Each recipient counts under the status its row is written with: skipped with its
    // reason, its message's status (held for a pause, deferred by the gate), or queued
    // while it has no message. A new message is never handed off, so none is counted as
    // opted out afterwards yet.
    let mut counts: std::collections::BTreeMap<(&str, &str, &str), i64> = Default::default();
    let mut messages = Vec::new();
    for r in &new {
        let status = match (&r.skip_reason, &r.message) {
            (Some(reason), _) => ("skipped", reason.as_str()),
            (None, Some(m)) => {
                let held;
                let m = if paused.contains(r.campaign_id.as_str()) {
                    held = held_for_pause(m);
                    &held
                } else {
                    m
                };
                messages.push(crate::message_row(m));
                (m.status.as_str(), "")
            }
            (None, None) => ("queued", ""),
        };
        *counts
            .entry((r.campaign_id.as_str(), status.0, status.1))
            .or_default() += 1;
    }
    if !messages.is_empty() {
        sqlx::query("INSERT INTO campaign_counts_bulk (id) VALUES (1)")
            .execute(&mut *conn)
            .await?;
        crate::bulk::insert(conn, crate::MESSAGE_INSERT, 21, messages).await?;
        sqlx::query("DELETE FROM campaign_counts_bulk")
            .execute(&mut *conn)
            .await?;
    }
    add_counts(
        conn,
        tenant_id,
        counts.into_iter().map(|((c, s, r), n)| (c, s, r, n)),
    )
    .await?;
    Ok(new.len() as u64)
}

/// Writes the messages (or skips) of recipients recorded without either, under the
/// writer's lock: only rows still recorded that way are written (see
/// [`assent_store::CampaignStore::compose_recipients`]).
pub(crate) async fn compose_recipients(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    recipients: &[Recipient],
) -> Result<u64> {
    let groups = phone_ranges(recipients);
    let mut waiting: std::collections::HashSet<(String, String, String)> = Default::default();
    let paused = paused_campaigns(conn, tenant_id, groups.keys().map(|(c, _)| *c), "").await?;
    for ((campaign, step), range) in groups {
        let phones = phones_in_range(conn, tenant_id, (campaign, step), range, true).await?;
        waiting.extend(
            phones
                .into_iter()
                .map(|p| (campaign.to_string(), step.to_string(), p)),
        );
    }
    let mut rows: Vec<&Recipient> = Vec::new();
    let mut messages = Vec::new();
    let mut skipped: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for r in recipients {
        let key = (
            r.campaign_id.clone(),
            r.step.clone(),
            r.phone.as_str().to_string(),
        );
        // Each once, and only while still waiting.
        if !waiting.remove(&key) {
            continue;
        }
        match (&r.skip_reason, &r.message) {
            (Some(reason), _) => {
                *skipped
                    .entry((r.campaign_id.as_str(), reason.as_str()))
                    .or_default() += 1;
            }
            (None, Some(m)) if paused.contains(r.campaign_id.as_str()) => {
                messages.push(crate::message_row(&held_for_pause(m)))
            }
            (None, Some(m)) => messages.push(crate::message_row(m)),
            (None, None) => continue,
        }
        rows.push(r);
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let written = rows.len() as u64;
    // The recipients first: the message insert's counting trigger finds a message's
    // recipient by its id, and moves it from queued to the status it is written with.
    let page: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!([
                r.campaign_id,
                r.step,
                r.phone.as_str(),
                r.message.as_ref().map(|m| m.id.as_str()),
                r.skip_reason.map(|k| k.as_str()),
            ])
        })
        .collect();
    sqlx::query(crate::COMPOSE_RECIPIENTS)
        .bind(tenant_id)
        .bind(serde_json::Value::Array(page).to_string())
        .execute(&mut *conn)
        .await?;
    crate::bulk::insert(conn, crate::MESSAGE_INSERT, 21, messages).await?;
    let moved = skipped.into_iter().flat_map(|((campaign, reason), n)| {
        [
            (campaign, "queued", "", -n),
            (campaign, "skipped", reason, n),
        ]
    });
    add_counts(conn, tenant_id, moved).await?;
    Ok(written)
}
