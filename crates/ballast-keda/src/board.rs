//! The board: what each policy with a `keda` target has published, shared between the
//! policies' executors (which write) and the gRPC service (which reads and streams).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

/// What one policy has published for KEDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The desired count Ballast decided last.
    pub desired: u32,
    /// Whether the last change lowered the count. The metric value leans on it to get past
    /// the HPA's tolerance (see [`crate::metric_value`]).
    pub lowered: bool,
    /// How many publications changed the count since the policy was first published.
    pub changes: u64,
}

impl Published {
    /// Whether the target should run at all: KEDA activates it (0 → 1) while this holds and
    /// takes it to zero after its `cooldownPeriod` once it does not.
    pub fn active(&self) -> bool {
        self.desired > 0
    }
}

/// Policy name → its published state. Cheap to clone (one `Arc`); every clone sees the same
/// entries. Each entry is a `watch` channel, so the `StreamIsActive` streams wake up on a
/// change without polling.
#[derive(Debug, Clone, Default)]
pub struct KedaBoard {
    policies: Arc<RwLock<HashMap<String, watch::Sender<Published>>>>,
}

impl KedaBoard {
    /// An empty board.
    pub fn new() -> KedaBoard {
        KedaBoard::default()
    }

    /// Publishes `desired` for `policy` and tells whether that changed anything. The first
    /// publication of a policy adds it to the board (and is not counted as a change);
    /// publishing the count already there changes nothing.
    pub fn publish(&self, policy: &str, desired: u32) -> bool {
        if let Some(sender) = self.read().get(policy) {
            return sender.send_if_modified(|p| change(p, desired));
        }
        let mut policies = self.write();
        // Another writer may have added it between the two locks.
        if let Some(sender) = policies.get(policy) {
            return sender.send_if_modified(|p| change(p, desired));
        }
        let (sender, _) = watch::channel(Published {
            desired,
            lowered: false,
            changes: 0,
        });
        policies.insert(policy.to_string(), sender);
        false
    }

    /// What `policy` has published, if it is on the board.
    pub fn get(&self, policy: &str) -> Option<Published> {
        self.read().get(policy).map(|s| *s.borrow())
    }

    /// A receiver that sees every later publication of `policy`, if it is on the board. Its
    /// `changed()` fails once the policy is removed.
    pub fn subscribe(&self, policy: &str) -> Option<watch::Receiver<Published>> {
        self.read().get(policy).map(watch::Sender::subscribe)
    }

    /// Takes `policy` off the board (when the policy is deleted or no longer targets KEDA);
    /// its open `StreamIsActive` streams end. Returns whether it was there.
    pub fn remove(&self, policy: &str) -> bool {
        self.write().remove(policy).is_some()
    }

    /// The names of the policies on the board, sorted.
    pub fn policies(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, watch::Sender<Published>>> {
        // No code panics while holding the lock; a poisoned map is still consistent.
        self.policies.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, watch::Sender<Published>>> {
        self.policies.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Applies a publication of `desired` to `p`; true when it changed the count.
fn change(p: &mut Published, desired: u32) -> bool {
    if p.desired == desired {
        return false;
    }
    p.lowered = desired < p.desired;
    p.desired = desired;
    p.changes += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_publication_registers_and_later_ones_count_changes() {
        let board = KedaBoard::new();
        assert_eq!(board.get("web"), None);
        assert!(!board.publish("web", 3), "registration is not a change");
        assert_eq!(
            board.get("web"),
            Some(Published {
                desired: 3,
                lowered: false,
                changes: 0
            })
        );
        assert!(!board.publish("web", 3), "the same count changes nothing");
        assert!(board.publish("web", 2));
        assert_eq!(
            board.get("web"),
            Some(Published {
                desired: 2,
                lowered: true,
                changes: 1
            })
        );
        assert!(board.publish("web", 5));
        let p = board.get("web").expect("on the board");
        assert_eq!((p.desired, p.lowered, p.changes), (5, false, 2));
    }

    #[test]
    fn clones_share_entries_and_removal_ends_subscriptions() {
        let board = KedaBoard::new();
        let other = board.clone();
        board.publish("b", 0);
        other.publish("a", 1);
        assert_eq!(board.policies(), ["a", "b"]);
        assert!(!board.get("b").expect("on the board").active());
        assert!(board.get("a").expect("on the board").active());

        let mut rx = board.subscribe("a").expect("on the board");
        assert!(other.remove("a"));
        assert!(!other.remove("a"));
        assert_eq!(board.get("a"), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert!(rt.block_on(rx.changed()).is_err(), "the sender is gone");
    }
}
