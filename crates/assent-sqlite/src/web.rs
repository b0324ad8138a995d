//! The web app's users and sessions, and the look-ups its pages need.

use std::collections::HashMap;

use assent_store::codec::{self, ms, time};
use assent_store::*;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

fn user_from(r: &SqliteRow) -> Result<User> {
    Ok(User {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        failed_logins: r.try_get::<i64, _>("failed_logins")?.max(0) as u32,
        locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(time),
        created_at: time(r.try_get("created_at")?),
    })
}

pub(crate) async fn create_user(conn: &mut SqliteConnection, u: &User) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, password_hash, failed_logins, locked_until, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&u.id)
    .bind(&u.tenant_id)
    .bind(&u.email)
    .bind(&u.password_hash)
    .bind(i64::from(u.failed_logins))
    .bind(u.locked_until.map(ms))
    .bind(ms(u.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn user_by_email(pool: &SqlitePool, email: &str) -> Result<Option<User>> {
    sqlx::query("SELECT * FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub(crate) async fn count_login_attempt(
    conn: &mut SqliteConnection,
    user_id: &str,
    now: DateTime<Utc>,
    max: u32,
    lock_until: DateTime<Utc>,
) -> Result<bool> {
    // Counted before the password is checked, and refused while locked, in one statement:
    // parallel guesses cannot all be checked against one lock read.
    // Right-hand sides read the row as it was: a lock that ran out starts a new count.
    let done = sqlx::query(
        "UPDATE users SET \
           failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN 1 \
             ELSE failed_logins + 1 END, \
           locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?1 THEN NULL \
             WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END \
         WHERE id = ?4 AND (locked_until IS NULL OR locked_until <= ?1)",
    )
    .bind(ms(now))
    .bind(i64::from(max))
    .bind(ms(lock_until))
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn clear_failed_logins(conn: &mut SqliteConnection, user_id: &str) -> Result<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn create_session(conn: &mut SqliteConnection, s: &Session) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?")
        .bind(&s.user_id)
        .bind(ms(s.created_at))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&s.id_hash)
    .bind(&s.user_id)
    .bind(&s.csrf_token)
    .bind(ms(s.created_at))
    .bind(ms(s.expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn session(
    pool: &SqlitePool,
    id_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Session, User)>> {
    let Some(r) = sqlx::query(
        "SELECT s.id_hash, s.csrf_token, s.created_at AS session_created, s.expires_at, u.* \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?",
    )
    .bind(id_hash)
    .bind(ms(now))
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let user = user_from(&r)?;
    let session = Session {
        id_hash: r.try_get("id_hash")?,
        user_id: user.id.clone(),
        csrf_token: r.try_get("csrf_token")?,
        created_at: time(r.try_get("session_created")?),
        expires_at: time(r.try_get("expires_at")?),
    };
    Ok(Some((session, user)))
}

pub(crate) async fn delete_session(conn: &mut SqliteConnection, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn search_customers(
    pool: &SqlitePool,
    tenant_id: &str,
    q: &str,
    limit: u32,
) -> Result<Vec<Customer>> {
    let (name, digits) = customer_search_patterns(q);
    let rows = sqlx::query(
        "SELECT * FROM customers c WHERE c.tenant_id = ?1 AND (lower(c.name) LIKE ?2 ESCAPE '\\' \
           OR (?3 IS NOT NULL AND EXISTS (SELECT 1 FROM contact_methods m WHERE m.tenant_id = c.tenant_id \
             AND m.customer_id = c.id AND m.phone LIKE ?3))) \
         ORDER BY c.created_at DESC, c.id DESC LIMIT ?4",
    )
    .bind(tenant_id)
    .bind(&name)
    .bind(&digits)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut customers = Vec::with_capacity(rows.len());
    let mut index = HashMap::new();
    for r in &rows {
        let c = Customer {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            address: r.try_get("address")?,
            tags: codec::json("tags", r.try_get("tags")?)?,
            phones: Vec::new(),
            created_at: time(r.try_get("created_at")?),
        };
        index.insert(c.id.clone(), customers.len());
        customers.push(c);
    }
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
