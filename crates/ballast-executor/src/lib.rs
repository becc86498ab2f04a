//! The executor interface. An executor owns one target (a deployment, a node group, a
//! process pool, ...) and can read its current count, set a new one and describe itself.
//!
//! Every executor follows the same contract, checked by the shared conformance suite
//! ([`conformance`], behind the `conformance` feature):
//!
//! - `current` reads the count the target really has now.
//! - `scale(n)` brings the target to `n` and returns the count reached. Asking for the count
//!   the target already has changes nothing.
//! - Errors are [`ExecutorError::Transient`] (the runtime retries with backoff) or
//!   [`ExecutorError::Permanent`] (recorded; the policy is marked failing).
//! - One action is in flight per target: the runtime wraps every executor in [`Serialized`].
//!
//! The executor for a policy is chosen by the policy's `target` block: `type` names the
//! executor and the other fields are that executor's own, parsed with [`parse_target`].

use std::fmt::Debug;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod log;

pub use log::LogExecutor;

/// Why an executor could not read or change a count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// Worth retrying (a timeout, a conflict, a rate limit, a server error).
    #[error("transient: {0}")]
    Transient(String),
    /// Not worth retrying (forbidden, not found, invalid); the policy is marked failing.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl ExecutorError {
    /// Whether the runtime should try again.
    pub fn is_transient(&self) -> bool {
        matches!(self, ExecutorError::Transient(_))
    }

    /// The message without its class.
    pub fn message(&self) -> &str {
        match self {
            ExecutorError::Transient(m) | ExecutorError::Permanent(m) => m,
        }
    }
}

/// What an executor acts on, for decisions, logs and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// The executor's `type` (`log`, `kubernetes`, `hetzner`, ...).
    pub kind: String,
    /// The target in the executor's own words (`deployments/default/web`, `group web at fsn1`).
    pub target: String,
    /// Price of one replica for an hour, when the executor knows it (cloud catalogues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_per_replica_hour: Option<f64>,
    /// The currency of that price (`EUR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl Description {
    /// A description without a price.
    pub fn new(kind: impl Into<String>, target: impl Into<String>) -> Description {
        Description {
            kind: kind.into(),
            target: target.into(),
            price_per_replica_hour: None,
            currency: None,
        }
    }
}

/// One target's executor.
#[async_trait]
pub trait Executor: Send + Sync + Debug {
    /// What this executor acts on. Cheap: no I/O.
    fn describe(&self) -> Description;

    /// The count the target has now.
    async fn current(&self) -> Result<u32, ExecutorError>;

    /// Brings the target to `to` and returns the count reached. Asking for the current
    /// count changes nothing.
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError>;

    /// The policy no longer drives this target (it was deleted or given another target).
    /// Executors that own what they run (a process pool) stop it; the others leave the
    /// target as it is, which is the default.
    async fn release(&self) -> Result<(), ExecutorError> {
        Ok(())
    }
}

#[async_trait]
impl<E: Executor + ?Sized> Executor for std::sync::Arc<E> {
    fn describe(&self) -> Description {
        (**self).describe()
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        (**self).current().await
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        (**self).scale(to).await
    }
    async fn release(&self) -> Result<(), ExecutorError> {
        (**self).release().await
    }
}

#[async_trait]
impl<E: Executor + ?Sized> Executor for Box<E> {
    fn describe(&self) -> Description {
        (**self).describe()
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        (**self).current().await
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        (**self).scale(to).await
    }
    async fn release(&self) -> Result<(), ExecutorError> {
        (**self).release().await
    }
}

/// What a node group needs from the platform its servers join: whether a new server is
/// ready to take load, and how to empty one before it is deleted. Implemented by the
/// Kubernetes crate (node Ready condition; cordon and evict) and by plain HTTP checks.
#[async_trait]
pub trait NodeLifecycle: Send + Sync + Debug {
    /// Whether the server named `node` (its name at the provider, which is also its
    /// Kubernetes node name) is ready to take load.
    async fn ready(&self, node: &str) -> Result<bool, ExecutorError>;

    /// Empties `node` before it is deleted (cordon and evict on Kubernetes, a drain hook
    /// elsewhere). Returns once nothing runs there any more.
    async fn drain(&self, node: &str) -> Result<(), ExecutorError>;
}

