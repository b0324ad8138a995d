//! The web app's users and sessions, and the look-ups its pages need.

use std::collections::HashMap;

use assent_store::codec::{self, time};
use assent_store::*;
use sqlx::{Row, SqlitePool};

// The users and sessions: the same SQL on both backends (see assent_store::shared).
assent_store::shared_web_sql!(sqlx::Sqlite);

pub(crate) async fn search_customers(
    pool: &SqlitePool,
    tenant_id: &str,
    q: &str,
    limit: u32,
) -> Result<Vec<Customer>> {
    let mut customers = search_customers_only(pool, tenant_id, q, limit).await?;
    let index: HashMap<String, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    if customers.is_empty() {
        return Ok(customers);
    }
    let ids = serde_json::to_string(&customers.iter().map(|c| &c.id).collect::<Vec<_>>())
        .unwrap_or_default();
    let phones = sqlx::query(
        "SELECT customer_id, phone, job_notifications, marketing_updates FROM contact_methods \
         WHERE tenant_id = ? AND customer_id IN (SELECT value FROM json_each(?)) ORDER BY position",
    )
    .bind(tenant_id)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    for r in &phones {
        let id: String = r.try_get("customer_id")?;
        if let Some(&i) = index.get(&id) {
            customers[i].phones.push(ContactMethod {
                number: codec::phone(r.try_get("phone")?)?,
                job_notifications: r.try_get("job_notifications")?,
                marketing_updates: r.try_get("marketing_updates")?,
            });
        }
    }
    Ok(customers)
}

pub(crate) async fn recent_conversations(
    pool: &SqlitePool,
    tenant_id: &str,
    limit: u32,
) -> Result<Vec<ConversationSummary>> {
    sqlx::query(
        // With one MAX(), SQLite takes the other columns from the row holding the maximum:
        // the latest message's direction and text.
        "SELECT phone, MAX(created_at) AS last_at, \
           CASE WHEN direction = 'inbound' THEN body END AS last_inbound \
         FROM messages WHERE tenant_id = ? GROUP BY phone ORDER BY last_at DESC LIMIT ?",
    )
    .bind(tenant_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ConversationSummary {
            phone: codec::phone(r.try_get("phone")?)?,
            last_at: time(r.try_get("last_at")?),
            last_inbound: r.try_get("last_inbound")?,
        })
    })
    .collect()
}
