//! The replica model (`BACKTEST.md`, "Replicas") and the interface every controller of a
//! backtest implements: a policy, the oracle or a reference autoscaler.

use std::collections::VecDeque;

use crate::grid::{Grid, Scenario, ceil_snapped};
use crate::timeline::{Summary, TimelineRow, summarize};

/// How often (in ticks) [`simulate`] reports progress. A power of two keeps the check cheap.
const PROGRESS_EVERY: usize = 4096;

/// Metrics observed at the end of tick `k` (visible to decisions from tick `k + 1`), as
/// `BACKTEST.md`'s metrics table defines them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickObservation {
    /// The tick `k` these metrics describe.
    pub tick: usize,
    /// End of the tick in the trace's seconds (`t_0 + (k + 1)·tick`).
    pub end_s: f64,
    /// `r_k`, load units per second.
    pub demand: f64,
    /// `ready_k`: replicas that served the tick.
    pub replicas: u32,
    /// `allocated_k`: ready plus starting replicas.
    pub allocated: u32,
    /// `r_k / max(ready_k, 1)`; does not saturate.
    pub load_per_replica: f64,
    /// Percent: 0 when `r_k` is 0, 100 when `ready_k` is 0, else
    /// `min(100, 100·r_k / (ready_k·capacity))`; saturates like CPU.
    pub utilization: f64,
    /// `B_{k+1} = max(0, B_k + (r_k − ready_k·capacity)·tick)`: load waiting at the end of
    /// the tick, in load units.
    pub backlog: f64,
}

/// Something that decides the desired replica count at every tick of a backtest.
pub trait Controller {
    /// Decides `desired_k` for tick `k ≥ 1`, at time `now_s` (start of tick `k`), seeing only
    /// observations of ticks `0..k-1` (`seen.len() == k`).
    fn decide(&mut self, k: usize, now_s: f64, seen: &[TickObservation]) -> u32;
}

/// A controller that replays a precomputed desired count per tick (the oracle's).
///
/// Ticks past the end of the vector keep its last count (0 for an empty vector), so a
/// schedule never panics on a longer grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<u32>);

impl Controller for Schedule {
    fn decide(&mut self, k: usize, _now_s: f64, _seen: &[TickObservation]) -> u32 {
        self.0
            .get(k)
            .or_else(|| self.0.last())
            .copied()
            .unwrap_or(0)
    }
}

/// The result of one backtest run: its timeline and summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Name of the controller (`oracle`, `hpa`, `keda`, a policy's name).
    pub name: String,
    /// One row per tick.
    pub rows: Vec<TimelineRow>,
    /// Figures computed from `rows`.
    pub summary: Summary,
}

/// The initial replica count: the scenario's `initial` if set, else
/// `ceil(rate_0 / capacity)` and at least 1, where `rate_0` is the trace's first row's rate
/// (`value_0 / median_step`, [`Grid::first_rate`]) as `BACKTEST.md`'s "Inputs" says, not the
/// demand of tick 0 (they differ when a tick spans several rows).
pub fn default_initial(grid: &Grid, scenario: &Scenario) -> u32 {
    scenario
        .initial
        .unwrap_or_else(|| ceil_snapped(grid.first_rate / scenario.capacity).max(1))
}

/// The replicas of one run: ready ones and a launch queue of `(ready_at_tick, count)`,
/// oldest first.
#[derive(Debug)]
struct Fleet {
    ready: u32,
    starting: VecDeque<(usize, u32)>,
    starting_total: u32,
}

impl Fleet {
    fn allocated(&self) -> u32 {
        self.ready + self.starting_total
    }

    /// Step 1: launches due at tick `k` become ready.
    fn promote(&mut self, k: usize) {
        while let Some(&(at, n)) = self.starting.front() {
            if at > k {
                break;
            }
            self.starting.pop_front();
            self.starting_total -= n;
            self.ready += n;
        }
    }

    /// Step 3: moves the allocated count to `desired`. Launches are ready at `k + lead`
    /// (at once for `lead == 0`); a reduction cancels starting replicas newest first, then
    /// removes ready ones.
    fn apply(&mut self, k: usize, lead: usize, desired: u32) {
        let allocated = self.allocated();
        if desired > allocated {
            let launch = desired - allocated;
            if lead == 0 {
                self.ready += launch;
            } else {
                self.starting.push_back((k + lead, launch));
                self.starting_total += launch;
            }
        } else if desired < allocated {
            let mut remove = allocated - desired;
            while remove > 0 {
                let Some(newest) = self.starting.back_mut() else {
                    break;
                };
                let cancel = newest.1.min(remove);
                newest.1 -= cancel;
                self.starting_total -= cancel;
                remove -= cancel;
                if newest.1 == 0 {
                    self.starting.pop_back();
                }
            }
            self.ready -= remove;
        }
    }
}

