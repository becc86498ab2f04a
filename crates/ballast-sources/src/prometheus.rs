//! Prometheus as a metric source, through its HTTP API (`/api/v1/query`,
//! `/api/v1/query_range`, `/-/ready`) with the `prometheus-http-query` client.
//!
//! The result of a query becomes one [`MetricObservation`]:
//!
//! | Prometheus answered                  | observation                                   |
//! |--------------------------------------|-----------------------------------------------|
//! | a vector or matrix with one series   | `Samples`, oldest first                       |
//! | a scalar                             | `Samples` with that one value                 |
//! | an empty vector or matrix            | `Empty` ("no data", never 0)                  |
//! | several series                       | `Failed`: aggregate the query to one series   |
//! | `status: error`                      | `Failed` with Prometheus' `errorType: error`  |
//! | nothing within the timeout           | `Failed("timed out after …")`                 |
//! | anything else (unreachable, not JSON)| `Failed` with the client's reason             |
//!
//! `NaN` and `±Inf` values are passed through as samples: judging them is the core's job
//! (bad data never scales down).

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use ballast_core::{MetricObservation, Sample};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt as _;
use prometheus_http_query::response::{Data, Sample as PromSample};
use prometheus_http_query::{Client, Error as PromError};

/// What can go wrong with a Prometheus source outside a query (queries never return an
/// error: they return [`MetricObservation::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The base URL given to [`PrometheusSource::new`] cannot be used.
    #[error("invalid Prometheus URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The timeout given to [`PrometheusSource::new`] is zero.
    #[error("invalid Prometheus timeout: it must be longer than zero")]
    InvalidTimeout,
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for Prometheus at {url}: {reason}")]
    ClientSetup {
        /// The base URL.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// `GET /-/ready` did not answer 200: Prometheus is unreachable, still starting up
    /// (replaying its write-ahead log) or shutting down.
    #[error("Prometheus at {url} is not ready: {reason}")]
    NotReady {
        /// The base URL.
        url: String,
        /// What the readiness check got instead.
        reason: String,
    },
}

/// A Prometheus server to run PromQL queries against.
///
/// Cheap to clone; clones share the connection pool. Every request (connecting included)
/// is bounded by the timeout given to [`PrometheusSource::new`], which is also sent to
/// Prometheus as the query's `timeout` so that it stops evaluating a query nobody waits
/// for any more.
#[derive(Clone)]
pub struct PrometheusSource {
    client: Client,
    base_url: String,
    timeout: Duration,
}

