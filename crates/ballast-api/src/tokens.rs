//! `/api/v1/tokens`: API tokens (admin only). A token is shown once, when created.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ballast_core::Problem;
use ballast_store::{Scope, TokenRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Admin, Caller, new_token};
use crate::error::{ApiError, ErrorBody};

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A unique name, recorded in history as the actor.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,63}$")]
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    #[schema(pattern = "^(viewer|operator|admin)$")]
    pub scope: String,
}

/// A token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
}

impl From<TokenRecord> for TokenBody {
    fn from(t: TokenRecord) -> Self {
        TokenBody {
            id: t.id,
            name: t.name,
            scope: t.scope.as_str().to_owned(),
            created_at: t.created_at,
            created_by: t.created_by,
        }
    }
}

/// A token just created, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's record.
    #[serde(flatten)]
    pub record: TokenBody,
}

/// Every token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// By name.
    pub tokens: Vec<TokenBody>,
}

/// Checks a token's name and scope.
pub fn check_new_token(name: &str, scope: &str) -> Result<Scope, String> {
    token_problem(name, scope).map_err(|p| p.message)
}

/// Checks a token's name and scope; the problem names its field.
fn token_problem(name: &str, scope: &str) -> Result<Scope, Problem> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(Problem::new(
            "name",
            format!("`name` must be 1 to 63 letters, digits, `-`, `_` or `.`; got `{name}`"),
        ));
    }
    scope.parse::<Scope>().map_err(|_| {
        Problem::new(
            "scope",
            format!("`scope` must be viewer, operator or admin; got `{scope}`"),
        )
    })
}

/// Creates a token.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; the secret is shown once", body = CreatedToken),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Bad name or scope", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let bytes = crate::error::body(body)?;
    let new: NewToken =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map_err(|e| {
                if e.inner().is_data() {
                    let path = e.path().to_string();
                    let path = if path == "." { String::new() } else { path };
                    ApiError::Invalid(vec![Problem::new(path, e.inner().to_string())])
                } else {
                    ApiError::BadRequest(format!("the body is not valid JSON: {}", e.inner()))
                }
            })?;
    let scope = token_problem(&new.name, &new.scope).map_err(|p| ApiError::Invalid(vec![p]))?;
    let (token, hash) = new_token();
    let record = state
        .store()
        .create_token(&new.name, scope, &hash, &caller.actor())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            record: record.into(),
        }),
    ))
}

/// Lists tokens (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "Every token", body = TokenList),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller<Admin>,
) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.store().list_tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Deletes a token; it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the admin scope", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller<Admin>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = crate::error::path_id(id)?;
    let uuid =
        Uuid::parse_str(&id).map_err(|_| ApiError::NotFound(format!("no token with id `{id}`")))?;
    state.store().delete_token(uuid, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
