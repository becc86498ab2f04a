//! The `kubernetes` executor: scales any workload with a scale subresource (Deployment,
//! StatefulSet, ReplicaSet, ReplicationController, or a custom resource) through
//! `autoscaling/v1` `Scale`, and gives the cloud node groups Kubernetes node readiness
//! and drain ([`KubernetesNodes`], a [`NodeLifecycle`](ballast_executor::NodeLifecycle)).
//!
//! A policy's `target` block is parsed into a [`KubernetesTarget`] (with
//! [`KubernetesTarget::parse`], or [`check`] for the problems only), and
//! [`KubernetesExecutor::connect`] reaches the cluster it names: its `kubeconfig` and
//! `context`, or what `kubectl` would find (`KUBECONFIG`, `~/.kube/config`, else the
//! in-cluster service account). https clusters go through rustls (on ring).
//!
//! Failures are classified for the runtime: conflicts (409), rate limits and disruption
//! budgets (429), server errors, timeouts and connection failures are transient; the
//! server's refusals (401, 403, 404, 422, ...) and bad configuration are permanent, with
//! the API server's `Status` message in the text. The client does not retry by itself:
//! the runtime owns retries.
//!
//! With the `testing` feature, [`testing::MockCluster`] is a loopback server following
//! the Kubernetes API for the scale subresource, nodes, pods and evictions.

mod client;
mod config;
mod error;
mod executor;
mod nodes;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{client_from_config, connect};
pub use config::{ExecutorType, KubernetesTarget, check};
pub use executor::KubernetesExecutor;
pub use nodes::KubernetesNodes;
