//! The per-tick timeline of a backtest and the summary computed from it.

use crate::csv_input::{self, CsvProblem};

/// One tick of a backtest, exactly the columns of the timeline CSV
/// (`timestamp_s,demand,required,desired,ready,allocated`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelineRow {
    /// Start of the tick, in the trace's seconds.
    pub timestamp_s: f64,
    /// `r_k`: the time-weighted mean rate over the tick (load units per second).
    pub demand: f64,
    /// `d_k = ceil(r_k / capacity)`, 0 when `r_k` is 0.
    pub required: u32,
    /// What the controller decided at the start of this tick.
    pub desired: u32,
    /// Replicas that serve this tick.
    pub ready: u32,
    /// Replicas paid for in this tick (ready plus starting).
    pub allocated: u32,
}

/// The summary figures of `BACKTEST.md`, computed from a timeline alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of ticks `T`.
    pub ticks: usize,
    /// `sum(allocated_k) · tick / 3600 · price`.
    pub cost: f64,
    /// θ_U, under-provisioning accuracy (%).
    pub theta_u: f64,
    /// θ_O, over-provisioning accuracy (%).
    pub theta_o: f64,
    /// τ_U, under-provisioning timeshare (%).
    pub tau_u: f64,
    /// τ_O, over-provisioning timeshare (%).
    pub tau_o: f64,
    /// υ, instability (%).
    pub instability: f64,
    /// Share of demand left unserved (%).
    pub unserved: f64,
    /// Ticks `k ≥ 1` whose desired count differs from the previous tick's.
    pub actions: usize,
}

/// The header of the timeline CSV, exactly as `BACKTEST.md` fixes it.
pub const CSV_HEADER: &str = "timestamp_s,demand,required,desired,ready,allocated";

/// The columns of [`CSV_HEADER`], in order.
const COLUMNS: [&str; 6] = [
    "timestamp_s",
    "demand",
    "required",
    "desired",
    "ready",
    "allocated",
];

/// Computes `BACKTEST.md`'s summary figures from a timeline, with `T = rows.len()` and
/// `s_k = ready_k`:
///
/// - cost `Σ allocated_k · tick / 3600 · price`;
/// - θ_U / θ_O: `100/T · Σ (d_k − s_k)+ / max(d_k, 1)` and the same for `(s_k − d_k)+`;
/// - τ_U / τ_O: the percentage of ticks with `d_k > s_k` / `s_k > d_k`;
/// - υ: `100/(T−1) · Σ_{k≥1} min(|sgn(s_k − s_{k−1}) − sgn(d_k − d_{k−1})|, 1)`, 0 when
///   `T < 2`;
/// - unserved: `100 · Σ (r_k − s_k·capacity)+ / Σ r_k`, 0 when `Σ r_k` is 0;
/// - actions: ticks `k ≥ 1` with `desired_k ≠ desired_{k−1}`.
///
/// Every figure is 0 for an empty timeline.
pub fn summarize(rows: &[TimelineRow], tick_s: f64, price: f64, capacity: f64) -> Summary {
    let t = rows.len();
    let mut allocated_sum = 0.0;
    let (mut theta_u, mut theta_o) = (0.0, 0.0);
    let (mut under, mut over) = (0usize, 0usize);
    let (mut unstable, mut actions) = (0usize, 0usize);
    let (mut unserved, mut demand_sum) = (0.0, 0.0);

    for (k, row) in rows.iter().enumerate() {
        let (d, s) = (i64::from(row.required), i64::from(row.ready));
        allocated_sum += f64::from(row.allocated);
        let weight = d.max(1) as f64; // ε = 1
        if d > s {
            under += 1;
            theta_u += (d - s) as f64 / weight;
        } else if s > d {
            over += 1;
            theta_o += (s - d) as f64 / weight;
        }
        unserved += (row.demand - f64::from(row.ready) * capacity).max(0.0);
        demand_sum += row.demand;

        if k >= 1 {
            let prev = &rows[k - 1];
            let ds = (s - i64::from(prev.ready)).signum();
            let dd = (d - i64::from(prev.required)).signum();
            unstable += usize::from(ds != dd);
            actions += usize::from(row.desired != prev.desired);
        }
    }

    let per_tick = |x: f64| if t == 0 { 0.0 } else { 100.0 * x / t as f64 };
    Summary {
        ticks: t,
        cost: allocated_sum * tick_s / 3600.0 * price,
        theta_u: per_tick(theta_u),
        theta_o: per_tick(theta_o),
        tau_u: per_tick(under as f64),
        tau_o: per_tick(over as f64),
        instability: if t < 2 {
            0.0
        } else {
            100.0 * unstable as f64 / (t - 1) as f64
        },
        unserved: if demand_sum > 0.0 {
            100.0 * unserved / demand_sum
        } else {
            0.0
        },
        actions,
    }
}

