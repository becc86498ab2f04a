//! The external scaler over a real socket, called by a real gRPC client generated from the
//! same `proto/externalscaler.proto` (KEDA's protocol, field numbers as in KEDA's
//! `pkg/scalers/externalscaler/externalscaler.proto`). What the HPA makes of the answers is
//! computed by `ballast-sim`'s HPA reference model (`pkg/controller/podautoscaler`'s
//! External AverageValue path), reading the numbers the way KEDA does: a float field when it
//! is above 0, else the integer field.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use ballast_executor::Executor;
use ballast_keda::proto::external_scaler_client::ExternalScalerClient;
use ballast_keda::proto::{GetMetricsRequest, ScaledObjectRef};
use ballast_keda::{KedaBoard, KedaExecutor, KedaKind, KedaTarget, metric_name};
use ballast_sim::hpa::{Behavior, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy};
use ballast_sim::{Autoscaler, Controller, KedaConfig, TickObservation};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

/// A running server, its client and the way to stop it.
struct Running {
    client: ExternalScalerClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), ballast_keda::KedaError>>,
}

impl Running {
    async fn start(board: &KedaBoard) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(ballast_keda::serve(board.clone(), listener, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("a valid URI")
            .connect()
            .await
            .expect("connect to the server");
        Running {
            client: ExternalScalerClient::new(channel),
            stop: Some(stop),
            server,
        }
    }

    /// Stops the server and waits (at most 5 s) for it to return.
    async fn stop(mut self) {
        drop(self.client);
        let _ = self.stop.take().expect("running").send(());
        let ended = tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .expect("the server stops within 5 s");
        ended
            .expect("joined")
            .expect("the server ends without error");
    }
}

fn object(metadata: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "web".to_string(),
        namespace: "shop".to_string(),
        scaler_metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    }
}

fn executor(board: &KedaBoard, policy: &str, initial: u32) -> KedaExecutor {
    let target = KedaTarget {
        kind: KedaKind::Keda,
        scaled_object: None,
    };
    KedaExecutor::new(board.clone(), policy, target, initial)
}

/// A number the way KEDA reads it: the float when it is above 0, else the integer.
fn keda_number(float: f64, int: i64) -> f64 {
    if float > 0.0 { float } else { int as f64 }
}

/// What KEDA learns in one round: whether the target is active, the target per replica and
/// the metric's value.
struct Answers {
    active: bool,
    target: f64,
    value: f64,
}

async fn exchange(client: &mut ExternalScalerClient<Channel>, policy: &str) -> Answers {
    let so = object(&[("scalerAddress", "ballast:8081"), ("policy", policy)]);
    let active = client
        .is_active(so.clone())
        .await
        .expect("IsActive")
        .into_inner()
        .result;
    let specs = client
        .get_metric_spec(so.clone())
        .await
        .expect("GetMetricSpec")
        .into_inner()
        .metric_specs;
    assert_eq!(specs.len(), 1, "one metric");
    assert_eq!(specs[0].metric_name, metric_name(policy));
    let target = keda_number(specs[0].target_size_float, specs[0].target_size);
    let values = client
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(so),
            // KEDA strips its `s0-` prefix before asking.
            metric_name: specs[0].metric_name.clone(),
        })
        .await
        .expect("GetMetrics")
        .into_inner()
        .metric_values;
    assert_eq!(values.len(), 1, "one value");
    assert_eq!(values[0].metric_name, metric_name(policy));
    let value = keda_number(values[0].metric_value_float, values[0].metric_value);
    Answers {
        active,
        target,
        value,
    }
}

/// An HPA on KEDA's External AverageValue metric with `target` per replica, after `behavior`.
fn hpa(target: f64, behavior: Behavior) -> Autoscaler<KedaConfig> {
    let config = KedaConfig {
        target_fraction: 1.0,
        behavior,
    };
    Autoscaler::new(config, target).expect("a valid HPA")
}

/// One HPA sync at `now_s` from `current` replicas with the metric at `value`.
fn sync(hpa: &mut Autoscaler<KedaConfig>, now_s: f64, current: u32, value: f64) -> u32 {
    let seen = TickObservation {
        tick: 0,
        end_s: now_s,
        demand: value,
        replicas: current,
        allocated: current,
        load_per_replica: 0.0,
        utilization: 0.0,
        backlog: 0.0,
    };
    hpa.decide(1, now_s, &[seen])
}

