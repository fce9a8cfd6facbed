//! Dashboard benchmark (issue 11): what signing in costs (Argon2id), and the server time of
//! the dashboard's pages — the orders list, a search, and the board of a workflow with 5,000
//! open orders — at 16 concurrent signed-in users on keep-alive connections, against a real
//! server on SQLite (or PostgreSQL with `KILN_BENCH_DATABASE_URL`).
//!
//! ```sh
//! cargo bench --bench dashboard
//! KILN_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiln_bench cargo bench --bench dashboard
//! KILN_BENCH_SHORT=1 cargo bench --bench dashboard      # quick run while developing
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kiln::app::App;
use kiln::config::Config;
use kiln::domain::access::Role;
use kiln::service::{NewUser, hash_password};
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;

use common::percentile;

const PASSWORD: &str = "correct horse battery";

fn summary(label: &str, mut samples: Vec<u64>, elapsed: Duration) {
    samples.sort_unstable();
    let n = samples.len();
    println!(
        "{label:<44} {n:>6} requests  {:>7.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        n as f64 / elapsed.as_secs_f64(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
}

async fn sign_in(client: &reqwest::Client, base: &str) -> String {
    let page = client.get(format!("{base}/login")).send().await.expect("login page");
    let login = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("kiln_login=").map(|v| v.split(';').next().unwrap_or("").to_owned()))
        .expect("login cookie");
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", format!("kiln_login={login}"))
        .form(&[("email", "bench@shop.example"), ("password", PASSWORD), ("_csrf", &login)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 303, "signed in");
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.starts_with("kiln_session=").then(|| v.split(';').next().unwrap_or("").to_owned()))
        .expect("session cookie")
}

/// Client-observed and server (`Server-Timing`) times of `path` at `clients` concurrent users.
async fn pages(base: &str, cookie: &str, path: &str, clients: usize, seconds: u64) -> (Vec<u64>, Vec<u64>, Duration) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, cookie) = (format!("{base}{path}"), cookie.to_owned());
        tasks.push(tokio::spawn(async move {
            let client =
                reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
            let (mut samples, mut server_samples) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                let res = client.get(&url).header("cookie", &cookie).send().await.expect("page");
                assert_eq!(res.status(), 200, "{url}");
                let server = common::server_time(res.headers()).expect("server-timing");
                let _ = res.bytes().await.expect("body");
                samples.push(t.elapsed().as_micros() as u64);
                server_samples.push(server);
            }
            (samples, server_samples)
        }));
    }
    let (mut all, mut server) = (Vec::new(), Vec::new());
    for t in tasks {
        let (client, inside) = t.await.expect("client task");
        all.extend(client);
        server.extend(inside);
    }
    (all, server, started.elapsed())
}

#[tokio::main]
async fn main() {
    if common::listing() {
        return;
    }
    let short = std::env::var("KILN_BENCH_SHORT").is_ok_and(|v| !v.is_empty() && v != "0");
    let (open, seconds) = if short { (1_000, 2) } else { (5_000, 10) };

    // Argon2id alone, as configured (m=19456 KiB, t=2, p=1).
    let mut hashes = Vec::new();
    let t0 = Instant::now();
    for _ in 0..if short { 5 } else { 20 } {
        let t = Instant::now();
        hash_password(PASSWORD).expect("hash");
        hashes.push(t.elapsed().as_micros() as u64);
    }
    summary("argon2id hash (one core)", hashes, t0.elapsed());

    let data_dir = tempfile::tempdir().expect("temp dir");
    let (db_url, engine) = common::database_url(data_dir.path(), "kiln_bench_dashboard").await;
    let mut config = Config::load(None, &BTreeMap::new()).expect("config");
    let port = common::free_port();
    config.bind = format!("127.0.0.1:{port}").parse().expect("bind");
    config.base_url = format!("http://127.0.0.1:{port}/").parse().expect("url");
    config.data_dir = data_dir.path().to_path_buf();
    config.database_url = Some(db_url.clone().into());
    config.log = "warn".to_owned();
    config.notify.worker.enabled = false;
    config.staff.login_attempts_per_account = 1_000_000;
    config.staff.login_attempts_per_address = 1_000_000;
    let app = App::build(config).await.expect("app");
    let service = app.service().clone();
    let new = NewUser { email: "bench@shop.example", name: None, role: Role::Operator, password: PASSWORD };
    service.add_user(new, "bench").await.expect("user");
    println!("{engine}: seeding {open} open stone orders…");
    common::seed_references(&service, open, common::new_order).await;
    if engine == "PostgreSQL" {
        // A running database has statistics: autovacuum analyzes a table within a minute of
        // this many inserts (SQLite's come from kiln's own `PRAGMA optimize` at start).
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db_url).await.expect("connect PostgreSQL");
        sqlx::raw_sql("ANALYZE orders, order_search").execute(&mut conn).await.expect("analyze");
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move { app.run(stop).await });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    common::wait_healthy(&http, &base).await;

    // Signing in over HTTP: one at a time, then 16 at once (two cores bound it).
    let mut one = Vec::new();
    let t0 = Instant::now();
    let mut cookie = String::new();
    for _ in 0..if short { 5 } else { 30 } {
        let t = Instant::now();
        cookie = sign_in(&http, &base).await;
        one.push(t.elapsed().as_micros() as u64);
    }
    summary("sign-in, 1 at a time", one, t0.elapsed());
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                sign_in(&http, &base).await;
                t.elapsed().as_micros() as u64
            })
        })
        .collect();
    let mut burst = Vec::new();
    for t in tasks {
        burst.push(t.await.expect("task"));
    }
    summary("sign-in, 16 at once", burst, t0.elapsed());

    for (label, path) in [
        ("orders list, first page", "/"),
        ("orders list, search by email", "/?q=c4242%40example.com"),
        ("orders list, name fragment", "/?q=omer+42"),
        ("orders list, late only", "/?late=1"),
        ("board, stone (open orders)", "/board/stone"),
    ] {
        let (samples, server, elapsed) = pages(&base, &cookie, path, 16, seconds).await;
        summary(&format!("{label} (client)"), samples, elapsed);
        summary(&format!("{label} (server)"), server, elapsed);
    }
    shutdown.cancel();
}