/// Runs `controller` over `grid` under `scenario`'s replica model and returns the timeline
/// and summary.
///
/// Tick 0 starts with `initial` replicas, all ready, and keeps them (`desired_0 = initial`).
/// From tick 1 on, each tick runs `BACKTEST.md`'s steps in order: due launches become ready,
/// the controller decides from the observations of earlier ticks only, the allocation moves
/// to the decision. `progress(done, total)` is called every 4096 ticks and once at the end.
pub fn simulate(
    grid: &Grid,
    scenario: &Scenario,
    name: &str,
    initial: u32,
    controller: &mut dyn Controller,
    progress: &mut dyn FnMut(usize, usize),
) -> Run {
    let total = grid.len();
    let lead = scenario.lead_ticks();
    let capacity = scenario.capacity;
    let mut fleet = Fleet {
        ready: initial,
        starting: VecDeque::new(),
        starting_total: 0,
    };
    let mut rows = Vec::with_capacity(total);
    let mut seen: Vec<TickObservation> = Vec::with_capacity(total);
    let mut backlog = 0.0;

    for k in 0..total {
        let now_s = grid.tick_start(k);
        let desired = if k == 0 {
            initial
        } else {
            fleet.promote(k);
            let desired = controller.decide(k, now_s, &seen);
            fleet.apply(k, lead, desired);
            desired
        };
        let (ready, allocated) = (fleet.ready, fleet.allocated());
        let demand = grid.demand[k];
        rows.push(TimelineRow {
            timestamp_s: now_s,
            demand,
            required: grid.required[k],
            desired,
            ready,
            allocated,
        });

        let served = f64::from(ready) * capacity;
        backlog = (backlog + (demand - served) * grid.tick_s).max(0.0);
        let utilization = if demand == 0.0 {
            0.0
        } else if ready == 0 {
            100.0
        } else {
            (100.0 * demand / served).min(100.0)
        };
        seen.push(TickObservation {
            tick: k,
            end_s: grid.tick_start(k + 1),
            demand,
            replicas: ready,
            allocated,
            load_per_replica: demand / f64::from(ready.max(1)),
            utilization,
            backlog,
        });

        if (k + 1) % PROGRESS_EVERY == 0 {
            progress(k + 1, total);
        }
    }
    progress(total, total);

    let summary = summarize(&rows, grid.tick_s, scenario.price, capacity);
    Run {
        name: name.to_owned(),
        rows,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(startup_s: f64) -> Scenario {
        Scenario {
            startup_s,
            ..Scenario::new(1.0)
        }
    }

    fn grid(ticks: usize) -> Grid {
        Grid::from_demand(0.0, &Scenario::new(1.0), vec![1.0; ticks]).unwrap()
    }

    fn run(startup_s: f64, desired: Vec<u32>) -> Run {
        let g = grid(desired.len());
        let initial = desired[0];
        simulate(
            &g,
            &scenario(startup_s),
            "schedule",
            initial,
            &mut Schedule(desired),
            &mut |_, _| {},
        )
    }

    fn ready_allocated(run: &Run) -> Vec<(u32, u32)> {
        run.rows.iter().map(|r| (r.ready, r.allocated)).collect()
    }

    #[test]
    fn launches_become_ready_after_lead_ticks() {
        // L = ceil(120 / 60) = 2: launched at tick 1, ready at tick 3.
        let r = run(120.0, vec![1, 3, 3, 3, 3]);
        assert_eq!(
            ready_allocated(&r),
            [(1, 1), (1, 3), (1, 3), (3, 3), (3, 3)]
        );
    }

    #[test]
    fn zero_startup_makes_launches_ready_at_once() {
        let r = run(0.0, vec![1, 4, 2, 5]);
        assert_eq!(ready_allocated(&r), [(1, 1), (4, 4), (2, 2), (5, 5)]);
    }

    #[test]
    fn a_reduction_cancels_the_newest_starting_replicas_first() {
        // L = 3. Tick 1 launches 2 (ready at 4), tick 2 launches 3 (ready at 5). Tick 3 goes
        // down to 3, removing 3 of the 5 starting: tick 2's launch goes, tick 1's stays.
        let r = run(180.0, vec![1, 3, 6, 3, 3, 3, 3]);
        assert_eq!(
            ready_allocated(&r),
            [(1, 1), (1, 3), (1, 6), (1, 3), (3, 3), (3, 3), (3, 3)]
        );
        // Cutting into tick 1's launch: down to 2 leaves one of its two.
        let r = run(180.0, vec![1, 3, 6, 2, 2, 2]);
        assert_eq!(
            ready_allocated(&r),
            [(1, 1), (1, 3), (1, 6), (1, 2), (2, 2), (2, 2)]
        );
    }

    #[test]
    fn ready_replicas_are_removed_only_after_all_starting_ones() {
        let r = run(120.0, vec![4, 6, 2, 2, 2]);
        assert_eq!(
            ready_allocated(&r),
            [(4, 4), (4, 6), (2, 2), (2, 2), (2, 2)]
        );
    }

    #[test]
    fn tick_zero_keeps_the_initial_count_all_ready() {
        // Even with a long startup, the initial replicas serve tick 0.
        let r = run(600.0, vec![7, 7]);
        assert_eq!(ready_allocated(&r), [(7, 7), (7, 7)]);
        assert_eq!(r.rows[0].desired, 7);
    }

    /// Records what it was shown, to check the look-ahead rule and the metrics.
    struct Spy {
        seen: Vec<Vec<TickObservation>>,
        desired: u32,
    }

    impl Controller for Spy {
        fn decide(&mut self, k: usize, now_s: f64, seen: &[TickObservation]) -> u32 {
            assert_eq!(seen.len(), k);
            assert_eq!(now_s, k as f64 * 60.0 + 1000.0);
            self.seen.push(seen.to_vec());
            self.desired
        }
    }

    #[test]
    fn observations_follow_the_metrics_table() {
        let s = Scenario {
            capacity: 10.0,
            startup_s: 0.0,
            ..Scenario::new(10.0)
        };
        let g = Grid::from_demand(1000.0, &s, vec![0.0, 25.0, 50.0, 5.0]).unwrap();
        let mut spy = Spy {
            seen: vec![],
            desired: 3,
        };
        simulate(&g, &s, "spy", 2, &mut spy, &mut |_, _| {});
        let all = spy.seen.last().unwrap();
        assert_eq!(all.len(), 3);
        let o = all[0];
        assert_eq!(
            (o.tick, o.end_s, o.replicas, o.allocated),
            (0, 1060.0, 2, 2)
        );
        assert_eq!(
            (o.utilization, o.backlog, o.load_per_replica),
            (0.0, 0.0, 0.0)
        );
        // Tick 1: 3 ready serve 30 of 25: utilization 83.3 %, no backlog.
        let o = all[1];
        assert_eq!(o.replicas, 3);
        assert!((o.utilization - 100.0 * 25.0 / 30.0).abs() < 1e-12);
        assert_eq!(o.backlog, 0.0);
        assert!((o.load_per_replica - 25.0 / 3.0).abs() < 1e-12);
        // Tick 2: 50 against 30: utilization saturates at 100, backlog (50-30)·60 = 1200.
        let o = all[2];
        assert_eq!(o.utilization, 100.0);
        assert_eq!(o.backlog, 1200.0);
        assert!((o.load_per_replica - 50.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn backlog_drains_and_utilization_is_full_without_ready_replicas() {
        let s = Scenario {
            startup_s: 0.0,
            ..Scenario::new(10.0)
        };
        let g = Grid::from_demand(1000.0, &s, vec![20.0, 5.0, 5.0]).unwrap();
        let mut spy = Spy {
            seen: vec![],
            desired: 1,
        };
        simulate(&g, &s, "spy", 0, &mut spy, &mut |_, _| {});
        let all = spy.seen.last().unwrap();
        // Tick 0: no ready replica, 20/s unserved for 60 s.
        assert_eq!((all[0].utilization, all[0].backlog), (100.0, 1200.0));
        assert_eq!(all[0].load_per_replica, 20.0);
        // Tick 1: one replica, 5 of 10 used: the backlog shrinks by 300.
        assert_eq!((all[1].utilization, all[1].backlog), (50.0, 900.0));
    }

    #[test]
    fn progress_is_reported_in_chunks_and_at_the_end() {
        let g = grid(10_000);
        let mut calls = vec![];
        simulate(
            &g,
            &scenario(120.0),
            "p",
            1,
            &mut Schedule(vec![1]),
            &mut |done, total| calls.push((done, total)),
        );
        assert_eq!(calls, [(4096, 10_000), (8192, 10_000), (10_000, 10_000)]);
    }

    #[test]
    fn default_initial_uses_the_first_row_rate_at_least_one() {
        let s = Scenario::new(10.0);
        let g = Grid::from_demand(0.0, &s, vec![25.0, 100.0]).unwrap();
        assert_eq!(default_initial(&g, &s), 3);
        let g = Grid::from_demand(0.0, &s, vec![0.0, 100.0]).unwrap();
        assert_eq!(default_initial(&g, &s), 1);
        let s = Scenario {
            initial: Some(5),
            ..s
        };
        assert_eq!(default_initial(&g, &s), 5);
    }
}
