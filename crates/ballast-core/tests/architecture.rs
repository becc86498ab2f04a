//! The architecture invariant of ARCHITECTURE.md: the core does no IO, reads no clock and
//! runs no async code.

use std::path::Path;

const FORBIDDEN_IN_SOURCE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::env",
    "SystemTime",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "async fn",
    ".await",
    "println!",
    "eprintln!",
];

const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio", "reqwest", "hyper", "axum", "sqlx", "redis", "kube", "tonic", "rand",
];

#[test]
fn the_core_does_no_io_reads_no_clock_and_has_no_async() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN_IN_SOURCE {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {word}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the core must stay pure:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_core_depends_on_no_io_or_async_crate() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("");
    for dep in FORBIDDEN_DEPENDENCIES {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(dep)),
            "ballast-core must not depend on `{dep}`"
        );
    }
}
