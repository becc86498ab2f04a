//! Test support (feature `test-support`): a real Prometheus per test, and a loopback
//! exporter for it to scrape.
//!
//! [`TestPrometheus`] runs the `prometheus` binary of Debian's `prometheus` package (and
//! its `promtool` for backfilling) with its own temporary storage on a free loopback port,
//! waits until `/-/ready` answers, and kills it when dropped. Run `scripts/services.sh`
//! once to install the package; without it, starting one panics with that hint.
//!
//! Two ways to give it data:
//!
//! - [`TestPrometheus::start_with_backfill`]: an OpenMetrics text (samples with explicit
//!   timestamps, ending in `# EOF`) written into the storage as blocks by
//!   `promtool tsdb create-blocks-from openmetrics` before Prometheus starts, and query
//!   at those times. Since Prometheus starts after the backfill with an empty head, any
//!   timestamps are served (promtool cuts blocks at 2-hour boundaries; samples seconds
//!   old, or in the future, work too); hours in the past keep them out of the 5-minute
//!   lookback of queries at "now". Samples of one metric family must be contiguous, each
//!   with a timestamp in seconds.
//! - [`TestPrometheus::start_scraping`]: Prometheus scrapes a target every second, e.g. a
//!   [`TestExporter`]; poll until the value shows up.
//!
//! ```no_run
//! # async fn example() {
//! use ballast_sources::testing::{TestExporter, TestPrometheus};
//! let exporter = TestExporter::start("queue_depth 42\n").await;
//! let prometheus = TestPrometheus::start_scraping(exporter.addr()).await;
//! let source = prometheus.source(std::time::Duration::from_secs(2));
//! # }
//! ```

use std::fmt;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::prometheus::PrometheusSource;

/// How often, and how many times, readiness is polled: up to 30 s in all, which a
/// Prometheus on an idle machine needs about a second of.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);
const READY_POLL_TRIES: u32 = 600;
/// Starts on another port after losing a race for the free port we picked.
const START_ATTEMPTS: u32 = 3;

const INSTALL_HINT: &str = "run scripts/services.sh, which installs Debian's `prometheus` \
                            package (prometheus and promtool)";

/// A Prometheus server of its own for one test, killed when dropped.
pub struct TestPrometheus {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    dir: TempDir,
}

