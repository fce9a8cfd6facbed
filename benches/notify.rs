//! Notification benchmark: end-to-end throughput from stage moves to messages accepted by a
//! local SMTP server and a local webhook receiver (the outbox worker inside the app renders,
//! sends and records each one), and a check that no message was lost or sent twice.
//!
//! ```sh
//! cargo bench --bench notify                     # SQLite
//! KILN_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1/kiln_bench cargo bench --bench notify
//! ```
//! Options after `--`: `--orders N` (default 1000), `--moves N` (50000; each move sends an email
//! and a webhook, so 100,000 messages), `--writers N` (4).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kiln::app::App;
use kiln::config::Config;
use kiln::domain::change::Change;
use kiln::domain::model::Actor;
use kiln::domain::order::Source;
use kiln::domain::transition::Action;
use kiln::notify::config::{EmailConfig, SmtpSecurity, WebhookConfig};
use kiln::service::{NewOrder, Service};
use kiln::store::deliveries;
use tokio_util::sync::CancellationToken;

#[path = "../tests/it/peers.rs"]
#[allow(dead_code)]
mod peers;

#[path = "common.rs"]
mod common;

/// The orders of this bench: as `common::new_order`, with items that name no variant and no
/// material.
fn new_order(i: usize) -> NewOrder {
    let mut order = common::new_order(i);
    for item in &mut order.items {
        item.variant = None;
        item.material = None;
    }
    order
}

async fn count(service: &Service, status: &str) -> i64 {
    deliveries::count_status(service.db(), "deliver", status).await.expect("count")
}

fn main() {
    if common::listing() {
        return;
    }
    let (orders, moves, writers) =
        (common::arg("--orders", 1000), common::arg("--moves", 50_000), common::arg("--writers", 4));
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let smtp = peers::SmtpServer::start().await;
        let receiver = peers::HttpPeer::start(|_| peers::Answer::new(204, "")).await;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let (url, backend) = common::database_url(data_dir.path(), "bench_notify").await;
        let mut config = Config::load(None, &BTreeMap::new()).expect("config");
        config.data_dir = data_dir.path().to_path_buf();
        config.database_url = Some(url.into());
        config.bind = "127.0.0.1:0".parse().expect("addr");
        config.log = "warn".to_owned();
        config.notify.email = Some(EmailConfig {
            host: smtp.addr.ip().to_string(),
            port: Some(smtp.addr.port()),
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "Bench <bench@example.com>".to_owned(),
            timeout: Duration::from_secs(10),
        });
        config.notify.webhooks = vec![WebhookConfig {
            name: "sink".to_owned(),
            url: format!("{}/hook", receiver.base),
            secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned().into()],
        }];
        // Seed first with the worker off, then start it and measure from the first move.
        config.notify.worker.enabled = false;
        let app = server_rt.spawn(App::build(config)).await.expect("join").expect("app");
        let service = app.service().clone();
        let notifier = app.notifier().clone();
        println!("kiln notification benchmark on {backend}: {orders} orders, {moves} moves, {writers} writers");
        let actor = Actor { name: "bench".to_owned(), source: Source::System };
        let refs = common::seed_references(&service, orders, new_order).await;
        // Send the creation messages before measuring.
        let stop = CancellationToken::new();
        let worker = server_rt.spawn(notifier.clone().run(stop.clone()));
        while count(&service, "sent").await < 2 * orders as i64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before_mails = smtp.received().len();
        let before_hooks = receiver.requests().len();
        let base_sent = count(&service, "sent").await;

        let started = Instant::now();
        let per_writer = moves / writers;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (service, actor) = (service.clone(), actor.clone());
            let mine: Vec<String> = refs.iter().skip(w).step_by(writers).cloned().collect();
            tasks.push(tokio::spawn(async move {
                let mut at_qc = vec![false; mine.len()];
                for i in 0..per_writer {
                    let k = i % mine.len();
                    let to = if at_qc[k] { "fabrication" } else { "quality_check" };
                    let change = Change::Act {
                        action: Action::Move { to: to.to_owned() },
                        expected_stage: None,
                        note: None,
                        internal_note: None,
                        photo_ids: vec![],
                    };
                    service.change(&mine[k], &change, &actor).await.expect("move");
                    at_qc[k] = !at_qc[k];
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let moved_in = started.elapsed();
        let expected = base_sent + 2 * (per_writer * writers) as i64;
        let wanted = before_mails + before_hooks + 2 * per_writer * writers;
        // The clock stops when the peers have accepted every message (counted where they
        // arrive, so that polling the outbox does not load the database being measured).
        let mut last_report = Instant::now();
        loop {
            let arrived = smtp.count() + receiver.count();
            if arrived >= wanted {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                println!(
                    "  … {} of {} messages accepted",
                    arrived - before_mails - before_hooks,
                    wanted - before_mails - before_hooks
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let elapsed = started.elapsed();
        // Then every attempt must be recorded, and nothing more may arrive.
        let recorded = Instant::now();
        while count(&service, "sent").await < expected && recorded.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        println!("  outbox caught up {:.1} s after the last message arrived", recorded.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
        let _ = worker.await;

        let messages = (expected - base_sent) as f64;
        println!(
            "  moves: {} in {:.1} s ({:.0} moves/s)",
            per_writer * writers,
            moved_in.as_secs_f64(),
            (per_writer * writers) as f64 / moved_in.as_secs_f64()
        );
        println!(
            "  messages: {messages} accepted in {:.1} s from the first move = {:.0} messages/s end to end",
            elapsed.as_secs_f64(),
            messages / elapsed.as_secs_f64()
        );

        let mails = smtp.received();
        let hooks = receiver.requests();
        let mail_ids: HashSet<String> = mails
            .iter()
            .filter_map(|m| {
                let text = String::from_utf8_lossy(&m.data);
                text.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).map(str::to_owned)
            })
            .collect();
        let hook_ids: HashSet<String> = hooks.iter().map(|r| r.header("webhook-id")).collect();
        let (new_mails, new_hooks) = (mails.len() - before_mails, hooks.len() - before_hooks);
        println!(
            "  SMTP server: {} emails, {} distinct Message-IDs; webhook receiver: {} calls, {} distinct webhook-ids",
            mails.len(),
            mail_ids.len(),
            hooks.len(),
            hook_ids.len()
        );
        println!(
            "  outbox: sent {}, dead {}, retrying {}, pending {}",
            count(&service, "sent").await,
            count(&service, "dead").await,
            count(&service, "retrying").await,
            count(&service, "pending").await
        );
        let lost_or_doubled = mails.len() != mail_ids.len()
            || hooks.len() != hook_ids.len()
            || (new_mails + new_hooks) as f64 != messages;
        println!("  lost or duplicated: {}", if lost_or_doubled { "YES" } else { "none" });
    });
}
