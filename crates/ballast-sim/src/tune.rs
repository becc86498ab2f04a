//! Tuning a policy by backtest: one setting of the policy (its [`Knob`]) is searched over a
//! range on a trace, and the cheapest setting whose figures meet a service-level objective
//! ([`Slo`]) wins.
//!
//! The search assumes what holds for every knob here, give or take noise: the more headroom
//! a setting leaves, the more it costs and the less demand it leaves unserved. It tries an
//! evenly spaced grid over the range first, then bisects between the cheapest setting that
//! meets the objective and its cheaper neighbour that does not, a few times. Every setting
//! tried is kept, so a report can show the whole table and not only the winner.
//!
//! Adding a knob takes a variant of [`Knob`] and an arm in each of its `match`es: where it
//! lives in the policy, how to read and write it, and the range worth searching.

use std::fmt;
use std::str::FromStr;

use ballast_core::{Policy, PolicySpec};

use crate::grid::{Grid, Scenario};
use crate::model::{Run, default_initial, simulate};
use crate::policy::{BindError, PolicyController, SimMetric};
use crate::reference::{Reference, run_reference};
use crate::timeline::Summary;

/// Significant digits a searched setting is rounded to, so that tuned policies read well.
const DIGITS: i32 = 4;

/// A figure of a backtest summary that an SLO can bound. All are percentages where lower is
/// better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    /// Share of demand left unserved.
    Unserved,
    /// τ_U: share of ticks with fewer ready replicas than required.
    TauU,
    /// θ_U: mean relative shortfall of ready replicas.
    ThetaU,
    /// υ: instability.
    Instability,
}

impl Figure {
    /// Every figure, with the name an SLO uses for it.
    pub const ALL: [(&'static str, Figure); 4] = [
        ("unserved", Figure::Unserved),
        ("tau_u", Figure::TauU),
        ("theta_u", Figure::ThetaU),
        ("instability", Figure::Instability),
    ];

    /// The name an SLO uses (`unserved`, `tau_u`, `theta_u`, `instability`).
    pub fn name(self) -> &'static str {
        match self {
            Figure::Unserved => "unserved",
            Figure::TauU => "tau_u",
            Figure::ThetaU => "theta_u",
            Figure::Instability => "instability",
        }
    }

    /// The figure's symbol in reports (`unserved`, `τ_U`, `θ_U`, `υ`).
    pub fn symbol(self) -> &'static str {
        match self {
            Figure::Unserved => "unserved",
            Figure::TauU => "τ_U",
            Figure::ThetaU => "θ_U",
            Figure::Instability => "υ",
        }
    }

    /// The figure's value in a summary.
    pub fn of(self, s: &Summary) -> f64 {
        match self {
            Figure::Unserved => s.unserved,
            Figure::TauU => s.tau_u,
            Figure::ThetaU => s.theta_u,
            Figure::Instability => s.instability,
        }
    }

    /// The figure a name stands for: its SLO name, or its symbol, in any case and with or
    /// without the underscore (`tau_u`, `tauU`, `τ_U`).
    pub fn by_name(name: &str) -> Option<Figure> {
        let folded: String = name
            .chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        match folded.as_str() {
            "unserved" => Some(Figure::Unserved),
            "tauu" | "τu" => Some(Figure::TauU),
            "thetau" | "θu" => Some(Figure::ThetaU),
            "instability" | "υ" => Some(Figure::Instability),
            _ => None,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The upper bound of one objective: a percentage, or whatever a reference autoscaler
/// achieves on the same trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// At most this many percent.
    Percent(f64),
    /// At most the reference's own figure (`unserved<=hpa`).
    Reference(Reference),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Percent(p) => write!(f, "{p}%"),
            Bound::Reference(r) => f.write_str(r.name()),
        }
    }
}

/// One objective: `figure <= bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// The figure bounded.
    pub figure: Figure,
    /// Its upper bound.
    pub bound: Bound,
}

/// A service-level objective for a backtest: every objective must hold. Written as
/// `unserved<=0.1%,tau_u<=1%`; a bound is a percentage (the `%` is optional) or the name of a
/// reference autoscaler (`hpa`, `keda`, `oracle`) whose figure on the same trace it must not
/// exceed.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// The objectives, as written.
    pub objectives: Vec<Objective>,
}

