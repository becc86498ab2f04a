//! Load traces: the `timestamp_s,value` CSV files a backtest replays (`BACKTEST.md`, "Inputs").

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::csv_input::{self, CsvProblem};

/// The only header a trace file may have.
const HEADER: [&str; 2] = ["timestamp_s", "value"];

/// A validated load trace: at least two rows, finite strictly increasing timestamps and finite
/// non-negative values.
///
/// `values[i]` is the load observed in the period that starts at `timestamps[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Seconds (Unix time or relative), strictly increasing.
    pub timestamps: Vec<f64>,
    /// Load in the period starting at the matching timestamp; finite and `>= 0`.
    pub values: Vec<f64>,
}

/// Why a trace could not be read. Every variant about a row names its line: line 1 is the
/// header and the first data row is line 2. For [`Trace::from_rows`], row `i` (0-based) is
/// reported as line `i + 2`, as if it had been read from a file.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read trace {}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CSV itself is malformed (unbalanced quotes, invalid UTF-8, a read error, ...).
    #[error("line {line}: malformed CSV: {source}")]
    Csv {
        /// Line of the problem (0 when the CSV reader does not know it).
        line: u64,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// The first line is not `timestamp_s,value` (or the input is empty).
    #[error("line 1: expected the header `timestamp_s,value`, found `{found}`")]
    Header {
        /// What the first line held, fields joined by commas (empty for an empty input).
        found: String,
    },
    /// A row does not have exactly two fields.
    #[error("line {line}: expected 2 fields (timestamp_s,value), found {found}")]
    FieldCount {
        /// Line of the row.
        line: u64,
        /// Number of fields found.
        found: usize,
    },
    /// A field is not a number.
    #[error("line {line}: {column} `{text}` is not a number")]
    NotANumber {
        /// Line of the row.
        line: u64,
        /// `timestamp_s` or `value`.
        column: &'static str,
        /// The field as written.
        text: String,
    },
    /// A field is NaN or infinite.
    #[error("line {line}: {column} is {number}, but it must be finite")]
    NotFinite {
        /// Line of the row.
        line: u64,
        /// `timestamp_s` or `value`.
        column: &'static str,
        /// The offending number.
        number: f64,
    },
    /// A value is below zero: load cannot be negative.
    #[error("line {line}: value {value} is negative; load cannot be")]
    NegativeValue {
        /// Line of the row.
        line: u64,
        /// The offending value.
        value: f64,
    },
    /// A timestamp is not after the previous row's.
    #[error(
        "line {line}: timestamp {timestamp} does not come after the previous row's {previous}; \
         rows must be sorted with distinct timestamps"
    )]
    NotIncreasing {
        /// Line of the row.
        line: u64,
        /// Its timestamp.
        timestamp: f64,
        /// The previous row's timestamp.
        previous: f64,
    },
    /// A trace needs two rows to have a step.
    #[error("the trace has {rows} data row(s); at least 2 are needed to know its step")]
    TooFewRows {
        /// Number of data rows found.
        rows: usize,
    },
}

impl Trace {
    /// Reads a trace CSV (header `timestamp_s,value`) from any reader. Whitespace around fields
    /// is ignored; a UTF-8 byte-order mark is accepted.
    pub fn from_reader(reader: impl Read) -> Result<Trace, TraceError> {
        let mut builder = Builder::default();
        for row in csv_input::rows(reader, &HEADER)? {
            let (line, record) = row?;
            let timestamp = parse_field(line, "timestamp_s", &record[0])?;
            let value = parse_field(line, "value", &record[1])?;
            builder.push(line, timestamp, value)?;
        }
        builder.finish()
    }

    /// Reads a trace CSV file; an open or read failure names the path.
    ///
    /// The file is read whole before parsing, so that every IO failure is reported with its
    /// path rather than half-way through the CSV reader (traces are a few megabytes at most).
    pub fn from_path(path: &Path) -> Result<Trace, TraceError> {
        let bytes = std::fs::read(path).map_err(|source| TraceError::Io {
            path: path.to_owned(),
            source,
        })?;
        Trace::from_reader(bytes.as_slice())
    }

