//! Notifications end to end, each channel against a real peer started by the test: an SMTP
//! server, an HTTP server speaking Twilio's and Telegram's wire formats, a webhook receiver.

use std::collections::HashMap;
use std::time::Duration;

use kiln::config::Config;
use kiln::notify::Notifier;
use kiln::notify::config::{EmailConfig, SmtpSecurity, TelegramConfig, TwilioConfig, WebhookConfig};
use mail_parser::MimeHeaders;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::fixtures;
use crate::helpers::{TestApp, on_postgres, order_body, spawn_app_with};
use crate::peers::{Answer, HttpPeer, SmtpServer, verify_webhook};

pub(crate) const WAIT: Duration = Duration::from_secs(20);
/// A fresh secret, and the one it replaces (the spec's test-vector secret).
pub(crate) const NEW_SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3Itcm90YXRpb24tdGVzdHMtMzI=";
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Fast retries so that tests of backoff take seconds, not minutes.
pub(crate) fn quick_worker(c: &mut Config) {
    let w = &mut c.notify.worker;
    w.enabled = true;
    w.poll_interval = Duration::from_millis(50);
    w.backoff = Duration::from_millis(200);
    w.max_backoff = Duration::from_secs(2);
    w.max_attempts = 4;
}

fn email_config(smtp: &SmtpServer) -> EmailConfig {
    EmailConfig {
        host: smtp.addr.ip().to_string(),
        port: Some(smtp.addr.port()),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Marmi Rossi <orders@marmi.example>".to_owned(),
        timeout: Duration::from_secs(5),
    }
}

pub(crate) fn webhook(name: &str, url: &str, secrets: &[&str]) -> WebhookConfig {
    WebhookConfig {
        name: name.to_owned(),
        url: url.to_owned(),
        secrets: secrets.iter().map(|s| (*s).to_owned().into()).collect(),
    }
}

pub(crate) async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("json")
}

