//! The scenario of a backtest and the tick grid built from a trace (`BACKTEST.md`, "Inputs"
//! and "The grid").

use crate::trace::Trace;

/// Default seconds from launch to ready.
pub const DEFAULT_STARTUP_S: f64 = 120.0;
/// Default evaluation interval in seconds.
pub const DEFAULT_TICK_S: f64 = 60.0;
/// Default price of one allocated replica for one hour.
pub const DEFAULT_PRICE: f64 = 1.0;

/// Relative distance to an integer under which a replica ratio counts as that integer.
///
/// `r / capacity` often lands one ulp above a whole number (`2.0000000000000004`) when the
/// rate went through a division or a time-weighted sum. Taking `ceil` of that literally would
/// ask for a replica nobody needs, so a ratio within `1e-9` (relative, or absolute below 1) of
/// an integer is snapped to it. Real ratios are never that close to an integer by accident at
/// the magnitudes traces have (a few thousand replicas at most), so no real demand is lost.
pub const RATIO_SNAP: f64 = 1e-9;

/// `ceil(x)` with float noise snapped away (see [`RATIO_SNAP`]); 0 for `x <= 0` (and NaN), at
/// least 1 for any `x > 0`, saturating at `u32::MAX`.
pub fn ceil_snapped(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    let nearest = x.round();
    // A positive ratio never snaps to 0: any demand at all needs a replica.
    let c = if nearest >= 1.0 && (x - nearest).abs() <= RATIO_SNAP * x.max(1.0) {
        nearest
    } else {
        x.ceil()
    };
    // `as` saturates, which is what we want for absurdly large ratios.
    c as u32
}

/// What a backtest assumes about the service, besides the trace and the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Load units per second that one ready replica serves.
    pub capacity: f64,
    /// Seconds from launch to ready.
    pub startup_s: f64,
    /// The evaluation interval in seconds.
    pub tick_s: f64,
    /// Price of one allocated replica for one hour.
    pub price: f64,
    /// Replicas ready at the first tick; `None` means `ceil(rate_0 / capacity)`, at least 1.
    pub initial: Option<u32>,
}

/// A scenario field with an unusable value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// A field that must be finite and positive is not.
    #[error("{field} must be a finite number greater than 0, got {value}")]
    NotPositive {
        /// The field's name (`capacity`, `tick_s`).
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A field that must be finite and non-negative is not.
    #[error("{field} must be a finite number of at least 0, got {value}")]
    Negative {
        /// The field's name (`startup_s`, `price`).
        field: &'static str,
        /// Its value.
        value: f64,
    },
}

impl Scenario {
    /// A scenario with the given capacity and `BACKTEST.md`'s defaults: startup 120 s, tick
    /// 60 s, price 1.0 per replica-hour, initial count from the first row.
    pub fn new(capacity: f64) -> Scenario {
        Scenario {
            capacity,
            startup_s: DEFAULT_STARTUP_S,
            tick_s: DEFAULT_TICK_S,
            price: DEFAULT_PRICE,
            initial: None,
        }
    }

    /// Checks every field and returns all problems at once, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<ScenarioError>> {
        let mut problems = Vec::new();
        for (field, value) in [("capacity", self.capacity), ("tick_s", self.tick_s)] {
            if !(value.is_finite() && value > 0.0) {
                problems.push(ScenarioError::NotPositive { field, value });
            }
        }
        for (field, value) in [("startup_s", self.startup_s), ("price", self.price)] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push(ScenarioError::Negative { field, value });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// `L = ceil(startup / tick)`: how many ticks after its launch a replica becomes ready.
    ///
    /// Uses the same noise guard as the replica ratios, so that a startup that is a whole
    /// number of ticks is never rounded up by float error.
    pub fn lead_ticks(&self) -> usize {
        ceil_snapped(self.startup_s / self.tick_s) as usize
    }
}

/// Why a grid could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    /// The scenario has unusable fields.
    #[error("invalid scenario: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidScenario(Vec<ScenarioError>),
    /// Not a single whole tick fits in the trace.
    #[error("the trace covers {span_s} s, shorter than one tick of {tick_s} s")]
    NoWholeTick {
        /// Seconds the trace covers (first row to the end of the last row).
        span_s: f64,
        /// The tick.
        tick_s: f64,
    },
}

