//! The `policy` and `history` commands against a real `ballast serve`.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running server on its own port and database, killed when dropped.
struct Server {
    child: Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_env(cmd: &mut Command, dir: &Path, port: u16) {
    cmd.env("BALLAST_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "BALLAST_DATABASE_URL",
            format!("sqlite://{}/b.db", dir.display()),
        )
        .env("BALLAST_INTERVAL", "1h")
        .env_remove("BALLAST_SERVER")
        .env_remove("BALLAST_TOKEN")
        .current_dir(repo());
}

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    use std::io::Write;
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut create = Command::new(env!("CARGO_BIN_EXE_ballast"));
    create.args(["token", "create", "--name", "admin", "--scope", "admin"]);
    server_env(&mut create, dir.path(), port);
    let out = create.output().expect("the binary runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout)
        .split_whitespace()
        .last()
        .expect("a token is printed")
        .to_owned();

    let mut serve = Command::new(env!("CARGO_BIN_EXE_ballast"));
    serve
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    server_env(&mut serve, dir.path(), port);
    let mut server = Server {
        child: serve.spawn().expect("the server starts"),
        url: format!("http://127.0.0.1:{port}"),
        token,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(port) {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "the server never became healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

impl Server {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ballast"))
            .args(args)
            .env("BALLAST_SERVER", &self.url)
            .env("BALLAST_TOKEN", &self.token)
            .current_dir(repo())
            .output()
            .expect("the binary runs")
    }

    /// Runs a command that must succeed, and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

const NAMES: [&str; 5] = [
    "cdc-worker-autoscaling",
    "invoice-workers",
    "predictive",
    "web",
    "web-rules",
];

fn sorted_lines(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn apply_creates_then_keeps_then_updates_then_prunes_and_a_dry_run_changes_nothing() {
    let server = start();
    let first = server.ok(&["policy", "apply", "-f", "examples/policies"]);
    assert_eq!(
        sorted_lines(&first),
        NAMES.map(|n| format!("created {n}")),
        "{first}"
    );

    let again = server.ok(&["policy", "apply", "-f", "examples/policies"]);
    assert_eq!(
        sorted_lines(&again),
        NAMES.map(|n| format!("unchanged {n}")),
        "{again}"
    );

    // A copy of the folder with one policy changed.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("examples/policies")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let web = dir.path().join("web.yaml");
    let changed = std::fs::read_to_string(&web)
        .unwrap()
        .replace("max_replicas: 10000", "max_replicas: 50");
    std::fs::write(&web, changed).unwrap();
    let folder = dir.path().to_str().unwrap();

    let planned = server.ok(&["policy", "apply", "-f", folder, "--dry-run"]);
    assert!(
        planned.contains("update web (changed: max_replicas)"),
        "{planned}"
    );
    let still = server.ok(&["policy", "get", "web"]);
    assert!(still.contains("max_replicas: 10000"), "{still}");

    let applied = server.ok(&["policy", "apply", "-f", folder]);
    assert!(
        applied.contains("updated web (changed: max_replicas)"),
        "{applied}"
    );
    assert!(applied.contains("unchanged web-rules"), "{applied}");
    let now = server.ok(&["policy", "get", "web", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(json["max_replicas"], 50);

    // Only the web policy: a dry run plans the deletions, --prune carries them out.
    let subset = repo().join("examples/policies/web.yaml");
    let subset = subset.to_str().unwrap();
    let planned = server.ok(&["policy", "apply", "-f", subset, "--prune", "--dry-run"]);
    for n in [
        "cdc-worker-autoscaling",
        "invoice-workers",
        "predictive",
        "web-rules",
    ] {
        assert!(planned.contains(&format!("delete {n}")), "{planned}");
    }
    assert_eq!(
        server.ok(&["policy", "list"]).lines().count(),
        1 + NAMES.len()
    );

    let pruned = server.ok(&["policy", "apply", "-f", subset, "--prune"]);
    assert!(
        pruned.contains("updated web (changed: max_replicas)"),
        "{pruned}"
    );
    for n in [
        "cdc-worker-autoscaling",
        "invoice-workers",
        "predictive",
        "web-rules",
    ] {
        assert!(pruned.contains(&format!("deleted {n}")), "{pruned}");
    }
    let list = server.ok(&["policy", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.lines().nth(1).unwrap().starts_with("web "), "{list}");
}

#[test]
fn list_evaluate_and_history_show_the_policies_the_decision_and_its_record() {
    let server = start();
    server.ok(&["policy", "apply", "-f", "examples/policies"]);

    let list = server.ok(&["policy", "list"]);
    assert!(list.starts_with("NAME"), "{list}");
    for n in NAMES {
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{n} "))),
            "{list}"
        );
    }
    assert!(
        list.lines()
            .any(|l| l.starts_with("cdc-worker-autoscaling ") && l.ends_with("1..10")),
        "{list}"
    );

    let decision = server.ok(&["policy", "evaluate", "cdc-worker-autoscaling"]);
    assert!(
        decision.starts_with("cdc-worker-autoscaling: "),
        "{decision}"
    );
    assert!(decision.contains(" → "), "{decision}");
    assert!(
        decision.contains("proposal ") || decision.contains("constraint "),
        "{decision}"
    );
    assert!(decision.contains("recorded as history entry"), "{decision}");

    let history = server.ok(&["history", "--policy", "cdc-worker-autoscaling"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines[0].contains("cdc-worker-autoscaling"), "{history}");
    assert!(lines[0].contains("dry_run"), "{history}");
    assert!(lines[1].contains("policy_created"), "{history}");

    let limited = server.ok(&["history", "--limit", "1"]);
    assert_eq!(limited.lines().count(), 1, "{limited}");
}

#[test]
fn apply_with_an_invalid_file_prints_every_problem_and_sends_nothing() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "name: bad\nmin_replicas: 3\nmax_replicas: 2\n").unwrap();
    let out = server.run(&["policy", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("min_replicas: min_replicas (3) is greater than max_replicas (2)"),
        "{}",
        text(&out.stdout)
    );
    let list = server.ok(&["policy", "list"]);
    assert!(list.contains("(no policies)"), "{list}");
}

#[test]
fn a_server_that_is_not_running_is_named_with_a_hint_to_start_it() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["policy", "list", "--server", &url])
        .env_remove("BALLAST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&url) && stderr.contains("ballast serve"),
        "{stderr}"
    );
}

#[test]
fn a_request_without_a_token_shows_the_servers_message() {
    let server = start();
    let out = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["policy", "list", "--server", &server.url])
        .env_remove("BALLAST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("needs a token"), "{stderr}");
}

#[test]
fn forecast_shows_a_predictive_policys_forecaster_and_refuses_other_policies() {
    let server = start();
    server.ok(&["policy", "apply", "-f", "examples/policies"]);

    let out = server.run(&["policy", "forecast", "web"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("has no `predictive` block"),
        "{}",
        text(&out.stderr)
    );

    // The forecaster starts at the policy's first evaluation (within the engine's 5-second
    // wake-up); until then the server says so. This server has no Prometheus, so the
    // history cannot be read back and there is nothing to train on yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let out = server.run(&["policy", "forecast", "predictive"]);
        if out.status.success() {
            break text(&out.stdout);
        }
        assert!(
            text(&out.stderr).contains("not been evaluated"),
            "{}",
            text(&out.stderr)
        );
        assert!(Instant::now() < deadline, "never evaluated");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        shown.starts_with("predictive (scale): collecting history: 0 of the 60 samples"),
        "{shown}"
    );
    assert!(
        shown.contains("refill error: no Prometheus is configured"),
        "{shown}"
    );
    assert!(shown.contains("last decision at "), "{shown}");
    assert!(
        shown.contains("standing aside (predictive stands aside: no forecast"),
        "{shown}"
    );

    let json = server.ok(&["policy", "forecast", "predictive", "--json"]);
    let body: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["status"], "collecting", "{body}");
    assert!(body["forecast"].is_null(), "{body}");
}
