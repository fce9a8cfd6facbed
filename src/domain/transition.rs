//! Deciding whether an action may happen to an order, and what it changes. Pure: no I/O.

use serde::Serialize;

use super::order::{CustomerNeed, Priority, Status, string_enum};
use super::workflow::Workflow;

string_enum! {
    /// What happened to an order, as recorded in its audit log.
    EventKind {
        Created = "created",
        Moved = "moved",
        Held = "held",
        Resumed = "resumed",
        Cancelled = "cancelled",
        Noted = "noted",
        Updated = "updated",
        LinkReissued = "link_reissued",
        LinkRevoked = "link_revoked",
        PhotosAdded = "photos_added",
        Paid = "paid",
    }
}

string_enum! {
    /// The kinds of action an operator can take on an order.
    ActionKind { Move = "move", Hold = "hold", Resume = "resume", Cancel = "cancel" }
}

/// An action requested on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Move to another stage.
    Move {
        /// The target stage key.
        to: String,
    },
    /// Pause the order until it is resumed.
    Hold {
        /// What the hold waits for from the customer; `None` when the wait is the shop's.
        /// While it waits on them, the shop's lateness clock is stopped.
        needs: Option<CustomerNeed>,
    },
    /// Release a held order, optionally at a new priority.
    Resume {
        /// Priority after resuming; defaults to the one it had before the hold.
        priority: Option<Priority>,
    },
    /// Stop the order for good.
    Cancel,
}

impl Action {
    /// The kind of this action.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Move { .. } => ActionKind::Move,
            Action::Hold { .. } => ActionKind::Hold,
            Action::Resume { .. } => ActionKind::Resume,
            Action::Cancel => ActionKind::Cancel,
        }
    }
}

/// The parts of an order that decide which actions are possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    /// Current stage key.
    pub stage: String,
    /// Open, completed or cancelled.
    pub status: Status,
    /// Current priority; `Hold` means paused.
    pub priority: Priority,
    /// Priority to restore when a hold ends.
    pub resume_priority: Option<Priority>,
}

/// One action that is possible right now, as offered to operators and in refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AllowedAction {
    /// `move`, `hold`, `resume` or `cancel`.
    #[schema(value_type = String, example = "move")]
    pub action: ActionKind,
    /// Target stage, for moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Button label.
    pub label: String,
}

/// What an allowed action changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The event to record.
    pub kind: EventKind,
    /// Stage before.
    pub from_stage: String,
    /// Stage after (the same for hold/resume/cancel).
    pub to_stage: String,
    /// The order's new state.
    pub state: OrderState,
    /// Whether the customer is told.
    pub notify_customer: bool,
    /// Whether the customer sees the event on the tracking page.
    pub customer_visible: bool,
}

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller expected the order in another stage (it moved meanwhile).
    StaleStage {
        /// Where the order is.
        current: String,
        /// Where the caller thought it was.
        expected: String,
    },
    /// The workflow does not allow this action from the current state.
    NotAllowed {
        /// Where the order is.
        current: String,
        /// A short reason.
        reason: String,
        /// What is possible instead.
        allowed: Vec<AllowedAction>,
    },
}

/// Every action possible for an order in its current state.
pub fn allowed_actions(wf: &Workflow, state: &OrderState) -> Vec<AllowedAction> {
    let Some(stage) = wf.stage(&state.stage) else {
        return Vec::new();
    };
    let cancel = AllowedAction { action: ActionKind::Cancel, to: None, label: "Cancel order".to_owned() };
    if state.status == Status::AwaitingPayment {
        return vec![cancel];
    }
    if state.status != Status::Open || stage.is_final() {
        return Vec::new();
    }
    if state.priority == Priority::Hold {
        let resume = AllowedAction { action: ActionKind::Resume, to: None, label: "Resume".to_owned() };
        return vec![resume, cancel];
    }
    let mut allowed: Vec<AllowedAction> = stage
        .moves
        .iter()
        .map(|m| AllowedAction { action: ActionKind::Move, to: Some(m.to.to_string()), label: m.label.clone() })
        .collect();
    allowed.push(AllowedAction { action: ActionKind::Hold, to: None, label: "Put on hold".to_owned() });
    allowed.push(cancel);
    allowed
}

