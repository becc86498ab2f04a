//! The REST API through `router(state).oneshot(request)`, on a SQLite store.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ballast_api::{AppState, router, router_and_doc};
use ballast_runtime::{Engine, EngineConfig, Targets, Telemetry};
use ballast_store::{Scope, Store};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const SPEC_EXAMPLE: &str = r#"{"name":"cdc-worker-autoscaling","target_type":"cdc-worker",
 "target_id":"550e8400-e29b-41d4-a716-446655440000","min_replicas":1,"max_replicas":10,
 "cooldown_seconds":300,"scale_to_zero":false,
 "scale_up_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"gt","threshold":60,"duration":"5m","scale_by":2}],
 "scale_down_rules":[{"metric":"philotes_cdc_lag_seconds","operator":"lt","threshold":10,"duration":"10m","scale_by":-1}],
 "schedules":[{"cron_expression":"0 8 * * 1-5","desired_replicas":5,"timezone":"Europe/Budapest"}]}"#;

struct Api {
    app: axum::Router,
    admin: String,
    viewer: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ballast.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let mut tokens = Vec::new();
    for (name, scope) in [("admin", Scope::Admin), ("viewer", Scope::Viewer)] {
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
        std::sync::Arc::new(Targets::default()),
        Arc::new(Telemetry::new()),
        EngineConfig::default(),
    ));
    Api {
        app: router(AppState { engine }),
        viewer: tokens.pop().unwrap(),
        admin: tokens.pop().unwrap(),
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn admin(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let token = self.admin.clone();
        self.call(
            method,
            path,
            Some(&token),
            &[],
            body.map(|b| b.as_bytes().to_vec()),
        )
        .await
    }
}

