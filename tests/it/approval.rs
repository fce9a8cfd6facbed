//! Design approval and questions on the tracking page, through real HTTP forms as a browser
//! without JavaScript sends them: the answer moves the order through the one change path as
//! the customer, and every stale, forged or repeated form is refused or a no-op.

use std::time::Duration;

use kiln::notify::config::{EmailConfig, SmtpSecurity};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::{TestApp, order_body, spawn_app, spawn_app_with};
use crate::peers::SmtpServer;

/// A client that shows redirects instead of following them, and sends form posts.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

fn photo(seed: u32) -> Part {
    let bytes = fixtures::jpeg(&fixtures::photo_like(640 + seed, 480));
    Part::bytes(bytes).file_name(format!("proof{seed}.jpg")).mime_str("image/jpeg").expect("mime")
}

/// A jewelry order in English, moved to `awaiting_approval` with a proof photo; returns its
/// reference and tracking URL.
pub(crate) async fn awaiting_approval(app: &TestApp) -> (String, String) {
    let mut body = order_body("jewelry");
    body["customer"]["language"] = json!("en");
    body["customer"]["timezone"] = json!("Europe/London");
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.expect("json");
    let reference = order["reference"].as_str().expect("reference").to_owned();
    let url = order["tracking_url"].as_str().expect("url").to_owned();
    let form = Form::new().text("to", "awaiting_approval").text("note", "Oval halo, 1.2 ct").part("photo", photo(0));
    let res = app
        .client
        .post(app.api(&format!("/orders/{reference}/moves")))
        .bearer_auth(&app.write_token)
        .multipart(form)
        .send()
        .await
        .expect("move");
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap_or_default());
    (reference, url)
}

/// Attaches a newer proof photo to an order waiting for approval.
pub(crate) async fn new_proof(app: &TestApp, reference: &str) {
    let form = Form::new().text("visibility", "customer").text("caption", "Thinner band").part("photo", photo(7));
    let res = app
        .client
        .post(app.api(&format!("/orders/{reference}/photos")))
        .bearer_auth(&app.write_token)
        .multipart(form)
        .send()
        .await
        .expect("photos");
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
}

async fn html(url: &str) -> String {
    let res = browser().get(url).send().await.expect("page");
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.expect("body")
}

/// The value of the first input named `name` in `html`.
fn input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The hidden fields of the proof forms on a page: stage, round and form token.
fn proof_fields(html: &str) -> Vec<(&'static str, String)> {
    ["stage", "round", "form"]
        .into_iter()
        .map(|n| (n, input(html, n).unwrap_or_else(|| panic!("no {n} field"))))
        .collect()
}

/// The question form's token: the last form on the page.
fn ask_token(html: &str) -> String {
    let at = html.rfind("name=\"form\" value=\"").expect("a question form");
    let rest = &html[at + 19..];
    rest[..rest.find('"').expect("end of value")].to_owned()
}

async fn post(url: &str, fields: &[(&str, String)]) -> (StatusCode, Option<String>, String) {
    let res = browser().post(url).form(fields).send().await.expect("post");
    let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (res.status(), location, res.text().await.expect("body"))
}

