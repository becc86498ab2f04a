//! The backtest model of Ballast (`BACKTEST.md`): a load trace is turned into a grid of
//! ticks, a controller (a policy, the oracle, or a reference autoscaler) decides a desired
//! count at every tick, and the replica model turns those decisions into ready and allocated
//! replicas, a cost and the SPEC RG elasticity figures.
//!
//! - [`trace`]: reading and validating `timestamp_s,value` traces.
//! - [`grid`]: the scenario and the per-tick demand and required replicas.
//! - [`model`]: the replica model, the [`Controller`] interface and [`simulate`].
//! - [`timeline`]: the timeline CSV and the summary figures.
//! - [`oracle`], [`hpa`], [`keda`], [`mod@reference`]: the reference points.
//! - [`policy`]: a Ballast policy as a [`Controller`].
//! - [`chart`]: charts of timelines.
//! - [`tune`]: searching a policy's setting for the cheapest one that meets an SLO.
//!
//! The model reads no clock (time is the trace's) and does no IO of its own: only the
//! `from_path` and chart-writing conveniences touch files.

pub mod chart;
mod csv_input;
pub mod grid;
pub mod hpa;
pub mod keda;
pub mod model;
pub mod oracle;
pub mod policy;
pub mod reference;
pub mod timeline;
pub mod trace;
pub mod tune;

pub use grid::{Grid, GridError, Scenario, ScenarioError};
pub use hpa::{Autoscaler, Behavior, Hpa, HpaConfig, Metric};
pub use keda::{Keda, KedaConfig};
pub use model::{Controller, Run, Schedule, TickObservation, default_initial, simulate};
pub use oracle::{oracle_desired, run_oracle};
pub use reference::{Reference, run_reference};
pub use timeline::{Summary, TimelineError, TimelineRow, read_csv, summarize, write_csv};
pub use trace::{Trace, TraceError};
