//! The store's SQL and the logic around it, written once for both backends.
//!
//! This file is compiled twice, as `sqlite::queries` and as `postgres::queries` (see the
//! `#[path]` attributes there); the including module supplies `Db` (the sqlx database),
//! `DbId` and `DbTime` with their conversions, and `BEGIN_WRITE`. Everything here is
//! therefore concrete (no generic bounds on sqlx's traits), and the SQL is portable: `$n`
//! binds, which both drivers accept, `ON CONFLICT`, `RETURNING`, no backend functions.
//!
//! Inside a transaction every statement goes through the transaction, never the pool: an
//! in-memory SQLite pool has a single connection, which the transaction holds.

use std::collections::BTreeSet;

use ballast_core::{Decision, PolicySpec, PolicyState};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Database, Executor, Pool, QueryBuilder, Row};
use uuid::Uuid;

use super::{BEGIN_WRITE, Db, DbId, DbTime, db_id, db_time, id_from_db, time_from_db};
use crate::{
    HistoryEntry, HistoryFilter, HistoryKind, Outcome, Page, PolicyRecord, Scope, StoreError,
    TokenRecord,
};

type DbRow = <Db as Database>::Row;
type Tx = sqlx::Transaction<'static, Db>;

pub(crate) async fn ping(pool: &Pool<Db>) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Policies

pub(crate) async fn create_policy(
    pool: &Pool<Db>,
    spec: &PolicySpec,
    actor: &str,
) -> Result<PolicyRecord, StoreError> {
    let id = Uuid::new_v4();
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // `DO NOTHING` rather than catching the unique violation: a taken name is an answer,
    // not an error, and on PostgreSQL a failed statement would poison the transaction.
    let inserted = sqlx::query(
        "INSERT INTO policies (id, name, spec, version, enabled, dry_run, created_at, \
         updated_at, created_by, updated_by) \
         VALUES ($1, $2, $3, 1, $4, $5, $6, $6, $7, $7) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(db_id(id))
    .bind(&spec.name)
    .bind(Json(spec))
    .bind(spec.enabled)
    .bind(spec.dry_run)
    .bind(db_time(now))
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NameTaken {
            name: spec.name.clone(),
        });
    }
    write_copies(&mut tx, id, spec).await?;
    insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::PolicyCreated,
            policy_id: Some(id),
            policy_name: Some(&spec.name),
            actor,
            reason: format!("created policy `{}` (version 1)", spec.name),
            decision: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(PolicyRecord {
        id,
        name: spec.name.clone(),
        spec: spec.clone(),
        version: 1,
        created_at: now,
        updated_at: now,
        created_by: actor.to_owned(),
        updated_by: actor.to_owned(),
    })
}

pub(crate) async fn get_policy(
    pool: &Pool<Db>,
    id: Uuid,
) -> Result<Option<PolicyRecord>, StoreError> {
    sqlx::query(
        "SELECT id, name, spec, version, created_at, updated_at, created_by, updated_by \
         FROM policies WHERE id = $1",
    )
    .bind(db_id(id))
    .fetch_optional(pool)
    .await?
    .map(|row| policy_from_row(&row))
    .transpose()
}

pub(crate) async fn get_policy_by_name(
    pool: &Pool<Db>,
    name: &str,
) -> Result<Option<PolicyRecord>, StoreError> {
    sqlx::query(
        "SELECT id, name, spec, version, created_at, updated_at, created_by, updated_by \
         FROM policies WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?
    .map(|row| policy_from_row(&row))
    .transpose()
}

pub(crate) async fn list_policies(pool: &Pool<Db>) -> Result<Vec<PolicyRecord>, StoreError> {
    sqlx::query(
        "SELECT id, name, spec, version, created_at, updated_at, created_by, updated_by \
         FROM policies ORDER BY name",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(policy_from_row)
    .collect()
}

pub(crate) async fn policy_versions(pool: &Pool<Db>) -> Result<Vec<(Uuid, i64)>, StoreError> {
    sqlx::query("SELECT id, version FROM policies")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                id_from_db(row.try_get::<DbId, _>("id")?, "policy id")?,
                row.try_get("version")?,
            ))
        })
        .collect()
}

