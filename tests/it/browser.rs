//! A tracking page in real headless Chromium: the route map shows the current stage, and it
//! changes when the order is moved through the API, without a reload.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chromium::{Driver, browser, screenshot_dir, start_driver};
use crate::helpers::{order_body, spawn_app, spawn_app_with};

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

/// A headless Chromium session at phone width; `None` (after saying why) without a browser.
async fn phone_session() -> Option<(Driver, tempfile::TempDir, fantoccini::Client)> {
    let Some((chromium, chromedriver)) = browser() else {
        assert!(std::env::var("KILN_TEST_REQUIRE_BROWSER").is_err(), "KILN_TEST_REQUIRE_BROWSER is set but no browser");
        eprintln!("skipped: no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let (driver, driver_url) = start_driver(&chromedriver).await;
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
                "--hide-scrollbars", "--window-size=360,1800", format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver_url)
        .await
        .expect("a browser session");
    Some((driver, profile, client))
}

/// Runs `script` (which returns a value) until `ok` accepts its result, or fails after `within`.
async fn wait_for(browser: &fantoccini::Client, script: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let value = browser.execute(script, vec![]).await.expect("script");
        if ok(&value) {
            return value;
        }
        assert!(started.elapsed() < within, "waited {within:?} for `{script}`, last saw {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_customer_approves_the_demo_design_in_headless_chromium() {
    let Some((_driver, _profile, browser)) = phone_session().await else { return };
    let app = spawn_app().await;
    kiln::demo::seed(&app.service).await.expect("demo data");
    let waiting = app.strings("SELECT reference FROM orders WHERE stage = 'awaiting_approval'").await;
    assert_eq!(waiting.len(), 1, "the demo has one jewelry order awaiting approval");
    let reference = waiting[0].clone();
    let link: Value = app.get(&format!("/orders/{reference}/tracking-link")).await.json().await.expect("json");
    let url = link["url"].as_str().expect("url").to_owned();

    // The proof: three renders, loaded, as the note says.
    browser.goto(&url).await.expect("page loads");
    let loaded = wait_for(
        &browser,
        "return [...document.querySelectorAll('#proof img')].filter(i => i.complete && i.naturalWidth > 0).length",
        Duration::from_secs(5),
        |v| v.as_u64() == Some(3),
    )
    .await;
    assert_eq!(loaded, json!(3));
    let note = browser.execute("return document.querySelector('#proof .pre').textContent", vec![]).await.expect("s");
    assert!(note.as_str().is_some_and(|n| n.contains("Three renders")), "{note}");

    // Ask for changes, with a comment; the form posts and the page comes back at the top card.
    let comment = browser.find(Locator::Css("#comment")).await.expect("comment box");
    comment.send_keys("Could the band be a little thinner?").await.expect("typed");
    browser.find(Locator::Css("button[value=changes]")).await.expect("button").click().await.expect("clicked");
    wait_for(
        &browser,
        "const l = document.querySelector('li.stop.current .label'); return l ? l.textContent.trim() : ''",
        Duration::from_secs(5),
        |v| v.as_str().is_some_and(|s| s.starts_with("Consulenza di design")),
    )
    .await;
    let timeline = browser.execute("return document.querySelector('.timeline').textContent", vec![]).await.expect("s");
    assert!(timeline.as_str().is_some_and(|t| t.contains("Hai chiesto delle modifiche") && t.contains("thinner")));
    assert_eq!(app.order(&reference).await["stage"]["key"], "design_consultation");

    // The shop sends a new render: the open page shows it live, without a reload.
    wait_for(&browser, "return document.getElementById('connection').hidden", Duration::from_secs(5), |v| {
        *v == json!(false)
    })
    .await;
    let loaded_at = browser.execute("return window.kilnLoadedAt", vec![]).await.expect("script");
    crate::approval::back_to_approval_with_a_new_render(&app, &reference).await;
    let heading = wait_for(
        &browser,
        "const h = document.querySelector('#proof-h'); return h ? h.textContent : ''",
        Duration::from_secs(5),
        |v| v.as_str().is_some_and(|s| s.contains("Bozza 2")),
    )
    .await;
    assert!(heading.as_str().is_some_and(|h| h.contains("La tua approvazione")));
    assert_eq!(browser.execute("return window.kilnLoadedAt", vec![]).await.expect("script"), loaded_at, "no reload");

    // Approve: the page says so, in the customer's language, and the order is in production.
    browser.find(Locator::Css("button[value=approve]")).await.expect("button").click().await.expect("clicked");
    let approved = wait_for(
        &browser,
        "const a = document.querySelector('.approved'); return a ? a.textContent.trim() : ''",
        Duration::from_secs(5),
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    )
    .await;
    assert!(approved.as_str().is_some_and(|a| a.contains("Approvato il")), "{approved}");
    assert_eq!(app.order(&reference).await["stage"]["key"], "in_production");
    let forms = browser.find_all(Locator::Css("#proof")).await.expect("query");
    assert!(forms.is_empty(), "no proof to answer any more");

    let png = browser.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("approved-360px.png"), &png).expect("screenshot written");

    // The shop revokes the link: the open page stops saying "live" and says how to reach them.
    wait_for(&browser, "return document.getElementById('connection').hidden", Duration::from_secs(5), |v| {
        *v == json!(false)
    })
    .await;
    let res = app.client.delete(app.api(&format!("/orders/{reference}/tracking-link"))).bearer_auth(&app.write_token);
    assert_eq!(res.send().await.expect("revoke").status(), StatusCode::NO_CONTENT);
    let gone = wait_for(
        &browser,
        "const g = document.getElementById('gone'); return g && !g.hidden ? g.textContent : ''",
        Duration::from_secs(5),
        |v| v.as_str().is_some_and(|s| !s.is_empty()),
    )
    .await;
    assert!(gone.as_str().is_some_and(|g| g.contains("non è più valido")), "{gone}");
    let live = browser.execute("return document.getElementById('connection').hidden", vec![]).await.expect("s");
    assert_eq!(live, json!(true), "no more \"live\" badge");
    browser.close().await.expect("browser closes");
}

/// axe-core's browser build, vendored (pinned) with the tests; `KILN_AXE` may point elsewhere.
fn axe_source() -> Option<String> {
    let path = std::env::var("KILN_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/axe.min.js"));
    std::fs::read_to_string(path).ok()
}

