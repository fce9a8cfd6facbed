//! When an order will be ready: the remaining stages' expected durations, paused while the
//! order is on hold, shortened for rush orders, and honest when the order runs late.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::order::{Priority, Status};
use super::workflow::Workflow;

/// A period the order spent on hold; `until` is `None` while it still is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// When the hold started.
    pub from: DateTime<Utc>,
    /// When it was released.
    pub until: Option<DateTime<Utc>>,
    /// Whether it waited on the customer (the shop said what it needed from them): that time
    /// is theirs, so it also moves the promised date on.
    pub on_customer: bool,
}

/// What the ETA needs to know about an order.
#[derive(Debug, Clone, Copy)]
pub struct EtaInput<'a> {
    /// The order's workflow.
    pub workflow: &'a Workflow,
    /// Current stage key.
    pub stage: &'a str,
    /// Open, completed or cancelled.
    pub status: Status,
    /// Current priority (`Hold` pauses the ETA).
    pub priority: Priority,
    /// Priority to resume at, for a held order.
    pub resume_priority: Option<Priority>,
    /// When the order entered its stage.
    pub stage_entered_at: DateTime<Utc>,
    /// Holds since then, and every earlier hold that waited on the customer (the rest do not
    /// matter).
    pub holds: &'a [Hold],
    /// The date promised to the customer, if any.
    pub due_date: Option<NaiveDate>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// How late an order is, and whose step it is: the customer's waits never count here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness {
    /// The shop's current stage has taken this much longer than expected.
    pub behind: Option<Duration>,
    /// The estimate falls after the promised date.
    pub past_due: Option<NaiveDate>,
    /// Behind its plan but still expected by the promised date.
    pub within_due: Option<NaiveDate>,
}

/// The estimate shown to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eta {
    /// The order reached its final stage.
    Done,
    /// The order was cancelled.
    Cancelled,
    /// On hold: this much work remains once it is released.
    Paused {
        /// Expected work left.
        remaining: Duration,
    },
    /// The order waits on the customer (an approval, a measurement): no date can be honest
    /// until they answer, so none is given, and the shop's lateness clock is stopped.
    AwaitingCustomer {
        /// When the wait began.
        since: DateTime<Utc>,
        /// Expected work once the customer answers.
        after: Duration,
        /// Whether the wait is for an approval on the tracking page.
        approval: bool,
    },
    /// The plan is used up (the last working stage overran): the shop confirms a date by `by`.
    Confirming {
        /// The day by which the shop gives a new date (start of that day, UTC).
        by: DateTime<Utc>,
        /// Lateness against the plan and the promised date.
        late: Lateness,
    },
    /// Expected ready at `at` (or, when running late, between `at` and `latest`); never in
    /// the past, and stable across reloads: a late estimate moves once a day, not with `now`.
    Expected {
        /// The estimate (the earliest, for a range).
        at: DateTime<Utc>,
        /// The end of the range, when the order runs behind its plan.
        latest: Option<DateTime<Utc>>,
        /// Set when the order is running late.
        late: Option<Lateness>,
    },
}

fn scaled(d: Duration, factor: f64) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() * factor)
}

/// Time on hold inside `[since, now]`.
fn held_time<'a>(holds: impl IntoIterator<Item = &'a Hold>, since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    holds
        .into_iter()
        .map(|h| {
            let from = h.from.max(since);
            let until = h.until.unwrap_or(now).min(now);
            (until - from).to_std().unwrap_or_default()
        })
        .sum()
}

fn delta(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Midnight UTC starting the day after `now`: a late estimate is anchored there, so it reads
/// the same on every reload of one day instead of sliding with the clock.
fn tomorrow(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).map_or(now, |d| d.and_utc())
}

