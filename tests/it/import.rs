//! `kiln import orders FILE.csv`, run as a shop would: the real binary against the test
//! server's database.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

const HEADER: &str = "external_id,workflow,customer_name,customer_email,priority,due_date,item_description,item_quantity,item_material\n";

fn kiln(app: &TestApp, data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    // The same database and secret key as the server, as on a shop's own machine.
    cmd.env_remove("KILN_CONFIG")
        .env("KILN_DATABASE_URL", &app.db_url)
        .env("KILN_SECRET_KEY", &app.secret_key)
        .env("KILN_DATA_DIR", data);
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The process's peak resident memory, KiB (VmHWM).
    peak_kib: u64,
}

/// Runs `cmd` off the test's runtime: the server under test runs on that runtime, and a
/// blocked runtime would freeze it mid-transaction, holding SQLite's write lock.
async fn run(cmd: Command) -> Run {
    tokio::task::spawn_blocking(move || run_blocking(cmd)).await.expect("the run finishes")
}

fn run_blocking(mut cmd: Command) -> Run {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("kiln runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    // Read the output on threads so that a full pipe never stalls the child.
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let out = std::thread::spawn(move || std::io::read_to_string(&mut out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut err).unwrap_or_default());
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout thread"),
        stderr: err.join().expect("stderr thread"),
        peak_kib,
    }
}

#[tokio::test]
async fn good_rows_are_imported_bad_ones_reported_by_line_and_a_second_run_changes_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("orders.csv");
    let csv = format!(
        "{HEADER}\
         WS-1,stone,Marta Rossi,marta@example.it,rush,2027-02-01,Kitchen countertop,1,Calacatta\n\
         WS-1,stone,Marta Rossi,marta@example.it,rush,2027-02-01,Backsplash,2,Calacatta\n\
         WS-2,print,Tom Berg,tom@example.com,,,Posters A2,50,\n\
         WS-3,nowhere,Ana Ruiz,ana@example.com,,,Ring,1,Gold\n\
         WS-4,jewelry,Li Wei,not-an-email,,,Ring,1,Gold\n\
         WS-5,jewelry,Li Wei,li@example.com,,,Ring,1,Gold\n\
         WS-5,jewelry,Li Wei,li@example.com,,,Chain,zero,Gold\n"
    );
    std::fs::write(&file, csv).expect("write");

    // A dry run reports everything and writes nothing.
    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders", "--dry-run"]).arg(&file);
    let dry = run(cmd).await;
    assert_eq!(dry.code, Some(1), "{}", dry.stderr);
    assert!(dry.stdout.contains("would create 2 orders"), "{}", dry.stdout);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);

    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let first = run(cmd).await;
    assert_eq!(first.code, Some(1), "some rows were refused: {}", first.stderr);
    assert!(first.stdout.contains("7 rows: created 2 orders, skipped 0"), "{}{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("refused 3 orders (4 rows)"), "{}", first.stdout);
    let shown = file.display();
    for expected in [
        format!("{shown}:5: workflow: `nowhere` is not a workflow"),
        format!("{shown}:6: customer_email:"),
        format!("{shown}:8: item_quantity: `zero` is not a whole number"),
        format!("{shown}:7: order `WS-5` is refused because of line 8"),
    ] {
        assert!(first.stderr.contains(&expected), "missing `{expected}` in:\n{}", first.stderr);
    }

    let res = app.get("/orders?q=marta").await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.expect("json");
    let marta = &list["items"][0];
    assert_eq!(marta["workflow"], "stone");
    assert_eq!(marta["priority"], "rush");
    let order = app.order(marta["reference"].as_str().expect("reference")).await;
    let items = crate::helpers::items_of(&order);
    assert_eq!(items, [("Kitchen countertop", 1), ("Backsplash", 2)], "two rows, one order");

    // The same file again: nothing new.
    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let again = run(cmd).await;
    assert!(again.stdout.contains("created 0 orders, skipped 2"), "{}", again.stdout);
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2);

    // A wrong header stops before any row, naming the column.
    std::fs::write(&file, "external_id,workflow,colour\nX,stone,red\n").expect("write");
    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let bad = run(cmd).await;
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains(":line 1: unknown column `colour`"), "{}", bad.stderr);
}

#[tokio::test]
async fn memory_does_not_grow_with_the_file() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("dir");
    let write = |name: &str, orders: usize| {
        let path = dir.path().join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        f.write_all(HEADER.as_bytes()).expect("write");
        for i in 0..orders {
            writeln!(f, "BIG-{i},print,Customer number {i},c{i}@example.com,standard,2027-03-01,Flyers A5 double-sided glossy,500,paper")
                .expect("write");
        }
        f.flush().expect("flush");
        path
    };
    // About 1 MB and 10 MB; checked with --dry-run, which reads and checks every row the
    // same way (and keeps the test fast).
    let small = write("small.csv", 10_000);
    let large = write("large.csv", 100_000);
    assert!(std::fs::metadata(&large).expect("meta").len() > 9_000_000);
    let peak = |path: std::path::PathBuf| {
        let mut cmd = kiln(&app, dir.path());
        cmd.args(["import", "orders", "--dry-run"]).arg(path);
        async move {
            let r = run(cmd).await;
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            r.peak_kib
        }
    };
    let small_kib = peak(small).await;
    let large_kib = peak(large.clone()).await;
    assert!(small_kib > 0 && large_kib > 0, "peaks were read");
    assert!(
        large_kib < small_kib + 8 * 1024,
        "ten times the file took {large_kib} KiB at peak against {small_kib} KiB"
    );
}

