//! `spawn_app()`: a real kiln server on a free port, on its own database — a temporary
//! SQLite file, or a fresh schema of the PostgreSQL database named by
//! `KILN_TEST_DATABASE_URL` — with read and write API tokens.

use std::collections::BTreeMap;

use kiln::app::App;
use kiln::config::Config;
use kiln::service::{Scope, Service};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A running test server.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// A write-scope token.
    pub write_token: String,
    /// A read-scope token.
    pub read_token: String,
    /// The service behind the server, for direct checks.
    pub service: Service,
    /// The database URL the server uses.
    pub db_url: String,
    /// The key sealing tracking tokens (shared by every node of one database).
    pub secret_key: String,
    _data_dir: TempDir,
    shutdown: CancellationToken,
    /// The PostgreSQL schema made for this app, dropped with it.
    schema: Option<String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(schema) = self.schema.take() {
            drop_schema(schema);
        }
    }
}

/// Drops a test's PostgreSQL schema. The test's runtime may be shutting down, so this runs on
/// a thread of its own; a schema still locked after two seconds is left for the next run's
/// fresh database.
fn drop_schema(schema: String) {
    let Ok(base) = std::env::var("KILN_TEST_DATABASE_URL") else { return };
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&base).await.ok()?;
            let sql = format!("SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await.ok()?;
            admin.close().await.ok()
        })
    });
    let _ = dropped.join();
}

/// Logs the servers' tracing output to the test's output when `TEST_LOG` is set (its value
/// is the filter, e.g. `TEST_LOG=kiln=debug`; `1` means `info`).
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else { return };
        let filter = if filter.is_empty() || filter == "1" { "info".to_owned() } else { filter };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

/// The schema a test database URL from [`test_database_url`] names, if any.
fn schema_of(url: &str) -> Option<String> {
    url.split_once("search_path%3D").map(|(_, schema)| schema.to_owned())
}

/// Whether the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("KILN_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// A second server on the same database as `first`, as another node behind a load balancer.
pub async fn spawn_second_node(first: &TestApp) -> TestApp {
    let (url, key) = (first.db_url.clone(), first.secret_key.clone());
    spawn_app_with(move |c| {
        c.database_url = Some(url.into());
        c.secret_key = Some(key.into());
    })
    .await
}

/// A database URL private to one test.
pub async fn test_database_url(data_dir: &std::path::Path) -> String {
    match std::env::var("KILN_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let schema = format!("t_{}", kiln::crypto::random_token(9).to_lowercase().replace(['-', '_'], "x"));
            let mut admin = sqlx::PgConnection::connect(&base).await.expect("KILN_TEST_DATABASE_URL is reachable");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await
                .expect("create test schema");
            admin.close().await.ok();
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => format!("sqlite://{}", data_dir.join("kiln.db").display()),
    }
}

/// A configuration for a test server on a free port.
pub async fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::load(None, &BTreeMap::new()).expect("default config");
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data_dir.to_path_buf();
    config.database_url = Some(test_database_url(data_dir).await.into());
    config.database_max_connections = 8;
    config.log = "warn".to_owned();
    // Tests of notifications turn the worker on; elsewhere the outbox is left as written.
    config.notify.worker.enabled = false;
    config
}

/// Starts a server with the default test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `adjust` has changed the configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    init_test_log();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let mut config = test_config(data_dir.path()).await;
    // Made for this app; dropped with it even if `adjust` points the app elsewhere.
    let schema = schema_of(&config.database_url());
    config.base_url = base.parse().expect("base url");
    config.secret_key = Some(kiln::crypto::Sealer::generate_key().into());
    adjust(&mut config);
    let db_url = config.database_url();
    let secret_key =
        config.secret_key.as_ref().map(|k| secrecy::ExposeSecret::expose_secret(k).to_owned()).unwrap_or_default();
    let app = App::with_listener(config, listener).await.expect("app builds");
    let service = app.service().clone();
    let (write_token, _) = service.create_token("test-writer", Scope::Write).await.expect("token");
    let (read_token, _) = service.create_token("test-reader", Scope::Read).await.expect("token");
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { app.run(stop).await });
    TestApp {
        base,
        client: reqwest::Client::new(),
        write_token,
        read_token,
        service,
        db_url,
        secret_key,
        _data_dir: data_dir,
        shutdown,
        schema,
    }
}

