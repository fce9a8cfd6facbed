//! The orders list the dashboard and `GET /api/v1/orders` share: search through indexes,
//! the late and due filters, every sort with its keyset pages, and the board.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, order_body, problem, spawn_app};

/// Creates an order for this customer; returns its reference.
async fn order_for(app: &TestApp, workflow: &str, customer: Value) -> String {
    let mut body = order_body(workflow);
    body["customer"] = customer;
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED, "create order");
    let order: Value = res.json().await.expect("json");
    order["reference"].as_str().expect("reference").to_owned()
}

/// The references of one page of `GET /orders?{query}`, and its next cursor.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, Option<String>) {
    let res = app.get(&format!("/orders?{query}")).await;
    assert_eq!(res.status(), StatusCode::OK, "GET /orders?{query}");
    let body: Value = res.json().await.expect("json");
    let refs = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["reference"].as_str().unwrap_or("").to_owned())
        .collect();
    (refs, body["next_cursor"].as_str().map(str::to_owned))
}

async fn refs(app: &TestApp, query: &str) -> Vec<String> {
    page(app, query).await.0
}

/// Every page of a listing, followed through its cursors `limit` at a time.
async fn all_pages(app: &TestApp, query: &str, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let (refs, next) = page(app, &q).await;
        seen.extend(refs);
        match next {
            Some(c) => cursor = Some(c),
            None => return seen,
        }
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn search_finds_exact_references_emails_and_phones_and_fragments_of_any_field() {
    let app = spawn_app().await;
    let ana =
        order_for(&app, "stone", json!({ "name": "Ana Lima", "email": "ana@shop.test", "phone": "+393331234567" }))
            .await;
    let joana = order_for(
        &app,
        "print",
        json!({ "name": "Joana Rossi", "email": "joana@shop.test", "phone": "+393339999999" }),
    )
    .await;
    let zoe = order_for(&app, "stone", json!({ "name": "Zoë Müller", "email": "Zoe.Muller@Example.com" })).await;

    assert_eq!(refs(&app, "q=ANA%40Shop.Test").await, [ana.as_str()], "an exact email, though another contains it");
    assert_eq!(refs(&app, "q=%2B39%20333%20123%204567").await, [ana.as_str()], "a phone as people write it");
    assert_eq!(refs(&app, &format!("q={}", joana.to_lowercase())).await, [joana.as_str()], "a reference");
    assert_eq!(refs(&app, "q=zoe.muller%40example.com").await, [zoe.as_str()], "an email in another case");
    assert_eq!(refs(&app, "q=rossi").await, [joana.as_str()], "a fragment of a name");
    assert_eq!(refs(&app, "q=ANA").await, [joana.as_str(), ana.as_str()], "fragments match inside words");
    assert_eq!(refs(&app, "q=a%40shop").await, [joana.as_str(), ana.as_str()], "a fragment of an email");
    assert_eq!(refs(&app, "q=9999999").await, [joana.as_str()], "a fragment of a phone");
    assert_eq!(refs(&app, "q=M%C3%9CLL").await, [zoe.as_str()], "case-insensitive beyond ASCII");
    assert_eq!(refs(&app, "q=an").await, [joana.as_str(), ana.as_str()], "two characters still search");
    assert_eq!(refs(&app, "q=ana&workflow=stone").await, [ana.as_str()], "search combines with filters");
    for literal in ["100%25", "a_b", "o%22neil", "%22%22", "x*", "ana%20OR%20zo"] {
        assert_eq!(refs(&app, &format!("q={literal}")).await, Vec::<String>::new(), "`{literal}` is matched literally");
    }
    assert_eq!(refs(&app, "q=nobody%40shop.test").await, Vec::<String>::new());
}

#[tokio::test]
async fn search_follows_changed_contact_details() {
    let app = spawn_app().await;
    let reference = order_for(&app, "stone", json!({ "name": "Bruno Conti", "email": "bruno@shop.test" })).await;
    assert_eq!(refs(&app, "q=conti").await, [reference.as_str()]);
    let patch = json!({ "customer": { "name": "Bruna Galli", "email": "galli@shop.test", "phone": "+41791234567" } });
    assert_eq!(app.patch(&format!("/orders/{reference}"), &patch).await.status(), StatusCode::OK);

    assert_eq!(refs(&app, "q=conti").await, Vec::<String>::new(), "the old name is gone from the index");
    assert_eq!(refs(&app, "q=bruno%40shop.test").await, Vec::<String>::new());
    assert_eq!(refs(&app, "q=galli").await, [reference.as_str()]);
    assert_eq!(refs(&app, "q=%2B41%2079%20123%2045%2067").await, [reference.as_str()]);
    // Moves rewrite the order's row; the search index must still hold it once.
    assert_eq!(app.move_to(&reference, "block_selection").await.status(), StatusCode::OK);
    assert_eq!(refs(&app, "q=galli").await, [reference.as_str()]);
}

#[tokio::test]
async fn every_sort_pages_through_every_order_exactly_once_in_its_order() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for (i, due) in ["2027-03-05", "", "2027-03-01", "2027-03-05", "", "2027-02-10", "2027-03-01"].iter().enumerate() {
        let mut body = order_body("jobshop");
        body["due_date"] = if due.is_empty() { Value::Null } else { json!(due) };
        body["customer"]["name"] = json!(format!("Customer {i}"));
        let order: Value = app.post("/orders", &body).await.json().await.expect("json");
        created.push(order["reference"].as_str().expect("reference").to_owned());
    }
    // Times in stage: two orders share one, to test the tie-break.
    for (i, reference) in created.iter().enumerate() {
        let entered = 1_700_000_000_000_i64 + [5, 1, 3, 1, 7, 2, 6][i] * 60_000;
        app.sql(&format!("UPDATE orders SET stage_entered_at = {entered} WHERE reference = '{reference}'")).await;
    }
    let c = |i: usize| created[i].clone();
    let expected = [
        ("newest", (0..7).rev().map(c).collect::<Vec<_>>()),
        ("oldest", (0..7).map(c).collect()),
        ("due_date", [5, 2, 6, 0, 3, 1, 4].into_iter().map(c).collect()),
        ("time_in_stage", [1, 3, 5, 2, 0, 6, 4].into_iter().map(c).collect()),
    ];
    for (sort, want) in expected {
        assert_eq!(refs(&app, &format!("sort={sort}")).await, want, "one page, sort={sort}");
        for limit in [1, 2, 3] {
            assert_eq!(all_pages(&app, &format!("sort={sort}"), limit).await, want, "pages of {limit}, sort={sort}");
        }
    }
    // Ranges on the due date are inclusive and leave out orders without one.
    assert_eq!(
        sorted(refs(&app, "due_from=2027-03-01&due_to=2027-03-05").await),
        sorted([0, 2, 3, 6].into_iter().map(c).collect())
    );
    assert_eq!(refs(&app, "due_to=2027-02-28").await, [c(5)]);
    assert_eq!(all_pages(&app, "sort=due_date&due_from=2027-03-02", 1).await, [c(0), c(3)]);
}