#[tokio::test]
async fn the_api_imports_a_streamed_csv_the_same_way() {
    let app = spawn_app().await;
    let csv = format!(
        "{HEADER}WEB-1,print,Tom Berg,tom@example.com,,,Posters A2,50,\nWEB-2,print,Ana Ruiz,ana@example,,,Flyers,1000,\n"
    );
    let post = |query: &'static str, token: String, body: String, content_type: &'static str| {
        app.client
            .post(app.api(&format!("/imports{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let res = post("?dry_run=true", app.write_token.clone(), csv.clone(), "text/csv").await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let dry: Value = res.json().await.expect("json");
    assert_eq!((dry["dry_run"].as_bool(), dry["created"].as_u64()), (Some(true), Some(1)));
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);

    let res = post("", app.write_token.clone(), csv.clone(), "text/csv; charset=utf-8").await.expect("request");
    let done: Value = res.json().await.expect("json");
    assert_eq!(
        (done["rows"].as_u64(), done["created"].as_u64(), done["refused"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(done["problems"][0]["line"], 3);
    assert_eq!(done["problems"][0]["column"], "customer_email");
    let again: Value =
        post("", app.write_token.clone(), csv.clone(), "text/csv").await.expect("req").json().await.expect("json");
    assert_eq!((again["created"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(1)));

    let res = post("", app.write_token.clone(), "not,a,header\n".to_owned(), "text/csv").await.expect("request");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = post("", app.write_token.clone(), csv.clone(), "application/json").await.expect("request");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = post("", app.read_token.clone(), csv, "text/csv").await.expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// Writes `orders` one-row orders `{prefix}-{i}` of the print workflow to `path`; `tweak`
/// may change an order's row (given its index and the row).
fn write_orders(path: &std::path::Path, prefix: &str, orders: usize, tweak: impl Fn(usize, String) -> String) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    f.write_all(b"external_id,workflow,stage,customer_name,customer_email,item_description,item_quantity\n")
        .expect("write");
    for i in 0..orders {
        let row = format!("{prefix}-{i},print,,Customer {i},c{i}@example.com,Flyers A5,100");
        writeln!(f, "{}", tweak(i, row)).expect("write");
    }
    f.flush().expect("flush");
}

#[tokio::test]
async fn an_order_refused_in_the_middle_of_a_batch_is_reported_by_line_and_the_others_are_imported() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("orders.csv");
    // The stage is only checked against the workflow when the batch is created.
    write_orders(&file, "MID", 5, |i, row| if i == 2 { row.replace("print,,", "print,nowhere,") } else { row });

    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let run = run(cmd).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.contains("5 rows: created 4 orders, skipped 0"), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("refused 1 orders (1 rows)"), "{}", run.stdout);
    let expected = format!("{}:4: stage: workflow `print` has no stage `nowhere`", file.display());
    assert!(run.stderr.contains(&expected), "missing `{expected}` in:\n{}", run.stderr);
    let imported = app.strings("SELECT external_id FROM order_links ORDER BY external_id").await;
    assert_eq!(imported, ["MID-0", "MID-1", "MID-3", "MID-4"]);
}

#[tokio::test]
async fn a_batch_that_cannot_be_written_whole_is_written_one_order_at_a_time() {
    let app = spawn_app().await;
    // A rule of this shop's database that kiln does not know: one order per email address.
    app.sql("CREATE UNIQUE INDEX test_one_order_per_email ON orders (customer_email)").await;
    let taken = app.create_order("print").await;
    let taken = taken["customer"]["email"].as_str().expect("an email").to_owned();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("orders.csv");
    write_orders(&file, "ONE", 6, |i, row| if i == 3 { row.replace("c3@example.com", &taken) } else { row });

    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let run = run(cmd).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.contains("6 rows: created 5 orders, skipped 0"), "{}{}", run.stdout, run.stderr);
    let expected = format!("{}:5: the database refused the order", file.display());
    assert!(run.stderr.contains(&expected), "missing `{expected}` in:\n{}", run.stderr);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_links WHERE source = 'import'").await, 5);
    // Each imported order is whole: its items, tracking link, event and jobs.
    for (table, per_order) in [("order_items", 1), ("tracking_links", 1), ("order_events", 1)] {
        let query = format!(
            "SELECT COUNT(*) FROM {table} t JOIN order_links l ON l.order_id = t.order_id WHERE l.source = 'import'"
        );
        assert_eq!(app.count(&query).await, 5 * per_order, "{table}");
    }
    let jobs = "SELECT COUNT(*) FROM outbox o JOIN order_links l ON l.order_id = o.order_id WHERE l.source = 'import'";
    assert!(app.count(jobs).await >= 10, "every imported order has its jobs");
}

#[tokio::test]
async fn a_second_run_of_a_file_of_several_batches_creates_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("orders.csv");
    write_orders(&file, "TWICE", 250, |_, row| row);
    let tables = ["orders", "order_items", "order_events", "outbox", "tracking_links", "order_links"];
    let counts = || async {
        let mut counts = Vec::new();
        for table in tables {
            counts.push(app.count(&format!("SELECT COUNT(*) FROM {table}")).await);
        }
        counts
    };

    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let first = run(cmd).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(first.stdout.contains("250 rows: created 250 orders, skipped 0"), "{}", first.stdout);
    let after_first = counts().await;
    assert_eq!(after_first[..3], [250, 250, 250], "{tables:?}: {after_first:?}");
    let references = app.count("SELECT COUNT(DISTINCT reference) FROM orders").await;
    assert_eq!(references, 250, "every order has its own reference");

    let mut cmd = kiln(&app, dir.path());
    cmd.args(["import", "orders"]).arg(&file);
    let again = run(cmd).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("created 0 orders, skipped 250"), "{}", again.stdout);
    assert_eq!(counts().await, after_first, "{tables:?} are unchanged");
}
