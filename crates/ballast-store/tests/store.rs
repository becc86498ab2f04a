//! The store's behaviour, checked the same way on every backend.
//!
//! Each test is an `async fn(&Store)`; `on_every_backend!` runs it on a SQLite file in a
//! temporary directory, on an in-memory SQLite database, and on the real PostgreSQL at
//! `BALLAST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each
//! PostgreSQL test in a fresh schema of its own that is dropped afterwards. PostgreSQL not
//! answering fails the tests: it is part of what they test.

use std::collections::BTreeSet;

use ballast_core::state::{Recommendation, RuleWindow, ScaleEvent};
use ballast_core::{Action, Decision, PolicySpec, PolicyState, Proposal, Strategy};
use ballast_store::{HistoryEntry, HistoryFilter, HistoryKind, Outcome, Scope, Store, StoreError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Harness

macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test]
                async fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::connect(&super::sqlite_url(dir.path())).await;
                    super::$test(&store).await;
                    store.close().await;
                }
            )+
        }

        mod sqlite_memory {
            $(
                #[tokio::test]
                async fn $test() {
                    let store = super::connect("sqlite::memory:").await;
                    super::$test(&store).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let schema = super::TempSchema::create().await;
                    let store = super::connect(&schema.url()).await;
                    // In a task of its own, so that the schema is dropped even when the
                    // test fails; the failure is passed on afterwards.
                    let run = tokio::spawn(async move {
                        super::$test(&store).await;
                        store.close().await;
                    })
                    .await;
                    schema.drop().await;
                    if let Err(failure) = run {
                        std::panic::resume_unwind(failure.into_panic());
                    }
                }
            )+
        }
    };
}

on_every_backend!(
    the_specification_example_is_stored_and_read_back_unchanged,
    rules_and_schedules_are_copied_on_create_replaced_on_update_and_removed_on_delete,
    a_stale_update_or_delete_is_a_version_conflict_that_changes_nothing,
    concurrent_updates_of_one_version_let_exactly_one_win,
    a_taken_name_is_refused_and_nothing_is_written,
    deleting_a_policy_removes_its_state_but_keeps_its_history,
    policy_state_round_trips_and_belongs_to_a_policy,
    states_are_saved_in_one_batch_skipping_policies_that_are_gone,
    a_decision_and_the_state_after_it_are_recorded_together_or_not_at_all,
    an_outcome_is_recorded_on_its_decision_only,
    history_filters_by_policy_time_range_action_and_kind,
    history_pages_walk_every_entry_once_newest_first,
    tokens_are_created_found_by_hash_listed_and_revoked,
    corrupt_stored_json_is_reported_as_corrupt_and_an_update_repairs_a_spec,
    the_store_answers_pings_and_names_its_backend,
);

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

async fn connect(url: &str) -> Store {
    Store::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting the store to {url}: {e}"))
}

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("ballast.db").display())
}

fn postgres_url() -> String {
    std::env::var("BALLAST_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// A PostgreSQL schema of one test's own, so that tests run in parallel and start empty.
struct TempSchema {
    name: String,
}

impl TempSchema {
    async fn create() -> TempSchema {
        let name = format!("ballast_test_{}", Uuid::new_v4().simple());
        admin_sql(&format!("CREATE SCHEMA {name}")).await;
        TempSchema { name }
    }

    /// The store URL that puts this schema first in the search path.
    fn url(&self) -> String {
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-c%20search_path%3D{}", self.name)
    }

    async fn drop(self) {
        admin_sql(&format!("DROP SCHEMA {} CASCADE", self.name)).await;
    }
}

async fn admin_sql(sql: &str) {
    let url = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             The store's tests run against a real PostgreSQL: start it \
             (scripts/services.sh does) or set BALLAST_TEST_POSTGRES_URL."
        )
    });
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

// ---------------------------------------------------------------------------------------
// Test data

/// The product specification's example request, as in ballast-core's spec_example test.
const SPEC_EXAMPLE: &str = r#"{"name":"cdc-worker-autoscaling","target_type":"cdc-worker",
 "target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,
 "cooldown_seconds":300,"scale_to_zero":false,
 "scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],
 "scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],
 "schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}"#;

fn example() -> PolicySpec {
    serde_json::from_str(SPEC_EXAMPLE).expect("the example is a policy")
}

