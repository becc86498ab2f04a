//! `ballast serve`: the store, the engine loop and the API in one process.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_sources::prometheus::PrometheusSource;
use ballast_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Arguments of `ballast serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML config file; `BALLAST_*` environment variables override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Sets up logging as the config says.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    init_logging(&config);
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(&config.database_url)))?;
    let source = config
        .prometheus_url
        .as_deref()
        .map(|url| PrometheusSource::new(url, config.query_timeout()?).map_err(anyhow::Error::from))
        .transpose()?;
    if source.is_none() {
        tracing::warn!(
            "no prometheus_url configured: metric queries will fail and nothing scales down on them"
        );
    }
    let keda = ballast_keda::KedaBoard::new();
    let engine = Arc::new(Engine::new(
        store,
        source,
        Arc::new(Targets {
            data_dir: Some(config.data_dir.clone()),
            keda: keda.clone(),
        }),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: config.interval()?,
            query_timeout: config.query_timeout()?,
            concurrency: config.query_concurrency,
            ..EngineConfig::default()
        },
    ));
    let shutdown = CancellationToken::new();
    let engine_task = tokio::spawn(engine.clone().run(shutdown.clone()));
    let keda_task = match config.keda_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for KEDA on {addr}"))?;
            tracing::info!(listen = %listener.local_addr()?, "KEDA external scaler serving");
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                ballast_keda::serve(keda, listener, async move { stop.cancelled().await }).await
            }))
        }
        None => None,
    };
    let app = ballast_api::router(ballast_api::AppState { engine });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, backend = %"store", "ballast serving");
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing the tick in flight");
            stop.cancel();
        })
        .await?;
    shutdown.cancel();
    engine_task.await.context("the engine task failed")?;
    if let Some(task) = keda_task {
        task.await
            .context("the KEDA scaler task failed")?
            .context("the KEDA external scaler failed")?;
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