/// Computes the ETA. The estimate follows the workflow's linear order (rework loops are
/// not predicted), and a rush order's durations are scaled by the workflow's rush factor.
pub fn estimate(input: &EtaInput<'_>) -> Eta {
    match input.status {
        Status::Completed => return Eta::Done,
        Status::Cancelled => return Eta::Cancelled,
        Status::Open => {}
        // Not started until paid: nothing is promised yet.
        Status::AwaitingPayment => return Eta::Paused { remaining: Duration::ZERO },
    }
    let wf = input.workflow;
    let Some(position) = wf.position(input.stage) else {
        return Eta::Paused { remaining: Duration::ZERO };
    };
    let effective = match input.priority {
        Priority::Hold => input.resume_priority.unwrap_or(Priority::Standard),
        p => p,
    };
    let factor = if effective == Priority::Rush { wf.rush_factor } else { 1.0 };
    let stage = &wf.stages[position];
    let current = scaled(stage.expected.unwrap_or_default(), factor);
    let later: Duration = wf.stages[position + 1..].iter().filter_map(|s| s.expected).map(|d| scaled(d, factor)).sum();

    if stage.waits_on_customer && input.priority != Priority::Hold {
        // After an approval the order goes on from the approve stage, which need not be next.
        let after = stage
            .approval
            .as_ref()
            .and_then(|a| wf.position(a.approve.as_str()))
            .map_or(later, |p| wf.stages[p..].iter().filter_map(|s| s.expected).map(|d| scaled(d, factor)).sum());
        return Eta::AwaitingCustomer { since: input.stage_entered_at, after, approval: stage.approval.is_some() };
    }

    let in_stage = (input.now - input.stage_entered_at).to_std().unwrap_or_default();
    let worked = in_stage.saturating_sub(held_time(input.holds, input.stage_entered_at, input.now));
    let remaining_current = current.saturating_sub(worked);
    let behind = worked.saturating_sub(current);

    if input.priority == Priority::Hold {
        let remaining = remaining_current + later;
        return match input.holds.iter().rev().find(|h| h.until.is_none()) {
            Some(wait) if wait.on_customer => {
                Eta::AwaitingCustomer { since: wait.from, after: remaining, approval: false }
            }
            _ => Eta::Paused { remaining },
        };
    }
    // The customer's holds push the promise back by as long as they lasted: that time is not
    // the shop's to make up.
    let theirs = delta(held_time(input.holds.iter().filter(|h| h.on_customer), DateTime::<Utc>::MIN_UTC, input.now));
    let due_end = |d: NaiveDate| (d + chrono::Days::new(1)).and_hms_opt(0, 0, 0).map(|t| t.and_utc() + theirs);
    let lateness = |last: DateTime<Utc>| {
        let past_due = input.due_date.filter(|due| due_end(*due).is_some_and(|end| last >= end));
        let within_due = input.due_date.filter(|_| past_due.is_none() && !behind.is_zero());
        let late = Lateness { behind: (!behind.is_zero()).then_some(behind), past_due, within_due };
        (late.behind.is_some() || late.past_due.is_some()).then_some(late)
    };
    if behind.is_zero() {
        let at = input.now + delta(remaining_current + later);
        return Eta::Expected { at, latest: None, late: lateness(at) };
    }
    let from = tomorrow(input.now);
    if later.is_zero() {
        let late = lateness(from).unwrap_or(Lateness { behind: Some(behind), past_due: None, within_due: None });
        return Eta::Confirming { by: from, late };
    }
    // Running behind: the rest of the plan from tomorrow, up to one more run of this stage.
    let at = from + delta(later);
    let latest = at + delta(current);
    Eta::Expected { at, latest: Some(latest), late: lateness(latest) }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::workflow::load_presets;

    const DAY: u64 = 86_400;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).single().expect("valid time")
    }

    fn print() -> Workflow {
        // spec_review 1d, queued 1d, printing 1d, finishing 12h, ready (final); rush 0.5
        load_presets().expect("presets").get("print").expect("print").clone()
    }

    fn input<'a>(wf: &'a Workflow, stage: &'a str, now: DateTime<Utc>, holds: &'a [Hold]) -> EtaInput<'a> {
        EtaInput {
            workflow: wf,
            stage,
            status: Status::Open,
            priority: Priority::Standard,
            resume_priority: None,
            stage_entered_at: t(1, 0),
            holds,
            due_date: None,
            now,
        }
    }

    #[test]
    fn the_estimate_is_the_rest_of_this_stage_plus_the_stages_after_it() {
        let wf = print();
        // Entered `queued` at day 1 00:00; 6 h in, 18 h of it and 1.5 days after it remain.
        let eta = estimate(&input(&wf, "queued", t(1, 6), &[]));
        assert_eq!(eta, Eta::Expected { at: t(3, 0) + chrono::Duration::hours(12), latest: None, late: None });
    }

    #[test]
    fn rush_orders_scale_every_remaining_duration() {
        let wf = print();
        let mut rush = input(&wf, "spec_review", t(1, 0), &[]);
        rush.priority = Priority::Rush;
        let Eta::Expected { at, late: None, .. } = estimate(&rush) else { panic!("expected") };
        let standard = 4 * DAY + DAY / 2;
        assert_eq!((at - t(1, 0)).num_seconds() as u64, (standard as f64 * wf.rush_factor) as u64);
        assert!(wf.rush_factor < 1.0);
    }

    #[test]
    fn a_hold_pauses_the_clock_and_resuming_continues_where_it_stopped() {
        let wf = print();
        // Held 4 h after entering the stage, still held 2 days later: 20 h + 1.5 d remain.
        let holds = [Hold { from: t(1, 4), until: None, on_customer: false }];
        let mut held = input(&wf, "queued", t(3, 4), &holds);
        held.priority = Priority::Hold;
        held.resume_priority = Some(Priority::Standard);
        let expected_left = Duration::from_secs(20 * 3600 + DAY + DAY / 2);
        assert_eq!(estimate(&held), Eta::Paused { remaining: expected_left });

        // Released at day 3 04:00 and asked an hour later: one hour of work has been done.
        let holds = [Hold { from: t(1, 4), until: Some(t(3, 4)), on_customer: false }];
        let resumed = estimate(&input(&wf, "queued", t(3, 5), &holds));
        let Eta::Expected { at, late: None, .. } = resumed else {
            panic!("on track: the hold does not count as lateness")
        };
        assert_eq!(at, t(3, 5) + chrono::Duration::from_std(expected_left - Duration::from_secs(3600)).expect("delta"));
    }

    #[test]
    fn a_late_order_gives_a_range_that_does_not_slide_with_the_clock() {
        let wf = print();
        // `printing` takes 1 day; it is now 3 days in, and finishing (12 h) remains.
        let eta = estimate(&input(&wf, "printing", t(4, 3), &[]));
        let Eta::Expected { at, latest: Some(latest), late: Some(late) } = eta else { panic!("late: {eta:?}") };
        assert_eq!(late.behind, Some(Duration::from_secs(2 * DAY + 3 * 3600)));
        assert_eq!(at, t(5, 12), "from tomorrow, the stages after this one");
        assert_eq!(latest, t(6, 12), "plus one more run of this stage");
        let Eta::Expected { at: again, latest: again_latest, .. } = estimate(&input(&wf, "printing", t(4, 22), &[]))
        else {
            panic!("still late")
        };
        assert_eq!((again, again_latest), (at, Some(latest)), "a reload later that day reads the same");
    }

    #[test]
    fn an_overrun_last_stage_promises_a_confirmation_instead_of_now() {
        let wf = print();
        let eta = estimate(&input(&wf, "finishing", t(3, 5), &[]));
        let Eta::Confirming { by, late } = eta else { panic!("confirming: {eta:?}") };
        assert_eq!(by, t(4, 0));
        assert!(late.behind.is_some());
    }

    #[test]
    fn lateness_is_judged_against_the_promised_date() {
        let wf = print();
        let mut i = input(&wf, "printing", t(4, 0), &[]);
        i.due_date = NaiveDate::from_ymd_opt(2026, 3, 20);
        let Eta::Expected { late: Some(late), .. } = estimate(&i) else { panic!("behind plan") };
        assert_eq!((late.past_due, late.within_due), (None, NaiveDate::from_ymd_opt(2026, 3, 20)), "still on time");
        i.due_date = NaiveDate::from_ymd_opt(2026, 3, 5);
        let Eta::Expected { late: Some(late), .. } = estimate(&i) else { panic!("behind plan") };
        assert_eq!((late.past_due, late.within_due), (NaiveDate::from_ymd_opt(2026, 3, 5), None), "range ends after");
    }

    #[test]
    fn waiting_on_the_customer_stops_the_clock_and_names_what_follows() {
        let wf = print();
        // Three days in a one-day proof stage: the wait is the customer's, never the shop's lateness.
        let eta = estimate(&input(&wf, "proof_approval", t(4, 0), &[]));
        let after = Duration::from_secs(DAY + DAY + DAY / 2);
        assert_eq!(eta, Eta::AwaitingCustomer { since: t(1, 0), after, approval: true });
    }

    #[test]
    fn a_hold_on_the_customer_waits_on_them_and_does_not_count_against_the_promise() {
        let wf = print();
        // Held 4 h into `printing` (1 day) for the customer's ring size, still held 5 days later.
        let holds = [Hold { from: t(1, 4), until: None, on_customer: true }];
        let mut held = input(&wf, "printing", t(6, 4), &holds);
        held.priority = Priority::Hold;
        held.resume_priority = Some(Priority::Standard);
        held.due_date = NaiveDate::from_ymd_opt(2026, 3, 3);
        let left = Duration::from_secs(20 * 3600 + DAY / 2);
        assert_eq!(estimate(&held), Eta::AwaitingCustomer { since: t(1, 4), after: left, approval: false });

        // Released on day 6: the plan is on time, and so is the promise of day 3, moved on by
        // the five days the customer took.
        let holds = [Hold { from: t(1, 4), until: Some(t(6, 4)), on_customer: true }];
        let mut resumed = input(&wf, "printing", t(6, 5), &holds);
        resumed.due_date = NaiveDate::from_ymd_opt(2026, 3, 3);
        let Eta::Expected { late: None, .. } = estimate(&resumed) else { panic!("not late: {:?}", estimate(&resumed)) };

        // The same five days on the shop's side are the shop's: the promise is missed.
        let ours = [Hold { on_customer: false, ..holds[0] }];
        let mut shop = input(&wf, "printing", t(6, 5), &ours);
        shop.due_date = NaiveDate::from_ymd_opt(2026, 3, 3);
        let Eta::Expected { late: Some(late), .. } = estimate(&shop) else { panic!("late: {:?}", estimate(&shop)) };
        assert_eq!(late.past_due, NaiveDate::from_ymd_opt(2026, 3, 3));
    }

    #[test]
    fn finished_and_cancelled_orders_have_no_estimate() {
        let wf = print();
        let mut i = input(&wf, "ready", t(2, 0), &[]);
        i.status = Status::Completed;
        assert_eq!(estimate(&i), Eta::Done);
        i.status = Status::Cancelled;
        assert_eq!(estimate(&i), Eta::Cancelled);
    }
}
