//! The oracle: the clairvoyant reference point of `BACKTEST.md`. It knows the whole trace and
//! launches exactly early enough, so it is never under-provisioned and sets the cost every
//! other controller is compared with.

use std::collections::VecDeque;

use crate::grid::{Grid, Scenario};
use crate::model::{Run, Schedule, simulate};

/// `desired_k = max(d_k, …, d_{k+L})`, the window clipped at the end of the grid.
///
/// A sliding-window maximum over a monotonic deque of indices whose required counts
/// decrease from front to back: each index enters and leaves once, so this is O(T) whatever
/// `lead_ticks` is.
pub fn oracle_desired(grid: &Grid, lead_ticks: usize) -> Vec<u32> {
    let d = &grid.required;
    let t = d.len();
    let mut desired = vec![0; t];
    // Indices of the window [k, k+L], smallest at the front, with d strictly increasing
    // from front to back: the back is the window's maximum. Walking k downwards, the window
    // gains k at the front and loses indices beyond k+L at the back.
    let mut window: VecDeque<usize> = VecDeque::new();
    for k in (0..t).rev() {
        while window
            .back()
            .is_some_and(|&j| j > k.saturating_add(lead_ticks))
        {
            window.pop_back();
        }
        // A later index with a count no higher than d_k leaves the window before k does, so
        // it can never be the maximum again.
        while window.front().is_some_and(|&j| d[j] <= d[k]) {
            window.pop_front();
        }
        window.push_front(k);
        desired[k] = window.back().map_or(0, |&j| d[j]);
    }
    desired
}

/// Runs the oracle over `grid`: `initial = desired_0`, then its schedule.
pub fn run_oracle(grid: &Grid, scenario: &Scenario, progress: &mut dyn FnMut(usize, usize)) -> Run {
    let desired = oracle_desired(grid, scenario.lead_ticks());
    let initial = desired.first().copied().unwrap_or(0);
    simulate(
        grid,
        scenario,
        "oracle",
        initial,
        &mut Schedule(desired),
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_of(required: &[u32]) -> Grid {
        let demand = required.iter().map(|&d| f64::from(d)).collect();
        Grid::from_demand(0.0, &Scenario::new(1.0), demand).unwrap()
    }

    /// The definition, in O(T·L), to check the deque against.
    fn naive(required: &[u32], lead: usize) -> Vec<u32> {
        (0..required.len())
            .map(|k| {
                let end = (k + lead + 1).min(required.len());
                required[k..end].iter().copied().max().unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn takes_the_max_over_the_next_lead_ticks_clipped_at_the_end() {
        let d = [1, 3, 2, 0, 0, 5, 1, 1];
        assert_eq!(oracle_desired(&grid_of(&d), 2), [3, 3, 2, 5, 5, 5, 1, 1]);
        assert_eq!(oracle_desired(&grid_of(&d), 0), d);
        assert_eq!(oracle_desired(&grid_of(&d), 100), [5, 5, 5, 5, 5, 5, 1, 1]);
    }

    #[test]
    fn matches_the_definition_on_many_windows() {
        let d: Vec<u32> = (0..500u32).map(|i| (i * 7919 + i * i) % 23).collect();
        let g = grid_of(&d);
        for lead in [0, 1, 2, 3, 7, 50, 499, 600] {
            assert_eq!(oracle_desired(&g, lead), naive(&d, lead), "lead {lead}");
        }
    }

    #[test]
    fn the_oracle_run_is_never_under_provisioned() {
        let d = [1, 3, 2, 0, 0, 5, 1, 1, 9, 0, 4];
        let g = grid_of(&d);
        let scenario = Scenario::new(1.0); // L = 2
        let run = run_oracle(&g, &scenario, &mut |_, _| {});
        for (k, row) in run.rows.iter().enumerate() {
            assert!(row.ready >= row.required, "tick {k}: {row:?}");
        }
        assert_eq!(run.summary.unserved, 0.0);
        assert_eq!(run.rows[0].ready, 3, "initial = desired_0");
    }
}