/// Writes the timeline CSV: the header [`CSV_HEADER`], then one row per tick with `demand` as
/// a decimal (the shortest text that reads back to the same number) and the other columns as
/// integers; timestamps print without a trailing `.0` when whole.
pub fn write_csv(rows: &[TimelineRow], writer: impl std::io::Write) -> std::io::Result<()> {
    use std::io::Write as _;
    // Rust's `Display` for f64 never uses an exponent and omits `.0` on whole numbers, and
    // it is the shortest representation that round-trips, which is what the format asks.
    let mut w = std::io::BufWriter::new(writer);
    writeln!(w, "{CSV_HEADER}")?;
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{},{}",
            r.timestamp_s, r.demand, r.required, r.desired, r.ready, r.allocated
        )?;
    }
    w.flush()
}

/// Why a timeline CSV could not be read. Lines count from 1, the header being line 1.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// The CSV itself is malformed or could not be read.
    #[error("line {line}: malformed CSV: {source}")]
    Csv {
        /// Line of the problem (0 when unknown).
        line: u64,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// The first line is not [`CSV_HEADER`].
    #[error("line 1: expected the header `{CSV_HEADER}`, found `{found}`")]
    Header {
        /// What the first line held.
        found: String,
    },
    /// A row does not have six fields.
    #[error("line {line}: expected 6 fields, found {found}")]
    FieldCount {
        /// Line of the row.
        line: u64,
        /// Number of fields found.
        found: usize,
    },
    /// A field is not a number of the column's kind (finite decimal, or integer for counts).
    #[error("line {line}: {column} `{text}` is not a valid {kind}")]
    BadField {
        /// Line of the row.
        line: u64,
        /// The column.
        column: &'static str,
        /// `finite number` or `replica count`.
        kind: &'static str,
        /// The field as written.
        text: String,
    },
}

/// Reads a timeline CSV written by [`write_csv`] (or by another implementation of the same
/// format).
pub fn read_csv(reader: impl std::io::Read) -> Result<Vec<TimelineRow>, TimelineError> {
    let mut rows = Vec::new();
    for row in csv_input::rows(reader, &COLUMNS)? {
        let (line, record) = row?;
        let decimal = |i: usize| -> Result<f64, TimelineError> {
            record[i]
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad_field(line, COLUMNS[i], "finite number", &record[i]))
        };
        let count = |i: usize| -> Result<u32, TimelineError> {
            record[i]
                .parse::<u32>()
                .map_err(|_| bad_field(line, COLUMNS[i], "replica count", &record[i]))
        };
        rows.push(TimelineRow {
            timestamp_s: decimal(0)?,
            demand: decimal(1)?,
            required: count(2)?,
            desired: count(3)?,
            ready: count(4)?,
            allocated: count(5)?,
        });
    }
    Ok(rows)
}

impl From<CsvProblem> for TimelineError {
    fn from(problem: CsvProblem) -> TimelineError {
        match problem {
            CsvProblem::Csv { line, source } => TimelineError::Csv { line, source },
            CsvProblem::Header { found } => TimelineError::Header { found },
            CsvProblem::FieldCount { line, found } => TimelineError::FieldCount { line, found },
        }
    }
}

