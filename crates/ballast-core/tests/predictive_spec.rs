//! The `predictive` and `spare` blocks of the policy format: defaults, and every mistake
//! reported with its field path.

use ballast_core::{
    Format, Lead, LoadError, PolicySpec, PredictiveMode, Problem, load_policies, parse_document,
    validate_all,
};
use chrono::TimeDelta;

fn problems(yaml: &str) -> Vec<Problem> {
    let parsed = parse_document(yaml, Format::Yaml).unwrap();
    match validate_all(&parsed).remove(0) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

fn has(problems: &[Problem], path: &str, words: &str) {
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(words)),
        "no problem at `{path}` mentioning `{words}` in:\n{}",
        text.join("\n")
    );
}

#[test]
fn a_predictive_block_with_only_metric_and_target_takes_the_defaults() {
    let policies = load_policies(
        r#"
name: web
max_replicas: 20
predictive: {metric: requests, target: 100}
"#,
        Format::Yaml,
    )
    .unwrap();
    let p = policies[0].predictive.as_ref().unwrap();
    assert_eq!(policies[0].metrics[p.metric].name, "requests");
    assert_eq!(p.mode, PredictiveMode::Scale);
    assert_eq!(p.confidence, 0.95);
    assert_eq!(p.lead, Lead::Provisioning(TimeDelta::minutes(2)));
    assert_eq!(p.lead_time(TimeDelta::minutes(1)), TimeDelta::minutes(3));
    assert_eq!(p.history, TimeDelta::days(14));
    assert_eq!(p.seasonality, vec![TimeDelta::days(1), TimeDelta::weeks(1)]);
    assert_eq!(p.retrain_every, TimeDelta::hours(1));
    assert_eq!(p.max_mase, 1.0);
    assert_eq!(p.min_coverage, None);
    assert_eq!(p.accuracy_window, TimeDelta::days(1));
}

#[test]
fn a_fixed_lead_time_replaces_provisioning_time_plus_one_interval() {
    let policies = load_policies(
        r#"
name: web
max_replicas: 20
predictive: {metric: requests, target: 100, lead_time: 10m, mode: forecast_only, seasonality: []}
"#,
        Format::Yaml,
    )
    .unwrap();
    let p = policies[0].predictive.as_ref().unwrap();
    assert_eq!(p.lead_time(TimeDelta::minutes(1)), TimeDelta::minutes(10));
    assert_eq!(p.mode, PredictiveMode::ForecastOnly);
    assert!(p.seasonality.is_empty());
}

#[test]
fn every_mistake_in_the_predictive_and_spare_blocks_is_reported_with_its_path() {
    let found = problems(
        r#"
name: mistakes
max_replicas: 20
predictive:
  metric: ""
  target: 0
  mode: sometimes
  confidance: 0.9
  confidence: 1.5
  provisioning_time: 2m
  lead_time: 3m
  history: 7d
  seasonality: [1d, 1w, soon]
  retrain_every: 0s
  max_mase: -1
  min_coverage: 2
  accuracy_window: forever
spare:
  replicas: 1
  schedules:
    - cron_expression: "0 25 * * *"
      replica: 3
      timezone: Europe/Londn
      duration: 0s
"#,
    );
    has(&found, "predictive.metric", "is required");
    has(
        &found,
        "predictive.target",
        "must be a number greater than 0",
    );
    has(
        &found,
        "predictive.mode",
        "unknown mode `sometimes`: use `scale` or `forecast_only`",
    );
    has(
        &found,
        "predictive.confidance",
        "unknown field `confidance`; did you mean `confidence`?",
    );
    has(
        &found,
        "predictive.confidence",
        "must be above 0 and below 1",
    );
    has(
        &found,
        "predictive.lead_time",
        "set either lead_time or provisioning_time",
    );
    has(
        &found,
        "predictive.seasonality[1]",
        "a period of 7d needs a history of at least 14d (twice the period), and history is 7d",
    );
    has(
        &found,
        "predictive.seasonality[2]",
        "`soon` is not a duration",
    );
    has(&found, "predictive.retrain_every", "must be longer than 0");
    has(
        &found,
        "predictive.max_mase",
        "must be a number greater than 0",
    );
    has(&found, "predictive.min_coverage", "must be between 0 and 1");
    has(&found, "predictive.accuracy_window", "is not a duration");
    has(
        &found,
        "spare.schedules[0].cron_expression",
        "is not a valid cron expression",
    );
    has(
        &found,
        "spare.schedules[0].replica",
        "unknown field `replica`; did you mean `replicas`?",
    );
    has(
        &found,
        "spare.schedules[0].timezone",
        "unknown time zone `Europe/Londn`; did you mean `Europe/London`?",
    );
    has(
        &found,
        "spare.schedules[0].duration",
        "must be longer than 0",
    );
    assert_eq!(found.len(), 16, "{found:#?}");
}

#[test]
fn a_spare_pool_needs_a_strategy_that_measures_demand() {
    let found = problems(
        r#"
name: spares
max_replicas: 20
schedules: [{cron_expression: "0 8 * * *", desired_replicas: 2}]
spare: {replicas: 2}
"#,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    has(&found, "spare", "needs target_tracking or predictive");
}

#[test]
fn a_metric_read_only_by_the_predictive_strategy_is_not_unused() {
    let found = problems(
        r#"
name: web
max_replicas: 20
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
predictive: {metric: requests, target: 100}
"#,
    );
    assert!(found.is_empty(), "{found:?}");
    let found = problems(
        r#"
name: web
max_replicas: 20
metrics:
  requests: {query: 'sum(rate(http_requests_total[1m]))'}
predictive: {metric: request, target: 100}
"#,
    );
    has(
        &found,
        "predictive.metric",
        "metric `request` is not defined under `metrics`. Did you mean `requests`?",
    );
}

#[test]
fn predictive_and_spare_blocks_read_back_as_written() {
    let yaml = r#"
name: web
max_replicas: 20
target_tracking: {metric: utilization, target: 100}
predictive:
  metric: utilization
  target: 100
  confidence: 0.99
  provisioning_time: 2m
  seasonality: [1d, 1w]
  retrain_every: 6h
spare:
  replicas: 1
  schedules:
    - {cron_expression: "0 18 * * 5,6", replicas: 3, duration: 5h, timezone: Europe/London}
"#;
    let policy = load_policies(yaml, Format::Yaml).unwrap().remove(0);
    let json = serde_json::to_string(&policy.spec).unwrap();
    let back: PolicySpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, policy.spec);
    assert!(json.contains(r#""predictive":{"metric":"utilization","target":100,"confidence":0.99,"provisioning_time":"2m","seasonality":["1d","1w"],"retrain_every":"6h"}"#), "{json}");
    assert!(json.contains(r#""spare":{"replicas":1,"schedules":[{"cron_expression":"0 18 * * 5,6","replicas":3,"duration":"5h","timezone":"Europe/London"}]}"#), "{json}");
    let spare = policy.spare.unwrap();
    assert_eq!(spare.schedules[0].duration, Some(TimeDelta::hours(5)));
    let err = load_policies("name: x\nmax_replicas: 2\npredictive: 3\n", Format::Yaml).unwrap_err();
    let LoadError::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    assert_eq!(problems[0].path, "predictive");
}
