//! Orders list, search and board benchmark (issue 11): a shop's history of orders seeded
//! straight into the database (multi-row INSERTs), then 16 concurrent users on keep-alive
//! connections reading `GET /api/v1/orders` from a real server — the first page, a
//! filtered page, searches by email, phone, reference and name fragment, a created range and
//! a deep keyset page — and the store's `board` for a workflow with 5,000 open orders.
//! Each scenario reports the time the clients saw and the server's own (`Server-Timing`),
//! the issue's target; both share the machine's cores with the load generator.
//!
//! ```sh
//! cargo bench --bench list                                   # SQLite, 100,000 orders
//! KILN_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiln_bench cargo bench --bench list
//!                                                            # PostgreSQL, 1,000,000 orders
//! KILN_BENCH_SHORT=1 cargo bench --bench list                # quick run while developing
//! ```
//! Options after `--`: `--orders N` (default 100,000 on SQLite, 1,000,000 on PostgreSQL;
//! 20,000 short), `--clients N` (16), `--seconds N` (10; 2 short), `--warmup N` (2; 1 short),
//! `--only NAME` (one scenario), `--reuse` (PostgreSQL: keep the orders an earlier run with
//! the same `--orders` seeded, for trying a change to kiln without seeding again).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use kiln::app::App;
use kiln::config::Config;
use kiln::domain::workflow::Workflows;
use kiln::service::{Scope, Service};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;

use common::{connect, percentile};

const SCHEMA: &str = "kiln_bench_list";
const DAY_MS: i64 = 86_400_000;
/// Open orders are the newest ones; half of them are stone orders, the board's workflow.
const OPEN: usize = 10_000;
const WORKFLOWS: [&str; 3] = ["print", "jewelry", "jobshop"];
const FIRST: [&str; 24] = [
    "Ana", "Bruno", "Carla", "Dario", "Elena", "Fabio", "Giulia", "Hugo", "Irene", "Jonas", "Karin", "Luca", "Marta",
    "Nico", "Olga", "Paolo", "Rita", "Sergio", "Tina", "Ugo", "Vera", "Walter", "Ximena", "Zoe",
];
const SYLLABLES: [&str; 20] = [
    "ber", "cal", "dor", "fen", "gar", "hol", "lin", "mar", "nov", "pel", "ros", "san", "tor", "val", "zan", "bri",
    "cor", "mes", "tan", "vil",
];

struct Options {
    orders: usize,
    clients: usize,
    seconds: u64,
    warmup: u64,
    only: Option<String>,
}

fn options(postgres: bool) -> Options {
    let short = std::env::var("KILN_BENCH_SHORT").is_ok_and(|v| !v.is_empty() && v != "0");
    let orders = match (short, postgres) {
        (true, _) => 20_000,
        (false, true) => 1_000_000,
        (false, false) => 100_000,
    };
    Options {
        orders: common::arg("--orders", orders),
        clients: common::arg("--clients", 16),
        seconds: common::arg("--seconds", if short { 2 } else { 10 }),
        warmup: common::arg("--warmup", if short { 1 } else { 2 }),
        only: common::arg_value("--only"),
    }
}

/// A tiny xorshift generator, seeded per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// The orders.
// ---------------------------------------------------------------------------------------

/// Order number `i` of `n` (0 is the oldest), deterministic so that the load can name
/// orders that exist.
struct Row {
    reference: String,
    workflow: &'static str,
    stage: String,
    status: &'static str,
    priority: &'static str,
    name: String,
    email: String,
    phone: String,
    due_date: Option<String>,
    stage_entered_at: i64,
    created_at: i64,
}

fn surname(i: usize) -> String {
    let h = i.wrapping_mul(2_654_435_761) >> 3;
    format!("{}{}{}", SYLLABLES[h % 20], SYLLABLES[(h / 20) % 20], SYLLABLES[(h / 400) % 20])
}

