//! Stage moves through the API: walks, refusals, staleness, hold, cancel, races, bulk.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn every_preset_can_be_walked_from_its_first_to_its_final_stage() {
    let app = spawn_app().await;
    let workflows: Value = app.get("/workflows").await.json().await.expect("json");
    let workflows = workflows["items"].as_array().expect("items").clone();
    assert_eq!(workflows.len(), 4);
    for wf in workflows {
        let key = wf["key"].as_str().expect("key");
        let stages: Vec<&str> =
            wf["stages"].as_array().expect("stages").iter().filter_map(|s| s["key"].as_str()).collect();
        let reference = app.new_order(key).await;
        for pair in stages.windows(2) {
            let res = app
                .post(&format!("/orders/{reference}/moves"), &json!({ "to": pair[1], "expected_stage": pair[0] }))
                .await;
            assert_eq!(res.status(), StatusCode::OK, "{key}: {} -> {}", pair[0], pair[1]);
            let moved: Value = res.json().await.expect("json");
            assert_eq!(moved["order"]["stage"]["key"], pair[1]);
            assert_eq!(moved["events"][0]["kind"], "moved");
            assert_eq!(moved["events"][0]["from_stage"], pair[0]);
        }
        let order = app.order(&reference).await;
        assert_eq!(order["status"], "completed", "{key}");
        assert_eq!(order["allowed_actions"], json!([]), "{key}: nothing after the final stage");
        assert_eq!(app.events(&reference).await.len(), stages.len(), "{key}: created + one event per move");
    }
}

#[tokio::test]
async fn a_move_the_workflow_does_not_allow_is_refused_with_the_allowed_moves() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let res = app.move_to(&reference, "shipping").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let p = problem(res).await;
    assert_eq!(p["type"], "urn:kiln:problem:move-not-allowed");
    assert_eq!(p["current_stage"], "quarry_extraction");
    assert_eq!(
        p["allowed_moves"],
        json!([
            { "action": "move", "to": "block_selection", "label": "Block selection" },
            { "action": "hold", "label": "Put on hold" },
            { "action": "cancel", "label": "Cancel order" },
        ])
    );
    let detail = p["detail"].as_str().expect("detail");
    assert!(detail.contains("`quarry_extraction`") && detail.contains("move to `block_selection`"), "{detail}");

    let res = app.move_to(&reference, "polishing").await;
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("has no stage `polishing`"));
    assert_eq!(app.events(&reference).await.len(), 1, "refused moves leave no event");
}

#[tokio::test]
async fn a_declared_rework_move_goes_back() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    for to in ["block_selection", "fabrication", "quality_check", "fabrication", "quality_check"] {
        assert_eq!(app.move_to(&reference, to).await.status(), StatusCode::OK, "to {to}");
    }
}

#[tokio::test]
async fn a_stale_expected_stage_is_refused() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    assert_eq!(app.move_to(&reference, "queued").await.status(), StatusCode::OK);
    let res = app
        .post(&format!("/orders/{reference}/moves"), &json!({ "to": "printing", "expected_stage": "spec_review" }))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let p = problem(res).await;
    assert_eq!(p["type"], "urn:kiln:problem:stale-stage");
    assert_eq!(p["current_stage"], "queued");
    assert_eq!(p["expected_stage"], "spec_review");
    assert_eq!(app.order(&reference).await["stage"]["key"], "queued");
}

