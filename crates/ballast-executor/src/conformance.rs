//! The conformance suite every executor passes. An executor crate implements [`Harness`]
//! for its own test world (a loopback server following the provider's API, a real process
//! pool, ...) and calls [`run`] from a test. Each check panics with what it expected.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Executor, ExecutorError, Serialized};

/// A failure the test world can inject into the executor's next change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// One that is worth retrying (a 409 conflict, a 503, a 429, a timeout).
    Transient,
    /// One that is not (a 403, a 404, an invalid request).
    Permanent,
}

/// A test world for one executor.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Makes a fresh target holding `initial` replicas and returns an executor for it.
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor>;

    /// The count the world holds now, read behind the executor's back.
    async fn observed(&self) -> u32;

    /// How many changing requests the world has received so far, if it can tell.
    async fn changes(&self) -> Option<u64>;

    /// Makes the world's next change fail with `failure`; false when it cannot.
    async fn fail_next(&self, failure: Failure) -> bool;

    /// Whether the target can go to zero.
    fn supports_zero(&self) -> bool {
        true
    }
}

/// Runs every check against `harness`.
pub async fn run<H: Harness>(harness: &mut H) {
    describes_itself(harness).await;
    reads_and_sets_the_count(harness).await;
    asking_for_the_current_count_changes_nothing(harness).await;
    goes_to_zero_and_back(harness).await;
    a_transient_failure_is_transient_and_a_retry_succeeds(harness).await;
    a_permanent_failure_is_permanent_and_leaves_a_readable_state(harness).await;
    one_action_in_flight_ends_in_a_consistent_state(harness).await;
}

async fn describes_itself<H: Harness>(h: &mut H) {
    let e = h.start(1).await;
    let d = e.describe();
    assert!(!d.kind.is_empty(), "describe: empty kind");
    assert!(!d.target.is_empty(), "describe: empty target");
    if let Some(p) = d.price_per_replica_hour {
        assert!(p.is_finite() && p >= 0.0, "describe: price {p}");
        assert!(d.currency.is_some(), "describe: a price without a currency");
    }
}

async fn reads_and_sets_the_count<H: Harness>(h: &mut H) {
    let e = h.start(2).await;
    assert_eq!(e.current().await, Ok(2), "current after start(2)");
    assert_eq!(h.observed().await, 2, "world after start(2)");
    assert_eq!(e.scale(4).await, Ok(4), "scale(4)");
    assert_eq!(h.observed().await, 4, "world after scale(4)");
    assert_eq!(e.current().await, Ok(4), "current after scale(4)");
    assert_eq!(e.scale(1).await, Ok(1), "scale(1)");
    assert_eq!(h.observed().await, 1, "world after scale(1)");
    assert_eq!(e.current().await, Ok(1), "current after scale(1)");
}

async fn asking_for_the_current_count_changes_nothing<H: Harness>(h: &mut H) {
    let e = h.start(3).await;
    let before = h.changes().await;
    assert_eq!(e.scale(3).await, Ok(3), "scale to the current count");
    assert_eq!(
        h.changes().await,
        before,
        "scale to the current count made a change"
    );
    assert_eq!(h.observed().await, 3);
}

async fn goes_to_zero_and_back<H: Harness>(h: &mut H) {
    if !h.supports_zero() {
        return;
    }
    let e = h.start(1).await;
    assert_eq!(e.scale(0).await, Ok(0), "scale(0)");
    assert_eq!(h.observed().await, 0, "world after scale(0)");
    assert_eq!(e.current().await, Ok(0), "current after scale(0)");
    assert_eq!(e.scale(2).await, Ok(2), "scale(2) from zero");
    assert_eq!(h.observed().await, 2, "world after scale(2) from zero");
}

async fn a_transient_failure_is_transient_and_a_retry_succeeds<H: Harness>(h: &mut H) {
    let e = h.start(1).await;
    if !h.fail_next(Failure::Transient).await {
        return;
    }
    match e.scale(3).await {
        Err(ExecutorError::Transient(_)) => {
            let now = h.observed().await;
            assert_eq!(
                e.current().await,
                Ok(now),
                "current after a transient failure"
            );
            assert_eq!(
                e.scale(3).await,
                Ok(3),
                "the retry after a transient failure"
            );
        }
        // An executor may retry inside (a 429 with Retry-After) and succeed.
        Ok(n) => assert_eq!(n, 3, "scale(3) after retrying inside"),
        Err(other) => panic!("a transient failure reported as {other:?}"),
    }
    assert_eq!(h.observed().await, 3, "world after the retry");
}

async fn a_permanent_failure_is_permanent_and_leaves_a_readable_state<H: Harness>(h: &mut H) {
    let e = h.start(2).await;
    if !h.fail_next(Failure::Permanent).await {
        return;
    }
    match e.scale(4).await {
        Err(ExecutorError::Permanent(m)) => assert!(!m.is_empty(), "an empty error message"),
        other => panic!("a permanent failure reported as {other:?}"),
    }
    let now = h.observed().await;
    assert_eq!(
        e.current().await,
        Ok(now),
        "current after a permanent failure"
    );
}

async fn one_action_in_flight_ends_in_a_consistent_state<H: Harness>(h: &mut H) {
    let e = Arc::new(Serialized::new(h.start(1).await));
    let (a, b) = tokio::join!(e.scale(3), e.scale(2));
    assert_eq!((a, b), (Ok(3), Ok(2)), "two serialized scales");
    assert_eq!(h.observed().await, 2, "the later action wins");
    assert_eq!(e.current().await, Ok(2));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogExecutor;

    #[derive(Default)]
    struct LogWorld {
        executor: Option<Arc<LogExecutor>>,
    }

    #[async_trait]
    impl Harness for LogWorld {
        async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
            let e = Arc::new(LogExecutor::new("conformance", initial));
            self.executor = Some(e.clone());
            e
        }
        async fn observed(&self) -> u32 {
            let e = self.executor.as_ref().expect("started");
            e.current().await.expect("log executor reads")
        }
        async fn changes(&self) -> Option<u64> {
            None
        }
        async fn fail_next(&self, _: Failure) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn the_log_executor_conforms() {
        run(&mut LogWorld::default()).await;
    }
}
