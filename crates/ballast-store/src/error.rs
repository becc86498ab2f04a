//! The store's one error type.

/// Why a store operation failed.
///
/// The first four variants are answers a caller acts on (404, 409, ...); the rest are
/// failures of the database or of its contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The policy, token or history entry does not exist (any more).
    #[error("not found")]
    NotFound,
    /// Another policy or token already has this name.
    #[error("the name `{name}` is already taken")]
    NameTaken {
        /// The name asked for.
        name: String,
    },
    /// The policy changed since the version the caller read; nothing was written.
    #[error("version conflict: the current version is {current}")]
    VersionConflict {
        /// The version stored now.
        current: i64,
    },
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The schema migrations could not be applied at connect.
    #[error("migrating the database failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded (JSON that no longer matches its type, a
    /// malformed id or timestamp): the row is reported instead of panicking or skipped.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which value, e.g. "spec of policy 5c0f…".
        what: String,
        /// The decoder's complaint.
        detail: String,
    },
    /// The connection URL is not one the store understands.
    #[error("invalid store URL: {0}")]
    InvalidUrl(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(err)
    }
}