/// The behavior of `examples/keda/scaledobject.yaml`, with its replica bounds (the HPA's
/// minimum is KEDA's `max(minReplicaCount, 1)`), read from the file.
fn example_behavior() -> Behavior {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/keda/scaledobject.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the example exists");
    let so: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    let spec = &so["spec"];
    let rules = |direction: &str| {
        let r = &spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"][direction];
        let policies = r["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .map(|p| ScalingPolicy {
                kind: match p["type"].as_str() {
                    Some("Pods") => PolicyKind::Pods,
                    Some("Percent") => PolicyKind::Percent,
                    other => panic!("policy type {other:?}"),
                },
                value: p["value"].as_u64().expect("value") as u32,
                period_s: p["periodSeconds"].as_f64().expect("periodSeconds"),
            })
            .collect();
        assert!(r.get("selectPolicy").is_none(), "Max (the default) assumed");
        ScalingRules {
            stabilization_s: r["stabilizationWindowSeconds"].as_f64().expect("window"),
            select: SelectPolicy::Max,
            policies,
        }
    };
    let min = spec["minReplicaCount"].as_u64().expect("minReplicaCount") as u32;
    Behavior {
        min_replicas: min.max(1),
        max_replicas: spec["maxReplicaCount"].as_u64().expect("maxReplicaCount") as u32,
        scale_up: rules("scaleUp"),
        scale_down: rules("scaleDown"),
        ..Behavior::default()
    }
}

#[tokio::test]
async fn a_full_exchange_makes_the_hpa_land_on_the_desired_count() {
    let board = KedaBoard::new();
    let web = executor(&board, "web", 0);
    let mut running = Running::start(&board).await;

    for desired in [0, 1, 3, 10, 57] {
        web.scale(desired).await.expect("published");
        let a = exchange(&mut running.client, "web").await;
        assert_eq!(a.active, desired > 0, "IsActive for {desired}");
        if desired == 0 {
            // KEDA takes the target to zero after its cooldown; the metric says no load.
            assert_eq!(a.value, 0.0);
            continue;
        }
        // The HPA's count for an AverageValue External metric.
        assert_eq!(
            (a.value / a.target).ceil(),
            f64::from(desired),
            "for {desired}"
        );
        // Activation: KEDA scales 0 → 1, then the HPA (example behavior) syncs once.
        let mut h = hpa(a.target, example_behavior());
        assert_eq!(sync(&mut h, 15.0, 1, a.value), desired, "0 → 1 → {desired}");
    }
    running.stop().await;
}