/// Lets one action at a time reach the wrapped executor: a second `scale` (or `current`)
/// waits until the one in flight has finished.
#[derive(Debug)]
pub struct Serialized<E> {
    inner: E,
    lock: tokio::sync::Mutex<()>,
}

impl<E: Executor> Serialized<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Serialized<E> {
        Serialized {
            inner,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapped executor, for reads that need not wait for an action in flight (a dry
    /// run's current count).
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// Whether an action is in flight now.
    pub fn busy(&self) -> bool {
        self.lock.try_lock().is_err()
    }
}

#[async_trait]
impl<E: Executor> Executor for Serialized<E> {
    fn describe(&self) -> Description {
        self.inner.describe()
    }
    async fn current(&self) -> Result<u32, ExecutorError> {
        let _one = self.lock.lock().await;
        self.inner.current().await
    }
    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let _one = self.lock.lock().await;
        self.inner.scale(to).await
    }
    async fn release(&self) -> Result<(), ExecutorError> {
        let _one = self.lock.lock().await;
        self.inner.release().await
    }
}

/// A problem with a policy's `target` block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TargetProblem {
    /// Where, from the policy's root (`target.namespace`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl TargetProblem {
    /// A problem at `target.<field>` (or `target` itself when `field` is empty).
    pub fn at(field: &str, reason: impl Into<String>) -> TargetProblem {
        let path = if field.is_empty() {
            "target".to_string()
        } else {
            format!("target.{field}")
        };
        TargetProblem {
            path,
            reason: reason.into(),
        }
    }
}

/// Parses a `target` block into an executor's own configuration type (which should use
/// `#[serde(deny_unknown_fields)]` and may carry the `type` field). The problem's path names
/// the field that is wrong, missing or unknown.
pub fn parse_target<T: DeserializeOwned>(
    target: &serde_json::Map<String, serde_json::Value>,
) -> Result<T, TargetProblem> {
    let value = serde_json::Value::Object(target.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let reason = e.inner().to_string();
        // serde names a missing field only in its message: "missing field `name`".
        if let Some(field) = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            path = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
        }
        TargetProblem::at(&path, reason)
    })
}

/// The `type` of a `target` block (`log` when the block or the field is absent).
pub fn target_type(target: Option<&serde_json::Map<String, serde_json::Value>>) -> &str {
    target
        .and_then(|t| t.get("type"))
        .and_then(|t| t.as_str())
        .unwrap_or("log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        r#type: String,
        name: String,
        #[serde(default)]
        port: u16,
    }

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("an object").clone()
    }

    #[test]
    fn a_missing_or_unknown_field_is_named_in_the_path() {
        let e = parse_target::<Example>(&map(serde_json::json!({"type": "x"}))).unwrap_err();
        assert_eq!(e.path, "target.name");
        assert!(e.reason.contains("missing field"), "{e}");
        let e = parse_target::<Example>(&map(
            serde_json::json!({"type": "x", "name": "a", "nmae": 1}),
        ))
        .unwrap_err();
        assert_eq!(e.path, "target.nmae");
        let e = parse_target::<Example>(&map(
            serde_json::json!({"type": "x", "name": "a", "port": -1}),
        ))
        .unwrap_err();
        assert_eq!(e.path, "target.port");
        assert!(e.reason.contains("-1"), "{e}");
    }

    #[test]
    fn the_type_defaults_to_log() {
        assert_eq!(target_type(None), "log");
        assert_eq!(
            target_type(Some(&map(serde_json::json!({"type": "kubernetes"})))),
            "kubernetes"
        );
    }

    #[tokio::test]
    async fn serialized_lets_one_action_in_at_a_time() {
        let e = std::sync::Arc::new(Serialized::new(LogExecutor::new("p", 1)));
        let guard = e.lock.lock().await;
        assert!(e.busy());
        let waiting = tokio::spawn({
            let e = e.clone();
            async move { e.scale(3).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second action waits for the first"
        );
        drop(guard);
        assert_eq!(waiting.await.expect("joined"), Ok(3));
        assert!(!e.busy());
    }
}
