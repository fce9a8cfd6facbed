//! The shop's dashboard in real headless Chromium: signing in through the form, a move with a
//! note and a photo that the customer's page then shows, a bulk move from the board, moving a
//! card by its button and by dragging it, the board following another session's move live,
//! screenshots plus axe-core checks of every page at desktop and phone widths, and no page
//! wider than a phone.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use kiln::domain::access::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::chromium::{Chromium, screenshot_dir};
use crate::fixtures::{jpeg, photo_like};
use crate::helpers::{TestApp, order_body, spawn_app};
use crate::ops::{add_user, sign_in};

const PASSWORD: &str = "correct horse battery";

/// Creates a job-shop order for `customer`, in English; returns its API body.
async fn order_for(app: &TestApp, customer: &str) -> Value {
    order_in(app, "jobshop", customer).await
}

/// Creates an order in `workflow` for `customer`, in English; returns its API body.
async fn order_in(app: &TestApp, workflow: &str, customer: &str) -> Value {
    let mut body = order_body(workflow);
    body["customer"]["name"] = json!(customer);
    body["customer"]["language"] = json!("en");
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("json")
}

fn reference_of(order: &Value) -> String {
    order["reference"].as_str().expect("reference").to_owned()
}

async fn stage_of(app: &TestApp, reference: &str) -> String {
    app.order(reference).await["stage"]["key"].as_str().expect("stage").to_owned()
}

/// Signs in through the login form, as a person would.
async fn sign_in_with_form(browser: &Chromium, app: &TestApp, email: &str) {
    let c = &browser.client;
    c.goto(&format!("{}/login", app.base)).await.expect("login page");
    c.find(Locator::Css("#email")).await.expect("email field").send_keys(email).await.expect("typed");
    c.find(Locator::Css("#password")).await.expect("password field").send_keys(PASSWORD).await.expect("typed");
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    browser.wait_for_path("/").await;
}

/// Signs `email` in through the form and opens the job-shop board, its live stream open.
async fn open_board(browser: &Chromium, app: &TestApp, email: &str) {
    sign_in_with_form(browser, app, email).await;
    browser.client.goto(&format!("{}/board/jobshop", app.base)).await.expect("board");
    browser
        .wait_for(
            "return document.body.hasAttribute('data-live-open')",
            Duration::from_secs(5),
            "the live stream opened",
        )
        .await;
}

