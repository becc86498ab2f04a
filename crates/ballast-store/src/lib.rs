//! Ballast's store: policies, the history (audit log), per-policy engine state and API
//! tokens, in SQLite (the embedded default) or PostgreSQL (for production and for several
//! engine replicas), behind one [`Store`].
//!
//! # Connecting
//!
//! [`Store::connect`] takes a URL and applies the schema migrations of its backend:
//!
//! - `sqlite://ballast.db`, `sqlite://data/ballast.db` (relative to the working
//!   directory), `sqlite:///var/lib/ballast/ballast.db` (absolute): the file and its
//!   directory are created if missing. The database runs in WAL mode with foreign keys on.
//! - `sqlite::memory:`: a private in-memory database on a single connection, gone when
//!   the store is dropped. For demos and tests.
//! - `postgres://user:password@host:5432/db` or `postgresql://...`. To keep Ballast's
//!   tables in their own schema, name it in the search path:
//!   `postgres://host/db?options=-c%20search_path%3Dballast` (the schema must exist).
//!
//! # What a caller can rely on
//!
//! - Every write that touches several tables is one transaction: a policy with its rule
//!   and schedule copies and its history entry; a decision with the state after it.
//! - Policy and token changes each leave a history entry (who, when, what); history
//!   entries outlive the policy they are about.
//! - Updates and deletes name the version they expect; a stale one gets
//!   [`StoreError::VersionConflict`] and changes nothing.
//! - A stored value that no longer decodes is reported as [`StoreError::Corrupt`]; an
//!   update can overwrite a policy whose stored spec is corrupt.
//!
//! # How the two backends share their SQL
//!
//! `queries.rs` holds all the SQL and is compiled twice, once in `sqlite` and once in
//! `postgres`, each of which supplies the sqlx database type and the representation of ids
//! and timestamps (text on SQLite, `UUID` and `TIMESTAMPTZ` on PostgreSQL). So there is
//! one copy of every query, and no generic bounds over sqlx's traits.

mod error;
mod model;
mod postgres;
mod sqlite;

use ballast_core::{Decision, PolicySpec, PolicyState};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use error::StoreError;
pub use model::{
    HistoryEntry, HistoryFilter, HistoryKind, Outcome, Page, PolicyRecord, Scope, TokenRecord,
    UnknownName,
};

/// The store, on one of its backends. Cheap to clone: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

/// A closed set of backends: adding one means a module with its connection setup and
/// its id and time representation, and a migrations folder.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs the function of the same name in the store's backend module.
macro_rules! dispatch {
    ($store:expr, $function:ident($($arg:expr),* $(,)?)) => {
        match &$store.backend {
            Backend::Sqlite(pool) => sqlite::queries::$function(pool, $($arg),*).await,
            Backend::Postgres(pool) => postgres::queries::$function(pool, $($arg),*).await,
        }
    };
}