/// The trace resampled onto ticks: per tick, the demand `r_k` and the required replicas `d_k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Start of tick 0: the trace's first timestamp.
    pub t0: f64,
    /// Length of a tick in seconds.
    pub tick_s: f64,
    /// `r_k`: the time-weighted mean rate over tick `k` (load units per second).
    pub demand: Vec<f64>,
    /// `d_k = ceil(r_k / capacity)`, 0 when `r_k` is 0 (see [`ceil_snapped`]).
    pub required: Vec<u32>,
    /// The first row's rate (`value_0 / median_step`), which sets the default initial count.
    pub first_rate: f64,
    /// The trace's median step in seconds.
    pub median_step: f64,
}

/// A piece of the piecewise-constant rate: `rate` over `[start, end)`, times relative to `t0`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    end: f64,
    rate: f64,
}

impl Grid {
    /// Resamples `trace` onto the scenario's ticks, exactly as `BACKTEST.md` fixes it:
    ///
    /// - row `i` covers `[t_i, t_{i+1})`, except that the last row covers one median step
    ///   and a row whose next row is more than 3 median steps away covers one median step,
    ///   the rest of the gap having load 0;
    /// - a row's rate is `value / median_step`, whatever span it covers;
    /// - tick `k` covers `[t_0 + k·tick, t_0 + (k+1)·tick)`, for every whole tick before the
    ///   end of the last row's coverage;
    /// - `r_k` is the exact integral of the rate over the tick divided by the tick.
    ///
    /// One sweep over rows and ticks together: O(rows + ticks).
    pub fn new(trace: &Trace, scenario: &Scenario) -> Result<Grid, GridError> {
        scenario.validate().map_err(GridError::InvalidScenario)?;
        let tick = scenario.tick_s;
        let step = trace.median_step();
        let t0 = trace.timestamps[0];
        let n = trace.len();

        // Times are kept relative to t0: Unix timestamps are ~1.5e9, and subtracting first
        // keeps the overlaps below exact for integer-second traces.
        let segment = |i: usize| -> Segment {
            let start = trace.timestamps[i] - t0;
            let end = match trace.timestamps.get(i + 1) {
                Some(&next) if next - trace.timestamps[i] <= 3.0 * step => next - t0,
                _ => start + step,
            };
            Segment {
                start,
                end,
                rate: trace.values[i] / step,
            }
        };

        let span = segment(n - 1).end;
        let ticks = whole_ticks(span, tick);
        if ticks == 0 {
            return Err(GridError::NoWholeTick {
                span_s: span,
                tick_s: tick,
            });
        }

        let mut demand = Vec::with_capacity(ticks);
        let mut first = 0; // first segment that may overlap the current tick
        for k in 0..ticks {
            // Computed from k rather than accumulated, so boundaries do not drift.
            let a = k as f64 * tick;
            let b = (k + 1) as f64 * tick;
            while first < n && segment(first).end <= a {
                first += 1;
            }
            let mut integral = 0.0;
            let mut sole_rate = None; // Some(rate) when one segment covers the whole tick
            let mut i = first;
            while i < n {
                let s = segment(i);
                if s.start >= b {
                    break;
                }
                if s.start <= a && s.end >= b {
                    sole_rate = Some(s.rate);
                }
                let overlap = s.end.min(b) - s.start.max(a);
                if overlap > 0.0 {
                    integral += s.rate * overlap;
                }
                if s.end > b {
                    break; // this segment continues into the next tick
                }
                i += 1;
            }
            // A tick inside one row gets that row's rate exactly, without the
            // multiply-then-divide rounding that would put it one ulp off.
            demand.push(sole_rate.unwrap_or(integral / tick));
        }

        let required = demand
            .iter()
            .map(|&r| ceil_snapped(r / scenario.capacity))
            .collect();
        Ok(Grid {
            t0,
            tick_s: tick,
            demand,
            required,
            first_rate: trace.values[0] / step,
            median_step: step,
        })
    }

    /// Builds a grid from demands directly (for tests and synthetic scenarios).
    pub fn from_demand(t0: f64, scenario: &Scenario, demand: Vec<f64>) -> Result<Grid, GridError> {
        scenario.validate().map_err(GridError::InvalidScenario)?;
        if demand.is_empty() {
            return Err(GridError::NoWholeTick {
                span_s: 0.0,
                tick_s: scenario.tick_s,
            });
        }
        let required = demand
            .iter()
            .map(|&r| ceil_snapped(r / scenario.capacity))
            .collect();
        Ok(Grid {
            t0,
            tick_s: scenario.tick_s,
            first_rate: demand[0],
            demand,
            required,
            median_step: scenario.tick_s,
        })
    }

