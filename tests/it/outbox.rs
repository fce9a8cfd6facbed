//! The outbox worker under pressure: receivers slower than the lease, several workers,
//! throttled providers and late sends. Each message goes out once, in its order's order, and
//! says what was true when its event happened.

use std::collections::HashMap;
use std::time::Duration;

use kiln::notify::Notifier;
use kiln::notify::config::TwilioConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestApp, order_body, spawn_app_with};
use crate::notifications::{NEW_SECRET, WAIT, create, quick_worker, wait_messages, webhook};
use crate::peers::{Answer, HttpPeer};

/// Waits until `query` counts `n`.
async fn wait_count(app: &TestApp, query: &str, n: i64, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        let got = app.count(query).await;
        if got >= n {
            return;
        }
        assert!(started.elapsed() < within, "{query}: {got} of {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_slower_than_the_lease_gets_each_message_once_from_two_workers() {
    const JOBS: i64 = 12;
    let receiver = HttpPeer::start(|_| Answer::new(200, "ok")).await;
    let lease = kiln::notify::config::MIN_LEASE;
    // Every answer takes longer than the whole lease.
    receiver.delay(lease + Duration::from_secs(1));
    let url = format!("{}/slow", receiver.base);
    let app = spawn_app_with(move |c| {
        let w = &mut c.notify.worker;
        w.poll_interval = Duration::from_millis(50);
        w.lease = lease;
        // Small batches sent two at a time: the last of a batch waits two answers, more than
        // its lease, before it is even sent.
        w.batch = 4;
        w.concurrency = 2;
        c.notify.webhooks = vec![webhook("slow", &url, &[NEW_SECRET])];
    })
    .await;
    for i in 0..JOBS {
        app.sql(&format!(
            "INSERT INTO outbox (kind, payload, status, attempts, run_at, created_at, updated_at, channel, recipient) \
             VALUES ('deliver', '{{\"message\": {{\"endpoint\": \"slow\", \"body\": \"{{}}\"}}}}', 'pending', 0, 0, {i}, 0, \
             'webhook', 'slow')"
        ))
        .await;
    }
    let (a, b) = (Notifier::new(app.service.clone()).expect("a"), Notifier::new(app.service.clone()).expect("b"));
    let stop = CancellationToken::new();
    let (ta, tb) = (tokio::spawn(a.run(stop.clone())), tokio::spawn(b.run(stop.clone())));
    let sent = "SELECT COUNT(*) FROM outbox WHERE kind = 'deliver' AND status = 'sent'";
    wait_count(&app, sent, JOBS, Duration::from_secs(90)).await;
    // Give a stray second send (a lapsed lease taken again) time to arrive before counting.
    tokio::time::sleep(lease + Duration::from_secs(2)).await;
    stop.cancel();
    let _ = (ta.await, tb.await);

    let mut ids: Vec<String> = receiver.requests().iter().map(|r| r.header("webhook-id")).collect();
    let calls = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((calls, ids.len()), (12, 12), "each webhook-id arrives exactly once");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_attempts").await, JOBS, "one attempt per message");
}

#[tokio::test]
async fn a_throttled_provider_gets_an_orders_messages_in_the_order_they_happened() {
    let provider = HttpPeer::start(|_| Answer::new(201, json!({ "sid": "SM1", "status": "queued" }).to_string())).await;
    let base = provider.base.clone();
    let app = spawn_app_with(move |c| {
        quick_worker(c);
        c.notify.twilio = Some(TwilioConfig {
            base_url: base,
            account_sid: "AC123".to_owned(),
            auth_token: "twilio-secret".to_owned().into(),
            sms_from: Some("+15005550006".to_owned()),
            whatsapp_from: None,
        });
    })
    .await;
    // The first message is throttled for two seconds; everything after it must wait behind it.
    provider
        .script([Answer::new(429, r#"{"code": 20429, "message": "Too Many Requests"}"#).header("retry-after", "2")]);
    let mut body = order_body("jobshop");
    body["customer"]["phone"] = json!("+393471234567");
    body["customer"]["channels"] = json!(["sms"]);
    let reference = create(&app, body).await["reference"].as_str().expect("ref").to_owned();
    // Another order's messages are not held up by this one's throttling.
    let mut other = order_body("jobshop");
    other["customer"]["phone"] = json!("+393479999999");
    other["customer"]["channels"] = json!(["sms"]);
    provider.wait_for(1, WAIT).await;
    create(&app, other).await;
    for (i, stage) in ["released", "in_progress", "complete", "shipped", "delivered"].iter().enumerate() {
        let res =
            app.post(&format!("/orders/{reference}/moves"), &json!({ "to": stage, "note": format!("step-{i}") })).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let log = wait_messages(&app, &reference, |l| l.len() == 5 && l.iter().all(|m| m["state"] == "sent")).await;
    assert_eq!(log.len(), 5, "created, in progress, complete, shipped, delivered");

    let to_us: Vec<String> = provider
        .requests()
        .iter()
        .filter_map(|r| {
            let form: HashMap<String, String> = r.form().into_iter().collect();
            (form.get("To").map(String::as_str) == Some("+393471234567")).then(|| form["Body"].clone())
        })
        .collect();
    let marks: Vec<&str> = to_us
        .iter()
        .map(|b| {
            // The customer reads Italian; only the moves carry a note.
            ["step-1", "step-2", "step-3", "step-4"].into_iter().find(|m| b.contains(m)).unwrap_or("created")
        })
        .collect();
    assert_eq!(marks, ["created", "created", "step-1", "step-2", "step-3", "step-4"], "{to_us:#?}");
    // The other order's message went out during the wait, not after it.
    let to = |r: &crate::peers::Request, phone: &str| r.form().iter().any(|(k, v)| k == "To" && v == phone);
    let calls = provider.requests();
    let first_other = calls.iter().position(|r| to(r, "+393479999999")).expect("the other order's message");
    let our_retry = calls.iter().enumerate().filter(|(_, r)| to(r, "+393471234567")).nth(1).map(|(i, _)| i);
    assert!(Some(first_other) < our_retry, "other orders keep flowing: {first_other} vs {our_retry:?}");
}

#[tokio::test]
async fn a_webhook_sent_late_carries_the_stage_of_its_own_event() {
    let receiver = HttpPeer::start(|_| Answer::new(204, "")).await;
    let url = format!("{}/hook", receiver.base);
    let app = spawn_app_with(move |c| c.notify.webhooks = vec![webhook("n8n", &url, &[NEW_SECRET])]).await;
    let reference = app.new_order("jobshop").await;
    // Two quick moves before any worker runs: both webhooks are composed after the second.
    for stage in ["released", "in_progress"] {
        assert_eq!(app.move_to(&reference, stage).await.status(), StatusCode::OK);
    }
    assert!(app.drain_outbox().await > 0);
    let bodies: Vec<Value> = receiver.requests().iter().map(|r| r.json()).collect();
    let moved: Vec<&Value> = bodies.iter().filter(|b| b["type"] == "order.moved").collect();
    assert_eq!(moved.len(), 2, "{bodies:#?}");
    for body in moved {
        assert_eq!(body["data"]["stage"], body["data"]["to_stage"], "the stage as of the event: {body:#}");
        assert_eq!(body["data"]["status"], "open");
    }
    let created = bodies.iter().find(|b| b["type"] == "order.created").expect("created");
    assert_eq!(created["data"]["stage"], "order_received", "not the stage the order reached later");
}
