//! What Linux's `/proc` tells about a process: whether it still runs, when it started (so a
//! reused pid is not taken for the process recorded under it) and its group.

use std::io;

use rustix::process::{Pid, Signal};

/// The few fields of `/proc/<pid>/stat` the pool needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// The state letter (`R`, `S`, `D`, `Z` for a zombie, ...).
    pub state: char,
    /// The process group.
    pub pgrp: i32,
    /// When the process started, in clock ticks since boot: with the pid, it names one
    /// process for the whole uptime of the machine.
    pub start_time: u64,
}

impl Stat {
    /// Whether the process still runs (it is neither a zombie nor dead).
    pub fn running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses the text of `/proc/<pid>/stat` (proc(5)). The second field, the command name in
/// parentheses, may itself hold spaces and parentheses, so fields are counted from the last
/// `)`: state is field 3, pgrp field 5, starttime field 22.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3.
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        start_time,
    })
}

/// Whether the process `pid` that started at `start_time` still runs.
pub(crate) fn alive(pid: i32, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start_time && s.running())
}

/// This boot's id: records from an earlier boot name processes that are long gone.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Sends `signal` to the process group `pgid`; a group that is gone is not an error.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> io::Result<()> {
    let Some(pid) = Pid::from_raw(pgid) else {
        return Ok(());
    };
    ignore_gone(rustix::process::kill_process_group(pid, signal))
}

/// Sends `signal` to the process `pid`; a process that is gone is not an error.
pub(crate) fn signal_process(pid: i32, signal: Signal) -> io::Result<()> {
    let Some(pid) = Pid::from_raw(pid) else {
        return Ok(());
    };
    ignore_gone(rustix::process::kill_process(pid, signal))
}

fn ignore_gone(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                state: 'S',
                pgrp: 4242,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_has_a_command_line() {
        let me = i32::try_from(std::process::id()).expect("a pid fits i32");
        let s = stat(me).expect("our own stat");
        assert!(s.running());
        assert!(alive(me, s.start_time));
        assert!(
            !alive(me, s.start_time + 1),
            "another start time is another process"
        );
        assert!(boot_id().is_some_and(|b| !b.is_empty()));
    }
}
