//! The shared executor conformance suite for [`KedaExecutor`]. The world is the board: what
//! it holds is what KEDA is told, and every publication that changed the count is a change.
//! Publishing cannot fail, so the failure checks are skipped.

use std::sync::Arc;

use async_trait::async_trait;
use ballast_executor::Executor;
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_keda::{KedaBoard, KedaExecutor, KedaKind, KedaTarget};

#[derive(Default)]
struct Board {
    board: KedaBoard,
    started: u32,
}

impl Board {
    fn policy(&self) -> String {
        format!("conformance-{}", self.started)
    }

    fn published(&self) -> ballast_keda::Published {
        self.board
            .get(&self.policy())
            .expect("the policy is on the board")
    }
}

#[async_trait]
impl Harness for Board {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        // A fresh policy each time, like a fresh target.
        self.started += 1;
        let target = KedaTarget {
            kind: KedaKind::Keda,
            scaled_object: None,
        };
        Arc::new(KedaExecutor::new(
            self.board.clone(),
            self.policy(),
            target,
            initial,
        ))
    }

    async fn observed(&self) -> u32 {
        self.published().desired
    }

    async fn changes(&self) -> Option<u64> {
        Some(self.published().changes)
    }

    async fn fail_next(&self, _: Failure) -> bool {
        false
    }
}

#[tokio::test]
async fn the_keda_executor_conforms() {
    let mut world = Board::default();
    conformance::run(&mut world).await;
    // Every start made a policy of its own.
    assert_eq!(world.board.policies().len(), world.started as usize);
}
