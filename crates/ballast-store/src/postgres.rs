//! The PostgreSQL backend: connection setup, and how ids and timestamps are stored.
//!
//! The queries themselves are in `queries.rs`, compiled here with `Db = Postgres`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

use crate::StoreError;

// The same file is compiled in `sqlite` too, on purpose: that is how both backends share
// one copy of every query (see the crate documentation).
#[allow(
    clippy::duplicate_mod,
    reason = "queries.rs is compiled once per backend"
)]
#[path = "queries.rs"]
pub(crate) mod queries;

pub(crate) type Db = sqlx::Postgres;

/// Ids are native `UUID` columns.
pub(crate) type DbId = Uuid;

pub(crate) fn db_id(id: Uuid) -> DbId {
    id
}

pub(crate) fn id_from_db(value: DbId, _what: &str) -> Result<Uuid, StoreError> {
    Ok(value)
}

/// Timestamps are native `TIMESTAMPTZ` columns (microsecond precision).
pub(crate) type DbTime = DateTime<Utc>;

pub(crate) fn db_time(at: DateTime<Utc>) -> DbTime {
    at
}

pub(crate) fn time_from_db(value: DbTime, _what: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(value)
}

/// Read committed is enough: every conditional write re-checks its condition (the
/// expected version) in the `UPDATE`/`DELETE` itself, which PostgreSQL evaluates against
/// the latest committed row.
pub(crate) const BEGIN_WRITE: &str = "BEGIN";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connects to the database at `url` and brings its schema up to date.
pub(crate) async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        // The URL may hold a password: name the problem, not the URL.
        StoreError::InvalidUrl(format!("not a valid PostgreSQL URL: {e}"))
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        // Connection refused is retried until this runs out, which covers a database
        // that is still starting next to us.
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