#[tokio::test]
async fn an_operator_finds_an_order_and_moves_it_with_a_photo_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let order = order_in(&app, "stone", "Mariana Quintero").await;
    let other = reference_of(&order_for(&app, "Otto Brandt").await);
    let reference = reference_of(&order);
    let tracking_url = order["tracking_url"].as_str().expect("tracking url").to_owned();
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let c = &browser.client;

    sign_in_with_form(&browser, &app, "ann@shop.example").await;
    let search = c.find(Locator::Css("#q")).await.expect("search field");
    search.send_keys("Quintero").await.expect("typed");
    c.find(Locator::Css("form.filters button[type=submit]")).await.expect("apply").click().await.expect("click");
    browser.wait_for("return location.search.includes('q=Quintero')", Duration::from_secs(5), "search ran").await;
    let found =
        browser.js("return [...document.querySelectorAll('table.orders tbody th a')].map(a => a.textContent)").await;
    assert_eq!(found, json!([reference]), "only the order searched for, not {other}");

    c.find(Locator::LinkText(&reference)).await.expect("the order's link").click().await.expect("click");
    browser.wait_for_path(&format!("/orders/{reference}")).await;
    c.find(Locator::Css("#note")).await.expect("note").send_keys("Cut and welded, see photo").await.expect("typed");
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = dir.path().join("bench.jpg");
    std::fs::write(&photo, jpeg(&photo_like(640, 480))).expect("photo written");
    let input = c.find(Locator::Css("#photo")).await.expect("photo input");
    input.send_keys(&photo.display().to_string()).await.expect("file chosen");
    // The script previews the chosen photo before sending.
    browser
        .wait_for("return document.querySelectorAll('#previews img').length === 1", Duration::from_secs(3), "preview")
        .await;
    c.find(Locator::Css("button[name=op][value='move:block_selection']"))
        .await
        .expect("move button")
        .click()
        .await
        .expect("click");
    browser
        .wait_for(
            "return document.readyState === 'complete' && !!document.querySelector('.notice')",
            Duration::from_secs(10),
            "the move's confirmation",
        )
        .await;
    assert_eq!(stage_of(&app, &reference).await, "block_selection");
    let event = app.events(&reference).await.into_iter().find(|e| e["kind"] == "moved").expect("a move event");
    assert_eq!(event["note"], "Cut and welded, see photo", "{event}");
    let timeline_photos = browser.js("return document.querySelectorAll('#timeline .thumbs img').length").await;
    assert_eq!(timeline_photos, json!(1), "the detail page's timeline shows the photo");

    c.goto(&tracking_url).await.expect("tracking page");
    let current = browser
        .js("const l = document.querySelector('li.stop.current .label'); return l ? l.textContent.trim() : ''")
        .await;
    let page = browser.js("return location.href + ' | ' + document.title").await;
    assert!(current.as_str().unwrap_or_default().starts_with("Block selection"), "{current} on {page}");
    assert!(
        browser
            .js("return document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .contains("Cut and welded, see photo")
    );
    browser
        .wait_for(
            "const i = document.querySelector('.photos img'); return !!i && i.complete && i.naturalWidth > 0",
            Duration::from_secs(5),
            "the customer's page shows the photo",
        )
        .await;
    c.clone().close().await.expect("browser closes");
}

#[tokio::test]
async fn a_bulk_move_from_the_board_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let first = reference_of(&order_for(&app, "Ada Lind").await);
    let second = reference_of(&order_for(&app, "Bo Sjöberg").await);
    let untouched = reference_of(&order_for(&app, "Cy Moreau").await);
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let c = &browser.client;

    open_board(&browser, &app, "ann@shop.example").await;
    for reference in [&first, &second] {
        c.find(Locator::Css(&format!("li.ticket[data-ref='{reference}'] input[name=ref]")))
            .await
            .expect("a card's checkbox")
            .click()
            .await
            .expect("ticked");
    }
    let picked = browser.js("return document.getElementById('picked').textContent").await;
    assert_eq!(picked, json!("2 ✓"), "the bulk bar counts the ticked cards");
    c.find(Locator::Css("#bulk-op"))
        .await
        .expect("bulk action")
        .select_by_value("move:released")
        .await
        .expect("chosen");
    c.find(Locator::Css("#bulk-note")).await.expect("note").send_keys("Released together").await.expect("typed");
    c.find(Locator::Css(".bulkbar button[type=submit]")).await.expect("apply").click().await.expect("click");
    browser.wait_for_path("/bulk").await;
    let rows = browser
        .js("return [...document.querySelectorAll('table.grid tbody tr.ok th')].map(t => t.textContent.trim()).sort()")
        .await;
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(rows, json!(expected), "the result page lists both");
    for reference in [&first, &second] {
        assert_eq!(stage_of(&app, reference).await, "released");
        let events = app.events(reference).await;
        assert!(events.iter().any(|e| e["kind"] == "moved" && e["note"] == "Released together"), "{events:?}");
    }
    assert_eq!(stage_of(&app, &untouched).await, "order_received");
    c.clone().close().await.expect("browser closes");
}

