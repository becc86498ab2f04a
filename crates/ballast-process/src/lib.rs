//! The `process` executor: a pool of local processes started from one command template.
//!
//! ```yaml
//! target:
//!   type: process
//!   command: /usr/local/bin/worker     # or a name found on PATH
//!   args: ["--listen", "127.0.0.1:80{index}", "--name", "{policy}-{index}"]
//!   env: { RUST_LOG: info }
//!   working_dir: /srv/worker
//!   grace_period: 30s                  # SIGTERM, then this long, then SIGKILL (default 10s)
//!   restart: on_failure                # or never
//!   state_dir: /var/lib/ballast        # default: the runtime's data directory
//! ```
//!
//! - **Replicas and indices.** Replica `i` (0-based) runs the command with `{index}` and
//!   `{policy}` filled in, and with `BALLAST_REPLICA_INDEX=i` and `BALLAST_POLICY=<name>`
//!   added to the environment (Ballast's own environment plus `env`). Indices are stable:
//!   scaling up fills the lowest free indices, scaling down stops the highest. Each process
//!   leads a process group of its own, and signals go to the group, so whatever it starts
//!   is stopped with it.
//! - **Stopping.** SIGTERM to the group, up to `grace_period` for it to exit, then SIGKILL.
//!   Processes of one scale-down are stopped at the same time.
//! - **Supervision.** A task per replica waits for its process. With `restart: on_failure`
//!   a process that exits non-zero or is killed by a signal Ballast did not send is started
//!   again under the same index, after a backoff (500 ms, doubling to 30 s, starting over
//!   once a process has run for 30 s); a clean exit (status 0), or any exit with
//!   `restart: never`, frees its index, and the next `scale` fills it again. `current()`
//!   counts the processes running now; `scale` counts a replica waiting to be restarted as
//!   present (it does not start a second one for that index).
//! - **Input and output.** stdin is `/dev/null`; stdout and stderr are Ballast's own, so the
//!   processes' output lands wherever Ballast's goes.
//! - **Across restarts of Ballast.** The pool records every process (index, pid, its start
//!   time from `/proc/<pid>/stat`, the boot id, its command line) in
//!   `<state_dir>/process-<policy>.json`, replaced atomically (a temporary file, then a
//!   rename). A pool built later for the same policy adopts the recorded processes that still
//!   run (same boot, pid and start time, so a reused pid is never taken for ours, and the
//!   command line this configuration would start at that index): it counts them, watches
//!   them by polling (they are no longer its children) and stops them the same way. With
//!   [`Recovery::Cleanup`] it stops them instead. Records of processes that are gone are
//!   dropped; a recorded process running another command (the configuration changed) is
//!   left alone and logged. Dropping a pool ends supervision and leaves its processes
//!   running, for the next pool to adopt; [`ProcessPool::shutdown`] stops them.
//!   One pool per policy and state directory at a time. (`<policy>` is the name with every
//!   byte outside `[A-Za-z0-9._-]` written `%XX`.) Under systemd, processes outlive a
//!   restart of Ballast only with `KillMode=process`: the default kills the whole control
//!   group, pool included.
//!
//! Linux only: the pool reads `/proc` (start times, boot id) and uses process groups.
//!
//! Build one from a policy's `target` block with [`ProcessConfig::from_target`] (or check a
//! block with [`check`]) and [`ProcessPool::start`].

mod config;
mod pool;
mod procfs;
mod records;

pub use config::{
    DEFAULT_GRACE_PERIOD, INDEX_VAR, POLICY_VAR, ProcessConfig, ProcessType, Restart, check,
};
pub use pool::{
    ProcessError, ProcessPool, RESTART_BACKOFF_FIRST, RESTART_BACKOFF_MAX, Recovery, ReplicaProcess,
};
