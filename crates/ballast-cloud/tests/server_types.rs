//! Groups that allow several server types: the type with the lowest hourly price per unit
//! of capacity that the provider can deliver is created, unavailable types are skipped, a
//! create refused as sold out falls back to the next type, and bad `server_types` (or
//! `spot`) blocks are named by their path.
//!
//! Against the loopback servers of `ballast_cloud::testing`, which follow each provider's
//! published API document: the Hetzner Cloud API reference (`docs.hetzner.cloud`:
//! `GET /server_types` with per-location prices and deprecations, `resource_unavailable`
//! and `placement_error` on create), Scaleway's Instance API v1 reference
//! (`www.scaleway.com/en/developers/api/instance/`: `GET /products/servers`,
//! `GET /products/servers/availability`, errors of type `out_of_stock`), and the OVHcloud
//! API v1 reference (`eu.api.ovh.com/console`: `GET /cloud/project/{serviceName}/flavor`
//! with `available`, the public catalogue for prices).

use std::sync::Arc;

use ballast_cloud::testing::hetzner::{HetznerMock, SoldOut, TOKEN};
use ballast_cloud::testing::ovh::{
    APPLICATION_KEY, APPLICATION_SECRET, CONSUMER_KEY, OvhMock, PROJECT as OVH_PROJECT, REGION,
};
use ballast_cloud::testing::scaleway::{PROJECT as SCW_PROJECT, SECRET_KEY, ScalewayMock, ZONE};
use ballast_cloud::{GROUP_LABEL, Platform, build_with_env, check_with_env, parse};
use ballast_executor::Executor;
use serde_json::{Map, Value, json};

fn env(name: &str) -> Option<String> {
    match name {
        "HCLOUD_TOKEN" => Some(TOKEN.to_string()),
        "SCW_SECRET_KEY" => Some(SECRET_KEY.to_string()),
        "SCW_DEFAULT_PROJECT_ID" => Some(SCW_PROJECT.to_string()),
        "OVH_APPLICATION_KEY" => Some(APPLICATION_KEY.to_string()),
        "OVH_APPLICATION_SECRET" => Some(APPLICATION_SECRET.to_string()),
        "OVH_CONSUMER_KEY" => Some(CONSUMER_KEY.to_string()),
        _ => None,
    }
}

const TIMEOUTS: &str = r#"{"poll_interval": "10ms", "ready": "2s", "create": "5s", "delete": "5s", "rate_limit_wait": "5s", "request": "5s"}"#;

fn merge(mut base: Value, extra: Value) -> Map<String, Value> {
    for (k, v) in extra.as_object().expect("an object") {
        if v.is_null() {
            base.as_object_mut().expect("an object").remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base.as_object().expect("an object").clone()
}

async fn build(target: Map<String, Value>) -> Arc<dyn Executor> {
    let config = parse(&target).expect("a valid target");
    build_with_env(&config, Platform::default(), &env)
        .await
        .expect("the group builds")
}

fn hetzner_target(mock: &HetznerMock, extra: Value) -> Map<String, Value> {
    let base = json!({
        "type": "hetzner",
        "group": "web",
        "image": "ubuntu-24.04",
        "location": "fsn1",
        "readiness": {"http": mock.health_template()},
        "endpoint": mock.endpoint(),
        "timeouts": serde_json::from_str::<Value>(TIMEOUTS).expect("json"),
    });
    merge(base, extra)
}

fn hetzner_types(mock: &HetznerMock) -> Vec<String> {
    let mut types: Vec<String> = mock
        .names(GROUP_LABEL, "web")
        .iter()
        .map(|n| mock.server_type(n).expect("a type"))
        .collect();
    types.sort();
    types
}

// cx22: 2 cores at 0.00714 €/h in fsn1 (0.00357 per core); cx32: 4 cores at 0.01309 €/h
// (0.00327 per core); cpx11 is sold in ash only.

#[tokio::test]
async fn the_type_with_the_lowest_price_per_cpu_is_created() {
    let mock = HetznerMock::start().await;
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": ["cx22", "cx32"]}),
    ))
    .await;
    let d = g.describe();
    assert_eq!(d.target, "group web (cx22, cx32) at fsn1");
    assert_eq!(
        d.price_per_replica_hour,
        Some(0.01309),
        "the price of the type the next scale-up picks"
    );
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(hetzner_types(&mock), ["cx32", "cx32"]);
    assert_eq!(g.current().await, Ok(2), "servers are counted, not cores");
}