    /// Builds a trace from `(timestamp_s, value)` pairs, with the same checks as a file.
    pub fn from_rows(rows: Vec<(f64, f64)>) -> Result<Trace, TraceError> {
        let mut builder = Builder::default();
        for (i, (timestamp, value)) in rows.into_iter().enumerate() {
            let line = i as u64 + 2;
            check_finite(line, "timestamp_s", timestamp)?;
            check_finite(line, "value", value)?;
            builder.push(line, timestamp, value)?;
        }
        builder.finish()
    }

    /// Number of rows (always at least 2).
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Always false: a valid trace has at least 2 rows. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The mean rate, load units per second: `Σ value / (rows · median step)`, each row's
    /// rate averaged. `--capacity auto` and the acceptance scenarios use a tenth of it.
    pub fn mean_rate(&self) -> f64 {
        self.values.iter().sum::<f64>() / (self.len() as f64 * self.median_step())
    }

    /// The median of the steps between consecutive timestamps (the mean of the two middle
    /// steps when their count is even). Always positive for a valid trace.
    ///
    /// Runs in O(n) with a selection algorithm rather than a sort, since a trace may have
    /// hundreds of thousands of rows and callers ask for it more than once.
    pub fn median_step(&self) -> f64 {
        let mut steps: Vec<f64> = self.timestamps.windows(2).map(|w| w[1] - w[0]).collect();
        let n = steps.len();
        if n == 0 {
            return 0.0;
        }
        let mid = n / 2;
        let (lower, upper, _) = steps.select_nth_unstable_by(mid, f64::total_cmp);
        let upper = *upper;
        if n % 2 == 1 {
            upper
        } else {
            // The other middle element is the largest of the lower part.
            let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lower_max + upper) / 2.0
        }
    }
}

/// Accumulates rows and applies the checks shared by files and in-memory rows.
#[derive(Default)]
struct Builder {
    timestamps: Vec<f64>,
    values: Vec<f64>,
}

impl Builder {
    fn push(&mut self, line: u64, timestamp: f64, value: f64) -> Result<(), TraceError> {
        if value < 0.0 {
            return Err(TraceError::NegativeValue { line, value });
        }
        if let Some(&previous) = self.timestamps.last()
            && timestamp <= previous
        {
            return Err(TraceError::NotIncreasing {
                line,
                timestamp,
                previous,
            });
        }
        self.timestamps.push(timestamp);
        // `-0.0` passes the check above; store it as `0.0` so it prints as 0.
        self.values.push(value + 0.0);
        Ok(())
    }

    fn finish(self) -> Result<Trace, TraceError> {
        if self.timestamps.len() < 2 {
            return Err(TraceError::TooFewRows {
                rows: self.timestamps.len(),
            });
        }
        Ok(Trace {
            timestamps: self.timestamps,
            values: self.values,
        })
    }
}

fn parse_field(line: u64, column: &'static str, text: &str) -> Result<f64, TraceError> {
    let number: f64 = text.parse().map_err(|_| TraceError::NotANumber {
        line,
        column,
        text: text.to_owned(),
    })?;
    check_finite(line, column, number)?;
    Ok(number)
}

fn check_finite(line: u64, column: &'static str, number: f64) -> Result<(), TraceError> {
    if number.is_finite() {
        Ok(())
    } else {
        Err(TraceError::NotFinite {
            line,
            column,
            number,
        })
    }
}

