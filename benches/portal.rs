//! Tracking-page benchmark: the customer's page `/t/{token}` under 64 concurrent clients,
//! against a bare axum handler serving a static body of the same size in the same run; then
//! 10,000 live watchers (`/t/{token}/events`) of one order on a real `kiln serve` process:
//! memory per watcher, and how long a stage move takes to reach all of them.
//!
//! ```sh
//! cargo bench --bench portal
//! ```
//! Options after `--`: `--orders N` (default 1000), `--clients N` (64), `--seconds N` (10),
//! `--warmup N` (3), `--watchers N` (10000), `--moves N` (5), `--kiln PATH` (the `kiln`
//! binary for the watcher part; default: the one cargo built for this bench), `--only pages`
//! or `--only watchers`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use kiln::app::App;
use kiln::config::Config;
use kiln::service::Service;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;

use common::{Server, api, connect, create_write_token, free_port, kiln_command, percentile, rss_kib, wait_healthy};

struct Options {
    orders: usize,
    clients: usize,
    seconds: u64,
    warmup: u64,
    watchers: usize,
    moves: usize,
    kiln: PathBuf,
    /// `pages` or `watchers` to run one part only.
    only: Option<String>,
}

fn options() -> Options {
    Options {
        orders: common::arg("--orders", 1000),
        clients: common::arg("--clients", 64),
        seconds: common::arg("--seconds", 10),
        warmup: common::arg("--warmup", 3),
        watchers: common::arg("--watchers", 10_000),
        moves: common::arg("--moves", 5),
        kiln: common::arg_value("--kiln").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from),
        only: common::arg_value("--only"),
    }
}

/// A tiny xorshift generator: each client picks its orders at random without sharing state.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Part 1: tracking page throughput against a bare handler.
// ---------------------------------------------------------------------------------------

/// Seeds `n` orders; returns the path of each one's tracking page (`/t/{token}`).
async fn seed(service: &Service, n: usize) -> Vec<String> {
    common::seed(service, n, common::new_order, |_, url| url::Url::parse(url).expect("tracking URL").path().to_owned())
        .await
}

/// GET `path` once; returns the status and the body.
async fn fetch(port: u16, path: &str) -> (u16, Bytes) {
    let mut sender = connect(port).await;
    let req = hyper::Request::get(path).header("host", "localhost").body(Empty::new()).expect("request");
    let res = sender.send_request(req).await.expect("response");
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.expect("body").to_bytes())
}

struct Load {
    rate: f64,
    latencies: Vec<u64>,
    /// Responses by status.
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no response at all.
    errors: u64,
    bytes: u64,
}

impl Load {
    fn not_ok(&self) -> u64 {
        self.statuses.iter().filter(|(s, _)| **s != 200).map(|(_, n)| n).sum::<u64>() + self.errors
    }
}

/// `clients` clients, each on its own keep-alive connection, GET random paths for `seconds`.
async fn load(port: u16, paths: &Arc<Vec<String>>, clients: usize, seconds: u64) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let paths = paths.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x2545_F491_4F6C_DD1D));
            let mut sender = connect(port).await;
            let mut latencies = Vec::new();
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            let (mut errors, mut bytes) = (0u64, 0u64);
            while Instant::now() < deadline {
                let path = &paths[rng.below(paths.len())];
                let req = hyper::Request::get(path.as_str())
                    .header("host", "localhost")
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let started = Instant::now();
                let body = match sender.send_request(req).await {
                    Ok(res) => {
                        *statuses.entry(res.status().as_u16()).or_default() += 1;
                        res.into_body().collect().await.map(|b| b.to_bytes())
                    }
                    Err(e) => Err(e),
                };
                match body {
                    Ok(body) => {
                        bytes += body.len() as u64;
                        latencies.push(started.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        errors += 1;
                        sender = connect(port).await;
                    }
                }
            }
            (latencies, statuses, errors, bytes)
        }));
    }
    let started = Instant::now();
    let mut all = Load { rate: 0.0, latencies: Vec::new(), statuses: BTreeMap::new(), errors: 0, bytes: 0 };
    for t in tasks {
        let (latencies, statuses, errors, bytes) = t.await.expect("client");
        all.latencies.extend(latencies);
        for (s, n) in statuses {
            *all.statuses.entry(s).or_default() += n;
        }
        all.errors += errors;
        all.bytes += bytes;
    }
    all.rate = all.latencies.len() as f64 / started.elapsed().as_secs_f64();
    all.latencies.sort_unstable();
    all
}