fn with(fields: &[(&'static str, String)], more: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut all = fields.to_vec();
    all.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
    all
}

async fn stage_of(app: &TestApp, reference: &str) -> String {
    app.order(reference).await["stage"]["key"].as_str().unwrap_or_default().to_owned()
}

pub(crate) fn email_config(smtp: &SmtpServer) -> EmailConfig {
    EmailConfig {
        host: smtp.addr.ip().to_string(),
        port: Some(smtp.addr.port()),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Atelier <orders@atelier.example>".to_owned(),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn approving_a_proof_moves_the_order_as_the_customer_once_and_tells_the_shop() {
    let smtp = SmtpServer::start().await;
    let email = email_config(&smtp);
    let app = spawn_app_with(|c| {
        c.notify.email = Some(email);
        c.notify.staff.email = Some("owner@atelier.example".to_owned());
    })
    .await;
    let (reference, url) = awaiting_approval(&app).await;

    // The approval request reaches the customer with a link that opens the page at the proof.
    app.drain_outbox().await;
    let sent = smtp.received();
    let to_customer = sent.iter().rev().find(|m| m.rcpt == ["ana@example.com"]).expect("the approval request");
    let text = String::from_utf8_lossy(&to_customer.data).into_owned();
    assert!(text.contains("#proof"), "{text}");

    let page = html(&url).await;
    assert!(page.contains("Your approval is needed"), "the top card says whose turn it is");
    assert!(page.contains("Depends on your approval"), "no date while it waits on the customer");
    assert!(page.contains("class=\"proof-photos\"") && page.contains("photos&#x2f;"), "the proof is shown");
    let fields = proof_fields(&page);
    assert_eq!(fields[1].1, "1", "the first proof round");

    let approve = with(&fields, &[("answer", "approve")]);
    let (status, location, _) = post(&format!("{url}/answer"), &approve).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let token = url.rsplit('/').next().expect("token");
    assert_eq!(location.as_deref(), Some(format!("/t/{token}#now").as_str()));
    assert_eq!(stage_of(&app, &reference).await, "in_production");

    let events = app.events(&reference).await;
    let moved = events.last().expect("the approval event");
    assert_eq!((moved["actor"].as_str(), moved["source"].as_str()), (Some("customer"), Some("portal")));
    assert_eq!(
        (moved["from_stage"].as_str(), moved["to_stage"].as_str()),
        (Some("awaiting_approval"), Some("in_production"))
    );
    let id = moved["id"].as_i64().expect("id");
    let staff_jobs =
        app.count(&format!("SELECT COUNT(*) FROM outbox WHERE kind = 'notify_staff' AND event_id = {id}")).await;
    assert_eq!(staff_jobs, 1, "the staff message is enqueued with the move");

    // A double click, or the form sent again from history, approves nothing more.
    let (status, _, _) = post(&format!("{url}/answer"), &approve).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app.events(&reference).await.len(), events.len(), "approved once");

    let page = html(&url).await;
    assert!(page.contains("Approved on "), "the page says it was approved");
    assert!(page.contains("You approved the design"), "and the timeline says who did it");
    assert!(!page.contains("name=\"answer\""), "no approval form once approved");

    // The shop hears of it on its own channel at once.
    app.drain_outbox().await;
    let staff = smtp.received().into_iter().filter(|m| m.rcpt == ["owner@atelier.example"]).collect::<Vec<_>>();
    assert!(
        staff.iter().any(|m| String::from_utf8_lossy(&m.data).contains(&format!("Ana Ribeiro approved {reference}"))),
        "the staff email names the approval"
    );
}

#[tokio::test]
async fn a_change_request_needs_a_comment_and_takes_the_order_back_with_it() {
    let app = spawn_app().await;
    let (reference, url) = awaiting_approval(&app).await;
    let fields = proof_fields(&html(&url).await);

    let (status, _, body) =
        post(&format!("{url}/answer"), &with(&fields, &[("answer", "changes"), ("comment", "  ")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Please tell us what to change."), "{body}");
    assert!(body.contains("<main") && body.contains("Back to your order"), "a way back");
    assert_eq!(stage_of(&app, &reference).await, "awaiting_approval");

    let comment = [("answer", "changes"), ("comment", "Could the band be <b>thinner</b>?")];
    let (status, _, _) = post(&format!("{url}/answer"), &with(&fields, &comment)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(stage_of(&app, &reference).await, "design_consultation");
    let events = app.events(&reference).await;
    let moved = events.last().expect("event");
    assert_eq!(moved["note"], "Could the band be thinner?", "markup is not kept");
    assert_eq!((moved["actor"].as_str(), moved["source"].as_str()), (Some("customer"), Some("portal")));

    // Approving the same proof after asking for changes is a stale page, not a second move.
    let (status, _, body) = post(&format!("{url}/answer"), &with(&fields, &[("answer", "approve")])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("no longer waiting for your answer"), "{body}");
    assert_eq!(stage_of(&app, &reference).await, "design_consultation");
}

#[tokio::test]
async fn forged_cross_order_stale_and_revoked_answers_are_refused_with_a_clear_page() {
    let app = spawn_app().await;
    let (reference, url) = awaiting_approval(&app).await;
    let (_, other_url) = awaiting_approval(&app).await;
    let fields = proof_fields(&html(&url).await);
    let approve = |fields: &[(&'static str, String)]| with(fields, &[("answer", "approve")]);

    // A made-up token, and a real one from another order's page.
    let mut forged = fields.clone();
    forged[2].1 = "bm90IGEgdG9rZW4".to_owned();
    let (status, _, body) = post(&format!("{url}/answer"), &approve(&forged)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("This form has expired"), "{body}");
    let theirs = proof_fields(&html(&other_url).await);
    let (status, _, _) = post(&format!("{url}/answer"), &approve(&theirs)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a form from another order's page");
    // The right token with another round number does not pass either.
    let mut bumped = fields.clone();
    bumped[1].1 = "2".to_owned();
    assert_eq!(post(&format!("{url}/answer"), &approve(&bumped)).await.0, StatusCode::FORBIDDEN);

    // A newer proof replaces the one on the open page.
    new_proof(&app, &reference).await;
    let (status, _, body) = post(&format!("{url}/answer"), &approve(&fields)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("newer proof"), "{body}");
    let fresh = proof_fields(&html(&url).await);
    assert_eq!(fresh[1].1, "2", "the second proof round");
    assert!(html(&url).await.contains("Proof 2"));

    // The shop moved the order on while the page was open.
    assert_eq!(app.move_to(&reference, "in_production").await.status(), StatusCode::OK);
    let (status, _, _) = post(&format!("{url}/answer"), &approve(&fresh)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(stage_of(&app, &reference).await, "in_production");

    // A revoked link answers nothing.
    let (other_ref, other_url) = awaiting_approval(&app).await;
    let theirs = proof_fields(&html(&other_url).await);
    let res = app.client.delete(app.api(&format!("/orders/{other_ref}/tracking-link"))).bearer_auth(&app.write_token);
    assert_eq!(res.send().await.expect("revoke").status(), StatusCode::NO_CONTENT);
    let (status, _, body) = post(&format!("{other_url}/answer"), &approve(&theirs)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no longer valid") && body.contains("<main"), "{body}");
    assert_eq!(stage_of(&app, &other_ref).await, "awaiting_approval");
}

#[tokio::test]
async fn an_order_not_awaiting_approval_shows_no_form_and_refuses_an_answer() {
    let app = spawn_app().await;
    let mut body = order_body("jewelry");
    body["customer"]["language"] = json!("en");
    let res = app.post("/orders", &body).await;
    let order: Value = res.json().await.expect("json");
    let url = order["tracking_url"].as_str().expect("url");
    let page = html(url).await;
    assert!(!page.contains("name=\"answer\""), "no approval form in design consultation");
    // Even a correctly signed form for a proof that was never shown moves nothing.
    let snapshot = app.service.track_by_token(url.rsplit('/').next().expect("t")).await.expect("ok").expect("found");
    let form =
        app.service.form_token(&snapshot.token_hash, &kiln::domain::approval::round_context("awaiting_approval", 1));
    let fields = [
        ("stage", "awaiting_approval".to_owned()),
        ("round", "1".to_owned()),
        ("form", form),
        ("answer", "approve".to_owned()),
    ];
    let (status, _, body) = post(&format!("{url}/answer"), &fields).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("not waiting for an approval"), "{body}");
    assert_eq!(app.order(order["reference"].as_str().expect("r")).await["stage"]["key"], "design_consultation");
}

#[tokio::test]
async fn questions_reach_the_staff_and_the_api_with_a_rate_limit_and_a_honeypot() {
    let app = spawn_app().await;
    let (reference, url) = awaiting_approval(&app).await;
    let page = html(&url).await;
    let form = input(&page, "form").expect("a form token");
    let ask_token = ask_token(&page);
    assert_ne!(form, ask_token, "the proof forms and the question form carry different tokens");
    let ask = |question: &str, website: &str| {
        vec![("form", ask_token.clone()), ("question", question.to_owned()), ("website", website.to_owned())]
    };
    let before = app.events(&reference).await.len();

    // A bot fills the hidden field: it is thanked, and nothing is kept.
    let (status, _, _) = post(&format!("{url}/ask"), &ask("Cheap watches!", "http://spam.example")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.events(&reference).await.len(), before);
    let (status, _, body) = post(&format!("{url}/ask"), &ask("   ", "")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Please write your question."));
    let (status, _, body) = post(&format!("{url}/ask"), &ask(&"a".repeat(2001), "")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("under 2000 characters"));

    let (status, _, body) = post(&format!("{url}/ask"), &ask("Can I <i>collect</i> it on Saturday?", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Question sent") && body.contains("Can I collect it on Saturday?"), "{body}");
    let events = app.events(&reference).await;
    let asked = events.last().expect("the question");
    assert_eq!((asked["kind"].as_str(), asked["visibility"].as_str()), (Some("noted"), Some("internal")));
    assert_eq!((asked["actor"].as_str(), asked["source"].as_str()), (Some("customer"), Some("portal")));
    let id = asked["id"].as_i64().expect("id");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM outbox WHERE kind = 'notify_staff' AND event_id = {id}")).await,
        1
    );
    assert!(!html(&url).await.contains("collect it on Saturday"), "a question stays off the customer timeline");

    let mine: Value = app.get(&format!("/orders/{reference}/inquiries")).await.json().await.expect("json");
    assert_eq!(mine["items"][0]["question"], "Can I collect it on Saturday?");
    let all: Value = app.get("/inquiries?limit=1").await.json().await.expect("json");
    assert_eq!(all["items"][0]["order"], reference.as_str());
    assert_eq!(app.get("/inquiries?limit=0").await.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Three questions an hour per page; the fourth is refused and not recorded.
    for n in 0..2 {
        assert_eq!(post(&format!("{url}/ask"), &ask(&format!("Question {n}"), "")).await.0, StatusCode::OK);
    }
    let (status, _, body) = post(&format!("{url}/ask"), &ask("One more?", "")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("wait a little"), "{body}");
    let questions: Value = app.get(&format!("/orders/{reference}/inquiries")).await.json().await.expect("json");
    assert_eq!(questions["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_reload_counts_one_view_a_day_and_the_figures_set_views_against_questions() {
    let app = spawn_app().await;
    let (reference, url) = awaiting_approval(&app).await;
    for _ in 0..3 {
        html(&url).await;
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM tracking_views").await, 1, "one view per order per day");
    let (_, other) = awaiting_approval(&app).await;
    html(&other).await;
    let ask = vec![("form", ask_token(&html(&url).await)), ("question", "When is it ready?".to_owned())];
    assert_eq!(post(&format!("{url}/ask"), &ask).await.0, StatusCode::OK);
    let stats: Value = app.get("/stats/tracking?weeks=2").await.json().await.expect("json");
    assert_eq!((stats["views"].as_i64(), stats["questions"].as_i64()), (Some(2), Some(1)));
    assert_eq!(stats["questions_per_100_views"], 50.0);
    assert_eq!(stats["weeks"].as_array().map(Vec::len), Some(2));
    assert_eq!(stats["weeks"][1]["views"], 2, "this week");
    assert_eq!(stats["orders"].as_array().map(Vec::len), Some(2));
    assert!(stats["orders"].as_array().expect("orders").iter().any(|o| o["order"] == reference.as_str()));
    assert_eq!(app.get("/stats/tracking?weeks=0").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_unanswered_proof_gets_one_reminder() {
    let app = spawn_app().await;
    let (reference, _) = awaiting_approval(&app).await;
    let now = chrono::Utc::now();
    assert_eq!(app.service.send_due_reminders(now).await.expect("sweep"), 0, "not due yet");
    let later = now + chrono::Duration::days(3);
    assert_eq!(app.service.send_due_reminders(later).await.expect("sweep"), 1);
    assert_eq!(app.service.send_due_reminders(later + chrono::Duration::days(2)).await.expect("sweep"), 0, "once");
    let events = app.events(&reference).await;
    let reminder = events.last().expect("reminder");
    assert_eq!(
        (reminder["actor"].as_str(), reminder["visibility"].as_str()),
        (Some("approval-reminder"), Some("customer"))
    );
    let id = reminder["id"].as_i64().expect("id");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM outbox WHERE kind = 'notify_customer' AND event_id = {id}")).await,
        1
    );
}

#[tokio::test]
async fn pages_and_json_are_compressed_but_live_streams_are_not() {
    let app = spawn_app().await;
    let (_, url) = awaiting_approval(&app).await;
    let client = browser();
    for (accept, expected) in [("gzip", "gzip"), ("br", "br")] {
        let res = client.get(&url).header("accept-encoding", accept).send().await.expect("page");
        assert_eq!(res.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some(expected));
    }
    let res = client.get(app.api("/openapi.json")).header("accept-encoding", "gzip").send().await.expect("json");
    assert_eq!(res.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let res = client.get(format!("{url}/events")).header("accept-encoding", "gzip, br").send().await.expect("sse");
    assert!(res.headers().get("content-encoding").is_none(), "live updates must flush at once");
    let res = client.get(format!("{}/favicon.ico", app.base)).send().await.expect("favicon");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
}

/// What a shop does after a change request: back to approval, with a new render attached.
pub(crate) async fn back_to_approval_with_a_new_render(app: &TestApp, reference: &str) {
    let form = Form::new()
        .text("to", "awaiting_approval")
        .text("note", "A thinner band, as you asked.")
        .part("photo", photo(3));
    let res = app
        .client
        .post(app.api(&format!("/orders/{reference}/moves")))
        .bearer_auth(&app.write_token)
        .multipart(form)
        .send()
        .await
        .expect("move");
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap_or_default());
}
