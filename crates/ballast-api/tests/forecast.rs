//! The predictive strategy under the engine, seen through the API: the forecaster is fed at
//! each evaluation, trains in the background, forecasts with an interval, is scored, and
//! `GET /api/v1/scaling/policies/{id}/forecast` and `/metrics` show it; after a restart it
//! starts again from the metric's history instead of from nothing.
//!
//! Time is virtual: the test pushes samples and ticks the engine at one-minute steps, and
//! waits for the background work (history read-back, training) between ticks so the
//! sequence is deterministic.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ballast_api::{AppState, router};
use ballast_runtime::{Engine, EngineConfig, PushedSample, SeriesKey, Targets, Telemetry};
use ballast_store::{Scope, Store};
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A load with a 30-minute cycle of ±60 around a level that changes from cycle to cycle,
/// so the seasonal naive forecast (a cycle ago) is off by the change and a forecast that
/// starts from the newest value is not.
fn load(minute: i64) -> f64 {
    let phase = (minute % 30) as f64 / 30.0 * std::f64::consts::TAU;
    let level = [200.0, 240.0, 180.0, 220.0][(minute / 30 % 4) as usize];
    level + 60.0 * phase.sin()
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(minute: i64) -> DateTime<Utc> {
    start() + TimeDelta::minutes(minute)
}

struct Server {
    engine: Arc<Engine>,
    app: axum::Router,
    token: String,
}

async fn server(store: Store) -> Server {
    let (token, hash) = ballast_api::auth::new_token();
    let name = format!("t{}", &hash[..8]);
    store
        .create_token(&name, Scope::Admin, &hash, "test")
        .await
        .unwrap();
    let engine = Arc::new(Engine::new(
        store,
        None,
        Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig {
            interval: std::time::Duration::from_secs(60),
            ..EngineConfig::default()
        },
    ));
    Server {
        app: router(AppState {
            engine: engine.clone(),
        }),
        engine,
        token,
    }
}

impl Server {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Pushes the load of `minute` and ticks the engine then, waiting for the forecaster's
    /// background work.
    async fn minute(&self, minute: i64) {
        let sample = PushedSample {
            key: SeriesKey {
                name: "load".to_owned(),
                labels: Default::default(),
            },
            value: load(minute),
            at: at(minute),
        };
        self.engine.pushed().push(vec![sample], at(minute)).unwrap();
        let report = self.engine.tick(at(minute)).await;
        assert_eq!(report.failures, 0, "{report:?}");
        self.engine.forecasts().settle().await;
        self.engine.settle().await;
    }
}

fn predictive(mode: &str) -> Value {
    json!({
        "name": format!("ahead-{mode}"),
        "min_replicas": 1,
        "max_replicas": 100,
        "metrics": {"load": {"source": "pushed", "query": "load"}},
        "predictive": {
            "metric": "load", "target": 10, "mode": mode, "confidence": 0.9,
            "provisioning_time": "2m", "history": "1d", "seasonality": ["30m"],
            "retrain_every": "30m", "max_mase": 1.0, "accuracy_window": "1d"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_predictive_policy_forecasts_is_scored_and_shows_its_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ballast.db", dir.path().display());
    let s = server(Store::connect(&url).await.unwrap()).await;
    let (status, created) = s
        .call(
            "POST",
            "/api/v1/scaling/policies",
            Some(predictive("scale")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/scaling/policies/{id}/forecast");

    // Not evaluated yet: no forecaster.
    let (status, body) = s.call("GET", &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("not been evaluated"), "{body}");

    // A policy without a predictive block has no forecast.
    let (status, plain) = s
        .call(
            "POST",
            "/api/v1/scaling/policies",
            Some(json!({
                "name": "plain", "max_replicas": 3,
                "metrics": {"load": {"source": "pushed", "query": "load"}},
                "target_tracking": {"metric": "load", "target": 100}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    let (status, body) = s
        .call(
            "GET",
            &format!(
                "/api/v1/scaling/policies/{}/forecast",
                plain["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.to_string().contains("predictive"), "{body}");

    // The first hour: collecting, then the first training at 60 samples.
    for m in 0..30 {
        s.minute(m).await;
    }
    let (status, body) = s.call("GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "collecting", "{body}");
    assert_eq!(body["model"]["history_samples"], 30, "{body}");
    assert!(body["forecast"].is_null(), "{body}");
    assert_eq!(body["outlook"], json!([]), "{body}");
    assert_eq!(body["last_decision"]["role"], "standing_aside", "{body}");
    assert!(
        body["last_decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("no forecast"),
        "{body}"
    );

    for m in 30..170 {
        s.minute(m).await;
    }
    let (status, body) = s.call("GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "forecasting", "{body}");
    let trainings = body["model"]["trainings"].as_u64().unwrap();
    assert!(
        (3..=5).contains(&trainings),
        "every 30 samples from 60: {body}"
    );
    assert_eq!(body["model"]["failed_trainings"], 0, "{body}");
    assert_eq!(
        body["model"]["seasonal_periods_seconds"],
        json!([1800.0]),
        "{body}"
    );

    // The forecast covers the lead time (2 minutes to start plus the 1-minute interval)
    // from the newest sample, and its peak is close to the cycle's true peak over it.
    let f = &body["forecast"];
    assert_eq!(f["made_at"], json!(at(169)), "{body}");
    assert_eq!(f["lead_seconds"], 180.0, "{body}");
    let (lower, peak, upper) = (
        f["lower"].as_f64().unwrap(),
        f["peak"].as_f64().unwrap(),
        f["upper"].as_f64().unwrap(),
    );
    assert!(lower <= peak && peak <= upper, "{f}");
    let truth = (170..=172).map(load).fold(f64::MIN, f64::max);
    assert!((peak - truth).abs() < 5.0, "peak {peak} vs {truth}");
    assert_eq!(f["replicas"], (upper / 10.0).ceil() as u64, "{f}");

    // The outlook: the model's path from the newest sample, one point a minute.
    let outlook = body["outlook"].as_array().unwrap();
    assert!(outlook.len() >= 10, "{body}");
    for (j, p) in outlook.iter().take(5).enumerate() {
        let m = 170 + j as i64;
        assert_eq!(p["at"], json!(at(m)), "{p}");
        let value = p["value"].as_f64().unwrap();
        assert!((value - load(m)).abs() < 5.0, "{m}: {value} vs {}", load(m));
        assert!(p["lower"].as_f64().unwrap() <= value && value <= p["upper"].as_f64().unwrap());
    }

    // Scored against what happened; accurate enough that the strategy acts.
    let a = &body["accuracy"];
    assert!(a["scored"].as_u64().unwrap() > 50, "{a}");
    let mase = a["mase"].as_f64().unwrap();
    assert!(mase < 1.0, "{a}");
    assert!(a["coverage"].as_f64().unwrap() > 0.5, "{a}");
    assert_eq!(body["last_decision"]["role"], "acting", "{body}");

    // The decisions follow the forecast: the desired count at the last evaluation is what
    // the forecast's upper bound needs.
    let (_, history) = s
        .call(
            "GET",
            &format!("/api/v1/scaling/history?policy_id={id}&limit=1"),
            None,
        )
        .await;
    let decision = &history["entries"][0]["decision"];
    assert!(
        decision["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["strategy"] == "predictive"),
        "{decision}"
    );

    // A dry run uses the newest forecast without feeding or scoring it.
    let scored = a["scored"].as_u64().unwrap();
    let (status, evaluation) = s
        .call(
            "POST",
            &format!("/api/v1/scaling/policies/{id}/evaluate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{evaluation}");
    let (_, again) = s.call("GET", &path, None).await;
    assert_eq!(again["accuracy"]["scored"].as_u64().unwrap(), scored);

    // The figures are in /metrics, per policy.
    let (status, metrics) = s.call("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "ballast_forecast_mase{policy=\"ahead-scale\"}",
        "ballast_forecast_coverage_ratio{policy=\"ahead-scale\"}",
        "ballast_forecast_upper{policy=\"ahead-scale\"}",
        "ballast_forecast_standing_aside{policy=\"ahead-scale\"} 0",
        "ballast_forecast_trainings_total{policy=\"ahead-scale\",result=\"ok\"}",
        // Each tick's phases are timed too (170 ticks so far).
        "ballast_tick_phase_seconds_count{phase=\"fetch\"} 170",
        "ballast_tick_phase_seconds_count{phase=\"decide\"} 170",
    ] {
        assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
    }
    let mase_line = metrics
        .lines()
        .find(|l| l.starts_with("ballast_forecast_mase{policy=\"ahead-scale\"}"))
        .unwrap();
    let published: f64 = mase_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((published - mase).abs() < 1e-9, "{mase_line} vs {mase}");

    // Deleting the policy drops its forecaster and its metrics.
    let (status, _) = s
        .call("DELETE", &format!("/api/v1/scaling/policies/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    s.minute(170).await;
    let (_, metrics) = s.call("GET", "/metrics", None).await;
    assert!(
        !metrics
            .as_str()
            .unwrap()
            .contains("ballast_forecast_mase{policy=\"ahead-scale\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_the_forecaster_starts_from_the_metrics_history() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ballast.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let s = server(store.clone()).await;
    let (status, created) = s
        .call(
            "POST",
            "/api/v1/scaling/policies",
            Some(predictive("forecast_only")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/scaling/policies/{id}/forecast");

    // A "restarted" server: a new engine on the same store, whose pushed-metrics store holds
    // the last two hours (as Prometheus would hold the metric's past).
    let restarted = server(store).await;
    let samples: Vec<PushedSample> = (0..100)
        .map(|m| PushedSample {
            key: SeriesKey {
                name: "load".to_owned(),
                labels: Default::default(),
            },
            value: load(m),
            at: at(m),
        })
        .collect();
    restarted.engine.pushed().push(samples, at(100)).unwrap();
    // One evaluation starts the forecaster, which reads the 100 past samples back and
    // trains at once; the next evaluation already forecasts.
    restarted.minute(100).await;
    let (status, body) = restarted.call("GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"]["refilled_samples"], 100, "{body}");
    assert!(body["model"]["refill_error"].is_null(), "{body}");
    // The past after the 60 samples the first training needs was replayed with a forecast
    // at each sample (41) and a training every 30 samples; every forecast whose lead time
    // has been observed since (the past, then minute 100) is scored.
    assert_eq!(body["model"]["trainings"], 2, "{body}");
    assert_eq!(body["accuracy"]["scored"], 39, "{body}");
    assert!(
        body["accuracy"]["mase"].is_null(),
        "fewer than 60 scored: {body}"
    );
    assert_eq!(body["mode"], "forecast_only", "{body}");
    restarted.minute(101).await;
    let (_, body) = restarted.call("GET", &path, None).await;
    assert_eq!(body["status"], "forecasting", "{body}");
    assert_eq!(body["model"]["history_samples"], 102, "{body}");
    assert_eq!(body["forecast"]["made_at"], json!(at(101)), "{body}");
    // forecast_only: recorded, never acting.
    assert_eq!(body["last_decision"]["role"], "standing_aside", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("forecast only")
            || body["detail"].as_str().unwrap().contains("stands aside"),
        "{body}"
    );
}
