//! Stripe Checkout for new orders: `POST /api/v1/checkout` creates the order awaiting payment
//! and a Checkout Session through a real HTTP server speaking Stripe's API (form-encoded, with
//! an idempotency key and a pinned version); Stripe's webhooks then pay or call it off.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use kiln::config::Config;
use kiln::intake::config::StripeConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app_with};
use crate::peers::{Answer, HttpPeer, Request};

const SECRET: &str = "whsec_kiln_checkout_secret";
const API_KEY: &str = "sk_test_kiln_checkout";
const SESSION: &str = "cs_test_kiln_checkout_1";

fn sign(secret: &str, t: i64, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A Checkout Session event for the session kiln created, as Stripe sends it.
fn event(id: &str, topic: &str, reference: &str, payment_status: &str) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "type": topic,
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": {
            "id": SESSION, "object": "checkout.session", "mode": "payment",
            "client_reference_id": reference,
            "amount_total": 9600, "currency": "eur",
            "customer_details": { "name": "Giulia Bianchi", "email": "giulia@example.it" },
            "metadata": { "kiln_order": reference, "kiln_workflow": "print" },
            "payment_status": payment_status, "status": "complete",
        }},
    })
    .to_string()
}

async fn deliver(app: &TestApp, body: &str) {
    let res = app
        .client
        .post(format!("{}/hooks/stripe", app.base))
        .header("content-type", "application/json")
        .header("Stripe-Signature", sign(SECRET, chrono::Utc::now().timestamp(), body))
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
}

