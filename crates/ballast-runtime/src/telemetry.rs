//! Prometheus metrics about Ballast itself, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::Arc;

use crate::budget::BudgetWatch;
use crate::forecasts::ForecastMetrics;

/// Label set with one `action` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// `scale_up`, `scale_down` or `hold`.
    pub action: String,
}

/// Label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What failed: `query`, `store`, `executor`, `policy`.
    pub kind: String,
}

/// Label set with one `phase` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// `policies`, `fetch`, `decide` or `save` (see [`crate::engine::TickPhases`]).
    pub phase: String,
}

/// The metrics, registered once.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    /// Policy evaluations.
    pub evaluations: Counter,
    /// Decisions by action.
    pub decisions: Family<ActionLabel, Counter>,
    /// Errors by kind.
    pub errors: Family<KindLabel, Counter>,
    /// Duration of engine ticks.
    pub tick_duration: Histogram,
    /// Duration of each phase of engine ticks.
    pub tick_phases: Family<PhaseLabel, Histogram>,
    /// Metric queries sent.
    pub queries: Counter,
    /// Policies stored.
    pub policies: Gauge,
    /// Policies enabled.
    pub policies_enabled: Gauge,
    /// Each policy's share of its hourly budget in use, and the alerts at 90 %.
    pub budget: BudgetWatch,
    /// Each predictive policy's forecast accuracy and trainings.
    pub forecasts: Arc<ForecastMetrics>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Registers every metric under the `ballast` prefix.
    pub fn new() -> Telemetry {
        let mut registry = Registry::with_prefix("ballast");
        let evaluations = Counter::default();
        let decisions = Family::<ActionLabel, Counter>::default();
        let errors = Family::<KindLabel, Counter>::default();
        let tick_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let tick_phases = Family::<PhaseLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 16))) as fn() -> Histogram,
        );
        let queries = Counter::default();
        let policies = Gauge::default();
        let policies_enabled = Gauge::default();
        registry.register("evaluations", "Policy evaluations", evaluations.clone());
        registry.register("decisions", "Decisions by action", decisions.clone());
        registry.register("errors", "Errors by kind", errors.clone());
        registry.register(
            "tick_duration_seconds",
            "Duration of engine ticks",
            tick_duration.clone(),
        );
        registry.register(
            "tick_phase_seconds",
            "Duration of each phase of engine ticks (policies, fetch, decide, save)",
            tick_phases.clone(),
        );
        registry.register("queries", "Metric queries sent", queries.clone());
        registry.register("policies", "Policies stored", policies.clone());
        registry.register(
            "policies_enabled",
            "Policies enabled",
            policies_enabled.clone(),
        );
        let budget = BudgetWatch::register(&mut registry);
        let forecasts = Arc::new(ForecastMetrics::register(&mut registry));
        Telemetry {
            registry,
            evaluations,
            decisions,
            errors,
            tick_duration,
            tick_phases,
            queries,
            policies,
            policies_enabled,
            budget,
            forecasts,
        }
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
