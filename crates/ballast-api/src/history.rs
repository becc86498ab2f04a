//! `/api/v1/scaling/history`: the audit log of every action and every change, newest first,
//! with cursor pagination.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use ballast_core::Decision;
use ballast_store::{HistoryEntry, HistoryFilter, HistoryKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Caller, Viewer};
use crate::error::{ApiError, ErrorBody};

/// Filters, all optional. Everything is text here so that a bad value gets a message
/// naming its parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only this policy (its id).
    #[param(format = Uuid)]
    pub policy_id: Option<String>,
    /// From this time (RFC 3339), inclusive.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// `scale_up`, `scale_down` or `hold`.
    #[param(value_type = Option<ballast_core::Action>)]
    pub action: Option<String>,
    /// `decision`, `policy_created`, `policy_updated`, `policy_deleted`, `token_created`,
    /// `token_deleted`.
    #[param(
        pattern = "^(decision|policy_created|policy_updated|policy_deleted|token_created|token_deleted)$"
    )]
    pub kind: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// One entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryBody {
    /// Entry id (also the cursor).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What kind of entry.
    pub kind: String,
    /// The policy, when it concerns one.
    pub policy_id: Option<Uuid>,
    /// The policy's name at the time.
    pub policy_name: Option<String>,
    /// Who: `engine`, or `token:<name>`.
    pub actor: String,
    /// For decisions: `scale_up`, `scale_down` or `hold`.
    pub action: Option<String>,
    /// For decisions: the count before.
    pub from_replicas: Option<i64>,
    /// For decisions: the count after.
    pub to_replicas: Option<i64>,
    /// A dry run: recorded, not carried out.
    pub dry_run: bool,
    /// Why, in one line.
    pub reason: String,
    /// For decisions: every proposal and constraint with its reason.
    pub decision: Option<Decision>,
    /// `pending`, `succeeded`, `failed` or `dry_run`.
    pub outcome: Option<String>,
    /// What the executor said.
    pub outcome_detail: Option<String>,
    /// When the outcome was recorded.
    pub outcome_at: Option<DateTime<Utc>>,
}

impl From<HistoryEntry> for HistoryBody {
    fn from(e: HistoryEntry) -> Self {
        HistoryBody {
            id: e.id,
            at: e.at,
            kind: e.kind.as_str().to_owned(),
            policy_id: e.policy_id,
            policy_name: e.policy_name,
            actor: e.actor,
            action: e.action,
            from_replicas: e.from_replicas,
            to_replicas: e.to_replicas,
            dry_run: e.dry_run,
            reason: e.reason,
            decision: e.decision,
            outcome: e.outcome.map(|o| o.as_str().to_owned()),
            outcome_detail: e.outcome_detail,
            outcome_at: e.outcome_at,
        }
    }
}

/// A page of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    pub entries: Vec<HistoryBody>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn time(name: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "`{name}` must be an RFC 3339 time such as 2026-01-31T08:00:00Z: {e}"
                    ))
                })
        })
        .transpose()
}

/// The audit log.
#[utoipa::path(
    get,
    path = "/api/v1/scaling/history",
    tag = "history",
    params(HistoryParams),
    responses(
        (status = 200, description = "A page of entries", body = HistoryPage),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    _caller: Caller<Viewer>,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let Query(p) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let policy_id = p
        .policy_id
        .as_deref()
        .map(|v| {
            Uuid::parse_str(v)
                .map_err(|_| ApiError::BadRequest(format!("`policy_id` `{v}` is not a policy id")))
        })
        .transpose()?;
    if let Some(a) = &p.action
        && !matches!(a.as_str(), "scale_up" | "scale_down" | "hold")
    {
        return Err(ApiError::BadRequest(format!(
            "`action` must be scale_up, scale_down or hold; got `{a}`"
        )));
    }
    let kind = p
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<HistoryKind>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "`kind` must be one of {}; got `{k}`",
                    HistoryKind::NAMES.join(", ")
                ))
            })
        })
        .transpose()?;
    let cursor = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("`cursor` `{c}` is not a cursor")))
        })
        .transpose()?;
    let limit = match p.limit.as_deref() {
        None => 50,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`limit` must be a whole number from 1 to 500; got `{l}`"
                )));
            }
        },
    };
    let filter = HistoryFilter {
        policy_id,
        since: time("since", &p.since)?,
        until: time("until", &p.until)?,
        action: p.action.clone(),
        kind,
        cursor,
        limit,
    };
    let page = state.store().history(&filter).await?;
    Ok(Json(HistoryPage {
        entries: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}
