//! The policy format operators write, in YAML or JSON (one schema).
//!
//! These types mirror the file as written: strings stay strings (durations, operators, cron
//! expressions, time zones) so that validation can report every problem at once with its
//! field path, instead of stopping at the first one a parser meets. [`crate::validate`]
//! turns a [`PolicySpec`] into the [`crate::Policy`] the engine uses.
//!
//! Unknown fields are not rejected by serde here; they are collected while parsing and
//! reported as validation problems with the rest.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::validate::Problem;

/// One scaling policy as written in a policy file or an API request body.
///
/// A superset of the product specification's model: every field of the specification keeps
/// its name and meaning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PolicySpec {
    /// Unique name of the policy (letters, digits, `-`, `_`, `.`; at most 63 characters).
    pub name: String,
    /// Free text shown to operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free label for the kind of target (`cdc-worker`, `trino`, `nodes`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    /// Identifier of the target in the operator's inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// The executor that acts on the target: a `type` and that executor's own fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub target: Option<serde_json::Map<String, serde_json::Value>>,
    /// A disabled policy is kept but never evaluated by the engine.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Decide and record, never act.
    pub dry_run: bool,
    /// How often the engine evaluates this policy (overrides the global interval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation_interval: Option<DurationSpec>,
    /// Lower bound of the desired count (default 1).
    #[serde(default = "one")]
    pub min_replicas: u32,
    /// Upper bound of the desired count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// Cooldown for both directions, in seconds (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u64>,
    /// Overrides `cooldown_seconds` for scale-ups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up_cooldown: Option<DurationSpec>,
    /// Overrides `cooldown_seconds` for scale-downs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_cooldown: Option<DurationSpec>,
    /// Named metric definitions that rules and target tracking refer to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, MetricSpec>,
    /// All of these must hold (for their durations) to scale up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scale_up_rules: Vec<RuleSpec>,
    /// All of these must hold (for their durations) to scale down.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scale_down_rules: Vec<RuleSpec>,
    /// Keep a metric near a target value per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tracking: Option<TargetTrackingSpec>,
    /// Cron entries; the most recently fired one sets a floor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleSpec>,
    /// Stabilization windows per direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization: Option<StabilizationSpec>,
    /// Rate limits per direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RateLimitsSpec>,
    /// Hard limit on the hourly cost of the desired count.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub max_hourly_cost: Option<f64>,
    /// Price of one replica for one hour, when the executor does not know it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub price_per_replica_hour: Option<f64>,
    /// `hold` (default) or `{fallback: N}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_metric_error: Option<OnMetricErrorSpec>,
    /// `false`, `true`, or a block with the activation metric, threshold and idle time.
    #[serde(skip_serializing_if = "ScaleToZeroSpec::is_absent")]
    pub scale_to_zero: ScaleToZeroSpec,
    /// Forecast a metric from its own history and scale ahead of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictive: Option<PredictiveSpec>,
    /// Ready replicas kept beyond what demand needs, by schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spare: Option<SpareSpec>,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// A named metric: where it comes from and how to read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct MetricSpec {
    /// The query (a PromQL expression for the `prometheus` source).
    pub query: String,
    /// Where the metric comes from (default `prometheus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The value is per replica (CPU utilization, load per replica), so it grows when
    /// replicas are removed; the engine projects it before scaling down.
    pub per_replica: bool,
    /// What an empty result means: `missing` (default) or `zero`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_empty: Option<String>,
    /// A sample older than this is stale (default 5m, Prometheus' lookback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_staleness: Option<DurationSpec>,
}

/// A threshold rule as in the specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RuleSpec {
    /// A metric name from `metrics`, or a raw Prometheus expression.
    pub metric: String,
    /// `gt`, `lt`, `gte` or `lte`.
    pub operator: String,
    /// The value compared against.
    #[serde(serialize_with = "number::whole")]
    pub threshold: f64,
    /// How long the condition must hold, such as `"5m"` (default: at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// Replicas to add (positive, scale-up rules) or remove (negative, scale-down rules).
    pub scale_by: i64,
}

/// Target tracking: keep a metric near `target` per replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TargetTrackingSpec {
    /// A metric name from `metrics`, or a raw Prometheus expression.
    pub metric: String,
    /// The value wanted per replica.
    #[serde(serialize_with = "number::whole")]
    pub target: f64,
    /// No change while `value / target` is within `1 ± tolerance` (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub tolerance: Option<f64>,
}

