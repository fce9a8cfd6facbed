//! The one transactional path: order, audit event and outbox commit together or not at all.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_move_writes_its_event_and_outbox_jobs_in_the_same_commit() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    assert_eq!(app.move_to(&reference, "block_selection").await.status(), StatusCode::OK);
    let events = app.events(&reference).await;
    let moved = events.iter().find(|e| e["kind"] == "moved").expect("moved event");
    let event_id = moved["id"].as_i64().expect("id");
    // block_selection notifies: one job to tell the customer, one to publish the event.
    let jobs = app.count(&format!("SELECT COUNT(*) FROM outbox WHERE event_id = {event_id}")).await;
    assert_eq!(jobs, 2);
    let notify = app
        .count(&format!("SELECT COUNT(*) FROM outbox WHERE event_id = {event_id} AND kind = 'notify_customer'"))
        .await;
    assert_eq!(notify, 1);

    // A stage that does not notify enqueues only the publish job.
    let print = app.new_order("print").await;
    assert_eq!(app.move_to(&print, "queued").await.status(), StatusCode::OK);
    let queued = app.events(&print).await.pop().expect("event")["id"].as_i64().expect("id");
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM outbox WHERE event_id = {queued}")).await, 1);
}

#[tokio::test]
async fn a_failure_inside_the_transaction_leaves_no_trace() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let events_before = app.count("SELECT COUNT(*) FROM order_events").await;
    let jobs_before = app.count("SELECT COUNT(*) FROM outbox").await;

    // Make the last write of the move (the outbox insert) fail after the order and the
    // event were written inside the transaction.
    app.sql("ALTER TABLE outbox RENAME TO outbox_away").await;
    let res = app.move_to(&reference, "block_selection").await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["detail"], "something went wrong on our side; it has been logged", "5xx bodies stay opaque");
    app.sql("ALTER TABLE outbox_away RENAME TO outbox").await;

    assert_eq!(app.order(&reference).await["stage"]["key"], "quarry_extraction", "the order did not move");
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, events_before, "no event");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, jobs_before, "no job");
    assert_eq!(app.move_to(&reference, "block_selection").await.status(), StatusCode::OK, "and it works again");
}

#[tokio::test]
async fn the_audit_log_cannot_be_rewritten() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    assert_eq!(app.events(&reference).await.len(), 1);
    let url = app.db_url.clone();
    let outcome = if url.starts_with("sqlite:") {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
        sqlx::query("UPDATE order_events SET actor = 'someone else'").execute(&mut conn).await.map(|_| ())
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        sqlx::query("DELETE FROM order_events").execute(&mut conn).await.map(|_| ())
    };
    let err = outcome.expect_err("the database refuses");
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(app.events(&reference).await[0]["actor"], "test-writer");
}

#[tokio::test]
async fn a_new_order_enqueues_staff_customer_and_publish_jobs() {
    let app = spawn_app().await;
    let order = app.create_order("stone").await;
    let reference = order["reference"].as_str().expect("reference");
    let kinds = app
        .count(&format!(
            "SELECT COUNT(*) FROM outbox o JOIN orders r ON r.id = o.order_id WHERE r.reference = '{reference}' \
             AND o.kind IN ('notify_staff', 'notify_customer', 'publish_event')"
        ))
        .await;
    assert_eq!(kinds, 3);
    let note = app
        .post(
            &format!("/orders/{reference}/notes"),
            &json!({ "body": "Hello", "visibility": "customer", "notify": true }),
        )
        .await;
    assert_eq!(note.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn clients_that_hang_up_mid_change_leave_every_order_consistent() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_millis(1)).build().expect("client");
    let url = app.api(&format!("/orders/{reference}/notes"));
    for i in 0..60 {
        // Most of these are abandoned by the client at some point in their handling.
        let _ = impatient
            .post(&url)
            .bearer_auth(&app.write_token)
            .json(&json!({ "body": format!("note {i}") }))
            .send()
            .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let order = app.order(&reference).await;
    let notes = app.events(&reference).await.iter().filter(|e| e["kind"] == "noted").count();
    assert_eq!(order["version"].as_u64(), Some(1 + notes as u64), "every committed change has exactly one event");
    let jobs = app
        .count(&format!("SELECT COUNT(*) FROM outbox o JOIN orders r ON r.id = o.order_id WHERE r.reference = '{reference}' AND o.kind = 'publish_event'"))
        .await;
    assert_eq!(jobs, 1 + notes as i64, "and its outbox job");
    assert_eq!(app.move_to(&reference, "block_selection").await.status(), StatusCode::OK, "the writer is healthy");
}
