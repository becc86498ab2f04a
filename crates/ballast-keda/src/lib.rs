//! Ballast as a KEDA external scaler: a ScaledObject whose `external` trigger names a Ballast
//! policy follows that policy's desired count, and goes to zero when the policy allows it.
//!
//! # Pieces
//!
//! - [`KedaBoard`]: policy name → what the policy published (its desired count). One board
//!   per process, cloned into every executor and into the server.
//! - [`KedaExecutor`]: the executor of a policy whose `target` block is `type: keda`
//!   ([`KedaTarget`]). `scale(n)` publishes `n` on the board; `current()` reads it back.
//! - [`serve`]: the gRPC server of KEDA's external scaler protocol
//!   (`proto/externalscaler.proto`, package `externalscaler`, service `ExternalScaler`) over
//!   the board. Plain HTTP/2 without TLS: KEDA calls the scaler inside the cluster, through
//!   a Service in front of Ballast.
//!
//! ```no_run
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! use ballast_keda::{KedaBoard, KedaExecutor};
//!
//! let board = KedaBoard::new();
//! let target = serde_json::json!({"type": "keda", "scaled_object": "shop/web"});
//! let executor = KedaExecutor::from_target(
//!     board.clone(),
//!     "web",
//!     target.as_object().expect("an object"),
//!     3, // what Ballast decided last
//! )?;
//! let listener = tokio::net::TcpListener::bind(("0.0.0.0", ballast_keda::DEFAULT_PORT)).await?;
//! ballast_keda::serve(board, listener, async { /* wait for the shutdown signal */ }).await?;
//! # drop(executor);
//! # Ok(())
//! # }
//! ```
//!
//! # What KEDA is told
//!
//! The trigger's metadata must carry `policy: <name>`; a call without it is answered
//! `InvalidArgument`, a call naming a policy that is not on the board `NotFound`, each with
//! a message naming the metadata key.
//!
//! - `IsActive` (and `StreamIsActive`, used by `external-push` triggers): whether the
//!   desired count is above 0. KEDA activates the target (0 → 1) when it becomes true and
//!   takes it to zero when it has been false for the ScaledObject's `cooldownPeriod`.
//!   The stream sends the current answer at once and one more whenever it flips.
//! - `GetMetricSpec`: one metric, `ballast-<policy>` ([`metric_name`]), with a target of
//!   [`METRIC_TARGET`] (1000) per replica.
//! - `GetMetrics`: the value that makes the HPA propose exactly the desired count `d`
//!   ([`metric_value`]): `1000·d`, or `1000·d − 999` right after a cut. KEDA's HPA computes
//!   `ceil(value / target)` for an AverageValue External metric, which is `d` either way.
//! - `StreamMetricSpec` is answered `Unimplemented`: the spec never changes.
//!
//! # The HPA's tolerance: what lands and what does not
//!
//! Between 1 and N replicas KEDA leaves the scaling to the HPA, and the HPA ignores a
//! proposal while `value / (target · current)` is within its tolerance (0.1 by default,
//! bounds included). KEDA does not tell the scaler the current count, so the value cannot
//! be tuned to it; the [`metric`] module documents the choice. From `s` replicas:
//!
//! | change | lands when | e.g. |
//! | --- | --- | --- |
//! | raise to `d` | `d > 1.1·s` | always below 10 replicas; from 10 to 12 or more |
//! | cut to `d` | `d − 0.999 < 0.9·s` | always below 20 replicas; from 20 to 18 or fewer |
//! | to 0 | always, through `IsActive` after `cooldownPeriod` | |
//! | from 0 to `d` | always: KEDA activates to 1, then the HPA goes to `d` | |
//!
//! A smaller change leaves the HPA where it is until a later decision leaves the band. To
//! make every change land, set the HPA's tolerance to 0 in both directions where the cluster
//! allows it (Kubernetes' `HPAConfigurableTolerance` feature, alpha in 1.33, with KEDA 2.18
//! or later), as the example below shows in a comment.
//!
//! The HPA's own behavior still applies after the proposal. Ballast already applies the
//! policy's cooldowns, stabilization and rate limits, so the example turns the HPA's off:
//! no scale-down stabilization window, and a scale-up limit as large as `maxReplicaCount`
//! (with the default limit, a jump from 10 to 21 stops at 20, where 21 is within tolerance).
//!
//! # Example ScaledObject
//!
//! `examples/keda/scaledobject.yaml` in the repository, in short:
//!
//! ```yaml
//! apiVersion: keda.sh/v1alpha1
//! kind: ScaledObject
//! metadata:
//!   name: web
//!   namespace: shop
//! spec:
//!   scaleTargetRef:
//!     name: web                  # the Deployment
//!   minReplicaCount: 0           # Ballast decides when to go to zero
//!   maxReplicaCount: 100         # at least the policy's max_replicas
//!   cooldownPeriod: 30           # Ballast already waited before deciding 0
//!   advanced:
//!     horizontalPodAutoscalerConfig:
//!       behavior:
//!         scaleDown:
//!           stabilizationWindowSeconds: 0
//!         scaleUp:
//!           stabilizationWindowSeconds: 0
//!           policies:
//!             - type: Pods
//!               value: 100       # = maxReplicaCount: one sync reaches any count
//!               periodSeconds: 15
//!   triggers:
//!     - type: external
//!       metadata:
//!         scalerAddress: ballast.ballast.svc.cluster.local:8081
//!         policy: web            # the Ballast policy (its target is `type: keda`)
//! ```
//!
//! The policy `web` then carries `target: {type: keda, scaled_object: shop/web}`.

#![warn(missing_docs)]

mod board;
mod executor;
pub mod metric;
mod service;

/// The code generated from `proto/externalscaler.proto`: the messages, the server
/// (`external_scaler_server`) and a client (`external_scaler_client`, for tests and tools).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("externalscaler");
}

pub use board::{KedaBoard, Published};
pub use executor::{KedaExecutor, KedaKind, KedaTarget, ScaledObjectName};
pub use metric::{METRIC_TARGET, metric_name, metric_value};
pub use service::{KedaError, POLICY_KEY, serve};

/// The port the example ScaledObject expects Ballast's external scaler on (next to the
/// API's 8080). The runtime makes it configurable.
pub const DEFAULT_PORT: u16 = 8081;
