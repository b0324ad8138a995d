//! `text_enum!` types bind and decode as their text on both databases, and text that
//! names no variant is an error naming the column and the value, never a default.

use assent_core::consent::{LedgerState, Topic};
use assent_store::{Actor, MessageStatus, SendStatus, StoreError};
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

/// Every actor, a web app user's id among them, and every send log status go into a text
/// column and come back the same value, the text stored being the enum's text byte for byte.
macro_rules! every {
    ($conn:expr, $create:literal, $insert:literal) => {{
        sqlx::query($create).execute(&mut $conn).await.unwrap();
        let mut actors: Vec<Actor> = Actor::TEXTS.iter().map(|t| Actor::from(*t)).collect();
        actors.push(Actor::User("0190a0b1-7c2e-7d3f-9a4b-5c6d7e8f9a0b".into()));
        for a in &actors {
            sqlx::query($insert)
                .bind(a)
                .execute(&mut $conn)
                .await
                .unwrap();
        }
        for s in SendStatus::ALL {
            sqlx::query($insert)
                .bind(s)
                .execute(&mut $conn)
                .await
                .unwrap();
        }
        let rows = sqlx::query("SELECT v FROM text_roundtrip ORDER BY n")
            .fetch_all(&mut $conn)
            .await
            .unwrap();
        let (first, rest) = rows.split_at(actors.len());
        for (row, a) in first.iter().zip(&actors) {
            assert_eq!(&row.try_get::<Actor, _>("v").unwrap(), a);
            assert_eq!(row.try_get::<String, _>("v").unwrap(), a.as_str());
        }
        assert!(matches!(actors.last(), Some(Actor::User(_))));
        for (row, s) in rest.iter().zip(SendStatus::ALL) {
            assert_eq!(row.try_get::<SendStatus, _>("v").unwrap(), s);
            assert_eq!(row.try_get::<String, _>("v").unwrap(), s.as_str());
        }
        assert_eq!(rest.len(), SendStatus::ALL.len());
    }};
}

#[tokio::test]
async fn every_actor_and_send_status_round_trips_on_sqlite() {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    every!(
        conn,
        "CREATE TABLE text_roundtrip (n INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL)",
        "INSERT INTO text_roundtrip (v) VALUES (?)"
    );
}

#[tokio::test]
async fn every_actor_and_send_status_round_trips_on_postgres() {
    let Some(url) = std::env::var("ASSENT_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES_URL is not set");
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    every!(
        conn,
        "CREATE TEMPORARY TABLE text_roundtrip (n BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)",
        "INSERT INTO text_roundtrip (v) VALUES ($1)"
    );
}