#[tokio::test]
async fn a_configured_capacity_outweighs_the_cpu_count() {
    let mock = HetznerMock::start().await;
    // Four workers fit on a cx22 as on a cx32: per worker the cx22 is cheaper.
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": [{"name": "cx22", "capacity": 4}, {"name": "cx32", "capacity": 4}]}),
    ))
    .await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.00714));
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(hetzner_types(&mock), ["cx22"]);
}

#[tokio::test]
async fn types_not_offered_at_the_location_or_withdrawn_are_skipped() {
    let mock = HetznerMock::start().await;
    // cpx11 is cheaper per core than both but is not sold in fsn1; cx32 is deprecated there
    // with its last order date passed, so Hetzner no longer lists it at fsn1.
    mock.deprecate("cx32", "fsn1", "2020-01-01T00:00:00+00:00");
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": ["cpx11", "cx32", "cx22"]}),
    ))
    .await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.00714));
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(hetzner_types(&mock), ["cx22"]);

    // With nothing left that Hetzner offers here, the scale fails for good, saying why.
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": ["cpx11", "cx32"]}),
    ))
    .await;
    let err = g.scale(2).await.expect_err("nothing can be created");
    assert!(!err.is_transient(), "{err:?}");
    let m = err.message();
    assert!(m.contains("cpx11: not offered"), "{m}");
    assert!(m.contains("cx32: not offered"), "{m}");
    assert_eq!(mock.count(GROUP_LABEL, "web"), 1, "nothing was created");
}

#[tokio::test]
async fn a_type_being_withdrawn_is_taken_only_when_nothing_else_can_be() {
    let mock = HetznerMock::start().await;
    mock.deprecate("cx32", "fsn1", "2999-01-01T00:00:00+00:00");
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": ["cx32", "cx22"]}),
    ))
    .await;
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(
        hetzner_types(&mock),
        ["cx22"],
        "cx32 is cheaper per core but deprecated"
    );

    mock.sell_out("cx22", Some(SoldOut::Unavailable));
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(hetzner_types(&mock), ["cx22", "cx32"]);
}

#[tokio::test]
async fn a_create_refused_as_sold_out_falls_back_to_the_next_type() {
    let mock = HetznerMock::start().await;
    mock.sell_out("cx32", Some(SoldOut::Unavailable));
    let g = build(hetzner_target(
        &mock,
        json!({"server_types": ["cx22", "cx32"]}),
    ))
    .await;
    assert_eq!(g.scale(3).await, Ok(3));
    assert_eq!(hetzner_types(&mock), ["cx22", "cx22", "cx22"]);
    assert_eq!(
        mock.journal().matching("sold out"),
        ["sold out cx32"],
        "a sold-out type is tried once per scale"
    );
    assert_eq!(
        g.describe().price_per_replica_hour,
        Some(0.00714),
        "the next pick after this scale is cx22"
    );

    // A placement error counts as sold out too; the cheaper type is tried first again.
    mock.sell_out("cx32", Some(SoldOut::Placement));
    assert_eq!(g.scale(4).await, Ok(4));
    assert_eq!(mock.journal().matching("sold out").len(), 2);

    // When every type is sold out the scale fails, transiently, naming each.
    mock.sell_out("cx22", Some(SoldOut::Unavailable));
    let err = g.scale(5).await.expect_err("all sold out");
    assert!(err.is_transient(), "{err:?}");
    let m = err.message();
    assert!(
        m.contains("cx32: sold out") && m.contains("placement_error"),
        "{m}"
    );
    assert!(
        m.contains("cx22: sold out") && m.contains("resource_unavailable"),
        "{m}"
    );
    assert_eq!(mock.count(GROUP_LABEL, "web"), 4);
    assert_eq!(
        g.describe().price_per_replica_hour,
        Some(0.00714),
        "the last known price stays while nothing can be picked"
    );

    // Back in stock: the cheapest per core is created again.
    mock.sell_out("cx32", None);
    mock.sell_out("cx22", None);
    assert_eq!(g.scale(5).await, Ok(5));
    assert_eq!(
        hetzner_types(&mock).iter().filter(|t| *t == "cx32").count(),
        1
    );
}

fn scaleway_target(mock: &ScalewayMock, extra: Value) -> Map<String, Value> {
    let base = json!({
        "type": "scaleway",
        "group": "web",
        "image": "ubuntu_noble",
        "zone": ZONE,
        "readiness": {"http": mock.health_template()},
        "endpoint": mock.endpoint(),
        "timeouts": serde_json::from_str::<Value>(TIMEOUTS).expect("json"),
    });
    merge(base, extra)
}

fn scaleway_types(mock: &ScalewayMock) -> Vec<String> {
    let mut types: Vec<String> = mock
        .names("ballast/group=web")
        .iter()
        .map(|n| mock.server_type(n).expect("a type"))
        .collect();
    types.sort();
    types
}