#[tokio::test]
async fn the_late_filter_finds_orders_over_their_stage_time_or_past_their_due_date() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000_i64;
    let named = |name: &str| json!({ "name": name, "email": "x@shop.test" });
    // print: every stage before `ready` is expected to take a day (rush: half).
    let fresh = order_for(&app, "print", named("Fresh")).await;
    let slow = order_for(&app, "print", named("Slow")).await;
    let rushed = order_for(&app, "print", named("Rushed")).await;
    let held = order_for(&app, "print", named("Held")).await;
    let overdue = order_for(&app, "print", named("Overdue")).await;
    let done = order_for(&app, "print", named("Done")).await;
    app.sql("UPDATE orders SET due_date = NULL").await;
    app.sql(&format!("UPDATE orders SET stage_entered_at = {} WHERE reference = '{slow}'", now - 2 * day)).await;
    app.sql(&format!(
        "UPDATE orders SET priority = 'rush', stage_entered_at = {} WHERE reference = '{rushed}'",
        now - 16 * 3_600_000
    ))
    .await;
    app.sql(&format!(
        "UPDATE orders SET priority = 'hold', resume_priority = 'standard', stage_entered_at = {} WHERE reference = '{held}'",
        now - 9 * day
    ))
    .await;
    app.sql(&format!("UPDATE orders SET due_date = '2020-01-01' WHERE reference = '{overdue}'")).await;
    app.sql(&format!(
        "UPDATE orders SET status = 'completed', stage = 'ready', due_date = '2020-01-01', stage_entered_at = {} \
         WHERE reference = '{done}'",
        now - 9 * day
    ))
    .await;

    assert_eq!(sorted(refs(&app, "late=true").await), sorted(vec![slow.clone(), rushed.clone(), overdue.clone()]));
    assert_eq!(sorted(refs(&app, "late=false").await), sorted(vec![fresh.clone(), held.clone(), done]));
    assert_eq!(refs(&app, "late=true&q=slow").await, std::slice::from_ref(&slow));
    // With a workflow named, only its stages' cutoffs are tested; the answer is the same.
    assert_eq!(
        sorted(refs(&app, "late=true&workflow=print").await),
        sorted(vec![slow.clone(), rushed.clone(), overdue.clone()])
    );
    assert_eq!(sorted(refs(&app, "late=false&workflow=print&status=open").await), sorted(vec![fresh, held]));
    assert!(refs(&app, "late=true&workflow=stone").await.is_empty());
    // Oldest first reads the same open orders in the other direction.
    let oldest = refs(&app, "late=true&sort=oldest").await;
    assert_eq!(oldest, [slow.clone(), rushed.clone(), overdue.clone()], "in creation order");
    // A page the newest orders fill, and the rest of the list through its cursor.
    assert_eq!(all_pages(&app, "late=true", 2).await, [overdue, rushed, slow]);
}

