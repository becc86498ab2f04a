//! The process pool against real processes (`sh` and `sleep` on this machine; Linux, as the
//! pool itself). Every test uses a policy name of its own, and its `Sweeper` SIGKILLs every
//! process that still carries that name in its environment (`BALLAST_POLICY`) when the test
//! ends, passed or failed, so no test leaves a process behind.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ballast_executor::Executor;
use ballast_executor::conformance::{self, Failure, Harness};
use ballast_process::{ProcessConfig, ProcessPool, Recovery, ReplicaProcess};
use rustix::process::{Pid, Signal};
use tokio::time::Instant;

/// A shell loop that exits on SIGTERM (after writing `stopped` to the file `$0`) and first
/// writes `<index> <policy> <pid>` there. (Its stderr is closed: the shell would report each
/// `sleep` that the group's SIGTERM ends.)
const POLITE: &str = r#"exec 2>/dev/null
trap 'echo stopped > "$0"; exit 0' TERM
echo "$BALLAST_REPLICA_INDEX $BALLAST_POLICY $$" > "$0"
while :; do sleep 0.1; done"#;

/// The same loop ignoring SIGTERM.
const STUBBORN: &str = r#"exec 2>/dev/null
trap '' TERM
echo "$BALLAST_REPLICA_INDEX $BALLAST_POLICY $$" > "$0"
while :; do sleep 0.1; done"#;