impl Store {
    /// Connects to the database at `url` (see the crate documentation for the forms) and
    /// applies any migrations it lacks.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::connect(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::connect(url).await?)
        } else {
            let scheme = url.split_once(':').map_or("none", |(scheme, _)| scheme);
            return Err(StoreError::InvalidUrl(format!(
                "unsupported scheme `{scheme}`: expected sqlite://PATH, sqlite::memory:, \
                 postgres://... or postgresql://..."
            )));
        };
        Ok(Store { backend })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, ping())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection, waiting for those in use to be returned. Later calls
    /// fail. For a clean shutdown; dropping the last clone also closes, in the background.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Stores a new policy at version 1, with its history entry. The spec should have
    /// been validated; the store only requires its name to be free
    /// ([`StoreError::NameTaken`] otherwise, and nothing is written).
    pub async fn create_policy(
        &self,
        spec: &PolicySpec,
        actor: &str,
    ) -> Result<PolicyRecord, StoreError> {
        dispatch!(self, create_policy(spec, actor))
    }

    /// The policy with this id.
    pub async fn get_policy(&self, id: Uuid) -> Result<Option<PolicyRecord>, StoreError> {
        dispatch!(self, get_policy(id))
    }

    /// The policy with this name.
    pub async fn get_policy_by_name(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        dispatch!(self, get_policy_by_name(name))
    }

    /// Every policy, by name (bytewise order on both backends).
    pub async fn list_policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        dispatch!(self, list_policies())
    }

    /// Every policy's id and version, without the specs: enough to tell which policies a
    /// cache of records must read again.
    pub async fn policy_versions(&self) -> Result<Vec<(Uuid, i64)>, StoreError> {
        dispatch!(self, policy_versions())
    }

    /// Replaces a policy's spec if it is still at `expected_version`; the version goes up
    /// by one. A stale version gives [`StoreError::VersionConflict`] with the current one,
    /// a name that another policy has gives [`StoreError::NameTaken`]; either way nothing
    /// is written.
    pub async fn update_policy(
        &self,
        id: Uuid,
        spec: &PolicySpec,
        expected_version: i64,
        actor: &str,
    ) -> Result<PolicyRecord, StoreError> {
        dispatch!(self, update_policy(id, spec, expected_version, actor))
    }

    /// Deletes a policy (at `expected_version`, when given) with its rules, schedules and
    /// state, and returns what it was. Its history stays, keeping the policy's id and name.
    /// A policy whose stored spec is corrupt cannot be returned, so it is not deleted
    /// ([`StoreError::Corrupt`]): update it first.
    pub async fn delete_policy(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        actor: &str,
    ) -> Result<PolicyRecord, StoreError> {
        dispatch!(self, delete_policy(id, expected_version, actor))
    }

    /// The engine state saved for a policy, if any.
    pub async fn load_state(&self, policy_id: Uuid) -> Result<Option<PolicyState>, StoreError> {
        dispatch!(self, load_state(policy_id))
    }

    /// Saves (replaces) a policy's engine state; [`StoreError::NotFound`] if the policy
    /// does not exist.
    pub async fn save_state(&self, policy_id: Uuid, state: &PolicyState) -> Result<(), StoreError> {
        dispatch!(self, save_state(policy_id, state))
    }

    /// Saves many policies' engine states in one transaction (the engine's holds of one
    /// tick). A policy deleted meanwhile is skipped; returns how many were saved.
    pub async fn save_states(&self, states: &[(Uuid, PolicyState)]) -> Result<usize, StoreError> {
        dispatch!(self, save_states(states))
    }

    /// Records a decision before it is carried out, and (same transaction) the policy state
    /// after it, so that a restarted engine never sees one without the other. Returns the
    /// history id to pass to [`Store::record_outcome`].
    ///
    /// The entry's outcome starts as [`Outcome::Pending`], or [`Outcome::DryRun`] for a
    /// dry-run decision (which nothing will carry out). [`StoreError::NotFound`] if the
    /// policy does not exist.
    pub async fn record_decision(
        &self,
        policy_id: Uuid,
        decision: &Decision,
        actor: &str,
        state: Option<&PolicyState>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, record_decision(policy_id, decision, actor, state))
    }

    /// Records what became of a decision, replacing any earlier outcome (a retry that
    /// succeeds after a failure). [`StoreError::NotFound`] unless `history_id` is a
    /// decision's entry.
    pub async fn record_outcome(
        &self,
        history_id: i64,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, record_outcome(history_id, outcome, detail))
    }

    /// History entries matching `filter`, newest first, one page at a time. `since` is
    /// inclusive and `until` exclusive.
    pub async fn history(&self, filter: &HistoryFilter) -> Result<Page<HistoryEntry>, StoreError> {
        dispatch!(self, history(filter))
    }

    /// Stores an API token by the hash of its secret, which the caller computes (the
    /// secret itself is never stored). [`StoreError::NameTaken`] if the name is in use.
    pub async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        token_hash: &str,
        actor: &str,
    ) -> Result<TokenRecord, StoreError> {
        dispatch!(self, create_token(name, scope, token_hash, actor))
    }

    /// The token whose secret hashes to `token_hash`.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        dispatch!(self, token_by_hash(token_hash))
    }

    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        dispatch!(self, list_tokens())
    }

    /// Revokes a token; [`StoreError::NotFound`] if there is none with this id.
    pub async fn delete_token(&self, id: Uuid, actor: &str) -> Result<(), StoreError> {
        dispatch!(self, delete_token(id, actor))
    }

    /// Runs SQL as given, bypassing every rule of the store; returns the rows affected.
    /// For tests that need to corrupt or inspect the database; not for production use.
    #[doc(hidden)]
    pub async fn unchecked_execute(&self, sql: &str) -> Result<u64, StoreError> {
        dispatch!(self, unchecked_execute(sql))
    }

    /// Runs a query returning one integer (a `COUNT(*)`), bypassing the store's rules.
    /// For tests; not for production use.
    #[doc(hidden)]
    pub async fn unchecked_count(&self, sql: &str) -> Result<i64, StoreError> {
        dispatch!(self, unchecked_count(sql))
    }
}

/// The time stored for a change: the wall clock, truncated to the microsecond, which is
/// what both backends keep, so that a record returned by a write equals the one read back.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_to_fifty_and_is_capped_at_five_hundred() {
        let limit = |limit| {
            HistoryFilter {
                limit,
                ..HistoryFilter::default()
            }
            .effective_limit()
        };
        assert_eq!(limit(0), 50);
        assert_eq!(limit(1), 1);
        assert_eq!(limit(500), 500);
        assert_eq!(limit(501), 500);
        assert_eq!(limit(u32::MAX), 500);
    }

    #[test]
    fn scopes_are_ordered_by_what_they_allow() {
        assert!(Scope::Viewer < Scope::Operator && Scope::Operator < Scope::Admin);
        for scope in [Scope::Viewer, Scope::Operator, Scope::Admin] {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        let err = "root".parse::<Scope>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown scope `root` (expected one of: viewer, operator, admin)"
        );
    }

    #[test]
    fn stored_names_of_kinds_and_outcomes_parse_back() {
        for name in HistoryKind::NAMES {
            assert_eq!(name.parse::<HistoryKind>().unwrap().as_str(), *name);
        }
        for name in Outcome::NAMES {
            assert_eq!(name.parse::<Outcome>().unwrap().as_str(), *name);
        }
        assert_eq!(Outcome::DryRun.to_string(), "dry_run");
        assert_eq!(HistoryKind::PolicyCreated.to_string(), "policy_created");
    }

    #[test]
    fn stored_times_have_microsecond_precision() {
        let t = now();
        assert_eq!(t.timestamp_subsec_nanos() % 1_000, 0);
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_an_invalid_url_that_does_not_echo_credentials() {
        let err = Store::connect("mysql://root:secret@localhost/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
        assert!(err.to_string().contains("`mysql`"), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
