//! The customer's tracking page, its JSON twin and its live stream, through real HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{SseClient, TestApp, spawn_app, spawn_app_with};

/// Creates an order in `workflow` for an Italian customer; returns (reference, tracking URL).
async fn tracked_order(app: &TestApp, workflow: &str) -> (String, String) {
    let order = app.create_order(workflow).await;
    let reference = order["reference"].as_str().expect("reference").to_owned();
    let url = order["tracking_url"].as_str().expect("url").to_owned();
    (reference, url)
}

async fn page(app: &TestApp, url: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = app.client.get(url).send().await.expect("request");
    (res.status(), res.headers().clone(), res.text().await.expect("body"))
}

/// The labels of the route map's stops with the given state, in order.
fn stops(html: &str, state: &str) -> Vec<String> {
    let marker = format!("<li class=\"stop {state}\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| {
            let label = rest.split("<span class=\"label\">").nth(1)?;
            Some(label.split(" <span class=\"sr\">").next()?.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_route_map_lights_the_current_stop_in_the_customers_language() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "stone").await;
    for to in ["block_selection", "fabrication"] {
        assert_eq!(app.move_to(&reference, to).await.status(), StatusCode::OK);
    }
    let (status, headers, html) = page(&app, &url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(html.starts_with("<!doctype html>\n<html lang=\"it\">"), "the customer's language");
    // The yard sign-off skips the drawing approval; the stops before the current one are behind it.
    assert_eq!(stops(&html, "done"), ["Estrazione in cava", "Scelta del blocco", "Lastra e disegno da approvare"]);
    assert_eq!(stops(&html, "current"), ["Lavorazione"]);
    assert_eq!(stops(&html, "ahead").len(), 5);
    assert!(html.contains("aria-current=\"step\""));
    assert!(html.contains("Ora: Lavorazione"));
    assert!(html.contains("Il tuo pezzo viene tagliato"), "the stage's customer text");
    assert!(html.contains(&format!("Il tuo ordine {reference}")));
    assert!(html.contains("Kitchen countertop") && html.contains("Calacatta"), "line items");
    assert!(html.len() < 50_000, "page is {} bytes", html.len());
    assert!(!html.contains("http://") && !html.contains("https://"), "no third-party request");

    let (_, _, spanish) = page(&app, &format!("{url}?lang=es")).await;
    assert_eq!(stops(&spanish, "current"), ["Fabricación"]);
    let (_, _, unknown) = page(&app, &format!("{url}?lang=xx")).await;
    assert_eq!(stops(&unknown, "current"), ["Lavorazione"], "an unknown language falls back to the customer's");
}

#[tokio::test]
async fn the_timeline_shows_customer_notes_newest_first_and_never_internal_ones() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "print").await;
    let moves = format!("/orders/{reference}/moves");
    let res = app
        .post(&moves, &json!({ "to": "queued", "note": "Artwork looks great", "internal_note": "used old profile" }))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.post(&format!("/orders/{reference}/notes"), &json!({ "body": "Secret margin 40%" })).await;
    app.post(
        &format!("/orders/{reference}/notes"),
        &json!({ "body": "We added a free sticker <3", "visibility": "customer" }),
    )
    .await;
    app.patch(&format!("/orders/{reference}"), &json!({ "customer_note": "Pickup at the back door" })).await;
    let (_, _, html) = page(&app, &url).await;
    let sticker = html.find("We added a free sticker &lt;3").expect("customer note, escaped");
    let artwork = html.find("Artwork looks great").expect("move note");
    assert!(sticker < artwork, "newest first");
    assert!(html.contains("Pickup at the back door"));
    assert!(!html.contains("Secret margin") && !html.contains("used old profile"), "internal notes stay internal");
}

