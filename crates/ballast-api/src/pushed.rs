//! `POST /api/v1/metrics`: samples from applications that have no Prometheus, read by
//! policies whose metric says `source: pushed`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use ballast_core::Problem;
use ballast_runtime::{PushError, PushedSample, SeriesKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Operator};
use crate::error::{ApiError, ErrorBody};

/// A batch of samples.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// The samples; all are kept, or none when one is invalid.
    pub samples: Vec<PushSample>,
}

/// One sample of one series.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSample {
    /// The metric name (`queue_depth`).
    #[schema(pattern = "^[A-Za-z_:][A-Za-z0-9_:]*$")]
    pub name: String,
    /// The series' labels (`{"queue": "emails"}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
    /// When it was measured (RFC 3339); the time of the request when absent.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

/// What was kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushAccepted {
    /// Samples kept.
    pub accepted: usize,
    /// Series held in memory now.
    pub series: usize,
}

/// Pushes samples.
#[utoipa::path(
    post,
    path = "/api/v1/metrics",
    tag = "metrics",
    request_body(content = PushBody, description = "Samples to keep"),
    responses(
        (status = 202, description = "Kept", body = PushAccepted),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Needs the operator scope", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A sample is invalid; nothing was kept", body = ErrorBody),
        (status = 429, description = "Too many series", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn push(
    State(state): State<AppState>,
    _caller: Caller<Operator>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PushAccepted>), ApiError> {
    let bytes = crate::error::body(body)?;
    let parsed: PushBody =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
                } else {
                    let path = if path == "." { String::new() } else { path };
                    ApiError::Invalid(vec![Problem::new(path, inner.to_string())])
                }
            })?;
    let now = Utc::now();
    let samples = parsed
        .samples
        .into_iter()
        .map(|s| PushedSample {
            key: SeriesKey {
                name: s.name,
                labels: s.labels,
            },
            value: s.value,
            at: s.timestamp.unwrap_or(now),
        })
        .collect();
    let pushed = state.engine.pushed();
    match pushed.push(samples, now) {
        Ok(accepted) => Ok((
            StatusCode::ACCEPTED,
            Json(PushAccepted {
                accepted,
                series: pushed.series_count(),
            }),
        )),
        Err(PushError::Invalid {
            index,
            field,
            reason,
        }) => Err(ApiError::Invalid(vec![Problem::new(
            format!("samples[{index}].{field}"),
            reason,
        )])),
        Err(e @ PushError::TooManySeries(_)) => Err(ApiError::TooMany(e.to_string())),
    }
}
