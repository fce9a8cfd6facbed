use chrono::TimeZone as _;
use serde_json::json;

use super::*;
use crate::domain::model::{Event, ExternalIds};
use crate::domain::order::{CustomerNeed, OrderRef, Source};
use crate::domain::transition::OrderState;
use crate::domain::workflow::load_presets;

fn stone() -> Workflow {
    load_presets().expect("presets").get("stone").expect("stone").clone()
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).single().expect("valid time")
}

fn order(stage: &str) -> Order {
    Order {
        id: 7,
        reference: OrderRef::parse("K-000007").expect("ref"),
        workflow: "stone".to_owned(),
        state: OrderState {
            stage: stage.to_owned(),
            status: Status::Open,
            priority: Priority::Standard,
            resume_priority: None,
        },
        customer: Customer {
            name: "Ana".to_owned(),
            email: Some(EmailAddress::parse("ana@example.com").expect("email")),
            phone: None,
            telegram_chat_id: None,
            channels: vec![Channel::Email],
            language: Language::english(),
            timezone: None,
        },
        due_date: None,
        notes: String::new(),
        customer_note: String::new(),
        external_ids: ExternalIds::default(),
        metadata: json!({}),
        version: 3,
        stage_entered_at: at(1),
        created_at: at(1),
        updated_at: at(1),
    }
}

fn actor() -> Actor {
    Actor { name: "bench-tablet".to_owned(), source: Source::Ops }
}

#[test]
fn a_move_updates_the_stage_clock_and_enqueues_publish_and_notify() {
    let change = Change::Act {
        action: Action::Move { to: "quality_check".to_owned() },
        expected_stage: Some("fabrication".to_owned()),
        note: Some("Polished".to_owned()),
        internal_note: Some("used pad 3".to_owned()),
        photo_ids: vec![4],
    };
    let plan = plan(&stone(), &order("fabrication"), &change, &actor(), at(9)).expect("allowed");
    assert_eq!(plan.order.state.stage, "quality_check");
    assert_eq!(plan.order.stage_entered_at, at(9));
    assert_eq!(plan.order.version, 3, "the version is checked by the write, not bumped here");
    let [event] = plan.events.as_slice() else { panic!("one event") };
    assert_eq!(event.kind, EventKind::Moved);
    assert_eq!((event.from_stage.as_deref(), event.to_stage.as_deref()), (Some("fabrication"), Some("quality_check")));
    assert_eq!(event.visibility, Visibility::Customer);
    assert_eq!(event.photo_ids, [4]);
    assert_eq!(event.actor, "bench-tablet");
    let kinds: Vec<_> = plan.jobs.iter().map(|j| (j.kind, j.event)).collect();
    assert_eq!(kinds, [(jobs::PUBLISH_EVENT, 0), (jobs::NOTIFY_CUSTOMER, 0)]);
}

#[test]
fn a_refused_move_plans_nothing() {
    let change = Change::Act {
        action: Action::Move { to: "delivered".to_owned() },
        expected_stage: None,
        note: None,
        internal_note: None,
        photo_ids: vec![],
    };
    assert!(matches!(plan(&stone(), &order("fabrication"), &change, &actor(), at(9)), Err(Refusal::NotAllowed { .. })));
}

#[test]
fn edits_record_what_changed_from_what() {
    let edits = Edits {
        priority: Some(Priority::Rush),
        due_date: Some(NaiveDate::from_ymd_opt(2026, 6, 1)),
        phone: Some(Some(PhoneNumber::parse("+393471234567").expect("phone"))),
        name: Some("Ana".to_owned()),
        ..Edits::default()
    };
    let plan = plan(&stone(), &order("fabrication"), &Change::Edit(edits), &actor(), at(9)).expect("allowed");
    assert_eq!(plan.order.state.priority, Priority::Rush);
    assert_eq!(plan.order.stage_entered_at, at(1), "edits do not restart the stage clock");
    let [event] = plan.events.as_slice() else { panic!("one event") };
    assert_eq!(event.kind, EventKind::Updated);
    assert_eq!(event.visibility, Visibility::Internal);
    assert_eq!(
        event.data["changed"],
        json!({
            "priority": { "from": "standard", "to": "rush" },
            "due_date": { "from": null, "to": "2026-06-01" },
            "customer.phone": { "from": null, "to": "+393471234567" },
        }),
        "unchanged fields (the same name) are not recorded"
    );
    assert_eq!(plan.jobs.len(), 1, "edits are published but do not notify the customer");
}

