//! The generic node group: one [`Executor`] over any [`Provider`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem};
use chrono::{DateTime, FixedOffset};
use tokio::time::Instant;

use crate::choice::{Offer, Plan, rank};
use crate::config::{GroupConfig, ServerTypeSpec};
use crate::lifecycle::Lifecycle;
use crate::{GROUP_LABEL, template};

/// Where a server is in its life, in the provider's words mapped to four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Being created or booting (Hetzner `initializing`/`starting`, Scaleway `starting` or a
    /// new `stopped` server, OVHcloud `BUILD`).
    Starting,
    /// Up (Hetzner `running`, Scaleway `running`, OVHcloud `ACTIVE`).
    Running,
    /// Going away (`deleting`, `stopping`, `DELETING`, ...).
    Stopping,
    /// Broken or stopped for good (OVHcloud `ERROR`, Hetzner `off`, Scaleway `stopped in
    /// place`): not counted, and deleted the next time the group changes.
    Failed,
}

impl ServerState {
    /// Whether the server counts as one of the group's replicas.
    pub fn counts(self) -> bool {
        matches!(self, ServerState::Starting | ServerState::Running)
    }
}

/// One server of a group, as the provider lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// The provider's id.
    pub id: String,
    /// Its name (`<group>-<suffix>`), also its Kubernetes node name.
    pub name: String,
    /// Where it is in its life.
    pub state: ServerState,
    /// When it was created, if the provider says.
    pub created: Option<DateTime<FixedOffset>>,
    /// Its public address (else a private one), once it has one.
    pub ip: Option<IpAddr>,
}

/// What the group asks a provider to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewServer {
    /// The server's name.
    pub name: String,
    /// Its server type (one of the group's allowed types).
    pub server_type: String,
    /// Its 0-based place in the group when it was created.
    pub index: usize,
    /// cloud-init user data, rendered for this server.
    pub user_data: Option<String>,
    /// Labels (Hetzner) or tags (Scaleway), the group's own label included.
    pub labels: BTreeMap<String, String>,
}

/// How an action (Hetzner), a state change (Scaleway) or an operation (OVHcloud) is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still running.
    Running,
    /// Finished well.
    Done,
    /// Finished badly, with the provider's message.
    Failed(String),
}

/// The price of one server of the group for an hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// The amount.
    pub hourly: f64,
    /// Its currency (`EUR`).
    pub currency: String,
}

/// Why a provider did not create a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// The server type is sold out at the group's place (Hetzner `resource_unavailable` or
    /// `placement_error`, Scaleway `out_of_stock`, an OVHcloud refusal after which the
    /// flavor reads `available: false`): the group tries its next type.
    SoldOut(String),
    /// Any other failure.
    Failed(ExecutorError),
}

impl From<ExecutorError> for CreateError {
    fn from(e: ExecutorError) -> CreateError {
        CreateError::Failed(e)
    }
}

/// One cloud provider, as a node group needs it. Every call goes to the provider's API;
/// errors are transient or permanent as [`ExecutorError`] says.
#[async_trait]
pub trait Provider: Send + Sync + Debug + 'static {
    /// What [`create`](Provider::create) and [`delete`](Provider::delete) hand back to
    /// [`poll`](Provider::poll).
    type Pending: Send + Sync + Debug;

    /// The executor kind (`hetzner`, `scaleway`, `ovh`).
    fn kind(&self) -> &'static str;

    /// The group in the provider's words (`group web (cx22, cx32) at fsn1`).
    fn target(&self) -> String;

    /// Where the group's servers go (location, zone or region).
    fn place(&self) -> &str;

    /// Every server of the group, all pages read.
    async fn list(&self) -> Result<Vec<Server>, ExecutorError>;

    /// The group's server called `name`, if there is one.
    async fn find(&self, name: &str) -> Result<Option<Server>, ExecutorError>;

    /// Asks for a new server of `new.server_type`; the answer is polled until it runs.
    async fn create(&self, new: &NewServer) -> Result<Self::Pending, CreateError>;

    /// How a create or delete is going.
    async fn poll(&self, pending: &Self::Pending) -> Result<Progress, ExecutorError>;

    /// Asks for a server to be deleted; the answer is polled until it is gone.
    async fn delete(&self, server: &Server) -> Result<Self::Pending, ExecutorError>;

    /// What the catalogue says of each of `server_types` at the group's place: hourly
    /// price, CPU count and whether it can be created now. One offer per type, in order.
    async fn offers(&self, server_types: &[String]) -> Result<Vec<Offer>, ExecutorError>;
}

