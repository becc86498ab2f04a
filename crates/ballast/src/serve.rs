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
    let server = start(&config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down: finishing the tick in flight");
    server.stop().await
}

/// A running server: the engine loop, the API and (when configured) the KEDA scaler.
pub struct Server {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Where the API listens.
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    engine_task: tokio::task::JoinHandle<()>,
    api_task: tokio::task::JoinHandle<std::io::Result<()>>,
    keda_task: Option<tokio::task::JoinHandle<Result<(), ballast_keda::KedaError>>>,
}

/// Opens the store, starts the engine loop, the API and the KEDA scaler.
pub async fn start(config: &Config) -> anyhow::Result<Server> {
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
            "no prometheus_url configured: Prometheus queries will fail and nothing scales down on them"
        );
    }
    let keda = ballast_keda::KedaBoard::new();
    let engine = Arc::new(Engine::new(
        store,
        source.clone(),
        Arc::new(Targets {
            data_dir: Some(config.data_dir.clone()),
            keda: keda.clone(),
            prometheus: source.clone(),
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
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "ballast serving");
    let engine_task = tokio::spawn(engine.clone().run(shutdown.clone()));
    let app = ballast_api::router(ballast_api::AppState {
        engine: engine.clone(),
    });
    let stop = shutdown.clone();
    let api_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok(Server {
        engine,
        addr,
        shutdown,
        engine_task,
        api_task,
        keda_task,
    })
}

impl Server {
    /// Stops taking requests, lets the tick and the actions in flight finish, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.engine_task.await.context("the engine task failed")?;
        self.api_task
            .await
            .context("the API task failed")?
            .context("the API server failed")?;
        if let Some(task) = self.keda_task {
            task.await
                .context("the KEDA scaler task failed")?
                .context("the KEDA external scaler failed")?;
        }
        Ok(())
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
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
