//! Loopback servers that stand in for the providers in tests (feature `testing`). Each
//! follows its provider's published API document, named in its module; all share what is
//! here: a per-server health endpoint (each server gets its own loopback address, and a
//! listener on it answers `GET /healthz`), a journal of what happened in order, a drain
//! webhook, and injected faults.

pub mod hetzner;
pub mod ovh;
pub mod scaleway;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A failure a mock can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A 503 (worth retrying).
    Transient,
    /// A 403 or 422 (not worth retrying).
    Permanent,
}

/// Faults waiting for their request, shared by the three mocks.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults {
    /// Creates to let through before failing one, and how.
    pub create: Option<(usize, Fault)>,
    /// The next created server's action (or operation) ends in error.
    pub action_error_next: bool,
    /// The next created server never answers its health check.
    pub never_ready_next: bool,
    /// The next request is answered 429, asking to wait this long.
    pub rate_limit_once: Option<std::time::Duration>,
    /// The drain webhook answers 500.
    pub drain_fails: bool,
}

impl Faults {
    /// Whether the create now arriving fails, and how (counts it down).
    pub fn take_create(&mut self) -> Option<Fault> {
        match self.create {
            Some((0, fault)) => {
                self.create = None;
                Some(fault)
            }
            Some((n, fault)) => {
                self.create = Some((n - 1, fault));
                None
            }
            None => None,
        }
    }
}

/// What happened, in order: `create <name>`, `delete <name>`, `drain <name>`, `429`, ...
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    /// Adds an entry.
    pub fn push(&self, entry: impl Into<String>) {
        self.0
            .lock()
            .expect("no panic under the lock")
            .push(entry.into());
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().expect("no panic under the lock").clone()
    }

    /// The entries starting with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|e| e.starts_with(prefix))
            .collect()
    }
}

static NEXT_BLOCK: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Default)]
struct HealthState {
    unready: HashSet<String>,
}

/// Per-server health endpoints: each server gets an address `127.b.c.n` of its own, with
/// a listener on the group's health port answering `GET /healthz` with 200 (or 503 while
/// the server is marked unready).
#[derive(Debug)]
pub(crate) struct Health {
    block: (u8, u8),
    port: u16,
    next: u8,
    state: Arc<Mutex<HealthState>>,
    listeners: HashMap<String, JoinHandle<()>>,
    _probe: JoinHandle<()>,
}

impl Health {
    /// Reserves an address block and a port.
    pub async fn new() -> Health {
        // Addresses unique within this process; the process id spreads parallel test
        // processes over different blocks.
        let k = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) + std::process::id() * 7;
        let block = (10 + (k / 250 % 200) as u8, (k % 250) as u8 + 1);
        let probe_ip = IpAddr::V4(Ipv4Addr::new(127, block.0, block.1, 1));
        let listener = TcpListener::bind(SocketAddr::new(probe_ip, 0))
            .await
            .expect("bind a loopback health port");
        let port = listener.local_addr().expect("local address").port();
        let probe = tokio::spawn(async move {
            let app = axum::Router::new();
            let _ = axum::serve(listener, app).await;
        });
        Health {
            block,
            port,
            next: 2,
            state: Arc::new(Mutex::new(HealthState::default())),
            listeners: HashMap::new(),
            _probe: probe,
        }
    }

    /// The port every server's health endpoint listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Gives `name` an address (not yet listening).
    pub fn address(&mut self) -> IpAddr {
        let ip = IpAddr::V4(Ipv4Addr::new(127, self.block.0, self.block.1, self.next));
        self.next = self
            .next
            .checked_add(1)
            .expect("at most 250 servers per mock");
        ip
    }

    /// Marks `name` as never answering 2xx.
    pub fn set_unready(&self, name: &str, unready: bool) {
        let mut s = self.state.lock().expect("no panic under the lock");
        if unready {
            s.unready.insert(name.to_string());
        } else {
            s.unready.remove(name);
        }
    }

    /// Starts `name`'s health endpoint on `ip`.
    pub fn open(&mut self, name: &str, ip: IpAddr) {
        if self.listeners.contains_key(name) {
            return;
        }
        let addr = SocketAddr::new(ip, self.port);
        let std_listener = match std::net::TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "mock health endpoint could not bind");
                return;
            }
        };
        std_listener.set_nonblocking(true).expect("non-blocking");
        let listener = TcpListener::from_std(std_listener).expect("tokio listener");
        let state = (self.state.clone(), name.to_string());
        let app = axum::Router::new()
            .route("/healthz", get(healthz))
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        self.listeners.insert(name.to_string(), task);
    }

    /// Stops `name`'s health endpoint.
    pub fn close(&mut self, name: &str) {
        if let Some(task) = self.listeners.remove(name) {
            task.abort();
        }
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        for task in self.listeners.values() {
            task.abort();
        }
        self._probe.abort();
    }
}

async fn healthz(State((state, name)): State<(Arc<Mutex<HealthState>>, String)>) -> StatusCode {
    if state
        .lock()
        .expect("no panic under the lock")
        .unready
        .contains(&name)
    {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Serves `app` on a fresh loopback port and returns its address.
pub(crate) async fn serve(app: axum::Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// The query string of a URI as pairs (repeated keys kept).
pub(crate) fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first value of `key`.
pub(crate) fn query_get(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}