fn report(name: &str, l: &Load, clients: usize, seconds: u64) {
    let n = l.latencies.len().max(1) as u64;
    println!(
        "  {name}: {:.0} req/s ({} requests, {clients} clients, {seconds} s, {} bytes each); p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; non-200: {}{}",
        l.rate,
        l.latencies.len(),
        l.bytes / n,
        percentile(&l.latencies, 0.5),
        percentile(&l.latencies, 0.99),
        l.latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        l.not_ok(),
        if l.not_ok() > 0 { format!(" {:?}, {} without response", l.statuses, l.errors) } else { String::new() },
    );
}

/// A bare axum router answering `/t/{token}` with `body` (no lookup, no rendering, no layers).
fn bare_router(body: Bytes) -> Router {
    Router::new().route(
        "/t/{token}",
        get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], body) }
        }),
    )
}

fn bench_pages(o: &Options) {
    // The servers get their own runtime, as if they were another process; the load
    // generator runs on this one. Both share the machine's cores.
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::load(None, &BTreeMap::new()).expect("config");
        config.data_dir = data_dir.path().to_path_buf();
        config.database_url = Some(format!("sqlite://{}", data_dir.path().join("bench.db").display()).into());
        config.bind = "127.0.0.1:0".parse().expect("addr");
        config.log = "warn".to_owned();
        // 64 clients share one address: the per-address limit (120/min) would answer 429.
        config.tracking.rate_limit_per_minute = 10_000_000;
        let app = server_rt.spawn(App::build(config)).await.expect("join").expect("app");
        let service = app.service().clone();
        println!("tracking pages on SQLite ({} orders)", o.orders);
        let seeding = Instant::now();
        let paths = Arc::new(seed(&service, o.orders).await);
        println!("  seeded {} orders in {:.1} s", paths.len(), seeding.elapsed().as_secs_f64());

        let port = app.port();
        let shutdown = CancellationToken::new();
        let server = server_rt.spawn(app.run(shutdown.clone()));

        // A typical page: its size is what the bare handler serves.
        let mut sizes = Vec::new();
        for path in paths.iter().take(20) {
            let (status, body) = fetch(port, path).await;
            assert_eq!(status, 200, "GET {path}");
            sizes.push(body.len());
        }
        let (_, page) = fetch(port, &paths[0]).await;
        println!(
            "  tracking page size: {} bytes (first 20 orders: {}..{} bytes)",
            page.len(),
            sizes.iter().min().copied().unwrap_or(0),
            sizes.iter().max().copied().unwrap_or(0)
        );

        let bare_listener = server_rt.spawn(TcpListener::bind("127.0.0.1:0")).await.expect("join");
        let bare_listener = bare_listener.expect("bind bare");
        let bare_port = bare_listener.local_addr().expect("addr").port();
        let bare_stop = CancellationToken::new();
        let stop = bare_stop.clone();
        let bare = server_rt.spawn(async move {
            axum::serve(bare_listener, bare_router(page)).with_graceful_shutdown(stop.cancelled_owned()).await
        });

        let warm = load(port, &paths, o.clients, o.warmup).await;
        println!("  kiln warm-up ({} s): {:.0} req/s, non-200: {}", o.warmup, warm.rate, warm.not_ok());
        let kiln = load(port, &paths, o.clients, o.seconds).await;
        report("kiln GET /t/{token}", &kiln, o.clients, o.seconds);

        let warm = load(bare_port, &paths, o.clients, o.warmup).await;
        println!("  bare warm-up ({} s): {:.0} req/s, non-200: {}", o.warmup, warm.rate, warm.not_ok());
        let base = load(bare_port, &paths, o.clients, o.seconds).await;
        report("bare axum handler, static body", &base, o.clients, o.seconds);
        println!("  kiln / bare handler: {:.0}% (target >= 50%)", 100.0 * kiln.rate / base.rate.max(1.0));

        shutdown.cancel();
        bare_stop.cancel();
        let _ = server.await;
        let _ = bare.await;
    });
    // Connections the clients left open must not keep the server runtime alive.
    server_rt.shutdown_timeout(Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------
// Part 2: 10,000 live watchers on a real `kiln serve` process.
// ---------------------------------------------------------------------------------------

/// Raises this process's open-file limit to its hard limit (children inherit it).
fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// What watcher tasks report.
enum Seen {
    /// Connected, with the id of the state it was sent first.
    Ready(i64),
    /// An `update` event with this id was completely received at this instant.
    Update(i64, Instant),
    /// The connection failed or ended.
    Failed(String),
}

/// One watcher: a raw HTTP/1.1 GET and a line reader, reporting each `update` event.
async fn watch(port: u16, path: Arc<String>, opening: Arc<Semaphore>, tx: mpsc::UnboundedSender<Seen>) {
    let fail = |tx: &mpsc::UnboundedSender<Seen>, why: String| {
        let _ = tx.send(Seen::Failed(why));
    };
    let permit = opening.acquire_owned().await.expect("semaphore");
    let mut stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => return fail(&tx, format!("connect: {e}")),
    };
    let request = format!("GET {path}/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return fail(&tx, format!("write: {e}"));
    }
    let mut reader = BufReader::with_capacity(1024, stream);
    let mut line = Vec::with_capacity(256);
    // Status line and headers.
    let mut first = true;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return fail(&tx, "closed during headers".to_owned()),
            Ok(_) => {}
            Err(e) => return fail(&tx, format!("read: {e}")),
        }
        if first {
            if !line.starts_with(b"HTTP/1.1 200") {
                return fail(&tx, String::from_utf8_lossy(&line).trim().to_owned());
            }
            first = false;
        } else if line == b"\r\n" {
            break;
        }
    }
    // The chunked body: chunk-size lines never start with `id: ` or `event: `, and each
    // event ends with an empty line.
    let (mut id, mut update, mut ready) = (None::<i64>, false, Some(permit));
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return fail(&tx, "stream ended".to_owned()),
            Ok(_) => {}
            Err(e) => return fail(&tx, format!("read: {e}")),
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(v) = text.strip_prefix(b"id: ") {
            id = std::str::from_utf8(v).ok().and_then(|v| v.trim().parse().ok());
        } else if text == b"event: update" {
            update = true;
        } else if text.is_empty() && update {
            let at = Instant::now();
            let id = id.take().unwrap_or(-1);
            update = false;
            let seen = match ready.take() {
                Some(permit) => {
                    drop(permit);
                    Seen::Ready(id)
                }
                None => Seen::Update(id, at),
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    }
}

