//! A consistent copy of a live database: `VACUUM INTO` reads one snapshot (a read
//! transaction, which WAL lets run beside the writer) and writes it as a new, compact file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use assent_store::{Result, StoreError};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

/// Copies the database at `url` to `target` (which must not exist) while other processes
/// keep writing to it: every transaction committed before the copy's snapshot is in it, none
/// after. The copy is written to `target` + `.partial`, synced, then renamed, so a file at
/// `target` is always a complete backup. Returns the copy's size in bytes.
pub async fn backup(url: &str, target: &Path) -> Result<u64> {
    let opts = SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(10));
    if !opts.get_filename().exists() {
        return Err(StoreError::Database(format!(
            "{} does not exist",
            opts.get_filename().display()
        )));
    }
    let partial = {
        let mut name = target.as_os_str().to_owned();
        name.push(".partial");
        std::path::PathBuf::from(name)
    };
    let io = |what: &str, e: std::io::Error| StoreError::Database(format!("{what}: {e}"));
    // A partial file left by an interrupted backup is never a backup: start again.
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing an earlier partial backup", e)),
    }
    let destination = partial
        .to_str()
        .ok_or_else(|| StoreError::Database("the backup path must be valid UTF-8".into()))?;
    let mut conn = opts.connect().await?;
    let copied = sqlx::query("VACUUM INTO ?1")
        .bind(destination)
        .execute(&mut conn)
        .await;
    let _ = sqlx::Connection::close(conn).await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e.into());
    }
    let file = std::fs::File::open(&partial).map_err(|e| io("opening the copy", e))?;
    file.sync_all().map_err(|e| io("syncing the copy", e))?;
    let bytes = file
        .metadata()
        .map_err(|e| io("reading the copy", e))?
        .len();
    drop(file);
    std::fs::rename(&partial, target).map_err(|e| io("renaming the copy into place", e))?;
    // The rename itself is durable only once its directory is synced.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(bytes)
}
