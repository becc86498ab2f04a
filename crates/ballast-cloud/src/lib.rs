//! Cloud node groups: the servers of one group at Hetzner Cloud, Scaleway Instances or
//! OVHcloud Public Cloud, scaled as one target.
//!
//! A group is the set of servers carrying the group's mark (a label at Hetzner, a tag at
//! Scaleway, a name prefix at OVHcloud, whose instances carry neither). [`NodeGroup`] is
//! one generic [`Executor`](ballast_executor::Executor) over a [`Provider`]:
//!
//! - scale-up creates the missing servers from the group's spec (server type, image,
//!   location, SSH keys, labels, cloud-init user data rendered from a template), polls the
//!   provider's action until the server runs, then waits for readiness (a
//!   [`NodeLifecycle`](ballast_executor::NodeLifecycle): [`HttpReadiness`] here, or the
//!   Kubernetes node becoming Ready). A server that is not ready by the deadline is deleted
//!   and the scale fails (transient) saying so;
//! - scale-down picks the least utilized servers by a per-node metric ([`NodeMetric`]) or
//!   the newest without one, drains each ([`WebhookDrain`], or cordon and evict on
//!   Kubernetes) and deletes it;
//! - prices come from each provider's catalogue ([`prices`]) and feed the description
//!   (`price_per_replica_hour`, `currency`) that every decision's cost estimate reads;
//! - a group may allow several server types (`server_types`, each with an optional
//!   `capacity`): a scale-up creates the one with the lowest hourly price per unit of
//!   capacity that the provider can deliver at the group's place, and falls back to the
//!   next when a create finds it sold out (see [`NodeGroup`] for how servers of different
//!   types are counted and priced). None of the three providers sells spot capacity, so a
//!   `spot` mix is refused by [`check`] with the provider's reason.
//!
//! The runtime builds a group from a policy's `target` block with [`build`] after
//! [`check`] reported no problem. Credentials are read from the environment or a file and
//! held as [`secrecy::SecretString`]: they never appear in `Debug` output, errors or logs.

#![warn(missing_docs)]

mod choice;
mod config;
mod group;
mod hetzner;
mod http;
mod lifecycle;
mod ovh;
mod prices;
mod scaleway;
mod template;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use ballast_executor::{Executor, NodeLifecycle, TargetProblem};

pub use choice::{Availability, Offer};
pub use config::{
    Credentials, DrainSpec, Dur, GroupConfig, MAX_USER_DATA, ProviderKind, ReadinessSpec,
    ServerTypeSpec, SpotSpec, Timeouts, check, check_with_env, parse,
};
pub use group::{
    CreateError, NewServer, NodeGroup, NodeMetric, Price, Progress, Provider, Server, ServerState,
    Settings,
};
pub use hetzner::{Actions as HetznerActions, Hetzner};
pub use lifecycle::{Addresses, HttpReadiness, Lifecycle, RunningIsReady, WebhookDrain};
pub use ovh::{Ovh, Wait as OvhWait, signature as ovh_signature};
pub use prices::{PriceQuery, PriceRow, prices, prices_with_env};
pub use scaleway::{Scaleway, Wait as ScalewayWait};

/// The label (Hetzner) or tag key (Scaleway) that marks a server as a member of a group.
pub const GROUP_LABEL: &str = "ballast/group";

/// What a group needs from the rest of Ballast that its `target` block cannot say.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    /// The Kubernetes node lifecycle (node Ready; cordon and evict), required when the
    /// group's `readiness` or `drain` is `{kubernetes: true}`.
    pub kubernetes: Option<Arc<dyn NodeLifecycle>>,
    /// The per-node metric named by the group's `node_metric` (the runtime backs it with
    /// Prometheus). Without it, scale-down removes the newest servers.
    pub node_metric: Option<Arc<dyn NodeMetric>>,
}

/// Builds the executor for a cloud node group from its parsed configuration, reading the
/// credentials from `credentials_file` or the environment. Reads the provider's prices once
/// (a failure there is logged, not fatal: the description then carries no price). Problems
/// are named by their `target.<field>` path.
pub async fn build(
    config: &GroupConfig,
    platform: Platform,
) -> Result<Arc<dyn Executor>, TargetProblem> {
    build_with_env(config, platform, &|name| std::env::var(name).ok()).await
}

/// [`build`], with the environment given as a lookup function (for tests).
pub async fn build_with_env(
    config: &GroupConfig,
    platform: Platform,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Arc<dyn Executor>, TargetProblem> {
    let problems = config::check_config(config, env);
    if let Some(first) = problems.into_iter().next() {
        return Err(first);
    }
    let credentials = Credentials::load(config, env)?;
    let lifecycle = Lifecycle::from_config(config, &platform)?;
    let settings = Settings::from_config(config)?;
    let metric = platform.node_metric.clone();
    if config.node_metric.is_some() && metric.is_none() {
        tracing::warn!(
            group = %config.group,
            "target.node_metric is set but no metric source was given; scale-down removes the newest servers"
        );
    }
    let executor: Arc<dyn Executor> = match config.kind {
        ProviderKind::Hetzner => Arc::new(
            NodeGroup::new(
                Hetzner::from_config(config, credentials)?,
                settings,
                lifecycle,
                metric,
            )
            .await,
        ),
        ProviderKind::Scaleway => Arc::new(
            NodeGroup::new(
                Scaleway::from_config(config, credentials)?,
                settings,
                lifecycle,
                metric,
            )
            .await,
        ),
        ProviderKind::Ovh => Arc::new(
            NodeGroup::new(
                Ovh::from_config(config, credentials)?,
                settings,
                lifecycle,
                metric,
            )
            .await,
        ),
    };
    Ok(executor)
}