/// Why an SLO could not be read. Each variant names the part of the text that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SloError {
    /// Nothing was given.
    #[error("the SLO is empty: give objectives such as `unserved<=0.1%,tau_u<=1%`")]
    Empty,
    /// An objective between commas is blank.
    #[error("objective {position} of the SLO is empty (a stray comma?)")]
    EmptyObjective {
        /// Its position, from 1.
        position: usize,
    },
    /// An objective has no comparison.
    #[error("`{part}`: an objective is `figure<=bound`, such as `unserved<=0.1%`")]
    NoComparison {
        /// The objective as written.
        part: String,
    },
    /// An objective compares with something other than `<=`.
    #[error(
        "`{part}`: `{operator}` is not supported; an SLO bounds a figure from above, with `<=`"
    )]
    WrongComparison {
        /// The objective as written.
        part: String,
        /// The comparison found.
        operator: String,
    },
    /// The figure is not one an SLO can bound.
    #[error(
        "`{part}`: unknown figure `{name}`; an SLO can bound {}",
        figure_names()
    )]
    UnknownFigure {
        /// The objective as written.
        part: String,
        /// The figure's name as written.
        name: String,
    },
    /// The bound is neither a percentage nor a reference.
    #[error(
        "`{part}`: bound `{bound}` is neither a percentage (such as `0.1%`) nor a reference autoscaler (`hpa`, `keda`, `oracle`)"
    )]
    BadBound {
        /// The objective as written.
        part: String,
        /// The bound as written.
        bound: String,
    },
    /// The bound is a negative or non-finite percentage.
    #[error("`{part}`: the bound must be a finite percentage of at least 0")]
    OutOfRange {
        /// The objective as written.
        part: String,
    },
    /// The same figure is bounded twice.
    #[error("`{part}`: {figure} is already bounded earlier in the SLO")]
    Repeated {
        /// The objective as written.
        part: String,
        /// The figure.
        figure: Figure,
    },
}

fn figure_names() -> String {
    Figure::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Slo {
    type Err = SloError;

    fn from_str(text: &str) -> Result<Slo, SloError> {
        if text.trim().is_empty() {
            return Err(SloError::Empty);
        }
        let mut objectives: Vec<Objective> = Vec::new();
        for (i, part) in text.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                return Err(SloError::EmptyObjective { position: i + 1 });
            }
            let objective = objective(part)?;
            if objectives.iter().any(|o| o.figure == objective.figure) {
                return Err(SloError::Repeated {
                    part: part.to_owned(),
                    figure: objective.figure,
                });
            }
            objectives.push(objective);
        }
        Ok(Slo { objectives })
    }
}

/// Reads one `figure<=bound`.
fn objective(part: &str) -> Result<Objective, SloError> {
    let owned = || part.to_owned();
    let (name, operator, bound) =
        split_comparison(part).ok_or_else(|| SloError::NoComparison { part: owned() })?;
    if operator != "<=" && operator != "≤" {
        return Err(SloError::WrongComparison {
            part: owned(),
            operator: operator.to_owned(),
        });
    }
    let figure = Figure::by_name(name).ok_or_else(|| SloError::UnknownFigure {
        part: owned(),
        name: name.to_owned(),
    })?;
    let reference = Reference::ALL
        .into_iter()
        .find(|r| r.name().eq_ignore_ascii_case(bound));
    let bound = match reference {
        Some(r) => Bound::Reference(r),
        None => {
            let number = bound.strip_suffix('%').unwrap_or(bound).trim_end();
            let value: f64 = number.parse().map_err(|_| SloError::BadBound {
                part: owned(),
                bound: bound.to_owned(),
            })?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(SloError::OutOfRange { part: owned() });
            }
            Bound::Percent(value)
        }
    };
    Ok(Objective { figure, bound })
}

/// Splits `name OP bound` at the first comparison operator, each side trimmed.
fn split_comparison(part: &str) -> Option<(&str, &str, &str)> {
    let start = part.find(['<', '>', '=', '≤', '≥'])?;
    let rest = &part[start..];
    let len = ["<=", ">=", "==", "≤", "≥", "<", ">", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .map_or(1, str::len);
    Some((part[..start].trim(), &rest[..len], rest[len..].trim()))
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, o) in self.objectives.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ≤ {}", o.figure, o.bound)?;
        }
        Ok(())
    }
}