// DEV1-S: 2 vCPUs at 0.0088 €/h (0.0044 per vCPU); DEV1-M: 3 at 0.0198 (0.0066);
// GP1-XS: 4 at 0.091 (0.02275).

#[tokio::test]
async fn scaleway_skips_types_out_of_stock_or_at_end_of_service() {
    let mock = ScalewayMock::start().await;
    let types = json!({"server_types": ["GP1-XS", "DEV1-M", "DEV1-S"]});
    let g = build(scaleway_target(&mock, types.clone())).await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.0088));
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(scaleway_types(&mock), ["DEV1-S"]);

    mock.set_stock("DEV1-S", "shortage");
    mock.set_stock("DEV1-M", "scarce");
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(
        scaleway_types(&mock),
        ["DEV1-M", "DEV1-S"],
        "low stock is still stock"
    );
    assert!(
        mock.journal().matching("out of stock").is_empty(),
        "a type listed in shortage is not even tried"
    );

    mock.end_of_service("DEV1-M");
    let g = build(scaleway_target(&mock, types)).await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.091));
    assert_eq!(g.scale(3).await, Ok(3));
    assert_eq!(scaleway_types(&mock), ["DEV1-M", "DEV1-S", "GP1-XS"]);
}

#[tokio::test]
async fn scaleway_falls_back_when_the_poweron_finds_the_type_sold_out() {
    let mock = ScalewayMock::start().await;
    mock.sell_out_at_poweron("DEV1-S");
    let g = build(scaleway_target(
        &mock,
        json!({"server_types": ["DEV1-S", "DEV1-M"]}),
    ))
    .await;
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(scaleway_types(&mock), ["DEV1-M", "DEV1-M"]);
    assert_eq!(
        mock.journal().matching("out of stock"),
        ["out of stock DEV1-S"]
    );
    // The half-made DEV1-S server was removed with its volume.
    assert_eq!(mock.all(), 2);
    assert_eq!(mock.volumes(), 2);
}

#[tokio::test]
async fn scaleway_falls_back_when_the_create_is_refused_out_of_stock() {
    let mock = ScalewayMock::start().await;
    let g = build(scaleway_target(
        &mock,
        json!({"server_types": ["DEV1-S", "DEV1-M"]}),
    ))
    .await;
    // The listing says DEV1-S is available; the create finds it out of stock.
    mock.sell_out_at_create("DEV1-S");
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(scaleway_types(&mock), ["DEV1-M", "DEV1-M"]);
    assert_eq!(
        mock.journal().matching("out of stock"),
        ["out of stock DEV1-S"]
    );
    assert_eq!(mock.all(), 2, "nothing half-made is left");
}

fn ovh_target(mock: &OvhMock, extra: Value) -> Map<String, Value> {
    let base = json!({
        "type": "ovh",
        "group": "web",
        "image": "img-debian-12",
        "region": REGION,
        "project": OVH_PROJECT,
        "readiness": {"http": mock.health_template()},
        "endpoint": mock.endpoint(),
        "timeouts": serde_json::from_str::<Value>(TIMEOUTS).expect("json"),
    });
    merge(base, extra)
}

fn ovh_flavors(mock: &OvhMock) -> Vec<String> {
    let mut flavors: Vec<String> = mock
        .names("web-")
        .iter()
        .map(|n| mock.flavor(n).expect("a flavor"))
        .collect();
    flavors.sort();
    flavors
}

// b2-7: 2 vCPUs at 0.0681 €/h; d2-4: 2 vCPUs at 0.0178 €/h; c3-8: no hourly plan.

#[tokio::test]
async fn ovh_chooses_by_price_skips_flavors_out_of_stock_and_falls_back_on_a_refused_create() {
    let mock = OvhMock::start().await;
    let types = json!({"server_types": ["b2-7", "d2-4"]});
    let g = build(ovh_target(&mock, types.clone())).await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.0178));
    assert_eq!(g.scale(1).await, Ok(1));
    assert_eq!(ovh_flavors(&mock), ["d2-4"]);

    mock.set_available("d2-4", false);
    assert_eq!(g.scale(2).await, Ok(2));
    assert_eq!(ovh_flavors(&mock), ["b2-7", "d2-4"]);
    assert_eq!(g.describe().price_per_replica_hour, Some(0.0681));

    // In stock when read, sold out when created: the refusal, with the flavor now listed
    // as unavailable, moves on to the next flavor.
    mock.set_available("d2-4", true);
    mock.sell_out_on_create("d2-4");
    let g = build(ovh_target(&mock, types)).await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.0178));
    assert_eq!(g.scale(3).await, Ok(3));
    assert_eq!(ovh_flavors(&mock), ["b2-7", "b2-7", "d2-4"]);
    assert_eq!(
        mock.journal().matching("out of stock"),
        ["out of stock d2-4"]
    );

    // A flavor without an hourly price comes after the priced ones.
    let g = build(ovh_target(&mock, json!({"server_types": ["c3-8", "b2-7"]}))).await;
    assert_eq!(g.describe().price_per_replica_hour, Some(0.0681));
}