fn bad_field(line: u64, column: &'static str, kind: &'static str, text: &str) -> TimelineError {
    TimelineError::BadField {
        line,
        column,
        kind,
        text: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(timestamp_s: f64, demand: f64, required: u32, desired: u32, ready: u32) -> TimelineRow {
        TimelineRow {
            timestamp_s,
            demand,
            required,
            desired,
            ready,
            allocated: desired,
        }
    }

    #[test]
    fn summary_of_a_four_tick_timeline_matches_hand_figures() {
        // capacity 10, tick 60 s, price 2 per replica-hour.
        let rows = [
            TimelineRow {
                allocated: 2,
                ..row(0.0, 15.0, 2, 2, 2)
            },
            // Demand jumps; a launch is starting: under-provisioned by 2 of 4.
            TimelineRow {
                allocated: 4,
                ..row(60.0, 35.0, 4, 4, 2)
            },
            // Ready catches up while demand drops: over-provisioned by 1 of 3.
            TimelineRow {
                allocated: 4,
                ..row(120.0, 30.0, 3, 4, 4)
            },
            // Nothing required; 1 ready left (over by 1, weighted by ε = 1).
            TimelineRow {
                allocated: 1,
                ..row(180.0, 0.0, 0, 1, 1)
            },
        ];
        let s = summarize(&rows, 60.0, 2.0, 10.0);
        assert_eq!(s.ticks, 4);
        // (2 + 4 + 4 + 1) · 60 / 3600 · 2 = 11/30.
        assert!((s.cost - 11.0 / 30.0).abs() < 1e-12);
        // θ_U = 100/4 · (2/4) = 12.5.
        assert_eq!(s.theta_u, 12.5);
        // θ_O = 100/4 · (1/3 + 1/1) = 33.33…
        assert!((s.theta_o - 25.0 * (1.0 / 3.0 + 1.0)).abs() < 1e-12);
        assert_eq!((s.tau_u, s.tau_o), (25.0, 50.0));
        // k=1: s flat (0), d up (+1) → 1; k=2: s up, d down → 1 (capped);
        // k=3: s down, d down → 0. υ = 100 · 2/3.
        assert!((s.instability - 200.0 / 3.0).abs() < 1e-12);
        // Unserved: only tick 1, 35 − 20 = 15 of Σr = 80.
        assert_eq!(s.unserved, 100.0 * 15.0 / 80.0);
        // desired 2 → 4 → 4 → 1.
        assert_eq!(s.actions, 2);
    }

    #[test]
    fn degenerate_timelines_give_zero_figures() {
        let empty = summarize(&[], 60.0, 1.0, 1.0);
        assert_eq!(empty.ticks, 0);
        assert_eq!(
            (empty.cost, empty.theta_u, empty.instability, empty.unserved),
            (0.0, 0.0, 0.0, 0.0)
        );
        let one = summarize(&[row(0.0, 0.0, 0, 1, 1)], 60.0, 1.0, 1.0);
        assert_eq!(
            (one.instability, one.unserved, one.tau_o),
            (0.0, 0.0, 100.0)
        );
    }

    #[test]
    fn csv_round_trips_and_prints_whole_timestamps_without_a_fraction() {
        let rows = vec![
            row(1451606400.0, 1183.1816666666666, 2, 3, 3),
            TimelineRow {
                allocated: 5,
                ..row(1451606460.0, 0.0, 0, 5, 3)
            },
            row(1451606520.5, 1e-7, 1, 1, 1),
        ];
        let mut out = Vec::new();
        write_csv(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        expect_test::expect![[r#"
            timestamp_s,demand,required,desired,ready,allocated
            1451606400,1183.1816666666666,2,3,3,3
            1451606460,0,0,5,3,5
            1451606520.5,0.0000001,1,1,1,1
        "#]]
        .assert_eq(&text);
        assert_eq!(read_csv(text.as_bytes()).unwrap(), rows);
    }

    #[test]
    fn reading_a_bad_timeline_names_the_line() {
        assert!(matches!(
            read_csv("timestamp_s,demand\n".as_bytes()),
            Err(TimelineError::Header { .. })
        ));
        let err =
            read_csv(format!("{CSV_HEADER}\n0,1,1,1,1,1\n60,1,-1,1,1,1\n").as_bytes()).unwrap_err();
        assert!(matches!(
            err,
            TimelineError::BadField {
                line: 3,
                column: "required",
                ..
            }
        ));
        assert!(matches!(
            read_csv(format!("{CSV_HEADER}\n0,1,1,1\n").as_bytes()),
            Err(TimelineError::FieldCount { line: 2, found: 4 })
        ));
        assert!(matches!(
            read_csv(format!("{CSV_HEADER}\n0,NaN,1,1,1,1\n").as_bytes()),
            Err(TimelineError::BadField {
                column: "demand",
                ..
            })
        ));
    }
}
