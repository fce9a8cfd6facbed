//! Which open orders are late: sat in their stage longer than the workflow expects (scaled
//! for rush orders; a held order's clock is paused), or past their due date.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::order::{Priority, Status};
use crate::domain::workflow::{Workflow, Workflows};

/// The moment before which entering a stage makes an order late there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCutoff {
    /// Workflow key.
    pub workflow: String,
    /// Stage key.
    pub stage: String,
    /// For standard orders: entered before this (epoch ms) means late.
    pub standard_before: i64,
    /// For rush orders (the workflow's rush factor applied).
    pub rush_before: i64,
}

/// What "late" means at one moment, computed from the workflows so the database can
/// filter by it: one cutoff per stage that has an expected duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateCutoffs {
    /// Orders due before this date are late.
    pub today: NaiveDate,
    /// Per (workflow, stage).
    pub stages: Vec<StageCutoff>,
}

fn cutoff(now_ms: i64, expected: std::time::Duration, factor: f64) -> i64 {
    let ms = i64::try_from(expected.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_sub((ms as f64 * factor) as i64)
}

fn stage_cutoffs(workflow: &Workflow, now_ms: i64) -> impl Iterator<Item = StageCutoff> + '_ {
    workflow.stages.iter().filter_map(move |s| {
        let expected = s.expected?;
        Some(StageCutoff {
            workflow: workflow.key.to_string(),
            stage: s.key.to_string(),
            standard_before: cutoff(now_ms, expected, 1.0),
            rush_before: cutoff(now_ms, expected, workflow.rush_factor),
        })
    })
}

impl LateCutoffs {
    /// Whether an order of `workflow` is late by these cutoffs (the `late` filter's rule),
    /// for deciding about a page of orders of any workflows with one set of cutoffs.
    pub fn is_late(&self, workflow: &str, order: LateInput<'_>) -> bool {
        late(self.today, self.stages.iter().filter(|c| c.workflow == workflow), order)
    }

    /// The cutoffs of every stage of every workflow at `now` (due dates compared in UTC).
    pub fn at(workflows: &Workflows, now: DateTime<Utc>) -> Self {
        let now_ms = now.timestamp_millis();
        Self { today: now.date_naive(), stages: workflows.iter().flat_map(|w| stage_cutoffs(w, now_ms)).collect() }
    }
}

/// What deciding lateness needs to know about an order.
#[derive(Debug, Clone, Copy)]
pub struct LateInput<'a> {
    /// Its stage key.
    pub stage: &'a str,
    /// Open, completed or cancelled (only open orders can be late).
    pub status: Status,
    /// Rush orders are expected sooner; held ones are not running late in their stage.
    pub priority: Priority,
    /// When it entered the stage (epoch ms).
    pub stage_entered_at: i64,
    /// The date promised.
    pub due_date: Option<NaiveDate>,
}

/// One workflow's cutoffs at one moment, for deciding about many orders.
#[derive(Debug, Clone)]
pub struct WorkflowCutoffs {
    today: NaiveDate,
    stages: Vec<StageCutoff>,
}

impl WorkflowCutoffs {
    /// The cutoffs of `workflow`'s stages at `now`.
    pub fn at(workflow: &Workflow, now: DateTime<Utc>) -> Self {
        Self { today: now.date_naive(), stages: stage_cutoffs(workflow, now.timestamp_millis()).collect() }
    }

    /// Whether the order is late: the same rule as the `late` filter.
    pub fn is_late(&self, order: LateInput<'_>) -> bool {
        late(self.today, &self.stages, order)
    }
}

/// The lateness rule, over the cutoffs of the order's workflow.
fn late<'a>(today: NaiveDate, stages: impl IntoIterator<Item = &'a StageCutoff>, order: LateInput<'_>) -> bool {
    if order.status != Status::Open {
        return false;
    }
    if order.due_date.is_some_and(|due| due < today) {
        return true;
    }
    if order.priority == Priority::Hold {
        return false;
    }
    stages.into_iter().any(|c| {
        let before = if order.priority == Priority::Rush { c.rush_before } else { c.standard_before };
        c.stage == order.stage && order.stage_entered_at < before
    })
}

/// Whether an order of `workflow` is late at `now` (see [`WorkflowCutoffs`] for many).
pub fn is_late(workflow: &Workflow, order: LateInput<'_>, now: DateTime<Utc>) -> bool {
    WorkflowCutoffs::at(workflow, now).is_late(order)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::workflow::load_presets;

    const HOUR: i64 = 3_600_000;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).single().expect("time")
    }

    fn order(stage: &str, priority: Priority, hours_in_stage: i64) -> LateInput<'_> {
        LateInput {
            stage,
            status: Status::Open,
            priority,
            stage_entered_at: now().timestamp_millis() - hours_in_stage * HOUR,
            due_date: None,
        }
    }

    #[test]
    fn an_order_is_late_after_its_stages_expected_time_sooner_when_rushed() {
        let workflows = load_presets().expect("presets");
        // `printing` is expected to take a day; rush orders half of it.
        let print = workflows.get("print").expect("print");
        assert!(!is_late(print, order("printing", Priority::Standard, 20), now()));
        assert!(is_late(print, order("printing", Priority::Standard, 25), now()));
        assert!(is_late(print, order("printing", Priority::Rush, 13), now()));
        assert!(!is_late(print, order("printing", Priority::Hold, 100), now()), "a hold pauses the clock");
        let done = LateInput { status: Status::Completed, ..order("printing", Priority::Standard, 100) };
        assert!(!is_late(print, done, now()));
    }

    #[test]
    fn an_open_order_past_its_due_date_is_late_even_on_hold() {
        let workflows = load_presets().expect("presets");
        let print = workflows.get("print").expect("print");
        let yesterday = NaiveDate::from_ymd_opt(2026, 3, 9);
        let held = LateInput { due_date: yesterday, ..order("printing", Priority::Hold, 1) };
        assert!(is_late(print, held, now()));
        let today =
            LateInput { due_date: NaiveDate::from_ymd_opt(2026, 3, 10), ..order("printing", Priority::Standard, 1) };
        assert!(!is_late(print, today, now()), "due today is not late yet");
    }

    #[test]
    fn cutoffs_cover_the_stages_with_an_expected_duration() {
        let workflows = load_presets().expect("presets");
        let cutoffs = LateCutoffs::at(&workflows, now());
        let printing =
            cutoffs.stages.iter().find(|c| c.workflow == "print" && c.stage == "printing").expect("printing");
        assert_eq!(printing.standard_before, now().timestamp_millis() - 24 * HOUR);
        assert_eq!(printing.rush_before, now().timestamp_millis() - 12 * HOUR);
        assert!(
            !cutoffs.stages.iter().any(|c| c.workflow == "print" && c.stage == "ready"),
            "final stages are never late"
        );
    }
}
