//! Each provider's catalogue of server prices, for `ballast prices`.

use std::path::PathBuf;
use std::time::Duration;

use ballast_executor::ExecutorError;
use secrecy::SecretString;
use serde::Serialize;

use crate::config::{ProviderKind, Source};

/// One server type's hourly price at one place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceRow {
    /// Server type, commercial type or flavor name.
    pub server_type: String,
    /// Location, zone or region (`*` when the catalogue prices every region alike).
    pub location: String,
    /// Price of one server for an hour (Hetzner: gross, VAT included; Scaleway and OVHcloud:
    /// without VAT, as their catalogues give it).
    pub hourly: f64,
    /// The currency (`EUR`).
    pub currency: String,
    /// vCPUs, when the catalogue says.
    pub cpus: Option<f64>,
    /// Memory in GB, when the catalogue says.
    pub memory_gb: Option<f64>,
}

/// What to read a catalogue with.
#[derive(Debug, Clone, Default)]
pub struct PriceQuery {
    /// Only this location (Hetzner), zone (Scaleway, required there: its catalogue is per
    /// zone) or region (OVHcloud).
    pub place: Option<String>,
    /// Base URL of the provider's API (default: its public endpoint).
    pub endpoint: Option<String>,
    /// A file of `NAME=value` credential lines (else the environment).
    pub credentials_file: Option<PathBuf>,
    /// OVHcloud subsidiary whose catalogue to read (default `FR`).
    pub subsidiary: Option<String>,
}

/// Reads `kind`'s catalogue: Hetzner `GET /server_types` (gross hourly price per location;
/// needs `HCLOUD_TOKEN`), Scaleway `GET /instance/v1/zones/{zone}/products/servers`
/// (`hourly_price`; needs `SCW_SECRET_KEY`), OVHcloud's public catalogue
/// `GET /order/catalog/public/cloud` (the hourly `<flavor>.consumption` plans; no
/// credentials). Rows are sorted by place, then price.
pub async fn prices(
    kind: ProviderKind,
    query: &PriceQuery,
) -> Result<Vec<PriceRow>, ExecutorError> {
    prices_with_env(kind, query, &|name| std::env::var(name).ok()).await
}

/// [`prices`], with the environment given as a lookup function.
pub async fn prices_with_env(
    kind: ProviderKind,
    query: &PriceQuery,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<PriceRow>, ExecutorError> {
    let timeout = Duration::from_secs(30);
    let max_wait = Duration::from_secs(60);
    let source = Source::new(kind, query.credentials_file.as_deref(), env)
        .map_err(|p| ExecutorError::Permanent(p.to_string()))?;
    let secret = |name: &str| -> Result<SecretString, ExecutorError> {
        source
            .get(name)
            .map(SecretString::from)
            .map_err(|p| ExecutorError::Permanent(p.reason))
    };
    let endpoint = query.endpoint.as_deref();
    let mut rows = match kind {
        ProviderKind::Hetzner => {
            let api =
                crate::hetzner::Api::new(endpoint, secret("HCLOUD_TOKEN")?, timeout, max_wait)
                    .map_err(ExecutorError::Permanent)?;
            api.price_rows(query.place.as_deref()).await?
        }
        ProviderKind::Scaleway => {
            let zone = query.place.as_deref().ok_or_else(|| {
                ExecutorError::Permanent("scaleway prices are per zone: give a zone".into())
            })?;
            let api =
                crate::scaleway::Api::new(endpoint, secret("SCW_SECRET_KEY")?, timeout, max_wait)
                    .map_err(ExecutorError::Permanent)?;
            api.price_rows(zone).await?
        }
        ProviderKind::Ovh => {
            let api = crate::ovh::Api::public(endpoint, timeout, max_wait)
                .map_err(ExecutorError::Permanent)?;
            api.price_rows(
                query.subsidiary.as_deref().unwrap_or("FR"),
                query.place.as_deref(),
            )
            .await?
        }
    };
    rows.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then(a.hourly.total_cmp(&b.hourly))
            .then_with(|| a.server_type.cmp(&b.server_type))
    });
    Ok(rows)
}
