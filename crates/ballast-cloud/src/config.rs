//! The `target` block of a cloud node group, its semantic checks and its credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ballast_executor::{TargetProblem, parse_target};
use secrecy::SecretString;
use serde::Deserialize;

use crate::GROUP_LABEL;

/// Which provider a group lives at (the block's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Hetzner Cloud.
    Hetzner,
    /// Scaleway Instances.
    Scaleway,
    /// OVHcloud Public Cloud.
    Ovh,
}

impl ProviderKind {
    /// The name used in `type` and in descriptions.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Hetzner => "hetzner",
            ProviderKind::Scaleway => "scaleway",
            ProviderKind::Ovh => "ovh",
        }
    }

    /// The field naming where servers go, as the provider calls it.
    pub fn place_field(self) -> &'static str {
        match self {
            ProviderKind::Hetzner => "location",
            ProviderKind::Scaleway => "zone",
            ProviderKind::Ovh => "region",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a new server is known to be ready to take load.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessSpec {
    /// GET this URL template (`http://{ip}:8080/healthz`; `{ip}` and `{name}` are filled in)
    /// until it answers 2xx.
    Http(String),
    /// The Kubernetes node of the same name becoming Ready (`{kubernetes: true}`).
    Kubernetes(bool),
}

/// How a server is emptied before it is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainSpec {
    /// POST `{"node": name}` to this URL and expect 2xx.
    Webhook(String),
    /// Cordon the Kubernetes node and evict its pods (`{kubernetes: true}`).
    Kubernetes(bool),
}

/// A duration written as `30s`, `5m`, `250ms` (or a number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\", \"5m\" or \"250ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v)
                    .map(Dur)
                    .map_err(|e| E::custom(format!("{v:?} is not a duration ({e})")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Duration::try_from_secs_f64(v)
                    .map(Dur)
                    .map_err(|_| E::custom(format!("{v} is not a duration in seconds")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// How long each step may take, and how often to look.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// One HTTP request to the provider, a health check or a drain hook (default 30 s).
    pub request: Dur,
    /// From the create request until the server runs (default 10 min).
    pub create: Dur,
    /// From running until ready (default 10 min); a server not ready by then is deleted.
    pub ready: Dur,
    /// Draining one server (default 10 min).
    pub drain: Dur,
    /// From the delete request until the server is gone (default 5 min).
    pub delete: Dur,
    /// Between two polls of an action, a server's state or its readiness (default 2 s).
    pub poll_interval: Dur,
    /// The longest wait a rate limit may ask for before the call gives up (default 60 s).
    pub rate_limit_wait: Dur,
    /// How old the price may get before it is read again (default 1 h).
    pub price_refresh: Dur,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            request: Dur(Duration::from_secs(30)),
            create: Dur(Duration::from_secs(600)),
            ready: Dur(Duration::from_secs(600)),
            drain: Dur(Duration::from_secs(600)),
            delete: Dur(Duration::from_secs(300)),
            poll_interval: Dur(Duration::from_secs(2)),
            rate_limit_wait: Dur(Duration::from_secs(60)),
            price_refresh: Dur(Duration::from_secs(3600)),
        }
    }
}

/// One allowed server type of a group: written as its name (`cx22`) or as
/// `{name: cx22, capacity: 2}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTypeSpec {
    /// Server type, commercial type or flavor name, as the provider spells it.
    pub name: String,
    /// Units of capacity one server of this type brings (a weight of the operator's
    /// choosing: vCPUs, workers, requests per second). Default: the catalogue's CPU count.
    pub capacity: Option<f64>,
}

impl ServerTypeSpec {
    /// A type known by name only (capacity from the catalogue).
    pub fn named(name: impl Into<String>) -> ServerTypeSpec {
        ServerTypeSpec {
            name: name.into(),
            capacity: None,
        }
    }
}

