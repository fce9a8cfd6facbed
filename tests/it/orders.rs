//! Creating, reading, listing and editing orders.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{order_body, problem, spawn_app};

#[tokio::test]
async fn a_created_order_starts_in_the_first_stage_with_a_private_tracking_link() {
    let app = spawn_app().await;
    let res = app.post("/orders", &order_body("stone")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let order: Value = res.json().await.expect("json");

    let reference = order["reference"].as_str().expect("reference");
    assert!(reference.starts_with("K-") && reference.len() == 8, "{reference}");
    assert_eq!(location.as_deref(), Some(format!("/api/v1/orders/{reference}").as_str()));
    assert_eq!(order["stage"]["key"], "quarry_extraction");
    assert_eq!(order["stage"]["label"], "Quarry extraction");
    assert_eq!(order["status"], "open");
    assert_eq!(order["priority"], "standard");
    assert_eq!(order["customer"]["channels"], json!(["email"]), "channels default to the contacts given");
    assert_eq!(order["items"][0]["quantity"], 1);

    let url = order["tracking_url"].as_str().expect("tracking url");
    let token = url.rsplit('/').next().expect("token");
    assert!(url.starts_with(&format!("{}/t/", app.base)));
    assert!(token.len() >= 22, "at least 128 bits of base64url");
    assert!(!token.contains(reference) && !token.contains(&reference[2..]), "the link does not reveal the reference");

    assert_eq!(app.order(reference).await, order, "GET returns what POST returned");
    let events = app.events(reference).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["kind"], "created");
    assert_eq!(events[0]["actor"], "test-writer");
    assert_eq!(events[0]["source"], "api");
}

#[tokio::test]
async fn references_are_sequential_and_a_chosen_one_must_be_unique() {
    let app = spawn_app().await;
    let first = app.new_order("print").await;
    let second = app.new_order("print").await;
    let n = |r: &str| r[2..].parse::<u32>().expect("number");
    assert_eq!(n(&second), n(&first) + 1);

    let mut body = order_body("print");
    body["reference"] = json!("SHOP-1001");
    assert_eq!(app.post("/orders", &body).await.status(), StatusCode::CREATED);
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let p = problem(res).await;
    assert_eq!(p["field"], "reference");
    assert_eq!(p["type"], "urn:kiln:problem:duplicate-reference");
}

#[tokio::test]
async fn a_chosen_reference_in_the_counters_path_is_skipped_not_refused() {
    let app = spawn_app().await;
    let first = app.new_order("print").await;
    let (prefix, number) = first.split_at(2);
    let n: u32 = number.parse().expect("number");
    let width = number.len();
    let numbered = |k: u32| format!("{prefix}{k:0width$}");

    let mut body = order_body("print");
    body["reference"] = json!(numbered(n + 1));
    assert_eq!(app.post("/orders", &body).await.status(), StatusCode::CREATED);
    // The counter reaches the chosen reference: the next order takes the number after it.
    assert_eq!(app.new_order("print").await, numbered(n + 2));
    assert_eq!(app.new_order("print").await, numbered(n + 3));
}

#[tokio::test]
async fn a_reference_chosen_by_a_concurrent_create_while_this_one_numbers_it_is_skipped() {
    let app = spawn_app().await;
    // SQLite has one writer: a create never overlaps another's insert there.
    if app.db_url.starts_with("sqlite:") {
        return;
    }
    use sqlx::Connection;
    let first = app.new_order("print").await;
    let (prefix, number) = first.split_at(2);
    let n: u32 = number.parse().expect("number");
    let width = number.len();
    let numbered = |k: u32| format!("{prefix}{k:0width$}");

    // Another writer inserts the next number as a chosen reference and has not committed yet.
    let mut other = sqlx::PgConnection::connect(&app.db_url).await.expect("connect postgres");
    sqlx::raw_sql("BEGIN").execute(&mut other).await.expect("begin");
    let copy = format!(
        "CREATE TEMP TABLE chosen ON COMMIT DROP AS SELECT * FROM orders WHERE reference = '{first}'; \
         UPDATE chosen SET id = (SELECT max(id) + 1000 FROM orders), reference = '{}'; \
         INSERT INTO orders SELECT * FROM chosen",
        numbered(n + 1)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(copy)).execute(&mut other).await.expect("insert the chosen reference");

    // This create numbers n + 1, sees it free (not committed) and waits on the unique index.
    let (client, url, token) = (app.client.clone(), app.api("/orders"), app.write_token.clone());
    let create = tokio::spawn(async move {
        client.post(url).bearer_auth(token).json(&order_body("print")).send().await.expect("request")
    });
    // Sessions blocked by this connection: the create, waiting on the chosen reference.
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))";
    let mut waited = 0;
    loop {
        let n: i64 = sqlx::query_scalar(waiting).fetch_one(&mut other).await.expect("pg_stat_activity");
        if n > 0 {
            break;
        }
        waited += 1;
        assert!(waited < 400, "the create never waited on the chosen reference");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    sqlx::raw_sql("COMMIT").execute(&mut other).await.expect("commit");

    let res = create.await.expect("join");
    assert_eq!(res.status(), StatusCode::CREATED, "numbered again, not refused");
    let order: Value = res.json().await.expect("json");
    assert_eq!(order["reference"], json!(numbered(n + 2)));
    assert_eq!(app.new_order("print").await, numbered(n + 3));
}