impl From<CsvProblem> for TraceError {
    fn from(problem: CsvProblem) -> TraceError {
        match problem {
            CsvProblem::Csv { line, source } => TraceError::Csv { line, source },
            CsvProblem::Header { found } => TraceError::Header { found },
            CsvProblem::FieldCount { line, found } => TraceError::FieldCount { line, found },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Trace, TraceError> {
        Trace::from_reader(text.as_bytes())
    }

    #[test]
    fn reads_a_well_formed_trace() {
        let trace = read("timestamp_s,value\n0,10\n60,20.5\n120,0\n").unwrap();
        assert_eq!(trace.timestamps, vec![0.0, 60.0, 120.0]);
        assert_eq!(trace.values, vec![10.0, 20.5, 0.0]);
    }

    #[test]
    fn tolerates_spaces_crlf_and_a_bom() {
        let trace = read("\u{feff}timestamp_s, value\r\n 0 , 1\r\n60,2\r\n").unwrap();
        assert_eq!(trace.values, vec![1.0, 2.0]);
    }

    #[test]
    fn a_missing_header_is_reported() {
        let err = read("0,10\n60,20\n").unwrap_err();
        assert!(matches!(err, TraceError::Header { ref found } if found == "0,10"));
        assert!(err.to_string().starts_with("line 1: expected the header"));
        assert!(matches!(read(""), Err(TraceError::Header { .. })));
        assert!(matches!(
            read("time,value\n0,1\n1,2\n"),
            Err(TraceError::Header { .. })
        ));
    }

    #[test]
    fn an_unparsable_number_names_its_line_and_column() {
        let err = read("timestamp_s,value\n0,1\n60,abc\n").unwrap_err();
        assert!(
            matches!(err, TraceError::NotANumber { line: 3, column: "value", ref text } if text == "abc")
        );
        assert_eq!(err.to_string(), "line 3: value `abc` is not a number");
    }

    #[test]
    fn nan_infinite_and_negative_values_are_rejected() {
        assert!(matches!(
            read("timestamp_s,value\n0,NaN\n60,1\n"),
            Err(TraceError::NotFinite {
                line: 2,
                column: "value",
                ..
            })
        ));
        assert!(matches!(
            read("timestamp_s,value\n0,1\ninf,1\n"),
            Err(TraceError::NotFinite {
                line: 3,
                column: "timestamp_s",
                ..
            })
        ));
        assert!(matches!(
            read("timestamp_s,value\n0,1\n60,-2\n"),
            Err(TraceError::NegativeValue { line: 3, .. })
        ));
    }

    #[test]
    fn timestamps_must_strictly_increase() {
        let err = read("timestamp_s,value\n0,1\n60,1\n60,1\n").unwrap_err();
        assert!(matches!(err, TraceError::NotIncreasing { line: 4, .. }));
        assert!(matches!(
            read("timestamp_s,value\n60,1\n0,1\n"),
            Err(TraceError::NotIncreasing { line: 3, .. })
        ));
    }

    #[test]
    fn fewer_than_two_rows_is_an_error() {
        assert!(matches!(
            read("timestamp_s,value\n0,1\n"),
            Err(TraceError::TooFewRows { rows: 1 })
        ));
        assert!(matches!(
            read("timestamp_s,value\n"),
            Err(TraceError::TooFewRows { rows: 0 })
        ));
    }

    #[test]
    fn a_row_with_the_wrong_field_count_names_its_line() {
        assert!(matches!(
            read("timestamp_s,value\n0,1\n60,1,3\n"),
            Err(TraceError::FieldCount { line: 3, found: 3 })
        ));
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let path = Path::new("/nonexistent/ballast/trace.csv");
        let err = Trace::from_path(path).unwrap_err();
        assert!(matches!(err, TraceError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/ballast/trace.csv"));
    }

    #[test]
    fn from_rows_checks_like_a_file() {
        assert!(Trace::from_rows(vec![(0.0, 1.0), (1.0, 2.0)]).is_ok());
        assert!(matches!(
            Trace::from_rows(vec![(0.0, 1.0), (1.0, f64::NAN)]),
            Err(TraceError::NotFinite { line: 3, .. })
        ));
        assert!(matches!(
            Trace::from_rows(vec![(0.0, 1.0)]),
            Err(TraceError::TooFewRows { rows: 1 })
        ));
    }

    #[test]
    fn median_step_takes_the_middle_step() {
        let odd =
            Trace::from_rows(vec![(0.0, 0.0), (60.0, 0.0), (180.0, 0.0), (240.0, 0.0)]).unwrap();
        assert_eq!(odd.median_step(), 60.0);
        let even = Trace::from_rows(vec![(0.0, 0.0), (10.0, 0.0), (40.0, 0.0)]).unwrap();
        assert_eq!(even.median_step(), 20.0);
    }
}
