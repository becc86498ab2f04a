//! Ballast's runtime: the one async driver. It reads the clock, ticks, fetches metrics once
//! per tick, asks the core for decisions, records them, and has executors carry them out.

pub mod budget;
pub mod engine;
pub mod forecasts;
pub mod pushed;
pub mod targets;
pub mod telemetry;

pub use ballast_executor::{Executor, ExecutorError};
pub use engine::{Engine, EngineConfig, EngineError, TickPhases, TickReport};
pub use forecasts::{ForecastStatus, Forecasts, Phase, Verdict};
pub use pushed::{PushError, PushedMetrics, PushedSample, SeriesKey};
pub use targets::{ExecutorFactory, TargetBlock, Targets};
pub use telemetry::Telemetry;