fn first_name(i: usize) -> &'static str {
    FIRST[(i.wrapping_mul(40_503) >> 2) % FIRST.len()]
}

fn reference(i: usize) -> String {
    format!("K-{:07}", i + 1)
}

fn email(i: usize) -> String {
    format!("{}.{}{}@mail{}.test", first_name(i).to_lowercase(), surname(i), i % 1000, i % 7)
}

fn phone(i: usize) -> String {
    format!("+3934{:08}", i)
}

/// The history spans three years up to `now`; the newest [`OPEN`] orders are open.
fn created_at(i: usize, n: usize, now: i64) -> i64 {
    let span = 3 * 365 * DAY_MS;
    now - span + (span as f64 * i as f64 / n as f64) as i64
}

fn row(i: usize, n: usize, now: i64, workflows: &Workflows) -> Row {
    let workflow = if i.is_multiple_of(2) { "stone" } else { WORKFLOWS[(i / 2) % 3] };
    let stages = &workflows.get(workflow).expect("preset workflow").stages;
    let open = i + OPEN >= n;
    let created = created_at(i, n, now);
    let (stage, status, entered) = if open {
        // Spread over the working stages; some have sat there for up to two weeks.
        let s = &stages[i % (stages.len() - 1)];
        (s.key.to_string(), "open", now - ((i * 7919) % (14 * 24)) as i64 * 3_600_000)
    } else if i.is_multiple_of(29) {
        (stages[0].key.to_string(), "cancelled", created + DAY_MS)
    } else {
        (stages[stages.len() - 1].key.to_string(), "completed", created + 20 * DAY_MS)
    };
    let priority = match i % 31 {
        0..=2 => "rush",
        3 if open => "hold",
        _ => "standard",
    };
    let due_date = (i % 10 < 7).then(|| {
        DateTime::<Utc>::from_timestamp_millis(created + 30 * DAY_MS).unwrap_or_default().format("%Y-%m-%d").to_string()
    });
    Row {
        reference: reference(i),
        workflow,
        stage,
        status,
        priority,
        name: format!("{} {}", first_name(i), capitalised(&surname(i))),
        email: email(i),
        phone: phone(i),
        due_date,
        stage_entered_at: entered,
        created_at: created,
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

const COLUMNS: &str = "reference, workflow, stage, status, priority, customer_name, customer_email, customer_phone, \
    customer_channels, customer_language, due_date, notes, customer_note, external_ids, metadata, search_text, \
    version, stage_entered_at, created_at, updated_at";
const PER_ROW: usize = 20;
const BATCH: usize = 1000;

fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=PER_ROW).map(|c| format!("${}", r * PER_ROW + c)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!("INSERT INTO orders ({COLUMNS}) VALUES {}", values.join(", "))
}

macro_rules! bind_rows {
    ($query:expr, $rows:expr) => {{
        let mut q = $query;
        for r in $rows {
            // The same text kiln stores for search: reference, name, email and phone, lowered.
            let search = format!("{} {} {} {}", r.reference, r.name, r.email, r.phone).to_lowercase();
            q = q
                .bind(r.reference)
                .bind(r.workflow)
                .bind(r.stage)
                .bind(r.status)
                .bind(r.priority)
                .bind(r.name)
                .bind(r.email)
                .bind(r.phone)
                .bind("[\"email\"]")
                .bind("en")
                .bind(r.due_date)
                .bind("")
                .bind("")
                .bind("{}")
                .bind("{}")
                .bind(search)
                .bind(1_i64)
                .bind(r.stage_entered_at)
                .bind(r.created_at)
                .bind(r.stage_entered_at);
        }
        q
    }};
}

/// When the PostgreSQL database holds exactly `n` orders (an earlier run's), the newest's
/// creation time.
async fn seeded(url: &str, n: usize) -> Option<i64> {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        return None;
    }
    let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
    let (count, newest): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), max(created_at) FROM orders").fetch_one(&mut conn).await.ok()?;
    newest.filter(|_| count == n as i64)
}

