use super::*;
use crate::domain::workflow::{Workflow, load_presets};

fn preset(key: &str) -> Workflow {
    load_presets().expect("presets").get(key).expect("preset exists").clone()
}

fn open_at(stage: &str) -> OrderState {
    OrderState { stage: stage.to_owned(), status: Status::Open, priority: Priority::Standard, resume_priority: None }
}

fn move_to(to: &str) -> Action {
    Action::Move { to: to.to_owned() }
}

#[test]
fn the_linear_next_stage_is_allowed_and_notifies_when_the_stage_says_so() {
    let wf = preset("stone");
    let d = decide(&wf, &open_at("fabrication"), &move_to("quality_check"), None).expect("allowed");
    assert_eq!(d.kind, EventKind::Moved);
    assert_eq!((d.from_stage.as_str(), d.to_stage.as_str()), ("fabrication", "quality_check"));
    assert!(d.notify_customer && d.customer_visible);
    assert_eq!(d.state.status, Status::Open);
}

#[test]
fn a_declared_rework_move_is_allowed_but_skipping_ahead_is_not() {
    let wf = preset("stone");
    assert!(decide(&wf, &open_at("quality_check"), &move_to("fabrication"), None).is_ok());
    let Err(Refusal::NotAllowed { current, reason, allowed }) =
        decide(&wf, &open_at("fabrication"), &move_to("shipping"), None)
    else {
        panic!("skipping must be refused");
    };
    assert_eq!(current, "fabrication");
    assert!(reason.contains("not allowed"), "{reason}");
    let kinds: Vec<_> = allowed.iter().map(|a| (a.action.as_str(), a.to.as_deref())).collect();
    assert_eq!(kinds, [("move", Some("quality_check")), ("hold", None), ("cancel", None)]);
}

#[test]
fn an_unknown_target_stage_is_named() {
    let wf = preset("print");
    let Err(Refusal::NotAllowed { reason, .. }) = decide(&wf, &open_at("queued"), &move_to("drying"), None) else {
        panic!("refused");
    };
    assert_eq!(reason, "workflow `print` has no stage `drying`");
}

#[test]
fn reaching_the_final_stage_completes_the_order_and_nothing_moves_after() {
    let wf = preset("print");
    let d = decide(&wf, &open_at("finishing"), &move_to("ready"), None).expect("allowed");
    assert_eq!(d.state.status, Status::Completed);
    for action in [move_to("printing"), Action::Hold { needs: None }, Action::Cancel] {
        assert!(decide(&wf, &d.state, &action, None).is_err());
    }
    assert!(allowed_actions(&wf, &d.state).is_empty());
}

#[test]
fn a_stale_expected_stage_is_refused_before_anything_else() {
    let wf = preset("print");
    let refusal = decide(&wf, &open_at("printing"), &move_to("finishing"), Some("queued")).expect_err("stale");
    assert_eq!(refusal, Refusal::StaleStage { current: "printing".to_owned(), expected: "queued".to_owned() });
}

#[test]
fn hold_blocks_moves_until_resume_restores_the_priority() {
    let wf = preset("print");
    let mut state = open_at("queued");
    state.priority = Priority::Rush;
    let held = decide(&wf, &state, &Action::Hold { needs: None }, None).expect("hold");
    assert_eq!(held.kind, EventKind::Held);
    assert_eq!(held.state.priority, Priority::Hold);
    assert!(!held.notify_customer, "print does not notify on hold");

    let Err(Refusal::NotAllowed { reason, allowed, .. }) = decide(&wf, &held.state, &move_to("printing"), None) else {
        panic!("held orders do not move");
    };
    assert!(reason.contains("on hold"));
    let kinds: Vec<_> = allowed.iter().map(|a| a.action).collect();
    assert_eq!(kinds, [ActionKind::Resume, ActionKind::Cancel]);
    assert!(decide(&wf, &held.state, &Action::Hold { needs: None }, None).is_err());

    let resumed = decide(&wf, &held.state, &Action::Resume { priority: None }, None).expect("resume");
    assert_eq!(resumed.state.priority, Priority::Rush);
    assert_eq!(resumed.state.resume_priority, None);
    assert!(decide(&wf, &resumed.state, &move_to("printing"), None).is_ok());
    assert!(decide(&wf, &resumed.state, &Action::Resume { priority: None }, None).is_err());
}

#[test]
fn a_hold_that_waits_on_the_customer_tells_them_even_where_holds_are_quiet() {
    let wf = preset("print");
    let needs = crate::domain::order::CustomerNeed::parse("the high-resolution logo").expect("need");
    let held = decide(&wf, &open_at("queued"), &Action::Hold { needs: Some(needs) }, None).expect("hold");
    assert_eq!((held.kind, held.state.priority), (EventKind::Held, Priority::Hold));
    assert!(held.notify_customer && held.customer_visible, "they have something to do");
}

#[test]
fn cancel_works_from_any_open_stage_even_on_hold() {
    let wf = preset("jewelry");
    let mut state = open_at("in_production");
    state.priority = Priority::Hold;
    let d = decide(&wf, &state, &Action::Cancel, None).expect("cancel");
    assert_eq!(d.state.status, Status::Cancelled);
    assert!(d.notify_customer, "cancel notifies by default");
    assert!(decide(&wf, &d.state, &Action::Cancel, None).is_err());
}

#[test]
fn moving_into_a_hidden_stage_is_internal_and_silent() {
    let wf = preset("jobshop");
    let d = decide(&wf, &open_at("order_received"), &move_to("released"), None).expect("allowed");
    assert!(!d.customer_visible && !d.notify_customer);
}

#[test]
fn priority_changes_into_and_out_of_hold_are_actions() {
    assert_eq!(priority_action(Priority::Rush, Priority::Hold), Some(Action::Hold { needs: None }));
    assert_eq!(
        priority_action(Priority::Hold, Priority::Standard),
        Some(Action::Resume { priority: Some(Priority::Standard) })
    );
    assert_eq!(priority_action(Priority::Rush, Priority::Standard), None);
    assert_eq!(priority_action(Priority::Hold, Priority::Hold), None);
}

#[test]
fn every_preset_can_be_walked_from_first_to_final_stage() {
    for wf in load_presets().expect("presets").iter() {
        let mut state = open_at(wf.first_stage().key.as_str());
        let mut steps = 0;
        while state.status == Status::Open {
            let next = wf.stage(&state.stage).and_then(|s| s.moves.first()).expect("an open stage has a next stage");
            state = decide(wf, &state, &move_to(next.to.as_str()), Some(&state.stage)).expect("linear move").state;
            steps += 1;
        }
        assert_eq!(state.status, Status::Completed);
        assert_eq!(steps, wf.stages.len() - 1, "{}", wf.key);
    }
}

#[test]
fn an_order_awaiting_payment_can_only_be_cancelled() {
    let wf = preset("print");
    let waiting = OrderState { status: Status::AwaitingPayment, ..open_at("spec_review") };
    let Err(Refusal::NotAllowed { reason, allowed, .. }) = decide(&wf, &waiting, &move_to("queued"), None) else {
        panic!("an unpaid order must not move");
    };
    assert!(reason.contains("awaiting payment"), "{reason}");
    assert_eq!(allowed.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["cancel"]);
    assert!(decide(&wf, &waiting, &Action::Hold { needs: None }, None).is_err());
    let cancelled = decide(&wf, &waiting, &Action::Cancel, None).expect("cancel allowed");
    assert_eq!(cancelled.state.status, Status::Cancelled);
}
