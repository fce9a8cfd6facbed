//! Stripe intake benchmark: webhooks in. A real `kiln serve` process with `[intake.stripe]`
//! configured (a `kiln.toml` in its data directory, no API key) takes signed
//! `checkout.session.completed` events (`payment_status: "paid"`, one Checkout Session each)
//! at `POST /hooks/stripe` from 64 concurrent senders, each on its own keep-alive HTTP/1.1
//! connection. Every third post of a sender repeats one of its events already answered (same
//! event id and body, freshly signed), as Stripe's retries do. Measured: deliveries accepted
//! (2xx) per second, time to 2xx, and then how long the applier takes to turn every recorded
//! delivery into its order; verified: one inbox row per event id, one order per session.
//!
//! ```sh
//! cargo bench --bench intake                                   # SQLite
//! KILN_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/kiln_ibench cargo bench --bench intake
//! ```
//! Options after `--`: `--posts N` (default 30000), `--senders N` (64), `--short` (3000
//! posts), `--warmup N` (100 events through one connection before the clock starts), `--kiln
//! PATH` (the `kiln` binary; default: the one cargo built for this bench).
//!
//! The database is counted directly with sqlx (the SQLite file read-only, or the bench's
//! PostgreSQL schema `bench_intake`), never through kiln.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

#[path = "common.rs"]
mod common;

use common::{Server, free_port, kiln_command, percentile, rss_kib, wait_healthy};

/// The signing secret configured in `kiln.toml` and used by the senders.
const SECRET: &str = "whsec_kiln_bench_intake_secret";
/// The bench's PostgreSQL schema (dropped and made again at each run).
const SCHEMA: &str = "bench_intake";
/// How long the applier may take to settle everything before the bench gives up.
const SETTLE_LIMIT: Duration = Duration::from_secs(30 * 60);

struct Options {
    posts: usize,
    senders: usize,
    warmup: usize,
    kiln: PathBuf,
}

fn options() -> Options {
    let short = common::flag("--short");
    Options {
        posts: common::arg("--posts", if short { 3_000 } else { 30_000 }),
        senders: common::arg("--senders", 64).max(1),
        warmup: common::arg("--warmup", 100),
        kiln: common::arg_value("--kiln").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from),
    }
}

/// A tiny xorshift generator: which earlier event a duplicate repeats.
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
// Events, signed as Stripe signs them.
// ---------------------------------------------------------------------------------------

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `Stripe-Signature` as Stripe documents it: `t={t},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`
/// keyed with the whole `whsec_…` string. Written out here rather than taken from kiln.
fn sign(t: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// A paid Checkout Session completed, as Stripe sends it; `tag` makes the event and session
/// ids (`evt_{tag}`, `cs_{tag}`) and the customer.
fn event(tag: &str, n: usize) -> Bytes {
    let body = json!({
        "id": format!("evt_{tag}"),
        "object": "event",
        "api_version": "2024-06-20",
        "created": unix_now(),
        "livemode": false,
        "pending_webhooks": 1,
        "type": "checkout.session.completed",
        "data": { "object": {
            "id": format!("cs_{tag}"),
            "object": "checkout.session",
            "amount_total": 4_900 + (n % 50) * 100,
            "currency": "eur",
            "customer_details": {
                "name": format!("Customer {tag}"),
                "email": format!("c{n}@example.com"),
                "phone": null,
            },
            "locale": "en",
            "metadata": {},
            "mode": "payment",
            "payment_status": "paid",
            "status": "complete",
        }},
    });
    Bytes::from(body.to_string())
}

/// What one sender posts, in order: indexes into its `events`, the second field true for a
/// repeat of an event it has already had answered.
struct Plan {
    events: Vec<Bytes>,
    posts: Vec<(usize, bool)>,
}

/// Sender `s`'s share of `posts` (spread evenly): every third post repeats one of its earlier
/// events, picked at random.
fn plan(s: usize, senders: usize, posts: usize) -> Plan {
    let n = posts / senders + usize::from(s < posts % senders);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((s as u64 + 1) * 0x2545_F491_4F6C_DD1D));
    let (mut events, mut list) = (Vec::new(), Vec::with_capacity(n));
    for j in 0..n {
        if j % 3 == 2 && !events.is_empty() {
            list.push((rng.below(events.len()), true));
        } else {
            list.push((events.len(), false));
            events.push(event(&format!("bench_{s:03}_{:06}", events.len()), s * n + j));
        }
    }
    Plan { events, posts: list }
}