/// A cron entry setting a floor on the desired count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ScheduleSpec {
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron_expression: String,
    /// The floor from the moment this entry fires until the next entry fires.
    pub desired_replicas: u32,
    /// IANA time zone name (default `UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// The predictive strategy: a forecast of a metric over the lead time, from the metric's own
/// history, turned into a count the way target tracking turns a value into one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PredictiveSpec {
    /// A metric name from `metrics`, or a raw Prometheus expression.
    pub metric: String,
    /// The value wanted per replica: the forecast's upper bound divided by this is the count.
    #[serde(serialize_with = "number::whole")]
    pub target: f64,
    /// `scale` (default) or `forecast_only` (record forecasts, act on nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Confidence level of the forecast interval whose upper bound is covered (default 0.95).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub confidence: Option<f64>,
    /// Time from launch to ready; the forecast covers it plus one evaluation interval
    /// (default 2m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning_time: Option<DurationSpec>,
    /// The whole lead time, instead of `provisioning_time` plus one interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<DurationSpec>,
    /// How much of the metric's history the model is trained on (default 14d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<DurationSpec>,
    /// Seasonal periods (default `["1d", "1w"]`); a period the history does not hold twice
    /// is left out until it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seasonality: Option<Vec<DurationSpec>>,
    /// How often the model is trained again (default 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrain_every: Option<DurationSpec>,
    /// Stand aside while the recent forecasts' MASE is above this (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub max_mase: Option<f64>,
    /// Stand aside while fewer than this share of recent outcomes fell inside the interval
    /// (default: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub min_coverage: Option<f64>,
    /// How far back forecasts are scored for the accuracy figures (default 1d).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_window: Option<DurationSpec>,
}

/// The spare pool: ready replicas kept beyond what demand needs, so that sudden demand
/// lands on warm capacity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SpareSpec {
    /// Spares when no schedule entry applies (default 0).
    pub replicas: u32,
    /// Cron entries; the most recently fired one sets the spares until the next one fires,
    /// or for its `duration`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<SpareScheduleSpec>,
}

/// A cron entry of the spare pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SpareScheduleSpec {
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron_expression: String,
    /// Spares from the moment this entry fires.
    pub replicas: u32,
    /// How long the entry applies; without it, until the next entry fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// IANA time zone name (default `UTC`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Stabilization windows, as in Kubernetes' HPA behavior.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct StabilizationSpec {
    /// A scale-up goes only as high as the lowest recommendation within this window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<DurationSpec>,
    /// A scale-down goes only as low as the highest recommendation within this window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<DurationSpec>,
}

/// Rate limits per direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RateLimitsSpec {
    /// Limits on adding replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<RateLimitSpec>,
    /// Limits on removing replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<RateLimitSpec>,
}

/// How far one direction may move within a period. With both `max_step` and
/// `max_percent`, the larger change is allowed (HPA's `selectPolicy: Max`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RateLimitSpec {
    /// Replicas per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_step: Option<u32>,
    /// Percent of the count at the start of the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "number::whole_opt")]
    pub max_percent: Option<f64>,
    /// The period (default 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<DurationSpec>,
}

/// `hold`, or `{fallback: N}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OnMetricErrorSpec {
    /// `hold` (the only word accepted).
    Word(String),
    /// `{fallback: N}`: go up to N (never down) while data is bad.
    Fallback {
        /// The count to go up to.
        fallback: u32,
    },
}

/// `scale_to_zero`: a plain switch as in the specification, or a block.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ScaleToZeroSpec {
    /// `true` or `false`.
    Switch(bool),
    /// The full form.
    Block(ScaleToZeroBlock),
    /// Not written.
    #[default]
    Absent,
}

impl ScaleToZeroSpec {
    fn is_absent(&self) -> bool {
        matches!(self, ScaleToZeroSpec::Absent)
    }
}

/// Scale to zero after `idle` with the activation metric at or below
/// `activation_threshold`; wake up as soon as it is above.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ScaleToZeroBlock {
    /// Default true.
    pub enabled: bool,
    /// The activation metric (default: the first scale-up rule's or target tracking's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Active while the metric is above this (default 0).
    #[serde(serialize_with = "number::whole")]
    pub activation_threshold: f64,
    /// How long the target must be inactive before it goes to zero (default 5m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<DurationSpec>,
}