pub(crate) async fn messages(app: &TestApp, reference: &str) -> Vec<Value> {
    let res = app.get(&format!("/orders/{reference}/messages")).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

/// Waits until the order's messages satisfy `done`.
pub(crate) async fn wait_messages(app: &TestApp, reference: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let list = messages(app, reference).await;
        if done(&list) {
            return list;
        }
        assert!(started.elapsed() < WAIT, "messages never settled: {list:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn states(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .map(|m| (m["channel"].as_str().unwrap_or("").to_owned(), m["state"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn a_stage_email_reaches_a_real_smtp_server_in_the_customers_language() {
    let smtp = SmtpServer::start().await;
    let email = email_config(&smtp);
    let app = spawn_app_with(|c| {
        quick_worker(c);
        c.notify.email = Some(email);
        c.notify.staff.email = Some("owner@marmi.example".to_owned());
    })
    .await;
    let mut body = order_body("stone");
    body["customer"]["email"] = json!("giulia@example.it");
    body["customer"]["language"] = json!("it");
    body["customer"]["channels"] = json!(["email"]);
    let order = create(&app, body).await;
    let reference = order["reference"].as_str().expect("reference");
    let tracking_url = order["tracking_url"].as_str().expect("url");

    // The owner hears about the new order; the customer gets the first stage's email.
    let mails = smtp.wait_for(2, WAIT).await;
    assert!(mails.iter().any(|m| m.rcpt == ["owner@marmi.example"]), "staff message");

    let photo = fixtures::jpeg(&fixtures::photo_like(640, 480));
    let form = Form::new()
        .text("to", "block_selection")
        .text("note", "Il blocco è arrivato dalla cava")
        .part("photo", Part::bytes(photo).file_name("block.jpg").mime_str("image/jpeg").expect("mime"));
    let res = app
        .client
        .post(app.api(&format!("/orders/{reference}/moves")))
        .bearer_auth(&app.write_token)
        .multipart(form)
        .send()
        .await
        .expect("move");
    assert_eq!(res.status(), StatusCode::OK);

    let mails = smtp.wait_for(3, WAIT).await;
    let raw = &mails[2].data;
    assert_eq!(mails[2].rcpt, ["giulia@example.it"]);
    let parsed = mail_parser::MessageParser::default().parse(raw).expect("a parseable email");
    let subject = parsed.subject().expect("subject");
    assert!(subject.contains(reference) && subject.contains("Scelta del blocco"), "Italian stage label: {subject}");
    let message_id = parsed.message_id().expect("Message-ID").to_owned();
    assert!(message_id.starts_with("kiln."), "{message_id}");
    // RFC 5322 §3.6.4: `msg-id = "<" id-left "@" id-right ">"`, brackets included on the wire.
    let raw_id = parsed.header_raw("Message-ID").expect("a Message-ID header").trim();
    assert_eq!(raw_id, format!("<{message_id}>"), "the header keeps its angle brackets");
    assert!(message_id.split_once('@').is_some_and(|(l, r)| !l.is_empty() && !r.is_empty()), "{message_id}");
    assert_python_email_finds_no_defect(raw);
    let text = parsed.body_text(0).expect("plain text part");
    assert!(text.contains("Buongiorno") && text.contains(tracking_url), "{text}");
    assert!(text.contains("Il blocco è arrivato dalla cava"), "the note");
    let html = parsed.body_html(0).expect("HTML part");
    // minijinja's HTML escaping writes `/` as `&#x2f;`; mail clients read it back as `/`.
    let escaped_url = tracking_url.replace('/', "&#x2f;");
    assert!(html.contains("cid:stage-photo") && html.contains(&escaped_url), "{html}");
    let inline = parsed.attachments().find(|a| a.content_id() == Some("stage-photo")).expect("the inline photo");
    assert!(image::load_from_memory(inline.contents()).is_ok(), "the photo is a real image");
    let unsubscribe = parsed.header_raw("List-Unsubscribe").expect("List-Unsubscribe").trim().to_owned();
    let token = tracking_url.rsplit('/').next().expect("token");
    assert_eq!(unsubscribe, format!("<{}/u/{token}>", app.base));
    assert_eq!(parsed.header_raw("List-Unsubscribe-Post").map(str::trim), Some("List-Unsubscribe=One-Click"));

    // The log lists the staff message too: it is about this order.
    let log = wait_messages(&app, reference, |l| l.len() == 3 && l.iter().all(|m| m["state"] == "sent")).await;
    let mut recipients: Vec<&str> = log.iter().map(|m| m["recipient"].as_str().unwrap_or("")).collect();
    recipients.sort_unstable();
    assert_eq!(recipients, ["giulia@example.it", "giulia@example.it", "owner@marmi.example"]);
    let stage_email = log.iter().max_by_key(|m| m["event_id"].as_i64()).expect("the stage email");
    assert_eq!(stage_email["attempt_log"][0]["outcome"], "sent");
    assert!(message_id.starts_with(&format!("kiln.{}.", stage_email["id"])), "the id comes from the job");

    // One-click unsubscribe, as a mail client sends it, without logging in.
    let res = app
        .client
        .post(format!("{}/u/{token}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("unsubscribe");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.move_to(reference, "fabrication").await.status(), StatusCode::OK);
    let log = wait_messages(&app, reference, |l| l.len() == 4).await;
    assert_eq!(log[3]["state"], "skipped");
    assert!(log[3]["last_error"].as_str().expect("reason").contains("opted out"));
    assert_eq!(smtp.received().len(), 3, "no email after the opt-out");
}

#[tokio::test]
async fn sms_whatsapp_and_telegram_follow_the_providers_answers() {
    let provider = HttpPeer::start(|req| {
        if req.path.contains("/Messages.json") {
            Answer::new(201, json!({ "sid": "SM0123", "status": "queued" }).to_string())
        } else {
            Answer::new(200, json!({ "ok": true, "result": { "message_id": 7 } }).to_string())
        }
    })
    .await;
    let base = provider.base.clone();
    let app = spawn_app_with(move |c| {
        quick_worker(c);
        c.notify.twilio = Some(TwilioConfig {
            base_url: base.clone(),
            account_sid: "AC123".to_owned(),
            auth_token: "twilio-secret".to_owned().into(),
            sms_from: Some("+15005550006".to_owned()),
            whatsapp_from: Some("+14155238886".to_owned()),
        });
        c.notify.telegram = Some(TelegramConfig { base_url: base, bot_token: "123:ABC".to_owned().into() });
    })
    .await;

    // SMS: rate-limited once (Retry-After), then accepted.
    provider
        .script([Answer::new(429, r#"{"code": 20429, "message": "Too Many Requests"}"#).header("retry-after", "1")]);
    let mut body = order_body("jobshop");
    body["customer"]["phone"] = json!("+393471234567");
    body["customer"]["channels"] = json!(["telegram", "sms"]);
    let reference = create(&app, body).await["reference"].as_str().expect("ref").to_owned();
    let log = wait_messages(&app, &reference, |l| l.first().is_some_and(|m| m["state"] == "sent")).await;
    assert_eq!(states(&log), [("sms".to_owned(), "sent".to_owned())], "no Telegram chat: falls back to SMS");
    let attempts = log[0]["attempt_log"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0]["detail"].as_str().expect("d").contains("429"));
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(attempts[i]["at"].as_str().expect("at")).expect("time");
    assert!(at(1) - at(0) >= chrono::Duration::milliseconds(950), "Retry-After honoured");
    let sms = provider.requests().into_iter().last().expect("request");
    assert_eq!((sms.method.as_str(), sms.path.as_str()), ("POST", "/2010-04-01/Accounts/AC123/Messages.json"));
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("AC123:twilio-secret");
    assert_eq!(sms.header("authorization"), format!("Basic {auth}"));
    let form: HashMap<String, String> = sms.form().into_iter().collect();
    assert_eq!(form["To"], "+393471234567");
    assert_eq!(form["From"], "+15005550006");
    assert!(form["Body"].contains(&reference), "{}", form["Body"]);

    // WhatsApp: a 400 (invalid number) is dead at once.
    provider.script([Answer::new(400, r#"{"code": 21211, "message": "Invalid 'To' Phone Number"}"#)]);
    let mut body = order_body("jobshop");
    body["customer"]["phone"] = json!("+393470000000");
    body["customer"]["channels"] = json!(["whatsapp"]);
    let reference = create(&app, body).await["reference"].as_str().expect("ref").to_owned();
    let log = wait_messages(&app, &reference, |l| l.first().is_some_and(|m| m["state"] == "dead")).await;
    assert_eq!(log[0]["attempts"], 1, "no retry of a permanent failure");
    assert!(log[0]["last_error"].as_str().expect("e").contains("Invalid 'To' Phone Number"));
    let wa = provider.requests().into_iter().last().expect("request");
    let form: HashMap<String, String> = wa.form().into_iter().collect();
    assert_eq!((form["To"].as_str(), form["From"].as_str()), ("whatsapp:+393470000000", "whatsapp:+14155238886"));

    // The operator retries the dead message; the provider now accepts it.
    let id = log[0]["id"].as_i64().expect("id");
    let res = app.client.post(app.api(&format!("/messages/{id}/retry"))).bearer_auth(&app.write_token).send().await;
    assert_eq!(res.expect("retry").status(), StatusCode::ACCEPTED);
    wait_messages(&app, &reference, |l| l[0]["state"] == "sent").await;

    // Telegram: a 500, then `retry_after` from a 429, then accepted; the chat gets the text.
    provider.script([
        Answer::new(500, r#"{"ok": false, "error_code": 500, "description": "Internal Server Error"}"#),
        Answer::new(429, r#"{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}"#),
    ]);
    let mut body = order_body("jobshop");
    body["customer"]["telegram_chat_id"] = json!("424242");
    body["customer"]["channels"] = json!(["telegram"]);
    let reference = create(&app, body).await["reference"].as_str().expect("ref").to_owned();
    let log = wait_messages(&app, &reference, |l| l.first().is_some_and(|m| m["state"] == "sent")).await;
    let outcomes: Vec<&str> =
        log[0]["attempt_log"].as_array().expect("a").iter().map(|a| a["outcome"].as_str().unwrap_or("")).collect();
    assert_eq!(outcomes, ["retrying", "retrying", "sent"]);
    let tg = provider.requests().into_iter().last().expect("request");
    assert_eq!(tg.path, "/bot123:ABC/sendMessage");
    assert_eq!(tg.json()["chat_id"], "424242");
    assert!(tg.json()["text"].as_str().expect("text").contains(&reference));

    // Telegram 400 (chat not found) is dead at once.
    provider.script([Answer::new(
        400,
        r#"{"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}"#,
    )]);
    for stage in ["released", "in_progress"] {
        assert_eq!(app.move_to(&reference, stage).await.status(), StatusCode::OK, "`released` does not notify");
    }
    let log = wait_messages(&app, &reference, |l| l.len() == 2 && l[1]["state"] == "dead").await;
    assert!(log[1]["last_error"].as_str().expect("e").contains("chat not found"));
}

#[tokio::test]
async fn webhooks_carry_standard_signatures_for_every_secret_and_keep_their_id() {
    // The receiver's verifier checks out against the spec's published test vector first.
    assert!(verify_webhook(
        OLD_SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    let receiver = HttpPeer::start(|_| Answer::new(204, "")).await;
    let redirecting = HttpPeer::start(|_| Answer::new(302, "").header("location", "https://elsewhere.example/")).await;
    let (url, moved) = (format!("{}/hooks/kiln", receiver.base), format!("{}/old", redirecting.base));
    let app = spawn_app_with(move |c| {
        quick_worker(c);
        c.notify.webhooks =
            vec![webhook("n8n", &url, &[NEW_SECRET, OLD_SECRET]), webhook("legacy", &moved, &[NEW_SECRET])];
    })
    .await;

    receiver.script([Answer::new(500, "try later")]);
    let reference = app.new_order("print").await;
    let settled = |l: &[Value]| {
        let hooks: Vec<&Value> = l.iter().filter(|m| m["channel"] == "webhook").collect();
        hooks.len() == 2 && hooks.iter().all(|m| m["state"] == "sent" || m["state"] == "dead")
    };
    let log = wait_messages(&app, &reference, settled).await;
    let by_name: HashMap<String, String> = log
        .iter()
        .filter(|m| m["channel"] == "webhook")
        .map(|m| (m["recipient"].as_str().unwrap_or("").to_owned(), m["state"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(by_name["n8n"], "sent");
    assert_eq!(by_name["legacy"], "dead", "a redirect is not followed");
    assert_eq!(redirecting.requests().len(), 1);

    let calls = receiver.requests();
    assert_eq!(calls.len(), 2, "one failure, one success");
    assert_eq!(calls[0].header("webhook-id"), calls[1].header("webhook-id"), "the same id on the retry");
    assert_eq!(calls[0].body, calls[1].body, "the same body on the retry");
    for call in &calls {
        let (id, ts, sig) =
            (call.header("webhook-id"), call.header("webhook-timestamp"), call.header("webhook-signature"));
        assert_eq!(sig.split(' ').count(), 2, "one signature per secret");
        assert!(verify_webhook(NEW_SECRET, &id, &ts, &call.body, &sig), "the new secret verifies");
        assert!(verify_webhook(OLD_SECRET, &id, &ts, &call.body, &sig), "the old secret still verifies");
        assert!(!verify_webhook(OLD_SECRET, &id, &ts, b"{\"tampered\":1}", &sig));
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("unix seconds");
        assert!((0..60).contains(&age));
    }
    let event = calls[1].json();
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["data"]["order"], reference.as_str());
}

#[tokio::test]
async fn an_smtp_outage_delays_messages_but_loses_none() {
    let mut smtp = SmtpServer::start().await;
    let email = email_config(&smtp);
    smtp.stop();
    let app = spawn_app_with(|c| {
        quick_worker(c);
        c.notify.worker.max_attempts = 50;
        c.notify.email = Some(email);
    })
    .await;
    let mut references = Vec::new();
    for i in 0..5 {
        let mut body = order_body("jewelry");
        body["customer"]["email"] = json!(format!("customer{i}@example.com"));
        body["customer"]["channels"] = json!(["email"]);
        references.push(create(&app, body).await["reference"].as_str().expect("ref").to_owned());
    }
    for reference in &references {
        wait_messages(&app, reference, |l| l.first().is_some_and(|m| m["state"] == "retrying")).await;
    }
    assert!(smtp.received().is_empty());

    smtp.restart().await;
    for reference in &references {
        wait_messages(&app, reference, |l| l.first().is_some_and(|m| m["state"] == "sent")).await;
    }
    // Let any stray duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = smtp
        .received()
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(&m.data)
                .and_then(|p| p.message_id().map(str::to_owned))
                .expect("id")
        })
        .collect();
    assert_eq!(ids.len(), 5, "every message delivered exactly once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

#[tokio::test]
async fn a_worker_killed_between_sending_and_recording_sends_again_with_the_same_id() {
    let (release, held) = tokio::sync::watch::channel(false);
    // The receiver takes the first call but holds its answer until the worker is dead.
    let gate = HttpPeer::start(|_| Answer::new(200, "ok")).await;
    gate.hold_next(held);
    let gate_url = format!("{}/hook", gate.base);
    let app = spawn_app_with(move |c| {
        c.notify.worker.poll_interval = Duration::from_millis(50);
        c.notify.worker.lease = Duration::from_secs(1);
        c.notify.webhooks = vec![webhook("flaky", &gate_url, &[NEW_SECRET])];
    })
    .await;
    let notifier = Notifier::new(app.service.clone()).expect("notifier");
    let reference = app.new_order("print").await;

    let stop = CancellationToken::new();
    let first = tokio::spawn(notifier.clone().run(stop.clone()));
    gate.wait_for(1, WAIT).await;
    first.abort(); // killed while the provider has the message and before anything is recorded
    let _ = first.await;
    release.send_replace(true);
    let log: Vec<Value> = messages(&app, &reference).await.into_iter().filter(|m| m["channel"] == "webhook").collect();
    assert_eq!(states(&log), [("webhook".to_owned(), "sending".to_owned())], "nothing recorded");

    let second = tokio::spawn(notifier.clone().run(stop.clone()));
    let log =
        wait_messages(&app, &reference, |l| l.iter().any(|m| m["channel"] == "webhook" && m["state"] == "sent")).await;
    let log: Vec<Value> = log.into_iter().filter(|m| m["channel"] == "webhook").collect();
    stop.cancel();
    let _ = second.await;
    let calls = gate.requests();
    assert_eq!(calls.len(), 2, "exactly one more delivery");
    assert_eq!(calls[0].header("webhook-id"), calls[1].header("webhook-id"), "with the same identity");
    assert_eq!(log[0]["attempts"], 2);
}

#[tokio::test]
async fn a_bad_template_stops_start_up_with_its_file_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let templates = dir.path().join("templates");
    let stage = templates.join("stone").join("fabrication").join("en");
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::write(stage.join("sms.txt"), "Your order\n{{ order.reference }\n").expect("write");
    let config = dir.path().join("kiln.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nbind = \"127.0.0.1:0\"\n[notify]\ntemplates_dir = \"{}\"\n",
            dir.path().join("data").display(),
            templates.display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env_remove("KILN_DATABASE_URL")
        .args(["--config"])
        .arg(&config)
        .arg("serve")
        .output()
        .expect("runs");
    assert!(!out.status.success(), "refused to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:2:", stage.join("sms.txt").display());
    assert!(stderr.contains(&expected), "names file and line: {stderr}");
}

#[tokio::test]
async fn two_workers_on_postgres_send_each_of_2000_messages_exactly_once() {
    if !on_postgres() {
        eprintln!("skipped: needs KILN_TEST_DATABASE_URL (FOR UPDATE SKIP LOCKED is PostgreSQL's)");
        return;
    }
    let receiver = HttpPeer::start(|_| Answer::new(200, "ok")).await;
    let url = format!("{}/sink", receiver.base);
    let hooks = vec![webhook("sink", &url, &[NEW_SECRET])];
    let first_hooks = hooks.clone();
    let app = spawn_app_with(move |c| c.notify.webhooks = first_hooks).await;
    let (db_url, key) = (app.db_url.clone(), app.secret_key.clone());
    let second = spawn_app_with(move |c| {
        c.database_url = Some(db_url.into());
        c.secret_key = Some(key.into());
        c.notify.webhooks = hooks;
    })
    .await;
    app.sql(
        "INSERT INTO outbox (kind, payload, status, attempts, run_at, created_at, updated_at, channel, recipient) \
         SELECT 'deliver', '{\"message\": {\"endpoint\": \"sink\", \"body\": \"{}\"}}', 'pending', 0, 0, g, 0, \
         'webhook', 'sink' FROM generate_series(1, 2000) AS g",
    )
    .await;
    let a = Notifier::new(app.service.clone()).expect("worker a");
    let b = Notifier::new(second.service.clone()).expect("worker b");
    let stop = CancellationToken::new();
    let (ta, tb) = (tokio::spawn(a.run(stop.clone())), tokio::spawn(b.run(stop.clone())));
    let calls = receiver.wait_for(2000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let _ = (ta.await, tb.await);
    let calls = receiver.requests().len().max(calls.len());
    let mut ids: Vec<String> = receiver.requests().iter().map(|r| r.header("webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((calls, ids.len()), (2000, 2000), "every job sent exactly once");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE kind = 'deliver' AND status = 'sent'").await, 2000);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_attempts").await, 2000, "one attempt per job");
}

/// Python's `email` package (what the acceptance run reads our mail with) finds no defect in
/// the message or its `Message-ID`; skipped where there is no python3.
fn assert_python_email_finds_no_defect(raw: &[u8]) {
    use std::io::Write;
    const SCRIPT: &str = "import sys, email, email.policy\n\
        m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)\n\
        h = m['Message-ID']\n\
        bad = list(m.defects) + (list(h.defects) if h is not None else ['no Message-ID'])\n\
        print('ok' if not bad else repr(bad))\n";
    let child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped: no python3 to parse the message with");
        return;
    };
    child.stdin.take().expect("stdin").write_all(raw).expect("write the message to python3");
    let out = child.wait_with_output().expect("python3 runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "Python's email parser finds defects");
}