#[tokio::test]
async fn late_orders_older_than_many_newer_open_ones_are_found() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000_i64;
    let named = |name: &str| json!({ "name": name, "email": "x@shop.test" });
    let late_a = order_for(&app, "print", named("Late A")).await;
    let late_b = order_for(&app, "print", named("Late B")).await;
    app.sql(&format!(
        "UPDATE orders SET due_date = NULL, stage_entered_at = {}, created_at = {} WHERE reference IN ('{late_a}', '{late_b}')",
        now - 3 * day,
        now - 3 * day
    ))
    .await;
    // More open orders, all newer and none late, than a page of late orders tests one by
    // one before it gathers the late ones by index.
    let mut csv = String::from("external_id,workflow,customer_name,customer_email,item_description,item_quantity\n");
    for n in 0..700 {
        csv.push_str(&format!("NEW-{n},print,Customer {n},c{n}@shop.test,Flyers,100\n"));
    }
    let res = app
        .client
        .post(app.api("/imports"))
        .bearer_auth(&app.write_token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders WHERE status = 'open'").await, 702);

    assert_eq!(refs(&app, "late=true").await, [late_b.clone(), late_a.clone()]);
    assert_eq!(refs(&app, "late=true&workflow=print&sort=oldest").await, [late_a.clone(), late_b.clone()]);
    assert_eq!(all_pages(&app, "late=true", 1).await, [late_b, late_a]);
    assert_eq!(all_pages(&app, "late=false", 200).await.len(), 700);
}

#[tokio::test]
async fn bad_list_parameters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    for (query, field) in [
        ("sort=random", "sort"),
        ("late=maybe", "late"),
        ("due_from=2027-02-30", "due_from"),
        ("due_from=2027-03-02&due_to=2027-03-01", "due_to"),
        ("q=a%07b", "q"),
    ] {
        let res = app.get(&format!("/orders?{query}")).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem(res).await["field"], field, "{query}");
    }
    let q = "x".repeat(201);
    assert_eq!(problem(app.get(&format!("/orders?q={q}")).await).await["field"], "q");

    app.new_order("stone").await;
    app.new_order("stone").await;
    let (_, cursor) = page(&app, "limit=1").await;
    let cursor = cursor.expect("a second page");
    let res = app.get(&format!("/orders?limit=1&sort=due_date&cursor={cursor}")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "a cursor of another sort");
    let body = problem(res).await;
    assert_eq!(body["field"], "cursor");
    assert!(body["detail"].as_str().unwrap_or("").contains("newest"), "{body}");
}

