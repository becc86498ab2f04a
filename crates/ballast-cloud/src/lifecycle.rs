//! Readiness and draining for a node group: an HTTP health check, a drain webhook, or the
//! Kubernetes node lifecycle handed in by the runtime.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{ExecutorError, NodeLifecycle, TargetProblem};
use http::Method;

use crate::config::{DrainSpec, GroupConfig, ReadinessSpec};
use crate::http::{Http, Request, classify};

/// The addresses of a group's servers by name, filled in by the group as servers come up,
/// read by [`HttpReadiness`].
#[derive(Debug, Clone, Default)]
pub struct Addresses(Arc<RwLock<HashMap<String, IpAddr>>>);

impl Addresses {
    /// Records `name`'s address.
    pub fn set(&self, name: &str, ip: IpAddr) {
        self.0
            .write()
            .expect("no panic under the lock")
            .insert(name.to_string(), ip);
    }

    /// `name`'s address, if known.
    pub fn get(&self, name: &str) -> Option<IpAddr> {
        self.0
            .read()
            .expect("no panic under the lock")
            .get(name)
            .copied()
    }

    /// Forgets `name`.
    pub fn remove(&self, name: &str) {
        self.0
            .write()
            .expect("no panic under the lock")
            .remove(name);
    }
}

/// Readiness from one lifecycle and draining from another, with the address book the group
/// fills in.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    ready: Arc<dyn NodeLifecycle>,
    drain: Arc<dyn NodeLifecycle>,
    addresses: Addresses,
}

impl Lifecycle {
    /// Asks `ready` whether a server is ready and `drain` to drain it.
    pub fn new(
        ready: Arc<dyn NodeLifecycle>,
        drain: Arc<dyn NodeLifecycle>,
        addresses: Addresses,
    ) -> Lifecycle {
        Lifecycle {
            ready,
            drain,
            addresses,
        }
    }

    /// One lifecycle for both.
    pub fn single(both: Arc<dyn NodeLifecycle>) -> Lifecycle {
        Lifecycle::new(both.clone(), both, Addresses::default())
    }

    /// The lifecycle a `target` block asks for: `readiness` `{http: url}` or
    /// `{kubernetes: true}` (default: running is ready), `drain` `{webhook: url}` or
    /// `{kubernetes: true}` (default: no draining).
    pub fn from_config(
        config: &GroupConfig,
        platform: &crate::Platform,
    ) -> Result<Lifecycle, TargetProblem> {
        let addresses = Addresses::default();
        let timeout = config.timeouts.request.0;
        let kubernetes = |field: &str| {
            platform.kubernetes.clone().ok_or_else(|| {
                TargetProblem::at(
                    field,
                    "asks for Kubernetes, but Ballast has no Kubernetes cluster configured",
                )
            })
        };
        let ready: Arc<dyn NodeLifecycle> = match &config.readiness {
            None => Arc::new(RunningIsReady),
            Some(ReadinessSpec::Http(url)) => Arc::new(
                HttpReadiness::new(url.clone(), addresses.clone(), timeout)
                    .map_err(|e| TargetProblem::at("readiness.http", e))?,
            ),
            Some(ReadinessSpec::Kubernetes(_)) => kubernetes("readiness.kubernetes")?,
        };
        let drain: Arc<dyn NodeLifecycle> = match &config.drain {
            None => Arc::new(RunningIsReady),
            Some(DrainSpec::Webhook(url)) => Arc::new(
                WebhookDrain::new(url.clone(), timeout)
                    .map_err(|e| TargetProblem::at("drain.webhook", e))?,
            ),
            Some(DrainSpec::Kubernetes(_)) => kubernetes("drain.kubernetes")?,
        };
        Ok(Lifecycle::new(ready, drain, addresses))
    }

    /// The address book the group fills in.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// Whether `node` is ready.
    pub async fn ready(&self, node: &str) -> Result<bool, ExecutorError> {
        self.ready.ready(node).await
    }

    /// Drains `node`.
    pub async fn drain(&self, node: &str) -> Result<(), ExecutorError> {
        self.drain.drain(node).await
    }
}

/// A server is ready once it runs, and needs no draining.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunningIsReady;