#[tokio::test]
async fn the_hpa_follows_raises_and_cuts_through_the_protocol() {
    let board = KedaBoard::new();
    let web = executor(&board, "web", 1);
    let mut running = Running::start(&board).await;

    let target = exchange(&mut running.client, "web").await.target;
    let mut h = hpa(target, example_behavior());
    let mut current = 1;
    let mut now = 0.0;
    // Raises by more than 10 %, cuts from below 20 or by more than 10 %, and a cut by one
    // at 19 that only lands because the value leans low after a cut.
    for desired in [3, 10, 57, 10, 3, 1, 8, 19, 18, 2, 1] {
        web.scale(desired).await.expect("published");
        let a = exchange(&mut running.client, "web").await;
        assert!(a.active);
        now += 15.0;
        current = sync(&mut h, now, current, a.value);
        assert_eq!(current, desired, "the HPA follows to {desired}");
        // And stays there on the next sync.
        now += 15.0;
        assert_eq!(
            sync(&mut h, now, current, a.value),
            desired,
            "stays at {desired}"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn the_example_behavior_is_what_makes_a_large_raise_land_in_one_go() {
    let board = KedaBoard::new();
    let web = executor(&board, "web", 10);
    let mut running = Running::start(&board).await;
    web.scale(21).await.expect("published");
    let a = exchange(&mut running.client, "web").await;

    // The default behavior limits 10 → 20, and 21 / 20 is within the tolerance.
    let mut default = hpa(a.target, Behavior::default());
    let mut current = 10;
    for k in 1..=8 {
        current = sync(&mut default, 15.0 * f64::from(k), current, a.value);
    }
    assert_eq!(current, 20, "stuck one short with the default behavior");

    let mut example = hpa(a.target, example_behavior());
    assert_eq!(sync(&mut example, 15.0, 10, a.value), 21);
    running.stop().await;
}

#[test]
fn the_example_scaled_object_names_the_policy_and_the_port() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/keda/scaledobject.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the example exists");
    let so: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    assert_eq!(so["apiVersion"], "keda.sh/v1alpha1");
    assert_eq!(so["kind"], "ScaledObject");
    assert_eq!(so["spec"]["minReplicaCount"], 0);
    let trigger = &so["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "external");
    assert_eq!(trigger["metricType"], "AverageValue");
    assert_eq!(trigger["metadata"][ballast_keda::POLICY_KEY], "web");
    let address = trigger["metadata"]["scalerAddress"]
        .as_str()
        .expect("scalerAddress");
    assert!(
        address.ends_with(&format!(":{}", ballast_keda::DEFAULT_PORT)),
        "{address}"
    );
    // The scale-up limit reaches maxReplicaCount in one period.
    let behavior = example_behavior();
    assert!(
        behavior
            .scale_up
            .policies
            .iter()
            .any(|p| p.kind == PolicyKind::Pods && p.value >= behavior.max_replicas)
    );
    assert_eq!(behavior.scale_down.stabilization_s, 0.0);
}

#[tokio::test]
async fn stream_is_active_sends_the_answer_at_once_and_each_flip() {
    let board = KedaBoard::new();
    let web = executor(&board, "web", 2);
    let mut running = Running::start(&board).await;
    let mut stream = running
        .client
        .stream_is_active(object(&[("policy", "web")]))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a message within 5 s")
            .expect("no error")
            .expect("the stream is open")
            .result
    };
    assert!(next().await, "active at 2");
    // 2 → 5 does not flip the flag: nothing is sent, so the next message is the flip to 0.
    web.scale(5).await.expect("published");
    web.scale(0).await.expect("published");
    assert!(!next().await, "inactive at 0");
    web.scale(3).await.expect("published");
    assert!(next().await, "active again at 3");
    running.stop().await;
}

#[tokio::test]
async fn open_streams_end_when_the_policy_leaves_or_the_server_stops() {
    let board = KedaBoard::new();
    executor(&board, "web", 1);
    executor(&board, "api", 0);
    let mut running = Running::start(&board).await;
    let mut web = running
        .client
        .stream_is_active(object(&[("policy", "web")]))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let mut api = running
        .client
        .stream_is_active(object(&[("policy", "api")]))
        .await
        .expect("StreamIsActive")
        .into_inner();
    let within = Duration::from_secs(5);
    assert!(web.message().await.expect("ok").expect("open").result);
    assert!(!api.message().await.expect("ok").expect("open").result);

    board.remove("web");
    let ended = tokio::time::timeout(within, web.message()).await;
    assert!(matches!(ended, Ok(Ok(None))), "{ended:?}");

    // The server stops although a stream is open, and the stream ends.
    running.stop().await;
    let ended = tokio::time::timeout(within, api.message())
        .await
        .expect("ends within 5 s");
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
}

#[tokio::test]
async fn missing_or_unknown_policies_are_clear_grpc_errors() {
    let board = KedaBoard::new();
    executor(&board, "web", 1);
    let mut running = Running::start(&board).await;
    let c = &mut running.client;

    let e = c
        .is_active(object(&[("scalerAddress", "ballast:8081")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("no `policy` key"), "{}", e.message());
    assert!(e.message().contains("shop/web"), "{}", e.message());

    let e = c
        .get_metric_spec(object(&[("policy", " ")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("`policy` is empty"), "{}", e.message());

    let e = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: Some(object(&[("policy", "wbe")])),
            metric_name: "ballast-wbe".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("no Ballast policy `wbe`"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("`policy`"), "{}", e.message());
    assert!(
        e.message().contains(": web"),
        "lists the known policies: {}",
        e.message()
    );

    let e = c
        .get_metrics(GetMetricsRequest {
            scaled_object_ref: None,
            metric_name: "ballast-web".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("scaledObjectRef"), "{}", e.message());

    let e = c
        .stream_is_active(object(&[("policy", "nope")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let e = c
        .stream_metric_spec(object(&[("policy", "web")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    running.stop().await;
}
