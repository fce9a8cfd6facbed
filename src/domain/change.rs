//! Planning a change to an order: the new order, the events to append and the jobs to
//! enqueue. Pure; the service writes the plan in one transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};

use super::model::{Actor, Customer, NewEvent, NewJob, Order, jobs};
use super::order::{Channel, EmailAddress, Language, PhoneNumber, Priority, Source, Status, TimeZone, Visibility};
use super::transition::{Action, EventKind, Refusal, allowed_actions, decide, priority_action};
use super::workflow::Workflow;

/// A change requested on an existing order.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A stage move, hold, resume or cancel.
    Act {
        /// The action.
        action: Action,
        /// Refuse unless the order is in this stage.
        expected_stage: Option<String>,
        /// Note for the event (customer-visible if the event is).
        note: Option<String>,
        /// Note only the shop sees.
        internal_note: Option<String>,
        /// Photos attached to the event.
        photo_ids: Vec<i64>,
    },
    /// Field edits.
    Edit(Edits),
    /// A note on the timeline.
    Note {
        /// The text.
        body: String,
        /// Who sees it.
        visibility: Visibility,
        /// Whether to send it to the customer too (customer-visible notes only).
        notify: bool,
    },
    /// Photos attached to the order outside a move.
    Photos {
        /// The photos, already recorded.
        photo_ids: Vec<i64>,
        /// Caption shown with them.
        caption: Option<String>,
        /// Who sees them.
        visibility: Visibility,
    },
    /// The payment of an order awaiting it arrived: the order enters its first stage as work.
    Paid {
        /// Note for the shop (where the money came from).
        internal_note: Option<String>,
    },
}

/// Field edits; `None` leaves a field alone, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edits {
    /// New priority (entering or leaving `hold` is a hold or resume).
    pub priority: Option<Priority>,
    /// Promised date.
    pub due_date: Option<Option<NaiveDate>>,
    /// Shop-only notes.
    pub notes: Option<String>,
    /// Note shown to the customer.
    pub customer_note: Option<String>,
    /// Customer name.
    pub name: Option<String>,
    /// Customer email.
    pub email: Option<Option<EmailAddress>>,
    /// Customer phone.
    pub phone: Option<Option<PhoneNumber>>,
    /// Customer Telegram chat id.
    pub telegram_chat_id: Option<Option<String>>,
    /// Preferred channels.
    pub channels: Option<Vec<Channel>>,
    /// Customer language.
    pub language: Option<Language>,
    /// Customer time zone.
    pub timezone: Option<Option<TimeZone>>,
}

/// What a change writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The order after the change (same `version`: the write checks it is still current).
    pub order: Order,
    /// Events to append, in order.
    pub events: Vec<NewEvent>,
    /// Jobs to enqueue, each about one of `events`.
    pub jobs: Vec<NewJob>,
}

impl Plan {
    fn event(&mut self, event: NewEvent, notify_customer: bool) {
        let index = self.events.len();
        self.events.push(event);
        self.jobs.push(NewJob { kind: jobs::PUBLISH_EVENT, event: index });
        if notify_customer {
            self.jobs.push(NewJob { kind: jobs::NOTIFY_CUSTOMER, event: index });
        }
    }
}

fn base_event(kind: EventKind, actor: &Actor, order: &Order) -> NewEvent {
    NewEvent { data: json!({ "stage": order.state.stage }), ..NewEvent::new(kind, actor) }
}

/// What an action's event records: the priority after it, and for a hold that waits on the
/// customer, that fact and what it needs (read back by [`Event::customer_need`]).
///
/// [`Event::customer_need`]: super::model::Event::customer_need
fn act_data(action: &Action, priority: Priority) -> Value {
    let mut data = json!({ "priority": priority });
    if let Action::Hold { needs: Some(needs) } = action {
        data["waits_on"] = json!("customer");
        data["needs"] = json!(needs);
    }
    data
}