#[tokio::test]
async fn the_board_follows_another_sessions_move_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let moved = reference_of(&order_for(&app, "Ada Lind").await);
    let kept = reference_of(&order_for(&app, "Bo Sjöberg").await);
    add_user(&app, "ann@shop.example", Role::Operator).await;
    add_user(&app, "vic@shop.example", Role::Operator).await;
    let c = &browser.client;

    open_board(&browser, &app, "ann@shop.example").await;
    c.find(Locator::Css(&format!("li.ticket[data-ref='{kept}'] input[name=ref]")))
        .await
        .expect("a card's checkbox")
        .click()
        .await
        .expect("ticked");
    browser.js("window.kilnMarker = 'no reload'; return true").await;

    // Another person, signed in with their own session, moves the card from its detail page.
    let vic = sign_in(&app, "vic@shop.example").await;
    let res = vic
        .post(&format!("/orders/{moved}/act"), &[("op", "move:released"), ("expected_stage", "order_received")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let in_column = format!(
        "const col = document.getElementById('col-released').closest('section');
         return !!col.querySelector('li.ticket[data-ref=\"{moved}\"]')"
    );
    let took = browser.wait_for(&in_column, Duration::from_secs(3), "the card did not move to its new column").await;
    eprintln!("the board followed the move in {took:?}");
    assert_eq!(browser.js("return window.kilnMarker").await, json!("no reload"));
    let still = browser
        .js(&format!("return document.querySelector('li.ticket[data-ref=\"{kept}\"] input[name=ref]').checked"))
        .await;
    assert_eq!(still, json!(true), "the ticked card stays ticked");
    let left = browser
        .js(&format!(
            "return !!document.getElementById('col-order_received').closest('section').querySelector('li.ticket[data-ref=\"{moved}\"]')"
        ))
        .await;
    assert_eq!(left, json!(false), "the card left its old column");
    c.clone().close().await.expect("browser closes");
}

/// Picks up the card of `reference` and holds it over the column of `stage`, with HTML5 drag
/// events made in the page (WebDriver's pointer actions do not start an HTML5 drag in
/// Chromium): `dragstart` on the card, `dragover` on the column's heading. Returns how each
/// column is marked (`stage:ok`, `stage:no`) and whether `stage` lights up as the place to drop.
async fn hold(browser: &Chromium, reference: &str, stage: &str) -> Value {
    drag_events(browser, reference, stage, "fire(card, 'dragstart'); fire(col.querySelector('h2'), 'dragover');").await
}

/// Drops the card of `reference`, held by [`hold`], on the column of `stage`: `dragover`,
/// `drop` and `dragend`. The drop is fired even where the page refused it, which a browser
/// would not do, so that a refused column is shown to do nothing on its own.
async fn drop_on(browser: &Chromium, reference: &str, stage: &str) {
    let events =
        "fire(col.querySelector('h2'), 'dragover'); fire(col.querySelector('h2'), 'drop'); fire(card, 'dragend');";
    drag_events(browser, reference, stage, events).await;
}

async fn drag_events(browser: &Chromium, reference: &str, stage: &str, events: &str) -> Value {
    let script = format!(
        "const card = document.querySelector('li.ticket[data-ref=\"' + {reference} + '\"]');
         const col = document.querySelector('.column[data-stage=\"' + {stage} + '\"]');
         const dt = new DataTransfer();
         const fire = (el, type) => el.dispatchEvent(new DragEvent(type, {{ bubbles: true, cancelable: true, dataTransfer: dt }}));
         {events}
         return [[...document.querySelectorAll('.column[data-stage]')].map(c => c.dataset.stage + ':'
           + (c.classList.contains('drop-ok') ? 'ok' : c.classList.contains('drop-no') ? 'no' : '-')),
           col.classList.contains('drop-over')];",
        reference = json!(reference),
        stage = json!(stage),
    );
    browser.js(&script).await
}

/// The stage column that shows the card of `reference` on the open board page.
async fn column_in_page(browser: &Chromium, reference: &str) -> Value {
    let script = format!(
        "const card = document.querySelector('li.ticket[data-ref=\"' + {} + '\"]');
         return card ? card.closest('.column').dataset.stage : null",
        json!(reference)
    );
    browser.js(&script).await
}

#[tokio::test]
async fn a_card_dragged_onto_a_column_its_buttons_allow_moves_there_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let dragged = reference_of(&order_for(&app, "Ada Lind").await);
    let clicked = reference_of(&order_for(&app, "Bo Sjöberg").await);
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let c = &browser.client;
    open_board(&browser, &app, "ann@shop.example").await;
    let draggable = browser
        .js("return [...document.querySelectorAll('li.ticket')].every(t => t.draggable && t.querySelector('a').draggable === false)")
        .await;
    assert_eq!(draggable, json!(true), "the script makes the cards with moves draggable");
    browser.js("window.kilnMarker = 'no reload'; return true").await;

    // A drop on a column the card has no button for: nothing happens.
    let held = hold(&browser, &dragged, "in_progress").await;
    let marks = json!(["order_received:no", "released:ok", "in_progress:no", "complete:no", "shipped:no"]);
    assert_eq!(held, json!([marks, false]), "only the column its button goes to takes the card");
    drop_on(&browser, &dragged, "in_progress").await;
    let left = browser.js("return document.querySelectorAll('.drop-ok, .drop-no, .drop-over, .dragging').length").await;
    assert_eq!(left, json!(0), "the marks go when the drag ends");
    assert_eq!(browser.js("return window.kilnMarker").await, json!("no reload"), "no form was sent");
    assert_eq!(stage_of(&app, &dragged).await, "order_received");
    assert_eq!(column_in_page(&browser, &dragged).await, json!("order_received"));

    // A drop on the column its button goes to sends that button's move.
    let held = hold(&browser, &dragged, "released").await;
    assert_eq!(held[1], json!(true), "the column lights up under the card");
    screenshot(&browser, "board-dragging", 1280).await;
    drop_on(&browser, &dragged, "released").await;
    browser
        .wait_for(
            "return window.kilnMarker === undefined && document.readyState === 'complete'",
            Duration::from_secs(10),
            "the board came back after the drop",
        )
        .await;
    browser.wait_for_path("/board/jobshop").await;
    assert_eq!(stage_of(&app, &dragged).await, "released");
    assert_eq!(column_in_page(&browser, &dragged).await, json!("released"));
    let moves: Vec<Value> = app.events(&dragged).await.into_iter().filter(|e| e["kind"] == "moved").collect();
    assert_eq!(moves.len(), 1, "one move: {moves:?}");
    browser
        .wait_for(
            &format!(
                "return document.getElementById('board-status').textContent === {}",
                json!(format!("{dragged} → Released to the floor"))
            ),
            Duration::from_secs(3),
            "the move is announced",
        )
        .await;

    // The button does the same without the script's help, in spite of the bulk bar's
    // required action.
    browser.js("window.kilnMarker = 'before the click'; return true").await;
    browser.click(&format!("li.ticket[data-ref='{clicked}'] button[value='move:released']")).await;
    // The old page is complete too until the form's answer replaces it.
    browser
        .wait_for(
            "return window.kilnMarker === undefined && document.readyState === 'complete'",
            Duration::from_secs(10),
            "the board came back after the click",
        )
        .await;
    assert_eq!(stage_of(&app, &clicked).await, "released");
    assert_eq!(column_in_page(&browser, &clicked).await, json!("released"));
    c.clone().close().await.expect("browser closes");
}