pub(crate) async fn update_policy(
    pool: &Pool<Db>,
    id: Uuid,
    spec: &PolicySpec,
    expected_version: i64,
    actor: &str,
) -> Result<PolicyRecord, StoreError> {
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let Some(old) = sqlx::query("SELECT version, name, spec FROM policies WHERE id = $1")
        .bind(db_id(id))
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Err(StoreError::NotFound);
    };
    let current: i64 = old.try_get("version")?;
    if current != expected_version {
        return Err(StoreError::VersionConflict { current });
    }
    let old_name: String = old.try_get("name")?;
    // The old spec only serves to say what changed. One that no longer decodes is exactly
    // what an update must be able to replace, so it is not an error here.
    let old_spec = old
        .try_get::<Json<serde_json::Value>, _>("spec")
        .ok()
        .map(|json| json.0);
    let version = current + 1;
    // The version is checked again in the UPDATE itself: on PostgreSQL another
    // transaction may have committed a change since the SELECT above.
    let updated = sqlx::query(
        "UPDATE policies SET name = $1, spec = $2, version = $3, enabled = $4, dry_run = $5, \
         updated_at = $6, updated_by = $7 \
         WHERE id = $8 AND version = $9 \
         RETURNING created_at, created_by",
    )
    .bind(&spec.name)
    .bind(Json(spec))
    .bind(version)
    .bind(spec.enabled)
    .bind(spec.dry_run)
    .bind(db_time(now))
    .bind(actor)
    .bind(db_id(id))
    .bind(current)
    .fetch_optional(&mut *tx)
    .await;
    let row = match updated {
        Ok(Some(row)) => row,
        Ok(None) => return Err(conflict_or_missing(&mut tx, id).await?),
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::NameTaken {
                name: spec.name.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let owner = format!("policy {id}");
    let created_at = get_time(&row, "created_at", &owner)?;
    let created_by: String = row.try_get("created_by")?;
    write_copies(&mut tx, id, spec).await?;
    insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::PolicyUpdated,
            policy_id: Some(id),
            policy_name: Some(&spec.name),
            actor,
            reason: describe_update(&old_name, old_spec.as_ref(), spec, version),
            decision: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(PolicyRecord {
        id,
        name: spec.name.clone(),
        spec: spec.clone(),
        version,
        created_at,
        updated_at: now,
        created_by,
        updated_by: actor.to_owned(),
    })
}

pub(crate) async fn delete_policy(
    pool: &Pool<Db>,
    id: Uuid,
    expected_version: Option<i64>,
    actor: &str,
) -> Result<PolicyRecord, StoreError> {
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // Rules, schedules and state go with the row (ON DELETE CASCADE); history stays.
    let deleted = match expected_version {
        Some(version) => sqlx::query(
            "DELETE FROM policies WHERE id = $1 AND version = $2 \
             RETURNING id, name, spec, version, created_at, updated_at, created_by, updated_by",
        )
        .bind(db_id(id))
        .bind(version),
        None => sqlx::query(
            "DELETE FROM policies WHERE id = $1 \
             RETURNING id, name, spec, version, created_at, updated_at, created_by, updated_by",
        )
        .bind(db_id(id)),
    }
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = deleted else {
        return Err(conflict_or_missing(&mut tx, id).await?);
    };
    let record = policy_from_row(&row)?;
    insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::PolicyDeleted,
            policy_id: Some(id),
            policy_name: Some(&record.name),
            actor,
            reason: format!(
                "deleted policy `{}` (version {})",
                record.name, record.version
            ),
            decision: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(record)
}

/// Why a conditional write on a policy touched no row: it is gone, or its version moved.
async fn conflict_or_missing(tx: &mut Tx, id: Uuid) -> Result<StoreError, StoreError> {
    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM policies WHERE id = $1")
        .bind(db_id(id))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match current {
        Some(current) => StoreError::VersionConflict { current },
        None => StoreError::NotFound,
    })
}