impl Default for ScaleToZeroBlock {
    fn default() -> Self {
        ScaleToZeroBlock {
            enabled: true,
            metric: None,
            activation_threshold: 0.0,
            idle: None,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ScaleToZeroSpec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(utoipa::openapi::Ref::from_schema_name("ScaleToZeroBlock"))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "`false`, `true`, or a block with the activation metric",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ScaleToZeroSpec {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push(("ScaleToZeroBlock".to_owned(), ScaleToZeroBlock::schema()));
    }
}

impl Serialize for ScaleToZeroSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ScaleToZeroSpec::Switch(on) => serializer.serialize_bool(*on),
            ScaleToZeroSpec::Block(block) => block.serialize(serializer),
            ScaleToZeroSpec::Absent => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for ScaleToZeroSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A hand-written visitor instead of `untagged`, so that unknown fields inside the
        // block are still seen (and reported) and type errors keep their path.
        struct SwitchOrBlock;
        impl<'de> Visitor<'de> for SwitchOrBlock {
            type Value = ScaleToZeroSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "true, false, or a block with enabled, metric, activation_threshold, idle",
                )
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ScaleToZeroSpec::Switch(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ScaleToZeroSpec::Absent)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ScaleToZeroBlock::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ScaleToZeroSpec::Block)
            }
        }
        deserializer.deserialize_any(SwitchOrBlock)
    }
}

/// A duration as written: `"5m"`, `"1h30m"`, `"90s"`, or a number of seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum DurationSpec {
    /// A humane duration string.
    Text(String),
    /// Seconds.
    Seconds(#[serde(serialize_with = "number::whole")] f64),
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrSeconds;
        impl<'de> Visitor<'de> for TextOrSeconds {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"5m\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DurationSpec::Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(DurationSpec::Seconds(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(DurationSpec::Seconds(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(DurationSpec::Seconds(v))
            }
        }
        deserializer.deserialize_any(TextOrSeconds)
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationSpec::Text(t) => write!(f, "{t:?}"),
            DurationSpec::Seconds(s) => write!(f, "{s}"),
        }
    }
}

/// The format of a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML; several documents separated by `---` are allowed.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for `.json` files, YAML otherwise.
    pub fn from_file_name(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// A policy read from a document, with the problems found while reading it (unknown
/// fields, wrong types). `spec` is `None` when the policy could not be read at all.
#[derive(Debug, Clone)]
pub struct ParsedPolicy {
    /// Where the policy sits in its document: empty for a lone policy, `[i]` in a list.
    pub location: String,
    /// The policy, when it could be read.
    pub spec: Option<PolicySpec>,
    /// Unknown fields and type errors, with their paths (relative to the policy).
    pub problems: Vec<Problem>,
}

/// A document that could not be read as YAML or JSON at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// The parser's message, with the line and column where it has them.
    pub message: String,
}

/// Reads a document holding one policy, a list of policies, or (YAML) several documents.
///
/// Each policy is read on its own, so a mistake in one does not hide the others.
pub fn parse_document(text: &str, format: Format) -> Result<Vec<ParsedPolicy>, SyntaxError> {
    let mut roots: Vec<serde_json::Value> = Vec::new();
    match format {
        Format::Json => {
            let value = serde_json::from_str(text).map_err(|e| SyntaxError {
                message: format!("invalid JSON: {e}"),
            })?;
            roots.push(value);
        }
        Format::Yaml => {
            for doc in serde_yaml_ng::Deserializer::from_str(text) {
                let value = serde_json::Value::deserialize(doc).map_err(|e| SyntaxError {
                    message: format!("invalid YAML: {e}"),
                })?;
                if !value.is_null() {
                    roots.push(value);
                }
            }
        }
    }
    let many = roots.len() > 1 || roots.first().is_some_and(|v| v.is_array());
    let mut out = Vec::new();
    let mut index = 0usize;
    for root in roots {
        let items = match root {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            let location = if many {
                format!("[{index}]")
            } else {
                String::new()
            };
            out.push(parse_one(location, &item));
            index += 1;
        }
    }
    Ok(out)
}

/// Reads one policy from a JSON value, collecting unknown fields and the first type error.
pub fn parse_value(value: &serde_json::Value) -> ParsedPolicy {
    parse_one(String::new(), value)
}

