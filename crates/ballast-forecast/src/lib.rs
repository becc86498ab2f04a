//! Forecasts for Ballast's predictive strategy.
//!
//! The core ([`ballast_core`]) is pure: it does not train models. This crate does, outside
//! it, and hands each tick's result to [`ballast_core::decide_with_forecast`] as a
//! [`ballast_core::Forecast`]:
//!
//! - [`Settings`]: a policy's `predictive` block in samples of the evaluation interval.
//! - [`Forecaster`]: one policy's metric history, its trained [`Model`], and the record of
//!   every forecast it made, scored against what happened ([`accuracy`]).
//! - [`TrainingJob`]: a training, detached from the forecaster so that the runtime can run
//!   it on a worker thread while ticks go on; [`Forecaster::install`] puts the result in.
//!
//! The model is augurs' MSTL (one seasonal component per period the history holds twice)
//! with an AutoETS trend fitted on bucket means of the deseasonalised series ([`trend`]).
//! Each tick the forecast takes the model's shape from the newest sample on: the change
//! the model expects over the lead time is added to the newest value, so the level is
//! always the latest and retraining only has to keep the shape current. The interval comes
//! from the errors the forecaster actually made, at the same time of day where the
//! history has it (see [`accuracy::Ledger`]).

pub mod accuracy;
mod forecaster;
mod model;
mod settings;
pub mod trend;

pub use accuracy::Ledger;
pub use forecaster::{Forecaster, OutlookPoint, TrainingJob, WarmUp};
pub use model::{MIN_TRAINING_SAMPLES, Model, naive_error, train};
pub use settings::Settings;

/// Why a forecaster could not be set up or a model trained.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The evaluation interval is not a positive duration.
    #[error("the evaluation interval must be longer than 0, got {0}")]
    BadInterval(chrono::TimeDelta),
    /// The policy has no `predictive` block.
    #[error("policy `{0}` has no predictive block")]
    NotPredictive(String),
    /// Too little history to train on.
    #[error("not enough history to train on: {have} samples, at least {need} needed")]
    NotEnoughHistory {
        /// Samples available.
        have: usize,
        /// Samples needed.
        need: usize,
    },
    /// The decomposition or the trend model failed.
    #[error("training failed: {0}")]
    TrainingFailed(String),
}