/// `app;dur=<ms>`: the server time the list benchmarks report.
fn server_ms(res: &reqwest::Response) -> Option<f64> {
    let value = res.headers().get("server-timing")?.to_str().ok()?;
    value.strip_prefix("app;dur=")?.parse().ok()
}

#[tokio::test]
async fn list_answers_and_refusals_say_how_long_the_server_took() {
    let app = spawn_app().await;
    app.new_order("stone").await;
    let res = app.get("/orders?q=customer").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(server_ms(&res).is_some(), "Server-Timing on a page: {:?}", res.headers());
    let res = app.get("/orders?sort=random").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(server_ms(&res).is_some(), "Server-Timing on a refusal");
}

#[tokio::test]
async fn the_board_shows_a_workflows_open_orders_by_stage_rush_first() {
    let app = spawn_app().await;
    let workflow = app.service.workflows().get("stone").expect("stone").clone();
    let standard = app.new_order("stone").await;
    let mut body = order_body("stone");
    body["priority"] = json!("rush");
    let rush: Value = app.post("/orders", &body).await.json().await.expect("json");
    let rush = rush["reference"].as_str().expect("reference").to_owned();
    let held = app.new_order("stone").await;
    assert_eq!(app.patch(&format!("/orders/{held}"), &json!({ "priority": "hold" })).await.status(), StatusCode::OK);
    let moved = app.new_order("stone").await;
    assert_eq!(app.move_to(&moved, "block_selection").await.status(), StatusCode::OK);
    let cancelled = app.new_order("stone").await;
    app.sql(&format!("UPDATE orders SET status = 'cancelled' WHERE reference = '{cancelled}'")).await;
    app.new_order("print").await;
    app.sql(&format!("UPDATE orders SET stage_entered_at = 0 WHERE reference = '{standard}'")).await;

    let board = kiln::store::orders::board(app.service.db(), &workflow).await.expect("board");
    let stages: Vec<&str> = board.columns.iter().map(|c| c.stage.as_str()).collect();
    let pipeline: Vec<&str> = workflow.stages.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(stages, pipeline, "a column per stage, in order, empty ones too");
    assert!(!board.truncated);
    let first = &board.columns[0];
    let cards: Vec<&str> = first.cards.iter().map(|c| c.reference.as_str()).collect();
    assert_eq!(cards, [rush.as_str(), standard.as_str(), held.as_str()], "rush first, held last");
    assert_eq!(first.count, 3);
    let late: Vec<bool> = first.cards.iter().map(|c| c.late).collect();
    assert_eq!(late, [false, true, false], "the standard order has sat in its stage since 1970");
    assert_eq!(board.columns[1].cards.iter().map(|c| c.reference.as_str()).collect::<Vec<_>>(), [moved.as_str()]);
    assert_eq!(board.columns.iter().map(|c| c.count).sum::<u64>(), 4, "cancelled and other workflows' orders left out");
    let seen: HashSet<&str> = board.columns.iter().flat_map(|c| c.cards.iter().map(|k| k.reference.as_str())).collect();
    assert!(!seen.contains(cancelled.as_str()));
}

#[tokio::test]
async fn fragment_pages_follow_their_cursor_through_matches_among_other_orders() {
    let app = spawn_app().await;
    let named =
        |name: &str| json!({ "name": name, "email": format!("{}@shop.test", name.to_lowercase().replace(' ', ".")) });
    let mut matching = Vec::new();
    for i in 0..7 {
        matching.push(order_for(&app, "print", named(&format!("Ada Quillfeather {i}"))).await);
        order_for(&app, "print", named(&format!("Bo Other {i}"))).await;
    }
    matching.push(order_for(&app, "stone", named("Cy Quillfeather")).await);
    // Full pages (found among the newest orders) and the last, short page (found through
    // the trigram index on PostgreSQL) continue one another exactly.
    let newest_first: Vec<String> = matching.iter().rev().cloned().collect();
    assert_eq!(all_pages(&app, "q=illfeat", 3).await, newest_first);
    assert_eq!(all_pages(&app, "q=ILLFEAT&sort=oldest", 2).await, matching);
    assert_eq!(all_pages(&app, "q=illfeat&workflow=print", 4).await, newest_first[1..].to_vec());
    assert!(refs(&app, "q=illfeatz").await.is_empty());
}