#[tokio::test]
async fn a_card_dropped_after_another_session_moved_it_shows_what_happened_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let reference = reference_of(&order_for(&app, "Ada Lind").await);
    add_user(&app, "ann@shop.example", Role::Operator).await;
    add_user(&app, "vic@shop.example", Role::Operator).await;
    let c = &browser.client;
    open_board(&browser, &app, "ann@shop.example").await;

    // Ann picks the card up; meanwhile Vic moves it. The board keeps still under the drag.
    // A second stream in the page tells when the news of the move has come.
    browser
        .js("window.kilnHeard = false;
             const news = new EventSource('/ops/events');
             news.onopen = () => { window.kilnListening = true; };
             news.addEventListener('changed', () => { window.kilnHeard = true; });
             return true")
        .await;
    browser.wait_for("return window.kilnListening === true", Duration::from_secs(5), "the second stream opened").await;
    assert_eq!(hold(&browser, &reference, "released").await[1], json!(true));
    let vic = sign_in(&app, "vic@shop.example").await;
    let res = vic
        .post(&format!("/orders/{reference}/act"), &[("op", "move:released"), ("expected_stage", "order_received")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    browser.wait_for("return window.kilnHeard", Duration::from_secs(5), "the page heard of the move").await;
    // Nothing to wait for but time: the swap that must not come would take a fetch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(column_in_page(&browser, &reference).await, json!("order_received"), "no swap during a drag");

    drop_on(&browser, &reference, "released").await;
    browser
        .wait_for(
            "return document.readyState === 'complete' && location.pathname.endsWith('/act')",
            Duration::from_secs(10),
            "the stale move's page",
        )
        .await;
    let text = browser.js("return document.querySelector('main').innerText").await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("The order changed meanwhile") && text.contains("vic@shop.example"), "{text}");
    let moves = app.events(&reference).await.into_iter().filter(|e| e["kind"] == "moved").count();
    assert_eq!(moves, 1, "only Vic's move");
    c.clone().close().await.expect("browser closes");
}

#[tokio::test]
async fn no_dashboard_page_is_wider_than_a_phone_in_chromium() {
    let Some(browser) = Chromium::start(390, 900).await else { return };
    let app = spawn_app().await;
    let (reference, floor) = seed_dashboard(&app).await;
    let c = &browser.client;
    c.set_window_size(390, 900).await.expect("window resized");
    let pages = [
        ("login", format!("{}/login", app.base)),
        ("list", format!("{}/", app.base)),
        ("board", format!("{}/board/jobshop", app.base)),
        ("detail", format!("{}/orders/{reference}", app.base)),
        ("settings", format!("{}/settings", app.base)),
        ("floor", floor),
    ];
    // What sticks out past the right edge, named, for the failure message.
    let measure = "const w = innerWidth, out = [...document.body.querySelectorAll('*')]
                     .filter(e => e.getBoundingClientRect().right > w + 0.5 && !e.closest('.tablewrap, .board'))
                     .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''));
                   return [w, document.documentElement.scrollWidth, out]";
    let mut wide = Vec::new();
    for (name, url) in &pages {
        if *name == "list" {
            sign_in_with_form(&browser, &app, "own@shop.example").await;
        }
        c.goto(url).await.expect("page loads");
        let found = browser.js(measure).await;
        assert_eq!(found[0], json!(390), "the viewport is a phone's");
        if found[1].as_u64().is_none_or(|w| w > 390) {
            wide.push(format!("{name}: {found}"));
        }
    }
    assert!(wide.is_empty(), "pages wider than 390 px:\n{}", wide.join("\n"));
    c.clone().close().await.expect("browser closes");
}