#[tokio::test]
async fn hidden_stages_never_reach_the_customer() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "jobshop").await;
    assert_eq!(app.move_to(&reference, "released").await.status(), StatusCode::OK);
    let (_, _, html) = page(&app, &url).await;
    assert!(!html.contains("Rilasciato in officina"), "the internal stage is not on the page");
    assert_eq!(stops(&html, "current"), ["Ordine ricevuto"], "the last visible stage stays current");
}

#[tokio::test]
async fn holds_cancellations_and_completion_change_the_estimate() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "print").await;
    let (_, _, html) = page(&app, &url).await;
    assert!(html.contains("data-countdown="), "an open order has a countdown");
    app.post(&format!("/orders/{reference}/moves"), &json!({ "action": "hold" })).await;
    let (_, _, html) = page(&app, &url).await;
    assert!(html.contains("In pausa: la stima è sospesa"), "a held order's estimate is paused");
    assert!(!html.contains("data-countdown="));
    app.post(&format!("/orders/{reference}/moves"), &json!({ "action": "cancel" })).await;
    let (_, _, html) = page(&app, &url).await;
    assert!(html.contains("Questo ordine è stato annullato."));
}

#[tokio::test]
async fn unknown_and_revoked_links_get_the_same_plain_404() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "stone").await;
    let res = app
        .client
        .delete(app.api(&format!("/orders/{reference}/tracking-link")))
        .bearer_auth(&app.write_token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (revoked_status, revoked_headers, revoked) = page(&app, &url).await;
    let (unknown_status, unknown_headers, unknown) = page(&app, &format!("{}/t/{}", app.base, "A".repeat(27))).await;
    let (malformed_status, _, malformed) = page(&app, &format!("{}/t/nope", app.base)).await;
    assert_eq!(
        (revoked_status, unknown_status, malformed_status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(revoked, unknown, "indistinguishable");
    assert_eq!(unknown, malformed);
    assert_eq!(revoked_headers["content-type"], unknown_headers["content-type"]);
    assert!(unknown.contains("Tracking link not found"));
    assert!(!unknown.contains(&reference));
}

#[tokio::test]
async fn private_pages_carry_no_referrer_noindex_no_store_and_a_strict_policy() {
    let app = spawn_app().await;
    let (_, url) = tracked_order(&app, "jewelry").await;
    let missing = format!("{}/t/{}", app.base, "B".repeat(27));
    for target in [url.as_str(), missing.as_str()] {
        let (_, headers, _) = page(&app, target).await;
        assert_eq!(headers["referrer-policy"], "no-referrer", "{target}");
        assert_eq!(headers["x-robots-tag"], "noindex, nofollow");
        assert_eq!(headers["cache-control"], "private, no-store, max-age=0");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}

#[tokio::test]
async fn the_json_twin_has_the_same_data_and_allows_any_origin() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "stone").await;
    app.move_to(&reference, "block_selection").await;
    let token = url.rsplit('/').next().expect("token");
    let res = app
        .client
        .get(app.api(&format!("/track/{token}")))
        .header("origin", "https://shop.example")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert_eq!(res.headers()["cache-control"], "private, no-store, max-age=0");
    let view: Value = res.json().await.expect("json");
    assert_eq!(view["reference"], reference.as_str());
    assert_eq!(view["stage"]["key"], "block_selection");
    assert_eq!(view["stage"]["label"], "Scelta del blocco");
    assert_eq!(view["route"].as_array().map(Vec::len), Some(9));
    assert_eq!(view["route"][1]["state"], "current");
    assert_eq!(view["eta"]["state"], "expected");
    assert_eq!(view["timeline"][0]["title"], "Scelta del blocco");

    let english: Value = app
        .client
        .get(app.api(&format!("/track/{token}?lang=en")))
        .send()
        .await
        .expect("req")
        .json()
        .await
        .expect("json");
    assert_eq!(english["stage"]["label"], "Block selection");
    let res = app.client.get(app.api(&format!("/track/{}", "C".repeat(27)))).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn token_lookups_are_rate_limited_per_client_address() {
    let app = spawn_app_with(|c| c.tracking.rate_limit_per_minute = 6).await;
    let (_, url) = tracked_order(&app, "print").await;
    assert_eq!(page(&app, &url).await.0, StatusCode::OK);
    assert_eq!(page(&app, &url).await.0, StatusCode::OK);
    let (status, headers, body) = page(&app, &url).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=10).contains(&wait), "{wait}");
    assert!(body.contains("Too many requests"));
    assert_eq!(headers["cache-control"], "private, no-store, max-age=0");
    let token = url.rsplit('/').next().expect("token");
    let res = app.client.get(app.api(&format!("/track/{token}"))).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the JSON twin shares the limit");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(app.get("/orders").await.status(), StatusCode::OK, "the authenticated API is not affected");
}

