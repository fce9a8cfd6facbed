//! Headless Chromium for the browser tests: finding it, starting chromedriver, opening a
//! session, and running axe-core in a page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Chromium and chromedriver, from the environment or Debian's paths.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, default: &str| {
        let path = std::env::var(var).map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(default));
        path.exists().then_some(path)
    };
    Some((find("KILN_CHROMIUM", "/usr/bin/chromium")?, find("KILN_CHROMEDRIVER", "/usr/bin/chromedriver")?))
}

/// Chromium and chromedriver, or `None` (after saying why) when the test should be skipped;
/// panics instead when `KILN_TEST_REQUIRE_BROWSER` is set.
pub fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    let found = browser();
    if found.is_none() {
        assert!(
            std::env::var("KILN_TEST_REQUIRE_BROWSER").is_err(),
            "KILN_TEST_REQUIRE_BROWSER is set but Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)");
    }
    found
}

/// A running chromedriver, killed on drop.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts chromedriver on a free port and waits until it answers.
pub async fn start_driver(path: &PathBuf) -> (Driver, String) {
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(15), "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (Driver(child), url)
}

/// A headless Chromium with its own chromedriver and profile; they go away with it.
pub struct Chromium {
    /// The WebDriver session.
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium with a window `width` × `height` CSS pixels, or `None` when the test is
    /// to be skipped (see [`browser_or_skip`]).
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        let (chromium, chromedriver) = browser_or_skip()?;
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
                    "--hide-scrollbars", "--force-device-scale-factor=1", format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .expect("a browser session");
        Some(Self { client, _driver: driver, _profile: profile })
    }

    /// Runs a script and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    /// Waits up to `limit` until `script` returns `true`; panics with `what` otherwise.
    pub async fn wait_for(&self, script: &str, limit: Duration, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            if self.js(script).await == json!(true) {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "{what} (after {limit:?})");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Clicks the element `css` selects. A live update may replace it between finding and
    /// clicking it (the board redraws when an order changes); the click then goes to the
    /// element that replaced it, as a person would click again.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let element =
                self.client.find(fantoccini::Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("click {css}: {e}"),
            }
        }
        panic!("{css} was replaced twenty times in a row");
    }

    /// Waits until the page at a path of `base` has loaded.
    pub async fn wait_for_path(&self, path: &str) {
        let script = format!("return location.pathname === {} && document.readyState === 'complete'", json!(path));
        self.wait_for(&script, Duration::from_secs(5), &format!("the browser did not reach {path}")).await;
    }

    /// The axe-core violations of the current page whose impact is `serious` or `critical`,
    /// each as `rule (impact): help: first targets`.
    pub async fn serious_axe_violations(&self) -> Vec<String> {
        // Injected through WebDriver rather than a <script> tag, so the pages' CSP stays as is.
        let present = self.js("return typeof window.axe === 'object'").await;
        if present != json!(true) {
            self.client.execute(AXE, vec![]).await.expect("axe-core loads");
        }
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ': '
                          + v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe runs");
        found
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// axe-core 4.10.3 (MPL-2.0, see `tests/fixtures/axe.LICENSE`), vendored so tests need no
/// network and no Node: `npm pack axe-core@4.10.3`, `package/axe.min.js`, sha256
/// 880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb.
const AXE: &str = include_str!("../fixtures/axe.min.js");

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}
