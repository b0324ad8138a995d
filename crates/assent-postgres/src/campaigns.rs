//! Campaigns, their send log, and the estimates, recurring services and calls they run on.

use assent_store::codec::ms;
use assent_store::*;
use sqlx::PgConnection;

// Campaigns' own rows: the same SQL on both backends (see assent_store::shared).
assent_store::shared_campaign_sql!(sqlx::Postgres, crate::PostgresStore, pool);

/// Which of the recipients' campaigns are paused, each row read `FOR SHARE` (see
/// `paused_campaigns`).
async fn paused_for_share<'a>(
    conn: &mut PgConnection,
    tenant_id: &str,
    recipients: &[&'a Recipient],
) -> Result<std::collections::HashSet<&'a str>> {
    let campaigns = recipients.iter().map(|r| r.campaign_id.as_str());
    paused_campaigns(conn, tenant_id, campaigns, " FOR SHARE").await
}

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
    let paused = paused_for_share(conn, tenant_id, &sorted).await?;
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

/// Writes the messages (or skips) of recipients recorded without either: only the rows
/// still recorded that way, locked in key order by the update that writes them (see
/// [`assent_store::CampaignStore::compose_recipients`]).
pub(crate) async fn compose_recipients(
    conn: &mut PgConnection,
    tenant_id: &str,
    recipients: &[Recipient],
) -> Result<u64> {
    let mut sorted: Vec<&Recipient> = recipients
        .iter()
        .filter(|r| r.message.is_some() || r.skip_reason.is_some())
        .collect();
    sorted.sort_by(|a, b| {
        (&a.campaign_id, &a.step, a.phone.as_str()).cmp(&(
            &b.campaign_id,
            &b.step,
            b.phone.as_str(),
        ))
    });
    sorted.dedup_by(|a, b| {
        (&a.campaign_id, &a.step, &a.phone) == (&b.campaign_id, &b.step, &b.phone)
    });
    if sorted.is_empty() {
        return Ok(0);
    }
    // As in add_recipients: a pause waits for this write, and its hold then sees these.
    let paused = paused_for_share(conn, tenant_id, &sorted).await?;
    // The recipients first: the message insert's counting trigger finds a message's
    // recipient by its id, and moves it from queued to the status it is written with.
    // One statement per (campaign, step), bounded by the page's first and last phone:
    // whatever the planner's estimates, it reads one range of the send log's key (the
    // page's rows and the skips between them) and joins it to the page, both in key
    // order, so rows are locked in that order. Joined to the page's rows alone, it once
    // walked the campaign's whole send log for each page (2 minutes a page of 5,000 at
    // 100,000 recipients); with the phones as `= ANY`, it scanned the table (146 ms).
    let mut written: Vec<(String, String, String)> = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| (&a.campaign_id, &a.step) == (&b.campaign_id, &b.step)) {
        let phones: Vec<&str> = group.iter().map(|r| r.phone.as_str()).collect();
        let messages: Vec<Option<&str>> = group
            .iter()
            .map(|r| r.message.as_ref().map(|m| m.id.as_str()))
            .collect();
        let skips: Vec<Option<&str>> = group
            .iter()
            .map(|r| r.skip_reason.map(|k| k.as_str()))
            .collect();
        let phones_written: Vec<String> = sqlx::query_scalar(
            "UPDATE campaign_recipients AS r SET message_id = v.m, skip_reason = v.k \
             FROM unnest($4::text[], $5::text[], $6::text[]) AS v(p, m, k) \
             WHERE r.tenant_id = $1 AND r.campaign_id = $2 AND r.step = $3 \
               AND r.phone >= $7 AND r.phone <= $8 \
               AND r.phone = v.p AND r.message_id IS NULL AND r.skip_reason IS NULL \
             RETURNING r.phone",
        )
        .bind(tenant_id)
        .bind(&group[0].campaign_id)
        .bind(&group[0].step)
        .bind(&phones)
        .bind(&messages)
        .bind(&skips)
        .bind(phones.first().copied().unwrap_or_default())
        .bind(phones.last().copied().unwrap_or_default())
        .fetch_all(&mut *conn)
        .await?;
        written.extend(
            phones_written
                .into_iter()
                .map(|p| (group[0].campaign_id.clone(), group[0].step.clone(), p)),
        );
    }
    let count = written.len() as u64;
    let mut written: std::collections::HashSet<(String, String, String)> =
        written.into_iter().collect();
    let mut messages = Vec::new();
    let mut skipped: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
    for r in &sorted {
        if !written.remove(&(
            r.campaign_id.clone(),
            r.step.clone(),
            r.phone.as_str().to_string(),
        )) {
            continue;
        }
        match (&r.skip_reason, &r.message) {
            (Some(reason), _) => {
                *skipped
                    .entry((r.campaign_id.as_str(), reason.as_str()))
                    .or_default() += 1
            }
            (None, Some(m)) if paused.contains(r.campaign_id.as_str()) => {
                messages.push(held_for_pause(m))
            }
            (None, Some(m)) => messages.push(m.clone()),
            (None, None) => {}
        }
    }
    crate::insert_messages(conn, &messages).await?;
    if !skipped.is_empty() {
        // Through the changes table, as the counting triggers do (migration 0028).
        let mut rows: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i64>) = Default::default();
        for ((campaign, reason), n) in skipped {
            for (status, reason, n) in [("queued", "", -n), ("skipped", reason, n)] {
                rows.0.push(campaign);
                rows.1.push(status);
                rows.2.push(reason);
                rows.3.push(n);
            }
        }
        sqlx::query(
            "INSERT INTO campaign_count_changes (xact, tenant_id, campaign_id, status, reason, n) \
             SELECT pg_current_xact_id()::text::bigint, $1, c, s, k, n \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS v(c, s, k, n)",
        )
        .bind(tenant_id)
        .bind(rows.0)
        .bind(rows.1)
        .bind(rows.2)
        .bind(rows.3)
        .execute(&mut *conn)
        .await?;
    }
    Ok(count)
}