#[tokio::test]
async fn the_specification_example_is_created_and_reads_back_identically() {
    let api = api().await;
    let (status, created) = api
        .admin("POST", "/api/v1/scaling/policies", Some(SPEC_EXAMPLE))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, read) = api
        .call(
            "GET",
            &format!("/api/v1/scaling/policies/{id}"),
            Some(&api.viewer.clone()),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let sent: Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    for (field, value) in sent.as_object().unwrap() {
        assert_eq!(&read[field], value, "field `{field}` reads back as sent");
    }
    assert_eq!(read["version"], 1);
    assert_eq!(read["created_by"], "token:admin");

    let (status, history) = api.admin("GET", "/api/v1/scaling/history", None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = history["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["kind"] == "policy_created"
        && e["policy_name"] == "cdc-worker-autoscaling"
        && e["actor"] == "token:admin"));
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_names_the_problem() {
    let api = api().await;
    let (status, body) = api
        .admin("POST", "/api/v1/scaling/policies", Some("{\"name\": "))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "bad_request");

    let invalid = r#"{"name":"x","min_replicas":5,"max_replicas":2,"colldown_seconds":3,
        "scale_up_rules":[{"metric":"q","operator":"above","threshold":1,"scale_by":1}]}"#;
    let (status, body) = api
        .admin("POST", "/api/v1/scaling/policies", Some(invalid))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"colldown_seconds"), "{body}");
    assert!(paths.contains(&"min_replicas"), "{body}");
    assert!(paths.contains(&"scale_up_rules[0].operator"), "{body}");

    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, _) = api
        .admin("POST", "/api/v1/scaling/policies", Some(&big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = api
        .admin("GET", "/api/v1/scaling/policies/not-an-id", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body) = api
        .admin("GET", "/api/v1/scaling/history?since=yesterday", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`since`")
    );

    // Nothing was written by any of the bad requests.
    let (_, list) = api.admin("GET", "/api/v1/scaling/policies", None).await;
    assert_eq!(list["policies"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn an_update_needs_the_current_version_and_a_stale_one_changes_nothing() {
    let api = api().await;
    let (_, created) = api
        .admin("POST", "/api/v1/scaling/policies", Some(SPEC_EXAMPLE))
        .await;
    let path = format!(
        "/api/v1/scaling/policies/{}",
        created["id"].as_str().unwrap()
    );
    let mut changed: Value = serde_json::from_str(SPEC_EXAMPLE).unwrap();
    changed["max_replicas"] = json!(20);
    let body = changed.to_string();

    let (status, _) = api.admin("PUT", &path, Some(&body)).await;
    assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);

    let token = api.admin.clone();
    let (status, updated) = api
        .call(
            "PUT",
            &path,
            Some(&token),
            &[("if-match", "\"1\"")],
            Some(body.clone().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["max_replicas"], 20);

    changed["max_replicas"] = json!(30);
    let (status, _) = api
        .call(
            "PUT",
            &path,
            Some(&token),
            &[("if-match", "1")],
            Some(changed.to_string().into_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, read) = api.admin("GET", &path, None).await;
    assert_eq!(read["max_replicas"], 20, "the stale update changed nothing");

    // A policy read back can be sent again as it is: the server's fields are ignored and
    // its `version` is the precondition.
    let mut again = read.clone();
    again["min_replicas"] = json!(2);
    let (status, updated) = api.admin("PUT", &path, Some(&again.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["version"], 3);

    let (status, _) = api.admin("DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api.admin("GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn routes_need_a_token_with_a_large_enough_scope() {
    let api = api().await;
    let (status, body) = api
        .call("GET", "/api/v1/scaling/policies", None, &[], None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = api
        .call(
            "GET",
            "/api/v1/scaling/policies",
            Some("blst_wrong"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let viewer = api.viewer.clone();
    let (status, _) = api
        .call("GET", "/api/v1/scaling/policies", Some(&viewer), &[], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/scaling/policies",
            Some(&viewer),
            &[],
            Some(SPEC_EXAMPLE.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`admin` scope")
    );
    for open in ["/healthz", "/readyz", "/metrics"] {
        let req = Request::get(open).body(Body::empty()).unwrap();
        let resp = api.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{open} needs no token");
    }
}

#[tokio::test]
async fn evaluate_returns_a_dry_run_decision_with_reasons_and_records_it() {
    let api = api().await;
    let (_, created) = api
        .admin("POST", "/api/v1/scaling/policies", Some(SPEC_EXAMPLE))
        .await;
    let id = created["id"].as_str().unwrap();
    let (status, eval) = api
        .admin(
            "POST",
            &format!("/api/v1/scaling/policies/{id}/evaluate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{eval}");
    let decision = &eval["decision"];
    assert_eq!(decision["dry_run"], true);
    assert!(
        decision["data_problems"][0]
            .as_str()
            .unwrap()
            .contains("no Prometheus is configured"),
        "{decision}"
    );
    let (_, history) = api
        .admin(
            "GET",
            &format!("/api/v1/scaling/history?policy_id={id}&kind=decision"),
            None,
        )
        .await;
    let entry = &history["entries"][0];
    assert_eq!(entry["dry_run"], true);
    assert_eq!(entry["outcome"], "dry_run");
    assert_eq!(entry["id"], eval["history_id"]);
}

#[tokio::test]
async fn every_route_in_the_openapi_document_is_served() {
    let api = api().await;
    let (_, doc) = router_and_doc(AppState {
        engine: Arc::new(Engine::new(
            Store::connect("sqlite::memory:").await.unwrap(),
            None,
            std::sync::Arc::new(Targets::default()),
            Arc::new(Telemetry::new()),
            EngineConfig::default(),
        )),
    });
    let doc = serde_json::to_value(&doc).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{paths:?}");
    for (path, item) in paths {
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let resp = api.app.clone().oneshot(req).await.unwrap();
            assert_ne!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("no such route"),
                "{method} {path} is documented but not served"
            );
        }
    }
    // And the document is what /api/v1/openapi.json serves.
    let req = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    let served: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(served, doc);
}