/// Rewrites the queryable copies of the spec's rules and schedules.
async fn write_copies(tx: &mut Tx, id: Uuid, spec: &PolicySpec) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM policy_rules WHERE policy_id = $1")
        .bind(db_id(id))
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM policy_schedules WHERE policy_id = $1")
        .bind(db_id(id))
        .execute(&mut **tx)
        .await?;
    let directions = [
        ("scale_up", &spec.scale_up_rules),
        ("scale_down", &spec.scale_down_rules),
    ];
    for (direction, rules) in directions {
        for (position, rule) in rules.iter().enumerate() {
            sqlx::query(
                "INSERT INTO policy_rules (policy_id, direction, position, metric, operator, \
                 threshold, duration, scale_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(db_id(id))
            .bind(direction)
            .bind(position as i64)
            .bind(&rule.metric)
            .bind(&rule.operator)
            .bind(rule.threshold)
            .bind(rule.duration.as_ref().map(duration_text))
            .bind(rule.scale_by)
            .execute(&mut **tx)
            .await?;
        }
    }
    for (position, schedule) in spec.schedules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO policy_schedules (policy_id, position, cron_expression, \
             desired_replicas, timezone) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(db_id(id))
        .bind(position as i64)
        .bind(&schedule.cron_expression)
        .bind(i64::from(schedule.desired_replicas))
        .bind(schedule.timezone.as_deref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A rule's duration as written (`"5m"`), or `"<n>s"` when written as seconds.
fn duration_text(duration: &ballast_core::spec::DurationSpec) -> String {
    match duration {
        ballast_core::spec::DurationSpec::Text(text) => text.clone(),
        ballast_core::spec::DurationSpec::Seconds(seconds) => format!("{seconds}s"),
    }
}

/// The history line of an update: the new version and the top-level fields that changed.
fn describe_update(
    old_name: &str,
    old: Option<&serde_json::Value>,
    new: &PolicySpec,
    version: i64,
) -> String {
    let head = if old_name == new.name {
        format!("updated policy `{}` to version {version}", new.name)
    } else {
        format!(
            "updated policy `{}` (renamed from `{old_name}`) to version {version}",
            new.name
        )
    };
    let new = serde_json::to_value(new).unwrap_or_default();
    let (Some(old), Some(new)) = (old.and_then(|v| v.as_object()), new.as_object()) else {
        return format!("{head}: replaced a spec that could not be read");
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let changed: Vec<&str> = keys
        .into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(String::as_str)
        .collect();
    if changed.is_empty() {
        format!("{head}: no field changed")
    } else {
        format!("{head}: changed {}", changed.join(", "))
    }
}

fn policy_from_row(row: &DbRow) -> Result<PolicyRecord, StoreError> {
    let id = id_from_db(row.try_get::<DbId, _>("id")?, "policy id")?;
    let owner = format!("policy {id}");
    Ok(PolicyRecord {
        id,
        name: row.try_get("name")?,
        spec: get_json(row, "spec", &owner)?,
        version: row.try_get("version")?,
        created_at: get_time(row, "created_at", &owner)?,
        updated_at: get_time(row, "updated_at", &owner)?,
        created_by: row.try_get("created_by")?,
        updated_by: row.try_get("updated_by")?,
    })
}

// ---------------------------------------------------------------------------------------
// Engine state and decisions

pub(crate) async fn load_state(
    pool: &Pool<Db>,
    policy_id: Uuid,
) -> Result<Option<PolicyState>, StoreError> {
    let row = sqlx::query("SELECT state FROM policy_state WHERE policy_id = $1")
        .bind(db_id(policy_id))
        .fetch_optional(pool)
        .await?;
    row.map(|row| get_json(&row, "state", &format!("policy {policy_id}")))
        .transpose()
}

pub(crate) async fn save_state(
    pool: &Pool<Db>,
    policy_id: Uuid,
    state: &PolicyState,
) -> Result<(), StoreError> {
    upsert_state(pool, policy_id, state, crate::now()).await
}

pub(crate) async fn save_states(
    pool: &Pool<Db>,
    states: &[(Uuid, PolicyState)],
) -> Result<usize, StoreError> {
    let at = crate::now();
    let mut tx = pool.begin().await?;
    let mut saved = 0;
    for (policy_id, state) in states {
        // Only for policies that still exist: one deleted since the caller read it is
        // skipped instead of failing (and aborting) the whole batch.
        let result = sqlx::query(
            "INSERT INTO policy_state (policy_id, state, updated_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM policies WHERE id = $1) \
             ON CONFLICT (policy_id) DO UPDATE \
             SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(db_id(*policy_id))
        .bind(Json(state))
        .bind(db_time(at))
        .execute(&mut *tx)
        .await?;
        saved += result.rows_affected() as usize;
    }
    tx.commit().await?;
    Ok(saved)
}

async fn upsert_state<'c>(
    executor: impl Executor<'c, Database = Db>,
    policy_id: Uuid,
    state: &PolicyState,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO policy_state (policy_id, state, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (policy_id) DO UPDATE \
         SET state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(db_id(policy_id))
    .bind(Json(state))
    .bind(db_time(at))
    .execute(executor)
    .await;
    match result {
        Ok(_) => Ok(()),
        // The state belongs to a policy: none without one.
        Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn record_decision(
    pool: &Pool<Db>,
    policy_id: Uuid,
    decision: &Decision,
    actor: &str,
    state: Option<&PolicyState>,
) -> Result<i64, StoreError> {
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // The policy's current name, rather than the decision's copy, so that history of a
    // renamed policy reads consistently; and a decision for a deleted policy is refused.
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM policies WHERE id = $1")
        .bind(db_id(policy_id))
        .fetch_optional(&mut *tx)
        .await?;
    let Some(name) = name else {
        return Err(StoreError::NotFound);
    };
    let history_id = insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::Decision,
            policy_id: Some(policy_id),
            policy_name: Some(&name),
            actor,
            reason: decision.summary(),
            decision: Some(decision),
        },
    )
    .await?;
    if let Some(state) = state {
        upsert_state(&mut *tx, policy_id, state, now).await?;
    }
    tx.commit().await?;
    Ok(history_id)
}

pub(crate) async fn record_outcome(
    pool: &Pool<Db>,
    history_id: i64,
    outcome: Outcome,
    detail: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE history SET outcome = $1, outcome_detail = $2, outcome_at = $3 \
         WHERE id = $4 AND kind = 'decision'",
    )
    .bind(outcome.as_str())
    .bind(detail)
    .bind(db_time(crate::now()))
    .bind(history_id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// History

/// A history row to write; the decision columns are derived from `decision`.
struct NewEntry<'a> {
    at: DateTime<Utc>,
    kind: HistoryKind,
    policy_id: Option<Uuid>,
    policy_name: Option<&'a str>,
    actor: &'a str,
    reason: String,
    decision: Option<&'a Decision>,
}

async fn insert_history(tx: &mut Tx, entry: NewEntry<'_>) -> Result<i64, StoreError> {
    let d = entry.decision;
    // A dry-run decision is finished once recorded; any other waits for its outcome.
    let outcome = d.map(|d| {
        if d.dry_run {
            Outcome::DryRun
        } else {
            Outcome::Pending
        }
    });
    let outcome_at = (outcome == Some(Outcome::DryRun)).then_some(entry.at);
    let row = sqlx::query(
        "INSERT INTO history (at, kind, policy_id, policy_name, actor, action, from_replicas, \
         to_replicas, dry_run, reason, decision, outcome, outcome_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         RETURNING id",
    )
    .bind(db_time(entry.at))
    .bind(entry.kind.as_str())
    .bind(entry.policy_id.map(db_id))
    .bind(entry.policy_name)
    .bind(entry.actor)
    .bind(d.map(|d| d.action.as_str()))
    .bind(d.map(|d| i64::from(d.current)))
    .bind(d.map(|d| i64::from(d.desired)))
    .bind(d.is_some_and(|d| d.dry_run))
    .bind(&entry.reason)
    .bind(d.map(Json))
    .bind(outcome.map(Outcome::as_str))
    .bind(outcome_at.map(db_time))
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

pub(crate) async fn history(
    pool: &Pool<Db>,
    filter: &HistoryFilter,
) -> Result<Page<HistoryEntry>, StoreError> {
    let limit = filter.effective_limit();
    // Only the filters given become conditions, so that each query can use an index.
    let mut query = QueryBuilder::<Db>::new(
        "SELECT id, at, kind, policy_id, policy_name, actor, action, from_replicas, \
         to_replicas, dry_run, reason, decision, outcome, outcome_detail, outcome_at \
         FROM history WHERE 1 = 1",
    );
    if let Some(policy_id) = filter.policy_id {
        query.push(" AND policy_id = ").push_bind(db_id(policy_id));
    }
    if let Some(since) = filter.since {
        query.push(" AND at >= ").push_bind(db_time(since));
    }
    if let Some(until) = filter.until {
        query.push(" AND at < ").push_bind(db_time(until));
    }
    if let Some(action) = &filter.action {
        query.push(" AND action = ").push_bind(action.clone());
    }
    if let Some(kind) = filter.kind {
        query.push(" AND kind = ").push_bind(kind.as_str());
    }
    if let Some(cursor) = filter.cursor {
        query.push(" AND id < ").push_bind(cursor);
    }
    // One more than asked for tells whether another page follows.
    query
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
    let rows = query.build().fetch_all(pool).await?;
    let more = rows.len() > limit as usize;
    let items = rows
        .iter()
        .take(limit as usize)
        .map(history_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if more {
        items.last().map(|entry| entry.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn history_from_row(row: &DbRow) -> Result<HistoryEntry, StoreError> {
    let id: i64 = row.try_get("id")?;
    let owner = format!("history entry {id}");
    let policy_id = row
        .try_get::<Option<DbId>, _>("policy_id")?
        .map(|value| id_from_db(value, &format!("policy_id of {owner}")))
        .transpose()?;
    let outcome_at = row
        .try_get::<Option<DbTime>, _>("outcome_at")?
        .map(|value| time_from_db(value, &format!("outcome_at of {owner}")))
        .transpose()?;
    let decision = match row.try_get::<Option<Json<Decision>>, _>("decision") {
        Ok(decision) => decision.map(|json| json.0),
        Err(e) => return Err(corrupt_or(e, "decision", &owner)),
    };
    Ok(HistoryEntry {
        id,
        at: get_time(row, "at", &owner)?,
        kind: parse_name(row.try_get("kind")?, "kind", &owner)?,
        policy_id,
        policy_name: row.try_get("policy_name")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        from_replicas: row.try_get("from_replicas")?,
        to_replicas: row.try_get("to_replicas")?,
        dry_run: row.try_get("dry_run")?,
        reason: row.try_get("reason")?,
        decision,
        outcome: row
            .try_get::<Option<String>, _>("outcome")?
            .map(|name| parse_name(name, "outcome", &owner))
            .transpose()?,
        outcome_detail: row.try_get("outcome_detail")?,
        outcome_at,
    })
}

// ---------------------------------------------------------------------------------------
// API tokens

pub(crate) async fn create_token(
    pool: &Pool<Db>,
    name: &str,
    scope: Scope,
    token_hash: &str,
    actor: &str,
) -> Result<TokenRecord, StoreError> {
    let id = Uuid::new_v4();
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    // Only a taken name is an answer; a repeated hash stays a database error (it would
    // mean the caller reused a token, which must not pass silently).
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (id, name, scope, token_hash, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
    )
    .bind(db_id(id))
    .bind(name)
    .bind(scope.as_str())
    .bind(token_hash)
    .bind(db_time(now))
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::NameTaken {
            name: name.to_owned(),
        });
    }
    insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::TokenCreated,
            policy_id: None,
            policy_name: None,
            actor,
            reason: format!("created token `{name}` with scope {scope}"),
            decision: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(TokenRecord {
        id,
        name: name.to_owned(),
        scope,
        created_at: now,
        created_by: actor.to_owned(),
    })
}

pub(crate) async fn token_by_hash(
    pool: &Pool<Db>,
    token_hash: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    sqlx::query(
        "SELECT id, name, scope, created_at, created_by FROM api_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?
    .map(|row| token_from_row(&row))
    .transpose()
}

pub(crate) async fn list_tokens(pool: &Pool<Db>) -> Result<Vec<TokenRecord>, StoreError> {
    sqlx::query("SELECT id, name, scope, created_at, created_by FROM api_tokens ORDER BY name")
        .fetch_all(pool)
        .await?
        .iter()
        .map(token_from_row)
        .collect()
}

pub(crate) async fn delete_token(pool: &Pool<Db>, id: Uuid, actor: &str) -> Result<(), StoreError> {
    let now = crate::now();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1 RETURNING name, scope")
        .bind(db_id(id))
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = deleted else {
        return Err(StoreError::NotFound);
    };
    let name: String = row.try_get("name")?;
    let scope: String = row.try_get("scope")?;
    insert_history(
        &mut tx,
        NewEntry {
            at: now,
            kind: HistoryKind::TokenDeleted,
            policy_id: None,
            policy_name: None,
            actor,
            reason: format!("deleted token `{name}` with scope {scope}"),
            decision: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn token_from_row(row: &DbRow) -> Result<TokenRecord, StoreError> {
    let id = id_from_db(row.try_get::<DbId, _>("id")?, "token id")?;
    let owner = format!("token {id}");
    Ok(TokenRecord {
        id,
        name: row.try_get("name")?,
        scope: parse_name(row.try_get("scope")?, "scope", &owner)?,
        created_at: get_time(row, "created_at", &owner)?,
        created_by: row.try_get("created_by")?,
    })
}

// ---------------------------------------------------------------------------------------
// Raw SQL, for tests only (see `Store::unchecked_execute`).

pub(crate) async fn unchecked_execute(pool: &Pool<Db>, sql: &str) -> Result<u64, StoreError> {
    let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn unchecked_count(pool: &Pool<Db>, sql: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await?)
}

// ---------------------------------------------------------------------------------------
// Decoding helpers: a stored value that does not decode is `Corrupt`, naming the value.

fn get_json<T: DeserializeOwned>(row: &DbRow, column: &str, owner: &str) -> Result<T, StoreError> {
    row.try_get::<Json<T>, _>(column)
        .map(|json| json.0)
        .map_err(|e| corrupt_or(e, column, owner))
}

fn get_time(row: &DbRow, column: &str, owner: &str) -> Result<DateTime<Utc>, StoreError> {
    time_from_db(row.try_get(column)?, &format!("{column} of {owner}"))
}

fn parse_name<T>(value: String, column: &str, owner: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = crate::UnknownName>,
{
    value
        .parse()
        .map_err(|e: crate::UnknownName| StoreError::Corrupt {
            what: format!("{column} of {owner}"),
            detail: e.to_string(),
        })
}

/// A decoding failure of the column is corruption; anything else stays a database error.
fn corrupt_or(err: sqlx::Error, column: &str, owner: &str) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::Corrupt {
            what: format!("{column} of {owner}"),
            detail: source.to_string(),
        },
        other => StoreError::Database(other),
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}
