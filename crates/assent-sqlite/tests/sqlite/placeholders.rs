//! The SQL both backends share (assent_store::shared) writes `$1, $2, …` as PostgreSQL
//! does. SQLite reads `$N` as a named parameter; sqlx binds it to the Nth value, as
//! PostgreSQL would. The shared SQL still numbers them in order of first appearance,
//! which would bind the same way even where a name were numbered by appearance.

use sqlx::Connection;

#[tokio::test]
async fn dollar_placeholders_bind_in_order_of_first_appearance() {
    let mut c = sqlx::SqliteConnection::connect("sqlite::memory:")
        .await
        .unwrap();
    // In order, and used again: `$1` is the same parameter both times.
    let row: (String, i64, String) = sqlx::query_as("SELECT $1, $2, $1")
        .bind("a")
        .bind(2_i64)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(row, ("a".to_string(), 2, "a".to_string()));
    // Out of order: `$2` is still the second value bound, not the first to appear.
    let row: (String, String) = sqlx::query_as("SELECT $2, $1")
        .bind("first")
        .bind("second")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(row, ("second".to_string(), "first".to_string()));
}