fn problems(target: Map<String, Value>) -> Vec<(String, String)> {
    check_with_env(&target, &env)
        .into_iter()
        .map(|p| (p.path, p.reason))
        .collect()
}

fn paths(target: Map<String, Value>) -> Vec<String> {
    problems(target).into_iter().map(|p| p.0).collect()
}

#[test]
fn bad_server_types_blocks_are_named_by_their_path() {
    let base = json!({
        "type": "hetzner", "group": "web", "image": "ubuntu-24.04", "location": "fsn1",
        "server_types": ["cx22", {"name": "cx32", "capacity": 4}],
    });
    let t = |extra: Value| merge(base.clone(), extra);
    assert_eq!(problems(t(json!({}))), []);
    assert_eq!(
        paths(t(json!({"server_type": "cx22"}))),
        ["target.server_types"],
        "both given"
    );
    assert_eq!(
        paths(t(json!({"server_types": null}))),
        ["target.server_type"],
        "neither given"
    );
    assert_eq!(
        paths(t(json!({"server_types": []}))),
        ["target.server_types"]
    );
    let p = problems(t(json!({"server_types": ["cx22", "cx32", "cx22"]})));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "target.server_types[2]");
    assert!(p[0].1.contains("cx22 is listed twice"), "{p:?}");
    assert_eq!(
        paths(t(json!({"server_types": ["cx22", " "]}))),
        ["target.server_types[1]"]
    );
    let p = problems(t(
        json!({"server_types": ["cx22", {"name": "cx32", "capacity": 0}]}),
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "target.server_types[1].capacity");
    assert!(p[0].1.contains("above zero"), "{p:?}");
    assert_eq!(
        paths(t(
            json!({"server_types": ["cx22", {"name": "cx32", "cores": 4}]})
        )),
        ["target.server_types[1].cores"]
    );
    assert_eq!(
        paths(t(json!({"server_types": ["cx22", {"capacity": 4}]}))),
        ["target.server_types[1].name"]
    );
    assert_eq!(
        paths(t(json!({"server_types": ["cx22", 7]}))),
        ["target.server_types[1]"]
    );
    assert_eq!(
        paths(t(json!({"server_types": "cx22"}))),
        ["target.server_types"]
    );
}

#[test]
fn a_spot_mix_is_refused_naming_the_provider() {
    let blocks = [
        json!({"type": "hetzner", "group": "web", "server_type": "cx22", "image": "u", "location": "fsn1"}),
        json!({"type": "scaleway", "group": "web", "server_type": "DEV1-S", "image": "u", "zone": ZONE}),
        json!({"type": "ovh", "group": "web", "server_type": "b2-7", "image": "u", "region": REGION, "project": OVH_PROJECT}),
    ];
    for (block, (provider, says)) in blocks.iter().zip([
        ("hetzner", "Hetzner Cloud has no spot"),
        ("scaleway", "Scaleway Instances have no spot"),
        ("ovh", "OVHcloud Public Cloud has no spot"),
    ]) {
        for spot in [json!(true), json!({"share": 0.5})] {
            let p = problems(merge(block.clone(), json!({"spot": spot})));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].0, "target.spot");
            assert!(
                p[0].1
                    .starts_with(&format!("{provider} cannot run a spot/on-demand mix")),
                "{p:?}"
            );
            assert!(p[0].1.contains(says), "{p:?}");
        }
        // Asking for none is what every group gets anyway.
        assert_eq!(problems(merge(block.clone(), json!({"spot": false}))), []);
        assert_eq!(
            problems(merge(block.clone(), json!({"spot": {"share": 0}}))),
            []
        );
    }
    let hetzner = blocks[0].clone();
    assert_eq!(
        paths(merge(hetzner.clone(), json!({"spot": {"share": 1.5}}))),
        ["target.spot.share"]
    );
    assert_eq!(
        paths(merge(hetzner.clone(), json!({"spot": {"shares": 0.5}}))),
        ["target.spot.shares"]
    );
    assert_eq!(
        paths(merge(hetzner, json!({"spot": "yes"}))),
        ["target.spot"]
    );
}
