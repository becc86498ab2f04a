//! `/api/v1/scaling/policies`: create, list, read, update, delete, and dry-run evaluation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ballast_core::spec::parse_value;
use ballast_core::{Decision, PolicySpec, Problem, validate};
use ballast_store::PolicyRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Admin, Caller, Operator, Viewer};
use crate::error::{ApiError, ErrorBody};

/// Fields the server owns: accepted in a body (so a policy read back can be sent again) and
/// never taken as part of the policy.
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "created_by", "updated_by"];

/// A stored policy: the policy's own fields, and the server's.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyBody {
    /// The policy's id.
    pub id: Uuid,
    /// Increases with every update; send it back (`If-Match` or `version`) to update.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// The policy as written.
    #[serde(flatten)]
    pub spec: PolicySpec,
}

impl From<PolicyRecord> for PolicyBody {
    fn from(r: PolicyRecord) -> Self {
        PolicyBody {
            id: r.id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
            updated_by: r.updated_by,
            spec: r.spec,
        }
    }
}

/// Every policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyList {
    /// By name.
    pub policies: Vec<PolicyBody>,
}

/// A dry run's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct Evaluation {
    /// The history entry that records it.
    pub history_id: i64,
    /// The decision, with every proposal and constraint and its reason.
    pub decision: Decision,
}

/// Reads a policy body: 413 when too large, 400 when not JSON, 422 with every problem.
/// Returns the policy and the `version` field, when the body carries one.
fn read_policy(
    body: Result<Bytes, BytesRejection>,
    targets: &dyn ballast_runtime::ExecutorFactory,
) -> Result<(PolicySpec, Option<i64>), ApiError> {
    let bytes = crate::error::body(body)?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let mut version = None;
    if let Some(object) = value.as_object_mut() {
        for key in READ_ONLY {
            object.remove(*key);
        }
        match object.remove("version") {
            None => {}
            Some(serde_json::Value::Number(n)) if n.as_i64().is_some() => version = n.as_i64(),
            Some(_) => {
                return Err(ApiError::Invalid(vec![Problem::new(
                    "version",
                    "must be a whole number (the version the change is based on)",
                )]));
            }
        }
    }
    let parsed = parse_value(&value);
    let mut problems = parsed.problems;
    let spec = match parsed.spec {
        Some(spec) => {
            if let Err(invalid) = validate(&spec) {
                problems.extend(invalid.0);
            }
            // The executor's own fields, which only the executor knows.
            problems.extend(
                targets
                    .check(spec.target.as_ref())
                    .into_iter()
                    .map(|p| Problem::new(p.path, p.reason)),
            );
            spec
        }
        None => PolicySpec::default(),
    };
    if problems.is_empty() {
        Ok((spec, version))
    } else {
        Err(ApiError::Invalid(problems))
    }
}

fn etag(version: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        headers.insert(header::ETAG, v);
    }
    headers
}

/// The version in `If-Match` (`"3"` or `3`), if any.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::BadRequest(format!(
            "If-Match must hold the policy's version, such as \"3\"; got `{text}`"
        ))
    })
}

/// A store error, with "not found" naming the policy asked for.
fn missing_policy(e: ballast_store::StoreError, id: &str) -> ApiError {
    match e {
        ballast_store::StoreError::NotFound => {
            ApiError::NotFound(format!("no policy with id `{id}`"))
        }
        other => other.into(),
    }
}

fn policy_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound(format!("no policy with id `{id}`")))
}

pub(crate) async fn find(state: &AppState, id: &str) -> Result<PolicyRecord, ApiError> {
    let uuid = policy_id(id)?;
    state
        .store()
        .get_policy(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no policy with id `{id}`")))
}

/// Creates a policy.
#[utoipa::path(
    post,
    path = "/api/v1/scaling/policies",
    tag = "policies",
    request_body(content = PolicySpec, description = "The policy, in the policy format",
        example = json!({
            "name": "cdc-worker-autoscaling", "target_type": "cdc-worker",
            "target_id": "550e8400-e29b-41d4-a716-446655440000",
            "min_replicas": 1, "max_replicas": 10, "cooldown_seconds": 300,
            "scale_up_rules": [{"metric": "philotes_cdc_lag_seconds", "operator": "gt",
                "threshold": 60, "duration": "5m", "scale_by": 2}],
            "scale_down_rules": [{"metric": "philotes_cdc_lag_seconds", "operator": "lt",
                "threshold": 10, "duration": "10m", "scale_by": -1}],
            "schedules": [{"cron_expression": "0 8 * * 1-5", "desired_replicas": 5,
                "timezone": "Europe/Budapest"}]
        })),
    responses(
        (status = 201, description = "Created", body = PolicyBody),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Invalid policy, every problem listed", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<PolicyBody>), ApiError> {
    let (spec, _) = read_policy(body, state.engine.factory().as_ref())?;
    let record = state.store().create_policy(&spec, &caller.actor()).await?;
    let mut headers = etag(record.version);
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/scaling/policies/{}", record.id)) {
        headers.insert(header::LOCATION, loc);
    }
    Ok((StatusCode::CREATED, headers, Json(record.into())))
}

