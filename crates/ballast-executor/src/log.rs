//! The `log` executor: keeps the count in memory and logs every change. It is the default
//! when a policy names no target, and what a dry run would have done looks like.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::{Description, Executor, ExecutorError};

/// Keeps one count in memory and logs every change.
#[derive(Debug)]
pub struct LogExecutor {
    name: String,
    count: Mutex<u32>,
}

impl LogExecutor {
    /// A log executor for the policy `name`, starting at `initial` (what Ballast decided
    /// last, so a restart keeps the count).
    pub fn new(name: impl Into<String>, initial: u32) -> LogExecutor {
        LogExecutor {
            name: name.into(),
            count: Mutex::new(initial),
        }
    }
}

#[async_trait]
impl Executor for LogExecutor {
    fn describe(&self) -> Description {
        Description::new("log", format!("policy {}", self.name))
    }

    async fn current(&self) -> Result<u32, ExecutorError> {
        Ok(*self.count.lock().expect("no panic while holding the lock"))
    }

    async fn scale(&self, to: u32) -> Result<u32, ExecutorError> {
        let mut count = self.count.lock().expect("no panic while holding the lock");
        if *count != to {
            tracing::info!(policy = %self.name, from = *count, to, "log executor: scale");
            *count = to;
        }
        Ok(to)
    }
}
