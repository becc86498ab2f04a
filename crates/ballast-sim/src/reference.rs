//! The reference points of `BACKTEST.md` (oracle, Kubernetes HPA, KEDA) behind one call, so
//! that a backtest can put a policy's figures next to them.

use crate::grid::{Grid, Scenario};
use crate::hpa::Hpa;
use crate::keda::Keda;
use crate::model::{Controller, Run, default_initial, simulate};
use crate::oracle::run_oracle;

/// One of the reference controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reference {
    /// The clairvoyant limit ([`crate::oracle`]).
    Oracle,
    /// The Kubernetes HPA on CPU utilization, target 70 % ([`crate::hpa`]).
    Hpa,
    /// KEDA: the HPA on the demand with a target of 70 % of capacity ([`crate::keda`]).
    Keda,
}

impl Reference {
    /// All references, in the order reports list them.
    pub const ALL: [Reference; 3] = [Reference::Oracle, Reference::Hpa, Reference::Keda];

    /// The run name: `oracle`, `hpa` or `keda`.
    pub fn name(self) -> &'static str {
        match self {
            Reference::Oracle => "oracle",
            Reference::Hpa => "hpa",
            Reference::Keda => "keda",
        }
    }
}

/// Runs a reference controller over `grid` with its `BACKTEST.md` settings. The oracle starts
/// at its own `desired_0`; the HPA and KEDA start at [`default_initial`].
pub fn run_reference(
    grid: &Grid,
    scenario: &Scenario,
    which: Reference,
    progress: &mut dyn FnMut(usize, usize),
) -> Run {
    let mut controller: Box<dyn Controller> = match which {
        Reference::Oracle => return run_oracle(grid, scenario, progress),
        Reference::Hpa => Box::new(Hpa::reference(scenario.capacity)),
        Reference::Keda => Box::new(Keda::reference(scenario.capacity)),
    };
    let initial = default_initial(grid, scenario);
    simulate(
        grid,
        scenario,
        which.name(),
        initial,
        controller.as_mut(),
        progress,
    )
}
