//! Executors carry decisions out. Until the executor issue lands there is one: `log`, which
//! records what it would do and keeps the count, so the whole loop runs end to end.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// Why an executor could not read or change a count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    /// Worth retrying (a timeout, a conflict, a rate limit).
    #[error("transient: {0}")]
    Transient(String),
    /// Not worth retrying (forbidden, not found, invalid).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// The executors, a closed set.
#[derive(Debug)]
pub enum Executor {
    /// Logs and keeps the count in memory.
    Log(LogExecutor),
}

impl Executor {
    /// The `log` executor.
    pub fn log() -> Executor {
        Executor::Log(LogExecutor::default())
    }

    /// The target's current count; `last_known` is what Ballast decided last (the count
    /// after a restart).
    pub async fn current(&self, policy: Uuid, last_known: u32) -> Result<u32, ExecutorError> {
        match self {
            Executor::Log(l) => Ok(l.current(policy, last_known)),
        }
    }

    /// Sets the count. Asking for the current count is a no-op.
    pub async fn scale(&self, policy: Uuid, name: &str, to: u32) -> Result<(), ExecutorError> {
        match self {
            Executor::Log(l) => {
                l.scale(policy, name, to);
                Ok(())
            }
        }
    }
}

/// Keeps one count per policy in memory and logs every change.
#[derive(Debug, Default)]
pub struct LogExecutor {
    counts: Mutex<HashMap<Uuid, u32>>,
}

impl LogExecutor {
    fn current(&self, policy: Uuid, last_known: u32) -> u32 {
        *self
            .counts
            .lock()
            .expect("no panic while holding the lock")
            .entry(policy)
            .or_insert(last_known)
    }

    fn scale(&self, policy: Uuid, name: &str, to: u32) {
        let mut counts = self.counts.lock().expect("no panic while holding the lock");
        let from = counts.insert(policy, to);
        if from != Some(to) {
            tracing::info!(policy = %name, from = ?from, to, "log executor: scale");
        }
    }
}
