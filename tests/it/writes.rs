//! The change write exists in several forms — SQLite's single call (one event, or several),
//! PostgreSQL's group-commit batch statement, the batch statement inside a transaction, and
//! plain statements in a caller's transaction. The same plans must store the same rows
//! through each of them. Likewise a new order, created alone or in a batch.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use kiln::domain::change::{Change, Edits, plan};
use kiln::domain::model::{Actor, Customer, ExternalIds, LineItem};
use kiln::domain::order::{EmailAddress, Language, Priority, Source};
use kiln::domain::transition::Action;
use kiln::service::{Linked, NewOrder};
use kiln::store::changes::{self, PlannedWrite};
use kiln::store::orders;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// How a variant writes.
#[derive(Debug, Clone, Copy)]
enum Variant {
    /// No transaction: SQLite's single call or PostgreSQL's batcher.
    Direct,
    /// `apply` inside a transaction the caller opened.
    InTransaction,
    /// The plain statements of `write_in`, committed by the caller.
    Plain,
}

async fn write(app: &TestApp, variant: Variant, write: PlannedWrite) -> Vec<i64> {
    let db = app.service.db();
    let write = Arc::new(write);
    let ids = match variant {
        Variant::Direct => changes::apply(db, None, write).await,
        Variant::InTransaction => changes::apply(db, Some(db.begin().await.expect("begin")), write).await,
        Variant::Plain => {
            let mut tx = db.begin().await.expect("begin");
            let ids = changes::write_in(&mut tx, &write).await;
            tx.commit().await.expect("commit");
            ids
        }
    };
    ids.expect("written").expect("the version still matched")
}

/// Moves a fresh order on (one event), then holds it with a note in one edit (two events),
/// through `variant`; returns the order's rows as text, without ids and references.
async fn rows_written_by(app: &TestApp, variant: Variant) -> Vec<String> {
    let reference = app.new_order("jobshop").await;
    let db = app.service.db();
    let id = app.service.order_id(&reference).await.expect("lookup").expect("order");
    let wf = app.service.workflows().get("jobshop").expect("jobshop").clone();
    let actor = Actor { name: "variant-test".to_owned(), source: Source::Api };
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).single().expect("a time");
    let changes = [
        Change::Act {
            action: Action::Move { to: "released".to_owned() },
            expected_stage: None,
            note: Some("cut list attached".to_owned()),
            internal_note: Some("rush the saw".to_owned()),
            photo_ids: vec![],
        },
        Change::Edit(Edits {
            priority: Some(Priority::Hold),
            notes: Some("waiting for steel".to_owned()),
            ..Edits::default()
        }),
    ];
    let mut counts = Vec::new();
    for change in &changes {
        let order = orders::by_id(db, id).await.expect("read").expect("order");
        let plan = plan(&wf, &order, change, &actor, at).expect("allowed");
        counts.push(plan.events.len());
        let planned =
            PlannedWrite { order: plan.order, events: plan.events, jobs: plan.jobs, at_ms: at.timestamp_millis() };
        write(app, variant, planned).await;
    }
    assert_eq!(counts, [1, 2], "one plan with one event, one with several");
    let order = format!(
        "SELECT stage || '|' || status || '|' || priority || '|' || COALESCE(resume_priority, '-') || '|' || notes \
         || '|' || customer_note || '|' || CAST(version AS TEXT) || '|' || CAST(stage_entered_at AS TEXT) || '|' \
         || CAST(updated_at AS TEXT) || '|' || customer_channels || '|' || customer_language || '|' \
         || COALESCE(due_date, '-') || '|' || external_ids || '|' || metadata || '|' || replace(search_text, lower(reference), '') \
         FROM orders WHERE id = {id}"
    );
    let events = format!(
        "SELECT kind || '|' || COALESCE(from_stage, '-') || '|' || COALESCE(to_stage, '-') || '|' || actor || '|' \
         || source || '|' || COALESCE(note, '-') || '|' || COALESCE(internal_note, '-') || '|' || visibility || '|' \
         || photo_ids || '|' || data || '|' || CAST(created_at AS TEXT) \
         FROM order_events WHERE order_id = {id} AND kind <> 'created' ORDER BY id"
    );
    let jobs = format!(
        "SELECT o.kind || '|' || e.kind || '|' || o.payload || '|' || o.status || '|' || CAST(o.attempts AS TEXT) \
         || '|' || CAST(o.run_at AS TEXT) || '|' || CAST(o.created_at AS TEXT) || '|' || CAST(o.updated_at AS TEXT) \
         FROM outbox o JOIN order_events e ON e.id = o.event_id WHERE o.order_id = {id} AND e.kind <> 'created'"
    );
    let mut jobs = app.strings(&jobs).await;
    // The batch statement inserts one change's jobs in no particular id order.
    jobs.sort();
    let mut rows = app.strings(&order).await;
    rows.extend(app.strings(&events).await);
    rows.extend(jobs);
    rows
}

#[tokio::test]
async fn every_form_of_the_change_write_stores_the_same_rows() {
    let app = spawn_app().await;
    let direct = rows_written_by(&app, Variant::Direct).await;
    assert_eq!(direct.len(), 1 + 3 + 3, "the order, three events and their jobs: {direct:#?}");
    assert!(direct[0].starts_with("released|open|hold|standard|waiting for steel|"), "{}", direct[0]);
    for variant in [Variant::InTransaction, Variant::Plain] {
        assert_eq!(rows_written_by(&app, variant).await, direct, "{variant:?} stores what Direct stores");
    }
}

