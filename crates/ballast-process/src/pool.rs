//! The pool: one supervisor task per replica, the records file, and the executor.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::{Description, Executor, ExecutorError, TargetProblem};
use rustix::process::Signal;
use tokio::process::Child;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{INDEX_VAR, POLICY_VAR, ProcessConfig, Restart, records_file_name};
use crate::procfs;
use crate::records::{self, Record, RecordsFile};

/// The first wait before restarting a process that failed; it doubles with each failure in
/// a row, up to [`RESTART_BACKOFF_MAX`].
pub const RESTART_BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between restarts.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A process that ran this long before failing starts the backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often an adopted process (not our child, so it cannot be waited for) is looked at.
const ADOPTED_POLL: Duration = Duration::from_millis(200);
/// How long an adopted process may take to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// What a new pool does with the processes an earlier pool of the same policy left running
/// (Ballast was restarted, upgraded or crashed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recovery {
    /// Count them, watch them and stop them like its own.
    #[default]
    Adopt,
    /// Stop them (SIGTERM, grace period, SIGKILL) and start from an empty pool.
    Cleanup,
}

/// Why a pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The `target` block has problems.
    #[error("invalid target: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidTarget {
        /// Every problem, each with its `target.<field>` path.
        problems: Vec<TargetProblem>,
    },
    /// The state directory could not be made.
    #[error("state directory {}: {source}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The records file could not be read or written.
    #[error("process records {}: {source}", path.display())]
    Records {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl From<ProcessError> for ExecutorError {
    fn from(e: ProcessError) -> ExecutorError {
        let permanent = match &e {
            ProcessError::InvalidTarget { .. } => true,
            ProcessError::StateDir { source, .. } | ProcessError::Records { source, .. } => {
                permanent_io(source)
            }
        };
        if permanent {
            ExecutorError::Permanent(e.to_string())
        } else {
            ExecutorError::Transient(e.to_string())
        }
    }
}

/// One running replica, as [`ProcessPool::processes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaProcess {
    /// Its index (`BALLAST_REPLICA_INDEX`).
    pub index: u32,
    /// Its pid (also its process group).
    pub pid: u32,
    /// Whether an earlier pool started it and this one adopted it.
    pub adopted: bool,
}

/// A pool of local processes started from one command template; the `process` executor.
///
/// Replica `i` runs the configured command with `{index}` and `{policy}` filled in and
/// `BALLAST_REPLICA_INDEX=i`, `BALLAST_POLICY=<policy>` in its environment, in a process
/// group of its own. Scaling up fills the lowest free indices; scaling down stops the
/// highest (SIGTERM to the group, the grace period, then SIGKILL). A supervisor task per
/// replica restarts a process that fails (with `restart: on_failure`), keeping its index.
///
/// Every running process is recorded in the state directory, so a pool built after Ballast
/// restarts adopts (or, with [`Recovery::Cleanup`], stops) what the previous one left
/// running. Dropping the pool ends supervision and leaves the processes running for that
/// reason; [`ProcessPool::shutdown`] (or `scale(0)`) stops them.
pub struct ProcessPool {
    shared: Arc<Shared>,
    slots: tokio::sync::Mutex<BTreeMap<u32, Slot>>,
}

struct Shared {
    policy: String,
    config: ProcessConfig,
    grace: Duration,
    path: PathBuf,
    boot_id: Option<String>,
    live: Mutex<BTreeMap<u32, Live>>,
    /// Cancelled when the pool is dropped: supervisors end and leave their processes be.
    closed: CancellationToken,
}

#[derive(Debug, Clone)]
struct Live {
    pid: i32,
    start_time: u64,
    command: Vec<String>,
    adopted: bool,
}