fn bench_watchers(o: &Options) {
    let open_files = raise_open_files();
    let needed = o.watchers as u64 + 200;
    assert!(open_files >= needed, "open-file limit {open_files} is below the {needed} needed; raise `ulimit -Hn`");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    println!("live watchers on `kiln serve` ({}), SQLite, open-file limit {open_files}", o.kiln.display());

    let api_token = create_write_token(&o.kiln, data_dir.path(), port);

    let child = kiln_command(&o.kiln, data_dir.path(), port)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn `kiln serve`");
    let mut server = Server { child };
    // The server's log, passed on, except sqlx's warnings that a query waited over 2 s for a
    // pooled connection: those are counted (a symptom worth reporting, 10,000 lines long).
    let pool_waits = Arc::new(AtomicU64::new(0));
    if let Some(stderr) = server.child.stderr.take() {
        let pool_waits = pool_waits.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("slow_acquire_threshold") {
                    pool_waits.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("kiln: {line}");
                }
            }
        });
    }
    let pid = server.child.id();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        wait_healthy(&client, &base).await;
        let order = json!({
            "workflow": "stone",
            "stage": "fabrication",
            "customer": { "name": "Ana Ribeiro", "email": "ana@example.com", "language": "en" },
            "items": [{ "description": "Kitchen countertop", "variant": "320 x 65 cm", "quantity": 1, "material": "Calacatta" }],
        });
        let (status, created) = api(&client, &base, &api_token, "/orders", &order).await;
        assert_eq!(status, 201, "create order: {created}");
        let reference = created["reference"].as_str().expect("reference").to_owned();
        let url = url::Url::parse(created["tracking_url"].as_str().expect("tracking_url")).expect("URL");
        let path = Arc::new(url.path().to_owned());

        // Warm the server up (page rendered, one watcher connected and gone) before measuring.
        let page = client.get(format!("{base}{path}")).send().await.expect("page");
        assert_eq!(page.status(), 200, "tracking page");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let one = tokio::spawn(watch(port, path.clone(), Arc::new(Semaphore::new(1)), tx));
        match rx.recv().await {
            Some(Seen::Ready(_)) => {}
            Some(Seen::Failed(why)) => panic!("watcher failed: {why}"),
            _ => panic!("watcher got no first event"),
        }
        one.abort();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_before = rss_kib(pid);

        // Open the watchers, a few hundred connections at a time (the accept backlog).
        let (tx, mut rx) = mpsc::unbounded_channel();
        let opening = Arc::new(Semaphore::new(256));
        let connecting = Instant::now();
        let mut tasks = Vec::with_capacity(o.watchers);
        for _ in 0..o.watchers {
            tasks.push(tokio::spawn(watch(port, path.clone(), opening.clone(), tx.clone())));
        }
        drop(tx);
        let (mut ready, mut failed, mut first_id) = (0usize, Vec::new(), BTreeMap::<i64, usize>::new());
        while ready + failed.len() < o.watchers {
            match rx.recv().await {
                Some(Seen::Ready(id)) => {
                    ready += 1;
                    *first_id.entry(id).or_default() += 1;
                }
                Some(Seen::Failed(why)) => failed.push(why),
                Some(Seen::Update(..)) => {}
                None => break,
            }
        }
        let connect_time = connecting.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after = rss_kib(pid);
        let delta = rss_after.saturating_sub(rss_before);
        println!(
            "  {ready} watchers connected in {connect_time:.1} s ({} failed{}); first event ids {first_id:?}",
            failed.len(),
            failed.first().map(|f| format!(", e.g. {f}")).unwrap_or_default(),
        );
        println!(
            "  server RSS {:.1} MiB before, {:.1} MiB with {ready} watchers: {:.1} KiB per watcher (target < 40 KB)",
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
            delta as f64 / ready.max(1) as f64,
        );

        let mut last_id = first_id.keys().next_back().copied().unwrap_or(0);
        for m in 1..=o.moves {
            let to = if m % 2 == 1 { "quality_check" } else { "fabrication" };
            let waits_before = pool_waits.load(Ordering::Relaxed);
            let sent = Instant::now();
            let mover = {
                let (client, base, token) = (client.clone(), base.clone(), api_token.clone());
                let path = format!("/orders/{reference}/moves");
                tokio::spawn(async move {
                    let (status, body) = api(&client, &base, &token, &path, &json!({ "to": to })).await;
                    (status, body, sent.elapsed())
                })
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let (mut latencies, mut ids, mut late, mut failures) = (Vec::new(), BTreeMap::<i64, usize>::new(), 0, 0);
            while latencies.len() < ready {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(Seen::Update(id, at))) if id > last_id => {
                        latencies.push(at.saturating_duration_since(sent).as_micros() as u64);
                        *ids.entry(id).or_default() += 1;
                    }
                    Ok(Some(Seen::Update(..))) => late += 1,
                    Ok(Some(Seen::Failed(_))) => failures += 1,
                    Ok(Some(Seen::Ready(_))) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            let (status, body, answered) = mover.await.expect("mover");
            assert!(status < 300, "move to {to}: {status} {body}");
            latencies.sort_unstable();
            println!(
                "  move {m} (to {to}): all {} watchers updated in {:.1} ms (p50 {:.1} ms, p99 {:.1} ms); missed {}; \
                 move answered in {:.1} ms; ids {ids:?}; database pool waits over 2 s: {}{}",
                latencies.len(),
                latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                ready - latencies.len(),
                answered.as_secs_f64() * 1000.0,
                pool_waits.load(Ordering::Relaxed) - waits_before,
                if late + failures > 0 { format!("; {late} stale updates, {failures} streams failed") } else { String::new() },
            );
            last_id = ids.keys().next_back().copied().unwrap_or(last_id);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("  server RSS after the moves: {:.1} MiB", rss_kib(pid) as f64 / 1024.0);
        for t in tasks {
            t.abort();
        }
    });
    drop(server);
}

fn main() {
    if common::listing() {
        return;
    }
    let o = options();
    if o.only.as_deref() != Some("watchers") {
        bench_pages(&o);
    }
    if o.only.as_deref() != Some("pages") {
        bench_watchers(&o);
    }
}
