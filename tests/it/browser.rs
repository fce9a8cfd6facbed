//! A tracking page in real headless Chromium: the route map shows the current stage, and it
//! changes when the order is moved through the API, without a reload.

use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chromium::{browser, screenshot_dir, start_driver};
use crate::helpers::{order_body, spawn_app};

#[tokio::test]
async fn a_tracking_page_follows_a_move_live_in_headless_chromium() {
    let Some((chromium, chromedriver)) = browser() else {
        assert!(
            std::env::var("KILN_TEST_REQUIRE_BROWSER").is_err(),
            "KILN_TEST_REQUIRE_BROWSER is set but Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let app = spawn_app().await;
    let mut body = order_body("stone");
    body["customer"]["language"] = json!("en");
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.expect("json");
    let reference = order["reference"].as_str().expect("reference").to_owned();
    let url = order["tracking_url"].as_str().expect("url").to_owned();

    let (_driver, driver_url) = start_driver(&chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".to_owned(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--window-size=360,1500", format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver_url)
        .await
        .expect("a browser session");

    browser.goto(&url).await.expect("page loads");
    // Read the label in one script call: the live script may replace the route map between a
    // find and a read, which would leave a stale element reference.
    let current = || async {
        let label = browser
            .execute(
                "const l = document.querySelector('li.stop.current .label'); return l ? l.textContent.trim() : ''",
                vec![],
            )
            .await
            .expect("script");
        label.as_str().unwrap_or_default().to_owned()
    };
    assert!(current().await.starts_with("Quarry extraction"), "{}", current().await);
    let loaded_at = browser.execute("return window.kilnLoadedAt", vec![]).await.expect("script ran");
    assert!(loaded_at.is_number(), "the page script ran: {loaded_at}");

    // Wait until the live stream is open, then move the order through the API.
    let started = Instant::now();
    while browser.execute("return document.getElementById('connection').hidden", vec![]).await.expect("script")
        != json!(false)
    {
        assert!(started.elapsed() < Duration::from_secs(5), "the live stream did not open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.move_to(&reference, "block_selection").await.status(), StatusCode::OK);

    let started = Instant::now();
    loop {
        if current().await.starts_with("Block selection") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "the route map did not follow the move");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let moved_in = started.elapsed();
    assert_eq!(browser.execute("return window.kilnLoadedAt", vec![]).await.expect("script"), loaded_at, "no reload");
    let navigations =
        browser.execute("return performance.getEntriesByType('navigation').length", vec![]).await.expect("script");
    assert_eq!(navigations, json!(1));
    let done = browser.find_all(Locator::Css("li.stop.done")).await.expect("stops");
    assert_eq!(done.len(), 1, "quarry extraction is done");
    eprintln!("the page followed the move in {moved_in:?}");

    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join("tracking-page-360px.png"), &png).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"));
    browser.close().await.expect("browser closes");
}
