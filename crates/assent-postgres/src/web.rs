//! The web app's users and sessions, and the look-ups its pages need.

use std::collections::HashMap;

use assent_store::codec::{self, time};
use assent_store::*;
use sqlx::{PgPool, Row};

// The users and sessions: the same SQL on both backends (see assent_store::shared).
assent_store::shared_web_sql!(sqlx::Postgres);

pub(crate) async fn search_customers(
    pool: &PgPool,
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
    let ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    let phones = sqlx::query(
        "SELECT customer_id, phone, job_notifications, marketing_updates FROM contact_methods \
         WHERE tenant_id = $1 AND customer_id = ANY($2) ORDER BY position",
    )
    .bind(tenant_id)
    .bind(&ids)
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
    pool: &PgPool,
    tenant_id: &str,
    limit: u32,
) -> Result<Vec<ConversationSummary>> {
    sqlx::query(
        "SELECT p.phone, p.last_at, \
           (SELECT CASE WHEN m.direction = 'inbound' THEN m.body END FROM messages m \
            WHERE m.tenant_id = $1 AND m.phone = p.phone ORDER BY m.created_at DESC, m.seq DESC LIMIT 1) \
           AS last_inbound \
         FROM (SELECT phone, MAX(created_at) AS last_at FROM messages WHERE tenant_id = $1 \
               GROUP BY phone ORDER BY last_at DESC LIMIT $2) p ORDER BY p.last_at DESC",
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
