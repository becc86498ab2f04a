//! The engine: every tick, evaluate the enabled policies that are due, with each distinct
//! metric query fetched once and shared; record each decision before carrying it out, and
//! its outcome after.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ballast_core::{
    Action, Decision, MetricObservation, Observations, Policy, PolicyState, Timestamp,
    decide_with_forecast, validate,
};
use ballast_sources::prometheus::PrometheusSource;
use ballast_store::{Outcome, PolicyRecord, Store, StoreError};
use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use ballast_executor::{Executor, ExecutorError, Serialized};
use tokio_util::task::TaskTracker;

use crate::forecasts::{Forecasts, HistorySource};
use crate::pushed::PushedMetrics;
use crate::targets::{ExecutorFactory, TargetBlock};
use crate::telemetry::{ActionLabel, PhaseLabel, Telemetry};

/// Above this many new or changed policies in a tick, every record is read in one query
/// rather than each on its own.
const REREAD_ONE_BY_ONE: usize = 32;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The global evaluation interval; a policy's `evaluation_interval` overrides it.
    pub interval: Duration,
    /// How long one metric query may take.
    pub query_timeout: Duration,
    /// Metric queries in flight at once.
    pub concurrency: usize,
    /// Attempts of an action whose executor reports a transient error.
    pub attempts: u32,
    /// The wait before the first retry; each retry doubles it.
    pub retry_backoff: Duration,
    /// How long shutdown waits for actions in flight.
    pub shutdown_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interval: Duration::from_secs(30),
            query_timeout: Duration::from_secs(10),
            concurrency: 16,
            attempts: 4,
            retry_backoff: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Why an evaluation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The stored policy no longer validates (it was written by an older version).
    #[error("policy `{name}` is invalid: {problems}")]
    InvalidPolicy {
        /// The policy.
        name: String,
        /// What is wrong.
        problems: String,
    },
    /// The executor could not be built or could not read the current count.
    #[error("executor: {0}")]
    Executor(#[from] ExecutorError),
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Policies evaluated.
    pub evaluated: usize,
    /// Decisions that changed a count (or would have, for dry runs).
    pub actions: usize,
    /// Distinct metric queries sent.
    pub queries: usize,
    /// Policies that could not be evaluated.
    pub failures: usize,
    /// Policies skipped because an action on their target is still in flight.
    pub busy: usize,
    /// Where the tick's time went.
    pub phases: TickPhases,
}

/// The duration of each phase of a tick (also in `/metrics` as
/// `ballast_tick_phase_seconds{phase}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickPhases {
    /// Reading the policies (ids and versions, and the records that changed) and their
    /// states, and choosing those due.
    pub policies: Duration,
    /// Fetching every distinct query.
    pub fetch: Duration,
    /// Reading targets' counts, deciding, forecasting, and recording actions.
    pub decide: Duration,
    /// Saving the holds' states in one transaction.
    pub save: Duration,
}

impl TickPhases {
    /// The phases with their `/metrics` label.
    pub fn labelled(&self) -> [(&'static str, Duration); 4] {
        [
            ("policies", self.policies),
            ("fetch", self.fetch),
            ("decide", self.decide),
            ("save", self.save),
        ]
    }
}

/// A metric query as sent: instant, or a range to fill rule windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Query {
    Instant(Source, String),
    Range {
        source: Source,
        query: String,
        lookback: TimeDelta,
        step: TimeDelta,
    },
}

/// Where a query goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Prometheus,
    Pushed,
}

impl Query {
    fn source(&self) -> Source {
        match self {
            Query::Instant(source, _) | Query::Range { source, .. } => *source,
        }
    }
}

struct Cached {
    version: i64,
    policy: Arc<Policy>,
}

/// A policy's executor, kept while its `target` block stays the same.
type Bound = Arc<Serialized<Box<dyn Executor>>>;

struct BoundExecutor {
    name: String,
    target: Option<TargetBlock>,
    executor: Bound,
}