/// Inserts orders `0..n` in batches of [`BATCH`] rows, on a connection of its own.
async fn seed(url: &str, n: usize, now: i64, workflows: &Workflows) {
    use sqlx::Connection;
    let batches = n.div_ceil(BATCH);
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect SQLite");
        let mut tx = conn.begin().await.expect("begin");
        for b in 0..batches {
            let rows: Vec<Row> = (b * BATCH..((b + 1) * BATCH).min(n)).map(|i| row(i, n, now, workflows)).collect();
            let sql = insert_sql(rows.len());
            bind_rows!(sqlx::query(sqlx::AssertSqlSafe(sql)), rows).execute(&mut *tx).await.expect("insert");
        }
        tx.commit().await.expect("commit");
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect PostgreSQL");
        for b in 0..batches {
            let rows: Vec<Row> = (b * BATCH..((b + 1) * BATCH).min(n)).map(|i| row(i, n, now, workflows)).collect();
            let sql = insert_sql(rows.len());
            bind_rows!(sqlx::query(sqlx::AssertSqlSafe(sql)), rows).execute(&mut conn).await.expect("insert");
        }
        // A database that has been running has statistics and a visibility map: autovacuum
        // vacuums and analyzes a table after this many inserts — `orders` and, on
        // PostgreSQL, `order_search`, which its trigger filled (left to autovacuum, it would
        // be vacuumed during the measurements).
        sqlx::raw_sql("VACUUM ANALYZE orders, order_search").execute(&mut conn).await.expect("analyze");
    }
}

// ---------------------------------------------------------------------------------------
// Load.
// ---------------------------------------------------------------------------------------

struct Load {
    latencies: Vec<u64>,
    /// What the server said it took (`Server-Timing`), µs; empty for the store's board read.
    server: Vec<u64>,
    not_ok: BTreeMap<u16, u64>,
    /// How many orders the answers held, on average.
    items: f64,
}

fn request(path: &str, token: &str) -> hyper::Request<Empty<Bytes>> {
    hyper::Request::get(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::new())
        .expect("request")
}

/// GET `path` on a keep-alive connection, reconnecting once if the server closed it; the
/// status, the body and the server's own time.
async fn get(sender: &mut Sender, port: u16, path: &str, token: &str) -> (u16, Bytes, Option<u64>) {
    for _ in 0..2 {
        if sender.ready().await.is_err() {
            *sender = connect(port).await;
            continue;
        }
        match sender.send_request(request(path, token)).await {
            Ok(res) => {
                let status = res.status().as_u16();
                let server = common::server_time(res.headers());
                return (status, res.into_body().collect().await.expect("body").to_bytes(), server);
            }
            Err(_) => *sender = connect(port).await,
        }
    }
    panic!("GET {path}: no answer twice");
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// `clients` users, each on its own keep-alive connection, GET paths from `paths` at random
/// for `seconds`, each waiting for its answer before sending the next.
async fn load(port: u16, token: &Arc<String>, paths: &Arc<Vec<String>>, clients: usize, seconds: u64) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (paths, token) = (paths.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x2545_F491_4F6C_DD1D));
            let mut sender = connect(port).await;
            let (mut latencies, mut server, mut not_ok, mut items) =
                (Vec::new(), Vec::new(), BTreeMap::<u16, u64>::new(), 0usize);
            while Instant::now() < deadline {
                let path = &paths[rng.below(paths.len())];
                let started = Instant::now();
                let (status, body, took) = get(&mut sender, port, path, &token).await;
                latencies.push(started.elapsed().as_micros() as u64);
                server.extend(took);
                if status == 200 {
                    let page: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    items += page["items"].as_array().map_or(0, Vec::len);
                } else {
                    *not_ok.entry(status).or_default() += 1;
                }
            }
            (latencies, server, not_ok, items)
        }));
    }
    let mut all = Load { latencies: Vec::new(), server: Vec::new(), not_ok: BTreeMap::new(), items: 0.0 };
    let mut items = 0;
    for t in tasks {
        let (latencies, server, not_ok, n) = t.await.expect("client");
        all.latencies.extend(latencies);
        all.server.extend(server);
        for (s, k) in not_ok {
            *all.not_ok.entry(s).or_default() += k;
        }
        items += n;
    }
    all.latencies.sort_unstable();
    all.server.sort_unstable();
    all.items = items as f64 / all.latencies.len().max(1) as f64;
    all
}