/// An order's line items as `(description, quantity)`, from its API view.
pub fn items_of(order: &Value) -> Vec<(&str, u64)> {
    let items = order["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().map(|i| (i["description"].as_str().unwrap_or(""), i["quantity"].as_u64().unwrap_or(0))).collect()
}

/// A valid order body for `workflow`.
pub fn order_body(workflow: &str) -> Value {
    json!({
        "workflow": workflow,
        "customer": { "name": "Ana Ribeiro", "email": "ana@example.com", "language": "it", "timezone": "Europe/Rome" },
        "items": [{ "description": "Kitchen countertop", "variant": "320 x 65 cm", "quantity": 1, "material": "Calacatta" }],
        "due_date": "2027-03-01",
    })
}

impl TestApp {
    /// Absolute URL of an API path such as `/orders`.
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// GET with the read token.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.api(path)).bearer_auth(&self.read_token).send().await.expect("request")
    }

    /// POST JSON with the write token.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.api(path)).bearer_auth(&self.write_token).json(body).send().await.expect("request")
    }

    /// PATCH JSON with the write token.
    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.client.patch(self.api(path)).bearer_auth(&self.write_token).json(body).send().await.expect("request")
    }

    /// Creates an order and returns its body.
    pub async fn create_order(&self, workflow: &str) -> Value {
        let res = self.post("/orders", &order_body(workflow)).await;
        assert_eq!(res.status(), StatusCode::CREATED, "create order");
        res.json().await.expect("json")
    }

    /// Creates an order and returns its reference.
    pub async fn new_order(&self, workflow: &str) -> String {
        self.create_order(workflow).await["reference"].as_str().expect("reference").to_owned()
    }

    /// Moves an order; returns the response.
    pub async fn move_to(&self, reference: &str, to: &str) -> Response {
        self.post(&format!("/orders/{reference}/moves"), &json!({ "to": to })).await
    }

    /// The order's events.
    pub async fn events(&self, reference: &str) -> Vec<Value> {
        let res = self.get(&format!("/orders/{reference}/events")).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The order's body.
    pub async fn order(&self, reference: &str) -> Value {
        let res = self.get(&format!("/orders/{reference}")).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("json")
    }

    /// Runs one SQL statement on the app's database through a separate connection.
    pub async fn sql(&self, statement: &str) {
        if self.db_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("connect sqlite");
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.expect("sql runs");
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.db_url).await.expect("connect postgres");
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.expect("sql runs");
        }
    }

    /// Sends every message the outbox holds, as a worker would, until none is due; returns
    /// how many jobs were handled. Tests call this instead of running a worker and polling.
    pub async fn drain_outbox(&self) -> usize {
        let notifier = kiln::notify::Notifier::new(self.service.clone()).expect("a notifier");
        let mut handled = 0;
        loop {
            match notifier.drain_once().await.expect("the outbox drains") {
                0 => return handled,
                n => handled += n,
            }
        }
    }

    /// The first column of every row a query returns, as text.
    pub async fn strings(&self, query: &str) -> Vec<String> {
        if self.db_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.db_url).await.expect("connect sqlite");
            sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_all(&mut conn).await.expect("query")
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.db_url).await.expect("connect postgres");
            sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_all(&mut conn).await.expect("query")
        }
    }

    /// Counts rows with one SQL query on the app's database.
    pub async fn count(&self, query: &str) -> i64 {
        count_at(&self.db_url, query).await
    }
}

/// Counts rows with one SQL query on a database URL (SQLite file or PostgreSQL schema), for
/// databases no `TestApp` serves (a `kiln` process the test started).
pub async fn count_at(url: &str, query: &str) -> i64 {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect sqlite");
        sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(&mut conn).await.expect("count")
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect postgres");
        sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(&mut conn).await.expect("count")
    }
}

/// Reads a problem-details body, checking its content type.
pub async fn problem(res: Response) -> Value {
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(ct, "application/problem+json", "errors are problem details");
    res.json().await.expect("problem json")
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    /// `id:` field.
    pub id: Option<String>,
    /// `event:` field.
    pub event: Option<String>,
    /// `data:` lines joined with newlines.
    pub data: String,
}

/// A live stream read the way a browser's EventSource reads it.
pub struct SseClient {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseClient {
    /// Opens `url`, optionally resuming after `last_event_id`; returns the status, the
    /// headers and, for a 200, the stream.
    pub async fn connect(
        client: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Option<SseClient>) {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("request");
        let (status, headers) = (res.status(), res.headers().clone());
        if status != StatusCode::OK {
            return (status, headers, None);
        }
        (status, headers, Some(SseClient { stream: Box::pin(res.bytes_stream()), buffer: String::new() }))
    }

    /// The next event with data (comments and bare `retry:` hints are skipped), or `None`
    /// if none arrives within `wait` or the stream ends.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut lines = 0;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
                        if lines > 0 {
                            event.data.push('\n');
                        }
                        event.data.push_str(v);
                        lines += 1;
                    }
                }
                if event.event.is_some() || lines > 0 {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }
}
