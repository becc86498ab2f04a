//! `PrometheusSource` against a real Prometheus (Debian's `prometheus` package; run
//! `scripts/services.sh` to install it). Each test starts its own server on a free
//! loopback port with temporary storage, fed either by backfilling OpenMetrics samples
//! with `promtool` or by scraping a loopback exporter every second.

use std::net::TcpListener;
use std::time::Duration;

use ballast_core::{MetricObservation, Sample};
use ballast_sources::testing::{TestExporter, TestPrometheus};
use ballast_sources::{PrometheusSource, SourceError};
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Bounded polling for scraped data: Prometheus scrapes every second.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const POLL_TRIES: u32 = 200;

/// Values of `queue_length{queue="a"}`, one a minute from [`Backfill::start`] on.
const QUEUE_A: [f64; 11] = [
    3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 144.0, 233.0, 377.0,
];

/// A Prometheus holding known samples from three hours ago. Any time would do for a
/// Prometheus started after the backfill (its head is empty; recent and even future samples
/// are served); the past keeps them out of the lookback of queries at "now", as recorded
/// traces would be.
struct Backfill {
    prometheus: TestPrometheus,
    source: PrometheusSource,
    /// The first sample's time, on a whole minute.
    start: DateTime<Utc>,
}

impl Backfill {
    async fn start() -> Backfill {
        let start = (Utc::now() - TimeDelta::hours(3))
            .duration_trunc(TimeDelta::minutes(1))
            .unwrap();
        let at = |minute: usize| start.timestamp() + 60 * minute as i64;
        let mut openmetrics = String::from("# TYPE queue_length gauge\n");
        for (minute, value) in QUEUE_A.iter().enumerate() {
            openmetrics.push_str(&format!(
                "queue_length{{queue=\"a\"}} {value} {}\n",
                at(minute)
            ));
        }
        for minute in 0..QUEUE_A.len() {
            openmetrics.push_str(&format!(
                "queue_length{{queue=\"b\"}} {} {}\n",
                100 + minute,
                at(minute)
            ));
        }
        openmetrics.push_str("# TYPE odd_ratio gauge\n");
        for (minute, value) in ["NaN", "+Inf", "-Inf"].iter().enumerate() {
            openmetrics.push_str(&format!("odd_ratio {value} {}\n", at(minute)));
        }
        openmetrics.push_str("# EOF\n");

        let prometheus = TestPrometheus::start_with_backfill(&openmetrics).await;
        let source = prometheus.source(TIMEOUT);
        Backfill {
            prometheus,
            source,
            start,
        }
    }

    fn minute(&self, minute: i64) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(minute)
    }
}

fn samples(observation: &MetricObservation) -> &[Sample] {
    match observation {
        MetricObservation::Samples(samples) => samples,
        other => panic!("expected samples, got {other:?}"),
    }
}

