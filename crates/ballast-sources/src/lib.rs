//! Ballast's metric sources: adapters that run a policy's queries against a metrics backend
//! and hand the engine a [`MetricObservation`](ballast_core::MetricObservation) for each.
//!
//! A source never fails a whole evaluation: every problem (a bad expression, an unreachable
//! server, a timeout, a result the engine cannot use) becomes
//! [`MetricObservation::Failed`](ballast_core::MetricObservation::Failed) with the
//! backend's own words, and the core decides what bad data means ("no action", or the
//! policy's fallback).
//!
//! - [`prometheus`]: instant and range queries through the Prometheus HTTP API.
//! - `testing` (feature `test-support`): a real Prometheus started per test, and a
//!   loopback exporter for it to scrape.
//!
//! # TLS
//!
//! The HTTP client is built without a TLS stack for now (`prometheus-http-query` and
//! `reqwest` with `default-features = false`): Prometheus is reached over plain HTTP, and
//! an `https://` URL fails at query time with the client's own error. Enabling the
//! `rustls-tls` feature of `prometheus-http-query` in the workspace adds it.

pub mod prometheus;
#[cfg(feature = "test-support")]
pub mod testing;

pub use prometheus::{PrometheusSource, SourceError};