impl Slo {
    /// The objectives with every bound as a number: a reference's bound is its figure in
    /// `references` (a reference not run there bounds nothing, which cannot happen for
    /// [`tune`], which runs them all).
    pub fn resolve(&self, references: &[(Reference, Summary)]) -> Vec<(Figure, f64)> {
        self.objectives
            .iter()
            .map(|o| {
                let limit = match o.bound {
                    Bound::Percent(p) => p,
                    Bound::Reference(r) => references
                        .iter()
                        .find(|(which, _)| *which == r)
                        .map_or(f64::INFINITY, |(_, s)| o.figure.of(s)),
                };
                (o.figure, limit)
            })
            .collect()
    }
}

/// Whether `summary` meets every resolved objective. A figure equal to its bound meets it
/// (within float noise: the figures are sums over many ticks).
pub fn meets(summary: &Summary, limits: &[(Figure, f64)]) -> bool {
    limits
        .iter()
        .all(|&(figure, limit)| figure.of(summary) <= limit + 1e-9 * limit.abs().max(1e-3))
}

/// The setting of a policy that a tune searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Knob {
    /// `predictive.confidence`: the confidence level of the forecast interval whose upper
    /// bound the predictive strategy provisions for. A higher level leaves more headroom.
    Confidence,
    /// `target_tracking.target`: the value per replica the policy keeps. A lower target
    /// leaves more headroom: `100 / target` on utilization, `capacity / target` on a load.
    Target,
    /// The thresholds of the rules on one metric, moved together: the setting is the first
    /// scale-up rule's threshold (the first scale-down rule's when there is no scale-up
    /// rule), and every other rule on the same metric keeps its ratio to it, so the band
    /// between scaling up and scaling down keeps its shape.
    Thresholds,
}

impl Knob {
    /// Every knob, in the order a policy's default knob is chosen.
    pub const ALL: [Knob; 3] = [Knob::Confidence, Knob::Target, Knob::Thresholds];

