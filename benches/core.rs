//! Core benchmark: stage moves per second (each a full transaction: order + audit event +
//! outbox jobs) with several concurrent writers over 10k+ orders, and order lookup latency
//! through the HTTP API at 64 concurrent clients.
//!
//! ```sh
//! cargo bench --bench core                       # SQLite
//! KILN_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/kiln_bench cargo bench --bench core
//! ```
//! Options after `--`: `--orders N` (default 10000), `--writers N` (8), `--seconds N` (10),
//! `--clients N` (64).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use kiln::app::App;
use kiln::config::Config;
use kiln::domain::change::Change;
use kiln::domain::model::Actor;
use kiln::domain::order::Source;
use kiln::domain::transition::Action;
use kiln::service::{Scope, Service};
use kiln::store::{Db, Tx};
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;

use common::percentile;

struct Options {
    orders: usize,
    writers: usize,
    seconds: u64,
    clients: usize,
}

fn options() -> Options {
    Options {
        orders: common::arg("--orders", 10_000),
        writers: common::arg("--writers", 8),
        seconds: common::arg("--seconds", 10),
        clients: common::arg("--clients", 64),
    }
}

/// Each writer owns a disjoint slice of orders and moves them back and forth between
/// fabrication and quality check (both notify: every move writes the order, one event and
/// two outbox jobs in one transaction).
async fn bench_moves(service: &Service, refs: &[String], o: &Options) {
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let chunk = refs.len().div_ceil(o.writers);
    let mut tasks = Vec::new();
    for slice in refs.chunks(chunk) {
        let service = service.clone();
        let slice = slice.to_vec();
        tasks.push(tokio::spawn(async move {
            let actor = Actor { name: "bench".to_owned(), source: Source::Ops };
            let mut stage_of: Vec<bool> = vec![false; slice.len()]; // false = fabrication
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let k = i % slice.len();
                let to = if stage_of[k] { "fabrication" } else { "quality_check" };
                let change = Change::Act {
                    action: Action::Move { to: to.to_owned() },
                    expected_stage: None,
                    note: None,
                    internal_note: None,
                    photo_ids: vec![],
                };
                let started = Instant::now();
                service.change(&slice[k], &change, &actor).await.expect("move");
                latencies.push(started.elapsed().as_micros() as u64);
                stage_of[k] = !stage_of[k];
                i += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "  stage moves: {:.0} moves/s ({} moves, {} writers, {:.1} s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        all.len() as f64 / elapsed,
        all.len(),
        o.writers,
        elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
}

const BARE_UPDATE: &str = "UPDATE orders SET updated_at = $1, version = version + 1 WHERE id = $2";
const BARE_EVENT: &str = "INSERT INTO order_events (order_id, kind, actor, source, visibility, photo_ids, data, created_at) \
    VALUES ($1, 'noted', 'bench', 'system', 'internal', '[]', '{}', $2) RETURNING id";
const BARE_JOBS: &str = "INSERT INTO outbox (kind, order_id, event_id, payload, status, attempts, run_at, created_at, updated_at) \
    VALUES ('publish_event', $1, $2, '{}', 'pending', 0, $3, $3, $3), ('notify_customer', $1, $2, '{}', 'pending', 0, $3, $3, $3)";

/// The baseline: the same row writes as a move (order update, event, two jobs) as a bare
/// 3-statement sqlx transaction, with no kiln code around it.
async fn bare_transaction(db: &Db, order_id: i64, now: i64) -> Result<(), sqlx::Error> {
    match db.begin().await? {
        Tx::Sqlite(mut tx) => {
            sqlx::query(BARE_UPDATE).bind(now).bind(order_id).execute(&mut *tx).await?;
            let event: i64 = sqlx::query_scalar(BARE_EVENT).bind(order_id).bind(now).fetch_one(&mut *tx).await?;
            sqlx::query(BARE_JOBS).bind(order_id).bind(event).bind(now).execute(&mut *tx).await?;
            tx.commit().await
        }
        Tx::Postgres(mut tx) => {
            sqlx::query(BARE_UPDATE).bind(now).bind(order_id).execute(&mut *tx).await?;
            let event: i64 = sqlx::query_scalar(BARE_EVENT).bind(order_id).bind(now).fetch_one(&mut *tx).await?;
            sqlx::query(BARE_JOBS).bind(order_id).bind(event).bind(now).execute(&mut *tx).await?;
            tx.commit().await
        }
    }
}

async fn bench_bare(service: &Service, refs: &[String], o: &Options) {
    let mut ids = Vec::with_capacity(refs.len());
    for r in refs {
        ids.push(service.order_id(r).await.expect("lookup").expect("order"));
    }
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let chunk = ids.len().div_ceil(o.writers);
    let mut tasks = Vec::new();
    for slice in ids.chunks(chunk) {
        let db = service.db().clone();
        let slice = slice.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                bare_transaction(&db, slice[i % slice.len()], kiln::store::now_ms()).await.expect("bare transaction");
                latencies.push(started.elapsed().as_micros() as u64);
                i += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "  baseline, bare sqlx transaction with the same writes: {:.0} tx/s ({} writers); p50 {:.2} ms, p99 {:.2} ms",
        all.len() as f64 / elapsed,
        o.writers,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    );
}

/// 64 clients, each on its own keep-alive HTTP/1.1 connection, fetch random orders for
/// `seconds`; returns (requests per second, sorted latencies in µs).
async fn run_lookups(port: u16, token: &str, refs: &[String], clients: usize, seconds: u64) -> (f64, Vec<u64>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.to_owned();
        let refs = refs.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut sender = common::connect(port).await;
            let mut latencies = Vec::new();
            let mut i = c * 7919;
            while Instant::now() < deadline {
                let reference = &refs[i % refs.len()];
                i += 104_729;
                let req = hyper::Request::get(format!("/api/v1/orders/{reference}"))
                    .header("host", "localhost")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let started = Instant::now();
                let res = sender.send_request(req).await.expect("response");
                assert_eq!(res.status(), 200);
                res.into_body().collect().await.expect("body");
                latencies.push(started.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all.len() as f64 / elapsed, all)
}

async fn bench_lookups(port: u16, token: &str, refs: &[String], o: &Options) {
    let (rate, cold) = run_lookups(port, token, refs, o.clients, 3).await;
    println!(
        "  order lookups, first 3 s after start (cold cache): {rate:.0} req/s; p50 {:.2} ms, p99 {:.2} ms",
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
    );
    let (rate, warm) = run_lookups(port, token, refs, o.clients, o.seconds).await;
    println!(
        "  order lookups (GET /api/v1/orders/{{ref}}, {} clients, {} s): {rate:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        o.clients,
        o.seconds,
        percentile(&warm, 0.5),
        percentile(&warm, 0.99),
        warm.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
}

fn main() {
    if common::listing() {
        return;
    }
    let o = options();
    // The server gets its own runtime, as if it were another process; the load generator
    // runs on this one. Both share the machine's cores, as wrk on the same host would.
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (url, backend) = common::database_url(data_dir.path(), "bench").await;
        let mut config = Config::load(None, &BTreeMap::new()).expect("config");
        config.data_dir = data_dir.path().to_path_buf();
        config.database_url = Some(url.into());
        config.bind = "127.0.0.1:0".parse().expect("addr");
        config.log = "warn".to_owned();
        // This benchmark measures moves and lookups alone; `benches/notify.rs` measures sending.
        config.notify.worker.enabled = false;
        let app = server_rt.spawn(App::build(config)).await.expect("join").expect("app");
        let service = app.service().clone();
        println!("kiln core benchmark on {backend} ({} orders)", o.orders);
        let seeding = Instant::now();
        let refs = common::seed_references(&service, o.orders, common::new_order).await;
        println!("  seeded {} orders in {:.1} s", refs.len(), seeding.elapsed().as_secs_f64());

        bench_moves(&service, &refs, &o).await;

        let (token, _) = service.create_token("bench", Scope::Read).await.expect("token");
        let port = app.port();
        let shutdown = CancellationToken::new();
        let server = server_rt.spawn(app.run(shutdown.clone()));
        bench_lookups(port, &token, &refs, &o).await;
        // Last: it writes behind kiln's back, which would make kiln's cached order states
        // stale (in production every write goes through kiln, or arrives by NOTIFY).
        bench_bare(&service, &refs, &o).await;
        shutdown.cancel();
        let _ = server.await;
    });
}
