//! `GET /api/v1/scaling/policies/{id}/forecast`: a predictive policy's current forecast, its
//! interval, how accurate recent forecasts were, and whether the strategy stands aside.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ballast_core::Predictive;
use ballast_runtime::ForecastStatus;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Viewer};
use crate::error::{ApiError, ErrorBody};

/// A predictive policy's forecaster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastBody {
    /// The policy's name.
    pub policy: String,
    /// `scale` (the forecast takes part in decisions) or `forecast_only`.
    pub mode: String,
    /// `refilling` (reading the metric's history back after a start), `collecting` (not
    /// enough history to train on yet), `training` (the first model is being trained) or
    /// `forecasting`.
    pub status: String,
    /// The status in words.
    pub detail: String,
    /// The newest forecast; absent until the first model is trained.
    pub forecast: Option<ForecastFigures>,
    /// The path the model expects from the newest sample, one point per evaluation
    /// interval for up to 60 intervals (as far as the trained model reaches), with the
    /// interval the forecaster uses at each point's time of day. For dashboards: the
    /// strategy acts on `forecast`.
    pub outlook: Vec<OutlookPointBody>,
    /// How recent forecasts fared against what happened.
    pub accuracy: AccuracyBody,
    /// The model in use and its trainings.
    pub model: ModelBody,
    /// What the strategy did at the last evaluation.
    pub last_decision: Option<VerdictBody>,
}

/// One forecast of the lead time.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastFigures {
    /// The time of the newest sample the forecast saw.
    pub made_at: DateTime<Utc>,
    /// The span after `made_at` it covers, in seconds (the provisioning time plus one
    /// interval, or the policy's `lead_time`).
    pub lead_seconds: f64,
    /// The end of that span.
    pub until: DateTime<Utc>,
    /// The highest point forecast within it. For a per-replica metric: the total over the
    /// replicas.
    pub peak: f64,
    /// Lower bound of the interval around `peak`.
    pub lower: f64,
    /// Upper bound of the interval around `peak`: what the strategy provisions for.
    pub upper: f64,
    /// Confidence level of the interval (0 to 1).
    pub confidence: f64,
    /// Replicas the upper bound needs at the policy's predictive target.
    pub replicas: u32,
}

/// One point of the outlook.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutlookPointBody {
    /// The time.
    pub at: DateTime<Utc>,
    /// The value the model expects.
    pub value: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
}

/// Forecast accuracy over the policy's accuracy window.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccuracyBody {
    /// Forecasts scored (their whole lead time has been observed).
    pub scored: usize,
    /// Mean absolute scaled error against the seasonal naive forecast (below 1 is better
    /// than it); absent until enough forecasts are scored.
    pub mase: Option<f64>,
    /// Share of outcomes that fell inside the interval (0 to 1).
    pub coverage: Option<f64>,
    /// The strategy stands aside while `mase` is above this.
    pub max_mase: f64,
    /// The strategy stands aside while `coverage` is below this.
    pub min_coverage: Option<f64>,
}

/// The model in use.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelBody {
    /// Samples of history held (one per evaluation interval).
    pub history_samples: usize,
    /// Samples needed for the first training.
    pub samples_needed: usize,
    /// Samples read back from the metric's history when the forecaster started.
    pub refilled_samples: usize,
    /// Why the history could not be read back, if so.
    pub refill_error: Option<String>,
    /// Seasonal periods the model fits, in seconds (a period enters once the history holds
    /// it twice).
    pub seasonal_periods_seconds: Vec<f64>,
    /// When the model in use was trained (the time of its newest sample).
    pub trained_at: Option<DateTime<Utc>>,
    /// Whether a training is running now.
    pub training: bool,
    /// Trainings completed.
    pub trainings: u64,
    /// Trainings that failed.
    pub failed_trainings: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// What the strategy did at the last evaluation.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictBody {
    /// The evaluation's time.
    pub at: DateTime<Utc>,
    /// `acting` (the forecast's count took part), or `standing_aside` (no forecast yet,
    /// accuracy below the limits, or `forecast_only`).
    pub role: String,
    /// The count the forecast asks for.
    pub desired: u32,
    /// The decision's reason for it.
    pub reason: String,
}