#[tokio::test]
async fn an_idempotent_create_replays_the_first_response_and_refuses_another_body() {
    let app = spawn_app().await;
    let send = |body: Value| {
        app.client
            .post(app.api("/orders"))
            .bearer_auth(&app.write_token)
            .header("Idempotency-Key", "checkout-42")
            .json(&body)
            .send()
    };
    let first = send(order_body("jewelry")).await.expect("request");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");

    // The same body with keys in another order is the same request.
    let reordered: Value =
        serde_json::from_str(&serde_json::to_string(&order_body("jewelry")).expect("json")).expect("json");
    let replay = send(reordered).await.expect("request");
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay, first);

    let mut other = order_body("jewelry");
    other["customer"]["name"] = json!("Someone Else");
    let mismatch = send(other).await.expect("request");
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p = problem(mismatch).await;
    assert_eq!(p["type"], "urn:kiln:problem:idempotency-key-reused");

    let list: Value = app.get("/orders").await.json().await.expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "one order, not three");
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_order() {
    let app = spawn_app().await;
    let requests = (0..8).map(|_| {
        app.client
            .post(app.api("/orders"))
            .bearer_auth(&app.write_token)
            .header("Idempotency-Key", "double-click")
            .json(&order_body("print"))
            .send()
    });
    let responses = futures::future::join_all(requests).await;
    let mut references = HashSet::new();
    for res in responses {
        let res = res.expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.expect("json");
        references.insert(body["reference"].as_str().expect("reference").to_owned());
    }
    assert_eq!(references.len(), 1, "every response names the same order");
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
}

#[tokio::test]
async fn keyset_pagination_returns_every_order_exactly_once_even_while_orders_arrive() {
    let app = spawn_app().await;
    let mut created = HashSet::new();
    for _ in 0..23 {
        created.insert(app.new_order("jobshop").await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/orders?limit=5&cursor={c}"),
            None => "/orders?limit=5".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.expect("json");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["reference"].as_str().expect("reference").to_owned());
        }
        // New orders arriving between pages must not shift or repeat the pages.
        app.new_order("jobshop").await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no order twice");
    assert_eq!(unique, created, "every order that existed at the start, and only those");
}

#[tokio::test]
async fn list_filters_combine() {
    let app = spawn_app().await;
    let a = app.new_order("stone").await;
    let b = app.new_order("print").await;
    let mut rush = order_body("print");
    rush["priority"] = json!("rush");
    rush["customer"]["name"] = json!("Zoë Müller");
    let c: Value = app.post("/orders", &rush).await.json().await.expect("json");
    let c = c["reference"].as_str().expect("reference").to_owned();
    assert_eq!(app.move_to(&b, "queued").await.status(), StatusCode::OK);

    let refs = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["reference"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(refs(app.get("/orders?workflow=stone").await.json().await.expect("json")), [a.as_str()]);
    assert_eq!(refs(app.get("/orders?workflow=print&stage=queued").await.json().await.expect("json")), [b.as_str()]);
    assert_eq!(refs(app.get("/orders?priority=rush").await.json().await.expect("json")), [c.as_str()]);
    assert_eq!(refs(app.get("/orders?q=z%C3%96%C3%AB").await.json().await.expect("json")), Vec::<String>::new());
    assert_eq!(
        refs(app.get("/orders?q=M%C3%9CLLER").await.json().await.expect("json")),
        [c.as_str()],
        "case-insensitive, Unicode"
    );
    assert_eq!(refs(app.get(&format!("/orders?q={}", &a[2..])).await.json().await.expect("json")), [a.as_str()]);
    assert_eq!(
        refs(app.get("/orders?created_after=2999-01-01").await.json().await.expect("json")),
        Vec::<String>::new()
    );
    let all = refs(
        app.get("/orders?created_after=2000-01-01&created_before=2999-01-01&status=open")
            .await
            .json()
            .await
            .expect("json"),
    );
    assert_eq!(all, [c, b, a], "newest first");
}

#[tokio::test]
async fn patch_changes_contact_and_records_what_changed() {
    let app = spawn_app().await;
    let reference = app.new_order("jewelry").await;
    let res = app
        .patch(
            &format!("/orders/{reference}"),
            &json!({
                "priority": "rush",
                "due_date": null,
                "notes": "Customer prefers pickup",
                "customer": { "phone": "+39 347 123 4567", "channels": ["whatsapp", "email"], "language": "es" }
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let order: Value = res.json().await.expect("json");
    assert_eq!(order["priority"], "rush");
    assert_eq!(order["due_date"], Value::Null);
    assert_eq!(order["customer"]["phone"], "+393471234567");
    assert_eq!(order["customer"]["channels"], json!(["whatsapp", "email"]));
    assert_eq!(order["customer"]["language"], "es");
    assert_eq!(order["version"], 2);

    let events = app.events(&reference).await;
    let update = events.last().expect("event");
    assert_eq!(update["kind"], "updated");
    assert_eq!(update["visibility"], "internal");
    assert_eq!(update["data"]["changed"]["due_date"], json!({ "from": "2027-03-01", "to": null }));
    assert_eq!(update["data"]["changed"]["customer.phone"]["to"], "+393471234567");
}

#[tokio::test]
async fn patching_priority_to_hold_holds_the_order_and_back_resumes_it() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    let held: Value =
        app.patch(&format!("/orders/{reference}"), &json!({ "priority": "hold" })).await.json().await.expect("json");
    assert_eq!(held["priority"], "hold");
    assert_eq!(app.move_to(&reference, "queued").await.status(), StatusCode::CONFLICT);
    let resumed: Value =
        app.patch(&format!("/orders/{reference}"), &json!({ "priority": "rush" })).await.json().await.expect("json");
    assert_eq!(resumed["priority"], "rush");
    assert_eq!(app.move_to(&reference, "queued").await.status(), StatusCode::OK);
    let kinds: Vec<_> =
        app.events(&reference).await.iter().map(|e| e["kind"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["created", "held", "resumed", "moved"]);
}
