//! Validation: a [`PolicySpec`] becomes a [`Policy`], or every problem is reported at once,
//! each with its field path and a plain reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use chrono_tz::Tz;

use crate::policy::{
    Cooldown, Lead, Metric, OnMetricError, Operator, Policy, Predictive, PredictiveMode, RateLimit,
    RateLimits, Rule, ScaleToZero, Schedule, Spare, SpareSchedule, Stabilization, TargetTracking,
};
use crate::spec::{
    DurationSpec, OnMetricErrorSpec, ParsedPolicy, PolicySpec, PredictiveSpec, RateLimitSpec,
    RuleSpec, ScaleToZeroBlock, ScaleToZeroSpec, SpareSpec, closest,
};

/// Default cooldown when the policy sets none (seconds).
pub const DEFAULT_COOLDOWN_SECONDS: u64 = 300;
/// Default staleness limit: Prometheus' own lookback delta.
pub const DEFAULT_MAX_STALENESS_SECONDS: i64 = 300;
/// Default target-tracking tolerance, as Kubernetes' HPA.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// Default idle time before scaling to zero, as KEDA's cooldown period.
pub const DEFAULT_IDLE_SECONDS: i64 = 300;
/// Default rate-limit period.
pub const DEFAULT_RATE_PERIOD_SECONDS: i64 = 60;
/// Default confidence level of the predictive strategy's interval.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;
/// Default provisioning time of the predictive strategy (BACKTEST.md's default startup).
pub const DEFAULT_PROVISIONING_SECONDS: i64 = 120;
/// Default history the predictive model is trained on.
pub const DEFAULT_HISTORY_SECONDS: i64 = 14 * 86_400;
/// Default seasonal periods of the predictive model: a day and a week.
pub const DEFAULT_SEASONALITY_SECONDS: [i64; 2] = [86_400, 7 * 86_400];
/// Default interval between trainings of the predictive model.
pub const DEFAULT_RETRAIN_SECONDS: i64 = 3_600;
/// Default MASE above which the predictive strategy stands aside.
pub const DEFAULT_MAX_MASE: f64 = 1.0;
/// Default span over which forecasts are scored.
pub const DEFAULT_ACCURACY_WINDOW_SECONDS: i64 = 86_400;
/// Metric sources a policy may name.
pub const SOURCES: &[&str] = &["prometheus", "pushed"];

/// One thing wrong with a policy: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path such as `scale_up_rules[1].duration`; empty for the policy as a whole.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same problem, with `prefix` (such as `[2]`) put before its path.
    pub fn prefixed(mut self, prefix: &str) -> Problem {
        if !prefix.is_empty() {
            self.path = if self.path.is_empty() {
                prefix.to_owned()
            } else if self.path.starts_with('[') {
                format!("{prefix}{}", self.path)
            } else {
                format!("{prefix}.{}", self.path)
            };
        }
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Validation failed; every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Invalid(pub Vec<Problem>);

/// Validates a list of parsed policies together: each on its own, and names unique across
/// all of them. Returns, per policy, the validated policy or its problems (paths prefixed by
/// the policy's location in its document).
pub fn validate_all(parsed: &[ParsedPolicy]) -> Vec<Result<Policy, Vec<Problem>>> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    parsed
        .iter()
        .map(|p| {
            let mut problems: Vec<Problem> = p.problems.clone();
            let mut policy = None;
            if let Some(spec) = &p.spec {
                if !spec.name.is_empty() {
                    let here = if p.location.is_empty() {
                        "this document".to_owned()
                    } else {
                        p.location.clone()
                    };
                    if let Some(first) = seen.get(&spec.name) {
                        problems.push(Problem::new(
                            "name",
                            format!(
                                "duplicate policy name `{}` (first used at {first})",
                                spec.name
                            ),
                        ));
                    } else {
                        seen.insert(spec.name.clone(), here);
                    }
                }
                match validate(spec) {
                    Ok(valid) => policy = Some(valid),
                    Err(Invalid(more)) => problems.extend(more),
                }
            }
            if problems.is_empty() {
                policy.ok_or_else(Vec::new)
            } else {
                Err(problems
                    .into_iter()
                    .map(|pr| pr.prefixed(&p.location))
                    .collect())
            }
        })
        .collect()
}

