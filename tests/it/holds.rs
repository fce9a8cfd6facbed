//! Holds that wait on the customer: the shop says what it needs (API, dashboard), and the
//! page, the estimate and the message say it is the customer's turn.

use kiln::domain::access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::approval::email_config;
use crate::helpers::{TestApp, order_body, problem, spawn_app, spawn_app_with};
use crate::ops::{add_user, sign_in};
use crate::peers::SmtpServer;

/// A print order for an English-speaking customer; returns (reference, tracking URL).
async fn english_print_order(app: &TestApp) -> (String, String) {
    let mut body = order_body("print");
    body["customer"]["language"] = json!("en");
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.expect("json");
    (order["reference"].as_str().expect("ref").to_owned(), order["tracking_url"].as_str().expect("url").to_owned())
}

async fn hold(app: &TestApp, reference: &str, body: Value) -> reqwest::Response {
    app.post(&format!("/orders/{reference}/moves"), &body).await
}

#[tokio::test]
async fn a_hold_that_waits_on_the_customer_says_what_we_need_on_the_page_and_in_the_message() {
    let smtp = SmtpServer::start().await;
    let email = email_config(&smtp);
    let app = spawn_app_with(|c| c.notify.email = Some(email)).await;
    let (reference, url) = english_print_order(&app).await;
    app.drain_outbox().await;
    let before = smtp.received().len();

    let body = json!({
        "action": "hold",
        "needs": "  the high-resolution logo ",
        "note": "The file you sent is too small to print sharply.",
    });
    let res = hold(&app, &reference, body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let held: Value = res.json().await.expect("json");
    assert_eq!(held["order"]["priority"], "hold");
    assert_eq!(
        held["events"][0]["data"],
        json!({ "priority": "hold", "waits_on": "customer", "needs": "the high-resolution logo" })
    );

    let page = app.client.get(&url).send().await.expect("page").text().await.expect("html");
    assert!(page.contains("card now card-needs"), "its own top card");
    assert!(page.contains("We need something from you"));
    assert!(page.contains("We need: the high-resolution logo"));
    assert!(page.contains("The file you sent is too small to print sharply."), "the shop's reason");
    assert!(page.contains("Depends on you:"), "the estimate depends on them");
    assert!(!page.contains("data-countdown=") && !page.contains("class=\"late\""), "no slipping date, no lateness");
    let token = url.rsplit('/').next().expect("token");
    let twin: Value = app
        .client
        .get(format!("{}/api/v1/track/{token}", app.base))
        .send()
        .await
        .expect("twin")
        .json()
        .await
        .expect("json");
    assert_eq!((twin["card"]["kind"].as_str(), twin["eta"]["state"].as_str()), (Some("needs"), Some("awaiting")));

    // Print workflows do not tell customers about holds, but this one is theirs to act on.
    app.drain_outbox().await;
    let sent = smtp.received();
    assert_eq!(sent.len(), before + 1, "one message about the hold");
    let mail = &sent[before];
    assert_eq!(mail.rcpt, ["ana@example.com"]);
    let parsed = mail_parser::MessageParser::default().parse(&mail.data).expect("an email");
    assert!(parsed.subject().expect("subject").ends_with("we need something from you"), "{:?}", parsed.subject());
    let text = parsed.body_text(0).expect("text part");
    assert!(text.contains("We need something from you to go on with your order"), "{text}");
    assert!(text.contains("the high-resolution logo") && text.contains("Depends on you:"), "{text}");

    // Once resumed the order is the shop's again.
    let res = app.post(&format!("/orders/{reference}/moves"), &json!({ "action": "resume" })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = app.client.get(&url).send().await.expect("page").text().await.expect("html");
    assert!(!page.contains("We need something from you") && page.contains("data-countdown="));
}

#[tokio::test]
async fn what_a_hold_needs_is_one_short_line_and_only_for_holds() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    let long = "x".repeat(161);
    for (body, detail) in [
        (json!({ "action": "hold", "needs": long }), "at most 160 characters"),
        (json!({ "action": "hold", "needs": "ring\nsize" }), "one line"),
        (json!({ "to": "queued", "needs": "your logo" }), "only `hold` waits on the customer"),
    ] {
        let res = hold(&app, &reference, body.clone()).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let p = problem(res).await;
        assert_eq!(p["field"], "needs", "{p}");
        assert!(p["detail"].as_str().expect("detail").contains(detail), "{p}");
    }
    let bulk = json!({ "moves": [{ "reference": reference, "action": "hold", "needs": "y".repeat(200) }] });
    let res = app.post("/bulk-moves", &bulk).await;
    assert_eq!(res.status(), StatusCode::OK);
    let out: Value = res.json().await.expect("json");
    assert_eq!(out["results"][0]["problem"]["field"], "needs", "{out}");
    assert_eq!(app.order(&reference).await["priority"], "standard", "nothing was held");

    // A blank need is no need: an ordinary hold.
    let res = hold(&app, &reference, json!({ "action": "hold", "needs": "  " })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let held: Value = res.json().await.expect("json");
    assert_eq!(held["events"][0]["data"], json!({ "priority": "hold" }));
}

#[tokio::test]
async fn the_dashboard_hold_form_says_what_the_customer_must_send_and_the_timeline_shows_it() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let page = format!("/orders/{reference}");

    let detail = ann.get(&page).await.text().await.expect("html");
    assert!(detail.contains("What do you need from the customer?") && detail.contains("name=\"needs\""), "the field");

    let fields = [
        ("op", "hold"),
        ("expected_stage", "order_received"),
        ("needs", "the revised drawing with dimensions"),
        ("note", "The tolerances on sheet 2 are missing."),
    ];
    let res = ann.post(&format!("/orders/{reference}/act"), &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let held = app.events(&reference).await.pop().expect("event");
    assert_eq!((held["kind"].as_str(), held["source"].as_str()), (Some("held"), Some("ops")));
    assert_eq!(held["data"]["needs"], "the revised drawing with dimensions");

    let detail = ann.get(&page).await.text().await.expect("html");
    assert!(detail.contains("Needs from the customer:</strong> the revised drawing with dimensions"), "timeline");
    assert!(!detail.contains("name=\"needs\""), "a held order offers no hold, so no field");

    let res = ann.post(&format!("/orders/{reference}/act"), &[("op", "resume"), ("needs", "anything")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.expect("html").contains("Only a hold can wait on the customer"));
    assert_eq!(app.order(&reference).await["priority"], "hold", "nothing changed");
}
