//! Setup the benchmarks share. Each bench (`harness = false`, so its own crate) includes it
//! with `#[path = "common.rs"] mod common;` and uses what it needs.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use kiln::domain::model::{Actor, Customer, LineItem, Order};
use kiln::domain::order::{Channel, EmailAddress, Language, Priority, Source};
use kiln::service::{Created, NewOrder, Rendered, Service};
use serde_json::{Value, json};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------
// Options.
// ---------------------------------------------------------------------------------------

/// Whether cargo asked the bench to list its benchmarks (`cargo bench -- --list`): there is
/// nothing to list.
pub fn listing() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// Whether the flag `name` was given.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The argument after option `name` (`--name VALUE`), if given.
pub fn arg_value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// Option `name` parsed, or `default` when it is absent or does not parse.
pub fn arg<T: FromStr>(name: &str, default: T) -> T {
    arg_value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The value at `p` of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// The server's own time from kiln's `Server-Timing: app;dur=<ms>`, in µs.
pub fn server_time(headers: &hyper::HeaderMap) -> Option<u64> {
    let value = headers.get("server-timing")?.to_str().ok()?;
    let ms: f64 = value.strip_prefix("app;dur=")?.parse().ok()?;
    Some((ms * 1000.0) as u64)
}

// ---------------------------------------------------------------------------------------
// Database and orders, for benches that build the app in-process.
// ---------------------------------------------------------------------------------------

/// The database to run on, and its name: PostgreSQL when `KILN_BENCH_DATABASE_URL` is set
/// (in a fresh `schema`, dropped first; a bench's own constant), else a SQLite file in
/// `data_dir`.
pub async fn database_url(data_dir: &Path, schema: &'static str) -> (String, &'static str) {
    database_url_keeping(data_dir, schema, false).await
}

/// [`database_url`], but with `keep` a PostgreSQL schema left from an earlier run is kept
/// as it is (created when missing), for a bench that can reuse its seeding.
pub async fn database_url_keeping(data_dir: &Path, schema: &'static str, keep: bool) -> (String, &'static str) {
    match std::env::var("KILN_BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect to KILN_BENCH_DATABASE_URL");
            let reset = if keep {
                vec![format!("CREATE SCHEMA IF NOT EXISTS {schema}")]
            } else {
                vec![format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), format!("CREATE SCHEMA {schema}")]
            };
            for sql in reset {
                // Safe: `schema` is a constant of the bench, not input.
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("reset bench schema");
            }
            let sep = if url.contains('?') { '&' } else { '?' };
            (format!("{url}{sep}options=-c%20search_path%3D{schema}"), "PostgreSQL")
        }
        _ => (format!("sqlite://{}", data_dir.join("bench.db").display()), "SQLite"),
    }
}

/// Order number `i`: a stone countertop in fabrication, notified by email.
pub fn new_order(i: usize) -> NewOrder {
    NewOrder {
        reference: None,
        workflow: "stone".to_owned(),
        stage: Some("fabrication".to_owned()),
        priority: Priority::Standard,
        customer: Customer {
            name: format!("Customer {i}"),
            email: EmailAddress::parse(&format!("c{i}@example.com")).ok(),
            phone: None,
            telegram_chat_id: None,
            channels: vec![Channel::Email],
            language: Language::english(),
            timezone: None,
        },
        items: vec![LineItem {
            description: "Countertop".to_owned(),
            variant: Some("300 x 60 cm".to_owned()),
            quantity: 1,
            material: Some("Marble".to_owned()),
            metadata: json!({}),
        }],
        due_date: None,
        notes: String::new(),
        customer_note: String::new(),
        external_ids: Default::default(),
        metadata: json!({}),
        created_at: None,
    }
}

/// Creates orders `order(0..n)` through `Service::create_order`; returns `key(order, tracking
/// URL)` for each.
pub async fn seed(
    service: &Service,
    n: usize,
    order: impl Fn(usize) -> NewOrder,
    key: impl Fn(&Order, &str) -> String,
) -> Vec<String> {
    let actor = Actor { name: "bench".to_owned(), source: Source::System };
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let created = service
            .create_order(order(i), &actor, None, |o, _, url| Rendered { status: 201, body: key(o, url) })
            .await
            .expect("create");
        if let Created::New { response, .. } = created {
            keys.push(response.body);
        }
    }
    keys
}

/// `seed` keyed by order reference.
pub async fn seed_references(service: &Service, n: usize, order: impl Fn(usize) -> NewOrder) -> Vec<String> {
    seed(service, n, order, |o, _| o.reference.to_string()).await
}

// ---------------------------------------------------------------------------------------
// HTTP clients.
// ---------------------------------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection.
pub async fn connect(port: u16) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.set_nodelay(true).ok();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

/// POST `body` as JSON to `{base}/api/v1{path}` with a bearer token; the status and the JSON
/// answer (`null` if it is not JSON).
pub async fn api(client: &reqwest::Client, base: &str, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let res =
        client.post(format!("{base}/api/v1{path}")).bearer_auth(token).json(body).send().await.expect("API request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------
// A real `kiln serve` process.
// ---------------------------------------------------------------------------------------

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// The `kiln serve` process; killed when dropped.
pub struct Server {
    pub child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kiln` with a clean `KILN_*` environment pointing at `data_dir` and `port`.
pub fn kiln_command(bin: &Path, data_dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars() {
        if name.starts_with("KILN_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(data_dir)
        .env("KILN_DATA_DIR", data_dir)
        .env("KILN_BIND", format!("127.0.0.1:{port}"))
        .env("KILN_BASE_URL", format!("http://127.0.0.1:{port}/"))
        .env("KILN_TRACKING_RATE_LIMIT", "10000000")
        .env("KILN_LOG", "warn");
    cmd
}

/// `kiln token create --scope write` on `data_dir` (which creates the database); the token.
pub fn create_write_token(bin: &Path, data_dir: &Path, port: u16) -> String {
    let out = kiln_command(bin, data_dir, port)
        .args(["token", "create", "--name", "bench", "--scope", "write"])
        .stderr(Stdio::null())
        .output()
        .expect("run `kiln token create`");
    assert!(out.status.success(), "kiln token create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("token is text").trim().to_owned()
}

/// Waits up to 30 s for `{base}/healthz` to answer with success.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    loop {
        if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "kiln serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A line of `/proc/{pid}/status` such as `VmRSS`, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS")
}
