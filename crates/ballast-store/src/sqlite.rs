//! The SQLite backend: connection setup, and how ids and timestamps are stored.
//!
//! The queries themselves are in `queries.rs`, compiled here with `Db = Sqlite`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use crate::StoreError;

// The same file is compiled in `postgres` too, on purpose: that is how both backends share
// one copy of every query (see the crate documentation).
#[allow(
    clippy::duplicate_mod,
    reason = "queries.rs is compiled once per backend"
)]
#[path = "queries.rs"]
pub(crate) mod queries;

pub(crate) type Db = sqlx::Sqlite;

/// Ids are stored as hyphenated lower-case text: readable in the `sqlite3` shell, and the
/// same spelling as in URLs and logs.
pub(crate) type DbId = String;

pub(crate) fn db_id(id: Uuid) -> DbId {
    id.hyphenated().to_string()
}

pub(crate) fn id_from_db(value: DbId, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&value).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        detail: format!("`{value}` is not a UUID: {e}"),
    })
}

/// Timestamps are stored as RFC 3339 text in UTC with exactly six fractional digits
/// (PostgreSQL's precision), so that comparing the text compares the times: `ORDER BY`
/// and range filters work without date functions.
pub(crate) type DbTime = String;

pub(crate) fn db_time(at: DateTime<Utc>) -> DbTime {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn time_from_db(value: DbTime, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(&value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt {
            what: what.to_owned(),
            detail: format!("`{value}` is not an RFC 3339 time: {e}"),
        })
}

/// A write transaction takes the write lock at once. With a plain (deferred) `BEGIN`, a
/// transaction that reads first and writes later fails with "database is locked" when
/// another connection wrote in between, and the busy timeout cannot help it.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Opens (creating if missing) the database at `url` and brings its schema up to date.
pub(crate) async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let in_memory = is_in_memory(url);
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        // Writers queue for the lock instead of failing at once.
        .busy_timeout(Duration::from_secs(10));
    let pool = if in_memory {
        // An in-memory database lives as long as a connection to it: keep exactly one,
        // forever. One connection also avoids the table locks of SQLite's shared cache.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?
    } else {
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Blocking, but once at startup and quick; SQLite creates the file, not its
            // directory.
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("creating {}: {e}", dir.display()),
                )))
            })?;
        }
        // WAL: readers do not block the writer nor it them. NORMAL synchronous is safe
        // with WAL (a power cut may lose the last commits, never corrupt the file).
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?
    };
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Whether sqlx reads `url` as an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `...?mode=memory`), which needs a pool of its own kind.
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_urls_are_told_from_file_urls() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://ballast.db?cache=shared&mode=memory",
        ] {
            assert!(is_in_memory(url), "{url}");
        }
        for url in [
            "sqlite://ballast.db",
            "sqlite:///var/lib/ballast/ballast.db",
            "sqlite://data/memory.db?mode=rwc",
        ] {
            assert!(!is_in_memory(url), "{url}");
        }
    }

    #[test]
    fn stored_times_sort_as_text_in_time_order() {
        let earlier = DateTime::from_timestamp_micros(1_767_600_000_000_000).unwrap();
        let later = earlier + chrono::Duration::microseconds(1);
        let whole = DateTime::from_timestamp(1_767_600_001, 0).unwrap();
        assert_eq!(db_time(earlier), "2026-01-05T08:00:00.000000Z");
        assert!(db_time(earlier) < db_time(later) && db_time(later) < db_time(whole));
        assert_eq!(time_from_db(db_time(later), "t").unwrap(), later);
        assert!(matches!(
            time_from_db("yesterday".into(), "at of history entry 1"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