/// A new order with two items and every optional field set, placed at a fixed time.
fn new_order() -> NewOrder {
    let item = |description: &str, quantity| LineItem {
        description: description.to_owned(),
        variant: Some("A5".to_owned()),
        quantity,
        material: Some("paper".to_owned()),
        metadata: json!({ "sheet": 1 }),
    };
    NewOrder {
        reference: None,
        workflow: "print".to_owned(),
        stage: None,
        priority: Priority::Hold,
        customer: Customer {
            name: "Tom Berg".to_owned(),
            email: Some(EmailAddress::parse("tom@example.com").expect("an email")),
            phone: None,
            telegram_chat_id: None,
            channels: Vec::new(),
            language: Language::parse("en").expect("a language"),
            timezone: None,
        },
        items: vec![item("Flyers", 500), item("Posters", 20)],
        due_date: chrono::NaiveDate::from_ymd_opt(2027, 3, 1),
        notes: "matte".to_owned(),
        customer_note: String::new(),
        external_ids: ExternalIds::default(),
        metadata: json!({ "import": { "batch": 7 } }),
        created_at: Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).single(),
    }
}

/// The rows stored for the order linked to `external_id` of `test`, as text, without ids,
/// references and tokens (which differ by design).
async fn rows_of_new_order(app: &TestApp, external_id: &str) -> Vec<String> {
    let id = app.count(&format!("SELECT order_id FROM order_links WHERE external_id = '{external_id}'")).await;
    let queries = [
        format!(
            "SELECT workflow || '|' || stage || '|' || status || '|' || priority || '|' || COALESCE(resume_priority, '-') \
             || '|' || customer_name || '|' || COALESCE(customer_email, '-') || '|' || customer_channels || '|' \
             || customer_language || '|' || COALESCE(due_date, '-') || '|' || notes || '|' || customer_note || '|' \
             || external_ids || '|' || metadata || '|' || CAST(version AS TEXT) || '|' || CAST(stage_entered_at AS TEXT) \
             || '|' || CAST(created_at AS TEXT) || '|' || CAST(updated_at AS TEXT) || '|' \
             || replace(search_text, lower(reference), '') FROM orders WHERE id = {id}"
        ),
        format!(
            "SELECT CAST(position AS TEXT) || '|' || description || '|' || COALESCE(variant, '-') || '|' \
             || CAST(quantity AS TEXT) || '|' || COALESCE(material, '-') || '|' || metadata \
             FROM order_items WHERE order_id = {id} ORDER BY position"
        ),
        format!("SELECT source || '|' || CAST(created_at AS TEXT) FROM order_links WHERE order_id = {id}"),
        format!(
            "SELECT CAST(length(token_hash) AS TEXT) || '|' || CAST(created_at AS TEXT) || '|' \
             || COALESCE(CAST(revoked_at AS TEXT), '-') FROM tracking_links WHERE order_id = {id}"
        ),
        format!(
            "SELECT kind || '|' || COALESCE(from_stage, '-') || '|' || COALESCE(to_stage, '-') || '|' || actor || '|' \
             || source || '|' || COALESCE(note, '-') || '|' || visibility || '|' || photo_ids || '|' || data || '|' \
             || CAST(created_at AS TEXT) FROM order_events WHERE order_id = {id} ORDER BY id"
        ),
        format!(
            "SELECT o.kind || '|' || e.kind || '|' || o.payload || '|' || o.status || '|' || CAST(o.attempts AS TEXT) \
             || '|' || CAST(o.run_at AS TEXT) || '|' || CAST(o.created_at AS TEXT) || '|' || CAST(o.updated_at AS TEXT) \
             FROM outbox o JOIN order_events e ON e.id = o.event_id WHERE o.order_id = {id} ORDER BY o.kind"
        ),
    ];
    let mut rows = Vec::new();
    for query in queries {
        rows.extend(app.strings(&query).await);
    }
    rows
}

#[tokio::test]
async fn both_forms_of_the_new_order_write_store_the_same_rows() {
    let app = spawn_app().await;
    let actor = Actor { name: "form-test".to_owned(), source: Source::System };
    let single = app.service.create_linked_order(new_order(), &actor, "test", "SINGLE").await.expect("created");
    assert!(matches!(single, Linked::New(_)), "{single:?}");
    let batch = vec![(new_order(), "BATCH-1".to_owned()), (new_order(), "BATCH-2".to_owned())];
    let results = app.service.create_linked_batch(batch, &actor, "test").await;
    assert!(results.iter().all(|r| matches!(r, Ok(Linked::New(_)))), "{results:?}");

    let written = rows_of_new_order(&app, "SINGLE").await;
    assert_eq!(written.len(), 1 + 2 + 1 + 1 + 1 + 3, "order, items, link, tracking, event, jobs: {written:#?}");
    assert!(written[0].starts_with("print|spec_review|open|hold|standard|Tom Berg|"), "{}", written[0]);
    for external_id in ["BATCH-1", "BATCH-2"] {
        assert_eq!(rows_of_new_order(&app, external_id).await, written, "{external_id} is stored as the single form");
    }
    let references = app.strings("SELECT reference FROM orders ORDER BY id").await;
    assert_eq!(references.len(), 3);
    assert!(references.windows(2).all(|w| w[0] < w[1]), "numbered in order: {references:?}");
}
