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

/// Every route that names an order in its path, with a body it would accept.
fn order_routes() -> Vec<(reqwest::Method, &'static str, Option<Value>)> {
    use reqwest::Method;
    vec![
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({ "priority": "rush" }))),
        (Method::POST, "/moves", Some(json!({ "to": "block_selection" }))),
        (Method::GET, "/events", None),
        (Method::POST, "/notes", Some(json!({ "body": "hello" }))),
        (Method::GET, "/messages", None),
        (Method::GET, "/photos", None),
        (Method::POST, "/photos", Some(json!({}))),
        (Method::GET, "/tracking-link", None),
        (Method::POST, "/tracking-link", None),
        (Method::DELETE, "/tracking-link", None),
    ]
}

/// Asserts a 422 problem naming `field`.
async fn assert_names(res: reqwest::Response, field: &str, what: &str) {
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    let p = problem(res).await;
    assert_eq!(p["field"], field, "{what}: {p}");
    assert!(p["detail"].as_str().expect("detail").contains("control characters"), "{what}: {p}");
}

#[tokio::test]
async fn control_characters_in_urls_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    for name in ["q", "workflow", "stage"] {
        for value in ["a%00b", "a%0Ab", "%C2%85"] {
            let res = app.get(&format!("/orders?{name}={value}")).await;
            assert_names(res, name, &format!("{name}={value}")).await;
        }
    }
    assert_names(app.get("/orders/K-1/events?visibility=%00").await, "visibility", "events filter").await;

    for (method, suffix, body) in order_routes() {
        let mut req = app
            .client
            .request(method.clone(), app.api(&format!("/orders/K%00X{suffix}")))
            .bearer_auth(&app.write_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        assert_names(res, "reference", &format!("{method} /orders/K%00X{suffix}")).await;
    }
    assert_names(app.get("/workflows/st%00ne").await, "key", "workflow key").await;
    assert_names(app.get("/photos/1%00/web").await, "id", "photo id").await;

    // The public tracking routes read a token, never a control character: the same 404.
    let res = app.client.get(app.api("/track/K%00X")).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    problem(res).await;
    let res = app.client.get(format!("{}/t/K%00X", app.base)).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn control_characters_in_bodies_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let moves = format!("/orders/{reference}/moves");
    assert_names(app.post(&moves, &json!({ "to": "block\u{0}selection" })).await, "to", "to").await;
    assert_names(app.post(&moves, &json!({ "to": "block_selection\n" })).await, "to", "to with a newline").await;
    let body = json!({ "to": "block_selection", "expected_stage": "queued\u{0}" });
    assert_names(app.post(&moves, &body).await, "expected_stage", "expected_stage").await;

    // One bad reference refuses the whole bulk request before anything is applied.
    let good = json!({ "reference": reference, "to": "block_selection" });
    let body = json!({ "moves": [good, good, good, { "reference": "K\u{0}X", "to": "block_selection" }] });
    assert_names(app.post("/bulk-moves", &body).await, "moves[3].reference", "bulk reference").await;
    let body = json!({ "moves": [good, { "reference": reference, "to": "x", "expected_stage": "\u{0}" }] });
    assert_names(app.post("/bulk-moves", &body).await, "moves[1].expected_stage", "bulk expected_stage").await;
    assert_eq!(app.order(&reference).await["stage"]["key"], "quarry_extraction", "nothing was moved");

    let mut order = order_body("stone");
    order["external_ids"] = json!({ "stripe": "pi_\u{0}" });
    let p = problem(app.post("/orders", &order).await).await;
    assert_eq!(p["field"], "external_ids.stripe", "{p}");
    let mut order = order_body("stone");
    order["metadata"] = json!({ "k\u{0}": "v" });
    assert_eq!(problem(app.post("/orders", &order).await).await["field"], "metadata");
    let patch = json!({ "customer": { "telegram_chat_id": "\u{0}" } });
    let p = problem(app.patch(&format!("/orders/{reference}"), &patch).await).await;
    assert_eq!(p["field"], "customer.telegram_chat_id", "{p}");
    let note = json!({ "body": "two\nlines\tare fine", "visibility": "internal" });
    assert_eq!(app.post(&format!("/orders/{reference}/notes"), &note).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_query_parameters_and_unknown_stages_are_named() {
    let app = spawn_app().await;
    let reference = app.new_order("stone").await;
    let res = app.get("/orders?stge=queued").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(res).await["field"], "stge");
    let res = app.get("/orders?q=a&q=b").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(res).await["field"], "q");

    let res = app.move_to(&reference, "no_such_stage").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let p = problem(res).await;
    assert_eq!((&p["type"], &p["field"]), (&json!("urn:kiln:problem:move-not-allowed"), &json!("to")), "{p}");
    let res = app.move_to(&reference, "quality_check").await;
    assert_eq!(problem(res).await["field"], "to", "a stage the order cannot reach from here");
    let body = json!({ "moves": [{ "reference": reference, "to": "no_such_stage" }] });
    let res = app.post("/bulk-moves", &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let out: Value = res.json().await.expect("json");
    assert_eq!(out["results"][0]["problem"]["field"], "to");
}

#[tokio::test]
async fn api_answers_are_never_sniffed_and_tracking_answers_a_preflight() {
    let app = spawn_app().await;
    let order = app.create_order("stone").await;
    let nosniff = |res: &reqwest::Response, what: &str| {
        assert_eq!(res.headers().get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{what}");
    };
    nosniff(&app.get("/orders").await, "a page of orders");
    nosniff(&app.get("/orders/K-424242").await, "a problem");
    nosniff(&app.get("/orders?stge=1").await, "a bad query");
    nosniff(&app.client.get(app.api("/orders")).send().await.expect("request"), "401");
    nosniff(&app.get("/no-such-thing").await, "unknown endpoint");
    nosniff(&app.client.get(app.api("/openapi.json")).send().await.expect("request"), "the document");

    let url = order["tracking_url"].as_str().expect("tracking url");
    let token = url.rsplit('/').next().expect("token");
    let track = app.api(&format!("/track/{token}"));
    nosniff(&app.client.get(&track).send().await.expect("request"), "tracking JSON");
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, &track)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "accept-language")
        .send()
        .await
        .expect("request");
    assert!(res.status().is_success(), "preflight answered: {}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let methods = res.headers()["access-control-allow-methods"].to_str().expect("ascii").to_owned();
    assert!(methods.contains("GET"), "{methods}");
    assert!(res.headers().contains_key("access-control-allow-headers"));
}

#[tokio::test]
async fn the_openapi_document_lists_every_error_status_as_a_problem() {
    let app = spawn_app().await;
    let doc: Value =
        app.client.get(app.api("/openapi.json")).send().await.expect("request").json().await.expect("json");
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let statuses = |path: &str, method: &str| -> Vec<String> {
        op(path, method)["responses"].as_object().map(|r| r.keys().cloned().collect()).unwrap_or_default()
    };
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("operations") {
            let responses = operation["responses"].as_object().expect("responses");
            if operation.get("security").is_some() {
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{method} {path} lists {status}");
                }
            } else {
                assert_eq!(path, "/track/{token}", "only the tracking JSON is public");
            }
            for (status, response) in responses.iter().filter(|(s, _)| s.starts_with(['4', '5'])) {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                assert_eq!(response["content"].as_object().map(|c| c.len()), Some(1), "{method} {path} {status}");
            }
        }
    }
    let expected = [
        ("/orders/{reference}", "patch", &["400", "415", "422"][..]),
        ("/orders/{reference}/moves", "post", &["400", "415"]),
        ("/orders/{reference}/notes", "post", &["400", "415"]),
        ("/bulk-moves", "post", &["400", "415"]),
        ("/orders/{reference}/photos", "post", &["400"]),
        ("/orders/{reference}/events", "get", &["400", "422"]),
        ("/orders", "get", &["400", "422"]),
    ];
    for (path, method, wanted) in expected {
        let listed = statuses(path, method);
        for status in wanted {
            assert!(listed.iter().any(|s| s == status), "{method} {path} lists {status}: {listed:?}");
        }
    }
}