/// Lists every policy, by name.
#[utoipa::path(
    get,
    path = "/api/v1/scaling/policies",
    tag = "policies",
    responses(
        (status = 200, description = "Every policy", body = PolicyList),
        (status = 401, description = "No token", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller<Viewer>,
) -> Result<Json<PolicyList>, ApiError> {
    let policies = state.store().list_policies().await?;
    Ok(Json(PolicyList {
        policies: policies.into_iter().map(Into::into).collect(),
    }))
}

/// Reads one policy.
#[utoipa::path(
    get,
    path = "/api/v1/scaling/policies/{id}",
    tag = "policies",
    params(("id" = String, Path, format = Uuid, description = "The policy's id")),
    responses(
        (status = 200, description = "The policy", body = PolicyBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller<Viewer>,
    id: Result<Path<String>, PathRejection>,
) -> Result<(HeaderMap, Json<PolicyBody>), ApiError> {
    let id = crate::error::path_id(id)?;
    let record = find(&state, &id).await?;
    Ok((etag(record.version), Json(record.into())))
}

/// Replaces a policy. The version it is based on goes in `If-Match` or in a `version`
/// field; a stale one gets 409 and changes nothing.
#[utoipa::path(
    put,
    path = "/api/v1/scaling/policies/{id}",
    tag = "policies",
    params(
        ("id" = String, Path, format = Uuid, description = "The policy's id"),
        ("If-Match" = Option<String>, Header, nullable = false,
            pattern = r#"^(W/)?"?[0-9]{1,18}"?$"#,
            description = "The version the change is based on, such as \"3\""),
    ),
    request_body(content = PolicySpec,
        description = "The whole policy, in the policy format; `version` may stand for If-Match",
        example = json!({
            "version": 1, "name": "cdc-worker-autoscaling", "target_type": "cdc-worker",
            "min_replicas": 2, "max_replicas": 12,
            "scale_up_rules": [{"metric": "philotes_cdc_lag_seconds", "operator": "gt",
                "threshold": 60, "duration": "5m", "scale_by": 2}]
        })),
    responses(
        (status = 200, description = "Updated", body = PolicyBody),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 409, description = "Stale version, or the new name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Invalid policy", body = ErrorBody),
        (status = 428, description = "No version sent", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<PolicyBody>), ApiError> {
    let id = crate::error::path_id(id)?;
    let uuid = policy_id(&id)?;
    let header_version = if_match(&headers)?;
    let (spec, body_version) = read_policy(body, state.engine.factory().as_ref())?;
    let version = header_version.or(body_version).ok_or_else(|| {
        ApiError::PreconditionRequired(
            "send the version the change is based on, in If-Match or a `version` field".to_owned(),
        )
    })?;
    let record = state
        .store()
        .update_policy(uuid, &spec, version, &caller.actor())
        .await
        .map_err(|e| missing_policy(e, &id))?;
    Ok((etag(record.version), Json(record.into())))
}

/// Deletes a policy; its history stays.
#[utoipa::path(
    delete,
    path = "/api/v1/scaling/policies/{id}",
    tag = "policies",
    params(
        ("id" = String, Path, format = Uuid, description = "The policy's id"),
        ("If-Match" = Option<String>, Header, nullable = false,
            pattern = r#"^(W/)?"?[0-9]{1,18}"?$"#,
            description = "Delete only if still at this version, such as \"3\""),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "If-Match holds no version", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 409, description = "Stale version", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = crate::error::path_id(id)?;
    let uuid = policy_id(&id)?;
    let version = if_match(&headers)?;
    state
        .store()
        .delete_policy(uuid, version, &caller.actor())
        .await
        .map_err(|e| missing_policy(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run now: live metrics are fetched, the decision is returned with every reason and
/// recorded in history as a dry run. Nothing is carried out and no cooldown starts.
#[utoipa::path(
    post,
    path = "/api/v1/scaling/policies/{id}/evaluate",
    tag = "policies",
    params(("id" = String, Path, format = Uuid, description = "The policy's id")),
    responses(
        (status = 200, description = "The decision", body = Evaluation),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the operator scope", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn evaluate(
    State(state): State<AppState>,
    caller: Caller<Operator>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Evaluation>, ApiError> {
    let id = crate::error::path_id(id)?;
    let record = find(&state, &id).await?;
    let (decision, history_id) = state
        .engine
        .evaluate(&record, Utc::now(), &caller.actor())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(Evaluation {
        history_id,
        decision,
    }))
}