/// Validates one policy.
pub fn validate(spec: &PolicySpec) -> Result<Policy, Invalid> {
    let mut v = Validator {
        spec,
        problems: Vec::new(),
        metrics: Vec::new(),
        referenced: BTreeSet::new(),
        unresolved: false,
    };
    let policy = v.run();
    if v.problems.is_empty() {
        Ok(policy)
    } else {
        Err(Invalid(v.problems))
    }
}

struct Validator<'a> {
    spec: &'a PolicySpec,
    problems: Vec<Problem>,
    metrics: Vec<Metric>,
    /// Metrics some field refers to, even a field that is otherwise wrong.
    referenced: BTreeSet<usize>,
    /// A bare name matched no definition.
    unresolved: bool,
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn run(&mut self) -> Policy {
        let spec = self.spec;
        self.check_name();
        if let Some(target) = &spec.target {
            match target.get("type") {
                Some(serde_json::Value::String(t)) if !t.is_empty() => {}
                Some(_) => self.problem("target.type", "must be a non-empty string"),
                None => self.problem("target", "needs a `type` naming the executor"),
            }
        }
        let max_replicas = match spec.max_replicas {
            Some(0) => {
                self.problem("max_replicas", "must be at least 1");
                1
            }
            Some(m) => m,
            None => {
                self.problem("max_replicas", "is required");
                spec.min_replicas.max(1)
            }
        };
        if spec.min_replicas > max_replicas && spec.max_replicas.is_some() {
            self.problem(
                "min_replicas",
                format!(
                    "min_replicas ({}) is greater than max_replicas ({max_replicas})",
                    spec.min_replicas
                ),
            );
        }
        let evaluation_interval = spec
            .evaluation_interval
            .as_ref()
            .and_then(|d| self.positive_duration("evaluation_interval", d));

        let base = spec.cooldown_seconds.unwrap_or(DEFAULT_COOLDOWN_SECONDS);
        // Through the duration check, so that a huge value is a problem rather than a panic.
        let base = self
            .duration("cooldown_seconds", &DurationSpec::Seconds(base as f64))
            .unwrap_or(TimeDelta::zero());
        let cooldown = Cooldown {
            scale_up: spec
                .scale_up_cooldown
                .as_ref()
                .and_then(|d| self.duration("scale_up_cooldown", d))
                .unwrap_or(base),
            scale_down: spec
                .scale_down_cooldown
                .as_ref()
                .and_then(|d| self.duration("scale_down_cooldown", d))
                .unwrap_or(base),
        };

        self.define_metrics(evaluation_interval);
        let scale_up_rules = self.rules("scale_up_rules", &spec.scale_up_rules, true);
        let scale_down_rules = self.rules("scale_down_rules", &spec.scale_down_rules, false);
        self.check_overlap(&scale_up_rules, &scale_down_rules);

        let target_tracking = spec.target_tracking.as_ref().and_then(|tt| {
            let metric = self.metric_ref("target_tracking.metric", &tt.metric);
            if !(tt.target.is_finite() && tt.target > 0.0) {
                self.problem("target_tracking.target", "must be a number greater than 0");
            }
            let tolerance = tt.tolerance.unwrap_or(DEFAULT_TOLERANCE);
            if !(tolerance.is_finite() && (0.0..1.0).contains(&tolerance)) {
                self.problem(
                    "target_tracking.tolerance",
                    "must be at least 0 and below 1 (a fraction such as 0.1)",
                );
            }
            Some(TargetTracking {
                metric: metric?,
                target: tt.target,
                tolerance,
            })
        });

        let schedules = self.schedules(spec.min_replicas, max_replicas);

        let stabilization = match &spec.stabilization {
            None => Stabilization::default(),
            Some(s) => Stabilization {
                scale_up: s
                    .scale_up
                    .as_ref()
                    .and_then(|d| self.duration("stabilization.scale_up", d))
                    .unwrap_or_default(),
                scale_down: s
                    .scale_down
                    .as_ref()
                    .and_then(|d| self.duration("stabilization.scale_down", d))
                    .unwrap_or_default(),
            },
        };
        let rate_limits = match &spec.rate_limits {
            None => RateLimits::default(),
            Some(r) => RateLimits {
                scale_up: r
                    .scale_up
                    .as_ref()
                    .and_then(|l| self.rate_limit("rate_limits.scale_up", l)),
                scale_down: r
                    .scale_down
                    .as_ref()
                    .and_then(|l| self.rate_limit("rate_limits.scale_down", l)),
            },
        };

        if let Some(price) = spec.price_per_replica_hour
            && !(price.is_finite() && price >= 0.0)
        {
            self.problem("price_per_replica_hour", "must be a number of at least 0");
        }
        if let Some(budget) = spec.max_hourly_cost {
            if !(budget.is_finite() && budget > 0.0) {
                self.problem("max_hourly_cost", "must be a number greater than 0");
            } else if let Some(price) = spec.price_per_replica_hour.filter(|p| p.is_finite()) {
                let floor_cost = f64::from(spec.min_replicas) * price;
                if budget < floor_cost {
                    self.problem(
                        "max_hourly_cost",
                        format!(
                            "{budget} is below the cost of min_replicas: {} × {price} = {floor_cost} per hour",
                            spec.min_replicas
                        ),
                    );
                }
            }
        }

        let on_metric_error = match &spec.on_metric_error {
            None => OnMetricError::Hold,
            Some(OnMetricErrorSpec::Word(w)) if w == "hold" => OnMetricError::Hold,
            Some(OnMetricErrorSpec::Word(w)) => {
                self.problem(
                    "on_metric_error",
                    format!("unknown value `{w}`: use `hold` or `{{fallback: N}}`"),
                );
                OnMetricError::Hold
            }
            Some(OnMetricErrorSpec::Fallback { fallback }) => {
                if *fallback < spec.min_replicas || *fallback > max_replicas {
                    self.problem(
                        "on_metric_error.fallback",
                        format!(
                            "{fallback} is outside min_replicas..max_replicas ({}..{max_replicas})",
                            spec.min_replicas
                        ),
                    );
                }
                OnMetricError::Fallback(*fallback)
            }
        };

        let predictive = spec.predictive.as_ref().and_then(|p| self.predictive(p));
        let spare = spec.spare.as_ref().and_then(|s| self.spare(s));

        let scale_to_zero = self.scale_to_zero(&target_tracking, &scale_up_rules);
        if let Some(z) = &scale_to_zero {
            let m = &self.metrics[z.metric];
            if m.per_replica {
                self.problem(
                    "scale_to_zero.metric",
                    format!(
                        "`{}` is per replica, so it has no value at zero replicas and could never wake the target; use a total such as a queue length or request rate",
                        m.name
                    ),
                );
            }
        }
        // A defined metric nothing reads would still be fetched, and its failures would hold
        // every scale-down.
        let unused: Vec<String> = self
            .metrics
            .iter()
            .enumerate()
            // A reference that did not resolve was probably meant for one of these; it is
            // reported already.
            .filter(|_| !self.unresolved)
            .filter(|(i, m)| m.defined && !self.referenced.contains(i))
            .map(|(_, m)| m.name.clone())
            .collect();
        for name in unused {
            self.problem(
                format!("metrics.{name}"),
                "is defined but no rule, target tracking, predictive or scale_to_zero reads it",
            );
        }

        if spec.scale_up_rules.is_empty()
            && spec.scale_down_rules.is_empty()
            && spec.target_tracking.is_none()
            && spec.schedules.is_empty()
            && spec.predictive.is_none()
        {
            self.problem(
                "",
                "the policy has no scale_up_rules, scale_down_rules, target_tracking, predictive or schedules, so it can never change the count",
            );
        }
        if spec.spare.is_some() && spec.target_tracking.is_none() && spec.predictive.is_none() {
            self.problem(
                "spare",
                "needs target_tracking or predictive: spares are kept on top of what demand needs, and only those strategies measure it",
            );
        }

        Policy {
            name: spec.name.clone(),
            spec: spec.clone(),
            dry_run: spec.dry_run,
            enabled: spec.enabled,
            evaluation_interval,
            min_replicas: spec.min_replicas,
            max_replicas,
            cooldown,
            metrics: std::mem::take(&mut self.metrics),
            scale_up_rules,
            scale_down_rules,
            target_tracking,
            schedules,
            stabilization,
            rate_limits,
            max_hourly_cost: spec.max_hourly_cost,
            price_per_replica_hour: spec.price_per_replica_hour,
            on_metric_error,
            scale_to_zero,
            predictive,
            spare,
        }
    }

    fn check_name(&mut self) {
        let name = &self.spec.name;
        if name.is_empty() {
            self.problem("name", "is required");
        } else if name.len() > 63 {
            self.problem(
                "name",
                format!("is {} characters long; at most 63", name.len()),
            );
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            self.problem(
                "name",
                format!(
                    "`{name}` must start with a letter or digit and hold only letters, digits, `-`, `_` and `.`"
                ),
            );
        }
    }

    fn define_metrics(&mut self, interval: Option<TimeDelta>) {
        let default_staleness = default_staleness(interval);
        for (name, def) in &self.spec.metrics {
            let path = format!("metrics.{name}");
            if !is_identifier(name) {
                self.problem(
                    path.clone(),
                    "a metric name holds only letters, digits, `_` and `:`, and does not start with a digit",
                );
            }
            if def.query.trim().is_empty() {
                self.problem(format!("{path}.query"), "is required");
            }
            let source = def
                .source
                .clone()
                .unwrap_or_else(|| "prometheus".to_owned());
            if !SOURCES.contains(&source.as_str()) {
                self.problem(
                    format!("{path}.source"),
                    format!("unknown source `{source}`; known: {}", SOURCES.join(", ")),
                );
            }
            if source == "pushed"
                && !def.query.trim().is_empty()
                && let Err(e) = crate::selector::Selector::parse(&def.query)
            {
                self.problem(
                    format!("{path}.query"),
                    format!("a pushed metric's query is a series selector: {e}"),
                );
            }
            let empty_is_zero = match def.on_empty.as_deref() {
                None | Some("missing") => false,
                Some("zero") => true,
                Some(other) => {
                    self.problem(
                        format!("{path}.on_empty"),
                        format!("unknown value `{other}`: use `missing` or `zero`"),
                    );
                    false
                }
            };
            let max_staleness = def
                .max_staleness
                .as_ref()
                .and_then(|d| self.positive_duration(&format!("{path}.max_staleness"), d))
                .unwrap_or(default_staleness);
            if let Some(interval) = interval.filter(|i| *i > max_staleness) {
                self.problem(
                    format!("{path}.max_staleness"),
                    format!(
                        "{} is shorter than evaluation_interval {}: every sample would be stale by the next evaluation",
                        crate::decide::human(max_staleness),
                        crate::decide::human(interval)
                    ),
                );
            }
            self.metrics.push(Metric {
                name: name.clone(),
                query: def.query.clone(),
                source,
                per_replica: def.per_replica,
                empty_is_zero,
                max_staleness,
                defined: true,
            });
        }
    }

    /// Resolves a metric reference: a defined name, or a raw expression.
    fn metric_ref(&mut self, path: &str, reference: &str) -> Option<usize> {
        let reference = reference.trim();
        if reference.is_empty() {
            self.problem(
                path,
                "is required: a metric name or a Prometheus expression",
            );
            return None;
        }
        if let Some(i) = self.metrics.iter().position(|m| m.name == reference) {
            self.referenced.insert(i);
            return Some(i);
        }
        if !self.spec.metrics.is_empty() && is_identifier(reference) {
            self.unresolved = true;
            // With named metrics defined, a bare name is taken as a reference to one of
            // them, so a typo is caught here rather than silently querying a series that
            // does not exist.
            let hint = closest(reference, self.spec.metrics.keys().map(String::as_str))
                .map(|c| format!(" Did you mean `{c}`?"))
                .unwrap_or_default();
            self.problem(
                path,
                format!(
                    "metric `{reference}` is not defined under `metrics`.{hint} (To query the series itself, write `{reference}{{}}`.)"
                ),
            );
            return None;
        }
        if let Some(problem) = expression_problem(reference) {
            self.problem(path, problem);
            return None;
        }
        self.metrics.push(Metric {
            name: reference.to_owned(),
            query: reference.to_owned(),
            source: "prometheus".to_owned(),
            per_replica: false,
            empty_is_zero: false,
            max_staleness: default_staleness(
                self.spec
                    .evaluation_interval
                    .as_ref()
                    .and_then(|d| parse_duration(d).ok()),
            ),
            defined: false,
        });
        Some(self.metrics.len() - 1)
    }

    fn rules(&mut self, field: &str, specs: &[RuleSpec], up: bool) -> Vec<Rule> {
        let mut out = Vec::new();
        for (i, r) in specs.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let metric = self.metric_ref(&format!("{path}.metric"), &r.metric);
            let operator = match r.operator.trim().to_ascii_lowercase().as_str() {
                "gt" | ">" => Some(Operator::Gt),
                "lt" | "<" => Some(Operator::Lt),
                "gte" | ">=" => Some(Operator::Gte),
                "lte" | "<=" => Some(Operator::Lte),
                "" => {
                    self.problem(
                        format!("{path}.operator"),
                        "is required: gt, lt, gte or lte",
                    );
                    None
                }
                other => {
                    self.problem(
                        format!("{path}.operator"),
                        format!("unknown operator `{other}`: use gt, lt, gte or lte"),
                    );
                    None
                }
            };
            if !r.threshold.is_finite() {
                self.problem(format!("{path}.threshold"), "must be a finite number");
            }
            let duration = match &r.duration {
                None => Some(TimeDelta::zero()),
                Some(d) => self.duration(&format!("{path}.duration"), d),
            };
            if r.scale_by == 0 {
                self.problem(format!("{path}.scale_by"), "must not be 0");
            } else if up && r.scale_by < 0 {
                self.problem(
                    format!("{path}.scale_by"),
                    format!(
                        "is {} in a scale-up rule; scale-up rules add replicas, so it must be positive",
                        r.scale_by
                    ),
                );
            } else if !up && r.scale_by > 0 {
                self.problem(
                    format!("{path}.scale_by"),
                    format!(
                        "is {} in a scale-down rule; scale-down rules remove replicas, so it must be negative",
                        r.scale_by
                    ),
                );
            }
            if let (Some(metric), Some(operator), Some(duration)) = (metric, operator, duration) {
                out.push(Rule {
                    metric,
                    operator,
                    threshold: r.threshold,
                    duration,
                    scale_by: r.scale_by,
                    key: format!(
                        "{}:{}:{}:{}",
                        if up { "up" } else { "down" },
                        self.metrics[metric].name,
                        operator.word(),
                        r.threshold
                    ),
                });
            }
        }
        out
    }

    /// Rejects rule sets where both directions could fire on the same values: for every
    /// metric, the values allowed by all up rules and all down rules together overlap.
    fn check_overlap(&mut self, up: &[Rule], down: &[Rule]) {
        if up.is_empty() || down.is_empty() {
            return;
        }
        // Rules on unrelated metrics (scale up on CPU, down on an empty queue) are a
        // legitimate policy; the flapping case is a metric that both directions read.
        if !up.iter().any(|u| down.iter().any(|d| d.metric == u.metric)) {
            return;
        }
        let mut metrics: Vec<usize> = up.iter().chain(down).map(|r| r.metric).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let mut overlaps = Vec::new();
        for m in metrics {
            let mut interval = Interval::ALL;
            for r in up.iter().chain(down).filter(|r| r.metric == m) {
                interval = interval.and(r.operator, r.threshold);
            }
            if interval.is_empty() {
                return;
            }
            overlaps.push(format!("`{}` in {interval}", self.metrics[m].name));
        }
        self.problem(
            "scale_down_rules",
            format!(
                "the scale-up and scale-down rules can hold at the same time ({}), so the policy would flap",
                overlaps.join(", ")
            ),
        );
    }

    fn schedules(&mut self, min: u32, max: u32) -> Vec<Schedule> {
        let mut out = Vec::new();
        for (i, s) in self.spec.schedules.iter().enumerate() {
            let path = format!("schedules[{i}]");
            let cron = self.cron(&format!("{path}.cron_expression"), &s.cron_expression);
            let timezone = self.timezone(&format!("{path}.timezone"), s.timezone.as_deref());
            if min <= max && (s.desired_replicas < min || s.desired_replicas > max) {
                self.problem(
                    format!("{path}.desired_replicas"),
                    format!(
                        "{} is outside min_replicas..max_replicas ({min}..{max})",
                        s.desired_replicas
                    ),
                );
            }
            if let (Some(cron), Some(timezone)) = (cron, timezone) {
                out.push(Schedule {
                    expression: s.cron_expression.clone(),
                    cron,
                    timezone,
                    desired_replicas: s.desired_replicas,
                });
            }
        }
        out
    }

    fn predictive(&mut self, spec: &PredictiveSpec) -> Option<Predictive> {
        let metric = self.metric_ref("predictive.metric", &spec.metric);
        if !(spec.target.is_finite() && spec.target > 0.0) {
            self.problem("predictive.target", "must be a number greater than 0");
        }
        let mode = match spec.mode.as_deref() {
            None | Some("scale") => PredictiveMode::Scale,
            Some("forecast_only") => PredictiveMode::ForecastOnly,
            Some(other) => {
                self.problem(
                    "predictive.mode",
                    format!("unknown mode `{other}`: use `scale` or `forecast_only`"),
                );
                PredictiveMode::Scale
            }
        };
        let confidence = spec.confidence.unwrap_or(DEFAULT_CONFIDENCE);
        if !(confidence.is_finite() && confidence > 0.0 && confidence < 1.0) {
            self.problem(
                "predictive.confidence",
                "must be above 0 and below 1 (a fraction such as 0.95)",
            );
        }
        let lead = match (&spec.provisioning_time, &spec.lead_time) {
            (Some(_), Some(_)) => {
                self.problem(
                    "predictive.lead_time",
                    "set either lead_time or provisioning_time, not both: the lead time is the provisioning time plus one evaluation interval",
                );
                None
            }
            (_, Some(l)) => self
                .positive_duration("predictive.lead_time", l)
                .map(Lead::Fixed),
            (Some(p), None) => self
                .duration("predictive.provisioning_time", p)
                .map(Lead::Provisioning),
            (None, None) => Some(Lead::Provisioning(TimeDelta::seconds(
                DEFAULT_PROVISIONING_SECONDS,
            ))),
        };
        let history = match &spec.history {
            None => Some(TimeDelta::seconds(DEFAULT_HISTORY_SECONDS)),
            Some(d) => self.positive_duration("predictive.history", d),
        };
        let seasonality = match &spec.seasonality {
            None => DEFAULT_SEASONALITY_SECONDS
                .iter()
                .map(|s| TimeDelta::seconds(*s))
                .collect(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, d) in list.iter().enumerate() {
                    let path = format!("predictive.seasonality[{i}]");
                    if let Some(period) = self.positive_duration(&path, d) {
                        if let Some(h) = history.filter(|h| *h < period * 2) {
                            self.problem(
                                path,
                                format!(
                                    "a period of {} needs a history of at least {} (twice the period), and history is {}",
                                    crate::decide::human(period),
                                    crate::decide::human(period * 2),
                                    crate::decide::human(h)
                                ),
                            );
                        }
                        out.push(period);
                    }
                }
                out
            }
        };
        let retrain_every = match &spec.retrain_every {
            None => Some(TimeDelta::seconds(DEFAULT_RETRAIN_SECONDS)),
            Some(d) => self.positive_duration("predictive.retrain_every", d),
        };
        let max_mase = spec.max_mase.unwrap_or(DEFAULT_MAX_MASE);
        if !(max_mase.is_finite() && max_mase > 0.0) {
            self.problem("predictive.max_mase", "must be a number greater than 0");
        }
        if let Some(c) = spec.min_coverage
            && !(c.is_finite() && (0.0..=1.0).contains(&c))
        {
            self.problem(
                "predictive.min_coverage",
                "must be between 0 and 1 (a fraction such as 0.9)",
            );
        }
        let accuracy_window = match &spec.accuracy_window {
            None => Some(TimeDelta::seconds(DEFAULT_ACCURACY_WINDOW_SECONDS)),
            Some(d) => self.positive_duration("predictive.accuracy_window", d),
        };
        Some(Predictive {
            metric: metric?,
            target: spec.target,
            mode,
            confidence,
            lead: lead?,
            history: history?,
            seasonality,
            retrain_every: retrain_every?,
            max_mase,
            min_coverage: spec.min_coverage,
            accuracy_window: accuracy_window?,
        })
    }

    fn spare(&mut self, spec: &SpareSpec) -> Option<Spare> {
        let mut schedules = Vec::new();
        for (i, s) in spec.schedules.iter().enumerate() {
            let path = format!("spare.schedules[{i}]");
            let cron = self.cron(&format!("{path}.cron_expression"), &s.cron_expression);
            let timezone = self.timezone(&format!("{path}.timezone"), s.timezone.as_deref());
            let duration = match &s.duration {
                None => Some(None),
                Some(d) => self
                    .positive_duration(&format!("{path}.duration"), d)
                    .map(Some),
            };
            if let (Some(cron), Some(timezone), Some(duration)) = (cron, timezone, duration) {
                schedules.push(SpareSchedule {
                    expression: s.cron_expression.clone(),
                    cron,
                    timezone,
                    replicas: s.replicas,
                    duration,
                });
            }
        }
        Some(Spare {
            replicas: spec.replicas,
            schedules,
        })
    }

    fn cron(&mut self, path: &str, expression: &str) -> Option<croner::Cron> {
        match croner::Cron::from_str(expression) {
            Ok(c) => Some(c),
            Err(e) => {
                self.problem(
                    path,
                    format!("`{expression}` is not a valid cron expression: {e}"),
                );
                None
            }
        }
    }

    fn timezone(&mut self, path: &str, zone: Option<&str>) -> Option<Tz> {
        let zone_name = zone.unwrap_or("UTC");
        match zone_name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let hint = closest(zone_name, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                self.problem(path, format!("unknown time zone `{zone_name}`{hint}"));
                None
            }
        }
    }

    fn rate_limit(&mut self, path: &str, spec: &RateLimitSpec) -> Option<RateLimit> {
        if spec.max_step.is_none() && spec.max_percent.is_none() {
            self.problem(path, "needs max_step, max_percent or both");
            return None;
        }
        if spec.max_step == Some(0) {
            self.problem(format!("{path}.max_step"), "must be at least 1");
        }
        if let Some(p) = spec.max_percent
            && !(p.is_finite() && p > 0.0)
        {
            self.problem(
                format!("{path}.max_percent"),
                "must be a number greater than 0",
            );
        }
        let period = match &spec.period {
            None => Some(TimeDelta::seconds(DEFAULT_RATE_PERIOD_SECONDS)),
            Some(d) => self.positive_duration(&format!("{path}.period"), d),
        }?;
        Some(RateLimit {
            max_step: spec.max_step,
            max_percent: spec.max_percent,
            period,
        })
    }

    fn scale_to_zero(
        &mut self,
        tracking: &Option<TargetTracking>,
        up_rules: &[Rule],
    ) -> Option<ScaleToZero> {
        let block = match &self.spec.scale_to_zero {
            ScaleToZeroSpec::Absent | ScaleToZeroSpec::Switch(false) => return None,
            ScaleToZeroSpec::Switch(true) => ScaleToZeroBlock::default(),
            ScaleToZeroSpec::Block(b) if !b.enabled => return None,
            ScaleToZeroSpec::Block(b) => b.clone(),
        };
        if !block.activation_threshold.is_finite() {
            self.problem(
                "scale_to_zero.activation_threshold",
                "must be a finite number",
            );
        }
        let idle = match &block.idle {
            None => Some(TimeDelta::seconds(DEFAULT_IDLE_SECONDS)),
            Some(d) => self.duration("scale_to_zero.idle", d),
        };
        let metric = match &block.metric {
            Some(m) => self.metric_ref("scale_to_zero.metric", m),
            None => {
                let fallback = up_rules
                    .first()
                    .map(|r| r.metric)
                    .or(tracking.map(|t| t.metric));
                // Only when nothing could name one: a rule dropped for another mistake
                // has already been reported.
                if fallback.is_none()
                    && self.spec.scale_up_rules.is_empty()
                    && self.spec.target_tracking.is_none()
                {
                    self.problem(
                        "scale_to_zero",
                        "needs an activation metric: set scale_to_zero.metric, or add a scale-up rule or target tracking",
                    );
                }
                fallback
            }
        };
        Some(ScaleToZero {
            metric: metric?,
            activation_threshold: block.activation_threshold,
            idle: idle?,
        })
    }

    fn duration(&mut self, path: &str, d: &DurationSpec) -> Option<TimeDelta> {
        match parse_duration(d) {
            Ok(t) => Some(t),
            Err(message) => {
                self.problem(path, message);
                None
            }
        }
    }

    fn positive_duration(&mut self, path: &str, d: &DurationSpec) -> Option<TimeDelta> {
        let t = self.duration(path, d)?;
        if t <= TimeDelta::zero() {
            self.problem(path, "must be longer than 0");
            return None;
        }
        Some(t)
    }
}