fn named(name: &str) -> PolicySpec {
    PolicySpec {
        name: name.to_owned(),
        ..example()
    }
}

fn at(hour: u32, nanos: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, hour, 0, 0).unwrap() + Duration::nanoseconds(nanos)
}

fn decision(policy: &str, current: u32, desired: u32, dry_run: bool) -> Decision {
    let action = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleUp,
        std::cmp::Ordering::Less => Action::ScaleDown,
        std::cmp::Ordering::Equal => Action::Hold,
    };
    Decision {
        policy: policy.to_owned(),
        at: at(9, 123_456_789),
        current,
        previous_desired: Some(current),
        desired,
        action,
        dry_run,
        proposals: vec![Proposal {
            strategy: Strategy::Rules,
            desired,
            reason: "philotes_cdc_lag_seconds > 60 for 5m".to_owned(),
        }],
        combined: desired,
        constraints: vec![],
        data_problems: vec![],
        hourly_cost_before: Some(0.5 * f64::from(current)),
        hourly_cost_after: Some(0.5 * f64::from(desired)),
    }
}

/// A state with every kind of field set, times with nanoseconds included.
fn state(desired: u32) -> PolicyState {
    let t = at(9, 987_654_321);
    PolicyState {
        desired: Some(desired),
        last_scale_up: Some(t),
        last_scale_down: None,
        last_evaluated: Some(t),
        rules: vec![RuleWindow {
            key: "scale_up_rules[0]".to_owned(),
            holding_since: Some(t - Duration::minutes(5)),
            last_sample: Some(t),
        }],
        recommendations: vec![Recommendation {
            at: t,
            replicas: desired,
        }],
        scale_events: vec![ScaleEvent {
            at: t,
            from: 1,
            to: desired,
        }],
        idle_since: None,
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    store
        .unchecked_count(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn rows_of(store: &Store, table: &str, policy_id: Uuid) -> i64 {
    count(
        store,
        &format!("SELECT COUNT(*) FROM {table} WHERE policy_id = '{policy_id}'"),
    )
    .await
}

async fn all_history(store: &Store, filter: HistoryFilter) -> Vec<HistoryEntry> {
    store
        .history(&HistoryFilter {
            limit: 500,
            ..filter
        })
        .await
        .unwrap()
        .items
}

fn ids(entries: &[HistoryEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

fn as_json(spec: &PolicySpec) -> serde_json::Value {
    serde_json::to_value(spec).unwrap()
}

// ---------------------------------------------------------------------------------------
// Policies

async fn the_specification_example_is_stored_and_read_back_unchanged(store: &Store) {
    let spec = example();
    let created = store.create_policy(&spec, "alice").await.unwrap();
    assert_eq!(created.name, "cdc-worker-autoscaling");
    assert_eq!(created.version, 1);
    assert_eq!(
        (created.created_by.as_str(), created.updated_by.as_str()),
        ("alice", "alice")
    );
    assert_eq!(created.created_at, created.updated_at);

    let by_id = store.get_policy(created.id).await.unwrap().expect("stored");
    assert_eq!(as_json(&by_id.spec), as_json(&spec));
    assert_eq!(by_id, created, "the record read back is the one returned");
    let by_name = store
        .get_policy_by_name("cdc-worker-autoscaling")
        .await
        .unwrap()
        .expect("found by name");
    assert_eq!(by_name, created);
    assert_eq!(store.list_policies().await.unwrap(), vec![created.clone()]);
    assert_eq!(store.get_policy(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(store.get_policy_by_name("nope").await.unwrap(), None);

    let history = all_history(store, HistoryFilter::default()).await;
    assert_eq!(history.len(), 1);
    let entry = &history[0];
    assert_eq!(entry.kind, HistoryKind::PolicyCreated);
    assert_eq!(entry.policy_id, Some(created.id));
    assert_eq!(entry.policy_name.as_deref(), Some("cdc-worker-autoscaling"));
    assert_eq!(entry.actor, "alice");
    assert_eq!(entry.at, created.created_at);
    assert_eq!(
        entry.reason,
        "created policy `cdc-worker-autoscaling` (version 1)"
    );
    assert_eq!((entry.decision.as_ref(), entry.outcome), (None, None));
}

async fn rules_and_schedules_are_copied_on_create_replaced_on_update_and_removed_on_delete(
    store: &Store,
) {
    let created = store.create_policy(&example(), "alice").await.unwrap();
    let id = created.id;
    assert_eq!(rows_of(store, "policy_rules", id).await, 2);
    assert_eq!(rows_of(store, "policy_schedules", id).await, 1);
    let up = format!(
        "SELECT COUNT(*) FROM policy_rules WHERE policy_id = '{id}' AND direction = 'scale_up' \
         AND position = 0 AND metric = 'philotes_cdc_lag_seconds' AND operator = 'gt' \
         AND threshold = 60 AND duration = '5m' AND scale_by = 2"
    );
    assert_eq!(count(store, &up).await, 1);
    let down = format!(
        "SELECT COUNT(*) FROM policy_rules WHERE policy_id = '{id}' \
         AND direction = 'scale_down' AND threshold = 10 AND duration = '10m' AND scale_by = -1"
    );
    assert_eq!(count(store, &down).await, 1);
    let schedule = format!(
        "SELECT COUNT(*) FROM policy_schedules WHERE policy_id = '{id}' AND position = 0 \
         AND cron_expression = '0 8 * * 1-5' AND desired_replicas = 5 \
         AND timezone = 'Europe/Budapest'"
    );
    assert_eq!(count(store, &schedule).await, 1);

    let mut changed = example();
    changed.scale_up_rules[0].threshold = 120.0;
    changed
        .scale_up_rules
        .push(changed.scale_up_rules[0].clone());
    changed.scale_down_rules.clear();
    changed.schedules[0].timezone = None;
    changed.schedules.push(changed.schedules[0].clone());
    let updated = store.update_policy(id, &changed, 1, "bob").await.unwrap();
    assert_eq!(as_json(&updated.spec), as_json(&changed));
    assert_eq!(rows_of(store, "policy_rules", id).await, 2);
    let ups = format!(
        "SELECT COUNT(*) FROM policy_rules WHERE policy_id = '{id}' \
         AND direction = 'scale_up' AND threshold = 120"
    );
    assert_eq!(count(store, &ups).await, 2, "the old rows are replaced");
    assert_eq!(count(store, &down).await, 0);
    let utc = format!(
        "SELECT COUNT(*) FROM policy_schedules WHERE policy_id = '{id}' AND timezone IS NULL"
    );
    assert_eq!(count(store, &utc).await, 2);

    store.delete_policy(id, Some(2), "carol").await.unwrap();
    assert_eq!(rows_of(store, "policy_rules", id).await, 0);
    assert_eq!(rows_of(store, "policy_schedules", id).await, 0);
}

async fn a_stale_update_or_delete_is_a_version_conflict_that_changes_nothing(store: &Store) {
    let created = store.create_policy(&named("web"), "alice").await.unwrap();
    let mut v2 = named("web");
    v2.max_replicas = Some(20);
    let updated = store
        .update_policy(created.id, &v2, 1, "bob")
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(
        (updated.created_by.as_str(), updated.updated_by.as_str()),
        ("alice", "bob")
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);
    let entries = all_history(store, HistoryFilter::default()).await;
    assert_eq!(
        entries[0].reason,
        "updated policy `web` to version 2: changed max_replicas"
    );

    let mut stale = named("web");
    stale.max_replicas = Some(3);
    stale.scale_up_rules.clear();
    let err = store
        .update_policy(created.id, &stale, 1, "mallory")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { current: 2 }),
        "{err:?}"
    );
    let err = store
        .delete_policy(created.id, Some(1), "mallory")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { current: 2 }),
        "{err:?}"
    );

    assert_eq!(store.get_policy(created.id).await.unwrap(), Some(updated));
    assert_eq!(
        store.policy_versions().await.unwrap(),
        vec![(created.id, 2)],
        "the version a cache compares with moved on; the stale writes did not"
    );
    assert_eq!(rows_of(store, "policy_rules", created.id).await, 2);
    assert_eq!(
        rows_of(store, "history", created.id).await,
        2,
        "created, updated"
    );

    let missing = Uuid::new_v4();
    let err = store
        .update_policy(missing, &v2, 1, "bob")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store.delete_policy(missing, None, "bob").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn concurrent_updates_of_one_version_let_exactly_one_win(store: &Store) {
    let created = store.create_policy(&named("web"), "alice").await.unwrap();
    let mut a = named("web");
    a.max_replicas = Some(4);
    let mut b = named("web");
    b.max_replicas = Some(8);
    let (ra, rb) = tokio::join!(
        store.update_policy(created.id, &a, 1, "a"),
        store.update_policy(created.id, &b, 1, "b"),
    );
    let (winner, loser) = match (ra, rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected one success and one conflict, got {other:?}"),
    };
    assert_eq!(winner.version, 2);
    assert!(
        matches!(loser, StoreError::VersionConflict { current: 2 }),
        "{loser:?}"
    );
    let stored = store.get_policy(created.id).await.unwrap().unwrap();
    assert_eq!(stored, winner);
    assert_eq!(rows_of(store, "history", created.id).await, 2);
}

async fn a_taken_name_is_refused_and_nothing_is_written(store: &Store) {
    let first = store.create_policy(&named("web"), "alice").await.unwrap();
    let history_before = count(store, "SELECT COUNT(*) FROM history").await;
    let rules_before = count(store, "SELECT COUNT(*) FROM policy_rules").await;

    let mut again = named("web");
    again.scale_up_rules.push(again.scale_up_rules[0].clone());
    let err = store.create_policy(&again, "bob").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NameTaken { name } if name == "web"),
        "{err:?}"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM policies").await, 1);
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM history").await,
        history_before
    );
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM policy_rules").await,
        rules_before
    );

    // Renaming onto a taken name is refused the same way.
    let other = store.create_policy(&named("api"), "alice").await.unwrap();
    let history_before = count(store, "SELECT COUNT(*) FROM history").await;
    let err = store
        .update_policy(other.id, &named("web"), 1, "bob")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NameTaken { name } if name == "web"),
        "{err:?}"
    );
    assert_eq!(store.get_policy(other.id).await.unwrap(), Some(other));
    assert_eq!(store.get_policy(first.id).await.unwrap(), Some(first));
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM history").await,
        history_before
    );
}