#[tokio::test]
async fn hold_blocks_forward_moves_until_resume() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    let path = format!("/orders/{reference}/moves");
    let res = app.post(&path, &json!({ "action": "hold", "internal_note": "waiting for steel" })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let held: Value = res.json().await.expect("json");
    assert_eq!(held["order"]["priority"], "hold");
    assert_eq!(held["events"][0]["kind"], "held");

    let res = app.move_to(&reference, "released").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let p = problem(res).await;
    assert!(p["detail"].as_str().expect("detail").contains("on hold"));
    let allowed: Vec<_> = p["allowed_moves"].as_array().expect("allowed").iter().map(|a| a["action"].clone()).collect();
    assert_eq!(allowed, [json!("resume"), json!("cancel")]);

    let res = app.post(&path, &json!({ "action": "resume", "priority": "rush" })).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.expect("json")["order"]["priority"], "rush");
    assert_eq!(app.move_to(&reference, "released").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn cancel_ends_the_order_from_any_open_stage() {
    let app = spawn_app().await;
    let reference = app.new_order("jewelry").await;
    assert_eq!(app.move_to(&reference, "awaiting_approval").await.status(), StatusCode::OK);
    let res = app
        .post(
            &format!("/orders/{reference}/moves"),
            &json!({ "action": "cancel", "note": "Customer changed their mind" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let order = app.order(&reference).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["stage"]["key"], "awaiting_approval", "cancel keeps the stage it stopped in");
    assert_eq!(app.move_to(&reference, "in_production").await.status(), StatusCode::CONFLICT);
    let res = app.post(&format!("/orders/{reference}/moves"), &json!({ "action": "cancel" })).await;
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("cancelled"));
    let last = app.events(&reference).await.pop().expect("event");
    assert_eq!(
        (last["kind"].as_str(), last["note"].as_str()),
        (Some("cancelled"), Some("Customer changed their mind"))
    );
}

#[tokio::test]
async fn concurrent_moves_of_one_order_have_exactly_one_winner_and_one_event() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let moves = (0..12).map(|_| app.move_to(&reference, "block_selection"));
    let statuses: Vec<StatusCode> = futures::future::join_all(moves).await.into_iter().map(|r| r.status()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 11, "{statuses:?}");
    let moved: Vec<_> = app.events(&reference).await.into_iter().filter(|e| e["kind"] == "moved").collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(app.order(&reference).await["version"], 2);
}

#[tokio::test]
async fn concurrent_different_moves_serialize_without_losing_any() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    // Notes and edits racing a move must all land, each exactly once.
    let path = format!("/orders/{reference}/notes");
    let note = |i: usize| {
        let (app, path) = (&app, &path);
        async move { app.post(path, &json!({ "body": format!("note {i}") })).await }
    };
    let notes = futures::future::join_all((0..10).map(note));
    let (notes, moved) = tokio::join!(notes, app.move_to(&reference, "queued"));
    assert!(notes.iter().all(|r| r.status() == StatusCode::CREATED));
    assert_eq!(moved.status(), StatusCode::OK);
    let events = app.events(&reference).await;
    assert_eq!(events.iter().filter(|e| e["kind"] == "noted").count(), 10);
    assert_eq!(app.order(&reference).await["version"], 12);
}

#[tokio::test]
async fn bulk_moves_report_each_order_separately() {
    let app = spawn_app().await;
    let a = app.new_order("print").await;
    let b = app.new_order("print").await;
    let c = app.new_order("print").await;
    assert_eq!(app.move_to(&c, "queued").await.status(), StatusCode::OK);
    let res = app
        .post(
            "/bulk-moves",
            &json!({ "moves": [
                { "reference": a, "to": "queued" },
                { "reference": b, "to": "printing" },
                { "reference": c, "to": "printing", "expected_stage": "queued" },
                { "reference": "K-999999", "to": "queued" },
                { "reference": a, "action": "explode" },
            ]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let out: Value = res.json().await.expect("json");
    assert_eq!((out["moved"].as_u64(), out["refused"].as_u64()), (Some(2), Some(3)));
    let results = out["results"].as_array().expect("results");
    let summary: Vec<_> =
        results.iter().map(|r| (r["outcome"].as_str().unwrap_or(""), r["status"].as_u64().unwrap_or(0))).collect();
    assert_eq!(summary, [("moved", 200), ("refused", 409), ("moved", 200), ("refused", 404), ("refused", 422)]);
    assert_eq!(results[0]["stage"], "queued");
    assert_eq!(results[1]["problem"]["current_stage"], "spec_review");
    assert_eq!(results[4]["problem"]["field"], "action");
    assert_eq!(app.order(&b).await["stage"]["key"], "spec_review");
    assert_eq!(app.order(&c).await["stage"]["key"], "printing");
}

#[tokio::test]
async fn moving_into_a_hidden_stage_is_an_internal_event() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    assert_eq!(app.move_to(&reference, "released").await.status(), StatusCode::OK);
    let res = app.get(&format!("/orders/{reference}/events?visibility=customer")).await;
    let visible: Value = res.json().await.expect("json");
    let kinds: Vec<_> = visible["items"].as_array().expect("items").iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, [json!("created")], "the customer does not see the internal `released` stage");
}