    /// The name used to choose it (`confidence`, `target`, `thresholds`).
    pub fn name(self) -> &'static str {
        match self {
            Knob::Confidence => "confidence",
            Knob::Target => "target",
            Knob::Thresholds => "thresholds",
        }
    }

    /// The knob of this name.
    pub fn by_name(name: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether `policy` has this setting.
    pub fn applies_to(self, policy: &Policy) -> bool {
        match self {
            Knob::Confidence => policy.predictive.is_some(),
            Knob::Target => policy.target_tracking.is_some(),
            Knob::Thresholds => anchor(policy).is_some(),
        }
    }

    /// The knobs `policy` has, in [`Knob::ALL`]'s order.
    pub fn available(policy: &Policy) -> Vec<Knob> {
        Knob::ALL
            .into_iter()
            .filter(|k| k.applies_to(policy))
            .collect()
    }

    /// `requested` if `policy` has it, else the first knob it has.
    pub fn choose(policy: &Policy, requested: Option<Knob>) -> Result<Knob, TuneError> {
        let available = Knob::available(policy);
        match requested {
            Some(k) if available.contains(&k) => Ok(k),
            Some(k) => Err(TuneError::KnobAbsent {
                policy: policy.name.clone(),
                knob: k,
                available,
            }),
            None => available
                .first()
                .copied()
                .ok_or_else(|| TuneError::NothingToTune {
                    policy: policy.name.clone(),
                }),
        }
    }

    /// The field the setting is written to, as a policy-file path.
    pub fn field(self, policy: &Policy) -> String {
        match self {
            Knob::Confidence => "predictive.confidence".to_owned(),
            Knob::Target => "target_tracking.target".to_owned(),
            Knob::Thresholds => match anchor(policy) {
                Some(Anchor { up: true, .. }) => "scale_up_rules[0].threshold".to_owned(),
                _ => "scale_down_rules[0].threshold".to_owned(),
            },
        }
    }

    /// The setting in `policy` as written.
    pub fn current(self, policy: &Policy) -> Option<f64> {
        match self {
            Knob::Confidence => policy.predictive.as_ref().map(|p| p.confidence),
            Knob::Target => policy.target_tracking.map(|t| t.target),
            Knob::Thresholds => anchor(policy).map(|a| a.threshold),
        }
    }

    /// The simulated metric the setting is compared with, when it names one.
    fn metric(self, policy: &Policy) -> Option<SimMetric> {
        let index = match self {
            // A confidence level is not compared with the metric.
            Knob::Confidence => return None,
            Knob::Target => policy.target_tracking?.metric,
            Knob::Thresholds => anchor(policy)?.metric,
        };
        SimMetric::by_name(&policy.metrics.get(index)?.name)
    }

    /// The range searched when none is given.
    ///
    /// - Confidence: 0.5 (the forecast's median) to 0.99.
    /// - Target on `utilization`: 40 % up to just under `100 / (1 + tolerance)`, above which
    ///   saturated utilization falls inside the tolerance and never scales up.
    /// - Target on `load_per_replica` or `demand`: a headroom of 2.5 down to 1, that is
    ///   `0.4 · capacity` to `capacity`.
    /// - Thresholds on `utilization`: half the written threshold up to 1.25 times it, at
    ///   most 99.
    /// - Anything else: half to twice the written setting.
    pub fn default_range(self, policy: &Policy, scenario: &Scenario) -> Option<(f64, f64)> {
        let current = self.current(policy)?;
        let metric = self.metric(policy);
        let range = match (self, metric) {
            (Knob::Confidence, _) => (0.5, 0.99),
            (Knob::Target, Some(SimMetric::Utilization)) => {
                let tolerance = policy.target_tracking.map_or(0.0, |t| t.tolerance);
                (40.0, (100.0 / (1.0 + tolerance)).floor() - 1.0)
            }
            (Knob::Target, Some(SimMetric::LoadPerReplica | SimMetric::Demand)) => {
                (0.4 * scenario.capacity, scenario.capacity)
            }
            (Knob::Thresholds, Some(SimMetric::Utilization)) => {
                (0.5 * current, (1.25 * current).min(99.0))
            }
            _ => (0.5 * current, 2.0 * current),
        };
        Some((round_setting(range.0), round_setting(range.1)))
    }

    /// The headroom a setting leaves, where the metric makes it plain: `100 / setting` on
    /// utilization, `capacity / setting` on a load per replica or the demand.
    pub fn headroom(self, policy: &Policy, scenario: &Scenario, value: f64) -> Option<f64> {
        match self.metric(policy)? {
            SimMetric::Utilization => Some(100.0 / value),
            SimMetric::LoadPerReplica | SimMetric::Demand => Some(scenario.capacity / value),
            _ => None,
        }
    }

    /// `policy`'s spec with the setting changed to `value`.
    pub fn apply(self, policy: &Policy, value: f64) -> PolicySpec {
        let mut spec = policy.spec.clone();
        match self {
            Knob::Confidence => {
                if let Some(p) = spec.predictive.as_mut() {
                    p.confidence = Some(value);
                }
            }
            Knob::Target => {
                if let Some(tt) = spec.target_tracking.as_mut() {
                    tt.target = value;
                }
            }
            Knob::Thresholds => {
                if let Some(a) = anchor(policy) {
                    let moved = |threshold: f64| {
                        if a.threshold == 0.0 {
                            threshold + value
                        } else {
                            round_setting(threshold * value / a.threshold)
                        }
                    };
                    let rules = policy
                        .scale_up_rules
                        .iter()
                        .zip(spec.scale_up_rules.iter_mut())
                        .chain(
                            policy
                                .scale_down_rules
                                .iter()
                                .zip(spec.scale_down_rules.iter_mut()),
                        );
                    for (rule, written) in rules {
                        if rule.metric == a.metric {
                            written.threshold = moved(rule.threshold);
                        }
                    }
                    // The anchor itself gets exactly the value searched.
                    let first = if a.up {
                        spec.scale_up_rules.first_mut()
                    } else {
                        spec.scale_down_rules.first_mut()
                    };
                    if let Some(first) = first {
                        first.threshold = value;
                    }
                }
            }
        }
        spec
    }

    /// `policy` with the setting changed to `value`, validated again.
    pub fn tuned(self, policy: &Policy, value: f64) -> Result<Policy, TuneError> {
        let spec = self.apply(policy, value);
        ballast_core::validate(&spec).map_err(|invalid| TuneError::Invalid {
            field: self.field(policy),
            value,
            problems: invalid
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Knob {
    type Err = String;

    fn from_str(s: &str) -> Result<Knob, String> {
        Knob::by_name(s).ok_or_else(|| {
            let names: Vec<&str> = Knob::ALL.iter().map(|k| k.name()).collect();
            format!("unknown knob `{s}`; the knobs are {}", names.join(", "))
        })
    }
}

/// The rule whose threshold is the [`Knob::Thresholds`] setting.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    up: bool,
    metric: usize,
    threshold: f64,
}

fn anchor(policy: &Policy) -> Option<Anchor> {
    let up = policy.scale_up_rules.first().map(|r| (true, r));
    let down = policy.scale_down_rules.first().map(|r| (false, r));
    up.or(down).map(|(up, r)| Anchor {
        up,
        metric: r.metric,
        threshold: r.threshold,
    })
}

/// Rounds a setting to [`DIGITS`] significant digits.
pub fn round_setting(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let shift = DIGITS - 1 - x.abs().log10().floor() as i32;
    // Dividing by an exact power of ten (rather than multiplying by an inexact one) gives
    // the double nearest the decimal, which prints as that decimal.
    if shift >= 0 {
        let scale = 10f64.powi(shift);
        (x * scale).round() / scale
    } else {
        let scale = 10f64.powi(-shift);
        (x / scale).round() * scale
    }
}

/// How a tune searches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    /// Settings of the first, evenly spaced pass over the range (at least 2).
    pub points: usize,
    /// Bisection steps after it.
    pub refine: usize,
    /// The range searched; `None` for the knob's [`Knob::default_range`].
    pub range: Option<(f64, f64)>,
}

impl Default for Search {
    /// Nine points and four bisection steps over the knob's default range: fourteen
    /// backtests at most (with the setting as written), and a winner within 1/128 of the
    /// range of the best one.
    fn default() -> Search {
        Search {
            points: 9,
            refine: 4,
            range: None,
        }
    }
}

/// One setting tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The setting.
    pub value: f64,
    /// The headroom it leaves, where the metric makes it plain ([`Knob::headroom`]).
    pub headroom: Option<f64>,
    /// The backtest's figures.
    pub summary: Summary,
    /// Whether every objective holds.
    pub meets: bool,
    /// Tried during the bisection rather than the first pass.
    pub refined: bool,
}

/// The outcome of a tune.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    /// The policy's name.
    pub policy: String,
    /// The knob searched.
    pub knob: Knob,
    /// The field it is written to.
    pub field: String,
    /// The setting as the policy file has it.
    pub original: f64,
    /// The range searched.
    pub range: (f64, f64),
    /// The objectives with their bounds as numbers.
    pub limits: Vec<(Figure, f64)>,
    /// The oracle, HPA and KEDA on the same trace and scenario.
    pub references: Vec<(Reference, Summary)>,
    /// Every setting tried, in the order tried.
    pub trials: Vec<Trial>,
}