#[tokio::test]
async fn a_connected_client_receives_a_move_live() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "stone").await;
    let events = app.events(&reference).await;
    let since = events[0]["id"].as_i64().expect("id");
    let (status, headers, stream) = SseClient::connect(&app.client, &format!("{url}/events?since={since}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let mut stream = stream.expect("stream");
    assert_eq!(stream.next(Duration::from_millis(300)).await, None, "up to date: nothing to send yet");

    let moved: Value = app.move_to(&reference, "block_selection").await.json().await.expect("json");
    let event_id = moved["events"][0]["id"].as_i64().expect("id");
    let update = stream.next(Duration::from_secs(1)).await.expect("an update within a second");
    assert_eq!(update.event.as_deref(), Some("update"));
    assert_eq!(update.id, Some(event_id.to_string()));
    assert!(update.data.contains("Ora: Scelta del blocco"), "{}", update.data);
    assert!(update.data.contains("class=\"stop current\""));
}

#[tokio::test]
async fn a_reconnecting_client_resumes_from_its_last_event_id() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "print").await;
    let (_, _, stream) = SseClient::connect(&app.client, &format!("{url}/events"), None).await;
    let mut stream = stream.expect("stream");
    let first = stream.next(Duration::from_secs(1)).await.expect("current state on a fresh connection");
    let seen = first.id.expect("id");
    drop(stream);

    // While disconnected, the order moves twice.
    app.move_to(&reference, "queued").await;
    let last: Value = app.move_to(&reference, "printing").await.json().await.expect("json");
    let last_id = last["events"][0]["id"].as_i64().expect("id").to_string();

    let (_, _, stream) = SseClient::connect(&app.client, &format!("{url}/events"), Some(&seen)).await;
    let mut stream = stream.expect("stream");
    let caught_up = stream.next(Duration::from_secs(1)).await.expect("the missed state at once");
    assert_eq!(caught_up.id, Some(last_id.clone()));
    assert!(caught_up.data.contains("Ora: In stampa"), "{}", caught_up.data);

    let (_, _, stream) = SseClient::connect(&app.client, &format!("{url}/events"), Some(&last_id)).await;
    assert_eq!(stream.expect("stream").next(Duration::from_millis(300)).await, None, "nothing missed, nothing resent");
}

#[tokio::test]
async fn revoking_a_link_ends_its_live_streams() {
    let app = spawn_app().await;
    let (reference, url) = tracked_order(&app, "jewelry").await;
    let (_, _, stream) = SseClient::connect(&app.client, &format!("{url}/events"), None).await;
    let mut stream = stream.expect("stream");
    stream.next(Duration::from_secs(1)).await.expect("current state");
    let res = app
        .client
        .post(app.api(&format!("/orders/{reference}/tracking-link")))
        .bearer_auth(&app.write_token)
        .send()
        .await
        .expect("reissue");
    assert_eq!(res.status(), StatusCode::CREATED);
    let gone = stream.next(Duration::from_secs(1)).await.expect("told the link is gone");
    assert_eq!(gone.event.as_deref(), Some("gone"));
    assert_eq!(stream.next(Duration::from_millis(300)).await, None, "and the stream ends");
    let (status, _, _) = SseClient::connect(&app.client, &format!("{url}/events"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