/// Fits the window to the page's height (up to a limit) and saves a screenshot.
async fn screenshot(browser: &Chromium, name: &str, width: u32) {
    let height = browser.js("return document.documentElement.scrollHeight").await.as_u64().unwrap_or(900);
    let height = u32::try_from(height).unwrap_or(900).clamp(600, 3000);
    browser.client.set_window_size(width, height).await.expect("window resized");
    let png = browser.client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(screenshot_dir().join(format!("ops-{name}-{width}.png")), &png).expect("screenshot written");
}

/// A shop with something on every page: orders in two stages, one of them rush with a due
/// date, an owner `own@shop.example`, a second user with a long address and a floor display.
/// Returns the rush order's reference and the display's link.
async fn seed_dashboard(app: &TestApp) -> (String, String) {
    let rush = order_for(app, "Mariana Quintero").await;
    let reference = reference_of(&rush);
    for name in ["Otto Brandt", "Ada Lind", "Bo Sjöberg"] {
        order_for(app, name).await;
    }
    let moved = reference_of(&order_for(app, "Cy Moreau").await);
    assert_eq!(app.move_to(&moved, "released").await.status(), StatusCode::OK);
    add_user(app, "own@shop.example", Role::Owner).await;
    add_user(app, "bartholomew.featherstonehaugh@workshop-and-foundry.example", Role::Viewer).await;
    let owner = sign_in(app, "own@shop.example").await;
    let edit = [("priority", "rush"), ("due_date", "2027-03-01")];
    assert_eq!(owner.post(&format!("/orders/{reference}/edit"), &edit).await.status(), StatusCode::SEE_OTHER);
    let res = owner.post("/settings/displays", &[("name", "Workshop TV"), ("workflow", "jobshop")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html").replace("&#x2f;", "/");
    let start = html.find(&format!("{}/floor/", app.base)).expect("the new link is shown");
    let floor: String = html[start..].chars().take_while(|c| *c != '"').collect();
    (reference, floor)
}

#[tokio::test]
async fn every_dashboard_page_passes_axe_at_desktop_and_phone_width_in_chromium() {
    let Some(browser) = Chromium::start(1280, 900).await else { return };
    let app = spawn_app().await;
    let (reference, floor) = seed_dashboard(&app).await;
    let c = &browser.client;

    let mut problems = Vec::new();
    let mut check = async |name: &str, width: u32| {
        for v in browser.serious_axe_violations().await {
            problems.push(format!("{name} at {width}px: {v}"));
        }
        screenshot(&browser, name, width).await;
    };
    for width in [1280, 390] {
        c.set_window_size(width, 900).await.expect("window resized");
        c.goto(&format!("{}/login", app.base)).await.expect("login page");
        check("login", width).await;
    }
    sign_in_with_form(&browser, &app, "own@shop.example").await;
    // The keyboard: the first Tab lands on the skip link, drawn with a visible outline, and
    // following it moves focus to the main landmark's content.
    c.goto(&format!("{}/", app.base)).await.expect("list");
    let tab = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: Key::Tab.into() })
        .then(KeyAction::Up { value: Key::Tab.into() });
    c.perform_actions(tab).await.expect("Tab pressed");
    let focused = browser
        .js("const a = document.activeElement, s = getComputedStyle(a);
             return [a.className, a.getAttribute('href'), s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2]")
        .await;
    assert_eq!(focused, json!(["skip", "#main", true]), "the first Tab shows the skip link");
    let enter = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: Key::Enter.into() })
        .then(KeyAction::Up { value: Key::Enter.into() });
    c.perform_actions(enter).await.expect("Enter pressed");
    browser.wait_for("return location.hash === '#main'", Duration::from_secs(2), "the skip link works").await;
    let landmarks = browser.js("return [document.querySelectorAll('main').length, document.querySelectorAll('header').length, document.querySelectorAll('nav').length > 0]").await;
    assert_eq!(landmarks, json!([1, 1, true]), "one main, one banner, navigation");

    let pages = [
        ("list", format!("{}/", app.base)),
        ("board", format!("{}/board/jobshop", app.base)),
        ("detail", format!("{}/orders/{reference}", app.base)),
        ("settings", format!("{}/settings", app.base)),
        ("floor", floor),
    ];
    for width in [1280, 390] {
        for (name, url) in &pages {
            c.set_window_size(width, 900).await.expect("window resized");
            c.goto(url).await.expect("page loads");
            let title = browser.js("return document.title").await;
            assert!(!title.as_str().unwrap_or_default().is_empty(), "{name} has a title");
            check(name, width).await;
        }
    }
    assert!(problems.is_empty(), "axe-core found serious or critical problems:\n{}", problems.join("\n"));
    c.clone().close().await.expect("browser closes");
}
