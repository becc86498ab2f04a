//! The values the store hands out and takes in.

use std::fmt;
use std::str::FromStr;

use ballast_core::{Decision, PolicySpec};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A stored policy: the spec as written, with its id, version and who changed it when.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRecord {
    /// Assigned by the store at creation; never changes.
    pub id: Uuid,
    /// The spec's name (unique among policies).
    pub name: String,
    /// The policy as the operator wrote it.
    pub spec: PolicySpec,
    /// 1 at creation, one more with every update; updates and deletes name the version
    /// they expect, so that a change based on a stale read is refused.
    pub version: i64,
    /// When the policy was created.
    pub created_at: DateTime<Utc>,
    /// When the policy was last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
}

/// What an API token may do. Ordered: each scope includes the ones below it, so a check
/// reads `token.scope >= Scope::Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read everything.
    Viewer,
    /// Also act: evaluate, scale, change concurrency.
    Operator,
    /// Also manage policies and tokens.
    Admin,
}

impl Scope {
    /// `viewer`, `operator` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Viewer => "viewer",
            Scope::Operator => "operator",
            Scope::Admin => "admin",
        }
    }
}

/// A stored API token. The token itself is never stored, only its hash, which the caller
/// computes; so a record cannot be turned back into a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Assigned by the store.
    pub id: Uuid,
    /// Unique name, for listing and revoking.
    pub name: String,
    /// What the token may do.
    pub scope: Scope,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryKind {
    /// An engine decision (recorded before it is carried out).
    Decision,
    /// A policy was created.
    PolicyCreated,
    /// A policy was changed.
    PolicyUpdated,
    /// A policy was deleted.
    PolicyDeleted,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked.
    TokenDeleted,
}

impl HistoryKind {
    /// The snake_case name stored and shown: `decision`, `policy_created`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Decision => "decision",
            HistoryKind::PolicyCreated => "policy_created",
            HistoryKind::PolicyUpdated => "policy_updated",
            HistoryKind::PolicyDeleted => "policy_deleted",
            HistoryKind::TokenCreated => "token_created",
            HistoryKind::TokenDeleted => "token_deleted",
        }
    }
}

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Recorded, not yet carried out (or the runtime stopped before it could say).
    Pending,
    /// Carried out.
    Succeeded,
    /// Carrying it out failed; the detail says why.
    Failed,
    /// A dry-run decision: recorded, never carried out.
    DryRun,
}

impl Outcome {
    /// `pending`, `succeeded`, `failed` or `dry_run`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::DryRun => "dry_run",
        }
    }
}

/// A name that is not one of an enum's stored names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {})", .expected.join(", "))]
pub struct UnknownName {
    /// Which enum: "scope", "history kind" or "outcome".
    pub what: &'static str,
    /// The name given.
    pub value: String,
    /// The names accepted.
    pub expected: &'static [&'static str],
}

/// `FromStr` and `Display` from the `as_str` names, for each stored enum.
macro_rules! names {
    ($ty:ident, $what:literal, [$($variant:ident),+]) => {
        impl $ty {
            /// Every stored name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($ty::$variant.as_str()),+];
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $(if s == $ty::$variant.as_str() {
                    return Ok($ty::$variant);
                })+
                Err(UnknownName {
                    what: $what,
                    value: s.to_owned(),
                    expected: $ty::NAMES,
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Scope, "scope", [Viewer, Operator, Admin]);
names!(
    HistoryKind,
    "history kind",
    [
        Decision,
        PolicyCreated,
        PolicyUpdated,
        PolicyDeleted,
        TokenCreated,
        TokenDeleted
    ]
);
names!(Outcome, "outcome", [Pending, Succeeded, Failed, DryRun]);

/// One entry of the audit log: a decision, or a change to a policy or token.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Increasing with every entry; the cursor of [`HistoryFilter`].
    pub id: i64,
    /// When the store recorded it.
    pub at: DateTime<Utc>,
    /// What it records.
    pub kind: HistoryKind,
    /// The policy it is about (kept after the policy is deleted).
    pub policy_id: Option<Uuid>,
    /// The policy's name at the time.
    pub policy_name: Option<String>,
    /// Who: an API token's name, a user, or `engine`.
    pub actor: String,
    /// For decisions: `scale_up`, `scale_down` or `hold`.
    pub action: Option<String>,
    /// For decisions: the count when deciding.
    pub from_replicas: Option<i64>,
    /// For decisions: the desired count.
    pub to_replicas: Option<i64>,
    /// For decisions: the policy was a dry run.
    pub dry_run: bool,
    /// The decision's one-line summary, or what changed.
    pub reason: String,
    /// For decisions: the whole decision with its proposals and constraints.
    pub decision: Option<Decision>,
    /// For decisions: what became of it.
    pub outcome: Option<Outcome>,
    /// For decisions: the executor's message, once there is an outcome.
    pub outcome_detail: Option<String>,
    /// For decisions: when the outcome was recorded.
    pub outcome_at: Option<DateTime<Utc>>,
}

/// Which history entries to return. Every field narrows the result; the default returns
/// the newest 50 entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Only entries about this policy.
    pub policy_id: Option<Uuid>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only decisions with this action (`scale_up`, `scale_down`, `hold`).
    pub action: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<HistoryKind>,
    /// Only entries with an id below this: the `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size: 0 means 50, and more than 500 means 500.
    pub limit: u32,
}

impl HistoryFilter {
    /// The page size actually used.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => 50,
            n => n.min(500),
        }
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The entries of this page.
    pub items: Vec<T>,
    /// Set when more entries remain: pass it as the next filter's `cursor`.
    pub next_cursor: Option<i64>,
}