/// A replica's supervisor.
struct Slot {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A replica's process: our child, or one adopted from an earlier pool.
enum Running {
    Child { child: Child, pid: i32 },
    Adopted { pid: i32, start_time: u64 },
}

impl ProcessPool {
    /// Starts the pool of the policy `policy`, keeping its records in `config.state_dir` or
    /// else in `data_dir` (made when missing). Processes an earlier pool of this policy left
    /// running are adopted or stopped as `recovery` says; records of processes that are gone
    /// (or from an earlier boot) are dropped; a recorded process whose command line is not
    /// what this configuration would start at its index is left alone (logged) and
    /// forgotten.
    pub async fn start(
        policy: &str,
        config: ProcessConfig,
        data_dir: &Path,
        recovery: Recovery,
    ) -> Result<ProcessPool, ProcessError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ProcessError::InvalidTarget { problems });
        }
        let grace = config.grace().unwrap_or(crate::DEFAULT_GRACE_PERIOD);
        let dir = config
            .state_dir
            .clone()
            .unwrap_or_else(|| data_dir.to_path_buf());
        std::fs::create_dir_all(&dir).map_err(|source| ProcessError::StateDir {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(records_file_name(policy));
        let previous = records::read(&path).map_err(|source| ProcessError::Records {
            path: path.clone(),
            source,
        })?;
        let shared = Arc::new(Shared {
            policy: policy.to_string(),
            config,
            grace,
            path,
            boot_id: procfs::boot_id(),
            live: Mutex::new(BTreeMap::new()),
            closed: CancellationToken::new(),
        });
        let found = previous
            .map(|file| shared.still_running(file))
            .unwrap_or_default();

        let mut slots = BTreeMap::new();
        match recovery {
            Recovery::Adopt => {
                for r in &found {
                    shared.lock_live().insert(
                        r.index,
                        Live {
                            pid: r.pid,
                            start_time: r.start_time,
                            command: r.command.clone(),
                            adopted: true,
                        },
                    );
                    let running = Running::Adopted {
                        pid: r.pid,
                        start_time: r.start_time,
                    };
                    slots.insert(r.index, Slot::supervise(shared.clone(), r.index, running));
                }
                if !found.is_empty() {
                    tracing::info!(
                        policy,
                        adopted = found.len(),
                        "process pool: adopted running processes"
                    );
                }
            }
            Recovery::Cleanup => {
                futures::future::join_all(found.iter().map(|r| {
                    let running = Running::Adopted {
                        pid: r.pid,
                        start_time: r.start_time,
                    };
                    running.terminate(&shared, r.index)
                }))
                .await;
                if !found.is_empty() {
                    tracing::info!(
                        policy,
                        stopped = found.len(),
                        "process pool: stopped the processes an earlier pool left running"
                    );
                }
            }
        }
        shared.persist().map_err(|source| ProcessError::Records {
            path: shared.path.clone(),
            source,
        })?;
        Ok(ProcessPool {
            shared,
            slots: tokio::sync::Mutex::new(slots),
        })
    }

    /// The running replicas, by index.
    pub fn processes(&self) -> Vec<ReplicaProcess> {
        self.shared
            .lock_live()
            .iter()
            .filter(|(_, l)| procfs::alive(l.pid, l.start_time))
            .map(|(index, l)| ReplicaProcess {
                index: *index,
                pid: l.pid.unsigned_abs(),
                adopted: l.adopted,
            })
            .collect()
    }

    /// The file the pool records its processes in.
    pub fn records_path(&self) -> &Path {
        &self.shared.path
    }

    /// Stops every process (as `scale(0)` does) and ends the pool.
    pub async fn shutdown(self) -> Result<(), ExecutorError> {
        self.scale(0).await.map(|_| ())
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shared.closed.cancel();
    }
}