/// The staleness limit of a metric that sets none: Prometheus' lookback, or two evaluation
/// intervals when the policy is evaluated less often than that.
fn default_staleness(interval: Option<TimeDelta>) -> TimeDelta {
    let lookback = TimeDelta::seconds(DEFAULT_MAX_STALENESS_SECONDS);
    interval.map_or(lookback, |i| lookback.max(i * 2))
}

/// Parses `"5m"`, `"1h30m"`, `"90s"` or a number of seconds.
pub fn parse_duration(d: &DurationSpec) -> Result<TimeDelta, String> {
    match d {
        DurationSpec::Seconds(s) => {
            if !s.is_finite() || *s < 0.0 {
                Err(format!(
                    "{s} is not a duration: seconds must be a number of at least 0"
                ))
            } else if *s > 1e12 {
                Err(format!("{s} seconds is too long"))
            } else {
                Ok(TimeDelta::milliseconds((s * 1000.0).round() as i64))
            }
        }
        DurationSpec::Text(t) => {
            let std = humantime::parse_duration(t.trim()).map_err(|e| {
                format!("`{t}` is not a duration ({e}); write it like \"30s\", \"5m\" or \"1h30m\"")
            })?;
            // The same bound as for seconds: time arithmetic on longer ones overflows.
            TimeDelta::from_std(std)
                .ok()
                .filter(|d| *d <= TimeDelta::seconds(1_000_000_000_000))
                .ok_or_else(|| format!("`{t}` is too long"))
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A cheap structural check of a raw expression: balanced brackets and quotes. The query
/// source reports anything deeper when it runs the query.
fn expression_problem(expr: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Some(format!("`{expr}` has an unmatched `{c}`"));
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Some(format!("`{expr}` has an unterminated string"));
    }
    stack
        .last()
        .map(|c| format!("`{expr}` has an unclosed `{c}`"))
}

/// An interval of values, for the overlap check.
#[derive(Debug, Clone, Copy)]
struct Interval {
    lo: f64,
    lo_closed: bool,
    hi: f64,
    hi_closed: bool,
}

impl Interval {
    const ALL: Interval = Interval {
        lo: f64::NEG_INFINITY,
        lo_closed: false,
        hi: f64::INFINITY,
        hi_closed: false,
    };

    fn and(mut self, op: Operator, t: f64) -> Interval {
        match op {
            Operator::Gt | Operator::Gte => {
                let closed = op == Operator::Gte;
                if t > self.lo || (t == self.lo && !closed) {
                    self.lo = t;
                    self.lo_closed = closed;
                }
            }
            Operator::Lt | Operator::Lte => {
                let closed = op == Operator::Lte;
                if t < self.hi || (t == self.hi && !closed) {
                    self.hi = t;
                    self.hi_closed = closed;
                }
            }
        }
        self
    }

    fn is_empty(&self) -> bool {
        self.lo > self.hi || (self.lo == self.hi && !(self.lo_closed && self.hi_closed))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.lo_closed { '[' } else { '(' };
        let close = if self.hi_closed { ']' } else { ')' };
        write!(f, "{open}{}, {}{close}", self.lo, self.hi)
    }
}
