//! Orders from Stripe: events signed exactly as Stripe documents it, posted to
//! `/hooks/stripe`, recorded once, applied once; line items read from a real HTTP server that
//! speaks Stripe's REST API.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use kiln::config::Config;
use kiln::intake::config::{StripeConfig, WorkshopConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, count_at, spawn_app_with};
use crate::peers::{Answer, HttpPeer};

const SECRET: &str = "whsec_kiln_test_current_secret";
const ROLLED: &str = "whsec_kiln_test_previous_secret";
const API_KEY: &str = "sk_test_kiln";

/// `Stripe-Signature` as Stripe computes it: `t={t},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`.
fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Checkout Session event as Stripe sends it (the fields kiln reads, and some it does not).
fn event(id: &str, topic: &str, session: &str, payment_status: &str) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now(),
        "livemode": false,
        "pending_webhooks": 1,
        "type": topic,
        "data": { "object": {
            "id": session,
            "object": "checkout.session",
            "amount_total": 12050,
            "currency": "eur",
            "customer_details": { "name": "Giulia Bianchi", "email": "giulia@example.it", "phone": "+393471234567" },
            "locale": "it",
            "metadata": { "kiln_workflow": "print" },
            "mode": "payment",
            "payment_status": payment_status,
            "status": "complete",
        }},
    })
    .to_string()
}

fn stripe(api_base: Option<&str>) -> impl FnOnce(&mut Config) {
    let api_base = api_base.map(str::to_owned);
    move |c: &mut Config| {
        c.intake.stripe = Some(StripeConfig {
            webhook_secrets: vec![SECRET.to_owned().into(), ROLLED.to_owned().into()],
            api_key: api_base.as_ref().map(|_| API_KEY.to_owned().into()),
            api_base: api_base.unwrap_or_else(|| "http://127.0.0.1:9".to_owned()),
            api_version: "2024-06-20".to_owned(),
            default_workflow: "jobshop".to_owned(),
            success_url: None,
            cancel_url: None,
        });
    }
}

async fn post(app: &TestApp, body: &str, signature: Option<String>) -> reqwest::Response {
    let mut req = app.client.post(format!("{}/hooks/stripe", app.base)).header("content-type", "application/json");
    if let Some(signature) = signature {
        req = req.header("Stripe-Signature", signature);
    }
    req.body(body.to_owned()).send().await.expect("request")
}