impl std::fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPool")
            .field("policy", &self.shared.policy)
            .field("command", &self.shared.config.command)
            .field("records", &self.shared.path)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Executor for ProcessPool {
    fn describe(&self) -> Description {
        let mut template = vec![self.shared.config.command.clone()];
        template.extend(self.shared.config.args.iter().cloned());
        Description::new(
            "process",
            format!(
                "processes `{}` of policy {}",
                template.join(" "),
                self.shared.policy
            ),
        )
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        let live = self.shared.lock_live();
        let running = live
            .values()
            .filter(|l| procfs::alive(l.pid, l.start_time))
            .count();
        Ok(u32::try_from(running).unwrap_or(u32::MAX))
    }

    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let shared = &self.shared;
        let policy = shared.policy.as_str();
        let mut slots = self.slots.lock().await;
        // A supervisor ends when its process exited and is not to be restarted: its index
        // is free again.
        slots.retain(|_, s| !s.task.is_finished());
        let have = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        if to > have {
            let mut started = Ok(());
            let mut missing = to - have;
            let mut index = 0;
            while missing > 0 {
                if let std::collections::btree_map::Entry::Vacant(free) = slots.entry(index) {
                    match shared.spawn(index) {
                        Ok(running) => {
                            free.insert(Slot::supervise(shared.clone(), index, running));
                            missing -= 1;
                        }
                        Err(e) => {
                            started = Err(spawn_error(shared, index, &e));
                            break;
                        }
                    }
                }
                index += 1;
            }
            let recorded = shared.persist();
            started?;
            recorded.map_err(|e| {
                ExecutorError::Transient(format!(
                    "processes started but not recorded in {}: {e}",
                    shared.path.display()
                ))
            })?;
            tracing::info!(policy, from = have, to, "process pool: started processes");
        } else if to < have {
            let highest: Vec<u32> = slots
                .keys()
                .rev()
                .take((have - to) as usize)
                .copied()
                .collect();
            let stopping: Vec<Slot> = highest.iter().filter_map(|i| slots.remove(i)).collect();
            for slot in &stopping {
                slot.stop.cancel();
            }
            for done in futures::future::join_all(stopping.into_iter().map(|s| s.task)).await {
                if let Err(e) = done {
                    tracing::error!(policy, error = %e, "process pool: a supervisor failed");
                }
            }
            tracing::info!(
                policy,
                from = have,
                to,
                stopped = ?highest,
                "process pool: stopped processes",
            );
        }
        Ok(to)
    }
}

impl Shared {
    fn lock_live(&self) -> MutexGuard<'_, BTreeMap<u32, Live>> {
        self.live.lock().expect("no panic while holding the lock")
    }

    /// The records of `file` whose processes still run and are this pool's to take over.
    fn still_running(&self, file: RecordsFile) -> Vec<Record> {
        let policy = self.policy.as_str();
        let mut found: Vec<Record> = Vec::new();
        for r in file.processes {
            if file.boot_id != self.boot_id {
                tracing::debug!(
                    policy,
                    pid = r.pid,
                    "process pool: record from an earlier boot dropped"
                );
            } else if !procfs::alive(r.pid, r.start_time) {
                tracing::info!(
                    policy,
                    index = r.index,
                    pid = r.pid,
                    "process pool: recorded process is gone; record dropped"
                );
            } else if file.policy != self.policy || r.command != self.config.argv(policy, r.index) {
                tracing::warn!(
                    policy,
                    index = r.index,
                    pid = r.pid,
                    command = ?r.command,
                    "process pool: a recorded process runs another command than this pool \
                     would; left alone and forgotten"
                );
            } else if found.iter().any(|f| f.index == r.index) {
                tracing::warn!(
                    policy,
                    index = r.index,
                    pid = r.pid,
                    "process pool: a second record for the same index; left alone and forgotten"
                );
            } else {
                found.push(r);
            }
        }
        found
    }

    /// Starts replica `index` and records it (in memory; [`Shared::persist`] writes it).
    fn spawn(&self, index: u32) -> io::Result<Running> {
        let argv = self.config.argv(&self.policy, index);
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(&self.config.env)
            .env(INDEX_VAR, index.to_string())
            .env(POLICY_VAR, &self.policy)
            .stdin(Stdio::null())
            // A group of its own: signals reach whatever it starts, and a Ctrl-C or a
            // restart of Ballast does not reach it.
            .process_group(0);
        if let Some(dir) = &self.config.working_dir {
            command.current_dir(dir);
        }
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| io::Error::other("the new process has no pid"))?;
        let start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or(0);
        self.lock_live().insert(
            index,
            Live {
                pid,
                start_time,
                command: argv,
                adopted: false,
            },
        );
        Ok(Running::Child { child, pid })
    }

    /// Writes the records of every live process.
    fn persist(&self) -> io::Result<()> {
        let live = self.lock_live();
        let processes = live
            .iter()
            .map(|(index, l)| Record {
                index: *index,
                pid: l.pid,
                start_time: l.start_time,
                command: l.command.clone(),
            })
            .collect();
        let file = RecordsFile::new(&self.policy, self.boot_id.clone(), processes);
        records::write(&self.path, &file)
    }

    /// Forgets replica `index` (when it is still the process `pid`) and writes the records.
    fn forget(&self, index: u32, pid: i32) {
        {
            let mut live = self.lock_live();
            if live.get(&index).is_some_and(|l| l.pid == pid) {
                live.remove(&index);
            }
        }
        self.persist_or_log();
    }

    fn persist_or_log(&self) {
        if let Err(e) = self.persist() {
            tracing::error!(
                policy = %self.policy,
                path = %self.path.display(),
                error = %e,
                "process pool: could not write the process records"
            );
        }
    }
}