/// The serious and critical axe-core violations on the page open in `browser`, as
/// `rule: target` lines.
async fn serious_violations(browser: &fantoccini::Client, axe: &str) -> Vec<String> {
    browser.execute(&format!("{axe};return true"), vec![]).await.expect("axe loads");
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done({ passes: r.passes.length, minor: r.violations.length, serious: r.violations
               .filter(v => v.impact === 'serious' || v.impact === 'critical')
               .flatMap(v => v.nodes.map(n => v.id + ': ' + n.target.join(' '))) }));",
            vec![],
        )
        .await
        .expect("axe runs");
    assert!(found["passes"].as_u64().is_some_and(|n| n > 10), "axe checked the page: {found}");
    eprintln!("axe: {} rules passed, {} violated in all", found["passes"], found["minor"]);
    found["serious"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn axe_finds_no_serious_violation_on_the_customer_pages_in_any_state() {
    let Some(axe) = axe_source() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but axe-core is missing: run scripts/install-test-deps.sh"
        );
        eprintln!("skipped: axe-core is not installed; run scripts/install-test-deps.sh");
        return;
    };
    let Some((_driver, _profile, browser)) = phone_session().await else { return };
    let app = spawn_app_with(|c| {
        c.shop.email = Some("hello@atelier.example".to_owned());
        c.shop.pickup_address = Some("Via Roma 1, Firenze".to_owned());
        c.shop.pickup_hours = Some("Mon-Sat 10:00-19:00".to_owned());
    })
    .await;
    let act = |reference: String, body: Value| {
        let app = &app;
        async move {
            let res = app.post(&format!("/orders/{reference}/moves"), &body).await;
            assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap_or_default());
        }
    };
    let (awaiting, awaiting_url) = crate::approval::awaiting_approval(&app).await;
    let mut pages = vec![("awaiting approval", awaiting_url.clone())];
    let link = |reference: String| {
        let app = &app;
        async move {
            let l: Value = app.get(&format!("/orders/{reference}/tracking-link")).await.json().await.expect("json");
            l["url"].as_str().expect("url").to_owned()
        }
    };
    let held = app.new_order("stone").await;
    act(held.clone(), json!({ "action": "hold", "note": "We need the final sink template from you." })).await;
    pages.push(("held", link(held).await));
    let needs = app.new_order("print").await;
    let body =
        json!({ "action": "hold", "needs": "the high-resolution logo", "note": "The file is too small to print." });
    act(needs.clone(), body).await;
    pages.push(("held for the customer", link(needs).await));
    let cancelled = app.new_order("print").await;
    act(cancelled.clone(), json!({ "action": "cancel", "note": "Cancelled at your request." })).await;
    pages.push(("cancelled", link(cancelled).await));
    let done = app.new_order("jewelry").await;
    for to in ["awaiting_approval", "in_production", "quality_check", "ready"] {
        act(done.clone(), json!({ "to": to })).await;
    }
    pages.push(("completed", link(done).await));
    act(awaiting.clone(), json!({ "to": "in_production" })).await;
    let (_, approval_url) = crate::approval::awaiting_approval(&app).await;
    pages.push(("in production", awaiting_url.clone()));
    pages.push(("awaiting approval", approval_url.clone()));
    pages.push(("unsubscribe", awaiting_url.replace("/t/", "/u/")));
    pages.push(("not found", format!("{}/t/no-such-link-at-all-0000000", app.base)));

    let mut all = Vec::new();
    for (state, url) in &pages {
        browser.goto(url).await.expect("page loads");
        let main = browser.find_all(Locator::Css("main")).await.expect("query");
        assert_eq!(main.len(), 1, "{state}: one main landmark");
        for v in serious_violations(&browser, &axe).await {
            all.push(format!("{state}: {v}"));
        }
    }
    // The unsubscribe confirmation, after its form.
    browser.goto(&pages[pages.len() - 2].1).await.expect("page");
    browser.find(Locator::Css("form button")).await.expect("button").click().await.expect("click");
    wait_for(&browser, "return document.title", Duration::from_secs(5), |v| v.as_str().is_some_and(|t| !t.is_empty()))
        .await;
    for v in serious_violations(&browser, &axe).await {
        all.push(format!("unsubscribed: {v}"));
    }
    assert!(all.is_empty(), "serious or critical accessibility violations:\n{}", all.join("\n"));
    browser.close().await.expect("browser closes");
}