    /// Number of ticks `T`.
    pub fn len(&self) -> usize {
        self.demand.len()
    }

    /// True when the grid has no tick (never for a grid built by [`Grid::new`]).
    pub fn is_empty(&self) -> bool {
        self.demand.is_empty()
    }

    /// Start of tick `k` in the trace's seconds.
    pub fn tick_start(&self, k: usize) -> f64 {
        self.t0 + k as f64 * self.tick_s
    }

    /// A copy of the first `ticks` ticks (for no-look-ahead checks).
    pub fn truncated(&self, ticks: usize) -> Grid {
        let ticks = ticks.min(self.len());
        Grid {
            demand: self.demand[..ticks].to_vec(),
            required: self.required[..ticks].to_vec(),
            ..*self
        }
    }
}

/// Number of whole ticks in `span` seconds, forgiving float error of a few ulps so that a
/// trace of exactly 744 hours holds exactly 44,640 one-minute ticks.
fn whole_ticks(span: f64, tick: f64) -> usize {
    let mut t = (span / tick).floor();
    if (t + 1.0) * tick <= span * (1.0 + 1e-12) {
        t += 1.0;
    }
    t.max(0.0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: Vec<(f64, f64)>, capacity: f64, tick: f64) -> Grid {
        let trace = Trace::from_rows(rows).unwrap();
        let scenario = Scenario {
            tick_s: tick,
            ..Scenario::new(capacity)
        };
        Grid::new(&trace, &scenario).unwrap()
    }

    #[test]
    fn ceil_snapped_ignores_float_noise_but_not_real_excess() {
        assert_eq!(ceil_snapped(2.0000000000000004), 2);
        assert_eq!(ceil_snapped(1.9999999999999998), 2);
        assert_eq!(ceil_snapped(2.001), 3);
        assert_eq!(ceil_snapped(0.0), 0);
        assert_eq!(ceil_snapped(1e-12), 1, "tiny demand still needs a replica");
        assert_eq!(ceil_snapped(f64::NAN), 0);
        assert_eq!(ceil_snapped(1e30), u32::MAX);
    }

    #[test]
    fn scenario_defaults_follow_backtest_md() {
        let s = Scenario::new(5.0);
        assert_eq!(
            (s.startup_s, s.tick_s, s.price, s.initial),
            (120.0, 60.0, 1.0, None)
        );
        assert_eq!(s.lead_ticks(), 2);
        assert_eq!(
            Scenario {
                startup_s: 0.0,
                ..s
            }
            .lead_ticks(),
            0
        );
        assert_eq!(
            Scenario {
                startup_s: 61.0,
                ..s
            }
            .lead_ticks(),
            2
        );
        assert_eq!(
            Scenario {
                startup_s: 0.3,
                tick_s: 0.1,
                ..s
            }
            .lead_ticks(),
            3
        );
    }

    #[test]
    fn validation_names_every_bad_field() {
        let s = Scenario {
            capacity: 0.0,
            startup_s: -1.0,
            tick_s: f64::NAN,
            price: -0.5,
            initial: None,
        };
        let problems = s.validate().unwrap_err();
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| match p {
                ScenarioError::NotPositive { field, .. }
                | ScenarioError::Negative { field, .. } => *field,
            })
            .collect();
        assert_eq!(fields, ["capacity", "tick_s", "startup_s", "price"]);
        assert!(Scenario::new(1.0).validate().is_ok());
        assert!(Scenario::new(f64::INFINITY).validate().is_err());
    }

    #[test]
    fn a_tick_inside_a_row_gets_the_row_rate() {
        // Hourly rows, minute ticks: every tick lies inside one row.
        let g = grid(vec![(0.0, 3600.0), (3600.0, 7200.0)], 1.0, 60.0);
        assert_eq!(g.len(), 120);
        assert!(g.demand[..60].iter().all(|&r| r == 1.0));
        assert!(g.demand[60..].iter().all(|&r| r == 2.0));
        assert_eq!(g.required[0], 1);
        assert_eq!(g.required[119], 2);
        assert_eq!(g.first_rate, 1.0);
    }

    #[test]
    fn the_mean_is_time_weighted_across_row_boundaries() {
        // 60 s rows with rates 1, 2, 3, 4; 90 s ticks.
        let g = grid(
            vec![(0.0, 60.0), (60.0, 120.0), (120.0, 180.0), (180.0, 240.0)],
            1.0,
            90.0,
        );
        // Span is 240 s: two whole ticks [0,90) and [90,180).
        assert_eq!(g.len(), 2);
        assert_eq!(g.demand[0], (60.0 * 1.0 + 30.0 * 2.0) / 90.0);
        assert_eq!(g.demand[1], (30.0 * 2.0 + 60.0 * 3.0) / 90.0);
        assert_eq!(g.required, vec![2, 3]);
    }

    #[test]
    fn the_last_row_covers_one_median_step() {
        // Median step 10; the last row at 20 covers [20, 30): three 10 s ticks.
        let g = grid(vec![(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)], 1.0, 10.0);
        assert_eq!(g.demand, vec![1.0, 2.0, 3.0]);
        // With 20 s ticks only one whole tick fits in 30 s.
        let g = grid(vec![(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)], 1.0, 20.0);
        assert_eq!(g.demand, vec![1.5]);
    }

    #[test]
    fn a_gap_over_three_steps_is_load_zero_after_one_step() {
        // Median step 10; the row at 20 is followed 40 s later (> 30): it covers [20, 30)
        // and [30, 60) has load 0.
        let g = grid(
            vec![
                (0.0, 10.0),
                (10.0, 10.0),
                (20.0, 50.0),
                (60.0, 10.0),
                (70.0, 10.0),
            ],
            1.0,
            10.0,
        );
        assert_eq!(g.demand, vec![1.0, 1.0, 5.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(g.required, vec![1, 1, 5, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn a_gap_of_exactly_three_steps_is_covered_by_the_row() {
        // Gap 30 = 3 median steps: the row covers it, at the row's rate value / step.
        let g = grid(
            vec![
                (0.0, 10.0),
                (10.0, 10.0),
                (20.0, 50.0),
                (50.0, 10.0),
                (60.0, 10.0),
            ],
            1.0,
            10.0,
        );
        assert_eq!(g.demand, vec![1.0, 1.0, 5.0, 5.0, 5.0, 1.0, 1.0]);
    }

    #[test]
    fn uneven_steps_use_the_median_for_rates() {
        // Steps 10, 20, 10: median 10. The row at 10 covers [10, 30) at rate 40/10 = 4.
        let g = grid(
            vec![(0.0, 10.0), (10.0, 40.0), (30.0, 20.0), (40.0, 0.0)],
            3.0,
            15.0,
        );
        // Span 50: ticks [0,15), [15,30), [30,45).
        assert_eq!(g.len(), 3);
        assert_eq!(g.demand[0], (10.0 * 1.0 + 5.0 * 4.0) / 15.0);
        assert_eq!(g.demand[1], 4.0);
        assert_eq!(g.demand[2], (10.0 * 2.0 + 5.0 * 0.0) / 15.0);
        assert_eq!(g.required, vec![1, 2, 1]);
    }

    #[test]
    fn ticks_larger_than_rows_sum_many_rows() {
        let rows: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, (i % 7) as f64)).collect();
        let g = grid(rows, 1.0, 10.0);
        assert_eq!(g.len(), 10);
        for k in 0..10 {
            let expected: f64 = (k * 10..k * 10 + 10).map(|i| (i % 7) as f64).sum::<f64>() / 10.0;
            assert!((g.demand[k] - expected).abs() < 1e-12, "tick {k}");
        }
    }

    #[test]
    fn a_trace_shorter_than_a_tick_is_an_error() {
        let trace = Trace::from_rows(vec![(0.0, 1.0), (10.0, 1.0)]).unwrap();
        let err = Grid::new(&trace, &Scenario::new(1.0)).unwrap_err();
        assert_eq!(
            err,
            GridError::NoWholeTick {
                span_s: 20.0,
                tick_s: 60.0
            }
        );
    }

    #[test]
    fn whole_ticks_forgives_rounding() {
        assert_eq!(whole_ticks(744.0 * 3600.0, 60.0), 44_640);
        assert_eq!(whole_ticks(0.3, 0.1), 3);
        assert_eq!(whole_ticks(59.0, 60.0), 0);
    }
}