async fn deleting_a_policy_removes_its_state_but_keeps_its_history(store: &Store) {
    let created = store.create_policy(&named("web"), "alice").await.unwrap();
    let id = created.id;
    store
        .record_decision(id, &decision("web", 1, 3, false), "engine", Some(&state(3)))
        .await
        .unwrap();
    assert_eq!(rows_of(store, "policy_state", id).await, 1);

    let deleted = store.delete_policy(id, Some(1), "carol").await.unwrap();
    assert_eq!(deleted, created);
    assert_eq!(store.get_policy(id).await.unwrap(), None);
    assert_eq!(store.load_state(id).await.unwrap(), None);
    assert_eq!(rows_of(store, "policy_state", id).await, 0);

    let history = all_history(
        store,
        HistoryFilter {
            policy_id: Some(id),
            ..HistoryFilter::default()
        },
    )
    .await;
    let kinds: Vec<HistoryKind> = history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            HistoryKind::PolicyDeleted,
            HistoryKind::Decision,
            HistoryKind::PolicyCreated
        ]
    );
    for entry in &history {
        assert_eq!(entry.policy_id, Some(id));
        assert_eq!(entry.policy_name.as_deref(), Some("web"));
    }
    assert_eq!(history[0].actor, "carol");
    assert_eq!(history[0].reason, "deleted policy `web` (version 1)");

    // The name is free again, for a new policy with a new id.
    let reborn = store.create_policy(&named("web"), "alice").await.unwrap();
    assert_ne!(reborn.id, id);
}