/// Decides an action against the workflow. `expected_stage`, when given, must match.
pub fn decide(
    wf: &Workflow,
    state: &OrderState,
    action: &Action,
    expected_stage: Option<&str>,
) -> Result<Decision, Refusal> {
    if let Some(expected) = expected_stage
        && expected != state.stage
    {
        return Err(Refusal::StaleStage { current: state.stage.clone(), expected: expected.to_owned() });
    }
    let refuse = |reason: String| Refusal::NotAllowed {
        current: state.stage.clone(),
        reason,
        allowed: allowed_actions(wf, state),
    };
    let Some(stage) = wf.stage(&state.stage) else {
        return Err(refuse(format!(
            "the order is in stage `{}`, which workflow `{}` no longer has",
            state.stage, wf.key
        )));
    };
    match state.status {
        Status::Open if stage.is_final() => return Err(refuse("the order is already in its final stage".to_owned())),
        Status::Open => {}
        // Not paid yet: it can be called off, but it is no work to move.
        Status::AwaitingPayment if *action == Action::Cancel => {}
        Status::AwaitingPayment => return Err(refuse("the order is awaiting payment".to_owned())),
        closed => return Err(refuse(format!("the order is {closed}"))),
    }
    let held = state.priority == Priority::Hold;
    let mut next = state.clone();
    let (kind, to_stage, notify) = match action {
        Action::Move { to } => {
            if held {
                return Err(refuse("the order is on hold; resume it first".to_owned()));
            }
            let Some(target) = stage.moves.iter().find(|m| m.to.as_str() == to).and_then(|m| wf.stage(m.to.as_str()))
            else {
                let reason = if wf.stage(to).is_some() {
                    format!("moving from `{}` to `{to}` is not allowed by workflow `{}`", state.stage, wf.key)
                } else {
                    format!("workflow `{}` has no stage `{to}`", wf.key)
                };
                return Err(refuse(reason));
            };
            next.stage = target.key.to_string();
            if target.is_final() {
                next.status = Status::Completed;
            }
            (EventKind::Moved, target.key.to_string(), target.notify)
        }
        Action::Hold { needs } => {
            if held {
                return Err(refuse("the order is already on hold".to_owned()));
            }
            next.resume_priority = Some(state.priority);
            next.priority = Priority::Hold;
            // A hold that waits on the customer is news they must act on, whatever the
            // workflow says about holds in general.
            (EventKind::Held, state.stage.clone(), wf.notify.hold || needs.is_some())
        }
        Action::Resume { priority } => {
            if !held {
                return Err(refuse("the order is not on hold".to_owned()));
            }
            let resumed = match priority {
                Some(Priority::Hold) => return Err(refuse("resuming needs a priority other than `hold`".to_owned())),
                Some(p) => *p,
                None => state.resume_priority.unwrap_or(Priority::Standard),
            };
            next.priority = resumed;
            next.resume_priority = None;
            (EventKind::Resumed, state.stage.clone(), wf.notify.resume)
        }
        Action::Cancel => {
            next.status = Status::Cancelled;
            (EventKind::Cancelled, state.stage.clone(), wf.notify.cancel)
        }
    };
    let customer_visible = match kind {
        EventKind::Moved => wf.stage(&to_stage).is_some_and(|s| s.visible),
        _ => true,
    };
    Ok(Decision {
        kind,
        from_stage: state.stage.clone(),
        to_stage,
        state: next,
        notify_customer: notify && customer_visible,
        customer_visible,
    })
}

/// The action a priority change implies: entering or leaving `hold` is a hold or resume.
pub fn priority_action(current: Priority, wanted: Priority) -> Option<Action> {
    match (current, wanted) {
        (Priority::Hold, Priority::Hold) => None,
        (_, Priority::Hold) => Some(Action::Hold { needs: None }),
        (Priority::Hold, p) => Some(Action::Resume { priority: Some(p) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