/// The board of `stone` read by `clients` concurrent users straight from the store.
async fn load_board(service: &Service, clients: usize, seconds: u64) -> (Load, usize) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let workflow = service.workflows().get("stone").expect("stone").clone();
            let (mut latencies, mut cards) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let started = Instant::now();
                let board = kiln::store::orders::board(service.db(), &workflow).await.expect("board");
                latencies.push(started.elapsed().as_micros() as u64);
                cards = board.columns.iter().map(|c| c.cards.len()).sum();
            }
            (latencies, cards)
        }));
    }
    let (mut latencies, mut cards) = (Vec::new(), 0);
    for t in tasks {
        let (l, c) = t.await.expect("client");
        latencies.extend(l);
        cards = c;
    }
    latencies.sort_unstable();
    (Load { latencies, server: Vec::new(), not_ok: BTreeMap::new(), items: cards as f64 }, cards)
}

fn report(name: &str, alone: &Load, l: &Load, clients: usize, seconds: u64) {
    println!(
        "  {name:<22} 1 user p50 {:>6.2} ms | {clients} users: {:>6.0} req/s, p50 {:>6.2} ms, p99 {:>6.2} ms, max {:>7.2} ms\
         {} ({} requests in {seconds} s, {:.1} orders each){}",
        percentile(&alone.latencies, 0.5),
        l.latencies.len() as f64 / seconds as f64,
        percentile(&l.latencies, 0.5),
        percentile(&l.latencies, 0.99),
        l.latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        if l.server.is_empty() {
            String::new()
        } else {
            format!(" | server p50 {:>6.2} ms, p99 {:>6.2} ms", percentile(&l.server, 0.5), percentile(&l.server, 0.99))
        },
        l.latencies.len(),
        l.items,
        if l.not_ok.is_empty() { String::new() } else { format!("; NOT 200: {:?}", l.not_ok) },
    );
}

/// The requests of each scenario: a few hundred paths naming orders that exist.
fn scenarios(n: usize, now: i64, deep_cursors: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut pick = |k: usize| -> Vec<usize> { (0..k).map(|_| rng.below(n)).collect() };
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let iso = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339();
    vec![
        ("first page", vec!["/api/v1/orders".to_owned()]),
        (
            "filtered page",
            ["stone", "print", "jewelry", "jobshop"]
                .iter()
                .map(|w| format!("/api/v1/orders?workflow={w}&status=open&late=true"))
                .collect(),
        ),
        ("search email", pick(500).iter().map(|&i| format!("/api/v1/orders?q={}", encode(&email(i)))).collect()),
        (
            "search phone",
            pick(500)
                .iter()
                .map(|&i| {
                    let p = phone(i);
                    format!("/api/v1/orders?q={}", encode(&format!("{} {} {}", &p[..3], &p[3..6], &p[6..])))
                })
                .collect(),
        ),
        (
            "search reference",
            pick(500).iter().map(|&i| format!("/api/v1/orders?q={}", reference(i).to_lowercase())).collect(),
        ),
        (
            "search name fragment",
            pick(500)
                .iter()
                .map(|&i| {
                    let s = surname(i);
                    format!("/api/v1/orders?q={}", &s[i % 4..i % 4 + 5])
                })
                .collect(),
        ),
        (
            "created range (week)",
            pick(500)
                .iter()
                .map(|&i| {
                    let from = created_at(i, n, now);
                    format!(
                        "/api/v1/orders?created_after={}&created_before={}",
                        encode(&iso(from)),
                        encode(&iso(from + 7 * DAY_MS))
                    )
                })
                .collect(),
        ),
        ("deep keyset page", deep_cursors.iter().map(|c| format!("/api/v1/orders?cursor={c}")).collect()),
    ]
}