fn failure(observation: &MetricObservation) -> &str {
    match observation {
        MetricObservation::Failed(reason) => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_instant_query_returns_the_backfilled_value_at_that_time() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(4);

    let observed = backfill
        .source
        .instant(r#"queue_length{queue="a"}"#, at)
        .await;

    assert_eq!(observed, MetricObservation::value(at, 21.0));
}

#[tokio::test]
async fn an_instant_query_between_samples_returns_the_latest_earlier_one() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(4) + TimeDelta::seconds(30);

    let observed = backfill
        .source
        .instant(r#"queue_length{queue="a"}"#, at)
        .await;

    // Evaluated at `at`, with the value of minute 4 (Prometheus' lookback).
    assert_eq!(observed, MetricObservation::value(at, 21.0));
}

#[tokio::test]
async fn a_range_query_returns_every_backfilled_sample_oldest_first() {
    let backfill = Backfill::start().await;

    let observed = backfill
        .source
        .range(
            r#"queue_length{queue="a"}"#,
            backfill.minute(0),
            backfill.minute(10),
            Duration::from_secs(60),
        )
        .await;

    let expected: Vec<Sample> = QUEUE_A
        .iter()
        .enumerate()
        .map(|(minute, &value)| Sample {
            at: backfill.minute(minute as i64),
            value,
        })
        .collect();
    assert_eq!(observed, MetricObservation::Samples(expected));
}

#[tokio::test]
async fn an_aggregated_query_over_several_series_gives_one_sample() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(2);

    let observed = backfill.source.instant("sum(queue_length)", at).await;

    assert_eq!(observed, MetricObservation::value(at, 8.0 + 102.0));
}

#[tokio::test]
async fn a_query_without_matching_series_is_empty_not_zero() {
    let backfill = Backfill::start().await;
    let query = r#"queue_length{queue="nope"}"#;

    let instant = backfill.source.instant(query, backfill.minute(3)).await;
    let range = backfill
        .source
        .range(
            query,
            backfill.minute(0),
            backfill.minute(10),
            Duration::from_secs(60),
        )
        .await;

    assert_eq!(instant, MetricObservation::Empty);
    assert_eq!(range, MetricObservation::Empty);
}

#[tokio::test]
async fn a_series_older_than_the_lookback_window_is_empty() {
    let backfill = Backfill::start().await;

    // Five minutes of lookback after the last sample, there is nothing left.
    let observed = backfill
        .source
        .instant(r#"queue_length{queue="a"}"#, backfill.minute(10 + 6))
        .await;

    assert_eq!(observed, MetricObservation::Empty);
}

#[tokio::test]
async fn a_bad_expression_fails_with_prometheus_own_error_type_and_message() {
    let backfill = Backfill::start().await;

    let observed = backfill
        .source
        .instant("sum(queue_length", backfill.minute(3))
        .await;

    let reason = failure(&observed);
    assert!(reason.starts_with("bad_data: "), "{reason}");
    assert!(reason.contains("parse error"), "{reason}");
}

#[tokio::test]
async fn several_series_fail_with_a_hint_to_aggregate_them() {
    let backfill = Backfill::start().await;
    let expected = MetricObservation::Failed(
        "the query returned 2 series; aggregate it (sum, avg, max) to one".into(),
    );

    let instant = backfill
        .source
        .instant("queue_length", backfill.minute(3))
        .await;
    let range = backfill
        .source
        .range(
            "queue_length",
            backfill.minute(0),
            backfill.minute(10),
            Duration::from_secs(60),
        )
        .await;

    assert_eq!(instant, expected);
    assert_eq!(range, expected);
}

#[tokio::test]
async fn nan_and_infinite_values_pass_through_as_samples() {
    let backfill = Backfill::start().await;

    let nan = backfill
        .source
        .instant("odd_ratio", backfill.minute(0))
        .await;
    let inf = backfill
        .source
        .instant("odd_ratio", backfill.minute(1))
        .await;
    let minus_inf = backfill
        .source
        .instant("odd_ratio", backfill.minute(2))
        .await;

    assert!(samples(&nan)[0].value.is_nan(), "{nan:?}");
    assert_eq!(samples(&inf)[0].value, f64::INFINITY);
    assert_eq!(samples(&minus_inf)[0].value, f64::NEG_INFINITY);
}

#[tokio::test]
async fn a_scalar_result_is_one_sample() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(3);

    let observed = backfill
        .source
        .instant(r#"scalar(queue_length{queue="a"}) * 2"#, at)
        .await;

    assert_eq!(observed, MetricObservation::value(at, 26.0));
}

#[tokio::test]
async fn fetch_all_runs_each_distinct_query_once_and_keeps_the_order() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(5);
    let queries: Vec<String> = [
        r#"queue_length{queue="a"}"#,
        r#"queue_length{queue="b"}"#,
        r#"queue_length{queue="nope"}"#,
        r#"queue_length{queue="a"}"#,
        "sum(",
        r#"queue_length{queue="b"}"#,
    ]
    .map(String::from)
    .to_vec();
    let before = query_requests(&backfill.prometheus).await;

    let observed = backfill.source.fetch_all(&queries, at, 2).await;

    assert_eq!(observed.len(), queries.len());
    assert_eq!(observed[0], MetricObservation::value(at, 34.0));
    assert_eq!(observed[1], MetricObservation::value(at, 105.0));
    assert_eq!(observed[2], MetricObservation::Empty);
    assert_eq!(observed[3], observed[0]);
    assert!(failure(&observed[4]).starts_with("bad_data: "));
    assert_eq!(observed[5], observed[1]);
    // Four distinct queries, so four requests (Prometheus counts a request just after
    // answering it: wait for the count to arrive, boundedly).
    let mut after = query_requests(&backfill.prometheus).await;
    for _ in 0..POLL_TRIES {
        if after >= before + 4.0 {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        after = query_requests(&backfill.prometheus).await;
    }
    assert_eq!(after - before, 4.0);
}

/// Requests Prometheus has served on `/api/v1/query`, by its own `/metrics`.
async fn query_requests(prometheus: &TestPrometheus) -> f64 {
    let text = reqwest::get(format!("{}/metrics", prometheus.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("prometheus_http_requests_total{")
                && line.contains(r#"handler="/api/v1/query""#)
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn a_scraped_value_is_seen_by_an_instant_query_and_follows_the_exporter() {
    let exporter = TestExporter::start("ballast_test_queue_depth{queue=\"emails\"} 42\n").await;
    let prometheus = TestPrometheus::start_scraping(exporter.addr()).await;
    let source = prometheus.source(TIMEOUT);

    let first = poll_until_value(&source, "ballast_test_queue_depth", 42.0).await;
    exporter.set("ballast_test_queue_depth{queue=\"emails\"} 17\n");
    let second = poll_until_value(&source, "ballast_test_queue_depth", 17.0).await;

    assert!(exporter.scrapes() >= 2, "{exporter:?}");
    assert!(first.at <= second.at);
}

/// Polls an instant query at the current time until it gives `expected`, boundedly.
async fn poll_until_value(source: &PrometheusSource, query: &str, expected: f64) -> Sample {
    let mut last = MetricObservation::NotFetched;
    for _ in 0..POLL_TRIES {
        last = source.instant(query, Utc::now()).await;
        if let MetricObservation::Samples(samples) = &last
            && samples.len() == 1
            && samples[0].value == expected
        {
            return samples[0];
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("`{query}` never gave {expected}; last: {last:?}");
}

#[tokio::test]
async fn ready_is_ok_for_a_running_prometheus() {
    let backfill = Backfill::start().await;

    assert_eq!(backfill.source.ready().await, Ok(()));
}

#[tokio::test]
async fn ready_names_the_url_when_nothing_listens() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let source = PrometheusSource::new(&url, TIMEOUT).unwrap();

    let error = source.ready().await.unwrap_err();

    assert!(
        matches!(&error, SourceError::NotReady { url: u, .. } if *u == url),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_fails_at_once_with_the_reason() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let source = PrometheusSource::new(&url, TIMEOUT).unwrap();

    // Bounded so that a hang fails the test instead of stalling it; refusal is immediate.
    let observed = tokio::time::timeout(TIMEOUT, source.instant("up", Utc::now()))
        .await
        .expect("a refused connection fails within the timeout");

    let reason = failure(&observed);
    assert!(
        reason.starts_with(&format!("failed to send request to server at {url}: ")),
        "{reason}"
    );
    assert!(reason.contains("refused"), "{reason}");
}

#[tokio::test]
async fn a_prometheus_that_never_answers_fails_after_the_timeout() {
    // Accepts connections (the kernel's backlog does) but never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let source = PrometheusSource::new(&url, Duration::from_millis(300)).unwrap();

    let observed = tokio::time::timeout(TIMEOUT, source.instant("up", Utc::now()))
        .await
        .expect("the source's own timeout fires first");

    assert_eq!(
        observed,
        MetricObservation::Failed("timed out after 300ms".into())
    );
}

#[tokio::test]
async fn an_answer_that_is_not_the_prometheus_api_fails_with_the_reason() {
    // The exporter answers every path with text, as a wrong base URL or a proxy might.
    let exporter = TestExporter::start("not the API\n").await;
    let source = PrometheusSource::new(&format!("http://{}", exporter.addr()), TIMEOUT).unwrap();

    let observed = source.instant("up", Utc::now()).await;

    let reason = failure(&observed);
    assert_eq!(
        reason,
        format!(
            "failed to parse response from server due to invalid media type at {}",
            source.base_url()
        )
    );
}

#[tokio::test]
async fn by_label_gives_one_value_per_series_keyed_by_the_label() {
    let backfill = Backfill::start().await;
    let at = backfill.minute(2);

    let values = backfill
        .source
        .by_label("queue_length", at, "queue")
        .await
        .expect("a vector");
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values["a"], 8.0);
    assert_eq!(values["b"], 102.0);

    let unlabelled = backfill
        .source
        .by_label("queue_length", at, "node")
        .await
        .expect("a vector");
    assert!(
        unlabelled.is_empty(),
        "series without the label are left out"
    );
    let scalar = backfill
        .source
        .by_label("scalar(vector(1))", at, "node")
        .await;
    assert!(scalar.unwrap_err().contains("one series per node"));
    let bad = backfill.source.by_label("sum(", at, "node").await;
    assert!(bad.is_err());
}
