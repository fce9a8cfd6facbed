//! The tracking page's view in every state, built from hand-made snapshots.

use chrono::{NaiveDate, TimeZone};
use serde_json::json;

use super::*;
use crate::domain::model::{Customer, ExternalIds, Order};
use crate::domain::order::{Language, OrderRef, Visibility};
use crate::domain::transition::OrderState;
use crate::domain::workflow::load_presets;
use crate::i18n::Catalog;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).single().expect("time")
}

fn event(id: i64, kind: EventKind, to: Option<&str>, note: Option<&str>, when: DateTime<Utc>) -> Event {
    Event {
        id,
        order_id: 1,
        kind,
        from_stage: None,
        to_stage: to.map(str::to_owned),
        actor: "shop".to_owned(),
        source: Source::Api,
        note: note.map(str::to_owned),
        internal_note: None,
        visibility: Visibility::Customer,
        photo_ids: vec![],
        data: json!({}),
        created_at: when,
    }
}

/// A print order in `stage` since day 1, with its log.
fn snapshot(
    stage: &str,
    status: Status,
    priority: Priority,
    due: Option<NaiveDate>,
    events: Vec<Event>,
) -> TrackSnapshot {
    let order = Order {
        id: 1,
        reference: OrderRef::numbered("K", 1),
        workflow: "print".to_owned(),
        state: OrderState { stage: stage.to_owned(), status, priority, resume_priority: None },
        customer: Customer {
            name: "Ana".to_owned(),
            email: None,
            phone: None,
            telegram_chat_id: None,
            channels: vec![],
            language: Language::english(),
            timezone: None,
        },
        due_date: due,
        notes: String::new(),
        customer_note: String::new(),
        external_ids: ExternalIds::default(),
        metadata: json!({ "carrier_tracking_url": "https://carrier.example/track/123" }),
        version: 1,
        stage_entered_at: at(1, 0),
        created_at: at(1, 0),
        updated_at: at(1, 0),
    };
    let last_event_id = events.last().map_or(0, |e| e.id);
    TrackSnapshot {
        order,
        items: vec![],
        events,
        holds: vec![],
        token_hash: String::new(),
        last_event_id,
        photos: vec![],
    }
}

fn view_of(s: &TrackSnapshot, now: DateTime<Utc>) -> TrackView {
    let workflows = load_presets().expect("presets");
    let wf = workflows.get("print").expect("print");
    let shop = ShopView::new(&crate::config::ShopConfig {
        pickup_address: Some("Via Roma 1".to_owned()),
        ..crate::config::ShopConfig::default()
    });
    let t = Catalog::load().expect("strings").english();
    build(s, "https://x.example/t/tok/photos/", wf, &shop, &t, chrono_tz::UTC, now)
}

#[test]
fn a_cancelled_order_says_so_at_the_top_with_its_date_and_reason() {
    let log = vec![
        event(1, EventKind::Created, Some("spec_review"), None, at(1, 0)),
        event(2, EventKind::Cancelled, None, Some("Cancelled at your request."), at(2, 9)),
    ];
    let v = view_of(&snapshot("queued", Status::Cancelled, Priority::Standard, None, log), at(3, 0));
    assert_eq!(v.card.kind, "cancelled");
    assert_eq!(v.card.title, "This order was cancelled");
    assert_eq!(v.card.text.as_deref(), Some("Cancelled on Monday 2 March 2026."));
    assert_eq!(v.card.reason.as_deref(), Some("Cancelled at your request."));
    assert!(!v.card.title.contains("Queued"), "not 'Now: Queued'");
}

#[test]
fn a_held_order_shows_the_reason_the_shop_gave_or_none() {
    let held = |note| {
        let log = vec![event(1, EventKind::Held, None, note, at(1, 5))];
        view_of(&snapshot("printing", Status::Open, Priority::Hold, None, log), at(2, 0))
    };
    let with = held(Some("We need the high-resolution logo from you."));
    assert_eq!((with.card.kind, with.card.title.as_str()), ("held", "On hold"));
    assert_eq!(with.card.reason.as_deref(), Some("We need the high-resolution logo from you."));
    assert_eq!(with.eta.state, "paused");
    let without = held(None);
    assert_eq!(without.card.kind, "held");
    assert_eq!(without.card.reason, None);
    assert!(without.card.text.as_deref().is_some_and(|t| t.contains("paused")));
}

