//! The API's one error type and how each maps to a status code and a body that names the
//! problem. Internal errors are opaque to the client; their detail goes to the log.

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ballast_core::Problem;
use ballast_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `bad_request`, `validation_failed`, `not_found`, `conflict`,
    /// `precondition_required`, `payload_too_large`, `unauthorized`, `forbidden`, `internal`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// Every validation problem with its field path (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemBody>,
}

/// One validation problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    /// Field path such as `scale_up_rules[0].duration`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (not JSON, a bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// The body is invalid (a policy, a token); every problem has its field path.
    #[error("the request is invalid")]
    Invalid(Vec<Problem>),
    /// Nothing at that id.
    #[error("{0}")]
    NotFound(String),
    /// A name already taken, or a stale version.
    #[error("{0}")]
    Conflict(String),
    /// An update without the version it was based on.
    #[error("{0}")]
    PreconditionRequired(String),
    /// The body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No or an unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// A token whose scope is too small.
    #[error("{0}")]
    Forbidden(String),
    /// A limit is reached (too many pushed series).
    #[error("{0}")]
    TooMany(String),
    /// Something failed on our side; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("no such resource".to_owned()),
            StoreError::NameTaken { name } => {
                ApiError::Conflict(format!("the name `{name}` is already taken"))
            }
            StoreError::VersionConflict { current } => ApiError::Conflict(format!(
                "the policy was changed since the version you sent; its current version is {current}"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PreconditionRequired(_) => {
                (StatusCode::PRECONDITION_REQUIRED, "precondition_required")
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error; the server log has the detail".to_owned()
            }
            ApiError::Invalid(problems) => {
                format!("the request is invalid: {} problem(s)", problems.len())
            }
            other => other.to_string(),
        };
        let problems = match self {
            ApiError::Invalid(problems) => problems
                .into_iter()
                .map(|p| ProblemBody {
                    path: p.path,
                    message: p.message,
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut response = (
            status,
            axum::Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    problems,
                },
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The id in a path, or 404 when it cannot be read (it is not UTF-8): it names nothing.
pub fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::NotFound(format!("nothing has this id: {}", e.body_text())))
}

/// A request body, or 413 when it is too large and 400 when it cannot be read.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!("the body is too large: {}", e.body_text()))
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}