impl Slot {
    fn supervise(shared: Arc<Shared>, index: u32, running: Running) -> Slot {
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(shared, index, running, stop.clone()));
        Slot { stop, task }
    }
}

/// Watches replica `index` until it is told to stop (then stops the process) or the pool is
/// dropped (then leaves it running); restarts it after a failure when the pool says so.
async fn supervise(shared: Arc<Shared>, index: u32, mut running: Running, stop: CancellationToken) {
    let policy = shared.policy.as_str();
    let mut backoff = RESTART_BACKOFF_FIRST;
    loop {
        let since = Instant::now();
        let pid = running.pid();
        let exited = tokio::select! {
            biased;
            () = shared.closed.cancelled() => return,
            () = stop.cancelled() => None,
            status = running.exited() => Some(status),
        };
        let Some(status) = exited else {
            running.terminate(&shared, index).await;
            shared.forget(index, pid);
            return;
        };
        shared.forget(index, pid);
        let how = match status {
            Some(s) => s.to_string(),
            None => "gone (not our child: no exit status)".to_string(),
        };
        if status.is_some_and(|s| s.success()) {
            tracing::info!(
                policy,
                index,
                pid,
                "process pool: process exited cleanly; its index is free"
            );
            return;
        }
        if shared.config.restart == Restart::Never {
            tracing::warn!(
                policy,
                index,
                pid,
                exit = %how,
                "process pool: process failed; not restarted (restart: never)",
            );
            return;
        }
        if since.elapsed() >= STABLE_AFTER {
            backoff = RESTART_BACKOFF_FIRST;
        }
        tracing::warn!(
            policy,
            index,
            pid,
            exit = %how,
            restart_in = ?backoff,
            "process pool: process failed; restarting",
        );
        loop {
            tokio::select! {
                biased;
                () = shared.closed.cancelled() => return,
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            match shared.spawn(index) {
                Ok(restarted) => {
                    shared.persist_or_log();
                    tracing::info!(
                        policy,
                        index,
                        pid = restarted.pid(),
                        "process pool: process restarted"
                    );
                    running = restarted;
                    break;
                }
                Err(e) => {
                    tracing::warn!(
                        policy,
                        index,
                        error = %e,
                        retry_in = ?backoff,
                        "process pool: could not restart the process",
                    );
                }
            }
        }
    }
}

impl Running {
    fn pid(&self) -> i32 {
        match self {
            Running::Child { pid, .. } | Running::Adopted { pid, .. } => *pid,
        }
    }

    /// Waits until the process ends: its exit status for our child, `None` for an adopted
    /// process (watched by polling; only its parent learns the status).
    async fn exited(&mut self) -> Option<ExitStatus> {
        match self {
            Running::Child { child, .. } => child.wait().await.ok(),
            Running::Adopted { pid, start_time } => {
                while procfs::alive(*pid, *start_time) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                None
            }
        }
    }

    /// Stops the process: SIGTERM, up to the grace period to exit, then SIGKILL.
    async fn terminate(self, shared: &Shared, index: u32) {
        let policy = shared.policy.as_str();
        let grace = shared.grace;
        match self {
            Running::Child { mut child, pid } => {
                // The child is not reaped before `wait` returns, so its pid (and group id)
                // cannot be reused while we signal it.
                if let Err(e) = procfs::signal_group(pid, Signal::TERM) {
                    tracing::warn!(policy, index, pid, error = %e, "process pool: SIGTERM failed");
                }
                if tokio::time::timeout(grace, child.wait()).await.is_err() {
                    tracing::warn!(
                        policy,
                        index,
                        pid,
                        ?grace,
                        "process pool: process did not stop within its grace period; SIGKILL"
                    );
                    if let Err(e) = procfs::signal_group(pid, Signal::KILL) {
                        tracing::error!(
                            policy,
                            index,
                            pid,
                            error = %e,
                            "process pool: SIGKILL failed",
                        );
                    }
                    if let Err(e) = child.wait().await {
                        tracing::error!(
                            policy,
                            index,
                            pid,
                            error = %e,
                            "process pool: waiting for a killed process failed",
                        );
                    }
                }
            }
            Running::Adopted { pid, start_time } => {
                let Some(stat) = procfs::stat(pid).filter(|s| s.start_time == start_time) else {
                    return;
                };
                // Not our child: it is checked again (pid and start time) before each signal.
                let send = |signal: Signal| {
                    if !procfs::alive(pid, start_time) {
                        return Ok(());
                    }
                    if stat.pgrp == pid {
                        procfs::signal_group(pid, signal)
                    } else {
                        procfs::signal_process(pid, signal)
                    }
                };
                if let Err(e) = send(Signal::TERM) {
                    tracing::warn!(policy, index, pid, error = %e, "process pool: SIGTERM failed");
                }
                if gone_within(pid, start_time, grace).await {
                    return;
                }
                tracing::warn!(
                    policy,
                    index,
                    pid,
                    ?grace,
                    "process pool: process did not stop within its grace period; SIGKILL"
                );
                if let Err(e) = send(Signal::KILL) {
                    tracing::error!(policy, index, pid, error = %e, "process pool: SIGKILL failed");
                }
                if !gone_within(pid, start_time, KILL_WAIT).await {
                    tracing::error!(
                        policy,
                        index,
                        pid,
                        "process pool: process still runs after SIGKILL"
                    );
                }
            }
        }
    }
}

/// Whether the process is gone within `limit`, looking every 20 ms.
async fn gone_within(pid: i32, start_time: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !procfs::alive(pid, start_time) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
    }
}

fn spawn_error(shared: &Shared, index: u32, e: &io::Error) -> ExecutorError {
    let message = format!(
        "could not start `{}` for replica {index}: {e}",
        shared.config.command
    );
    if permanent_io(e) {
        ExecutorError::Permanent(message)
    } else {
        ExecutorError::Transient(message)
    }
}

/// Errors that a retry will not fix: a missing or non-executable program, a missing
/// directory, a file that is not what it should be.
fn permanent_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
    ) || e.raw_os_error() == Some(rustix::io::Errno::NOEXEC.raw_os_error())
}