impl Tuning {
    /// The cheapest setting that meets the SLO (the one that leaves less demand unserved
    /// among equally cheap ones), if any does.
    pub fn best(&self) -> Option<&Trial> {
        cheapest_meeting(&self.trials).map(|i| &self.trials[i])
    }

    /// The trials ordered by setting.
    pub fn by_setting(&self) -> Vec<&Trial> {
        let mut sorted: Vec<&Trial> = self.trials.iter().collect();
        sorted.sort_by(|a, b| a.value.total_cmp(&b.value));
        sorted
    }

    /// A reference's figures.
    pub fn reference(&self, which: Reference) -> Option<&Summary> {
        self.references
            .iter()
            .find(|(r, _)| *r == which)
            .map(|(_, s)| s)
    }

    /// The oracle's cost, which reports divide costs by.
    pub fn oracle_cost(&self) -> Option<f64> {
        self.reference(Reference::Oracle).map(|s| s.cost)
    }

    /// Whether the winner is the first or last setting of the range, so that a wider range
    /// might hold a cheaper one.
    pub fn best_at_range_edge(&self) -> bool {
        self.best()
            .is_some_and(|b| b.value == self.range.0 || b.value == self.range.1)
    }
}

/// Why a tune could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TuneError {
    /// The policy has no setting a tune knows how to search.
    #[error(
        "policy `{policy}` has nothing to tune: it has no `predictive` block, no `target_tracking` and no scaling rules"
    )]
    NothingToTune {
        /// The policy.
        policy: String,
    },
    /// The knob asked for is not in the policy.
    #[error(
        "policy `{policy}` has no `{knob}` setting to tune; it has: {}",
        if available.is_empty() { "none".to_owned() } else {
            available.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        }
    )]
    KnobAbsent {
        /// The policy.
        policy: String,
        /// The knob asked for.
        knob: Knob,
        /// The knobs it has.
        available: Vec<Knob>,
    },
    /// The range is empty or not finite.
    #[error("the range {lo}..{hi} cannot be searched: it needs finite bounds with lo < hi")]
    BadRange {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Fewer than two points in the first pass.
    #[error("the search needs at least 2 points, got {0}")]
    TooFewPoints(usize),
    /// A setting made the policy invalid.
    #[error("{field} = {value} makes the policy invalid: {problems}")]
    Invalid {
        /// The field set.
        field: String,
        /// The value set.
        value: f64,
        /// The validation problems.
        problems: String,
    },
    /// The policy reads a metric the backtest does not simulate.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// Backtests `policy` with its `knob` set to `value`.
pub fn evaluate(
    policy: &Policy,
    knob: Knob,
    value: f64,
    grid: &Grid,
    scenario: &Scenario,
) -> Result<Run, TuneError> {
    let tuned = knob.tuned(policy, value)?;
    let mut controller = PolicyController::new(&tuned, scenario.price)?;
    Ok(simulate(
        grid,
        scenario,
        &tuned.name,
        default_initial(grid, scenario),
        &mut controller,
        &mut |_, _| {},
    ))
}

/// Searches `knob` of `policy` on `grid` for the cheapest setting that meets `slo`, as the
/// module documentation describes, and returns every setting tried with the reference
/// autoscalers' figures. `on_trial` is called after each backtest.
///
/// The first pass tries `search.points` settings evenly spaced over the range (both ends
/// included, rounded to four significant digits), and the setting as written when the range
/// holds it. Then, up to `search.refine` times, the
/// cheapest setting that meets the SLO is compared with its nearest tried neighbours: if
/// one of them is cheaper (it fails the SLO, or it would have won), the setting halfway to
/// it is tried. The search stops early when no neighbour is cheaper, when nothing meets
/// the SLO, or when the halfway setting rounds to one already tried.
pub fn tune(
    policy: &Policy,
    knob: Knob,
    grid: &Grid,
    scenario: &Scenario,
    slo: &Slo,
    search: &Search,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<Tuning, TuneError> {
    let knob = Knob::choose(policy, Some(knob))?;
    let (lo, hi) = match search.range {
        Some(r) => r,
        None => knob
            .default_range(policy, scenario)
            .ok_or_else(|| TuneError::NothingToTune {
                policy: policy.name.clone(),
            })?,
    };
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(TuneError::BadRange { lo, hi });
    }
    if search.points < 2 {
        return Err(TuneError::TooFewPoints(search.points));
    }
    // Bind once up front, so that an unsimulated metric fails before any work.
    PolicyController::new(policy, scenario.price)?;

    let references: Vec<(Reference, Summary)> = Reference::ALL
        .into_iter()
        .map(|r| (r, run_reference(grid, scenario, r, &mut |_, _| {}).summary))
        .collect();
    let limits = slo.resolve(&references);

    let mut trials: Vec<Trial> = Vec::new();
    let mut attempt = |value: f64, refined: bool, trials: &mut Vec<Trial>| {
        let run = evaluate(policy, knob, value, grid, scenario)?;
        let trial = Trial {
            value,
            headroom: knob.headroom(policy, scenario, value),
            meets: meets(&run.summary, &limits),
            summary: run.summary,
            refined,
        };
        on_trial(&trial);
        trials.push(trial);
        Ok::<(), TuneError>(())
    };

    let step = (hi - lo) / (search.points - 1) as f64;
    for i in 0..search.points {
        let value = if i + 1 == search.points {
            hi
        } else {
            round_setting(lo + step * i as f64)
        };
        if !trials.iter().any(|t| t.value == value) {
            attempt(value, false, &mut trials)?;
        }
    }
    // The setting as written, for comparison, when the range holds it.
    if let Some(original) = knob.current(policy)
        && (lo..=hi).contains(&original)
        && !trials.iter().any(|t| t.value == original)
    {
        attempt(original, false, &mut trials)?;
    }
    for _ in 0..search.refine {
        let Some(next) = next_setting(&trials) else {
            break;
        };
        attempt(next, true, &mut trials)?;
    }

    Ok(Tuning {
        policy: policy.name.clone(),
        knob,
        field: knob.field(policy),
        original: knob.current(policy).unwrap_or(f64::NAN),
        range: (lo, hi),
        limits,
        references,
        trials,
    })
}

fn cheapest_meeting(trials: &[Trial]) -> Option<usize> {
    trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.meets)
        .min_by(|(_, a), (_, b)| {
            a.summary
                .cost
                .total_cmp(&b.summary.cost)
                .then(a.summary.unserved.total_cmp(&b.summary.unserved))
        })
        .map(|(i, _)| i)
}

