//! Reading the crate's headed CSV formats (traces and timelines): fields trimmed, the header
//! row checked, every record's field count checked and its line number kept.

use std::io::Read;

use csv::StringRecord;

/// A problem common to every headed CSV, before any field is parsed. [`TraceError`] and
/// [`TimelineError`] have a variant of the same name and fields for each.
///
/// [`TraceError`]: crate::trace::TraceError
/// [`TimelineError`]: crate::timeline::TimelineError
#[derive(Debug)]
pub(crate) enum CsvProblem {
    /// The CSV itself is malformed or could not be read; `line` is 0 when unknown.
    Csv { line: u64, source: csv::Error },
    /// The first line is not the header (`found` is empty for an empty input).
    Header { found: String },
    /// A row does not have as many fields as the header.
    FieldCount { line: u64, found: usize },
}

impl From<csv::Error> for CsvProblem {
    fn from(source: csv::Error) -> CsvProblem {
        let line = source.position().map_or(0, |p| p.line());
        CsvProblem::Csv { line, source }
    }
}

/// The data rows of a CSV whose first line must be `header`: each with its line number
/// (the header is line 1) and exactly `header.len()` fields. The header is checked before
/// this returns; every row is checked as it is read.
pub(crate) fn rows<R: Read>(
    reader: R,
    header: &'static [&'static str],
) -> Result<impl Iterator<Item = Result<(u64, StringRecord), CsvProblem>>, CsvProblem> {
    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader)
        .into_records();
    match records.next() {
        None => {
            return Err(CsvProblem::Header {
                found: String::new(),
            });
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(first)) => {
            if first.iter().ne(header.iter().copied()) {
                let found = first.iter().collect::<Vec<_>>().join(",");
                return Err(CsvProblem::Header { found });
            }
        }
    }
    Ok(records.map(move |record| {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(CsvProblem::FieldCount {
                line,
                found: record.len(),
            });
        }
        Ok((line, record))
    }))
}