/// A value per node (its utilization), keyed by server name, for choosing which servers a
/// scale-down removes. The runtime backs it with the group's `node_metric` PromQL.
#[async_trait]
pub trait NodeMetric: Send + Sync + Debug {
    /// The current value of every node that has one.
    async fn values(&self) -> Result<HashMap<String, f64>, ExecutorError>;
}

/// What a group does, apart from the provider: names, server types, user data, timeouts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The group's name (label value and server name prefix).
    pub group: String,
    /// The allowed server types, in the order written, with their capacities.
    pub server_types: Vec<ServerTypeSpec>,
    /// The user data template, if any.
    pub user_data: Option<String>,
    /// Extra labels for every server.
    pub labels: BTreeMap<String, String>,
    /// From the create request until the server runs.
    pub create_timeout: Duration,
    /// From running until ready.
    pub ready_timeout: Duration,
    /// Draining one server.
    pub drain_timeout: Duration,
    /// From the delete request until the server is gone.
    pub delete_timeout: Duration,
    /// Between two polls.
    pub poll_interval: Duration,
    /// How old the price may get.
    pub price_refresh: Duration,
}

impl Settings {
    /// The settings a `target` block asks for (reads `user_data_file`).
    pub fn from_config(c: &GroupConfig) -> Result<Settings, TargetProblem> {
        let t = &c.timeouts;
        Ok(Settings {
            group: c.group.clone(),
            server_types: c.server_type_specs(),
            user_data: c.user_data_source()?,
            labels: c.labels.clone(),
            create_timeout: t.create.0,
            ready_timeout: t.ready.0,
            drain_timeout: t.drain.0,
            delete_timeout: t.delete.0,
            poll_interval: t.poll_interval.0,
            price_refresh: t.price_refresh.0,
        })
    }

    /// Defaults for `group` of `server_types` (no user data, the default timeouts).
    pub fn new(group: impl Into<String>, server_types: Vec<ServerTypeSpec>) -> Settings {
        let t = crate::Timeouts::default();
        Settings {
            group: group.into(),
            server_types,
            user_data: None,
            labels: BTreeMap::new(),
            create_timeout: t.create.0,
            ready_timeout: t.ready.0,
            drain_timeout: t.drain.0,
            delete_timeout: t.delete.0,
            poll_interval: t.poll_interval.0,
            price_refresh: t.price_refresh.0,
        }
    }
}