fn policy_name(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// A `sh -c <script> <dir>/out-{policy}-{index}` pool configuration.
fn shell_config(dir: &Path, script: &str, extra: serde_json::Value) -> ProcessConfig {
    let out = dir.join("out-{policy}-{index}");
    let mut block = serde_json::json!({
        "type": "process",
        "command": "sh",
        "args": ["-c", script, out.to_str().expect("utf-8")],
    });
    for (k, v) in extra.as_object().expect("an object") {
        block[k] = v.clone();
    }
    ProcessConfig::from_target(block.as_object().expect("an object")).expect("a valid block")
}

fn out_file(dir: &Path, policy: &str, index: u32) -> PathBuf {
    dir.join(format!("out-{policy}-{index}"))
}

/// What replica `index` wrote: its index, policy and pid, once it has.
fn announced(dir: &Path, policy: &str, index: u32) -> Option<(u32, String, i32)> {
    let text = std::fs::read_to_string(out_file(dir, policy, index)).ok()?;
    let mut parts = text.split_whitespace();
    let i = parts.next()?.parse().ok()?;
    let p = parts.next()?.to_string();
    let pid = parts.next()?.parse().ok()?;
    Some((i, p, pid))
}

fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` runs (exists and is not a zombie).
fn running(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

fn start_time(pid: i32) -> u64 {
    stat_fields(pid).expect("a running process")[19]
        .parse()
        .expect("a start time")
}

fn pids_of(policy: &str, cmdline_contains: Option<&str>) -> Vec<i32> {
    let needle = format!("BALLAST_POLICY={policy}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(pid) = entry
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .parse()
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) || !running(pid) {
            continue;
        }
        if let Some(part) = cmdline_contains {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if !cmdline.split(|b| *b == 0).any(|v| v == part.as_bytes()) {
                continue;
            }
        }
        pids.push(pid);
    }
    pids
}

fn kill(pid: i32) {
    let _ = rustix::process::kill_process(Pid::from_raw(pid).expect("a pid"), Signal::KILL);
}

/// Kills whatever still runs with `BALLAST_POLICY=<policy>` when dropped.
struct Sweeper {
    policy: String,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        for pid in pids_of(&self.policy, None) {
            kill(pid);
        }
    }
}

/// Waits until `check` holds, looking every 20 ms, and fails after `limit`.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn indices_and_pids(pool: &ProcessPool) -> Vec<(u32, u32)> {
    pool.processes()
        .iter()
        .map(|p: &ReplicaProcess| (p.index, p.pid))
        .collect()
}

#[tokio::test]
async fn each_replica_sees_its_index_and_policy_and_indices_stay_stable() {
    let policy = policy_name("indices");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(dir.path(), POLITE, serde_json::json!({}));
    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");

    assert_eq!(pool.scale(3).await, Ok(3));
    assert_eq!(pool.current().await, Ok(3));
    let p = policy.as_str();
    let d = dir.path();
    eventually(
        "three replicas to announce themselves",
        Duration::from_secs(5),
        || (0..3).all(|i| announced(d, p, i).is_some()),
    )
    .await;
    let mut pids = Vec::new();
    for i in 0..3 {
        let (index, seen_policy, pid) = announced(d, p, i).expect("announced");
        assert_eq!(
            (index, seen_policy.as_str()),
            (i, p),
            "replica {i}'s environment"
        );
        pids.push(pid);
    }
    let expected: Vec<(u32, u32)> = (0..3).map(|i| (i, pids[i as usize] as u32)).collect();
    assert_eq!(indices_and_pids(&pool), expected);

    // Scaling down stops the highest indices and leaves index 0 as it was.
    assert_eq!(pool.scale(1).await, Ok(1));
    assert_eq!(indices_and_pids(&pool), [(0, pids[0] as u32)]);
    assert!(running(pids[0]));
    assert!(!running(pids[1]) && !running(pids[2]));
    assert_eq!(
        std::fs::read_to_string(out_file(d, p, 2))
            .expect("written")
            .trim(),
        "stopped",
        "a scale-down sends SIGTERM first"
    );

    // Scaling up fills the lowest free index.
    std::fs::remove_file(out_file(d, p, 1)).expect("removed");
    std::fs::remove_file(out_file(d, p, 2)).expect("removed");
    assert_eq!(pool.scale(2).await, Ok(2));
    eventually(
        "replica 1 to announce itself",
        Duration::from_secs(5),
        || announced(d, p, 1).is_some(),
    )
    .await;
    let indices: Vec<u32> = pool.processes().iter().map(|r| r.index).collect();
    assert_eq!(indices, [0, 1]);
    assert!(!out_file(d, p, 2).exists(), "index 2 was not started");

    // Asking for the current count changes nothing.
    let before = indices_and_pids(&pool);
    assert_eq!(pool.scale(2).await, Ok(2));
    assert_eq!(indices_and_pids(&pool), before);

    pool.shutdown().await.expect("stopped");
    assert!(pids_of(p, None).is_empty(), "every process is gone");
}

#[tokio::test]
async fn a_process_that_handles_sigterm_stops_within_the_grace_period() {
    let policy = policy_name("graceful");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let grace = Duration::from_secs(2);
    let config = shell_config(
        dir.path(),
        POLITE,
        serde_json::json!({"grace_period": "2s"}),
    );
    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(pool.scale(1).await, Ok(1));
    let (d, p) = (dir.path(), policy.as_str());
    eventually(
        "the replica to install its trap",
        Duration::from_secs(5),
        || announced(d, p, 0).is_some(),
    )
    .await;
    let pid = announced(d, p, 0).expect("announced").2;

    let began = Instant::now();
    assert_eq!(pool.scale(0).await, Ok(0));
    let took = began.elapsed();
    assert!(
        took < grace,
        "a polite process stops at once, took {took:?}"
    );
    assert!(!running(pid));
    assert_eq!(
        std::fs::read_to_string(out_file(d, p, 0))
            .expect("written")
            .trim(),
        "stopped",
        "it ran its SIGTERM handler"
    );
    assert_eq!(pool.current().await, Ok(0));
}

#[tokio::test]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let policy = policy_name("stubborn");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let grace = Duration::from_millis(300);
    let config = shell_config(
        dir.path(),
        STUBBORN,
        serde_json::json!({"grace_period": "300ms"}),
    );
    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(pool.scale(1).await, Ok(1));
    let (d, p) = (dir.path(), policy.as_str());
    eventually(
        "the replica to install its trap",
        Duration::from_secs(5),
        || announced(d, p, 0).is_some(),
    )
    .await;
    let pid = announced(d, p, 0).expect("announced").2;

    let began = Instant::now();
    assert_eq!(pool.scale(0).await, Ok(0));
    let took = began.elapsed();
    assert!(
        took >= grace,
        "SIGKILL came before the grace period ended: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "SIGKILL came late: {took:?}");
    assert!(!running(pid), "the process was killed");
    assert!(pids_of(p, None).is_empty(), "and its children with it");
}

#[tokio::test]
async fn a_killed_process_is_restarted_with_its_index() {
    let policy = policy_name("restart");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(dir.path(), POLITE, serde_json::json!({}));
    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(pool.scale(2).await, Ok(2));
    let (d, p) = (dir.path(), policy.as_str());
    eventually("two replicas", Duration::from_secs(5), || {
        (0..2).all(|i| announced(d, p, i).is_some())
    })
    .await;
    let first = announced(d, p, 0).expect("announced").2;
    let victim = announced(d, p, 1).expect("announced").2;

    kill(victim);
    eventually("replica 1 to be restarted", Duration::from_secs(5), || {
        announced(d, p, 1).is_some_and(|(i, _, pid)| i == 1 && pid != victim && running(pid))
    })
    .await;
    let restarted = announced(d, p, 1).expect("announced").2;
    assert_eq!(
        indices_and_pids(&pool),
        [(0, first as u32), (1, restarted as u32)]
    );
    assert_eq!(pool.current().await, Ok(2));

    pool.shutdown().await.expect("stopped");
    assert!(pids_of(p, None).is_empty());
}

#[tokio::test]
async fn with_restart_never_a_failed_process_frees_its_index() {
    let policy = policy_name("never");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(
        dir.path(),
        r#"echo "$BALLAST_REPLICA_INDEX x $$" > "$0"; exit 3"#,
        serde_json::json!({"restart": "never"}),
    );
    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");
    let (d, p) = (dir.path(), policy.as_str());
    assert_eq!(pool.scale(1).await, Ok(1));
    eventually(
        "the process to run and exit",
        Duration::from_secs(5),
        || announced(d, p, 0).is_some_and(|(_, _, pid)| !running(pid)),
    )
    .await;
    let gone = announced(d, p, 0).expect("announced").2;
    // Longer than the first restart backoff: nothing comes back.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(pool.current().await, Ok(0));
    assert_eq!(announced(d, p, 0).expect("announced").2, gone, "no restart");

    // The freed index is filled by the next scale.
    std::fs::remove_file(out_file(d, p, 0)).expect("removed");
    assert_eq!(pool.scale(1).await, Ok(1));
    eventually("a new process at index 0", Duration::from_secs(5), || {
        announced(d, p, 0).is_some_and(|(i, _, pid)| i == 0 && pid != gone)
    })
    .await;
}

#[tokio::test]
async fn a_new_pool_adopts_the_running_processes_and_stops_them_on_scale_down() {
    let policy = policy_name("adopt");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(dir.path(), POLITE, serde_json::json!({}));
    let (d, p) = (dir.path(), policy.as_str());

    let before = ProcessPool::start(&policy, config.clone(), d, Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(before.scale(2).await, Ok(2));
    eventually("two replicas", Duration::from_secs(5), || {
        (0..2).all(|i| announced(d, p, i).is_some())
    })
    .await;
    let pids = indices_and_pids(&before);
    // Ballast goes away; its processes do not.
    drop(before);
    tokio::task::yield_now().await;
    assert!(pids.iter().all(|(_, pid)| running(*pid as i32)));

    let after = ProcessPool::start(&policy, config, d, Recovery::Adopt)
        .await
        .expect("started again");
    assert_eq!(after.current().await, Ok(2));
    assert_eq!(indices_and_pids(&after), pids);
    assert!(after.processes().iter().all(|r| r.adopted));

    // An adopted process that dies is restarted like any other, keeping its index.
    let victim = pids[1].1 as i32;
    kill(victim);
    eventually(
        "adopted replica 1 to be restarted",
        Duration::from_secs(5),
        || announced(d, p, 1).is_some_and(|(_, _, pid)| pid != victim && running(pid)),
    )
    .await;
    assert_eq!(after.current().await, Ok(2));

    // Stopping an adopted process is the same SIGTERM, grace period, SIGKILL.
    assert_eq!(after.scale(0).await, Ok(0));
    assert!(!running(pids[0].1 as i32));
    assert_eq!(
        std::fs::read_to_string(out_file(d, p, 0))
            .expect("written")
            .trim(),
        "stopped",
        "the adopted process got SIGTERM"
    );
    assert!(pids_of(p, None).is_empty());
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(after.records_path()).expect("records"))
            .expect("json");
    assert_eq!(records["processes"], serde_json::json!([]));
}

#[tokio::test]
async fn cleanup_stops_what_an_earlier_pool_left_running() {
    let policy = policy_name("cleanup");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(dir.path(), POLITE, serde_json::json!({}));
    let (d, p) = (dir.path(), policy.as_str());

    let before = ProcessPool::start(&policy, config.clone(), d, Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(before.scale(2).await, Ok(2));
    let pids = indices_and_pids(&before);
    drop(before);

    let after = ProcessPool::start(&policy, config, d, Recovery::Cleanup)
        .await
        .expect("started again");
    assert_eq!(after.current().await, Ok(0));
    assert!(pids.iter().all(|(_, pid)| !running(*pid as i32)));
    assert!(pids_of(p, None).is_empty());
}

#[tokio::test]
async fn records_of_gone_processes_are_dropped_and_other_commands_left_alone() {
    let policy = policy_name("records");
    let _sweeper = Sweeper {
        policy: policy.clone(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shell_config(dir.path(), POLITE, serde_json::json!({}));

    // A process that has exited, and one running another command than the pool's.
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("true runs");
    let gone_pid = gone.id() as i32;
    let gone_start = start_time(gone_pid);
    gone.wait().expect("true exits");
    let mut other = std::process::Command::new("sleep")
        .arg("1000")
        .env("BALLAST_POLICY", &policy)
        .spawn()
        .expect("sleep runs");
    let other_pid = other.id() as i32;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let records = serde_json::json!({
        "version": 1,
        "policy": policy,
        "boot_id": boot_id.trim(),
        "processes": [
            {"index": 0, "pid": gone_pid, "start_time": gone_start,
             "command": config.argv(&policy, 0)},
            {"index": 1, "pid": other_pid, "start_time": start_time(other_pid),
             "command": ["sleep", "1000"]},
        ],
    });
    let path = dir.path().join(format!("process-{policy}.json"));
    std::fs::write(&path, records.to_string()).expect("written");

    let pool = ProcessPool::start(&policy, config, dir.path(), Recovery::Adopt)
        .await
        .expect("started");
    assert_eq!(pool.records_path(), path);
    assert_eq!(pool.current().await, Ok(0));
    assert!(pool.processes().is_empty());
    assert!(
        running(other_pid),
        "a process of another command is left alone"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("records")).expect("json");
    assert_eq!(
        kept["processes"],
        serde_json::json!([]),
        "both records dropped"
    );

    kill(other_pid);
    other.wait().expect("sleep is reaped");
}

#[tokio::test]
async fn a_bad_target_is_rejected_before_anything_starts() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let block = serde_json::json!({"type": "process", "command": "ballast-no-such-program"});
    let problems = ballast_process::check(block.as_object().expect("an object"));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "target.command");
    let config: ProcessConfig =
        ballast_executor::parse_target(block.as_object().expect("an object")).expect("parsed");
    let e = ProcessPool::start("bad", config, dir.path(), Recovery::Adopt)
        .await
        .expect_err("not started");
    let e = ballast_executor::ExecutorError::from(e);
    assert!(!e.is_transient());
    assert!(e.message().contains("target.command"), "{e}");
}

/// The conformance world: a pool per `start`, running a script file (so that a permanent
/// failure can be injected for real by taking away its execute bit), observed through
/// `/proc` behind the pool's back.
struct World {
    dir: tempfile::TempDir,
    started: u32,
    current: Option<(String, PathBuf)>,
    sweepers: Vec<Sweeper>,
    /// Every pid of the current pool seen so far, and whether it has since gone.
    seen: Mutex<HashMap<i32, bool>>,
}

impl World {
    fn scan(&self) -> Vec<i32> {
        let (policy, script) = self.current.as_ref().expect("started");
        let all = pids_of(policy, Some(script.to_str().expect("utf-8")));
        // A replica's shell forks for each `sleep`: until the child execs, it looks like the
        // script too. Count only the replicas themselves, not their children.
        let parent = |pid: i32| -> Option<i32> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            after.split_whitespace().nth(1)?.parse().ok()
        };
        let now: Vec<i32> = all
            .iter()
            .copied()
            .filter(|pid| parent(*pid).is_none_or(|p| !all.contains(&p)))
            .collect();
        let mut seen = self.seen.lock().expect("not poisoned");
        for pid in &now {
            seen.entry(*pid).or_insert(false);
        }
        for (pid, gone) in seen.iter_mut() {
            if !now.contains(pid) {
                *gone = true;
            }
        }
        now
    }
}

#[async_trait]
impl Harness for World {
    async fn start(&mut self, initial: u32) -> Arc<dyn Executor> {
        // The previous check's pool is gone; so are its processes.
        self.sweepers.clear();
        self.started += 1;
        let policy = policy_name(&format!("conformance-{}", self.started));
        self.sweepers.push(Sweeper {
            policy: policy.clone(),
        });
        let script = self.dir.path().join(format!("{policy}.sh"));
        std::fs::write(
            &script,
            "#!/bin/sh\nexec 2>/dev/null\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n",
        )
        .expect("written");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("made executable");
        let block = serde_json::json!({
            "type": "process",
            "command": script.to_str().expect("utf-8"),
            "grace_period": "2s",
        });
        let config = ProcessConfig::from_target(block.as_object().expect("an object"))
            .expect("a valid block");
        let pool = ProcessPool::start(&policy, config, self.dir.path(), Recovery::Adopt)
            .await
            .expect("started");
        assert_eq!(pool.scale(initial).await, Ok(initial));
        self.current = Some((policy, script));
        self.seen.lock().expect("not poisoned").clear();
        self.scan();
        Arc::new(pool)
    }

    async fn observed(&self) -> u32 {
        self.scan().len() as u32
    }

    async fn changes(&self) -> Option<u64> {
        self.scan();
        let seen = self.seen.lock().expect("not poisoned");
        let gone = seen.values().filter(|g| **g).count();
        Some((seen.len() + gone) as u64)
    }

    async fn fail_next(&self, failure: Failure) -> bool {
        match failure {
            // Nothing on a local machine fails a start for a moment and then not.
            Failure::Transient => false,
            Failure::Permanent => {
                let (_, script) = self.current.as_ref().expect("started");
                std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o644))
                    .expect("execute bit taken away");
                true
            }
        }
    }
}

#[tokio::test]
async fn the_process_pool_conforms() {
    let mut world = World {
        dir: tempfile::tempdir().expect("a temporary directory"),
        started: 0,
        current: None,
        sweepers: Vec::new(),
        seen: Mutex::new(HashMap::new()),
    };
    conformance::run(&mut world).await;
}