impl ForecastBody {
    fn of(status: ForecastStatus, predictive: &Predictive) -> ForecastBody {
        let detail = match status.phase {
            ballast_runtime::Phase::Refilling => {
                "reading the metric's history back to train on".to_owned()
            }
            ballast_runtime::Phase::Collecting => format!(
                "collecting history: {} of the {} samples the first training needs",
                status.history_samples, status.samples_needed
            ),
            ballast_runtime::Phase::Training => "training the first model".to_owned(),
            ballast_runtime::Phase::Forecasting => match &status.verdict {
                Some(v) if v.acting => "forecasting; the forecast takes part in decisions".into(),
                Some(v) => v.reason.clone(),
                None => "forecasting".to_owned(),
            },
        };
        ForecastBody {
            policy: status.policy,
            mode: status.mode.word().to_owned(),
            status: status.phase.word().to_owned(),
            detail,
            forecast: status.forecast.map(|f| ForecastFigures {
                made_at: f.made_at,
                lead_seconds: f.lead.num_milliseconds() as f64 / 1000.0,
                until: f.made_at + f.lead,
                peak: f.peak,
                lower: f.lower,
                upper: f.upper,
                confidence: f.confidence,
                replicas: predictive.replicas_for(f.upper),
            }),
            outlook: status
                .outlook
                .iter()
                .map(|p| OutlookPointBody {
                    at: p.at,
                    value: p.value,
                    lower: p.lower,
                    upper: p.upper,
                })
                .collect(),
            accuracy: AccuracyBody {
                scored: status.accuracy.scored,
                mase: status.accuracy.mase,
                coverage: status.accuracy.coverage,
                max_mase: status.max_mase,
                min_coverage: status.min_coverage,
            },
            model: ModelBody {
                history_samples: status.history_samples,
                samples_needed: status.samples_needed,
                refilled_samples: status.refilled_samples,
                refill_error: status.refill_error,
                seasonal_periods_seconds: status
                    .model_periods
                    .iter()
                    .map(|p| p.num_milliseconds() as f64 / 1000.0)
                    .collect(),
                trained_at: status.trained_at,
                training: status.training,
                trainings: status.trainings,
                failed_trainings: status.failed_trainings,
                last_error: status.last_error,
            },
            last_decision: status.verdict.map(|v| VerdictBody {
                at: v.at,
                role: if v.acting { "acting" } else { "standing_aside" }.to_owned(),
                desired: v.desired,
                reason: v.reason,
            }),
        }
    }
}

/// A predictive policy's current forecast with its interval and accuracy.
#[utoipa::path(
    get,
    path = "/api/v1/scaling/policies/{id}/forecast",
    tag = "policies",
    params(("id" = String, Path, format = Uuid, description = "The policy's id")),
    responses(
        (status = 200, description = "The forecaster's state and newest forecast", body = ForecastBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 404, description = "No such policy, or it has no predictive block", body = ErrorBody),
        (status = 409, description = "The policy is predictive but not evaluated since the server started (disabled, or not due yet)", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn forecast(
    State(state): State<AppState>,
    _caller: Caller<Viewer>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ForecastBody>, ApiError> {
    let id = crate::error::path_id(id)?;
    let record = crate::policies::find(&state, &id).await?;
    let policy = state
        .engine
        .policy(&record)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(predictive) = policy.predictive.as_ref() else {
        return Err(ApiError::NotFound(format!(
            "policy `{}` has no `predictive` block, so it has no forecast",
            record.name
        )));
    };
    let status = state
        .engine
        .forecasts()
        .status(record.id, &policy)
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "policy `{}` has not been evaluated since the server started{}; its forecaster starts at its first evaluation",
                record.name,
                if policy.enabled { "" } else { " (it is disabled)" }
            ))
        })?;
    Ok(Json(ForecastBody::of(status, predictive)))
}