/// The setting halfway between the current winner and its cheaper nearest neighbour, if
/// there is such a neighbour and the halfway point is new.
fn next_setting(trials: &[Trial]) -> Option<f64> {
    let best = &trials[cheapest_meeting(trials)?];
    let below = trials
        .iter()
        .filter(|t| t.value < best.value)
        .max_by(|a, b| a.value.total_cmp(&b.value));
    let above = trials
        .iter()
        .filter(|t| t.value > best.value)
        .min_by(|a, b| a.value.total_cmp(&b.value));
    let toward = [below, above]
        .into_iter()
        .flatten()
        .filter(|t| t.summary.cost < best.summary.cost)
        .min_by(|a, b| a.summary.cost.total_cmp(&b.summary.cost))?;
    let middle = round_setting((best.value + toward.value) / 2.0);
    (!trials.iter().any(|t| t.value == middle)).then_some(middle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_to_four_significant_digits() {
        assert_eq!(round_setting(78.123_456), 78.12);
        assert_eq!(round_setting(0.012_345_6), 0.01235);
        assert_eq!(round_setting(123_456.0), 123_500.0);
        assert_eq!(round_setting(89.0), 89.0);
        assert_eq!(round_setting(0.0), 0.0);
        assert_eq!(format!("{}", round_setting(64.5 + 0.1 + 0.2)), "64.8");
    }

    fn trial(value: f64, cost: f64, meets: bool) -> Trial {
        Trial {
            value,
            headroom: None,
            summary: Summary {
                ticks: 1,
                cost,
                theta_u: 0.0,
                theta_o: 0.0,
                tau_u: 0.0,
                tau_o: 0.0,
                instability: 0.0,
                unserved: 0.0,
                actions: 0,
            },
            meets,
            refined: false,
        }
    }

    #[test]
    fn bisection_heads_for_the_cheaper_failing_neighbour() {
        // Cost falls with the setting; 60 meets the SLO, 70 does not.
        let trials = [
            trial(50.0, 10.0, true),
            trial(60.0, 8.0, true),
            trial(70.0, 6.0, false),
        ];
        assert_eq!(next_setting(&trials), Some(65.0));
        // Reversed direction: cost rises with the setting.
        let trials = [
            trial(50.0, 6.0, false),
            trial(60.0, 8.0, true),
            trial(70.0, 10.0, true),
        ];
        assert_eq!(next_setting(&trials), Some(55.0));
    }

    #[test]
    fn bisection_stops_without_a_cheaper_neighbour_or_a_winner() {
        let trials = [trial(50.0, 10.0, true), trial(60.0, 12.0, false)];
        assert_eq!(next_setting(&trials), None);
        let trials = [trial(50.0, 10.0, false), trial(60.0, 8.0, false)];
        assert_eq!(next_setting(&trials), None);
        // Halfway rounds onto a setting already tried.
        let trials = [trial(50.0, 10.0, true), trial(50.01, 8.0, false)];
        assert_eq!(next_setting(&trials), None);
    }

    #[test]
    fn meeting_a_bound_exactly_counts() {
        let mut s = trial(1.0, 1.0, true).summary;
        s.unserved = 0.004;
        assert!(meets(&s, &[(Figure::Unserved, 0.004)]));
        assert!(!meets(&s, &[(Figure::Unserved, 0.0039)]));
        s.unserved = 0.0;
        assert!(meets(&s, &[(Figure::Unserved, 0.0)]));
    }
}
