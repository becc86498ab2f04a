//! `ballast serve` as an operator runs it: the binary on a free loopback port, its store on
//! SQLite (a file in a temporary directory) or on the real PostgreSQL at
//! `BALLAST_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`, in a
//! fresh schema of the test's own, dropped afterwards), reading metrics from a real
//! Prometheus (Debian's package, see `ballast_sources::testing`) that scrapes a loopback
//! exporter every second. Nothing is mocked: PostgreSQL or Prometheus missing fails the
//! tests (`scripts/services.sh` provides both).
//!
//! The acceptance test sends the specification's example request, reads it back, runs a dry
//! run on the live metric and finds both in the history; it runs unchanged on each store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ballast_core::MetricObservation;
use ballast_sources::testing::{TestExporter, TestPrometheus};
use chrono::{DurationRound, TimeDelta, Utc};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

/// The request body of the specification's example.
const EXAMPLE: &str = r#"{"name":"cdc-worker-autoscaling","target_type":"cdc-worker","target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,"cooldown_seconds":300,"scale_to_zero":false,"scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],"scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],"schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}"#;

const POLICIES: &str = "/api/v1/scaling/policies";

/// How long any one wait (a server starting, a first scrape) may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

// ---------------------------------------------------------------------------------------
// The acceptance test, on each store

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specification_example_round_trips_and_evaluates_on_sqlite() {
    the_specification_example_round_trips_evaluates_and_shows_in_history(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_specification_example_round_trips_and_evaluates_on_postgres() {
    let schema = TempSchema::create().await;
    let url = schema.url();
    // In a task of its own, so that the schema is dropped even when the test fails (the
    // server is killed first, as the task unwinds); the failure is passed on afterwards.
    let run = tokio::spawn(async move {
        the_specification_example_round_trips_evaluates_and_shows_in_history(Some(url)).await;
    })
    .await;
    schema.drop().await;
    if let Err(failure) = run {
        std::panic::resume_unwind(failure.into_panic());
    }
}

async fn the_specification_example_round_trips_evaluates_and_shows_in_history(
    database_url: Option<String>,
) {
    let exporter =
        TestExporter::start("# TYPE philotes_cdc_lag_seconds gauge\nphilotes_cdc_lag_seconds 75\n")
            .await;
    let prometheus = TestPrometheus::start_scraping(exporter.addr()).await;
    let server = Server::start(&Options {
        database_url: database_url.as_deref(),
        prometheus_url: Some(&prometheus.url),
        log_format: "text",
    })
    .await;
    let actor = format!("token:{}", server.token_name);

    // Create: 201, with where to find it.
    let sent: Value = serde_json::from_str(EXAMPLE).unwrap();
    let created = server.post(POLICIES, Some(&sent)).await;
    assert_eq!(created.status, 201, "{}\n{}", created.text, server.log());
    let created_body = created.json();
    let id = created_body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {created_body}"))
        .to_owned();
    assert_eq!(
        created.headers["location"],
        format!("{POLICIES}/{id}").as_str()
    );
    assert_eq!(created.headers["etag"], "\"1\"");
    assert_sent_fields_kept("", &sent, &created_body);

    // Read back by id: every field sent, unchanged, and the server's own fields.
    let read = server.get(&format!("{POLICIES}/{id}")).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let body = read.json();
    assert_sent_fields_kept("", &sent, &body);
    assert_eq!(body["version"], 1);
    assert_eq!(body["created_by"], actor.as_str());
    assert_eq!(body["updated_by"], actor.as_str());
    assert_eq!(
        body, created_body,
        "the policy read back is the one created"
    );

    // A dry run on the live metric, once Prometheus has it.
    wait_until_prometheus_has(&prometheus, "philotes_cdc_lag_seconds", 75.0).await;
    let evaluated = server
        .post(&format!("{POLICIES}/{id}/evaluate"), None)
        .await;
    assert_eq!(
        evaluated.status,
        200,
        "{}\n{}",
        evaluated.text,
        server.log()
    );
    let evaluation = evaluated.json();
    let decision = &evaluation["decision"];
    assert_eq!(decision["policy"], "cdc-worker-autoscaling", "{decision}");
    assert_eq!(decision["dry_run"], true, "{decision}");
    assert_eq!(decision["data_problems"], json!([]), "{decision}");
    assert!(
        ["scale_up", "scale_down", "hold"].contains(&decision["action"].as_str().unwrap_or("")),
        "{decision}"
    );
    let rules = decision["proposals"]
        .as_array()
        .unwrap_or_else(|| panic!("no proposals in {decision}"))
        .iter()
        .find(|p| p["strategy"] == "rules")
        .unwrap_or_else(|| panic!("no proposal of the rules in {decision}"));
    let reason = rules["reason"].as_str().unwrap();
    assert!(
        reason.contains("philotes_cdc_lag_seconds > 60")
            && reason.contains("philotes_cdc_lag_seconds < 10 does not hold (now 75)"),
        "the rules' reason names the value Prometheus holds: {reason}"
    );
    let history_id = evaluation["history_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no history_id in {evaluation}"));

    // The history of the policy holds the creation and the dry run, both by this token.
    // (The engine may have evaluated the policy meanwhile; its own entries may be there
    // too, and are checked not to pass for the dry run.)
    let history = server
        .get(&format!("/api/v1/scaling/history?policy_id={id}"))
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let history = history.json();
    let entries = history["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries in {history}"));
    for entry in entries {
        assert_eq!(entry["policy_id"], id.as_str(), "{entry}");
        assert_eq!(entry["policy_name"], "cdc-worker-autoscaling", "{entry}");
    }
    let creations: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "policy_created")
        .collect();
    assert_eq!(creations.len(), 1, "one creation in {history}");
    assert_eq!(creations[0]["actor"], actor.as_str(), "{}", creations[0]);
    assert_eq!(creations[0]["dry_run"], false, "{}", creations[0]);

    let dry_runs: Vec<&Value> = entries.iter().filter(|e| e["dry_run"] == true).collect();
    assert_eq!(dry_runs.len(), 1, "one dry run in {history}");
    let dry_run = dry_runs[0];
    assert_eq!(dry_run["id"], history_id, "{dry_run}");
    assert_eq!(dry_run["kind"], "decision", "{dry_run}");
    assert_eq!(dry_run["actor"], actor.as_str(), "{dry_run}");
    assert_eq!(dry_run["outcome"], "dry_run", "{dry_run}");
    assert_eq!(dry_run["action"], decision["action"], "{dry_run}");
    assert_eq!(
        &dry_run["decision"], decision,
        "the decision recorded is the one returned"
    );
    for other in entries
        .iter()
        .filter(|e| e["id"] != history_id && e["kind"] != "policy_created")
    {
        assert_eq!(
            other["actor"], "engine",
            "only the engine adds entries: {other}"
        );
    }
}

