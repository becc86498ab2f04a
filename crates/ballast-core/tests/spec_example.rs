//! The product specification's example request, and a file with many mistakes.

use ballast_core::{Format, LoadError, Operator, load_policies, parse_document, validate_all};

const SPEC_EXAMPLE: &str = r#"{"name":"cdc-worker-autoscaling","target_type":"cdc-worker",
 "target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,
 "cooldown_seconds":300,"scale_to_zero":false,
 "scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],
 "scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],
 "schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}"#;

#[test]
fn the_specification_example_parses_and_validates_as_is() {
    let policies = load_policies(SPEC_EXAMPLE, Format::Json).expect("the example is valid");
    assert_eq!(policies.len(), 1);
    let p = &policies[0];
    assert_eq!(p.name, "cdc-worker-autoscaling");
    assert_eq!(p.spec.target_type.as_deref(), Some("cdc-worker"));
    assert_eq!(
        p.spec.target_id.as_deref(),
        Some("550e8400-e29b-41d4-a716-446655440000")
    );
    assert_eq!((p.min_replicas, p.max_replicas), (1, 10));
    assert_eq!(p.cooldown.scale_up.num_seconds(), 300);
    assert_eq!(p.cooldown.scale_down.num_seconds(), 300);
    assert!(p.scale_to_zero.is_none());
    assert_eq!(p.scale_up_rules.len(), 1);
    let up = &p.scale_up_rules[0];
    assert_eq!(p.metrics[up.metric].query, "philotes_cdc_lag_seconds");
    assert_eq!(up.operator, Operator::Gt);
    assert_eq!(up.threshold, 60.0);
    assert_eq!(up.duration.num_seconds(), 300);
    assert_eq!(up.scale_by, 2);
    let down = &p.scale_down_rules[0];
    assert_eq!(down.metric, up.metric, "one metric, fetched once");
    assert_eq!(down.duration.num_seconds(), 600);
    assert_eq!(down.scale_by, -1);
    assert_eq!(p.schedules.len(), 1);
    assert_eq!(p.schedules[0].timezone, chrono_tz::Europe::Budapest);
    assert_eq!(p.schedules[0].desired_replicas, 5);
}

#[test]
fn the_specification_example_round_trips_through_yaml() {
    let policies = load_policies(SPEC_EXAMPLE, Format::Json).unwrap();
    let yaml = serde_yaml_ng::to_string(&policies[0].spec).unwrap();
    let again = load_policies(&yaml, Format::Yaml).unwrap();
    assert_eq!(again[0].spec, policies[0].spec);
}

const FIVE_MISTAKES: &str = r#"
name: web
min_replicas: 5
max_replicas: 3
cooldown: 60
scale_up_rules:
  - metric: cpu
    operator: greater
    threshold: 80
    duration: 5 minutes please
    scale_by: -2
schedules:
  - cron_expression: "0 25 * * *"
    desired_replicas: 3
    timezone: Europe/Budapst
metrics:
  cpu:
    query: avg(rate(cpu_seconds_total[1m]))
    per_replica: true
"#;

#[test]
fn every_mistake_in_a_file_is_reported_with_its_path() {
    let parsed = parse_document(FIVE_MISTAKES, Format::Yaml).unwrap();
    let results = validate_all(&parsed);
    let problems = results[0].as_ref().unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |path: &str, words: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.path == path && p.message.contains(words)),
            "no problem at `{path}` mentioning `{words}` in:\n{}",
            text.join("\n")
        )
    };
    has(
        "cooldown",
        "unknown field `cooldown`; did you mean `cooldown_seconds`?",
    );
    has("min_replicas", "greater than max_replicas");
    has("scale_up_rules[0].operator", "unknown operator `greater`");
    has("scale_up_rules[0].duration", "is not a duration");
    has("scale_up_rules[0].scale_by", "must be positive");
    has(
        "schedules[0].cron_expression",
        "not a valid cron expression",
    );
    has("schedules[0].timezone", "did you mean `Europe/Budapest`?");
    assert_eq!(problems.len(), 7, "{}", text.join("\n"));
}

#[test]
fn a_list_of_policies_reports_duplicate_names_and_prefixes_paths() {
    let doc = r#"
- name: a
  max_replicas: 3
  schedules: [{cron_expression: "0 8 * * *", desired_replicas: 2}]
- name: a
  max_replicas: 3
  scale_up_rules: [{metric: q, operator: gt, threshold: 1, scale_by: 1}]
  target_tracking: {metric: q, target: 0}
"#;
    let err = load_policies(doc, Format::Yaml).unwrap_err();
    let LoadError::Invalid(problems) = err else {
        panic!("expected validation problems, got {err:?}")
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        vec![
            "[1].name: duplicate policy name `a` (first used at [0])",
            "[1].target_tracking.target: must be a number greater than 0",
        ]
    );
}

#[test]
fn a_type_error_names_its_field() {
    let err = load_policies(r#"{"name":"x","max_replicas":"ten"}"#, Format::Json).unwrap_err();
    let LoadError::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    assert_eq!(problems[0].path, "max_replicas");
    assert!(problems[0].message.contains("invalid type"), "{problems:?}");
}

#[test]
fn a_bare_name_that_is_not_defined_is_caught_when_metrics_are_defined() {
    let doc = r#"
name: q
max_replicas: 4
metrics:
  queue_depth: {query: 'sum(redis_queue_length)'}
scale_up_rules: [{metric: queue_dept, operator: gt, threshold: 100, scale_by: 1}]
"#;
    let LoadError::Invalid(problems) = load_policies(doc, Format::Yaml).unwrap_err() else {
        panic!()
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "scale_up_rules[0].metric");
    assert!(problems[0].message.contains("Did you mean `queue_depth`?"));
}

#[test]
fn rules_that_can_hold_in_both_directions_are_rejected() {
    let doc = r#"
name: flappy
max_replicas: 4
scale_up_rules: [{metric: cpu, operator: gt, threshold: 60, scale_by: 1}]
scale_down_rules: [{metric: cpu, operator: lt, threshold: 70, scale_by: -1}]
"#;
    let LoadError::Invalid(problems) = load_policies(doc, Format::Yaml).unwrap_err() else {
        panic!()
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("`cpu` in (60, 70)"),
        "{problems:?}"
    );
}

#[test]
fn a_budget_below_the_minimum_is_rejected() {
    let doc = r#"
name: b
min_replicas: 4
max_replicas: 10
price_per_replica_hour: 0.5
max_hourly_cost: 1.5
schedules: [{cron_expression: "0 8 * * *", desired_replicas: 5}]
"#;
    let LoadError::Invalid(problems) = load_policies(doc, Format::Yaml).unwrap_err() else {
        panic!()
    };
    assert_eq!(problems[0].path, "max_hourly_cost");
    assert!(
        problems[0]
            .message
            .contains("below the cost of min_replicas")
    );
}

#[test]
fn the_specification_example_serializes_back_to_the_same_json() {
    let policies = load_policies(SPEC_EXAMPLE, Format::Json).unwrap();
    let sent: serde_json::Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    let back = serde_json::to_value(&policies[0].spec).unwrap();
    // Fields left out keep their defaults and are written back; every field sent comes
    // back exactly as sent, numbers included.
    for (field, value) in sent.as_object().unwrap() {
        assert_eq!(&back[field], value, "field `{field}`");
    }
}