/// A group of servers at one provider, scaled as one target.
///
/// Counting: [`current`](Executor::current) counts the servers that are starting or
/// running. A server still starting is counted as one on its way, the way a Deployment
/// counts pods that are not ready yet: a retry after a crash or a timeout then does not
/// create it twice, and a scale to the current count creates and deletes nothing. Servers
/// that failed or are going away are not counted; failed ones are deleted the next time the
/// group changes size. Scale-up waits until every new server is ready (or deleted because
/// it never became ready), so a successful scale leaves only ready servers behind.
///
/// Server types: a group may allow several (`server_types`). Each scale-up reads the
/// provider's catalogue and creates the type with the lowest hourly price per unit of
/// capacity among those that can be created at the group's place now (not sold out, still
/// offered there); a type being withdrawn is taken only when no other can be; a server's
/// capacity is the type's configured `capacity`, else the catalogue's CPU count. A create
/// refused because the type is sold out moves on to the next type. The servers of a group
/// may then be of different types and bring different capacities, but the count stays a
/// count of servers, not of capacity units: a policy scales servers, and its metrics (load
/// per server, queue depth) say how many it needs.
/// The price in [`describe`](Executor::describe) is the hourly price of one server of the
/// type the next scale-up would pick (the catalogue is read again every `price_refresh`,
/// and at every scale-up); a decision's cost estimate (count × that price) is therefore
/// exact for a group of one type and an estimate for a mixed one.
#[derive(Debug)]
pub struct NodeGroup<P: Provider> {
    provider: P,
    settings: Settings,
    lifecycle: Lifecycle,
    metric: Option<Arc<dyn NodeMetric>>,
    /// The order the next scale-up would try the server types in, as last read.
    plan: RwLock<Option<Plan>>,
    /// The price of one server of the type the next scale-up would pick, as last known.
    price: RwLock<Option<Price>>,
    /// When the catalogue is next read.
    price_due: Mutex<Option<Instant>>,
}

impl<P: Provider> NodeGroup<P> {
    /// A group over `provider`. Reads the catalogue once; a failure is logged and the group
    /// describes itself without a price until a later refresh succeeds.
    pub async fn new(
        provider: P,
        settings: Settings,
        lifecycle: Lifecycle,
        metric: Option<Arc<dyn NodeMetric>>,
    ) -> NodeGroup<P> {
        let group = NodeGroup {
            provider,
            settings,
            lifecycle,
            metric,
            plan: RwLock::new(None),
            price: RwLock::new(None),
            price_due: Mutex::new(None),
        };
        group.refresh_price().await;
        group
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The price of one server of the type the next scale-up would pick, as last read from
    /// the catalogue.
    pub fn price(&self) -> Option<Price> {
        self.price
            .read()
            .expect("no panic under the price lock")
            .clone()
    }

    /// The server type the next scale-up would try first, as last read from the catalogue.
    pub fn next_server_type(&self) -> Option<String> {
        self.plan
            .read()
            .expect("no panic under the plan lock")
            .as_ref()
            .and_then(|p| p.order.first())
            .map(|c| c.server_type.clone())
    }

    fn type_names(&self) -> Vec<String> {
        self.settings
            .server_types
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// Reads the catalogue and orders the server types by it.
    async fn read_plan(&self) -> Result<Plan, ExecutorError> {
        let offers = self.provider.offers(&self.type_names()).await?;
        Ok(rank(&self.settings.server_types, &offers))
    }

    /// Keeps `plan` as the one the next scale-up would follow, and its first type's price
    /// as the group's price. With nothing left to pick, or a plan not read from the
    /// catalogue (`fresh` false) whose first type has no price, the last known price stays,
    /// so the budget still has a price to hold the group to.
    fn remember(&self, plan: Plan, fresh: bool) {
        if let Some(first) = plan.order.first()
            && (fresh || first.price.is_some())
        {
            *self.price.write().expect("no panic under the price lock") = first.price.clone();
        }
        *self.plan.write().expect("no panic under the plan lock") = Some(plan);
    }

    /// Reads the catalogue. A failure keeps the last price and is tried again after a
    /// minute (or the refresh period, if shorter) rather than a whole period later.
    async fn refresh_price(&self) {
        let ok = match self.read_plan().await {
            Ok(plan) => {
                match plan.order.first() {
                    None => tracing::warn!(
                        target = %self.provider.target(),
                        reason = %plan.nothing_left(self.provider.place()),
                        "no server type of the group can be created now"
                    ),
                    Some(c) if c.price.is_none() => tracing::warn!(
                        target = %self.provider.target(),
                        server_type = %c.server_type,
                        "the provider's catalogue has no price for this server type here"
                    ),
                    Some(_) => {}
                }
                self.remember(plan, true);
                true
            }
            Err(e) => {
                tracing::warn!(
                    target = %self.provider.target(),
                    error = %e,
                    "reading the catalogue failed; keeping the last price"
                );
                false
            }
        };
        let next = if ok {
            self.settings.price_refresh
        } else {
            self.settings.price_refresh.min(Duration::from_secs(60))
        };
        *self.price_due.lock().expect("no panic under the lock") = Some(Instant::now() + next);
    }

    async fn refresh_price_if_stale(&self) {
        let due = match *self.price_due.lock().expect("no panic under the lock") {
            Some(next) => Instant::now() >= next,
            None => true,
        };
        if due {
            self.refresh_price().await;
        }
    }

    /// The order this scale-up tries the types in: the catalogue read now (availability
    /// changes by the minute), else the last plan, else the types as written.
    async fn plan_for_scale_up(&self) -> (Plan, bool) {
        match self.read_plan().await {
            Ok(plan) => (plan, true),
            Err(e) => {
                let last = self
                    .plan
                    .read()
                    .expect("no panic under the plan lock")
                    .clone();
                tracing::warn!(
                    target = %self.provider.target(),
                    error = %e,
                    "reading the catalogue failed; choosing the server type by the last reading"
                );
                let plan = last.unwrap_or_else(|| Plan::as_listed(&self.settings.server_types));
                (plan, false)
            }
        }
    }

    fn fresh_name(&self, taken: &HashSet<String>) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            let suffix: String = (0..6)
                .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
                .collect();
            let name = format!("{}-{suffix}", self.settings.group);
            if !taken.contains(&name) {
                return name;
            }
        }
    }