/// Why a policy is failing: its executor's last permanent error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// When the error happened.
    pub since: Timestamp,
    /// The executor's message.
    pub reason: String,
}

/// The engine. Shared (behind an `Arc`) by the tick loop and the API's dry runs.
pub struct Engine {
    store: Store,
    source: Option<PrometheusSource>,
    factory: Arc<dyn ExecutorFactory>,
    telemetry: Arc<Telemetry>,
    config: EngineConfig,
    policies: Mutex<HashMap<Uuid, Cached>>,
    records: Mutex<HashMap<Uuid, Arc<PolicyRecord>>>,
    states: Mutex<HashMap<Uuid, PolicyState>>,
    executors: Mutex<HashMap<Uuid, BoundExecutor>>,
    failing: Arc<Mutex<HashMap<Uuid, Failing>>>,
    actions: TaskTracker,
    pushed: Arc<PushedMetrics>,
    forecasts: Forecasts,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`, reading metrics from `source`.
    pub fn new(
        store: Store,
        source: Option<PrometheusSource>,
        factory: Arc<dyn ExecutorFactory>,
        telemetry: Arc<Telemetry>,
        config: EngineConfig,
    ) -> Engine {
        let forecasts = Forecasts::new(
            telemetry.forecasts.clone(),
            Forecasts::default_trainings_at_once(),
        );
        Engine {
            forecasts,
            store,
            source,
            factory,
            telemetry,
            config,
            policies: Mutex::new(HashMap::new()),
            records: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
            executors: Mutex::new(HashMap::new()),
            failing: Arc::new(Mutex::new(HashMap::new())),
            actions: TaskTracker::new(),
            pushed: Arc::new(PushedMetrics::default()),
        }
    }

    /// The samples pushed to `POST /api/v1/metrics`, read by `source: pushed` metrics.
    pub fn pushed(&self) -> &Arc<PushedMetrics> {
        &self.pushed
    }

    /// The predictive policies' forecasters.
    pub fn forecasts(&self) -> &Forecasts {
        &self.forecasts
    }

    /// The executor factory (the API checks `target` blocks with it).
    pub fn factory(&self) -> &Arc<dyn ExecutorFactory> {
        &self.factory
    }

    /// Why the policy is failing, if its executor's last action failed permanently.
    pub fn failing(&self, id: Uuid) -> Option<Failing> {
        self.failing
            .lock()
            .expect("no panic while holding the lock")
            .get(&id)
            .cloned()
    }

    /// Releases every policy's executor (a process pool stops its processes): for a run
    /// that owns its targets and ends with them, such as the demo.
    pub async fn release_all(&self) {
        let all: Vec<(Uuid, BoundExecutor)> = self
            .executors
            .lock()
            .expect("no panic while holding the lock")
            .drain()
            .collect();
        for (_, bound) in all {
            self.factory.forget(&bound.name);
            release(&bound.name, &bound.executor).await;
        }
    }

    /// Waits until no action is in flight (tests, and shutdown).
    pub async fn settle(&self) {
        self.actions.close();
        self.actions.wait().await;
        self.actions.reopen();
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metric source, when one is configured.
    pub fn source(&self) -> Option<&PrometheusSource> {
        self.source.as_ref()
    }

    /// The telemetry.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Ticks every `interval` until `shutdown` is cancelled; a tick in flight finishes first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.tick_every());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let report = self.tick(chrono::Utc::now()).await;
            tracing::debug!(?report, "tick");
        }
        if !self.actions.is_empty() {
            tracing::info!(
                actions = self.actions.len(),
                "waiting for the actions in flight"
            );
            if tokio::time::timeout(self.config.shutdown_grace, self.settle())
                .await
                .is_err()
            {
                tracing::warn!("actions still in flight at shutdown; their outcome stays pending");
            }
        }
        tracing::info!("engine stopped");
    }

    /// The loop's period: the shortest of the global interval and every per-policy interval
    /// is not known up front, so the loop wakes at the global interval or every 5 s,
    /// whichever is shorter, and evaluates only the policies that are due.
    fn tick_every(&self) -> Duration {
        self.config.interval.min(Duration::from_secs(5))
    }

    fn interval_of(&self, policy: &Policy) -> TimeDelta {
        policy.evaluation_interval.unwrap_or_else(|| {
            TimeDelta::from_std(self.config.interval).unwrap_or(TimeDelta::seconds(30))
        })
    }

    /// The validated policy of a record (cached by version).
    pub fn policy(&self, record: &PolicyRecord) -> Result<Arc<Policy>, EngineError> {
        self.policy_of(record)
    }

    /// The validated policy of a record, cached by version.
    fn policy_of(&self, record: &PolicyRecord) -> Result<Arc<Policy>, EngineError> {
        let mut cache = self
            .policies
            .lock()
            .expect("no panic while holding the lock");
        if let Some(c) = cache
            .get(&record.id)
            .filter(|c| c.version == record.version)
        {
            return Ok(c.policy.clone());
        }
        let policy = Arc::new(
            validate(&record.spec).map_err(|e| EngineError::InvalidPolicy {
                name: record.name.clone(),
                problems: e.to_string(),
            })?,
        );
        cache.insert(
            record.id,
            Cached {
                version: record.version,
                policy: policy.clone(),
            },
        );
        Ok(policy)
    }

    /// The policy's executor, built on first use and again when its `target` block changes.
    async fn executor_of(
        &self,
        record: &PolicyRecord,
        last_known: u32,
    ) -> Result<Bound, ExecutorError> {
        let target = record.spec.target.as_ref();
        let stale = {
            let executors = self
                .executors
                .lock()
                .expect("no panic while holding the lock");
            match executors.get(&record.id) {
                Some(b) if b.target.as_ref() == target && b.name == record.name => {
                    return Ok(b.executor.clone());
                }
                Some(b) => Some(b.name.clone()),
                None => None,
            }
        };
        if let Some(old) = stale {
            self.unbind(&old, record.id).await;
        }
        let built = self.factory.build(&record.name, target, last_known).await?;
        let executor: Bound = Arc::new(Serialized::new(built));
        self.executors
            .lock()
            .expect("no panic while holding the lock")
            .insert(
                record.id,
                BoundExecutor {
                    name: record.name.clone(),
                    target: target.cloned(),
                    executor: executor.clone(),
                },
            );
        Ok(executor)
    }

    /// Lets go of a policy's executor before it is rebuilt for a new target or name (and
    /// waits, so that a process pool is stopped before its successor starts).
    async fn unbind(&self, name: &str, id: Uuid) {
        self.factory.forget(name);
        let old = self
            .executors
            .lock()
            .expect("no panic while holding the lock")
            .remove(&id);
        if let Some(old) = old {
            release(name, &old.executor).await;
        }
    }

    async fn state_of(&self, id: Uuid) -> Result<PolicyState, EngineError> {
        if let Some(s) = self
            .states
            .lock()
            .expect("no panic while holding the lock")
            .get(&id)
        {
            return Ok(s.clone());
        }
        let state = self.store.load_state(id).await?.unwrap_or_default();
        Ok(state)
    }

    fn remember(&self, id: Uuid, state: PolicyState) {
        self.states
            .lock()
            .expect("no panic while holding the lock")
            .insert(id, state);
    }

    /// One tick at `now`: every enabled policy that is due is evaluated.
    pub async fn tick(&self, now: Timestamp) -> TickReport {
        let started = Instant::now();
        let mut report = TickReport::default();
        let records = match self.current_records().await {
            Ok(r) => r,
            Err(e) => {
                self.telemetry.error("store");
                tracing::error!(error = %e, "cannot list policies");
                return report;
            }
        };
        self.telemetry.policies.set(records.len() as i64);
        self.forget_deleted(&records);

        // Which policies are due, with their state.
        let mut due = Vec::new();
        let mut enabled = 0;
        for record in &records {
            let policy = match self.policy_of(record) {
                Ok(p) => p,
                Err(e) => {
                    self.telemetry.error("policy");
                    tracing::warn!(error = %e, "skipping policy");
                    report.failures += 1;
                    continue;
                }
            };
            if !policy.enabled {
                continue;
            }
            enabled += 1;
            let state = match self.state_of(record.id).await {
                Ok(s) => s,
                Err(e) => {
                    self.telemetry.error("store");
                    tracing::error!(error = %e, policy = %record.name, "cannot load state");
                    report.failures += 1;
                    continue;
                }
            };
            let interval = self.interval_of(&policy);
            // A little slack, so a loop that wakes a hair early does not skip a turn.
            let is_due = state
                .last_evaluated
                .is_none_or(|last| now - last >= interval - TimeDelta::milliseconds(500));
            if is_due {
                due.push((record, policy, state, interval));
            }
        }
        self.telemetry.policies_enabled.set(enabled);

        report.phases.policies = started.elapsed();
        let mark = Instant::now();

        // Every distinct query once.
        let plans: Vec<Vec<Query>> = due
            .iter()
            .map(|(_, policy, state, interval)| plan(policy, state, now, *interval))
            .collect();
        let distinct: HashSet<&Query> = plans.iter().flatten().collect();
        report.queries = distinct.len();
        let fetched = self
            .fetch(distinct.into_iter().cloned().collect(), now)
            .await;
        report.phases.fetch = mark.elapsed();
        let mark = Instant::now();

        let mut holds = Vec::new();
        for ((record, policy, mut state, _), plan) in due.into_iter().zip(plans) {
            let metrics = observations(&plan, &fetched);
            match self
                .decide_and_act(record, &policy, &mut state, now, metrics, "engine")
                .await
            {
                Ok(Some(decision)) => {
                    report.evaluated += 1;
                    if decision.action == Action::Hold {
                        holds.push((record.id, state));
                    } else {
                        report.actions += 1;
                    }
                }
                Ok(None) => report.busy += 1,
                Err(e) => {
                    report.failures += 1;
                    tracing::error!(error = %e, policy = %record.name, "evaluation failed");
                }
            }
        }
        report.phases.decide = mark.elapsed();
        let mark = Instant::now();
        // Holds are not actions: only their state (rule windows, last evaluation) is kept,
        // for the whole tick in one transaction.
        match self.store.save_states(&holds).await {
            Ok(_) => {
                for (id, state) in holds {
                    self.remember(id, state);
                }
            }
            Err(e) => {
                self.telemetry.error("store");
                tracing::error!(error = %e, "cannot save the policies' states");
            }
        }
        report.phases.save = mark.elapsed();
        self.telemetry
            .tick_duration
            .observe(started.elapsed().as_secs_f64());
        for (phase, took) in report.phases.labelled() {
            self.telemetry
                .tick_phases
                .get_or_create(&PhaseLabel {
                    phase: phase.to_owned(),
                })
                .observe(took.as_secs_f64());
        }
        report
    }

    /// Every stored policy, by name. The records are kept between ticks and read again only
    /// where the stored version moved on, so a tick over 10,000 unchanged policies reads
    /// their ids and versions, not their specs. When many changed (the first tick), all are
    /// read in one query.
    async fn current_records(&self) -> Result<Vec<Arc<PolicyRecord>>, StoreError> {
        let versions = self.store.policy_versions().await?;
        let stale: Vec<Uuid> = {
            let cache = self
                .records
                .lock()
                .expect("no panic while holding the lock");
            versions
                .iter()
                .filter(|(id, version)| cache.get(id).is_none_or(|r| r.version != *version))
                .map(|(id, _)| *id)
                .collect()
        };
        let fresh: Vec<PolicyRecord> = if stale.len() > REREAD_ONE_BY_ONE {
            self.store.list_policies().await?
        } else {
            let mut fresh = Vec::with_capacity(stale.len());
            for id in stale {
                // Gone between the two reads: it is dropped below, with the other deleted.
                if let Some(record) = self.store.get_policy(id).await? {
                    fresh.push(record);
                }
            }
            fresh
        };
        let live: HashSet<Uuid> = versions.iter().map(|(id, _)| *id).collect();
        let mut cache = self
            .records
            .lock()
            .expect("no panic while holding the lock");
        for record in fresh {
            cache.insert(record.id, Arc::new(record));
        }
        cache.retain(|id, _| live.contains(id));
        let mut records: Vec<Arc<PolicyRecord>> = cache.values().cloned().collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    fn forget_deleted(&self, records: &[Arc<PolicyRecord>]) {
        let live: HashSet<Uuid> = records.iter().map(|r| r.id).collect();
        self.forecasts.retain(&live);
        self.telemetry
            .budget
            .retain(records.iter().map(|r| r.name.as_str()));
        self.policies
            .lock()
            .expect("no panic while holding the lock")
            .retain(|id, _| live.contains(id));
        self.states
            .lock()
            .expect("no panic while holding the lock")
            .retain(|id, _| live.contains(id));
        self.executors
            .lock()
            .expect("no panic while holding the lock")
            .retain(|id, bound| {
                let keep = live.contains(id);
                if !keep {
                    self.factory.forget(&bound.name);
                    let executor = bound.executor.clone();
                    let name = bound.name.clone();
                    self.actions
                        .spawn(async move { release(&name, &executor).await });
                }
                keep
            });
        self.failing
            .lock()
            .expect("no panic while holding the lock")
            .retain(|id, _| live.contains(id));
    }

    /// Runs the distinct queries concurrently, each with the query timeout.
    async fn fetch(
        &self,
        queries: Vec<Query>,
        now: Timestamp,
    ) -> HashMap<Query, MetricObservation> {
        let mut out = HashMap::with_capacity(queries.len());
        let (pushed, queries): (Vec<Query>, Vec<Query>) = queries
            .into_iter()
            .partition(|q| q.source() == Source::Pushed);
        for q in pushed {
            let obs = match &q {
                Query::Instant(_, query) => self.pushed.instant(query, now),
                Query::Range {
                    query,
                    lookback,
                    step,
                    ..
                } => self.pushed.range(query, now - *lookback, now, *step),
            };
            out.insert(q, obs);
        }
        if queries.is_empty() {
            return out;
        }
        let Some(source) = &self.source else {
            for q in queries {
                out.insert(
                    q,
                    MetricObservation::Failed("no Prometheus is configured".to_owned()),
                );
            }
            return out;
        };
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for q in queries {
            let source = source.clone();
            let permit = semaphore.clone();
            self.telemetry.queries.inc();
            tasks.spawn(async move {
                let _permit = permit.acquire_owned().await;
                let obs = match &q {
                    Query::Instant(_, query) => source.instant(query, now).await,
                    Query::Range {
                        query,
                        lookback,
                        step,
                        ..
                    } => {
                        source
                            .range(
                                query,
                                now - *lookback,
                                now,
                                step.to_std().unwrap_or(Duration::from_secs(30)),
                            )
                            .await
                    }
                };
                (q, obs)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((q, obs)) => {
                    if matches!(obs, MetricObservation::Failed(_)) {
                        self.telemetry.error("query");
                    }
                    out.insert(q, obs);
                }
                Err(e) => {
                    self.telemetry.error("query");
                    tracing::error!(error = %e, "a query task failed");
                }
            }
        }
        out
    }

    async fn observe(
        &self,
        executor: &Bound,
        current: u32,
        metrics: Vec<MetricObservation>,
    ) -> Observations {
        Observations {
            current,
            ready: None,
            metrics,
            price_per_replica_hour: executor.describe().price_per_replica_hour,
        }
    }

    /// Decides for one policy and, for an action, records it and starts carrying it out.
    /// `None` when an action on the policy's target is still in flight: the policy waits
    /// for the next tick. A hold's state is the caller's to save.
    async fn decide_and_act(
        &self,
        record: &PolicyRecord,
        policy: &Policy,
        state: &mut PolicyState,
        now: Timestamp,
        metrics: Vec<MetricObservation>,
        actor: &str,
    ) -> Result<Option<Decision>, EngineError> {
        let last_known = state.desired.unwrap_or(policy.min_replicas);
        let executor = match self.executor_of(record, last_known).await {
            Ok(e) => e,
            Err(e) => {
                self.telemetry.error("executor");
                self.mark(record.id, now, &e);
                return Err(e.into());
            }
        };
        if executor.busy() {
            tracing::debug!(policy = %record.name, "an action is in flight; evaluated next tick");
            return Ok(None);
        }
        let current = match executor.current().await {
            Ok(c) => c,
            Err(e) => {
                self.telemetry.error("executor");
                self.mark(record.id, now, &e);
                return Err(e.into());
            }
        };
        let obs = self.observe(&executor, current, metrics).await;
        let forecast = self.forecasts.step(
            record.id,
            policy,
            self.interval_of(policy),
            now,
            &obs,
            || HistorySource {
                prometheus: self.source.clone(),
                pushed: self.pushed.clone(),
                store: self.store.clone(),
            },
        );
        let decision = decide_with_forecast(policy, state, now, &obs, forecast.as_ref());
        self.forecasts.judged(record.id, &decision);
        self.count(&decision);
        self.telemetry.budget.observe(policy, &decision);
        if decision.action == Action::Hold {
            return Ok(Some(decision));
        }
        // Recorded before it is carried out, with the state, in one transaction.
        let id = self
            .store
            .record_decision(record.id, &decision, actor, Some(state))
            .await
            .inspect_err(|_| self.telemetry.error("store"))?;
        self.remember(record.id, state.clone());
        if decision.dry_run {
            self.store
                .record_outcome(id, Outcome::DryRun, "dry run: not carried out")
                .await
                .inspect_err(|_| self.telemetry.error("store"))?;
        } else {
            self.carry_out(record, executor, id, decision.desired);
        }
        Ok(Some(decision))
    }

    /// Carries a recorded decision out in the background: transient errors are retried
    /// with a doubling backoff, a permanent one marks the policy failing; the outcome is
    /// recorded on the decision's history entry either way.
    fn carry_out(&self, record: &PolicyRecord, executor: Bound, history_id: i64, to: u32) {
        let store = self.store.clone();
        let telemetry = self.telemetry.clone();
        let failing = self.failing.clone();
        let attempts = self.config.attempts.max(1);
        let mut backoff = self.config.retry_backoff;
        let (policy_id, name) = (record.id, record.name.clone());
        self.actions.spawn(async move {
            let mut attempt = 1;
            let result = loop {
                match executor.scale(to).await {
                    Err(e) if e.is_transient() && attempt < attempts => {
                        telemetry.error("executor");
                        tracing::warn!(policy = %name, attempt, error = %e, "retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    other => break other,
                }
            };
            let (outcome, detail) = match result {
                Ok(reached) => {
                    failing
                        .lock()
                        .expect("no panic while holding the lock")
                        .remove(&policy_id);
                    (Outcome::Succeeded, format!("scaled to {reached}"))
                }
                Err(e) => {
                    telemetry.error("executor");
                    tracing::error!(policy = %name, error = %e, "action failed");
                    mark_failing(&failing, policy_id, chrono::Utc::now(), &e);
                    let tries = if attempt > 1 {
                        format!(" after {attempt} attempts")
                    } else {
                        String::new()
                    };
                    (Outcome::Failed, format!("{e}{tries}"))
                }
            };
            if let Err(e) = store.record_outcome(history_id, outcome, &detail).await {
                telemetry.error("store");
                tracing::error!(policy = %name, error = %e, "cannot record the outcome");
            }
        });
    }

    /// Marks a policy failing when its executor reports a permanent error.
    fn mark(&self, id: Uuid, now: Timestamp, error: &ExecutorError) {
        mark_failing(&self.failing, id, now, error);
    }

    fn count(&self, decision: &Decision) {
        self.telemetry.evaluations.inc();
        self.telemetry
            .decisions
            .get_or_create(&ActionLabel {
                action: decision.action.as_str().to_owned(),
            })
            .inc();
    }

    /// A dry run of one policy now, on live metrics: the decision with every reason,
    /// recorded in history as a dry run. The policy's saved state is not changed, so a dry
    /// run never starts a cooldown or moves a rule window.
    pub async fn evaluate(
        &self,
        record: &PolicyRecord,
        now: Timestamp,
        actor: &str,
    ) -> Result<(Decision, i64), EngineError> {
        let policy = self.policy_of(record)?;
        let mut state = self.state_of(record.id).await?;
        let plan = plan(&policy, &state, now, self.interval_of(&policy));
        let fetched = self.fetch(plan.clone(), now).await;
        let metrics = observations(&plan, &fetched);
        let last_known = state.desired.unwrap_or(policy.min_replicas);
        let executor = self.executor_of(record, last_known).await?;
        // A dry run does not wait for an action in flight: it reads the target directly.
        let current = executor.inner().current().await?;
        let obs = self.observe(&executor, current, metrics).await;
        // The newest forecast, as it is: a dry run neither feeds the forecaster nor has a
        // forecast scored.
        let forecast = self.forecasts.latest(record.id);
        let mut decision = decide_with_forecast(&policy, &mut state, now, &obs, forecast.as_ref());
        decision.dry_run = true;
        let id = self
            .store
            .record_decision(record.id, &decision, actor, None)
            .await?;
        self.store
            .record_outcome(id, Outcome::DryRun, "evaluated on request: not carried out")
            .await?;
        Ok((decision, id))
    }
}

/// Records a permanent executor error as the reason the policy is failing; a transient one
/// leaves the mark as it is.
fn mark_failing(
    failing: &Mutex<HashMap<Uuid, Failing>>,
    id: Uuid,
    at: Timestamp,
    error: &ExecutorError,
) {
    if !error.is_transient() {
        failing
            .lock()
            .expect("no panic while holding the lock")
            .insert(
                id,
                Failing {
                    since: at,
                    reason: error.message().to_owned(),
                },
            );
    }
}

/// Lets go of a policy's executor (a process pool stops its processes); a failure is
/// logged, since the policy is already gone or changed.
async fn release(name: &str, executor: &Bound) {
    if let Err(e) = executor.release().await {
        tracing::warn!(policy = %name, error = %e, "cannot release the target");
    }
}

/// What was fetched for each query of a plan, in the plan's order.
fn observations(
    plan: &[Query],
    fetched: &HashMap<Query, MetricObservation>,
) -> Vec<MetricObservation> {
    plan.iter()
        .map(|q| {
            fetched
                .get(q)
                .cloned()
                .unwrap_or(MetricObservation::NotFetched)
        })
        .collect()
}

/// The query for each metric of a policy: instant, or a range when a rule with a duration
/// reads the metric and its window has no recent sample (after a restart, or for a new
/// policy), so the rule does not have to wait its whole duration again.
fn plan(policy: &Policy, state: &PolicyState, now: Timestamp, interval: TimeDelta) -> Vec<Query> {
    policy
        .metrics
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            let rules: Vec<_> = policy
                .scale_up_rules
                .iter()
                .chain(&policy.scale_down_rules)
                .filter(|r| r.metric == i && r.duration > TimeDelta::zero())
                .collect();
            let longest = rules.iter().map(|r| r.duration).max();
            let stale_window = rules.iter().any(|r| {
                state
                    .rules
                    .iter()
                    .find(|w| w.key == r.key)
                    .and_then(|w| w.last_sample)
                    .is_none_or(|last| now - last > interval * 2)
            });
            let source = if metric.source == "pushed" {
                Source::Pushed
            } else {
                Source::Prometheus
            };
            match longest {
                Some(longest) if stale_window => Query::Range {
                    source,
                    query: metric.query.clone(),
                    lookback: longest + interval,
                    step: interval.max(TimeDelta::seconds(1)),
                },
                _ => Query::Instant(source, metric.query.clone()),
            }
        })
        .collect()
}
