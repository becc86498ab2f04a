//! Reaching a cluster: a kubeconfig file and context, or what `kubectl` would find.

use std::path::Path;
use std::time::Duration;

use ballast_executor::ExecutorError;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::chain;

/// How long one request may wait for its answer before it counts as a timeout.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for the cluster that `kubeconfig` and `context` name. With neither, the
/// cluster is found as `kubectl` would (`KUBECONFIG` or `~/.kube/config`, else the
/// in-cluster service account); with only `context`, that context of the default
/// kubeconfig. A configuration that cannot be read or used is a permanent error.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ExecutorError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let in_context = context
        .map(|c| format!(" (context `{c}`)"))
        .unwrap_or_default();
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                ExecutorError::Permanent(format!(
                    "target.kubeconfig: cannot read `{}`: {}",
                    path.display(),
                    chain(&e)
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    ExecutorError::Permanent(format!(
                        "target.kubeconfig: cannot use `{}`{in_context}: {}",
                        path.display(),
                        chain(&e)
                    ))
                })?
        }
        None if context.is_some() => {
            kube::Config::from_kubeconfig(&options).await.map_err(|e| {
                ExecutorError::Permanent(format!(
                    "target.context: cannot use the default kubeconfig{in_context}: {}",
                    chain(&e)
                ))
            })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            ExecutorError::Permanent(format!(
                "no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a cluster: {}",
                chain(&e)
            ))
        })?,
    };
    client_from_config(config)
}

/// A client from a ready `kube::Config`, with Ballast's settings: no retries inside the
/// client (the runtime owns retries and backoff, so a 429 or 503 comes back at once as a
/// transient error) and a read timeout, so a silent server cannot hold an action forever.
pub fn client_from_config(mut config: kube::Config) -> Result<kube::Client, ExecutorError> {
    config.default_retry = false;
    if config.read_timeout.is_none() {
        config.read_timeout = Some(READ_TIMEOUT);
        config.reset_reader_on_write = true;
    }
    kube::Client::try_from(config).map_err(|e| {
        ExecutorError::Permanent(format!("cannot build a Kubernetes client: {}", chain(&e)))
    })
}
