//! The web app's users and sessions.

// The users and sessions: the same SQL on both backends (see assent_store::shared).
assent_store::shared_web_sql!(sqlx::Postgres, crate::PostgresStore, pool);