fn main() {
    if common::listing() {
        return;
    }
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let reuse = common::flag("--reuse");
        let (url, engine) = common::database_url_keeping(data_dir.path(), SCHEMA, reuse).await;
        let o = options(engine == "PostgreSQL");
        let mut config = Config::load(None, &BTreeMap::new()).expect("config");
        config.data_dir = data_dir.path().to_path_buf();
        config.database_url = Some(url.clone().into());
        config.bind = "127.0.0.1:0".parse().expect("addr");
        config.log = "warn".to_owned();
        config.notify.worker.enabled = false;
        let app = server_rt.spawn(App::build(config)).await.expect("join").expect("app");
        let service = app.service().clone();
        let (token, _) = service.create_token("bench", Scope::Read).await.expect("token");
        let token = Arc::new(token);

        let mut now = Utc::now().timestamp_millis();
        println!(
            "orders list on {engine}: {} orders, {} open ({} stone)",
            o.orders,
            OPEN.min(o.orders),
            OPEN.min(o.orders) / 2
        );
        let seeding = Instant::now();
        match seeded(&url, o.orders).await.filter(|_| reuse) {
            Some(newest) => {
                // The newest order was made a 1/n-th of the history before the seeding's now.
                now = newest + 3 * 365 * DAY_MS / o.orders as i64;
                println!("  reusing the orders seeded before");
            }
            None => {
                seed(&url, o.orders, now, service.workflows()).await;
                // What kiln does at start and every hour (SQLite's statistics; PostgreSQL's
                // come from the seeding's VACUUM ANALYZE, as autovacuum would gather them).
                service.db().optimize().await.expect("optimize");
                println!("  seeded in {:.1} s", seeding.elapsed().as_secs_f64());
            }
        }

        let port = app.port();
        let shutdown = CancellationToken::new();
        let server = server_rt.spawn(app.run(shutdown.clone()));

        // Deep cursors: the cursor after the last order of a page far down the list.
        let mut deep = Vec::new();
        let mut sender = connect(port).await;
        for k in 1..=20 {
            let before = created_at(o.orders * k / 25, o.orders, now);
            let iso = DateTime::<Utc>::from_timestamp_millis(before).unwrap_or_default().format("%Y-%m-%d");
            let (_, body, _) = get(&mut sender, port, &format!("/api/v1/orders?created_before={iso}"), &token).await;
            let page: Value = serde_json::from_slice(&body).expect("json");
            deep.extend(page["next_cursor"].as_str().map(str::to_owned));
        }

        for (name, paths) in scenarios(o.orders, now, &deep) {
            if o.only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let paths = Arc::new(paths);
            let alone = load(port, &token, &paths, 1, o.warmup).await;
            let l = load(port, &token, &paths, o.clients, o.seconds).await;
            report(name, &alone, &l, o.clients, o.seconds);
        }
        if o.only.as_deref().is_none_or(|only| only == "board") {
            let (alone, _) = load_board(&service, 1, o.warmup).await;
            let (l, cards) = load_board(&service, o.clients, o.seconds).await;
            let mut l = l;
            l.items = cards as f64;
            report("board (store)", &alone, &l, o.clients, o.seconds);
        }
        shutdown.cancel();
        let _ = server.await;
    });
    server_rt.shutdown_timeout(Duration::from_secs(1));
}