    async fn count(&self) -> Result<u32, ExecutorError> {
        let servers = self.provider.list().await?;
        Ok(servers.iter().filter(|s| s.state.counts()).count() as u32)
    }

    async fn scale_up(&self, missing: usize, servers: &[Server]) -> Vec<ExecutorError> {
        let mut taken: HashSet<String> = servers.iter().map(|s| s.name.clone()).collect();
        let existing = servers.iter().filter(|s| s.state.counts()).count();
        let mut labels = self.settings.labels.clone();
        labels.insert(GROUP_LABEL.to_string(), self.settings.group.clone());
        let (mut plan, fresh) = self.plan_for_scale_up().await;
        let mut errors = Vec::new();
        let mut started = Vec::new();
        // Creates one after another and stops at the first refusal other than "sold out": a
        // quota or a bad image refuses every create alike. A sold-out type is dropped for
        // the rest of this scale and the next type is tried for the same server.
        'servers: for i in 0..missing {
            let name = self.fresh_name(&taken);
            taken.insert(name.clone());
            let index = existing + i;
            let user_data = match &self.settings.user_data {
                Some(source) => {
                    match template::render(source, &name, index, &self.settings.group) {
                        Ok(text) => Some(text),
                        Err(e) => {
                            errors.push(ExecutorError::Permanent(e));
                            break;
                        }
                    }
                }
                None => None,
            };
            loop {
                let Some(choice) = plan.order.first() else {
                    let why = plan.nothing_left(self.provider.place());
                    let message = format!("creating {name} ({} of {missing}) failed: {why}", i + 1);
                    errors.push(if plan.only_lasting_reasons() {
                        ExecutorError::Permanent(message)
                    } else {
                        ExecutorError::Transient(message)
                    });
                    break 'servers;
                };
                let new = NewServer {
                    name: name.clone(),
                    server_type: choice.server_type.clone(),
                    index,
                    user_data: user_data.clone(),
                    labels: labels.clone(),
                };
                match self.provider.create(&new).await {
                    Ok(pending) => {
                        tracing::info!(
                            target = %self.provider.target(),
                            server = %new.name,
                            server_type = %new.server_type,
                            "creating server"
                        );
                        started.push((new.name, pending));
                        break;
                    }
                    Err(CreateError::SoldOut(why)) => {
                        tracing::warn!(
                            target = %self.provider.target(),
                            server_type = %new.server_type,
                            reason = %why,
                            "server type sold out; trying the next one"
                        );
                        plan.sold_out(&new.server_type, why);
                    }
                    Err(CreateError::Failed(e)) => {
                        errors.push(ExecutorError::from_parts(
                            e.is_transient(),
                            format!(
                                "creating {} ({} of {missing}) failed: {}",
                                new.name,
                                i + 1,
                                e.message()
                            ),
                        ));
                        break 'servers;
                    }
                }
            }
        }
        self.remember(plan, fresh);
        let results = futures::future::join_all(
            started
                .iter()
                .map(|(name, pending)| self.bring_up(name, pending)),
        )
        .await;
        errors.extend(results.into_iter().filter_map(Result::err));
        errors
    }

    /// Waits for one new server: its action, then its running state, then readiness. A
    /// server that fails any of these is deleted.
    async fn bring_up(&self, name: &str, pending: &P::Pending) -> Result<(), ExecutorError> {
        let s = &self.settings;
        let deadline = Instant::now() + s.create_timeout;
        loop {
            match self.provider.poll(pending).await {
                Ok(Progress::Done) => break,
                Ok(Progress::Failed(msg)) => {
                    return Err(self
                        .discard(name, format!("creating {name} failed: {msg}"))
                        .await);
                }
                Ok(Progress::Running) => {}
                Err(e) if e.is_transient() => {
                    tracing::debug!(server = name, error = %e, "polling the create; trying again");
                }
                Err(e) => {
                    return Err(self
                        .discard(
                            name,
                            format!("polling the create of {name} failed: {}", e.message()),
                        )
                        .await);
                }
            }
            if Instant::now() >= deadline {
                return Err(self
                    .discard(
                        name,
                        format!(
                            "{name} was not created within {}",
                            fmt_duration(s.create_timeout)
                        ),
                    )
                    .await);
            }
            tokio::time::sleep(s.poll_interval).await;
        }
        loop {
            match self.provider.find(name).await {
                Ok(Some(server)) if server.state == ServerState::Running => {
                    if let Some(ip) = server.ip {
                        self.lifecycle.addresses().set(name, ip);
                    }
                    break;
                }
                Ok(Some(server)) if server.state == ServerState::Failed => {
                    return Err(self.discard(name, format!("{name} failed to start")).await);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(ExecutorError::Transient(format!(
                        "{name} was created but is gone"
                    )));
                }
                Err(e) => {
                    tracing::debug!(server = name, error = %e, "reading the server; trying again")
                }
            }
            if Instant::now() >= deadline {
                return Err(self
                    .discard(
                        name,
                        format!(
                            "{name} was not running within {}",
                            fmt_duration(s.create_timeout)
                        ),
                    )
                    .await);
            }
            tokio::time::sleep(s.poll_interval).await;
        }
        let ready_by = Instant::now() + s.ready_timeout;
        loop {
            match self.lifecycle.ready(name).await {
                Ok(true) => {
                    tracing::info!(target = %self.provider.target(), server = name, "server ready");
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(server = name, error = %e, "readiness check failed; trying again")
                }
            }
            if Instant::now() >= ready_by {
                return Err(self
                    .discard(
                        name,
                        format!(
                            "{name} never became ready within {}",
                            fmt_duration(s.ready_timeout)
                        ),
                    )
                    .await);
            }
            tokio::time::sleep(s.poll_interval).await;
        }
    }

    /// Deletes a server that did not come up and says so in a transient error.
    async fn discard(&self, name: &str, reason: String) -> ExecutorError {
        tracing::warn!(target = %self.provider.target(), server = name, reason = %reason, "deleting a server that did not come up");
        self.lifecycle.addresses().remove(name);
        let outcome = match self.provider.find(name).await {
            Ok(Some(server)) => self.remove(&server).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => ExecutorError::Transient(format!("{reason}; it was deleted")),
            Err(e) => ExecutorError::Transient(format!(
                "{reason}; deleting it failed too: {}",
                e.message()
            )),
        }
    }

    /// Deletes a server and waits until it is gone.
    async fn remove(&self, server: &Server) -> Result<(), ExecutorError> {
        let pending = self.provider.delete(server).await?;
        let deadline = Instant::now() + self.settings.delete_timeout;
        loop {
            match self.provider.poll(&pending).await {
                Ok(Progress::Done) => {
                    tracing::info!(target = %self.provider.target(), server = %server.name, "server deleted");
                    self.lifecycle.addresses().remove(&server.name);
                    return Ok(());
                }
                Ok(Progress::Failed(msg)) => {
                    return Err(ExecutorError::Transient(format!(
                        "deleting {} failed: {msg}",
                        server.name
                    )));
                }
                Ok(Progress::Running) => {}
                Err(e) if e.is_transient() => {
                    tracing::debug!(server = %server.name, error = %e, "polling the delete; trying again");
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(ExecutorError::Transient(format!(
                    "{} was not deleted within {}",
                    server.name,
                    fmt_duration(self.settings.delete_timeout)
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    async fn scale_down(&self, surplus: usize, servers: &[Server]) -> Result<(), ExecutorError> {
        let alive: Vec<Server> = servers
            .iter()
            .filter(|s| s.state.counts())
            .cloned()
            .collect();
        let values = match &self.metric {
            Some(m) => match m.values().await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(target = %self.provider.target(), error = %e, "reading the node metric failed; removing the newest servers");
                    None
                }
            },
            None => None,
        };
        let victims = order_victims(alive, values.as_ref());
        for victim in victims.into_iter().take(surplus) {
            tracing::info!(target = %self.provider.target(), server = %victim.name, "draining server");
            match tokio::time::timeout(
                self.settings.drain_timeout,
                self.lifecycle.drain(&victim.name),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(ExecutorError::from_parts(
                        e.is_transient(),
                        format!(
                            "draining {} failed, so it was kept: {}",
                            victim.name,
                            e.message()
                        ),
                    ));
                }
                Err(_) => {
                    return Err(ExecutorError::Transient(format!(
                        "draining {} took longer than {}, so it was kept",
                        victim.name,
                        fmt_duration(self.settings.drain_timeout)
                    )));
                }
            }
            self.remove(&victim).await?;
        }
        Ok(())
    }

    async fn clean_failed(&self, servers: &[Server]) -> Vec<ExecutorError> {
        let mut errors = Vec::new();
        for s in servers.iter().filter(|s| s.state == ServerState::Failed) {
            tracing::warn!(target = %self.provider.target(), server = %s.name, "deleting a failed server");
            if let Err(e) = self.remove(s).await {
                errors.push(e);
            }
        }
        errors
    }
}

/// The order in which a scale-down removes servers: those still starting first (newest
/// first: they carry no load yet); then, with a metric, the least utilized first, servers
/// without a value after those with one; without a metric, the newest first. Ties go to the
/// newest, then to the name.
pub(crate) fn order_victims(
    mut servers: Vec<Server>,
    values: Option<&HashMap<String, f64>>,
) -> Vec<Server> {
    use std::cmp::Ordering;
    let newest_first = |a: &Server, b: &Server| -> Ordering {
        b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name))
    };
    servers.sort_by(|a, b| {
        let starting = |s: &Server| s.state != ServerState::Starting;
        starting(a).cmp(&starting(b)).then_with(|| {
            if let Some(v) = values {
                let value = |s: &Server| v.get(&s.name).copied().filter(|x| x.is_finite());
                match (value(a), value(b)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                }
                .then_with(|| newest_first(a, b))
            } else {
                newest_first(a, b)
            }
        })
    });
    servers
}

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// Turns several failures of one scale into one error: permanent if any was.
fn combine(errors: Vec<ExecutorError>) -> Option<ExecutorError> {
    if errors.is_empty() {
        return None;
    }
    let permanent = errors.iter().any(|e| !e.is_transient());
    let message = errors
        .iter()
        .map(|e| e.message().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Some(ExecutorError::from_parts(!permanent, message))
}

trait FromParts {
    fn from_parts(transient: bool, message: String) -> Self;
}

impl FromParts for ExecutorError {
    fn from_parts(transient: bool, message: String) -> ExecutorError {
        if transient {
            ExecutorError::Transient(message)
        } else {
            ExecutorError::Permanent(message)
        }
    }
}

#[async_trait]
impl<P: Provider> Executor for NodeGroup<P> {
    fn describe(&self) -> Description {
        let mut d = Description::new(self.provider.kind(), self.provider.target());
        if let Some(p) = self.price() {
            d.price_per_replica_hour = Some(p.hourly);
            d.currency = Some(p.currency);
        }
        d
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        self.refresh_price_if_stale().await;
        self.count().await
    }

    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let servers = self.provider.list().await?;
        let now = servers.iter().filter(|s| s.state.counts()).count();
        let want = to as usize;
        if want == now {
            return Ok(to);
        }
        tracing::info!(target = %self.provider.target(), from = now, to, "scaling node group");
        let mut errors = self.clean_failed(&servers).await;
        if want > now {
            errors.extend(self.scale_up(want - now, &servers).await);
        } else if let Err(e) = self.scale_down(now - want, &servers).await {
            errors.push(e);
        }
        if let Some(e) = combine(errors) {
            tracing::warn!(target = %self.provider.target(), error = %e, "scaling node group failed");
            return Err(e);
        }
        self.count().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, state: ServerState, created: &str) -> Server {
        Server {
            id: name.to_string(),
            name: name.to_string(),
            state,
            created: Some(DateTime::parse_from_rfc3339(created).unwrap()),
            ip: None,
        }
    }

    fn names(v: &[Server]) -> Vec<&str> {
        v.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn without_a_metric_the_newest_goes_first_after_those_still_starting() {
        let servers = vec![
            server("a", ServerState::Running, "2026-01-01T00:00:00Z"),
            server("b", ServerState::Running, "2026-01-03T00:00:00Z"),
            server("c", ServerState::Starting, "2026-01-02T00:00:00Z"),
            server("d", ServerState::Running, "2026-01-02T00:00:00Z"),
        ];
        assert_eq!(names(&order_victims(servers, None)), ["c", "b", "d", "a"]);
    }

    #[test]
    fn with_a_metric_the_least_utilized_goes_first_and_unknown_values_last() {
        let servers = vec![
            server("a", ServerState::Running, "2026-01-01T00:00:00Z"),
            server("b", ServerState::Running, "2026-01-03T00:00:00Z"),
            server("c", ServerState::Running, "2026-01-02T00:00:00Z"),
            server("d", ServerState::Running, "2026-01-04T00:00:00Z"),
        ];
        let values: HashMap<String, f64> =
            [("a".into(), 0.2), ("b".into(), 0.9), ("c".into(), f64::NAN)]
                .into_iter()
                .collect();
        assert_eq!(
            names(&order_victims(servers, Some(&values))),
            ["a", "b", "d", "c"]
        );
    }

    #[test]
    fn several_failures_are_permanent_if_any_is() {
        let e = combine(vec![
            ExecutorError::Transient("one".into()),
            ExecutorError::Permanent("two".into()),
        ])
        .unwrap();
        assert_eq!(e, ExecutorError::Permanent("one; two".into()));
        assert_eq!(combine(vec![]), None);
    }
}