impl<'de> Deserialize<'de> for ServerTypeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ServerTypeSpec, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            name: String,
            #[serde(default)]
            capacity: Option<f64>,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ServerTypeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a server type name or {name, capacity}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ServerTypeSpec, E> {
                Ok(ServerTypeSpec::named(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ServerTypeSpec, A::Error> {
                let full = Full::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ServerTypeSpec {
                    name: full.name,
                    capacity: full.capacity,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A request for spot capacity, as written: `spot: true` (spot servers wherever the
/// provider has them), `spot: {share: 0.5}` (that share of the servers on spot, the rest on
/// demand) or `spot: false` (on demand only, the same as leaving it out).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpotSpec {
    /// `true` or `false`.
    Enabled(bool),
    /// `{share: s}` with `s` between 0 and 1.
    Share(f64),
}

impl SpotSpec {
    /// Whether any spot capacity is asked for.
    pub fn wants_spot(self) -> bool {
        match self {
            SpotSpec::Enabled(on) => on,
            SpotSpec::Share(s) => s > 0.0,
        }
    }
}

impl<'de> Deserialize<'de> for SpotSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SpotSpec, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Mix {
            share: f64,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SpotSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or {share: a number from 0 to 1}")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SpotSpec, E> {
                Ok(SpotSpec::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SpotSpec, A::Error> {
                let mix = Mix::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SpotSpec::Share(mix.share))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A cloud node group's `target` block, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// `hetzner`, `scaleway` or `ovh`.
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    /// The group's name: the value of its label (or tag, or name prefix) and the prefix of
    /// its servers' names.
    pub group: String,
    /// Server type (Hetzner `cx22`), commercial type (Scaleway `DEV1-S`) or flavor name
    /// (OVHcloud `b2-7`). Give this or `server_types`, not both.
    #[serde(default)]
    pub server_type: Option<String>,
    /// Several allowed server types: each scale-up creates the type with the lowest hourly
    /// price per unit of capacity among those the provider can deliver at the group's place,
    /// and falls back to the next when a create finds its type sold out. Each entry is a name
    /// or `{name, capacity}`.
    #[serde(default)]
    pub server_types: Option<Vec<ServerTypeSpec>>,
    /// A spot/on-demand mix (`true`, or `{share: 0.5}`). None of the three providers sells
    /// spot or preemptible servers, so [`check`] rejects any request for spot capacity.
    #[serde(default)]
    pub spot: Option<SpotSpec>,
    /// Image name or id (Hetzner `ubuntu-24.04`, Scaleway image id or label, OVHcloud image id).
    pub image: String,
    /// Hetzner location (`fsn1`).
    #[serde(default)]
    pub location: Option<String>,
    /// Scaleway zone (`fr-par-1`).
    #[serde(default)]
    pub zone: Option<String>,
    /// OVHcloud region (`GRA11`).
    #[serde(default)]
    pub region: Option<String>,
    /// Scaleway project id (else `SCW_DEFAULT_PROJECT_ID`) or OVHcloud project
    /// (`serviceName`, required there).
    #[serde(default)]
    pub project: Option<String>,
    /// SSH keys by name (Hetzner) or the one key name (OVHcloud).
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Extra labels (Hetzner) or `key=value` tags (Scaleway) put on every server.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// cloud-init user data as a template (MiniJinja; `name`, `index`, `group` are set).
    #[serde(default)]
    pub user_data_template: Option<String>,
    /// The same, read from a file.
    #[serde(default)]
    pub user_data_file: Option<PathBuf>,
    /// How a new server is known to be ready (default: running is ready).
    #[serde(default)]
    pub readiness: Option<ReadinessSpec>,
    /// How a server is emptied before deletion (default: not drained).
    #[serde(default)]
    pub drain: Option<DrainSpec>,
    /// A PromQL expression giving a value per node, for choosing scale-down victims
    /// (stored here; the runtime evaluates it).
    #[serde(default)]
    pub node_metric: Option<String>,
    /// A file of `NAME=value` lines holding the credentials (else the environment).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Base URL of the provider's API (default: the provider's public endpoint).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Timeouts and poll intervals.
    #[serde(default)]
    pub timeouts: Timeouts,
}

impl GroupConfig {
    /// Where servers go (location, zone or region), as configured.
    pub fn place(&self) -> Option<&str> {
        match self.kind {
            ProviderKind::Hetzner => self.location.as_deref(),
            ProviderKind::Scaleway => self.zone.as_deref(),
            ProviderKind::Ovh => self.region.as_deref(),
        }
    }

    /// The allowed server types, from `server_type` or `server_types`, in the order written.
    pub fn server_type_specs(&self) -> Vec<ServerTypeSpec> {
        match (&self.server_types, &self.server_type) {
            (Some(list), _) => list.clone(),
            (None, Some(one)) => vec![ServerTypeSpec::named(one.clone())],
            (None, None) => Vec::new(),
        }
    }

    /// The allowed server types' names, in the order written.
    pub fn server_type_names(&self) -> Vec<String> {
        self.server_type_specs()
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    /// The user data template, inline or read from its file.
    pub fn user_data_source(&self) -> Result<Option<String>, TargetProblem> {
        if let Some(t) = &self.user_data_template {
            return Ok(Some(t.clone()));
        }
        match &self.user_data_file {
            Some(path) => std::fs::read_to_string(path).map(Some).map_err(|e| {
                TargetProblem::at(
                    "user_data_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            }),
            None => Ok(None),
        }
    }
}

/// Parses a `target` block (unknown fields rejected, the path of the bad field named).
pub fn parse(
    target: &serde_json::Map<String, serde_json::Value>,
) -> Result<GroupConfig, TargetProblem> {
    parse_target(target)
}

/// Every problem of a `target` block: parse errors, then semantic ones (label rules, user
/// data size and syntax, fields the provider does not know, missing credentials named by
/// their variable), each with its `target.<field>` path. Reads the process environment.
pub fn check(target: &serde_json::Map<String, serde_json::Value>) -> Vec<TargetProblem> {
    check_with_env(target, &|name| std::env::var(name).ok())
}

/// [`check`], with the environment given as a lookup function.
pub fn check_with_env(
    target: &serde_json::Map<String, serde_json::Value>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<TargetProblem> {
    match parse(target) {
        Ok(config) => check_config(&config, env),
        Err(problem) => vec![problem],
    }
}

/// The longest user data a server takes (Hetzner's limit; the others allow at least this).
pub const MAX_USER_DATA: usize = 32 * 1024;

pub(crate) fn check_config(
    c: &GroupConfig,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Vec<TargetProblem> {
    let mut out = Vec::new();
    let mut bad = |field: &str, reason: String| out.push(TargetProblem::at(field, reason));

    // The group name prefixes server names, which must be valid hostnames.
    if c.group.is_empty() || c.group.len() > 40 {
        bad("group", "must be 1 to 40 characters".into());
    } else if !c
        .group
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || c.group.starts_with('-')
        || c.group.ends_with('-')
    {
        bad(
            "group",
            format!(
                "{:?} must be lowercase letters, digits and inner hyphens (it prefixes server names)",
                c.group
            ),
        );
    }
    match (&c.server_type, &c.server_types) {
        (Some(_), Some(_)) => bad(
            "server_types",
            "give server_type (one type) or server_types (several), not both".into(),
        ),
        (None, None) => bad(
            "server_type",
            "required: give server_type, or server_types to choose among several by price".into(),
        ),
        (Some(t), None) => {
            if t.trim().is_empty() {
                bad("server_type", "must not be empty".into());
            }
        }
        (None, Some(list)) => {
            if list.is_empty() {
                bad("server_types", "must list at least one server type".into());
            }
            let mut seen = std::collections::HashSet::new();
            for (i, t) in list.iter().enumerate() {
                if t.name.trim().is_empty() {
                    bad(
                        &format!("server_types[{i}]"),
                        "the name must not be empty".into(),
                    );
                } else if !seen.insert(t.name.as_str()) {
                    bad(
                        &format!("server_types[{i}]"),
                        format!("{} is listed twice", t.name),
                    );
                }
                if let Some(capacity) = t.capacity
                    && !(capacity.is_finite() && capacity > 0.0)
                {
                    bad(
                        &format!("server_types[{i}].capacity"),
                        format!("must be a number above zero, not {capacity}"),
                    );
                }
            }
        }
    }
    match c.spot {
        Some(SpotSpec::Share(s)) if !(0.0..=1.0).contains(&s) => {
            bad("spot.share", format!("must be between 0 and 1, not {s}"))
        }
        Some(spot) if spot.wants_spot() => bad("spot", no_spot(c.kind)),
        _ => {}
    }
    if c.image.trim().is_empty() {
        bad("image", "must not be empty".into());
    }

    // Each provider names its place in its own way; the other two fields are not its own.
    let place = c.kind.place_field();
    for (field, value) in [
        ("location", &c.location),
        ("zone", &c.zone),
        ("region", &c.region),
    ] {
        if field != place && value.is_some() {
            bad(
                field,
                format!("{} calls it `{place}`, not `{field}`", c.kind.name()),
            );
        }
    }
    match c.place() {
        None => bad(place, format!("required for {}", c.kind.name())),
        Some(p) if p.trim().is_empty() => bad(place, "must not be empty".into()),
        Some(_) => {}
    }

    match c.kind {
        ProviderKind::Hetzner => {
            for (key, value) in &c.labels {
                if let Err(reason) = hetzner_label(key, value) {
                    bad(&format!("labels.{key}"), reason);
                }
            }
            if c.project.is_some() {
                bad(
                    "project",
                    "Hetzner projects are chosen by the API token".into(),
                );
            }
        }
        ProviderKind::Scaleway => {
            for (key, value) in &c.labels {
                if key == GROUP_LABEL {
                    bad(
                        &format!("labels.{key}"),
                        "is the group's own tag; use `group`".into(),
                    );
                } else if key.is_empty() || key.contains('=') || key.contains(',') {
                    bad(
                        &format!("labels.{key}"),
                        "a tag key must be non-empty, without `=` or `,`".into(),
                    );
                } else if value.contains(',') {
                    bad(
                        &format!("labels.{key}"),
                        "a tag value must not contain `,`".into(),
                    );
                }
            }
            if !c.ssh_keys.is_empty() {
                bad(
                    "ssh_keys",
                    "Scaleway installs the project's SSH keys itself; remove this field".into(),
                );
            }
        }
        ProviderKind::Ovh => {
            if !c.labels.is_empty() {
                bad(
                    "labels",
                    "OVHcloud instances carry no labels (the group is the name prefix)".into(),
                );
            }
            if c.ssh_keys.len() > 1 {
                bad("ssh_keys", "OVHcloud takes one SSH key per instance".into());
            }
            match &c.project {
                None => bad(
                    "project",
                    "required for ovh (the project's serviceName)".into(),
                ),
                Some(p) if p.trim().is_empty() => bad("project", "must not be empty".into()),
                Some(_) => {}
            }
        }
    }

    if c.user_data_template.is_some() && c.user_data_file.is_some() {
        bad(
            "user_data_file",
            "give user_data_template or user_data_file, not both".into(),
        );
    } else {
        let field = if c.user_data_file.is_some() {
            "user_data_file"
        } else {
            "user_data_template"
        };
        match c.user_data_source() {
            Err(p) => out_push(&mut bad, p),
            Ok(Some(source)) => {
                let sample = format!("{}-a1b2c3", c.group);
                match crate::template::render(&source, &sample, 0, &c.group) {
                    Err(e) => bad(field, e),
                    Ok(text) if text.len() > MAX_USER_DATA => bad(
                        field,
                        format!(
                            "renders to {} bytes; user data is limited to {MAX_USER_DATA} bytes (32 KiB)",
                            text.len()
                        ),
                    ),
                    Ok(_) => {}
                }
            }
            Ok(None) => {}
        }
    }

    match &c.readiness {
        Some(ReadinessSpec::Http(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bad("readiness.http", format!("{url:?} is not an http(s) URL"));
            } else if let Err(e) = crate::lifecycle::fill_url(url, "web-a1b2c3", "127.0.0.1") {
                bad("readiness.http", e);
            }
        }
        Some(ReadinessSpec::Kubernetes(false)) => bad(
            "readiness.kubernetes",
            "must be true (or leave readiness out)".into(),
        ),
        _ => {}
    }
    match &c.drain {
        Some(DrainSpec::Webhook(url))
            if !(url.starts_with("http://") || url.starts_with("https://")) =>
        {
            bad("drain.webhook", format!("{url:?} is not an http(s) URL"))
        }
        Some(DrainSpec::Kubernetes(false)) => bad(
            "drain.kubernetes",
            "must be true (or leave drain out)".into(),
        ),
        _ => {}
    }
    if let Some(q) = &c.node_metric
        && q.trim().is_empty()
    {
        bad("node_metric", "must not be empty".into());
    }
    if let Some(e) = &c.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        bad("endpoint", format!("{e:?} is not an http(s) URL"));
    }
    let t = &c.timeouts;
    for (field, d) in [
        ("timeouts.request", t.request),
        ("timeouts.create", t.create),
        ("timeouts.ready", t.ready),
        ("timeouts.drain", t.drain),
        ("timeouts.delete", t.delete),
        ("timeouts.poll_interval", t.poll_interval),
    ] {
        if d.0.is_zero() {
            bad(field, "must be more than zero".into());
        }
    }

    if let Err(p) = Credentials::load(c, env) {
        out.push(p);
    }
    out
}

/// Why a spot/on-demand mix cannot be made at `kind`: none of the three sells spot capacity.
fn no_spot(kind: ProviderKind) -> String {
    let why = match kind {
        ProviderKind::Hetzner => {
            "Hetzner Cloud has no spot or preemptible servers: every server is billed on demand"
        }
        ProviderKind::Scaleway => {
            "Scaleway Instances have no spot or preemptible offer: Instances are billed on demand by the hour (savings plans are a billing discount, not spot capacity)"
        }
        ProviderKind::Ovh => {
            "OVHcloud Public Cloud has no spot instances: instances are billed hourly or monthly on demand"
        }
    };
    format!(
        "{} cannot run a spot/on-demand mix. {why}; remove `spot` (or set it to false)",
        kind.name()
    )
}

fn out_push(bad: &mut impl FnMut(&str, String), p: TargetProblem) {
    let field = p
        .path
        .strip_prefix("target.")
        .unwrap_or(&p.path)
        .to_string();
    bad(&field, p.reason);
}

/// Checks one Hetzner label: key `[prefix/]name`, name ≤ 63 characters of letters, digits,
/// `-`, `_`, `.` starting and ending alphanumeric; the prefix a DNS subdomain; the value ≤ 63
/// characters of the same alphabet (or empty); `hetzner.cloud/` and the group label reserved.
pub(crate) fn hetzner_label(key: &str, value: &str) -> Result<(), String> {
    fn name_ok(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }
    if key == GROUP_LABEL {
        return Err("is the group's own label; use `group`".into());
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p == "hetzner.cloud" || p.ends_with(".hetzner.cloud") {
            return Err("the prefix hetzner.cloud/ is reserved by Hetzner".into());
        }
        let dns_ok = p.len() <= 253
            && p.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            });
        if !dns_ok {
            return Err(format!("key prefix {p:?} is not a DNS subdomain"));
        }
    }
    if !name_ok(name) {
        return Err(format!(
            "key name {name:?} must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!(
            "value {value:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A provider's credentials. Every secret is a [`SecretString`]: `Debug` prints it redacted
/// and nothing here formats it into a message.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `HCLOUD_TOKEN`.
    Hetzner {
        /// The project's API token.
        token: SecretString,
    },
    /// `SCW_SECRET_KEY` and `SCW_DEFAULT_PROJECT_ID`.
    Scaleway {
        /// The API secret key.
        secret_key: SecretString,
        /// The project servers are created in.
        project: String,
    },
    /// `OVH_APPLICATION_KEY`, `OVH_APPLICATION_SECRET`, `OVH_CONSUMER_KEY`.
    Ovh {
        /// The application key.
        application_key: SecretString,
        /// The application secret (signs requests; never sent).
        application_secret: SecretString,
        /// The consumer key.
        consumer_key: SecretString,
    },
}

impl Credentials {
    /// The variables a provider's credentials are read from.
    pub fn variables(kind: ProviderKind) -> &'static [&'static str] {
        match kind {
            ProviderKind::Hetzner => &["HCLOUD_TOKEN"],
            ProviderKind::Scaleway => &["SCW_SECRET_KEY", "SCW_DEFAULT_PROJECT_ID"],
            ProviderKind::Ovh => &[
                "OVH_APPLICATION_KEY",
                "OVH_APPLICATION_SECRET",
                "OVH_CONSUMER_KEY",
            ],
        }
    }

    /// Reads the credentials of `config`'s provider from its `credentials_file` (lines of
    /// `NAME=value`; `#` starts a comment) or else from `env`. A missing one is named by its
    /// variable, never shown.
    pub fn load(
        config: &GroupConfig,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Credentials, TargetProblem> {
        let source = Source::new(config.kind, config.credentials_file.as_deref(), env)?;
        Ok(match config.kind {
            ProviderKind::Hetzner => Credentials::Hetzner {
                token: source.get("HCLOUD_TOKEN")?.into(),
            },
            ProviderKind::Scaleway => {
                let secret_key = source.get("SCW_SECRET_KEY")?.into();
                let project = match &config.project {
                    Some(p) => p.clone(),
                    None => source.get("SCW_DEFAULT_PROJECT_ID")?,
                };
                Credentials::Scaleway {
                    secret_key,
                    project,
                }
            }
            ProviderKind::Ovh => Credentials::Ovh {
                application_key: source.get("OVH_APPLICATION_KEY")?.into(),
                application_secret: source.get("OVH_APPLICATION_SECRET")?.into(),
                consumer_key: source.get("OVH_CONSUMER_KEY")?.into(),
            },
        })
    }
}

/// Where credentials are read from: a file of `NAME=value` lines, or the environment.
pub(crate) struct Source<'a> {
    kind: ProviderKind,
    file: Option<(&'a std::path::Path, BTreeMap<String, String>)>,
    env: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

impl<'a> Source<'a> {
    pub(crate) fn new(
        kind: ProviderKind,
        file: Option<&'a std::path::Path>,
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Source<'a>, TargetProblem> {
        let file = match file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    TargetProblem::at(
                        "credentials_file",
                        format!("cannot read {}: {}", path.display(), e.kind()),
                    )
                })?;
                Some((path, parse_env_file(&text)))
            }
        };
        Ok(Source { kind, file, env })
    }

    /// The variable `name`; a missing one is named, its value never shown.
    pub(crate) fn get(&self, name: &str) -> Result<String, TargetProblem> {
        let (value, field, where_) = match &self.file {
            Some((path, map)) => (
                map.get(name).cloned(),
                "credentials_file",
                format!("in {}", path.display()),
            ),
            None => ((self.env)(name), "", "in the environment".to_string()),
        };
        match value {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(TargetProblem::at(
                field,
                format!(
                    "{} credentials: {name} is not set {where_}",
                    self.kind.name()
                ),
            )),
        }
    }
}

fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hetzner_label_rules() {
        assert!(hetzner_label("env", "prod").is_ok());
        assert!(hetzner_label("example.com/tier", "a_b.c-d").is_ok());
        assert!(hetzner_label("env", "").is_ok());
        assert!(hetzner_label("hetzner.cloud/x", "y").is_err());
        assert!(hetzner_label("-env", "x").is_err());
        assert!(hetzner_label("env", "bad value").is_err());
        assert!(hetzner_label(&"k".repeat(64), "x").is_err());
        assert!(hetzner_label("env", &"v".repeat(64)).is_err());
        assert!(hetzner_label("bad_prefix!/x", "y").is_err());
        assert!(hetzner_label(GROUP_LABEL, "y").is_err());
    }

    #[test]
    fn an_env_file_is_read_with_comments_exports_and_quotes() {
        let m = parse_env_file("# c\nexport A=1\nB = \"two\"\nC='3'\n\nbroken\n");
        assert_eq!(m.get("A").map(String::as_str), Some("1"));
        assert_eq!(m.get("B").map(String::as_str), Some("two"));
        assert_eq!(m.get("C").map(String::as_str), Some("3"));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn durations_read_humantime_and_seconds() {
        let t: Timeouts =
            serde_json::from_value(serde_json::json!({"ready": "250ms", "create": 3})).unwrap();
        assert_eq!(t.ready.0, Duration::from_millis(250));
        assert_eq!(t.create.0, Duration::from_secs(3));
        assert_eq!(t.drain, Timeouts::default().drain);
        assert!(serde_json::from_value::<Timeouts>(serde_json::json!({"ready": "soon"})).is_err());
    }
}