#[test]
fn a_hold_that_waits_on_the_customer_says_what_we_need_and_that_the_date_depends_on_them() {
    let mut hold = event(1, EventKind::Held, None, Some("The band is cut to size."), at(1, 5));
    hold.data = json!({ "priority": "hold", "waits_on": "customer", "needs": "your ring size" });
    // Promised for 2 March, held since 1 March: the promise is not called broken on the 6th.
    let mut s = snapshot("printing", Status::Open, Priority::Hold, NaiveDate::from_ymd_opt(2026, 3, 2), vec![hold]);
    s.holds = vec![crate::domain::eta::Hold { from: at(1, 5), until: None, on_customer: true }];
    let v = view_of(&s, at(6, 0));
    assert_eq!(v.card.kind, "needs");
    assert_eq!(v.card.title, "We need something from you");
    assert_eq!(v.card.text.as_deref(), Some("We need: your ring size"));
    assert_eq!(v.card.reason.as_deref(), Some("The band is cut to size."));
    assert_eq!(v.eta.state, "awaiting");
    assert!(v.eta.message.starts_with("Depends on you:"), "{}", v.eta.message);
    assert!(v.eta.late.is_empty(), "the customer's wait is not the shop's lateness: {:?}", v.eta.late);
    assert_eq!(v.timeline[0].title, "Put on hold");
}

#[test]
fn a_late_order_gives_a_stable_range_and_says_whose_step_is_late() {
    // `printing` takes a day; three days in, with a promise far away.
    let s = snapshot("printing", Status::Open, Priority::Standard, NaiveDate::from_ymd_opt(2026, 3, 30), vec![]);
    let morning = view_of(&s, at(4, 8));
    let evening = view_of(&s, at(4, 20));
    assert_eq!(morning.eta.date_text, evening.eta.date_text, "no sliding with the clock");
    assert!(morning.eta.date_text.as_deref().is_some_and(|d| d.starts_with("Between ")), "{:?}", morning.eta);
    assert_eq!(morning.eta.late.len(), 1);
    assert!(morning.eta.late[0].contains("Our step “Printing”"), "{}", morning.eta.late[0]);
    assert!(morning.eta.late[0].contains("the date we promised"), "still on time for the promise");
    assert_ne!(morning.eta.countdown_text.as_deref(), Some("any moment now"));
}

#[test]
fn an_order_past_its_promised_date_says_so_and_the_last_stage_overrun_promises_a_confirmation() {
    let due = NaiveDate::from_ymd_opt(2026, 3, 2);
    let late = view_of(&snapshot("printing", Status::Open, Priority::Standard, due, vec![]), at(4, 0));
    assert!(
        late.eta.late.iter().any(|l| l.contains("later than the date we promised (Monday 2 March 2026)")),
        "{:?}",
        late.eta.late
    );
    let last = view_of(&snapshot("finishing", Status::Open, Priority::Standard, None, vec![]), at(4, 0));
    assert_eq!(last.eta.state, "confirming");
    assert!(last.eta.message.contains("confirm the finish date by Thursday 5 March 2026"), "{}", last.eta.message);
}

#[test]
fn a_completed_order_shows_its_date_pickup_and_carrier() {
    let log = vec![event(5, EventKind::Moved, Some("ready"), None, at(6, 15))];
    let v = view_of(&snapshot("ready", Status::Completed, Priority::Standard, None, log), at(7, 0));
    assert_eq!(v.card.kind, "completed");
    assert_eq!(v.card.title, "Completed on Friday 6 March 2026");
    assert!(v.card.pickup && v.shop.pickup_address.is_some());
    assert_eq!(v.card.carrier_url.as_deref(), Some("https://carrier.example/track/123"));
}

#[test]
fn a_proof_waits_on_the_customer_without_a_date_and_dates_of_other_years_carry_the_year() {
    let log = vec![event(3, EventKind::Moved, Some("proof_approval"), Some("Front print"), at(1, 0))];
    let v = view_of(&snapshot("proof_approval", Status::Open, Priority::Standard, None, log.clone()), at(5, 0));
    assert_eq!(v.card.kind, "awaiting");
    assert_eq!(v.eta.state, "awaiting");
    assert!(v.eta.message.starts_with("Depends on your approval"), "{}", v.eta.message);
    assert!(v.eta.late.is_empty(), "the customer's wait is not the shop's lateness");
    assert_eq!(v.approval.as_ref().map(|a| a.round), Some(1));
    let next_year = view_of(
        &snapshot("proof_approval", Status::Open, Priority::Standard, None, log),
        at(5, 0) + chrono::Duration::days(365),
    );
    assert!(next_year.timeline[0].when.contains("2026"), "{}", next_year.timeline[0].when);
    assert!(!v.timeline[0].when.contains("2026"), "{}", v.timeline[0].when);
}