fn parse_one(location: String, value: &serde_json::Value) -> ParsedPolicy {
    let mut problems = Vec::new();
    if !value.is_object() {
        problems.push(Problem::new(
            "",
            format!(
                "expected a policy (a mapping of fields), found {}",
                kind_of(value)
            ),
        ));
        return ParsedPolicy {
            location,
            spec: None,
            problems,
        };
    }
    let mut unknown = Vec::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
    let ignoring = serde_ignored::Deserializer::new(value, &mut on_unknown);
    let result: Result<PolicySpec, _> = serde_path_to_error::deserialize(ignoring);
    let spec = match result {
        Ok(spec) => Some(spec),
        Err(err) => {
            let path = error_path(err.path());
            let message = err.inner().to_string();
            problems.push(Problem::new(path, message));
            None
        }
    };
    for path in unknown {
        let (parent, field) = match path.rsplit_once('.') {
            Some((p, f)) => (p.to_owned(), f.to_owned()),
            None => (String::new(), path.clone()),
        };
        let hint = known_fields(&parent)
            .and_then(|fields| closest(&field, fields.iter().copied()))
            .map(|f| format!("; did you mean `{f}`?"))
            .unwrap_or_default();
        problems.push(Problem::new(
            path.clone(),
            format!("unknown field `{field}`{hint}"),
        ));
    }
    ParsedPolicy {
        location,
        spec,
        problems,
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Formats serde_ignored's path as `a.b[0].c`.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let p = ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Formats serde_path_to_error's path as `a.b[0].c`.
fn error_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The fields a block accepts, by the path of the block, for "did you mean" hints.
fn known_fields(parent: &str) -> Option<&'static [&'static str]> {
    const POLICY: &[&str] = &[
        "name",
        "description",
        "target_type",
        "target_id",
        "target",
        "enabled",
        "dry_run",
        "evaluation_interval",
        "min_replicas",
        "max_replicas",
        "cooldown_seconds",
        "scale_up_cooldown",
        "scale_down_cooldown",
        "metrics",
        "scale_up_rules",
        "scale_down_rules",
        "target_tracking",
        "schedules",
        "stabilization",
        "rate_limits",
        "max_hourly_cost",
        "price_per_replica_hour",
        "on_metric_error",
        "scale_to_zero",
        "predictive",
        "spare",
    ];
    const RULE: &[&str] = &["metric", "operator", "threshold", "duration", "scale_by"];
    const METRIC: &[&str] = &[
        "query",
        "source",
        "per_replica",
        "on_empty",
        "max_staleness",
    ];
    const TRACKING: &[&str] = &["metric", "target", "tolerance"];
    const SCHEDULE: &[&str] = &["cron_expression", "desired_replicas", "timezone"];
    const STABILIZATION: &[&str] = &["scale_up", "scale_down"];
    const RATE: &[&str] = &["max_step", "max_percent", "period"];
    const ZERO: &[&str] = &["enabled", "metric", "activation_threshold", "idle"];
    const PREDICTIVE: &[&str] = &[
        "metric",
        "target",
        "mode",
        "confidence",
        "provisioning_time",
        "lead_time",
        "history",
        "seasonality",
        "retrain_every",
        "max_mase",
        "min_coverage",
        "accuracy_window",
    ];
    const SPARE: &[&str] = &["replicas", "schedules"];
    const SPARE_SCHEDULE: &[&str] = &["cron_expression", "replicas", "duration", "timezone"];
    let last = parent.rsplit('.').next().unwrap_or("");
    let last = last.split('[').next().unwrap_or("");
    Some(match last {
        "" => POLICY,
        "scale_up_rules" | "scale_down_rules" => RULE,
        "target_tracking" => TRACKING,
        "schedules" if parent.starts_with("spare") => SPARE_SCHEDULE,
        "schedules" => SCHEDULE,
        "predictive" => PREDICTIVE,
        "spare" => SPARE,
        "stabilization" => STABILIZATION,
        "scale_up" | "scale_down" if parent.starts_with("rate_limits") => RATE,
        "scale_to_zero" => ZERO,
        _ if parent.starts_with("metrics.") => METRIC,
        _ => return None,
    })
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Numbers written back as they were read: a whole number stays an integer (`60`, not
/// `60.0`), so a policy read back through the API equals the one sent.
mod number {
    use serde::Serializer;

    /// Largest integer an f64 holds exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    pub fn whole<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && v.abs() < EXACT {
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn whole_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => whole(v, s),
            None => s.serialize_none(),
        }
    }
}