impl fmt::Debug for PrometheusSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusSource")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PrometheusSource {
    /// A source for the Prometheus at `base_url` (`http://host:9090`, or with a path prefix
    /// when Prometheus runs behind a proxy or with `--web.route-prefix`:
    /// `http://host/prometheus`). Nothing is sent yet; see [`PrometheusSource::ready`].
    ///
    /// Only `http` is accepted: this build has no TLS stack (see the crate docs).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, SourceError> {
        let invalid = |reason: String| SourceError::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut url = reqwest::Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(invalid(
                    "https needs a TLS stack, which this build leaves out; use http".into(),
                ));
            }
            other => {
                return Err(invalid(format!(
                    "the scheme must be http, not `{other}` (write it as http://host:port)"
                )));
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it names no host".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not have a query or a fragment".into()));
        }
        if timeout.is_zero() {
            return Err(SourceError::InvalidTimeout);
        }
        // The client appends `/api/v1/...` to the path with a slash of its own.
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        let base_url = url.to_string().trim_end_matches('/').to_owned();

        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| SourceError::ClientSetup {
                url: base_url.clone(),
                reason: error_chain(&e),
            })?;
        let client = Client::from(http, url.as_str()).map_err(|e| invalid(e.to_string()))?;
        Ok(PrometheusSource {
            client,
            base_url,
            timeout,
        })
    }

    /// The base URL, normalized (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The timeout of every request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `query` as an instant query evaluated at `at` (millisecond precision) and
    /// returns what it observed (see the module docs for the mapping). The expression must
    /// give one series: a vector with several is `Failed` with a hint to aggregate it.
    /// An instant query of a range selector (`metric[5m]`) gives that series' raw samples.
    pub async fn instant(&self, query: &str, at: DateTime<Utc>) -> MetricObservation {
        let result = self
            .client
            .query(query)
            .query("time", at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .timeout(self.timeout_millis())
            // POST: long expressions do not run into URL length limits.
            .post()
            .await;
        match result {
            Ok(result) => observation(result.into_inner().0),
            Err(error) => MetricObservation::Failed(self.describe(&error)),
        }
    }

    /// Runs `query` as an instant query at `at` and returns one value per series, keyed
    /// by the series' `label` (a value per node for choosing scale-down victims). Series
    /// without the label, or with a value that is not finite, are left out.
    pub async fn by_label(
        &self,
        query: &str,
        at: DateTime<Utc>,
        label: &str,
    ) -> Result<HashMap<String, f64>, String> {
        let result = self
            .client
            .query(query)
            .query("time", at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .timeout(self.timeout_millis())
            .post()
            .await
            .map_err(|e| self.describe(&e))?;
        match result.into_inner().0 {
            Data::Vector(series) => Ok(series
                .iter()
                .filter(|s| s.sample().value().is_finite())
                .filter_map(|s| {
                    s.metric()
                        .get(label)
                        .map(|name| (name.clone(), s.sample().value()))
                })
                .collect()),
            _ => Err(format!(
                "`{query}` must give a vector with one series per node (labelled `{label}`)"
            )),
        }
    }

    /// Runs `query` as a range query evaluated at `start`, `start + step`, … up to `end`,
    /// and returns all samples of its single series, oldest first (used to fill rule
    /// durations, e.g. after a restart). `start` and `end` are taken in whole seconds
    /// (rounded down), as the client sends them. Prometheus refuses ranges of more than
    /// 11,000 steps, with its own message.
    pub async fn range(
        &self,
        query: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> MetricObservation {
        let result = self
            .client
            .query_range(
                query,
                start.timestamp(),
                end.timestamp(),
                step.as_secs_f64(),
            )
            .timeout(self.timeout_millis())
            .post()
            .await;
        match result {
            Ok(result) => observation(result.into_inner().0),
            Err(error) => MetricObservation::Failed(self.describe(&error)),
        }
    }

    /// Runs each distinct query of `queries` once as an instant query at `at`, at most
    /// `concurrency` at a time (at least one), and returns one observation per entry of
    /// `queries`, in the same order; a query that appears twice gets the same observation
    /// twice.
    pub async fn fetch_all(
        &self,
        queries: &[String],
        at: DateTime<Utc>,
        concurrency: usize,
    ) -> Vec<MetricObservation> {
        let mut distinct: Vec<&str> = Vec::new();
        let mut position: HashMap<&str, usize> = HashMap::new();
        let slots: Vec<usize> = queries
            .iter()
            .map(|query| {
                *position.entry(query.as_str()).or_insert_with(|| {
                    distinct.push(query);
                    distinct.len() - 1
                })
            })
            .collect();
        let observed: Vec<MetricObservation> = futures::stream::iter(distinct)
            .map(|query| self.instant(query, at))
            // `buffered` keeps the input order while running up to `concurrency` at once.
            .buffered(concurrency.max(1))
            .collect()
            .await;
        slots.into_iter().map(|i| observed[i].clone()).collect()
    }

    /// Checks `GET /-/ready`: `Ok` once Prometheus serves queries (for `/readyz`).
    pub async fn ready(&self) -> Result<(), SourceError> {
        match self.client.is_server_ready().await {
            Ok(_) => Ok(()),
            Err(error) => Err(SourceError::NotReady {
                url: self.base_url.clone(),
                reason: self.describe(&error),
            }),
        }
    }

    fn timeout_millis(&self) -> i64 {
        i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX)
    }

    /// The reason of a failed request, in Prometheus' words where it gave some.
    fn describe(&self, error: &PromError) -> String {
        match error {
            // "bad_data: 1:5: parse error: ...", as Prometheus wrote it.
            PromError::Prometheus(error) => error.to_string(),
            PromError::Client(error) => match error.inner() {
                Some(cause) if cause.is_timeout() => format!(
                    "timed out after {}",
                    humantime::format_duration(self.timeout)
                ),
                Some(cause) => match cause.status() {
                    Some(status) => format!("{error}: HTTP {status} from {}", self.base_url),
                    None => format!("{error} at {}: {}", self.base_url, error_chain(cause)),
                },
                None => format!("{error} at {}", self.base_url),
            },
            other => other.to_string(),
        }
    }
}

/// The causes of a client error, outermost first, without reqwest's own line (which
/// repeats the whole URL, query included).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = error.source();
    while let Some(error) = cause {
        parts.push(error.to_string());
        cause = error.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

/// The observation for the data of a successful query.
fn observation(data: Data) -> MetricObservation {
    let samples = match data {
        Data::Scalar(sample) => vec![sample],
        Data::Vector(series) => match series.len() {
            0 => return MetricObservation::Empty,
            1 => vec![*series[0].sample()],
            n => return several_series(n),
        },
        Data::Matrix(mut series) => match series.len() {
            0 => return MetricObservation::Empty,
            1 => series.remove(0).into_inner().1,
            n => return several_series(n),
        },
    };
    if samples.is_empty() {
        return MetricObservation::Empty;
    }
    let mut converted = Vec::with_capacity(samples.len());
    for sample in samples {
        match convert(sample) {
            Some(sample) => converted.push(sample),
            None => {
                return MetricObservation::Failed(format!(
                    "Prometheus returned a sample with an impossible timestamp ({})",
                    sample.timestamp()
                ));
            }
        }
    }
    MetricObservation::Samples(converted)
}

fn several_series(n: usize) -> MetricObservation {
    MetricObservation::Failed(format!(
        "the query returned {n} series; aggregate it (sum, avg, max) to one"
    ))
}

/// Prometheus timestamps are seconds with millisecond precision, as a float.
fn convert(sample: PromSample) -> Option<Sample> {
    let millis = (sample.timestamp() * 1000.0).round();
    if !millis.is_finite() {
        return None;
    }
    let at = DateTime::from_timestamp_millis(millis as i64)?;
    Some(Sample {
        at,
        value: sample.value(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_http_are_refused_with_the_reason() {
        let error = PrometheusSource::new("localhost:9090", Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid Prometheus URL `localhost:9090`: the scheme must be http, not `localhost` \
             (write it as http://host:port)"
        );
        let error = PrometheusSource::new("not a url", Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid Prometheus URL `not a url`: relative URL without a base"
        );
        let error =
            PrometheusSource::new("https://prometheus:9090", Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("TLS"), "{error}");
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        assert_eq!(
            PrometheusSource::new("http://127.0.0.1:9090", Duration::ZERO).unwrap_err(),
            SourceError::InvalidTimeout
        );
    }

    #[test]
    fn base_urls_are_kept_without_a_trailing_slash() {
        let timeout = Duration::from_secs(1);
        let root = PrometheusSource::new("http://127.0.0.1:9090/", timeout).unwrap();
        assert_eq!(root.base_url(), "http://127.0.0.1:9090");
        let prefixed = PrometheusSource::new("http://proxy/prometheus/", timeout).unwrap();
        assert_eq!(prefixed.base_url(), "http://proxy/prometheus");
    }
}
