//! `text_enum!` types bind and decode as their text on both databases, and text that
//! names no variant is an error naming the column and the value, never a default.

#![allow(clippy::unwrap_used)]

use assent_core::consent::{LedgerState, Topic};
use assent_store::{MessageStatus, StoreError};
use sqlx::{Connection, Row};

/// Round-trips one value of each of two enums through a bound parameter, then reads text
/// that is no variant.
macro_rules! check {
    ($conn:expr, $placeholder:literal) => {{
        let row = sqlx::query(concat!(
            "SELECT ",
            $placeholder,
            "1 AS status, ",
            $placeholder,
            "2 AS channel"
        ))
        .bind(MessageStatus::Deferred)
        .bind(Topic::MarketingUpdates)
        .fetch_one(&mut $conn)
        .await
        .unwrap();
        assert_eq!(
            row.try_get::<MessageStatus, _>("status").unwrap(),
            MessageStatus::Deferred
        );
        assert_eq!(
            row.try_get::<Topic, _>("channel").unwrap(),
            Topic::MarketingUpdates
        );
        // The text in the database is the enum's text.
        assert_eq!(row.try_get::<String, _>("status").unwrap(), "deferred");

        let row = sqlx::query("SELECT 'opted_sideways' AS new_state")
            .fetch_one(&mut $conn)
            .await
            .unwrap();
        let err = StoreError::from(row.try_get::<LedgerState, _>("new_state").unwrap_err());
        let msg = err.to_string();
        assert!(msg.contains("new_state"), "{msg}");
        assert!(
            msg.contains("\"opted_sideways\" is not a valid ledger state"),
            "{msg}"
        );
    }};
}

#[tokio::test]
async fn enums_bind_and_decode_as_text_on_sqlite() {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    check!(conn, "?");
}

#[tokio::test]
async fn enums_bind_and_decode_as_text_on_postgres() {
    let Some(url) = std::env::var("ASSENT_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES_URL is not set");
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    check!(conn, "$");
}
