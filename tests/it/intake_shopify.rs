//! Orders from Shopify: webhooks signed as Shopify documents it (base64 HMAC-SHA256 of the raw
//! body with the app's secret) posted to `/hooks/shopify`, deduplicated three ways, routed by
//! tag, SKU prefix or product type (read from a real HTTP server speaking the Admin GraphQL
//! API), the compliance topics, and the stage written back with `metafieldsSet`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use hmac::{KeyInit, Mac};
use kiln::config::Config;
use kiln::intake::config::{MetafieldConfig, ShopifyConfig, ShopifyRoute};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::peers::{Answer, HttpPeer, Request};

const SHOP: &str = "marble-works.myshopify.com";
const OLD: &str = "shopify_app_secret_old";
const NEW: &str = "shopify_app_secret_new";
const TOKEN: &str = "shpat_kiln_test";

/// `X-Shopify-Hmac-Sha256` as Shopify computes it.
fn sign(secret: &str, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An order as Shopify's order webhooks carry it (the REST Order resource, trimmed).
fn order(id: i64, tags: &str, sku: &str, product_id: i64, email: &str, updated_at: &str) -> String {
    json!({
        "id": id, "admin_graphql_api_id": format!("gid://shopify/Order/{id}"), "name": format!("#{}", id % 10000),
        "email": email, "phone": "+39 347 123 4567", "customer_locale": "it",
        "created_at": "2026-12-04T09:00:00+01:00", "updated_at": updated_at,
        "currency": "EUR", "total_price": "1200.00", "financial_status": "paid", "tags": tags,
        "customer": { "id": 7_700_001, "first_name": "Marta", "last_name": "Rossi", "email": email },
        "line_items": [{ "id": id * 10, "title": "Kitchen countertop", "variant_title": "240 x 62 cm",
                         "quantity": 1, "sku": sku, "product_id": product_id, "variant_id": 1 }],
        "cancelled_at": null,
    })
    .to_string()
}

async fn post(
    app: &TestApp,
    topic: &str,
    webhook_id: &str,
    event_id: &str,
    body: &str,
    hmac: Option<String>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/hooks/shopify", app.base))
        .header("content-type", "application/json")
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Event-Id", event_id)
        .header("X-Shopify-API-Version", "2025-01")
        .header("X-Shopify-Triggered-At", "2026-12-04T08:00:00.000Z");
    if let Some(hmac) = hmac {
        req = req.header("X-Shopify-Hmac-Sha256", hmac);
    }
    req.body(body.to_owned()).send().await.expect("request")
}

async fn deliver(app: &TestApp, topic: &str, webhook_id: &str, event_id: &str, body: &str) -> Value {
    let res = post(app, topic, webhook_id, event_id, body, Some(sign(NEW, body))).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

async fn settled(app: &TestApp) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let page: Value = app.get("/inbox?source=shopify").await.json().await.expect("json");
        let all = page["deliveries"].as_array().cloned().unwrap_or_default();
        if all.iter().all(|d| d["outcome"] != "pending" && d["outcome"] != "running") {
            return all;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "deliveries never settled: {all:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The Admin API: GraphQL `nodes` (product types) and `metafieldsSet` (the first answer has
/// `userErrors`, as Shopify reports a refused write), and REST `orders.json`.
fn admin_peer(writes: Arc<AtomicUsize>) -> impl Fn(&Request) -> Answer + Send + Sync + 'static {
    move |req| {
        if req.header("x-shopify-access-token") != TOKEN {
            return Answer::new(401, r#"{"errors":"[API] Invalid API key or access token"}"#);
        }
        if req.path == "/admin/api/2025-01/graphql.json" {
            let body = req.json();
            let query = body["query"].as_str().unwrap_or("");
            if query.contains("nodes(ids:") {
                let nodes: Vec<Value> = body["variables"]["ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|id| {
                        let kind =
                            if id.as_str() == Some("gid://shopify/Product/7001") { "Countertop" } else { "Other" };
                        json!({ "id": id, "productType": kind })
                    })
                    .collect();
                return Answer::new(200, json!({ "data": { "nodes": nodes } }).to_string());
            }
            if query.contains("metafieldsSet(") {
                let answer = if writes.fetch_add(1, Ordering::SeqCst) == 0 {
                    json!({ "data": { "metafieldsSet": { "metafields": [], "userErrors": [
                        { "field": ["metafields", "0", "value"], "message": "Value is invalid JSON", "code": "INVALID_VALUE" }
                    ]}}})
                } else {
                    json!({ "data": { "metafieldsSet": { "metafields": [{ "id": "gid://shopify/Metafield/1" }], "userErrors": [] }}})
                };
                return Answer::new(200, answer.to_string());
            }
            return Answer::new(200, r#"{"errors":[{"message":"unknown query"}]}"#);
        }
        if req.path == "/admin/api/2025-01/orders.json" {
            // Two pages, as Shopify paginates: `Link: <…page_info=…>; rel="next"`.
            let query = req.query.clone().unwrap_or_default();
            let at = "2026-12-04T10:00:00+01:00";
            let parse = |o: String| serde_json::from_str::<Value>(&o).unwrap_or_default();
            if query.contains("page_info=p2") {
                let mut cancelled = parse(order(9_003, "", "X", 1, "z@example.it", at));
                cancelled["cancelled_at"] = json!(at);
                return Answer::new(200, json!({ "orders": [cancelled] }).to_string());
            }
            let page = json!({ "orders": [parse(order(9_001, "", "X", 1, "x@example.it", at)), parse(order(9_002, "wedding", "X", 1, "y@example.it", at))] });
            let next = format!(
                "<http://{}/admin/api/2025-01/orders.json?limit=250&page_info=p2>; rel=\"next\"",
                req.header("host")
            );
            return Answer::new(200, page.to_string()).header("link", next);
        }
        Answer::new(404, r#"{"errors":"Not Found"}"#)
    }
}

fn shopify(admin_base: &str) -> impl FnOnce(&mut Config) {
    let admin_base = admin_base.to_owned();
    move |c: &mut Config| {
        let route = |tag: Option<&str>, sku: Option<&str>, kind: Option<&str>, wf: &str| ShopifyRoute {
            tag: tag.map(str::to_owned),
            sku_prefix: sku.map(str::to_owned),
            product_type: kind.map(str::to_owned),
            workflow: wf.to_owned(),
        };
        c.intake.shopify = Some(ShopifyConfig {
            shop_domain: SHOP.to_owned(),
            webhook_secrets: vec![OLD.to_owned().into(), NEW.to_owned().into()],
            access_token: Some(TOKEN.to_owned().into()),
            api_version: "2025-01".to_owned(),
            admin_base: Some(admin_base),
            metafield: Some(MetafieldConfig { namespace: "kiln".to_owned(), key: "stage".to_owned() }),
            default_workflow: "jobshop".to_owned(),
            routes: vec![
                route(Some("wedding"), None, None, "print"),
                route(None, Some("JW-"), None, "jewelry"),
                route(None, None, Some("Countertop"), "stone"),
            ],
        });
        c.notify.worker.backoff = Duration::from_millis(10);
        c.notify.worker.max_backoff = Duration::from_millis(20);
    }
}

#[tokio::test]
async fn one_shopify_order_under_two_webhook_ids_is_one_order_routed_by_product_type() {
    let writes = Arc::new(AtomicUsize::new(0));
    let admin = HttpPeer::start(admin_peer(writes.clone())).await;
    let app = spawn_app_with(shopify(&admin.base)).await;
    let body = order(5_001, "", "ST-CALA-1", 7001, "marta@example.it", "2026-12-04T09:00:00+01:00");

    // Signed with the old secret, then the same order as orders/paid signed with the new one.
    let res = post(&app, "orders/create", "wh-1", "ev-1", &body, Some(sign(OLD, &body))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(deliver(&app, "orders/paid", "wh-2", "ev-2", &body).await["duplicate"], false);
    // The same webhook id again, and the same (topic, event id) under a new webhook id.
    assert_eq!(deliver(&app, "orders/create", "wh-1", "ev-1", &body).await["duplicate"], true);
    assert_eq!(deliver(&app, "orders/create", "wh-3", "ev-1", &body).await["duplicate"], true);
    // Tampered, unsigned, signed by someone else: 401 and recorded nowhere.
    let tampered = body.replace("Marta", "Mallory");
    assert_eq!(
        post(&app, "orders/create", "wh-9", "ev-9", &tampered, Some(sign(NEW, &body))).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(&app, "orders/create", "wh-9", "ev-9", &body, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&app, "orders/create", "wh-9", "ev-9", &body, Some(sign("other", &body))).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let all = settled(&app).await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1, "one order for one Shopify order");
    let applied = all.iter().find(|d| d["outcome"] == "applied").expect("one applied");
    let reference = applied["order"].as_str().expect("order").to_owned();
    let o = app.order(&reference).await;
    assert_eq!(o["workflow"], "stone", "the product type route: {o:#}");
    assert_eq!(o["customer"]["name"], "Marta Rossi");
    assert_eq!(o["customer"]["email"], "marta@example.it");
    assert_eq!(o["customer"]["phone"], "+393471234567");
    assert_eq!(o["customer"]["language"], "it");
    assert_eq!(o["external_ids"]["shopify"], "5001");
    assert_eq!(crate::helpers::items_of(&o), [("Kitchen countertop", 1)]);
    let types = admin.requests().iter().filter(|r| r.json()["query"].as_str().unwrap_or("").contains("nodes(")).count();
    assert_eq!(types, 1, "product types read once");

    // The stage is written back: the first answer's userErrors fail the attempt, the retry lands.
    let started = std::time::Instant::now();
    while writes.load(Ordering::SeqCst) < 2 {
        app.drain_outbox().await;
        assert!(started.elapsed() < Duration::from_secs(10), "the write-back was not retried");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let sets: Vec<Value> = admin
        .requests()
        .iter()
        .map(Request::json)
        .filter(|b| b["query"].as_str().unwrap_or("").contains("metafieldsSet("))
        .collect();
    let input = &sets[1]["variables"]["metafields"][0];
    assert_eq!(input["ownerId"], "gid://shopify/Order/5001");
    assert_eq!(
        (input["namespace"].as_str(), input["key"].as_str(), input["type"].as_str()),
        (Some("kiln"), Some("stage"), Some("json"))
    );
    let value: Value = serde_json::from_str(input["value"].as_str().unwrap_or("")).expect("a JSON value");
    assert_eq!(value["key"], "quarry_extraction");
    assert!(value["tracking_url"].as_str().is_some_and(|u| u.contains("/t/")), "{value:#}");
    let failed = app.count("SELECT COUNT(*) FROM outbox_attempts WHERE detail LIKE '%userErrors%'").await;
    assert_eq!(failed, 1, "the refused write is logged as a failed attempt");
}

#[tokio::test]
async fn routes_updates_cancellations_and_early_events_apply_in_any_order() {
    let admin = HttpPeer::start(admin_peer(Arc::default())).await;
    let app = spawn_app_with(shopify(&admin.base)).await;
    // An update and a cancellation that arrive before their order: parked, then applied.
    let early = order(6_002, "", "JW-RING-7", 2, "old@example.it", "2026-12-04T10:00:00+01:00");
    let update = order(6_002, "", "JW-RING-7", 2, "new@example.it", "2026-12-04T11:00:00+01:00");
    deliver(&app, "orders/updated", "wh-u1", "ev-u1", &update).await;
    let all = settled(&app).await;
    assert_eq!(all[0]["outcome"], "parked", "{all:#?}");
    deliver(&app, "orders/create", "wh-c1", "ev-c1", &early).await;
    deliver(
        &app,
        "orders/create",
        "wh-c2",
        "ev-c2",
        &order(6_003, "Wedding, gift", "X-1", 3, "b@example.it", "2026-12-04T10:00:00+01:00"),
    )
    .await;
    deliver(
        &app,
        "orders/create",
        "wh-c3",
        "ev-c3",
        &order(6_004, "", "X-2", 4, "c@example.it", "2026-12-04T10:00:00+01:00"),
    )
    .await;
    let all = settled(&app).await;
    assert!(all.iter().all(|d| d["outcome"] == "applied"), "{all:#?}");
    let workflow_of = |id: i64| {
        let all = all.clone();
        async move {
            let d = all.iter().find(|d| {
                d["topic"] == "orders/create" && d["subject"].as_str().is_some_and(|s| s.ends_with(&id.to_string()))
            });
            d.and_then(|d| d["order"].as_str()).map(str::to_owned).expect("an order")
        }
    };
    let jewelry = workflow_of(6_002).await;
    let o = app.order(&jewelry).await;
    assert_eq!(o["workflow"], "jewelry", "the SKU prefix route");
    assert_eq!(o["customer"]["email"], "new@example.it", "the parked update applied after the create");
    assert_eq!(app.order(&workflow_of(6_003).await).await["workflow"], "print", "the tag route");
    assert_eq!(app.order(&workflow_of(6_004).await).await["workflow"], "jobshop", "the default");

    // An older update arriving late is ignored; a cancellation cancels.
    deliver(&app, "orders/updated", "wh-u0", "ev-u0", &early).await;
    deliver(&app, "orders/cancelled", "wh-x1", "ev-x1", &update).await;
    let all = settled(&app).await;
    let late = all.iter().find(|d| d["event_id"] == "orders/updated:ev-u0").expect("late update");
    assert_eq!(late["outcome"], "ignored", "{late:#}");
    let o = app.order(&jewelry).await;
    assert_eq!((o["customer"]["email"].as_str(), o["status"].as_str()), (Some("new@example.it"), Some("cancelled")));
}

#[tokio::test]
async fn customers_redact_erases_the_person_and_keeps_the_audit_trail_whole() {
    let admin = HttpPeer::start(admin_peer(Arc::default())).await;
    let app = spawn_app_with(shopify(&admin.base)).await;
    deliver(
        &app,
        "orders/create",
        "wh-1",
        "ev-1",
        &order(8_001, "", "X", 1, "marta@example.it", "2026-12-04T10:00:00+01:00"),
    )
    .await;
    let changed = order(8_001, "", "X", 1, "marta.rossi@example.it", "2026-12-04T11:00:00+01:00");
    deliver(&app, "orders/updated", "wh-2", "ev-2", &changed).await;
    let all = settled(&app).await;
    let reference = all.iter().find_map(|d| d["order"].as_str()).expect("order").to_owned();
    let before = app.events(&reference).await;
    assert!(before.to_vec().iter().any(|e| e.to_string().contains("marta.rossi@example.it")), "{before:#?}");

    let request = json!({ "shop_id": 1, "shop_domain": SHOP, "customer": { "id": 7_700_001, "email": "marta.rossi@example.it", "phone": "+393471234567" },
        "orders_requested": [8001], "data_request": { "id": 9999 } })
    .to_string();
    deliver(&app, "customers/data_request", "wh-3", "ev-3", &request).await;
    let all = settled(&app).await;

    // The export can be downloaded, with a write token (it holds personal data).
    let export = all.iter().find(|d| d["topic"] == "customers/data_request").expect("data request");
    let reason = export["reason"].as_str().unwrap_or("").to_owned();
    let id = reason.rsplit('/').next().expect("an export id").to_owned();
    assert_eq!(app.get(&format!("/data-exports/{id}")).await.status(), StatusCode::FORBIDDEN);
    let download = || async {
        let url = app.api(&format!("/data-exports/{id}"));
        app.client.get(url).bearer_auth(&app.write_token).send().await.expect("get")
    };
    let res = download().await;
    assert_eq!(res.status(), StatusCode::OK, "{reason}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["orders"][0]["reference"], reference.as_str());
    assert_eq!(body["orders"][0]["customer"]["email"], "marta.rossi@example.it");

    let redact = json!({ "shop_id": 1, "shop_domain": SHOP, "customer": { "id": 7_700_001, "email": "marta.rossi@example.it", "phone": "+393471234567" },
        "orders_to_redact": [8001] })
    .to_string();
    deliver(&app, "customers/redact", "wh-4", "ev-4", &redact).await;
    let all = settled(&app).await;
    let erased = all.iter().find(|d| d["topic"] == "customers/redact").expect("redact");
    assert_eq!(erased["outcome"], "applied", "{erased:#}");
    // The export, and every webhook body naming the person, are gone with the person.
    assert_eq!(download().await.status(), StatusCode::NOT_FOUND);
    let inbox = serde_json::to_string(&all).expect("json");
    assert!(!inbox.contains("marta") && !inbox.contains("Marta"), "{inbox}");

    let o = app.order(&reference).await;
    let name = o["customer"]["name"].as_str().unwrap_or("");
    assert!(name.starts_with("Customer ") && !name.contains("Marta"), "{o:#}");
    assert_eq!((o["customer"]["email"].clone(), o["customer"]["phone"].clone()), (Value::Null, Value::Null));
    let after = app.events(&reference).await;
    assert_eq!(after.len(), before.len() + 1, "every event kept, and the erasure recorded");
    for (a, b) in before.iter().zip(&after) {
        assert_eq!((&a["id"], &a["kind"], &a["created_at"]), (&b["id"], &b["kind"], &b["created_at"]));
    }
    let text = serde_json::to_string(&after).expect("json");
    assert!(!text.contains("marta") && !text.contains("Marta"), "{text}");
    // Outside a redaction the audit log still refuses rewrites.
    let rewrite = "UPDATE order_events SET note = 'x'";
    let refused = if app.db_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.expect("connect");
        sqlx::query(rewrite).execute(&pool).await.is_err()
    } else {
        let pool = sqlx::PgPool::connect(&app.db_url).await.expect("connect");
        sqlx::query(rewrite).execute(&pool).await.is_err()
    };
    assert!(refused, "order_events stays append-only");
}

#[tokio::test]
async fn reconciling_creates_the_shopify_orders_a_dropped_webhook_missed_once() {
    let admin = HttpPeer::start(admin_peer(Arc::default())).await;
    let app = spawn_app_with(shopify(&admin.base)).await;
    deliver(
        &app,
        "orders/create",
        "wh-1",
        "ev-1",
        &order(9_001, "", "X", 1, "x@example.it", "2026-12-04T10:00:00+01:00"),
    )
    .await;
    settled(&app).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);

    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("kiln.toml");
    let toml = format!(
        "[intake.shopify]\nshop_domain = \"{SHOP}\"\nwebhook_secrets = [\"{NEW}\"]\naccess_token = \"{TOKEN}\"\n\
         api_version = \"2025-01\"\nadmin_base = \"{}\"\ndefault_workflow = \"jobshop\"\n\
         [[intake.shopify.routes]]\ntag = \"wedding\"\nworkflow = \"print\"\n",
        admin.base
    );
    std::fs::write(&config, toml).expect("write");
    // Awaited, not blocking: the Admin API peer answers on this test's runtime.
    let reconcile = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env_remove("KILN_CONFIG")
            .env("KILN_DATABASE_URL", &app.db_url)
            .env("KILN_SECRET_KEY", &app.secret_key)
            .env("KILN_DATA_DIR", dir.path())
            .arg("--config")
            .arg(&config)
            .args(["reconcile", "shopify", "--since", "3d"])
            .output()
            .await
            .expect("kiln runs")
    };
    let first = reconcile().await;
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{out}{}", String::from_utf8_lossy(&first.stderr));
    assert!(
        out.contains("3 Shopify orders") && out.contains("1 orders created, 1 already present, 1 cancelled"),
        "{out}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders WHERE workflow = 'print'").await, 1, "routed like a webhook");
    let lists: Vec<String> =
        admin.requests().iter().filter(|r| r.path.ends_with("/orders.json")).filter_map(|r| r.query.clone()).collect();
    assert!(lists[0].contains("status=any") && lists[0].contains("created_at_min="), "{lists:?}");

    let second = reconcile().await;
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("0 orders created, 2 already present"), "{out}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2, "nothing created twice");
}