impl fmt::Debug for TestPrometheus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPrometheus")
            .field("url", &self.url)
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestPrometheus {
    /// Starts a Prometheus whose storage holds the samples of `openmetrics` (OpenMetrics
    /// text with a timestamp on every sample and a final `# EOF` line), backfilled with
    /// `promtool tsdb create-blocks-from openmetrics`. It scrapes nothing.
    ///
    /// Panics, with promtool's own message, when the backfill is refused.
    pub async fn start_with_backfill(openmetrics: &str) -> TestPrometheus {
        TestPrometheus::start(&[], Some(openmetrics)).await
    }

    /// Starts a Prometheus that scrapes `target` (`http://<target>/metrics`) every second,
    /// as job `test`.
    pub async fn start_scraping(target: SocketAddr) -> TestPrometheus {
        TestPrometheus::start(&[target], None).await
    }

    /// Starts a Prometheus that scrapes `targets` every second (as job `test`), after
    /// backfilling `openmetrics` if given. Waits until `/-/ready` answers.
    ///
    /// Panics when `prometheus` or `promtool` is not installed (with a hint to run
    /// `scripts/services.sh`), or when Prometheus does not become ready (with its log).
    pub async fn start(targets: &[SocketAddr], openmetrics: Option<&str>) -> TestPrometheus {
        let prometheus = binary("prometheus");
        let mut dir = tempfile::Builder::new()
            .prefix("ballast-prometheus-")
            .tempdir()
            .expect("cannot create a temporary directory for Prometheus");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("cannot create Prometheus' storage directory");
        if let Some(openmetrics) = openmetrics {
            backfill(dir.path(), &data, openmetrics).await;
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(targets)).expect("cannot write prometheus.yml");

        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log_path = dir.path().join(format!("prometheus-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("cannot create Prometheus' log");
            let child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", prometheus.display()));
            let mut started = TestPrometheus {
                url: format!("http://127.0.0.1:{port}"),
                child,
                dir,
            };
            match started.wait_until_ready().await {
                Ok(()) => return started,
                Err(reason) => {
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !last_log.contains("address already in use") {
                        panic!(
                            "Prometheus did not become ready at {}: {reason}\n--- its log:\n{last_log}",
                            started.url
                        );
                    }
                    // Lost the port to someone else between picking and binding: retry.
                    dir = started.into_dir();
                }
            }
        }
        panic!(
            "Prometheus found no free port in {START_ATTEMPTS} attempts\n--- its log:\n{last_log}"
        );
    }

    /// A source for this Prometheus, with the given request timeout.
    pub fn source(&self, timeout: Duration) -> PrometheusSource {
        PrometheusSource::new(&self.url, timeout).expect("a loopback URL is valid")
    }

    /// Prometheus' log (its standard error) so far, for assertion messages.
    pub fn log(&self) -> String {
        let mut log = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.to_string_lossy().ends_with(".log") {
                    log.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                }
            }
        }
        log
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        let ready = format!("{}/-/ready", self.url);
        let mut last = String::from("no answer yet");
        for _ in 0..READY_POLL_TRIES {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("it exited ({status})"));
            }
            match http.get(&ready).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        Err(format!(
            "not ready after {READY_POLL_TRIES} tries; last answer: {last}"
        ))
    }

    fn stop(&mut self) {
        // SIGKILL: the storage is thrown away, nothing needs a clean shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn into_dir(mut self) -> TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("cannot create a temporary directory");
        let dir = std::mem::replace(&mut self.dir, placeholder);
        drop(self);
        dir
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The path of an installed binary, or a panic with the install hint.
fn binary(name: &str) -> PathBuf {
    match Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => PathBuf::from(name),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{name}` is not installed (not found on PATH): {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run `{name} --version`: {e}; {INSTALL_HINT}"),
    }
}

async fn backfill(dir: &Path, data: &Path, openmetrics: &str) {
    let promtool = binary("promtool");
    let input = dir.join("backfill.om");
    std::fs::write(&input, openmetrics).expect("cannot write the OpenMetrics file");
    let output = tokio::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(data)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    if !output.status.success() {
        panic!(
            "promtool refused the backfill ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn config_yaml(targets: &[SocketAddr]) -> String {
    let mut yaml = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    if !targets.is_empty() {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        yaml.push_str(&format!(
            "scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ));
    }
    yaml
}

/// A loopback port nobody listens on right now (Prometheus binds it a moment later; the
/// start is retried if someone else took it meanwhile).
fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("cannot bind a loopback port")
        .port()
}

/// A minimal Prometheus exporter on a loopback port: answers every HTTP request with the
/// current body as `text/plain; version=0.0.4` (the Prometheus text format). Stops when
/// dropped.
pub struct TestExporter {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    scrapes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl fmt::Debug for TestExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestExporter")
            .field("addr", &self.addr)
            .field("scrapes", &self.scrapes())
            .finish_non_exhaustive()
    }
}

impl TestExporter {
    /// Starts serving `body` (lines such as `queue_depth{queue="a"} 42`) on a free loopback
    /// port. Needs a tokio runtime.
    pub async fn start(body: &str) -> TestExporter {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot bind a loopback port for the exporter");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let body = Arc::new(Mutex::new(body.to_owned()));
        let scrapes = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(serve(listener, Arc::clone(&body), Arc::clone(&scrapes)));
        TestExporter {
            addr,
            body,
            scrapes,
            task,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` from the next request on.
    pub fn set(&self, body: &str) {
        *self.body.lock().expect("the exporter's body lock") = body.to_owned();
    }

    /// How many requests it has answered.
    pub fn scrapes(&self) -> usize {
        self.scrapes.load(Ordering::SeqCst)
    }
}

impl Drop for TestExporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, body: Arc<Mutex<String>>, scrapes: Arc<AtomicUsize>) {
    while let Ok((stream, _)) = listener.accept().await {
        let body = Arc::clone(&body);
        let scrapes = Arc::clone(&scrapes);
        tokio::spawn(async move {
            if answer(stream, &body).await.is_ok() {
                scrapes.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

/// Reads one request head and answers it; one request per connection.
async fn answer(mut stream: TcpStream, body: &Mutex<String>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err(ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let body = body.lock().expect("the exporter's body lock").clone();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