/// Every field of `sent` is in `got` with an equal value, recursively (numbers compared as
/// numbers: `60` and `60.0` are one JSON number). Names the first field that differs.
fn assert_sent_fields_kept(path: &str, sent: &Value, got: &Value) {
    match (sent, got) {
        (Value::Object(sent), Value::Object(got)) => {
            for (key, value) in sent {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let Some(back) = got.get(key) else {
                    panic!("`{field}` was sent but is missing from {got:?}");
                };
                assert_sent_fields_kept(&field, value, back);
            }
        }
        (Value::Array(sent), Value::Array(got)) => {
            assert_eq!(sent.len(), got.len(), "`{path}` has another length");
            for (i, (value, back)) in sent.iter().zip(got).enumerate() {
                assert_sent_fields_kept(&format!("{path}[{i}]"), value, back);
            }
        }
        (Value::Number(sent), Value::Number(got)) => assert_eq!(
            sent.as_f64(),
            got.as_f64(),
            "`{path}` was sent as {sent}, read back as {got}"
        ),
        (sent, got) => assert_eq!(sent, got, "`{path}` was sent as {sent}, read back as {got}"),
    }
}

/// Waits until an instant query at the current whole second returns `value`, so that any
/// query Ballast sends from now on (instant, or a range ending at a whole second) sees it.
async fn wait_until_prometheus_has(prometheus: &TestPrometheus, query: &str, value: f64) {
    let source = prometheus.source(Duration::from_secs(2));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let at = Utc::now()
            .duration_trunc(TimeDelta::seconds(1))
            .expect("truncating now to the second");
        let observed = source.instant(query, at).await;
        if let MetricObservation::Samples(samples) = &observed
            && samples.last().is_some_and(|s| s.value == value)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has no {query} = {value} after {PATIENCE:?}: {observed:?}\n--- its log:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Operations: health, readiness, metrics, logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_prometheus_health_and_metrics_need_no_token_and_logs_are_json() {
    let prometheus = TestPrometheus::start(&[], None).await;
    let prometheus_url = prometheus.url.clone();
    let mut server = Server::start(&Options {
        database_url: None,
        prometheus_url: Some(&prometheus_url),
        log_format: "json",
    })
    .await;

    // Without a token: liveness and metrics answer, the API does not.
    let health = server.get_without_token("/healthz").await;
    assert_eq!((health.status, health.text.as_str()), (200, "ok"));
    let metrics = server.get_without_token("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        metrics.headers
    );
    for expected in [
        "# TYPE ballast_evaluations counter",
        "ballast_evaluations_total ",
        "# TYPE ballast_tick_duration_seconds histogram",
    ] {
        assert!(metrics.text.contains(expected), "{}", metrics.text);
    }
    assert!(metrics.text.ends_with("# EOF\n"), "{}", metrics.text);
    let refused = server.get_without_token(POLICIES).await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    // Ready while the store and Prometheus answer.
    let ready = server.get_without_token("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json(), json!({"store": "ok", "prometheus": "ok"}));

    // Not ready once Prometheus is gone, naming it and not the store.
    drop(prometheus);
    let not_ready = server.get_without_token("/readyz").await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.text);
    let why = not_ready.json();
    assert_eq!(why["store"], "ok", "{why}");
    let prometheus_why = why["prometheus"].as_str().unwrap_or("");
    assert!(
        prometheus_why != "ok" && prometheus_why.contains(&prometheus_url),
        "names the Prometheus that does not answer: {why}"
    );

    // A clean stop on SIGTERM; every line it wrote to stderr is one JSON object.
    let lines = server.stop();
    assert!(!lines.is_empty(), "no log lines");
    let mut messages = Vec::new();
    for line in &lines {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(
            record.is_object(),
            "a log line that is not an object: {line}"
        );
        assert!(
            record["timestamp"].is_string() && record["level"].is_string(),
            "a log line without timestamp and level: {line}"
        );
        messages.push(
            record["fields"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    let listen = server.url.trim_start_matches("http://");
    assert!(
        lines.iter().any(|l| {
            let record: Value = serde_json::from_str(l).unwrap();
            record["fields"]["message"] == "ballast serving" && record["fields"]["listen"] == listen
        }),
        "{lines:#?}"
    );
    for expected in [
        "shutting down: finishing the tick in flight",
        "engine stopped",
    ] {
        assert!(messages.iter().any(|m| m == expected), "{lines:#?}");
    }
}

// ---------------------------------------------------------------------------------------
// Harness

/// How a server is started.
struct Options<'a> {
    /// The store; a SQLite file in the server's temporary directory when `None`.
    database_url: Option<&'a str>,
    prometheus_url: Option<&'a str>,
    /// `text` or `json`.
    log_format: &'a str,
}

/// A running `ballast serve` with an admin token, killed when dropped.
struct Server {
    child: Child,
    url: String,
    token: String,
    token_name: String,
    http: reqwest::Client,
    /// Its standard error, line by line.
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// One answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// A `ballast` command with only the `BALLAST_*` variables given, none inherited.
fn ballast(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ballast"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BALLAST_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v))).current_dir(dir);
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Creates an admin token in the store, starts the server and waits until `/healthz`
    /// answers.
    async fn start(options: &Options<'_>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let database_url = options.database_url.map_or_else(
            || format!("sqlite://{}", dir.path().join("ballast.db").display()),
            str::to_owned,
        );
        let mut env = vec![
            ("BALLAST_LISTEN", format!("127.0.0.1:{port}")),
            ("BALLAST_DATABASE_URL", database_url),
            (
                "BALLAST_DATA_DIR",
                dir.path().join("data").display().to_string(),
            ),
            ("BALLAST_LOG_FORMAT", options.log_format.to_owned()),
        ];
        if let Some(url) = options.prometheus_url {
            env.push(("BALLAST_PROMETHEUS_URL", url.to_owned()));
        }

        let token_name = "acceptance".to_owned();
        let mut create = ballast(dir.path(), &env);
        create.args(["token", "create", "--name", &token_name, "--scope", "admin"]);
        let out = tokio::task::spawn_blocking(move || create.output())
            .await
            .unwrap()
            .expect("the binary runs");
        assert!(
            out.status.success(),
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!token.is_empty(), "no token printed");

        let mut serve = ballast(dir.path(), &env);
        serve
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = serve.spawn().expect("the server starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let lines = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token,
            token_name,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stderr,
            reader: Some(reader),
            _dir: dir,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited early ({status}):\n{}", self.log());
            }
            let answer = self
                .http
                .get(format!("{}/healthz", self.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server never became healthy:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its standard error so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("no answer: {e}\n{}", self.log()));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        self.send(request).await
    }

    async fn get_without_token(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    /// Stops the server with SIGTERM, checks that it exits cleanly, and returns every line
    /// it wrote to stderr.
    fn stop(&mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "cannot signal the server");
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        assert!(
            status.success(),
            "exit {status} on SIGTERM:\n{}",
            self.log()
        );
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A PostgreSQL schema of one test's own, dropped by [`TempSchema::drop`].
struct TempSchema {
    name: String,
}

impl TempSchema {
    async fn create() -> TempSchema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("ballast_serve_{}_{nanos}", std::process::id());
        admin_sql(&format!("CREATE SCHEMA {name}")).await;
        TempSchema { name }
    }

    /// The store URL that puts this schema first in the search path.
    fn url(&self) -> String {
        let base = postgres_url();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-c%20search_path%3D{}", self.name)
    }

    async fn drop(self) {
        admin_sql(&format!("DROP SCHEMA {} CASCADE", self.name)).await;
    }
}

fn postgres_url() -> String {
    std::env::var("BALLAST_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

async fn admin_sql(sql: &str) {
    let url = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url}: {e}\n\
             These tests run `ballast serve` against a real PostgreSQL: start it \
             (scripts/services.sh does) or set BALLAST_TEST_POSTGRES_URL."
        )
    });
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}