// ---------------------------------------------------------------------------------------
// State and decisions

async fn policy_state_round_trips_and_belongs_to_a_policy(store: &Store) {
    let policy = store.create_policy(&named("web"), "alice").await.unwrap();
    assert_eq!(store.load_state(policy.id).await.unwrap(), None);

    store.save_state(policy.id, &state(3)).await.unwrap();
    assert_eq!(store.load_state(policy.id).await.unwrap(), Some(state(3)));
    store.save_state(policy.id, &state(5)).await.unwrap();
    assert_eq!(store.load_state(policy.id).await.unwrap(), Some(state(5)));
    assert_eq!(rows_of(store, "policy_state", policy.id).await, 1);

    let err = store
        .save_state(Uuid::new_v4(), &state(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

async fn states_are_saved_in_one_batch_skipping_policies_that_are_gone(store: &Store) {
    let web = store.create_policy(&named("web"), "alice").await.unwrap();
    let api = store.create_policy(&named("api"), "alice").await.unwrap();
    store.save_state(api.id, &state(9)).await.unwrap();
    let gone = Uuid::new_v4();
    let saved = store
        .save_states(&[(web.id, state(2)), (gone, state(7)), (api.id, state(4))])
        .await
        .unwrap();
    assert_eq!(saved, 2, "the policy that does not exist is skipped");
    assert_eq!(store.load_state(web.id).await.unwrap(), Some(state(2)));
    assert_eq!(store.load_state(api.id).await.unwrap(), Some(state(4)));
    assert_eq!(store.load_state(gone).await.unwrap(), None);
    assert_eq!(count(store, "SELECT COUNT(*) FROM policy_state").await, 2);
    assert_eq!(store.save_states(&[]).await.unwrap(), 0);
}

async fn a_decision_and_the_state_after_it_are_recorded_together_or_not_at_all(store: &Store) {
    let policy = store.create_policy(&named("web"), "alice").await.unwrap();
    let scale_up = decision("web", 1, 3, false);
    let history_id = store
        .record_decision(policy.id, &scale_up, "engine", Some(&state(3)))
        .await
        .unwrap();
    assert_eq!(store.load_state(policy.id).await.unwrap(), Some(state(3)));

    let entry = all_history(store, HistoryFilter::default()).await.remove(0);
    assert_eq!(entry.id, history_id);
    assert_eq!(entry.kind, HistoryKind::Decision);
    assert_eq!(entry.policy_id, Some(policy.id));
    assert_eq!(entry.policy_name.as_deref(), Some("web"));
    assert_eq!(entry.actor, "engine");
    assert_eq!(entry.action.as_deref(), Some("scale_up"));
    assert_eq!((entry.from_replicas, entry.to_replicas), (Some(1), Some(3)));
    assert!(!entry.dry_run);
    assert_eq!(entry.reason, scale_up.summary());
    assert_eq!(entry.decision.as_ref(), Some(&scale_up));
    assert_eq!(entry.outcome, Some(Outcome::Pending));
    assert_eq!((entry.outcome_detail, entry.outcome_at), (None, None));

    // Without a state, the saved one stays.
    store
        .record_decision(policy.id, &decision("web", 3, 3, false), "engine", None)
        .await
        .unwrap();
    assert_eq!(store.load_state(policy.id).await.unwrap(), Some(state(3)));

    // A decision for a policy that does not exist is refused, and leaves no trace.
    let before = count(store, "SELECT COUNT(*) FROM history").await;
    let err = store
        .record_decision(Uuid::new_v4(), &scale_up, "engine", Some(&state(3)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(count(store, "SELECT COUNT(*) FROM history").await, before);

    // When the state cannot be written, the decision is not recorded either.
    store
        .unchecked_execute("DROP TABLE policy_state")
        .await
        .unwrap();
    let result = store
        .record_decision(policy.id, &scale_up, "engine", Some(&state(4)))
        .await;
    assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
    assert_eq!(count(store, "SELECT COUNT(*) FROM history").await, before);
}

async fn an_outcome_is_recorded_on_its_decision_only(store: &Store) {
    let policy = store.create_policy(&named("web"), "alice").await.unwrap();
    let id = store
        .record_decision(policy.id, &decision("web", 2, 4, false), "engine", None)
        .await
        .unwrap();
    store
        .record_outcome(id, Outcome::Failed, "the API answered 503")
        .await
        .unwrap();
    store
        .record_outcome(id, Outcome::Succeeded, "4 replicas ready")
        .await
        .unwrap();
    let entry = all_history(store, HistoryFilter::default()).await.remove(0);
    assert_eq!(entry.id, id);
    assert_eq!(entry.outcome, Some(Outcome::Succeeded));
    assert_eq!(entry.outcome_detail.as_deref(), Some("4 replicas ready"));
    assert!(entry.outcome_at.is_some_and(|t| t >= entry.at), "{entry:?}");

    // A dry-run decision is finished as soon as it is recorded.
    let dry = store
        .record_decision(policy.id, &decision("web", 2, 1, true), "engine", None)
        .await
        .unwrap();
    let entry = all_history(store, HistoryFilter::default()).await.remove(0);
    assert_eq!(entry.id, dry);
    assert!(entry.dry_run);
    assert_eq!(entry.action.as_deref(), Some("scale_down"));
    assert_eq!(entry.outcome, Some(Outcome::DryRun));
    assert_eq!(entry.outcome_at, Some(entry.at));

    let created = all_history(
        store,
        HistoryFilter {
            kind: Some(HistoryKind::PolicyCreated),
            ..HistoryFilter::default()
        },
    )
    .await;
    let err = store
        .record_outcome(created[0].id, Outcome::Succeeded, "")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .record_outcome(dry + 1000, Outcome::Succeeded, "")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// History queries

async fn history_filters_by_policy_time_range_action_and_kind(store: &Store) {
    let web = store.create_policy(&named("web"), "alice").await.unwrap();
    let api = store.create_policy(&named("api"), "alice").await.unwrap();
    for (policy, name, current, desired) in [
        (web.id, "web", 1, 3),
        (api.id, "api", 1, 2),
        (web.id, "web", 3, 3),
        (web.id, "web", 3, 2),
        (api.id, "api", 2, 2),
        (web.id, "web", 2, 4),
    ] {
        store
            .record_decision(
                policy,
                &decision(name, current, desired, false),
                "engine",
                None,
            )
            .await
            .unwrap();
    }
    let mut changed = named("web");
    changed.min_replicas = 2;
    store
        .update_policy(web.id, &changed, 1, "bob")
        .await
        .unwrap();
    let all = all_history(store, HistoryFilter::default()).await;
    assert_eq!(all.len(), 9);
    let ids_where = |keep: &dyn Fn(&HistoryEntry) -> bool| -> Vec<i64> {
        all.iter().filter(|e| keep(e)).map(|e| e.id).collect()
    };
    let query = |filter: HistoryFilter| async move { ids(&all_history(store, filter).await) };

    let of_web = query(HistoryFilter {
        policy_id: Some(web.id),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(of_web, ids_where(&|e| e.policy_id == Some(web.id)));
    assert_eq!(of_web.len(), 6);

    let ups = query(HistoryFilter {
        action: Some("scale_up".to_owned()),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(ups, ids_where(&|e| e.action.as_deref() == Some("scale_up")));
    assert_eq!(ups.len(), 3);

    let web_holds = query(HistoryFilter {
        policy_id: Some(web.id),
        action: Some("hold".to_owned()),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(web_holds.len(), 1);

    let updates = query(HistoryFilter {
        kind: Some(HistoryKind::PolicyUpdated),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(updates, vec![all[0].id]);
    let decisions = query(HistoryFilter {
        kind: Some(HistoryKind::Decision),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(decisions.len(), 6);

    // `since` is inclusive, `until` exclusive; entries are newest first.
    let (since, until) = (all[6].at, all[2].at);
    assert!(
        since < until,
        "entries recorded in order have increasing times"
    );
    let window = query(HistoryFilter {
        since: Some(since),
        until: Some(until),
        ..HistoryFilter::default()
    })
    .await;
    let expected = ids_where(&|e| e.at >= since && e.at < until);
    assert_eq!(window, expected);
    assert!(window.contains(&all[6].id) && !window.contains(&all[2].id));
    assert!(!expected.is_empty() && expected.len() < all.len());

    let later_web_decisions = query(HistoryFilter {
        policy_id: Some(web.id),
        kind: Some(HistoryKind::Decision),
        since: Some(since),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(
        later_web_decisions,
        ids_where(&|e| e.policy_id == Some(web.id)
            && e.kind == HistoryKind::Decision
            && e.at >= since)
    );

    let nothing = query(HistoryFilter {
        until: Some(all[8].at),
        ..HistoryFilter::default()
    })
    .await;
    assert_eq!(nothing, Vec::<i64>::new());
}

async fn history_pages_walk_every_entry_once_newest_first(store: &Store) {
    let web = store.create_policy(&named("web"), "alice").await.unwrap();
    let api = store.create_policy(&named("api"), "alice").await.unwrap();
    for i in 0..22u32 {
        let (policy, name) = if i % 3 == 0 {
            (api.id, "api")
        } else {
            (web.id, "web")
        };
        store
            .record_decision(policy, &decision(name, 2, 2 + i % 2, false), "engine", None)
            .await
            .unwrap();
    }
    let everything = all_history(store, HistoryFilter::default()).await;
    assert_eq!(everything.len(), 24);
    assert!(
        everything.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );

    for filter in [
        HistoryFilter::default(),
        HistoryFilter {
            policy_id: Some(web.id),
            ..HistoryFilter::default()
        },
        HistoryFilter {
            action: Some("scale_up".to_owned()),
            ..HistoryFilter::default()
        },
    ] {
        let expected = ids(&all_history(store, filter.clone()).await);
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store
                .history(&HistoryFilter {
                    cursor,
                    limit: 5,
                    ..filter.clone()
                })
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= 5);
            seen.extend(ids(&page.items));
            match page.next_cursor {
                Some(next) => {
                    assert_eq!(page.items.len(), 5, "only a last page is short");
                    assert_eq!(Some(next), page.items.last().map(|e| e.id));
                    cursor = Some(next);
                }
                None => break,
            }
            assert!(pages <= 10, "pagination does not end: {seen:?}");
        }
        assert_eq!(seen, expected, "every entry once, in order, for {filter:?}");
        assert_eq!(pages, expected.len().div_ceil(5).max(1));
        let unique: BTreeSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len());
    }

    // An exact multiple of the page size ends without an empty page.
    let web_entries = ids(&all_history(
        store,
        HistoryFilter {
            policy_id: Some(web.id),
            ..HistoryFilter::default()
        },
    )
    .await);
    let first = store
        .history(&HistoryFilter {
            policy_id: Some(web.id),
            limit: web_entries.len() as u32,
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&first.items), web_entries);
    assert_eq!(first.next_cursor, None);

    // No limit means pages of 50.
    let default = store.history(&HistoryFilter::default()).await.unwrap();
    assert_eq!((default.items.len(), default.next_cursor), (24, None));
}

// ---------------------------------------------------------------------------------------
// Tokens

async fn tokens_are_created_found_by_hash_listed_and_revoked(store: &Store) {
    let ci = store
        .create_token("ci", Scope::Operator, "hash-of-ci-secret", "admin")
        .await
        .unwrap();
    assert_eq!(
        (ci.name.as_str(), ci.scope, ci.created_by.as_str()),
        ("ci", Scope::Operator, "admin")
    );
    let board = store
        .create_token("board", Scope::Viewer, "hash-of-board-secret", "admin")
        .await
        .unwrap();

    assert_eq!(
        store.token_by_hash("hash-of-ci-secret").await.unwrap(),
        Some(ci.clone())
    );
    assert_eq!(store.token_by_hash("hash-of-nothing").await.unwrap(), None);
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![board.clone(), ci.clone()]
    );

    let before = count(store, "SELECT COUNT(*) FROM history").await;
    let err = store
        .create_token("ci", Scope::Admin, "another-hash", "mallory")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NameTaken { name } if name == "ci"),
        "{err:?}"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM api_tokens").await, 2);
    assert_eq!(count(store, "SELECT COUNT(*) FROM history").await, before);
    assert_eq!(store.token_by_hash("another-hash").await.unwrap(), None);

    store.delete_token(ci.id, "admin").await.unwrap();
    assert_eq!(
        store.token_by_hash("hash-of-ci-secret").await.unwrap(),
        None
    );
    assert_eq!(store.list_tokens().await.unwrap(), vec![board]);
    let err = store.delete_token(ci.id, "admin").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    let token_history = all_history(store, HistoryFilter::default()).await;
    let lines: Vec<(HistoryKind, &str, &str)> = token_history
        .iter()
        .map(|e| (e.kind, e.actor.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                HistoryKind::TokenDeleted,
                "admin",
                "deleted token `ci` with scope operator"
            ),
            (
                HistoryKind::TokenCreated,
                "admin",
                "created token `board` with scope viewer"
            ),
            (
                HistoryKind::TokenCreated,
                "admin",
                "created token `ci` with scope operator"
            ),
        ]
    );
    assert!(token_history.iter().all(|e| e.policy_id.is_none()));
    let secret_kept = count(
        store,
        "SELECT COUNT(*) FROM history WHERE reason LIKE '%hash-of%'",
    )
    .await;
    assert_eq!(secret_kept, 0, "history names tokens, never their hashes");
}

// ---------------------------------------------------------------------------------------
// Damage and plumbing

async fn corrupt_stored_json_is_reported_as_corrupt_and_an_update_repairs_a_spec(store: &Store) {
    let policy = store.create_policy(&named("web"), "alice").await.unwrap();
    store
        .record_decision(
            policy.id,
            &decision("web", 1, 2, false),
            "engine",
            Some(&state(2)),
        )
        .await
        .unwrap();
    // Valid JSON (PostgreSQL's JSONB accepts nothing else) of the wrong shape.
    let damage = [
        "UPDATE policies SET spec = '{\"name\": \"web\", \"min_replicas\": \"many\"}'",
        "UPDATE policy_state SET state = '{\"desired\": -1}'",
        "UPDATE history SET decision = '{\"policy\": 7}' WHERE kind = 'decision'",
    ];
    for sql in damage {
        assert_eq!(store.unchecked_execute(sql).await.unwrap(), 1, "{sql}");
    }

    let corrupt = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::Corrupt { what: got, detail }) => {
            assert!(got.starts_with(what), "{got}: {detail}");
            assert!(!detail.is_empty());
        }
        other => panic!("expected Corrupt for {what}, got {other:?}"),
    };
    corrupt(
        store.get_policy(policy.id).await.map(drop),
        "spec of policy",
    );
    corrupt(
        store.get_policy_by_name("web").await.map(drop),
        "spec of policy",
    );
    corrupt(store.list_policies().await.map(drop), "spec of policy");
    corrupt(
        store.load_state(policy.id).await.map(drop),
        "state of policy",
    );
    corrupt(
        store.history(&HistoryFilter::default()).await.map(drop),
        "decision of history entry",
    );

    let repaired = store
        .update_policy(policy.id, &named("web"), 1, "bob")
        .await
        .unwrap();
    assert_eq!(store.get_policy(policy.id).await.unwrap(), Some(repaired));
}

async fn the_store_answers_pings_and_names_its_backend(store: &Store) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
    let copy = store.clone();
    copy.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Files and restarts

#[tokio::test]
async fn a_sqlite_store_is_created_in_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not").join("yet").join("ballast.db");
    let store = connect(&format!("sqlite://{}", file.display())).await;
    assert_eq!(store.backend(), "sqlite");
    store.create_policy(&named("web"), "alice").await.unwrap();
    store.close().await;
    assert!(file.is_file(), "{} exists", file.display());
}

#[tokio::test]
async fn a_sqlite_file_keeps_its_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    data_survives_a_restart(&sqlite_url(dir.path())).await;
}

#[tokio::test]
async fn a_postgres_schema_keeps_its_data_across_a_restart() {
    let schema = TempSchema::create().await;
    let url = schema.url();
    let run = tokio::spawn(async move { data_survives_a_restart(&url).await }).await;
    schema.drop().await;
    if let Err(failure) = run {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// Writes one of everything, closes the store, connects again (running the migrations
/// again, which must change nothing) and reads it all back.
async fn data_survives_a_restart(url: &str) {
    let store = connect(url).await;
    let policy = store.create_policy(&example(), "alice").await.unwrap();
    let decided = decision("cdc-worker-autoscaling", 1, 3, false);
    let history_id = store
        .record_decision(policy.id, &decided, "engine", Some(&state(3)))
        .await
        .unwrap();
    let token = store
        .create_token("ci", Scope::Admin, "hash", "alice")
        .await
        .unwrap();
    let history = all_history(&store, HistoryFilter::default()).await;
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store refuses work");

    let store = connect(url).await;
    assert_eq!(
        store.get_policy(policy.id).await.unwrap(),
        Some(policy.clone())
    );
    assert_eq!(store.load_state(policy.id).await.unwrap(), Some(state(3)));
    assert_eq!(store.token_by_hash("hash").await.unwrap(), Some(token));
    assert_eq!(all_history(&store, HistoryFilter::default()).await, history);
    // New entries continue after the old ones.
    let next = store
        .record_decision(policy.id, &decided, "engine", None)
        .await
        .unwrap();
    assert!(next > history_id);
    store.close().await;
}