async fn settled(app: &TestApp) {
    let started = std::time::Instant::now();
    loop {
        let page: Value = app.get("/inbox").await.json().await.expect("json");
        let all = page["deliveries"].as_array().cloned().unwrap_or_default();
        if all.iter().all(|d| d["outcome"] != "pending" && d["outcome"] != "running") {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "deliveries never settled: {all:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Stripe's `POST /v1/checkout/sessions`, refusing what Stripe refuses about the encoding.
fn stripe_peer(req: &Request) -> Answer {
    if req.method != "POST" || req.path != "/v1/checkout/sessions" {
        return Answer::new(404, r#"{"error":{"message":"Unrecognized request URL","type":"invalid_request_error"}}"#);
    }
    if !req.header("content-type").starts_with("application/x-www-form-urlencoded") {
        return Answer::new(
            400,
            r#"{"error":{"message":"Invalid request: not form-encoded","type":"invalid_request_error"}}"#,
        );
    }
    let form = req.form();
    let has = |k: &str| form.iter().any(|(key, _)| key == k);
    if !has("mode") || !has("line_items[0][price_data][currency]") || !has("success_url") {
        return Answer::new(400, r#"{"error":{"message":"Missing required param","type":"invalid_request_error"}}"#);
    }
    Answer::new(
        200,
        json!({ "id": SESSION, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{SESSION}") })
            .to_string(),
    )
}

fn stripe(api_base: &str) -> impl FnOnce(&mut Config) {
    let api_base = api_base.to_owned();
    move |c: &mut Config| {
        c.intake.stripe = Some(StripeConfig {
            webhook_secrets: vec![SECRET.to_owned().into()],
            api_key: Some(API_KEY.to_owned().into()),
            api_base,
            api_version: "2024-06-20".to_owned(),
            default_workflow: "jobshop".to_owned(),
            success_url: None,
            cancel_url: None,
        });
    }
}

fn checkout_body() -> Value {
    json!({
        "workflow": "print",
        "customer": { "name": "Giulia Bianchi", "email": "giulia@example.it", "language": "it" },
        "items": [
            { "description": "Wedding invitations", "variant": "A6", "quantity": 120, "unit_amount": 80 },
            { "description": "Envelopes", "quantity": 120, "unit_amount": 20 },
        ],
        "currency": "EUR",
        "priority": "rush",
    })
}

#[tokio::test]
async fn a_checkout_reaches_stripe_form_encoded_and_the_order_waits_for_its_payment() {
    let api = HttpPeer::start(stripe_peer).await;
    let app = spawn_app_with(stripe(&api.base)).await;
    let res = app.post("/checkout", &checkout_body()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let out: Value = res.json().await.expect("json");
    assert_eq!(out["checkout_url"], format!("https://checkout.stripe.com/c/pay/{SESSION}"));
    assert_eq!(out["session_id"], SESSION);
    let reference = out["order"]["reference"].as_str().expect("reference").to_owned();
    let tracking_url = out["order"]["tracking_url"].as_str().expect("tracking url").to_owned();
    assert_eq!(out["order"]["status"], "awaiting_payment");

    // The request Stripe received, as Stripe's API takes it.
    let calls = api.requests();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.header("authorization"), format!("Bearer {API_KEY}"));
    assert_eq!(call.header("stripe-version"), "2024-06-20");
    assert!(call.header("idempotency-key").len() >= 16, "an idempotency key: {:?}", call.header("idempotency-key"));
    let form = call.form();
    let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("mode"), "payment");
    assert_eq!(get("client_reference_id"), reference);
    assert_eq!(get("metadata[kiln_order]"), reference);
    assert_eq!(get("success_url"), tracking_url, "the customer lands on their tracking page");
    assert_eq!(get("line_items[0][price_data][currency]"), "eur");
    assert_eq!(get("line_items[0][price_data][unit_amount]"), "80");
    assert_eq!(get("line_items[0][price_data][product_data][name]"), "Wedding invitations (A6)");
    assert_eq!(get("line_items[0][quantity]"), "120");
    assert_eq!(get("line_items[1][price_data][unit_amount]"), "20");
    assert_eq!(get("customer_email"), "giulia@example.it");

    // Not work for the shop yet: not open, and nobody was told.
    let open: Value = app.get("/orders?status=open").await.json().await.expect("json");
    assert!(!open.to_string().contains(&reference), "{open:#}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE kind = 'notify_staff'").await, 0);

    // Completed but unpaid (a bank debit): still waiting. Then paid: in its first stage.
    deliver(&app, &event("evt_c1", "checkout.session.completed", &reference, "unpaid")).await;
    settled(&app).await;
    assert_eq!(app.order(&reference).await["status"], "awaiting_payment");
    // As if the payment beat kiln's storing of the session id (or kiln died in between): the
    // order is found by the session's `client_reference_id`, and linked then.
    app.sql("DELETE FROM order_links").await;
    deliver(&app, &event("evt_c2", "checkout.session.async_payment_succeeded", &reference, "paid")).await;
    // A late copy of the unpaid completion changes nothing.
    deliver(&app, &event("evt_c3", "checkout.session.completed", &reference, "unpaid")).await;
    settled(&app).await;
    let order = app.order(&reference).await;
    assert_eq!(order["status"], "open");
    assert_eq!(order["stage"]["key"], "spec_review", "{order:#}");
    let kinds: Vec<String> =
        app.events(&reference).await.iter().map(|e| e["kind"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["created", "paid"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1, "no second order for the session");
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM order_links WHERE external_id = '{SESSION}'")).await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE kind = 'notify_staff'").await, 1, "the shop hears once");
}

#[tokio::test]
async fn an_expired_checkout_cancels_its_order_and_a_refusing_stripe_leaves_none_waiting() {
    let api = HttpPeer::start(stripe_peer).await;
    let app = spawn_app_with(stripe(&api.base)).await;
    let out: Value = app.post("/checkout", &checkout_body()).await.json().await.expect("json");
    let reference = out["order"]["reference"].as_str().expect("reference").to_owned();
    deliver(&app, &event("evt_x1", "checkout.session.expired", &reference, "unpaid")).await;
    settled(&app).await;
    assert_eq!(app.order(&reference).await["status"], "cancelled");

    // Stripe refuses the next one: a 502 naming Stripe, and the order is not left waiting.
    api.script([Answer::new(400, r#"{"error":{"message":"Invalid currency: zzz","type":"invalid_request_error"}}"#)]);
    let mut body = checkout_body();
    body["currency"] = json!("zzz");
    let res = app.post("/checkout", &body).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let p = problem(res).await;
    assert!(p["detail"].as_str().unwrap_or("").contains("Invalid currency"), "{p:#}");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders WHERE status = 'awaiting_payment'").await, 0);

    // Bad input names the field, and reaches no one.
    let mut bad = checkout_body();
    bad["items"][1]["unit_amount"] = json!(-5);
    let res = app.post("/checkout", &bad).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(problem(res).await.to_string().contains("items[1].unit_amount"));
    assert_eq!(api.count(), 2);
}
