//! Both backends migrate with `sqlx::migrate!`. Databases made before that kept their own
//! record, `schema_migrations(version, applied_at)`; [`carry_over`] moves it into sqlx's
//! table once, so those migrations are not run a second time.

use sqlx::migrate::{Migrate, Migrator};

use crate::Result;

/// The table `sqlx::migrate!` keeps its record in.
pub const SQLX_TABLE: &str = "_sqlx_migrations";

/// Records the `old` versions (those the former runner applied, from `schema_migrations`)
/// as applied in sqlx's table, with the checksums sqlx computes from the same files, unless
/// it already has them. Run it (in a transaction, under the backend's migration lock)
/// before `migrator.run`: that then applies only what is new. Idempotent; with no old
/// versions (a new database) it does nothing. `schema_migrations` itself is left as it
/// was, so an older build opening the file still finds its record.
pub async fn carry_over<C: Migrate>(conn: &mut C, migrator: &Migrator, old: &[i64]) -> Result<()> {
    if old.is_empty() {
        return Ok(());
    }
    conn.ensure_migrations_table(SQLX_TABLE).await?;
    let applied: Vec<i64> = conn
        .list_applied_migrations(SQLX_TABLE)
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();
    for m in migrator.iter() {
        if old.contains(&m.version) && !applied.contains(&m.version) {
            conn.skip(SQLX_TABLE, m).await?;
        }
    }
    Ok(())
}
