//! The core of Ballast: the policy format, its validation, and the decision pipeline.
//!
//! Architecture invariant: this crate does no IO, reads no clock and runs no async code.
//! Time comes in as a parameter (`now`), metric values as [`Observations`], and the result
//! is a [`Decision`] value; the runtime acts on it.

pub mod decide;
pub mod decision;
pub mod observe;
pub mod policy;
pub mod selector;
pub mod spec;
pub mod state;
pub mod validate;

pub use decide::{decide, decide_with_forecast};
pub use decision::{Action, Constraint, ConstraintStep, Decision, Proposal, Strategy};
pub use observe::{Accuracy, Forecast, MetricObservation, Observations, Sample};
pub use policy::{
    Cooldown, Lead, Metric, OnMetricError, Operator, Policy, Predictive, PredictiveMode, RateLimit,
    RateLimits, Rule, ScaleToZero, Schedule, Spare, SpareSchedule, Stabilization, TargetTracking,
    Timestamp,
};
pub use selector::Selector;
pub use spec::{Format, ParsedPolicy, PolicySpec, SyntaxError, parse_document};
pub use state::PolicyState;
pub use validate::{Invalid, Problem, validate, validate_all};

/// Reads and validates a policy document in one step: the policies, or every problem
/// (paths prefixed by the policy's place in the document).
pub fn load_policies(text: &str, format: Format) -> Result<Vec<Policy>, LoadError> {
    let parsed = parse_document(text, format).map_err(LoadError::Syntax)?;
    if parsed.is_empty() {
        return Err(LoadError::Empty);
    }
    let mut policies = Vec::new();
    let mut problems = Vec::new();
    for result in validate_all(&parsed) {
        match result {
            Ok(p) => policies.push(p),
            Err(mut more) => problems.append(&mut more),
        }
    }
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(LoadError::Invalid(problems))
    }
}

/// Why a policy document could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// Not YAML or JSON at all.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// The document holds no policy.
    #[error("the document holds no policy")]
    Empty,
    /// One or more policies are invalid.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}