async fn deliver(app: &TestApp, body: &str) -> Value {
    let res = post(app, body, Some(sign(SECRET, now(), body))).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

async fn inbox(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app.get(&format!("/inbox{query}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.expect("json");
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits until no delivery is pending or being applied.
async fn settled(app: &TestApp) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let all = inbox(app, "").await;
        if all.iter().all(|d| d["outcome"] != "pending" && d["outcome"] != "running") {
            return all;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "deliveries never settled: {all:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn line_items_peer() -> impl Fn(&crate::peers::Request) -> Answer + Send + Sync + 'static {
    |req| {
        if req.path.ends_with("/line_items") {
            Answer::new(
                200,
                json!({
                    "object": "list",
                    "data": [
                        { "id": "li_1", "object": "item", "description": "Wedding invitations, letterpress",
                          "quantity": 120, "amount_subtotal": 9600, "amount_total": 9600, "currency": "eur",
                          "price": { "id": "price_1", "object": "price", "unit_amount": 80 } },
                        { "id": "li_2", "object": "item", "description": "Envelopes, cotton",
                          "quantity": 120, "amount_subtotal": 2450, "amount_total": 2450, "currency": "eur",
                          "price": { "id": "price_2", "object": "price", "unit_amount": 20 } },
                    ],
                    "has_more": false,
                    "url": "/v1/checkout/sessions/cs_test_1/line_items",
                })
                .to_string(),
            )
        } else {
            Answer::new(404, r#"{"error": {"message": "Unrecognized request URL", "type": "invalid_request_error"}}"#)
        }
    }
}

#[tokio::test]
async fn a_paid_session_becomes_one_order_however_often_and_concurrently_its_events_arrive() {
    let api = HttpPeer::start(line_items_peer()).await;
    let app = spawn_app_with(stripe(Some(&api.base))).await;
    let body = event("evt_1", "checkout.session.completed", "cs_test_1", "paid");
    assert_eq!(deliver(&app, &body).await["duplicate"], false);
    // The same event again, then eight copies at once, then the rolled secret's signature.
    assert_eq!(deliver(&app, &body).await["duplicate"], true);
    let copies = (0..8).map(|_| post(&app, &body, Some(sign(SECRET, now(), &body))));
    for res in futures::future::join_all(copies).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(post(&app, &body, Some(sign(ROLLED, now(), &body))).await.status(), StatusCode::OK);
    // Another event about the same session (a different id) is recorded but makes no order.
    deliver(&app, &event("evt_2", "checkout.session.async_payment_succeeded", "cs_test_1", "paid")).await;

    let all = settled(&app).await;
    assert_eq!(all.len(), 2, "one row per event id: {all:#?}");
    let first = all.iter().find(|d| d["event_id"] == "evt_1").expect("evt_1");
    assert_eq!(
        (first["outcome"].as_str(), first["topic"].as_str()),
        (Some("applied"), Some("checkout.session.completed"))
    );
    let reference = first["order"].as_str().expect("the order it made").to_owned();
    let second = all.iter().find(|d| d["event_id"] == "evt_2").expect("evt_2");
    assert_eq!(second["outcome"], "ignored");
    assert!(second["reason"].as_str().unwrap_or("").contains(&reference), "{second:#}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1, "one order");

    let order = app.order(&reference).await;
    assert_eq!(order["workflow"], "print", "metadata.kiln_workflow picks the workflow");
    assert_eq!(order["customer"]["name"], "Giulia Bianchi");
    assert_eq!(order["customer"]["email"], "giulia@example.it");
    assert_eq!(order["customer"]["language"], "it");
    assert_eq!(order["external_ids"]["stripe"], "cs_test_1");
    let items = crate::helpers::items_of(&order);
    assert_eq!(items, [("Wedding invitations, letterpress", 120), ("Envelopes, cotton", 120)]);
    assert!(order["notes"].as_str().unwrap_or("").contains("120.50 EUR"), "{}", order["notes"]);

    // Line items were read once, from Stripe's API, as Stripe's API is called.
    let calls = api.requests();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("GET", "/v1/checkout/sessions/cs_test_1/line_items")
    );
    assert_eq!(calls[0].header("authorization"), format!("Bearer {API_KEY}"));
    assert_eq!(calls[0].header("stripe-version"), "2024-06-20");

    // The inbox filters by source, outcome and order.
    assert_eq!(inbox(&app, "?outcome=applied").await.len(), 1);
    assert_eq!(inbox(&app, &format!("?order={reference}&source=stripe")).await.len(), 1);
    let res = app.get("/inbox?outcome=nope").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bad_signatures_are_refused_and_recorded_nowhere() {
    let app = spawn_app_with(stripe(None)).await;
    let body = event("evt_bad", "checkout.session.completed", "cs_test_bad", "paid");
    let tampered = body.replace("Giulia", "Mallory");
    let cases = [
        ("tampered body", tampered.clone(), Some(sign(SECRET, now(), &body))),
        ("wrong secret", body.clone(), Some(sign("whsec_someone_else", now(), &body))),
        ("no header", body.clone(), None),
        ("301 s old", body.clone(), Some(sign(SECRET, now() - 301, &body))),
        ("301 s ahead", body.clone(), Some(sign(SECRET, now() + 301, &body))),
        ("v0 only", body.clone(), Some(sign(SECRET, now(), &body).replace("v1=", "v0="))),
    ];
    for (case, payload, signature) in cases {
        let res = post(&app, &payload, signature).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        let problem: Value = res.json().await.expect("problem");
        assert_eq!(problem["field"], "Stripe-Signature", "{case}: {problem:#}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing recorded");
    // A signature 299 s old is still good.
    let res = post(&app, &body, Some(sign(SECRET, now() - 299, &body))).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unpaid_session_becomes_an_order_only_once_paid_whatever_order_the_events_come_in() {
    let app = spawn_app_with(stripe(None)).await;
    // In order: completed but unpaid (a bank debit), then the payment succeeds.
    deliver(&app, &event("evt_a1", "checkout.session.completed", "cs_test_a", "unpaid")).await;
    let all = settled(&app).await;
    assert_eq!(all[0]["outcome"], "parked", "{all:#?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0, "no order before the money");
    deliver(&app, &event("evt_a2", "checkout.session.async_payment_succeeded", "cs_test_a", "paid")).await;
    // Reversed: the payment success arrives before the completion.
    deliver(&app, &event("evt_b2", "checkout.session.async_payment_succeeded", "cs_test_b", "paid")).await;
    deliver(&app, &event("evt_b1", "checkout.session.completed", "cs_test_b", "unpaid")).await;
    // And a session that expires, and an event kiln does not act on.
    deliver(&app, &event("evt_c1", "checkout.session.expired", "cs_test_c", "unpaid")).await;
    deliver(
        &app,
        &json!({ "id": "evt_d1", "type": "charge.refunded", "data": { "object": { "id": "ch_1" } } }).to_string(),
    )
    .await;

    let all = settled(&app).await;
    let outcome = |id: &str| {
        let d = all.iter().find(|d| d["event_id"] == id).expect("recorded");
        (d["outcome"].as_str().unwrap_or("").to_owned(), d["order"].as_str().map(str::to_owned))
    };
    let (a2, a_order) = outcome("evt_a2");
    let (b2, b_order) = outcome("evt_b2");
    assert_eq!((a2.as_str(), b2.as_str()), ("applied", "applied"));
    assert_eq!(outcome("evt_a1").0, "ignored", "the parked completion settles once the order exists");
    assert_eq!(outcome("evt_b1").0, "ignored", "a late completion changes nothing");
    assert_eq!(outcome("evt_c1").0, "ignored");
    assert_eq!(outcome("evt_d1").0, "ignored");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2, "one order per paid session");
    // Both orders ended the same way, whichever event came first.
    let (a, b) = (app.order(&a_order.expect("a")).await, app.order(&b_order.expect("b")).await);
    assert_eq!((a["stage"]["key"].clone(), a["status"].clone()), (b["stage"]["key"].clone(), b["status"].clone()));
    // Without an API key the items are unknown, and the order says so.
    assert_eq!(a["items"][0]["description"], "Items unknown (see the order notes)");
    assert!(a["notes"].as_str().unwrap_or("").contains("no Stripe API key"), "{}", a["notes"]);
}

#[tokio::test]
async fn an_event_answered_before_a_crash_is_applied_after_the_restart() {
    // This node records and answers, but dies before applying anything.
    let first = spawn_app_with(|c| {
        stripe(None)(c);
        c.intake.apply = false;
    })
    .await;
    deliver(&first, &event("evt_crash", "checkout.session.completed", "cs_test_crash", "paid")).await;
    assert_eq!(first.count("SELECT COUNT(*) FROM orders").await, 0);
    let (url, key) = (first.db_url.clone(), first.secret_key.clone());
    // The restarted kiln, on the same database.
    let second = spawn_app_with(move |c| {
        stripe(None)(c);
        c.database_url = Some(url.into());
        c.secret_key = Some(key.into());
    })
    .await;
    let all = settled(&second).await;
    assert_eq!(all[0]["outcome"], "applied", "{all:#?}");
    assert_eq!(second.count("SELECT COUNT(*) FROM orders").await, 1);
}

#[tokio::test]
async fn an_operator_replays_a_delivery_and_nothing_is_done_twice() {
    let app = spawn_app_with(stripe(None)).await;
    deliver(&app, &event("evt_r", "checkout.session.completed", "cs_test_r", "paid")).await;
    let id = settled(&app).await[0]["id"].as_i64().expect("id");
    let res = app.client.post(app.api(&format!("/inbox/{id}/replay"))).bearer_auth(&app.write_token).send().await;
    assert_eq!(res.expect("replay").status(), StatusCode::ACCEPTED);
    let all = settled(&app).await;
    // Replayed, it finds the order it made: still applied, to the same order, and no second one.
    assert_eq!((all[0]["outcome"].as_str(), all[0]["order"].as_str()), (Some("applied"), Some("K-000001")), "{all:#?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
    let res = app.client.post(app.api("/inbox/999999/replay")).bearer_auth(&app.write_token).send().await;
    assert_eq!(res.expect("replay").status(), StatusCode::NOT_FOUND);
    let res = app.client.post(app.api(&format!("/inbox/{id}/replay"))).bearer_auth(&app.read_token).send().await;
    assert_eq!(res.expect("replay").status(), StatusCode::FORBIDDEN, "replaying needs a write token");
}

// The workshop system: Standard Webhooks in.

const WORKSHOP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The three `webhook-*` headers for `body`, as the Standard Webhooks libraries make them.
fn standard_headers(id: &str, t: i64, body: &str) -> [(&'static str, String); 3] {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(WORKSHOP_SECRET.trim_start_matches("whsec_")).expect("base64 key");
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).expect("any key");
    mac.update(format!("{id}.{t}.{body}").as_bytes());
    let signature = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
    [("webhook-id", id.to_owned()), ("webhook-timestamp", t.to_string()), ("webhook-signature", signature)]
}

fn workshop(c: &mut Config) {
    c.intake.workshop = Some(WorkshopConfig { secrets: vec![WORKSHOP_SECRET.to_owned().into()] });
}

async fn post_workshop(app: &TestApp, id: &str, body: &str, t: i64) -> reqwest::Response {
    let mut req = app.client.post(format!("{}/hooks/workshop", app.base)).header("content-type", "application/json");
    for (name, value) in standard_headers(id, t, body) {
        req = req.header(name, value);
    }
    req.body(body.to_owned()).send().await.expect("request")
}

fn moved(reference: &str, stage: &str, at: &str, extra: Value) -> String {
    let mut body = json!({ "type": "order.stage_changed", "occurred_at": at, "order": { "reference": reference }, "stage": stage });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

#[tokio::test]
async fn the_workshop_system_moves_orders_with_notes_and_photos_once() {
    let photo = crate::fixtures::jpeg(&crate::fixtures::photo_like(64, 48));
    let bench = HttpPeer::start(move |req| {
        if req.path == "/photos/block.jpg" {
            Answer::bytes(200, "image/jpeg", photo.clone())
        } else {
            Answer::new(404, "no such photo")
        }
    })
    .await;
    let app = spawn_app_with(workshop).await;
    let reference = app.new_order("stone").await;
    let extra = json!({ "note": "Your block is here", "photo_urls": [format!("{}/photos/block.jpg", bench.base)] });
    let body = moved(&reference, "block_selection", "2026-12-03T09:00:00Z", extra);
    let res = post_workshop(&app, "msg_1", &body, now()).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The same message again (a retry keeps its webhook-id): recorded once.
    let res = post_workshop(&app, "msg_1", &body, now()).await;
    assert_eq!(res.json::<Value>().await.expect("json")["duplicate"], true);
    let all = settled(&app).await;
    assert_eq!((all.len(), all[0]["outcome"].as_str()), (1, Some("applied")), "{all:#?}");
    let order = app.order(&reference).await;
    assert_eq!(order["stage"]["key"], "block_selection");
    let events = app.events(&reference).await;
    let last = events.last().expect("an event");
    assert_eq!((last["actor"].as_str(), last["source"].as_str()), (Some("workshop"), Some("webhook")));
    assert_eq!(last["note"], "Your block is here");
    assert_eq!(last["photo_ids"].as_array().map(Vec::len), Some(1), "the bench photo came along: {last:#}");

    // A photo URL the bench cannot serve is left out, and the move says so.
    let body = moved(
        &reference,
        "fabrication",
        "2026-12-03T10:00:00Z",
        json!({ "photo_urls": [format!("{}/photos/missing.jpg", bench.base)] }),
    );
    assert_eq!(post_workshop(&app, "msg_2", &body, now()).await.status(), StatusCode::OK);
    settled(&app).await;
    assert_eq!(app.order(&reference).await["stage"]["key"], "fabrication");
    let events = app.events(&reference).await;
    let internal = events.last().and_then(|e| e["internal_note"].as_str()).unwrap_or("").to_owned();
    assert!(internal.contains("missing.jpg") && internal.contains("404"), "{internal}");

    // Bad signatures are refused and recorded nowhere.
    let before = app.count("SELECT COUNT(*) FROM inbox").await;
    let tampered = body.replace("fabrication", "delivered");
    let mut req = app.client.post(format!("{}/hooks/workshop", app.base));
    for (name, value) in standard_headers("msg_3", now(), &body) {
        req = req.header(name, value);
    }
    let res = req.body(tampered).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = post_workshop(&app, "msg_4", &body, now() - 301).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a stale timestamp");
    let res = app.client.post(format!("{}/hooks/workshop", app.base)).body(body.clone()).send().await.expect("req");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no headers");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, before, "nothing recorded");
}

#[tokio::test]
async fn early_late_and_backward_workshop_events_are_parked_or_ignored_with_a_reason() {
    let app = spawn_app_with(workshop).await;
    // An event for an order that does not exist yet waits for it.
    let early = moved("K-000001", "block_selection", "2026-12-03T09:00:00Z", json!({}));
    assert_eq!(post_workshop(&app, "msg_early", &early, now()).await.status(), StatusCode::OK);
    let all = settled(&app).await;
    assert_eq!(all[0]["outcome"], "parked", "{all:#?}");
    assert!(all[0]["reason"].as_str().unwrap_or("").contains("K-000001"));
    let reference = app.new_order("stone").await;
    assert_eq!(reference, "K-000001");
    let started = std::time::Instant::now();
    while app.order(&reference).await["stage"]["key"] != "block_selection" {
        assert!(started.elapsed() < Duration::from_secs(10), "the parked event was never applied");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(settled(&app).await[0]["outcome"], "applied");

    // An event older than the one applied, and one that would move the order back.
    let older = moved(&reference, "fabrication", "2026-12-03T08:00:00Z", json!({}));
    post_workshop(&app, "msg_older", &older, now()).await;
    let back = moved(&reference, "quarry_extraction", "2026-12-03T11:00:00Z", json!({}));
    post_workshop(&app, "msg_back", &back, now()).await;
    let unreadable = json!({ "type": "order.stage_changed", "stage": "x" }).to_string();
    post_workshop(&app, "msg_bad", &unreadable, now()).await;
    let all = settled(&app).await;
    let reason = |id: &str| {
        let d = all.iter().find(|d| d["event_id"] == id).expect("recorded");
        assert_eq!(d["outcome"], "ignored", "{d:#}");
        d["reason"].as_str().unwrap_or("").to_owned()
    };
    assert!(reason("msg_older").contains("older than"), "{}", reason("msg_older"));
    assert!(reason("msg_back").contains("backwards"), "{}", reason("msg_back"));
    assert!(reason("msg_bad").contains("occurred_at"), "{}", reason("msg_bad"));
    assert_eq!(app.order(&reference).await["stage"]["key"], "block_selection", "nothing moved it back");
}

/// A Checkout Session object as Stripe's API lists it.
fn session_object(id: &str, payment_status: &str) -> Value {
    let body = event("evt_unused", "checkout.session.completed", id, payment_status);
    serde_json::from_str::<Value>(&body).expect("json")["data"]["object"].clone()
}

#[tokio::test]
async fn reconciling_creates_the_orders_a_dropped_webhook_missed_once() {
    let items = line_items_peer();
    let api = HttpPeer::start(move |req| {
        if req.path != "/v1/checkout/sessions" {
            return items(req);
        }
        // Two pages, as Stripe paginates: `has_more` and `starting_after`.
        let query = req.query.clone().unwrap_or_default();
        let page = if query.contains("starting_after=cs_test_b") {
            json!({ "object": "list", "data": [session_object("cs_test_c", "unpaid"), session_object("cs_test_d", "paid")], "has_more": false })
        } else {
            json!({ "object": "list", "data": [session_object("cs_test_a", "paid"), session_object("cs_test_b", "paid")], "has_more": true })
        };
        Answer::new(200, page.to_string())
    })
    .await;
    let app = spawn_app_with(stripe(Some(&api.base))).await;
    // Session a's webhook arrived; b's and d's were dropped.
    deliver(&app, &event("evt_a", "checkout.session.completed", "cs_test_a", "paid")).await;
    settled(&app).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);

    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("kiln.toml");
    let toml = format!(
        "[intake.stripe]\nwebhook_secrets = [\"{SECRET}\"]\napi_key = \"{API_KEY}\"\napi_base = \"{}\"\ndefault_workflow = \"jobshop\"\n",
        api.base
    );
    std::fs::write(&config, toml).expect("write");
    // Awaited, not blocking: the Stripe peer answers on this test's runtime.
    let reconcile = || async {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .env_remove("KILN_CONFIG")
            .env("KILN_DATABASE_URL", &app.db_url)
            .env("KILN_SECRET_KEY", &app.secret_key)
            .env("KILN_DATA_DIR", dir.path())
            .arg("--config")
            .arg(&config)
            .args(["reconcile", "stripe", "--since", "3d"])
            .output()
            .await
            .expect("kiln runs")
    };
    let first = reconcile().await;
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{out}{}", String::from_utf8_lossy(&first.stderr));
    assert!(
        out.contains("4 complete sessions") && out.contains("2 orders created, 1 already present, 1 unpaid"),
        "{out}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 3);
    let lists: Vec<String> =
        api.requests().iter().filter(|r| r.path == "/v1/checkout/sessions").filter_map(|r| r.query.clone()).collect();
    assert!(lists.iter().all(|q| q.contains("status=complete") && q.contains("created%5Bgte%5D=")), "{lists:?}");

    let second = reconcile().await;
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("0 orders created, 3 already present"), "{out}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 3, "nothing created twice");
}

/// A real `kiln serve` process on `url`, with Stripe intake on.
async fn start_kiln(dir: &std::path::Path, url: &str) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let config = dir.join("kiln.toml");
    // A short lease, so that deliveries a killed applier held are taken again within the test.
    let toml = format!(
        "[intake]\nlease = \"2s\"\n[intake.stripe]\nwebhook_secrets = [\"{SECRET}\"]\ndefault_workflow = \"jobshop\"\n"
    );
    std::fs::write(&config, toml).expect("write config");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env_remove("KILN_CONFIG")
        .env("KILN_DATABASE_URL", url)
        .env("KILN_DATA_DIR", dir)
        .env("KILN_BIND", format!("127.0.0.1:{port}"))
        .env("KILN_LOG", "warn")
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kiln starts");
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while !reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == StatusCode::OK) {
        assert!(started.elapsed() < Duration::from_secs(30), "kiln never answered /healthz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

#[tokio::test]
async fn a_kiln_killed_right_after_answering_loses_no_event_and_doubles_no_order() {
    let dir = tempfile::tempdir().expect("dir");
    let url = crate::helpers::test_database_url(dir.path()).await;
    let client = reqwest::Client::new();
    let mut sessions = 0;
    for round in 0..3 {
        let (mut kiln, base) = start_kiln(dir.path(), &url).await;
        // A burst of events, answered; the process is killed (SIGKILL) the moment the last
        // answer arrives, wherever its applier is.
        let posts = (0..20).map(|i| {
            let body = event(
                &format!("evt_{round}_{i}"),
                "checkout.session.completed",
                &format!("cs_test_{round}_{i}"),
                "paid",
            );
            let signature = sign(SECRET, now(), &body);
            client.post(format!("{base}/hooks/stripe")).header("Stripe-Signature", signature).body(body).send()
        });
        for res in futures::future::join_all(posts).await {
            assert_eq!(res.expect("answered").status(), StatusCode::OK);
        }
        kiln.start_kill().expect("SIGKILL");
        let _ = kiln.wait().await;
        sessions += 20;
    }
    // The restarted kiln applies whatever the killed ones had only recorded.
    let (_kiln, _) = start_kiln(dir.path(), &url).await;
    let started = std::time::Instant::now();
    loop {
        let open = count_at(&url, "SELECT COUNT(*) FROM inbox WHERE outcome IN ('pending', 'running')").await;
        if open == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{open} deliveries never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count_at(&url, "SELECT COUNT(*) FROM inbox WHERE outcome = 'applied'").await, sessions);
    assert_eq!(count_at(&url, "SELECT COUNT(*) FROM orders").await, sessions, "one order per session");
    assert_eq!(count_at(&url, "SELECT COUNT(*) FROM order_links").await, sessions);
}