#[test]
fn setting_priority_to_hold_is_a_hold_event_and_the_other_edits_follow() {
    let edits = Edits { priority: Some(Priority::Hold), notes: Some("waiting on slab".to_owned()), ..Edits::default() };
    let plan = plan(&stone(), &order("fabrication"), &Change::Edit(edits), &actor(), at(9)).expect("allowed");
    let kinds: Vec<_> = plan.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Held, EventKind::Updated]);
    assert_eq!(plan.order.state.priority, Priority::Hold);
    assert_eq!(plan.order.state.resume_priority, Some(Priority::Standard));
    assert!(plan.jobs.iter().any(|j| j.kind == jobs::NOTIFY_CUSTOMER && j.event == 0), "stone notifies on hold");
}

#[test]
fn a_hold_that_waits_on_the_customer_records_what_it_needs_and_reads_back() {
    let needs = CustomerNeed::parse("your ring size").expect("need");
    let hold = |needs| Change::Act {
        action: Action::Hold { needs },
        expected_stage: None,
        note: Some("We cannot size the band yet.".to_owned()),
        internal_note: None,
        photo_ids: vec![],
    };
    let planned = plan(&stone(), &order("fabrication"), &hold(Some(needs)), &actor(), at(9)).expect("allowed");
    let [event] = planned.events.as_slice() else { panic!("one event") };
    assert_eq!(event.kind, EventKind::Held);
    assert_eq!(event.data, json!({ "priority": "hold", "waits_on": "customer", "needs": "your ring size" }));
    assert_eq!(planned.order.state.priority, Priority::Hold);
    let recorded = |e: &NewEvent| Event {
        id: 1,
        order_id: 7,
        kind: e.kind,
        from_stage: e.from_stage.clone(),
        to_stage: e.to_stage.clone(),
        actor: e.actor.clone(),
        source: e.source,
        note: e.note.clone(),
        internal_note: None,
        visibility: e.visibility,
        photo_ids: vec![],
        data: e.data.clone(),
        created_at: at(9),
    };
    assert_eq!(recorded(event).customer_need(), Some("your ring size"));

    let plain = plan(&stone(), &order("fabrication"), &hold(None), &actor(), at(9)).expect("allowed");
    assert_eq!(plain.events[0].data, json!({ "priority": "hold" }), "a hold on the shop's side says nothing more");
    assert_eq!(recorded(&plain.events[0]).customer_need(), None);
}

#[test]
fn a_completed_order_keeps_its_priority() {
    let mut done = order("delivered");
    done.state.status = Status::Completed;
    let edits = Edits { priority: Some(Priority::Rush), ..Edits::default() };
    assert!(plan(&stone(), &done, &Change::Edit(edits), &actor(), at(9)).is_err());
    let edits = Edits { notes: Some("paid in full".to_owned()), ..Edits::default() };
    assert!(plan(&stone(), &done, &Change::Edit(edits), &actor(), at(9)).is_ok(), "notes can still change");
}

#[test]
fn notes_are_events_and_only_customer_notes_may_notify() {
    let note =
        Change::Note { body: "Your slab is gorgeous".to_owned(), visibility: Visibility::Customer, notify: true };
    let plan_a = plan(&stone(), &order("fabrication"), &note, &actor(), at(9)).expect("allowed");
    assert_eq!(plan_a.events[0].kind, EventKind::Noted);
    assert_eq!(plan_a.jobs.len(), 2);
    let note = Change::Note { body: "crack on edge".to_owned(), visibility: Visibility::Internal, notify: true };
    let plan_b = plan(&stone(), &order("fabrication"), &note, &actor(), at(9)).expect("allowed");
    assert_eq!(plan_b.jobs.len(), 1, "internal notes never reach the customer");
}

#[test]
fn an_order_awaiting_payment_is_created_quietly_and_paying_makes_it_work() {
    let wf = stone();
    let mut waiting = order("quarry_extraction");
    waiting.state.status = Status::AwaitingPayment;
    let created = plan_creation(&wf, waiting.clone(), &actor());
    let kinds: Vec<_> = created.jobs.iter().map(|j| j.kind).collect();
    assert_eq!(kinds, [jobs::PUBLISH_EVENT], "nobody is told about an unpaid order");
    assert_eq!(created.events[0].data["status"], "awaiting_payment");

    let paid = plan(&wf, &waiting, &Change::Paid { internal_note: Some("Paid".to_owned()) }, &actor(), at(2))
        .expect("paying is allowed");
    assert_eq!(paid.order.state.status, Status::Open);
    assert_eq!(paid.order.stage_entered_at, at(2));
    assert_eq!(paid.events[0].kind, EventKind::Paid);
    assert!(paid.jobs.iter().any(|j| j.kind == jobs::NOTIFY_STAFF), "the shop hears of it now");
    // Paying twice is refused: the second payment event changes nothing.
    assert!(plan(&wf, &paid.order, &Change::Paid { internal_note: None }, &actor(), at(3)).is_err());
}
