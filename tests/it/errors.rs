//! Bad input of every kind gets a clear problem-details answer, never a 500.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{order_body, problem, spawn_app};

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = spawn_app().await;
    let res = app.client.get(app.api("/orders")).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    assert_eq!(problem(res).await["type"], "urn:kiln:problem:unauthorized");

    let res = app.client.get(app.api("/orders")).bearer_auth("kiln_not-a-real-token").send().await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.client.get(app.api("/orders")).header("authorization", "Basic abc").send().await.expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let res = app
        .client
        .post(app.api("/orders"))
        .bearer_auth(&app.read_token)
        .json(&order_body("stone"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("needs `write`"));
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_get_400_413_415() {
    let app = spawn_app().await;
    let post_raw = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(app.api("/orders"))
            .bearer_auth(&app.write_token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = post_raw(b"{\"workflow\": ".to_vec(), "application/json").await.expect("request");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("not valid JSON"));

    let res = post_raw(b"workflow=stone".to_vec(), "application/x-www-form-urlencoded").await.expect("request");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    problem(res).await;

    let huge = format!("{{\"workflow\": \"stone\", \"notes\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let res = post_raw(huge.into_bytes(), "application/json").await.expect("request");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    problem(res).await;
}

#[tokio::test]
async fn every_invalid_field_is_named() {
    let app = spawn_app().await;
    let body = json!({
        "workflow": "stone",
        "priority": "urgent",
        "customer": { "name": " ", "email": "not-an-email", "phone": "12345", "channels": ["email", "fax"], "language": "klingon", "timezone": "Mars/Base" },
        "items": [{ "description": "Slab", "quantity": 0 }, { "description": "", "quantity": 2 }],
        "due_date": "2026-02-30",
        "metadata": [1, 2],
    });
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p = problem(res).await;
    let fields: Vec<&str> =
        p["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(
        fields,
        [
            "priority",
            "customer.name",
            "customer.email",
            "customer.phone",
            "customer.channels[1]",
            "customer.language",
            "customer.timezone",
            "items[0].quantity",
            "items[1].description",
            "due_date",
            "metadata",
        ]
    );
    assert_eq!(p["field"], "priority");
    assert!(
        p["detail"].as_str().expect("detail").starts_with("priority: `urgent` is not one of: rush, standard, hold")
    );
}

#[tokio::test]
async fn wrong_types_unknown_fields_and_unknown_workflows_are_named() {
    let app = spawn_app().await;
    let mut body = order_body("stone");
    body["items"][0]["quantity"] = json!("three");
    let p = problem(app.post("/orders", &body).await).await;
    assert_eq!(p["field"], "items[0].quantity");
    assert_eq!(p["status"], 422);

    let mut body = order_body("stone");
    body["colour"] = json!("red");
    let p = problem(app.post("/orders", &body).await).await;
    assert!(p["detail"].as_str().expect("detail").contains("unknown field `colour`"), "{p}");

    let mut body = order_body("stone");
    body.as_object_mut().expect("object").remove("items");
    let p = problem(app.post("/orders", &body).await).await;
    assert!(p["detail"].as_str().expect("detail").contains("missing field `items`"), "{p}");

    let p = problem(app.post("/orders", &order_body("pottery")).await).await;
    assert_eq!(p["field"], "workflow");
    assert!(p["detail"].as_str().expect("detail").contains("known: jewelry, jobshop, print, stone"));

    let mut body = order_body("stone");
    body["stage"] = json!("sanding");
    assert_eq!(problem(app.post("/orders", &body).await).await["field"], "stage");
}

#[tokio::test]
async fn move_requests_are_checked() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let path = format!("/orders/{reference}/moves");
    let cases = [
        (json!({}), "to"),
        (json!({ "action": "hold", "to": "fabrication" }), "to"),
        (json!({ "action": "teleport" }), "action"),
        (json!({ "to": "block_selection", "priority": "rush" }), "priority"),
        (json!({ "to": 5 }), "to"),
    ];
    for (body, field) in cases {
        let res = app.post(&path, &body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem(res).await["field"], field, "{body}");
    }
    let res = app.move_to("K-424242", "block_selection").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(res).await["type"], "urn:kiln:problem:order-not-found");
}

#[tokio::test]
async fn bad_queries_patches_and_routes_are_explained() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    let p = problem(app.get("/orders?limit=5000").await).await;
    assert_eq!(p["field"], "limit");
    let p = problem(app.get("/orders?cursor=garbage").await).await;
    assert_eq!(p["field"], "cursor");
    let res = app.get("/orders?stge=queued").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("stge"));

    let p = problem(app.patch(&format!("/orders/{reference}"), &json!({})).await).await;
    assert_eq!(p["field"], "body");
    let p =
        problem(app.patch(&format!("/orders/{reference}"), &json!({ "customer": { "email": "nope" } })).await).await;
    assert_eq!(p["field"], "customer.email");

    let res = app.get("/no-such-thing").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    problem(res).await;
    let res = app.client.delete(app.api("/orders")).bearer_auth(&app.write_token).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    problem(res).await;

    let res = app
        .client
        .post(app.api("/orders"))
        .bearer_auth(&app.write_token)
        .header("Idempotency-Key", "")
        .json(&order_body("print"))
        .send()
        .await
        .expect("request");
    assert_eq!(problem(res).await["field"], "Idempotency-Key");
}

#[tokio::test]
async fn the_openapi_document_is_generated_from_the_handlers() {
    let app = spawn_app().await;
    let res = app.client.get(app.api("/openapi.json")).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{reference}", "get"),
        ("/orders/{reference}", "patch"),
        ("/orders/{reference}/moves", "post"),
        ("/bulk-moves", "post"),
        ("/orders/{reference}/notes", "post"),
        ("/orders/{reference}/events", "get"),
        ("/orders/{reference}/tracking-link", "post"),
        ("/workflows", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} documented");
    }
    assert!(doc["components"]["schemas"]["OrderIn"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