// ---------------------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------------------

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection that sends bodies.
async fn connect(port: u16) -> Sender {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.set_nodelay(true).ok();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

/// Posts `body` to `/hooks/stripe`, freshly signed: the status and the answer, or the error.
async fn post(sender: &mut Sender, body: &Bytes) -> Result<(u16, Bytes), String> {
    let req = hyper::Request::post("/hooks/stripe")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("stripe-signature", sign(unix_now(), body))
        .body(Full::new(body.clone()))
        .expect("request");
    sender.ready().await.map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let answer = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, answer))
}

/// What one sender saw.
#[derive(Default)]
struct Seen {
    /// Time to a 2xx answer, µs.
    latencies: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer at all.
    errors: u64,
    /// 2xx answers saying `"duplicate": true`, for posts that were / were not repeats.
    said_duplicate: u64,
    said_duplicate_wrongly: u64,
    /// Repeats the server did not call duplicates.
    missed_duplicates: u64,
    /// A few non-2xx answers or errors, to show.
    samples: Vec<String>,
}

async fn send_all(port: u16, plan: Plan, start: Arc<Barrier>) -> Seen {
    let mut sender = connect(port).await;
    let mut seen = Seen { latencies: Vec::with_capacity(plan.posts.len()), ..Seen::default() };
    start.wait().await;
    for &(index, repeat) in &plan.posts {
        let body = &plan.events[index];
        let sent = Instant::now();
        match post(&mut sender, body).await {
            Ok((status, answer)) => {
                let took = sent.elapsed().as_micros() as u64;
                *seen.statuses.entry(status).or_default() += 1;
                if (200..300).contains(&status) {
                    seen.latencies.push(took);
                    let duplicate = answer.windows(16).any(|w| w == br#""duplicate":true"#);
                    match (duplicate, repeat) {
                        (true, true) => seen.said_duplicate += 1,
                        (true, false) => seen.said_duplicate_wrongly += 1,
                        (false, true) => seen.missed_duplicates += 1,
                        (false, false) => {}
                    }
                } else if seen.samples.len() < 3 {
                    seen.samples.push(format!("{status}: {}", String::from_utf8_lossy(&answer)));
                }
            }
            Err(e) => {
                seen.errors += 1;
                if seen.samples.len() < 3 {
                    seen.samples.push(format!("no answer: {e}"));
                }
                sender = connect(port).await;
            }
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------
// The database, counted behind kiln's back.
// ---------------------------------------------------------------------------------------

enum Counter {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Counter {
    async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).expect("SQLite URL").read_only(true);
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await;
            Self::Sqlite(pool.expect("open the SQLite file read-only"))
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await;
            Self::Postgres(pool.expect("connect to PostgreSQL"))
        }
    }

    /// The one number `sql` selects.
    async fn count(&self, sql: &'static str) -> i64 {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Inbox rows by outcome.
    async fn outcomes(&self) -> BTreeMap<String, i64> {
        const SQL: &str = "SELECT outcome, COUNT(*) FROM inbox GROUP BY outcome";
        let rows: Vec<(String, i64)> = match self {
            Self::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
        }
        .expect("inbox outcomes");
        rows.into_iter().collect()
    }

    async fn unsettled(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM inbox WHERE outcome IN ('pending', 'running')").await
    }

    async fn orders(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM orders").await
    }

    /// Waits until no delivery is pending or running; the instant it saw that.
    async fn settle(&self, began: Instant, what: &str) -> Instant {
        let mut said = Instant::now();
        loop {
            let left = self.unsettled().await;
            if left == 0 {
                return Instant::now();
            }
            assert!(began.elapsed() < SETTLE_LIMIT, "{what}: {left} deliveries still unsettled");
            if said.elapsed() >= Duration::from_secs(10) {
                println!(
                    "  {what}: {left} deliveries to apply, {} orders, {:.0} s",
                    self.orders().await,
                    began.elapsed().as_secs_f64()
                );
                said = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// CPU time, to see who used the two cores.
// ---------------------------------------------------------------------------------------

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system CPU seconds of process `pid` (`self` for this one) so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / ticks_per_second()
}

/// The whole machine's (busy, total) CPU seconds so far, from `/proc/stat`.
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / ticks_per_second(), total / ticks_per_second())
}

/// CPU used between two instants: the server, this bench, the rest of the machine (the
/// database server, for PostgreSQL), and the machine's capacity in that time.
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    bench: f64,
    busy: f64,
    total: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Self {
        let (busy, total) = machine_cpu();
        Self { server: cpu_seconds(&server_pid.to_string()), bench: cpu_seconds("self"), busy, total }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            bench: self.bench - before.bench,
            busy: self.busy - before.busy,
            total: self.total - before.total,
        }
    }

    fn show(&self, seconds: f64) -> String {
        let cores = self.total / seconds.max(1e-9);
        format!(
            "CPU over {seconds:.1} s on {cores:.1} cores: kiln {:.1} s, load generator {:.1} s, everything else {:.1} s, \
             idle {:.1} s",
            self.server,
            self.bench,
            (self.busy - self.server - self.bench).max(0.0),
            (self.total - self.busy).max(0.0),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------

fn write_config(data_dir: &Path) {
    let toml = format!("[intake.stripe]\nwebhook_secrets = [\"{SECRET}\"]\ndefault_workflow = \"jobshop\"\n");
    std::fs::write(data_dir.join("kiln.toml"), toml).expect("write kiln.toml");
}

fn main() {
    if common::listing() {
        return;
    }
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (url, backend) = runtime.block_on(common::database_url(data_dir.path(), SCHEMA));
    write_config(data_dir.path());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);

    // Plans first: the bodies are built before any clock starts.
    let plans: Vec<Plan> = (0..o.senders).map(|s| plan(s, o.senders, o.posts)).collect();
    let unique: usize = plans.iter().map(|p| p.events.len()).sum();
    let repeats: usize = plans.iter().map(|p| p.posts.iter().filter(|(_, r)| *r).count()).sum();
    let body_bytes = plans.first().and_then(|p| p.events.first()).map_or(0, Bytes::len);
    println!(
        "Stripe intake into `kiln serve` ({}), {backend}, {cores} cores shared with the load generator: \
         {} posts from {} senders, {unique} distinct events (one session each), {repeats} repeats; \
         bodies ~{body_bytes} bytes",
        o.kiln.display(),
        o.posts,
        o.senders,
    );

    let child = kiln_command(&o.kiln, data_dir.path(), port)
        .env("KILN_DATABASE_URL", &url)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn `kiln serve`");
    let mut server = Server { child };
    // The server's log, passed on (the first 20 lines), and counted.
    let log_lines = Arc::new(AtomicU64::new(0));
    if let Some(stderr) = server.child.stderr.take() {
        let log_lines = log_lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if log_lines.fetch_add(1, Ordering::Relaxed) < 20 {
                    eprintln!("kiln: {line}");
                }
            }
        });
    }
    let pid = server.child.id();

    runtime.block_on(async {
        let client = reqwest::Client::new();
        wait_healthy(&client, &base).await;
        let db = Counter::open(&url).await;

        // Warm-up: its own events, through one connection, applied before the clock starts.
        let warm_events: Vec<Bytes> = (0..o.warmup).map(|i| event(&format!("warm_{i:06}"), i)).collect();
        let mut sender = connect(port).await;
        for body in &warm_events {
            let (status, answer) = post(&mut sender, body).await.expect("warm-up post");
            assert!((200..300).contains(&status), "warm-up post: {status} {}", String::from_utf8_lossy(&answer));
        }
        drop(sender);
        db.settle(Instant::now(), "warm-up").await;
        let warm_orders = db.orders().await;
        assert_eq!(warm_orders, o.warmup as i64, "warm-up orders");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before = rss_kib(pid);

        // The run: every sender connects, then all start at once.
        let start = Arc::new(Barrier::new(o.senders + 1));
        let tasks: Vec<_> = plans.into_iter().map(|p| tokio::spawn(send_all(port, p, start.clone()))).collect();
        start.wait().await;
        let cpu0 = Cpu::now(pid);
        let began = Instant::now();
        let mut all = Seen::default();
        for t in tasks {
            let s = t.await.expect("sender");
            all.latencies.extend(s.latencies);
            for (status, n) in s.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
            all.errors += s.errors;
            all.said_duplicate += s.said_duplicate;
            all.said_duplicate_wrongly += s.said_duplicate_wrongly;
            all.missed_duplicates += s.missed_duplicates;
            all.samples.extend(s.samples);
        }
        let posting = began.elapsed();
        let cpu1 = Cpu::now(pid);
        let rss_posted = rss_kib(pid);
        let (orders_at_end, unsettled_at_end) = (db.orders().await - warm_orders, db.unsettled().await);
        let settled_at = db.settle(began, "applying").await;
        let applying = settled_at.duration_since(began);
        let tail = settled_at.duration_since(began + posting);
        let cpu2 = Cpu::now(pid);
        let rss_after = rss_kib(pid);

        // Verification, on the database itself.
        let orders = db.orders().await - warm_orders;
        let inbox = db.count("SELECT COUNT(*) FROM inbox").await - o.warmup as i64;
        let outcomes = db.outcomes().await;
        let applied = outcomes.get("applied").copied().unwrap_or(0) - o.warmup as i64;
        let links = db.count("SELECT COUNT(*) FROM order_links WHERE source = 'stripe'").await - warm_orders;
        let distinct_sessions = db.count("SELECT COUNT(DISTINCT external_ids) FROM orders").await - warm_orders;
        let doubled = db
            .count("SELECT COUNT(*) FROM (SELECT external_ids FROM orders GROUP BY external_ids HAVING COUNT(*) > 1) d")
            .await;
        let unlinked = db
            .count(
                "SELECT COUNT(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_links l WHERE l.order_id = o.id)",
            )
            .await;

        all.latencies.sort_unstable();
        let accepted: u64 = all.statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum();
        let not_2xx = o.posts as u64 - accepted;
        let rate = accepted as f64 / posting.as_secs_f64();
        let p = |q| percentile(&all.latencies, q);
        let max = all.latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
        let statuses: Vec<String> = all.statuses.iter().map(|(s, n)| format!("{n}× {s}")).collect();

        println!();
        for sample in all.samples.iter().take(5) {
            println!("  e.g. {sample}");
        }
        println!("  posting: {}", cpu1.since(cpu0).show(posting.as_secs_f64()));
        println!("  applying after the last post: {}", cpu2.since(cpu1).show(tail.as_secs_f64()));
        println!(
            "  kiln RSS {:.1} MiB before, {:.1} MiB after posting, {:.1} MiB when settled; {} server log lines",
            rss_before as f64 / 1024.0,
            rss_posted as f64 / 1024.0,
            rss_after as f64 / 1024.0,
            log_lines.load(Ordering::Relaxed),
        );
        println!("  inbox outcomes (including {} warm-up deliveries): {outcomes:?}", o.warmup);
        println!();
        let check = |ok: bool| if ok { "ok" } else { "**NO**" };
        println!("| {backend}: {} posts, {} senders | |", o.posts, o.senders);
        println!("| --- | --- |");
        println!("| answers | {} |", statuses.join(", "));
        println!("| deliveries accepted (2xx) | **{rate:.0}/s** ({accepted} in {:.2} s) |", posting.as_secs_f64());
        println!(
            "| time to 2xx p50 / p90 / p99 / max | {:.2} / {:.2} / **{:.2}** / {max:.1} ms |",
            p(0.5),
            p(0.9),
            p(0.99)
        );
        println!("| non-2xx, no answer | {not_2xx}, {} {} |", all.errors, check(not_2xx == 0 && all.errors == 0));
        println!(
            "| answered `duplicate: true` | {} of {repeats} repeats; {} first deliveries {} |",
            all.said_duplicate,
            all.said_duplicate_wrongly,
            check(all.said_duplicate == repeats as u64 && all.said_duplicate_wrongly == 0)
        );
        println!("| orders made while posting | {orders_at_end} ({unsettled_at_end} deliveries left to apply) |");
        println!(
            "| all applied, from the first post | {:.2} s: **{:.0} orders/s** ({:.2} s after the last post) |",
            applying.as_secs_f64(),
            orders as f64 / applying.as_secs_f64(),
            tail.as_secs_f64()
        );
        println!("| orders / distinct sessions | {orders} / {unique} {} |", check(orders == unique as i64));
        println!(
            "| inbox rows / distinct event ids (applied) | {inbox} / {unique} ({applied} applied) {} |",
            check(inbox == unique as i64 && applied == unique as i64)
        );
        println!(
            "| sessions with more than one order; orders without a link; links | {doubled}; {unlinked}; {links} {} |",
            check(doubled == 0 && unlinked == 0 && links == orders && distinct_sessions == orders)
        );

        let ok = not_2xx == 0
            && all.errors == 0
            && orders == unique as i64
            && inbox == unique as i64
            && applied == unique as i64
            && doubled == 0
            && unlinked == 0;
        assert!(ok, "intake lost, doubled or refused deliveries (see the table)");
    });
    drop(server);
}
