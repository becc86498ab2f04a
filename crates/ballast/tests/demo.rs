//! `ballast demo` end to end: the replayed load makes the engine scale the worker pool up
//! and down, the reasons are in history, and the workers are gone after the demo stops.

use std::path::PathBuf;
use std::process::Command;

use ballast_store::{HistoryFilter, HistoryKind, Store};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ballast"))
}

fn workers_alive() -> usize {
    let out = Command::new("pgrep")
        .args(["-f", &format!("{} demo-worker", bin().display())])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_scales_up_and_down_on_the_replayed_load_and_stops_its_workers() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            Command::new(bin())
                .args(["demo", "--listen", "127.0.0.1:0", "--speed", "3600"])
                .args(["--duration", "50s", "--data-dir"])
                .arg(&dir)
                .output()
                .expect("the demo runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("/api/v1/scaling/history"), "{stdout}");
    assert_eq!(workers_alive(), 0, "the demo's workers are stopped");

    let store = Store::connect(&format!("sqlite://{}/ballast.db", dir.path().display()))
        .await
        .unwrap();
    let decisions = store
        .history(&HistoryFilter {
            kind: Some(HistoryKind::Decision),
            limit: 500,
            ..HistoryFilter::default()
        })
        .await
        .unwrap()
        .items;
    for action in ["scale_up", "scale_down"] {
        let e = decisions
            .iter()
            .find(|e| e.action.as_deref() == Some(action) && e.to_replicas.unwrap_or(0) > 0)
            .unwrap_or_else(|| panic!("no {action} in history:\n{stdout}"));
        // The load is why: the target-tracking proposal reads the replayed rate (the summary
        // may name a later step, such as the stabilization window that shaped the change).
        let decision = e
            .decision
            .as_ref()
            .expect("a decision entry carries its decision");
        assert!(
            decision
                .proposals
                .iter()
                .any(|p| p.reason.contains("load =") && p.reason.contains("per replica")),
            "{action} says why: {} / {:?}",
            e.reason,
            decision.proposals
        );
        assert!(!e.reason.is_empty());
        assert_eq!(e.outcome, Some(ballast_store::Outcome::Succeeded), "{e:?}");
    }
    assert!(
        stdout.contains("scale_down"),
        "the terminal shows it too:\n{stdout}"
    );
}