/// Plans the creation of `order` (built in the stage it starts in): its `created` event and
/// the jobs a new order causes — publishing, telling the staff, and telling the customer when
/// that stage notifies and is visible to them.
pub fn plan_creation(wf: &Workflow, order: Order, actor: &Actor) -> Plan {
    if order.state.status == Status::AwaitingPayment {
        // Not work yet, and nothing to tell anyone until it is paid ([`Change::Paid`]).
        let event = NewEvent {
            to_stage: Some(order.state.stage.clone()),
            data: json!({ "priority": order.state.priority, "status": order.state.status }),
            ..NewEvent::new(EventKind::Created, actor)
        };
        return Plan { order, events: vec![event], jobs: vec![NewJob { kind: jobs::PUBLISH_EVENT, event: 0 }] };
    }
    let stage = wf.stage(&order.state.stage);
    let visible = stage.is_some_and(|s| s.visible);
    let event = NewEvent {
        to_stage: Some(order.state.stage.clone()),
        visibility: if visible { Visibility::Customer } else { Visibility::Internal },
        data: json!({ "priority": order.state.priority }),
        ..NewEvent::new(EventKind::Created, actor)
    };
    let mut jobs = vec![NewJob { kind: jobs::PUBLISH_EVENT, event: 0 }, NewJob { kind: jobs::NOTIFY_STAFF, event: 0 }];
    if visible && stage.is_some_and(|s| s.notify) {
        jobs.push(NewJob { kind: jobs::NOTIFY_CUSTOMER, event: 0 });
    }
    Plan { order, events: vec![event], jobs }
}

/// Plans `change` on `order` under workflow `wf` at time `now`.
pub fn plan(wf: &Workflow, order: &Order, change: &Change, actor: &Actor, now: DateTime<Utc>) -> Result<Plan, Refusal> {
    let mut plan = Plan { order: order.clone(), events: Vec::new(), jobs: Vec::new() };
    plan.order.updated_at = now;
    match change {
        Change::Act { action, expected_stage, note, internal_note, photo_ids } => {
            let decision = decide(wf, &order.state, action, expected_stage.as_deref())?;
            if decision.to_stage != order.state.stage {
                plan.order.stage_entered_at = now;
            }
            plan.order.state = decision.state;
            let event = NewEvent {
                from_stage: Some(decision.from_stage),
                to_stage: Some(decision.to_stage),
                note: note.clone(),
                internal_note: internal_note.clone(),
                visibility: if decision.customer_visible { Visibility::Customer } else { Visibility::Internal },
                photo_ids: photo_ids.clone(),
                data: act_data(action, plan.order.state.priority),
                ..base_event(decision.kind, actor, order)
            };
            plan.event(event, decision.notify_customer);
        }
        Change::Edit(edits) => edit(wf, &mut plan, order, edits, actor)?,
        Change::Paid { internal_note } => {
            if order.state.status != Status::AwaitingPayment {
                return Err(Refusal::NotAllowed {
                    current: order.state.stage.clone(),
                    reason: format!("the order is {}, not awaiting payment", order.state.status),
                    allowed: allowed_actions(wf, &order.state),
                });
            }
            let stage = wf.stage(&order.state.stage);
            let visible = stage.is_some_and(|s| s.visible);
            plan.order.state.status =
                if stage.is_some_and(|s| s.is_final()) { Status::Completed } else { Status::Open };
            plan.order.stage_entered_at = now;
            let event = NewEvent {
                to_stage: Some(order.state.stage.clone()),
                internal_note: internal_note.clone(),
                visibility: if visible { Visibility::Customer } else { Visibility::Internal },
                data: json!({ "priority": order.state.priority }),
                ..NewEvent::new(EventKind::Paid, actor)
            };
            // From now on it is an order like any other: the staff and the customer hear of it.
            plan.event(event, visible && stage.is_some_and(|s| s.notify));
            plan.jobs.push(NewJob { kind: jobs::NOTIFY_STAFF, event: plan.events.len() - 1 });
        }
        Change::Note { body, visibility, notify } => {
            let event = NewEvent {
                note: Some(body.clone()),
                visibility: *visibility,
                ..base_event(EventKind::Noted, actor, order)
            };
            plan.event(event, *notify && *visibility == Visibility::Customer);
        }
        Change::Photos { photo_ids, caption, visibility } => {
            let event = NewEvent {
                note: caption.clone(),
                visibility: *visibility,
                photo_ids: photo_ids.clone(),
                ..base_event(EventKind::PhotosAdded, actor, order)
            };
            plan.event(event, false);
        }
    }
    // What a customer does on their page (an approval, a question) is news for the shop.
    if actor.source == Source::Portal {
        plan.jobs.extend((0..plan.events.len()).map(|event| NewJob { kind: jobs::NOTIFY_STAFF, event }));
    }
    Ok(plan)
}

