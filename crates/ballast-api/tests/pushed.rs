//! Pushed metrics end to end in one process: samples posted to `POST /api/v1/metrics` are
//! what a `source: pushed` policy decides on, and bad samples are refused whole.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ballast_api::{AppState, router};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_store::{HistoryFilter, HistoryKind, Scope, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct World {
    app: axum::Router,
    engine: Arc<Engine>,
    operator: String,
    viewer: String,
}

async fn world() -> World {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let mut tokens = Vec::new();
    for (name, scope) in [("app", Scope::Operator), ("viewer", Scope::Viewer)] {
        let (token, hash) = ballast_api::auth::new_token();
        store
            .create_token(name, scope, &hash, "test")
            .await
            .unwrap();
        tokens.push(token);
    }
    let engine = Arc::new(Engine::new(
        store,
        None,
        Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: Duration::from_secs(1),
            ..EngineConfig::default()
        },
    ));
    World {
        app: router(AppState {
            engine: engine.clone(),
        }),
        engine,
        viewer: tokens.pop().unwrap(),
        operator: tokens.pop().unwrap(),
    }
}

async fn push(w: &World, token: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = w.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_pushed_metric_drives_a_policy() {
    let w = world().await;
    let spec = ballast_core::load_policies(
        "name: workers
min_replicas: 1
max_replicas: 20
metrics:
  backlog:
    query: 'jobs_waiting{queue=\"emails\"}'
    source: pushed
target_tracking: {metric: backlog, target: 10}
",
        ballast_core::Format::Yaml,
    )
    .unwrap()
    .remove(0)
    .spec;
    let record = w.engine.store().create_policy(&spec, "test").await.unwrap();

    let (status, body) = push(
        &w,
        &w.operator,
        json!({"samples": [
            {"name": "jobs_waiting", "labels": {"queue": "emails", "host": "a"}, "value": 30},
            {"name": "jobs_waiting", "labels": {"queue": "emails", "host": "b"}, "value": 25},
            {"name": "jobs_waiting", "labels": {"queue": "sms"}, "value": 1000},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 3);

    let report = w.engine.tick(chrono::Utc::now()).await;
    w.engine.settle().await;
    assert_eq!(report.actions, 1, "{report:?}");
    let history = w
        .engine
        .store()
        .history(&HistoryFilter {
            policy_id: Some(record.id),
            kind: Some(HistoryKind::Decision),
            limit: 10,
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    let decision = history.items[0].decision.clone().unwrap();
    assert_eq!(
        decision.desired, 6,
        "55 jobs of the emails queue at 10 per replica"
    );
    assert!(
        history.items[0].reason.contains("55"),
        "{}",
        history.items[0].reason
    );
}

#[tokio::test]
async fn a_bad_sample_is_refused_with_its_path_and_nothing_is_kept() {
    let w = world().await;
    let (status, body) = push(
        &w,
        &w.operator,
        json!({"samples": [
            {"name": "ok_metric", "value": 1},
            {"name": "bad name", "value": 2},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["problems"][0]["path"], "samples[1].name");
    assert_eq!(w.engine.pushed().series_count(), 0);

    let (status, body) = push(&w, &w.operator, json!({"samples": [{"name": "x"}]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("value"),
        "{body}"
    );
    let (status, _) = push(
        &w,
        &w.operator,
        json!({"samples": [{"name": "x", "value": 1, "timestamp": "2999-01-01T00:00:00Z"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _) = push(&w, &w.viewer, json!({"samples": []})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "pushing needs the operator scope"
    );
}
