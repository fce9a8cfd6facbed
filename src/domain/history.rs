//! An order as it stood at a past event, read back from its audit log, so that a message sent
//! late (a retry, a backlog) says what happened then rather than what is true now. Pure.

use serde_json::Value;

use super::model::Event;
use super::order::{Priority, Status};
use super::transition::{EventKind, OrderState};
use super::workflow::Workflow;

/// The stage, status and priority just after the last of `events` (an order's audit log up
/// to that event, oldest first). `now` is the order's state today, used only for what the log
/// does not say (a log written before priorities were recorded).
pub fn state_after(wf: Option<&Workflow>, events: &[Event], now: &OrderState) -> OrderState {
    let mut stage = None;
    let mut priority = None;
    let mut cancelled = false;
    let mut awaiting = false;
    for event in events {
        // An order made by a Checkout awaits its payment until its `paid` event.
        if event.kind == EventKind::Created {
            awaiting = event.data.get("status").and_then(Value::as_str) == Some(Status::AwaitingPayment.as_str());
        }
        awaiting &= event.kind != EventKind::Paid;
        // Stage events name where the order went; the others carry the stage they happened in.
        let here = event.to_stage.as_deref().or_else(|| event.data.get("stage").and_then(Value::as_str));
        if let Some(here) = here {
            stage = Some(here.to_owned());
        }
        let told = event.data.get("priority").or_else(|| event.data.pointer("/changed/priority/to"));
        if let Some(p) = told.and_then(Value::as_str).and_then(|p| Priority::parse(p).ok()) {
            priority = Some(p);
        }
        cancelled |= event.kind == EventKind::Cancelled;
    }
    let stage = stage.unwrap_or_else(|| now.stage.clone());
    let finished = wf.and_then(|wf| wf.stage(&stage)).is_some_and(|s| s.is_final());
    let status = if cancelled {
        Status::Cancelled
    } else if awaiting {
        Status::AwaitingPayment
    } else if finished {
        Status::Completed
    } else {
        Status::Open
    };
    OrderState { stage, status, priority: priority.unwrap_or(now.priority), resume_priority: None }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::order::{Source, Visibility};
    use crate::domain::workflow::load_presets;

    fn event(id: i64, kind: EventKind, to: Option<&str>, data: Value) -> Event {
        Event {
            id,
            order_id: 1,
            kind,
            from_stage: None,
            to_stage: to.map(str::to_owned),
            actor: "t".into(),
            source: Source::Api,
            note: None,
            internal_note: None,
            visibility: Visibility::Customer,
            photo_ids: Vec::new(),
            data,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_past_event_reads_the_stage_status_and_priority_it_left_behind() {
        let presets = load_presets().expect("presets");
        let wf = presets.get("jobshop");
        let log = [
            event(1, EventKind::Created, Some("order_received"), json!({ "priority": "standard" })),
            event(2, EventKind::Moved, Some("released"), json!({ "priority": "standard" })),
            event(
                3,
                EventKind::Updated,
                None,
                json!({ "changed": { "priority": { "from": "standard", "to": "rush" } } }),
            ),
            event(4, EventKind::Noted, None, json!({ "stage": "released" })),
            event(5, EventKind::Moved, Some("in_progress"), json!({ "priority": "rush" })),
            event(6, EventKind::Held, Some("in_progress"), json!({ "priority": "hold" })),
            event(7, EventKind::Cancelled, Some("in_progress"), json!({ "priority": "hold" })),
        ];
        let now = OrderState {
            stage: "in_progress".into(),
            status: Status::Cancelled,
            priority: Priority::Hold,
            resume_priority: Some(Priority::Rush),
        };
        let at = |n: usize| state_after(wf, &log[..n], &now);
        assert_eq!(
            (at(2).stage.as_str(), at(2).status, at(2).priority),
            ("released", Status::Open, Priority::Standard)
        );
        assert_eq!((at(4).stage.as_str(), at(4).priority), ("released", Priority::Rush));
        assert_eq!((at(5).stage.as_str(), at(5).status), ("in_progress", Status::Open));
        assert_eq!(at(6).priority, Priority::Hold);
        assert_eq!(at(7).status, Status::Cancelled);
    }

    #[test]
    fn a_move_into_a_final_stage_is_completed_then() {
        let presets = load_presets().expect("presets");
        let wf = presets.get("jobshop");
        let last = wf.expect("jobshop").stages.last().expect("a stage").key.as_str().to_owned();
        let log = [event(1, EventKind::Moved, Some(&last), json!({ "priority": "standard" }))];
        let now =
            OrderState { stage: last, status: Status::Completed, priority: Priority::Standard, resume_priority: None };
        assert_eq!(state_after(wf, &log, &now).status, Status::Completed);
    }
}