fn edit(wf: &Workflow, plan: &mut Plan, order: &Order, edits: &Edits, actor: &Actor) -> Result<(), Refusal> {
    let mut changed = Map::new();
    if let Some(wanted) = edits.priority.filter(|p| *p != order.state.priority) {
        if order.state.status != Status::Open {
            return Err(Refusal::NotAllowed {
                current: order.state.stage.clone(),
                reason: format!("the priority of a {} order cannot change", order.state.status),
                allowed: allowed_actions(wf, &order.state),
            });
        }
        match priority_action(order.state.priority, wanted) {
            Some(action) => {
                let decision = decide(wf, &order.state, &action, None)?;
                plan.order.state = decision.state;
                let event = NewEvent {
                    from_stage: Some(decision.from_stage),
                    to_stage: Some(decision.to_stage),
                    visibility: Visibility::Customer,
                    data: json!({ "priority": wanted }),
                    ..base_event(decision.kind, actor, order)
                };
                plan.event(event, decision.notify_customer);
            }
            None => {
                plan.order.state.priority = wanted;
                changed.insert("priority".into(), json!({ "from": order.state.priority, "to": wanted }));
            }
        }
    }
    let before = &order.customer;
    let after: &mut Customer = &mut plan.order.customer;
    let mut track = |field: &str, from: Value, to: Value| {
        if from != to {
            changed.insert(field.into(), json!({ "from": from, "to": to }));
        }
    };
    if let Some(d) = edits.due_date {
        plan.order.due_date = d;
        track("due_date", json!(order.due_date), json!(d));
    }
    if let Some(n) = &edits.notes {
        plan.order.notes.clone_from(n);
        track("notes", json!(order.notes), json!(n));
    }
    if let Some(n) = &edits.customer_note {
        plan.order.customer_note.clone_from(n);
        track("customer_note", json!(order.customer_note), json!(n));
    }
    if let Some(n) = &edits.name {
        after.name.clone_from(n);
        track("customer.name", json!(before.name), json!(n));
    }
    if let Some(e) = &edits.email {
        after.email.clone_from(e);
        track("customer.email", json!(before.email), json!(e));
    }
    if let Some(p) = &edits.phone {
        after.phone.clone_from(p);
        track("customer.phone", json!(before.phone), json!(p));
    }
    if let Some(t) = &edits.telegram_chat_id {
        after.telegram_chat_id.clone_from(t);
        track("customer.telegram_chat_id", json!(before.telegram_chat_id), json!(t));
    }
    if let Some(c) = &edits.channels {
        after.channels.clone_from(c);
        track("customer.channels", json!(before.channels), json!(c));
    }
    if let Some(l) = &edits.language {
        after.language = l.clone();
        track("customer.language", json!(before.language), json!(l));
    }
    if let Some(z) = edits.timezone {
        after.timezone = z;
        track("customer.timezone", json!(before.timezone), json!(z));
    }
    if !changed.is_empty() {
        let event = NewEvent { data: json!({ "changed": changed }), ..base_event(EventKind::Updated, actor, order) };
        plan.event(event, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
