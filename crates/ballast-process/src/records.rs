//! The pool's records of its running processes: one JSON file per policy in the state
//! directory, replaced atomically (a temporary file in the same directory, then a rename), so
//! a crash leaves either the old records or the new ones.

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The format version of the records file.
const VERSION: u32 = 1;

/// The records file, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordsFile {
    /// The format version.
    pub version: u32,
    /// The policy whose processes these are.
    pub policy: String,
    /// The boot the processes were started in (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot_id: Option<String>,
    /// One record per running process.
    pub processes: Vec<Record>,
}

/// One running process of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// Its replica index.
    pub index: u32,
    /// Its pid, which is also its process group.
    pub pid: i32,
    /// When it started, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub start_time: u64,
    /// The command line it was started with.
    pub command: Vec<String>,
}

impl RecordsFile {
    /// Records of `processes` for `policy` in this boot.
    pub fn new(policy: &str, boot_id: Option<String>, processes: Vec<Record>) -> RecordsFile {
        RecordsFile {
            version: VERSION,
            policy: policy.to_string(),
            boot_id,
            processes,
        }
    }
}

/// Reads the records at `path`; `None` when there are none yet.
pub(crate) fn read(path: &Path) -> io::Result<Option<RecordsFile>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file: RecordsFile = serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if file.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "records format version {} (expected {VERSION})",
                file.version
            ),
        ));
    }
    Ok(Some(file))
}

/// Replaces the records at `path` with `file`: write a temporary file beside it, flush it to
/// disk, rename it over the old one.
pub(crate) fn write(path: &Path, file: &RecordsFile) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".process-records-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, file).map_err(io::Error::other)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_write_and_a_read_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("process-web.json");
        assert_eq!(read(&path).expect("readable"), None);
        let file = RecordsFile::new(
            "web",
            Some("boot".into()),
            vec![Record {
                index: 0,
                pid: 42,
                start_time: 7,
                command: vec!["sleep".into(), "1000".into()],
            }],
        );
        write(&path, &file).expect("written");
        write(&path, &file).expect("written over");
        assert_eq!(read(&path).expect("readable"), Some(file));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("an entry").file_name())
            .collect();
        assert_eq!(names, ["process-web.json"]);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_pool() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("process-web.json");
        std::fs::write(&path, "{not json").expect("written");
        assert_eq!(
            read(&path).expect_err("corrupt").kind(),
            io::ErrorKind::InvalidData
        );
    }
}