/// A fragment too rare to fill a page among the first orders walked: PostgreSQL finds it
/// through the search keys period by period of creation (about 25 days each; 2, then 8,
/// then 32... at a time). Pages stay exact across periods years apart and across blocks of
/// orders that do not match, in both directions, within a created range, with a filter and
/// in another sort.
#[tokio::test]
async fn a_rare_fragment_is_found_across_years_of_history_page_by_page() {
    const DAY: i64 = 86_400_000;
    const NOW: i64 = 1_799_971_200_000; // 2027-01-15
    let app = spawn_app().await;
    let named =
        |name: &str| json!({ "name": name, "email": format!("{}@shop.test", name.to_lowercase().replace(' ', ".")) });
    let ages = [2, 3, 20, 27, 60, 61, 62, 63, 64, 400, 1100, 2900];
    let (mut matching, mut stone, mut in_range) = (Vec::new(), Vec::new(), Vec::new());
    let mut other = String::new();
    for (i, age) in ages.into_iter().enumerate() {
        let workflow = if i % 3 == 0 { "stone" } else { "print" };
        let customer = json!({ "name": format!("Ada Quillfeather-Ørsted {i}"), "email": format!("ada{i}@shop.test") });
        let reference = order_for(&app, workflow, customer).await;
        other = order_for(&app, "print", named(&format!("Bo Other {i}"))).await;
        let created = NOW - age * DAY;
        app.sql(&format!("UPDATE orders SET created_at = {created} WHERE reference = '{reference}'")).await;
        app.sql(&format!("UPDATE orders SET created_at = {} WHERE reference = '{other}'", created - 1000)).await;
        if workflow == "stone" {
            stone.push(reference.clone());
        }
        if (10..100).contains(&age) {
            in_range.push(reference.clone());
        }
        matching.push(reference);
    }
    // 4,100 orders that do not match, in four blocks of 1,025 a minute apart: newer than every
    // match, and between the matches' groups of three (after ages 20, 61 and 64 days), so
    // that a page of three after a cursor starts with more orders than the walk before the
    // search keys reads. Five matches share a period (60-64 days), a page ending inside it.
    let block = |n: i64, age: i64| format!("WHEN {n} THEN {} - 60000 * (1 + i % 1025)", NOW - age * DAY);
    app.sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4099) \
         INSERT INTO orders (reference, workflow, stage, status, priority, customer_name, customer_channels, \
         customer_language, notes, customer_note, external_ids, metadata, search_text, version, stage_entered_at, \
         created_at, updated_at) \
         SELECT 'FILL-' || i, workflow, stage, status, priority, customer_name, customer_channels, \
         customer_language, notes, customer_note, external_ids, metadata, search_text, version, stage_entered_at, \
         CASE i / 1025 WHEN 0 THEN {NOW} + 1 + i {} {} {} END, updated_at FROM orders, n WHERE reference = '{other}'",
        block(1, 20),
        block(2, 61),
        block(3, 64),
    ))
    .await;
    let oldest_first: Vec<String> = matching.iter().rev().cloned().collect();

    assert_eq!(refs(&app, "q=illfeat").await, matching, "one page gathers every period");
    assert_eq!(all_pages(&app, "q=illfeat", 3).await, matching);
    assert_eq!(all_pages(&app, "q=ILLFEAT&sort=oldest", 5).await, oldest_first);
    assert_eq!(all_pages(&app, "q=illfeat&workflow=stone", 2).await, stone);
    assert_eq!(refs(&app, "q=illfeat&created_after=2026-10-07&created_before=2027-01-05").await, in_range);
    assert_eq!(all_pages(&app, "q=illfeat&sort=due_date", 4).await, matching, "same due date: by id");
    assert_eq!(refs(&app, "q=qui").await, matching, "three characters");
    assert_eq!(refs(&app, "q=R-%C3%98RS").await, matching, "pieces beyond ASCII");
    assert!(refs(&app, "q=illfeatz").await.is_empty());
}