#[async_trait]
impl NodeLifecycle for RunningIsReady {
    async fn ready(&self, _node: &str) -> Result<bool, ExecutorError> {
        Ok(true)
    }
    async fn drain(&self, _node: &str) -> Result<(), ExecutorError> {
        Ok(())
    }
}

/// Fills `{ip}` and `{name}` into a URL template (an IPv6 address in brackets).
pub(crate) fn fill_url(template: &str, name: &str, ip: &str) -> Result<String, String> {
    let ip = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{template:?} has an unclosed `{{`"))?;
        match &after[..end] {
            "ip" => out.push_str(&ip),
            "name" => out.push_str(name),
            other => {
                return Err(format!(
                    "{template:?} uses {{{other}}}; only {{ip}} and {{name}} are filled in"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Readiness by HTTP: GETs a URL template (`http://{ip}:8080/healthz`) for the server and
/// calls it ready on a 2xx answer. No answer, another status or an unknown address is "not
/// ready yet"; the group keeps asking until its deadline. Drains nothing.
pub struct HttpReadiness {
    template: String,
    addresses: Addresses,
    http: Http,
}

impl fmt::Debug for HttpReadiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReadiness")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl HttpReadiness {
    /// Checks `template` for servers whose addresses are in `addresses`; one check may take
    /// `timeout`.
    pub fn new(
        template: impl Into<String>,
        addresses: Addresses,
        timeout: Duration,
    ) -> Result<HttpReadiness, String> {
        let template = template.into();
        fill_url(&template, "x", "127.0.0.1")?;
        Ok(HttpReadiness {
            template,
            addresses,
            http: Http::new(timeout)?,
        })
    }
}

#[async_trait]
impl NodeLifecycle for HttpReadiness {
    async fn ready(&self, node: &str) -> Result<bool, ExecutorError> {
        let Some(ip) = self.addresses.get(node) else {
            tracing::debug!(node, "no address yet");
            return Ok(false);
        };
        let url =
            fill_url(&self.template, node, &ip.to_string()).map_err(ExecutorError::Permanent)?;
        match self
            .http
            .send("readiness", &Request::new(Method::GET, url))
            .await
        {
            Ok(r) => Ok(r.status.is_success()),
            Err(e) => {
                tracing::debug!(node, error = %e, "health check did not answer");
                Ok(false)
            }
        }
    }

    async fn drain(&self, _node: &str) -> Result<(), ExecutorError> {
        Ok(())
    }
}

/// Draining by webhook: POSTs `{"node": "<name>"}` to a URL and expects a 2xx once the node
/// is empty. Every server is ready as soon as it runs.
pub struct WebhookDrain {
    url: String,
    http: Http,
}

impl fmt::Debug for WebhookDrain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookDrain")
            .field("url", &crate::http::strip_query(&self.url))
            .finish_non_exhaustive()
    }
}

impl WebhookDrain {
    /// Posts to `url`; one call may take `timeout`.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<WebhookDrain, String> {
        Ok(WebhookDrain {
            url: url.into(),
            http: Http::new(timeout)?,
        })
    }
}

#[async_trait]
impl NodeLifecycle for WebhookDrain {
    async fn ready(&self, _node: &str) -> Result<bool, ExecutorError> {
        Ok(true)
    }

    async fn drain(&self, node: &str) -> Result<(), ExecutorError> {
        let req =
            Request::new(Method::POST, self.url.clone()).json(&serde_json::json!({"node": node}));
        let r = self.http.send("drain webhook", &req).await?;
        if r.status.is_success() {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&r.body);
        let body: String = body.chars().take(200).collect();
        Err(classify(
            r.status,
            format!(
                "drain webhook {} answered {} for {node}: {}",
                crate::http::strip_query(&self.url),
                r.status,
                body.trim()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_templates_take_ip_and_name() {
        assert_eq!(
            fill_url("http://{ip}:8080/healthz?n={name}", "web-1", "10.0.0.1").unwrap(),
            "http://10.0.0.1:8080/healthz?n=web-1"
        );
        assert_eq!(
            fill_url("http://{ip}/", "w", "2001:db8::1").unwrap(),
            "http://[2001:db8::1]/"
        );
        assert!(
            fill_url("http://{host}/", "w", "1.2.3.4")
                .unwrap_err()
                .contains("{host}")
        );
        assert!(fill_url("http://{ip/", "w", "1.2.3.4").is_err());
    }
}
