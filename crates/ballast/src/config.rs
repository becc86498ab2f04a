//! `ballast serve`'s configuration: a TOML file, then `BALLAST_*` environment variables, on
//! top of defaults that work on a fresh machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Where KEDA's external scaler gRPC service listens (off unless set, e.g.
    /// `0.0.0.0:8081`).
    pub keda_listen: Option<SocketAddr>,
    /// `sqlite://FILE` (default, created on first start) or `postgres://...`.
    pub database_url: String,
    /// Where executors keep local state (the process pool's records).
    pub data_dir: PathBuf,
    /// Prometheus' base URL; without one, every metric query fails (and nothing scales
    /// down on it).
    pub prometheus_url: Option<String>,
    /// The evaluation interval, such as `30s`.
    pub interval: String,
    /// How long one metric query may take.
    pub query_timeout: String,
    /// Metric queries in flight at once.
    pub query_concurrency: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `ballast_runtime=debug,info`.
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            keda_listen: None,
            database_url: "sqlite://ballast-data/ballast.db".to_owned(),
            data_dir: PathBuf::from("ballast-data"),
            prometheus_url: None,
            interval: "30s".to_owned(),
            query_timeout: "10s".to_owned(),
            query_concurrency: 16,
            log_format: "text".to_owned(),
            log_level: "info".to_owned(),
        }
    }
}

impl Config {
    /// Defaults, then the file (when given; a missing file named explicitly is an error),
    /// then `BALLAST_*` variables (`BALLAST_DATABASE_URL`, `BALLAST_PROMETHEUS_URL`,
    /// `BALLAST_LISTEN`, `BALLAST_INTERVAL`, `BALLAST_LOG_FORMAT`, ...).
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "the config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("BALLAST_"))
            .extract()
            .context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.interval()?;
        self.query_timeout()?;
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format must be `text` or `json`, not `{}`",
            self.log_format
        );
        anyhow::ensure!(
            self.query_concurrency > 0,
            "query_concurrency must be at least 1"
        );
        Ok(())
    }

    /// The evaluation interval.
    pub fn interval(&self) -> anyhow::Result<Duration> {
        let d = humantime::parse_duration(&self.interval).with_context(|| {
            format!("interval `{}` is not a duration such as 30s", self.interval)
        })?;
        anyhow::ensure!(d >= Duration::from_secs(1), "interval must be at least 1s");
        Ok(d)
    }

    /// The query timeout.
    pub fn query_timeout(&self) -> anyhow::Result<Duration> {
        humantime::parse_duration(&self.query_timeout).with_context(|| {
            format!(
                "query_timeout `{}` is not a duration such as 10s",
                self.query_timeout
            )
        })
    }
}
