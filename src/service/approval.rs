//! The customer's side of the tracking page: approving a proof or asking for changes, asking
//! the shop a question, and counting page views. Every move goes through [`Service::change`]
//! with the customer as actor and `portal` as source, so it is audited and notifies like any
//! other move.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{Service, ServiceError, TrackSnapshot};
use crate::domain::approval::{self, Answer};
use crate::domain::change::Change;
use crate::domain::model::Actor;
use crate::domain::order::{Priority, Source, Status, Visibility};
use crate::domain::transition::Action;
use crate::store::{events, orders, tracking_stats};

/// The customer's answer to a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofAnswer {
    /// Go ahead.
    Approve,
    /// Change this first (the comment is required and already cleaned).
    Changes(String),
}

/// What became of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Recorded now: the order moved.
    Moved,
    /// This round already had this answer (a double click, a resubmitted form): nothing changed.
    Already(Answer),
    /// The page was stale: the shop moved the order on, a newer proof replaced this one, or
    /// the round was answered the other way.
    Stale,
    /// The order is not waiting for an approval there (or is on hold, or closed).
    NotAwaiting,
}

/// The actor of the reminder notes (see [`Service::send_due_reminders`]).
pub const REMINDER_ACTOR: &str = "approval-reminder";

/// How often a node looks for proofs to remind customers of.
const REMINDER_SWEEP: std::time::Duration = std::time::Duration::from_secs(300);

/// The customer as the actor of what they do on their page.
pub fn customer() -> Actor {
    Actor { name: "customer".to_owned(), source: Source::Portal }
}

impl Service {
    /// A form token for `context` on the page of the tracking token whose hash is
    /// `token_hash`: a form from another order's page, or another proof round, does not match.
    pub fn form_token(&self, token_hash: &str, context: &str) -> String {
        self.inner.sealer.sign(context, token_hash)
    }

    /// Whether `token` is the form token of `context` for `token_hash` (constant time).
    pub fn form_token_is_valid(&self, token_hash: &str, context: &str, token: &str) -> bool {
        self.inner.sealer.verify(context, token_hash, token)
    }

    /// Answers proof round `round` of approval stage `stage` of the snapshot's order.
    /// Idempotent: the same answer to the same round twice moves the order once.
    pub async fn answer_proof(
        &self,
        snapshot: &TrackSnapshot,
        stage: &str,
        round: u32,
        answer: &ProofAnswer,
    ) -> Result<Answered, ServiceError> {
        let order_id = snapshot.order.id;
        let reference = snapshot.order.reference.to_string();
        let wf = self.workflows().get(&snapshot.order.workflow).ok_or_else(|| {
            ServiceError::broken(format!(
                "order {reference} uses workflow `{}`, which is not loaded",
                snapshot.order.workflow
            ))
        })?;
        let Some((stage, rule)) = wf.stage(stage).and_then(|s| s.approval.as_ref().map(|a| (s, a))) else {
            return Ok(Answered::NotAwaiting);
        };
        // Twice at most: a concurrent answer or move makes the first try's change stale, and
        // the second look at the log then tells which it was.
        for _ in 0..2 {
            let order =
                orders::by_id(self.db(), order_id).await?.ok_or(ServiceError::OrderNotFound(reference.clone()))?;
            let log = events::for_order(self.db(), order_id, false).await?;
            let proofs = approval::proofs(&log, stage);
            if let Some(given) = proofs.answer_to(round) {
                let same = given.approved == (*answer == ProofAnswer::Approve);
                return Ok(if same { Answered::Already(given.clone()) } else { Answered::Stale });
            }
            let waiting = order.state.stage == stage.key.as_str()
                && order.state.status == Status::Open
                && order.state.priority != Priority::Hold;
            let Some(open) = proofs.open.filter(|_| waiting) else {
                return Ok(if round <= proofs.rounds { Answered::Stale } else { Answered::NotAwaiting });
            };
            if open.number != round {
                return Ok(Answered::Stale);
            }
            let (to, note) = match answer {
                ProofAnswer::Approve => (rule.approve.to_string(), None),
                ProofAnswer::Changes(comment) => (rule.changes.to_string(), Some(comment.clone())),
            };
            let change = Change::Act {
                action: Action::Move { to },
                expected_stage: Some(stage.key.to_string()),
                note,
                internal_note: Some(format!("Answered proof {round} on the tracking page")),
                photo_ids: Vec::new(),
            };
            match self.change(&reference, &change, &customer()).await {
                Ok(_) => return Ok(Answered::Moved),
                Err(ServiceError::Refused(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(Answered::Stale)
    }

    /// Records a question on the order's internal timeline and tells the staff.
    pub async fn ask(&self, snapshot: &TrackSnapshot, question: String) -> Result<(), ServiceError> {
        let change = Change::Note { body: question, visibility: Visibility::Internal, notify: false };
        self.change(snapshot.order.reference.as_str(), &change, &customer()).await.map(|_| ())
    }

    /// Counts a view of an order's page on `day` (days since the epoch, UTC).
    pub async fn record_view(&self, order_id: i64, day: i64) -> Result<(), ServiceError> {
        Ok(tracking_stats::record_view(self.db(), order_id, day).await?)
    }

    /// Reminds, once per proof, every customer whose proof has waited longer than its stage's
    /// `remind_after`: a customer-visible note that is sent through their channels like any
    /// other, so it is audited, and its presence in the log stops a second reminder.
    pub async fn send_due_reminders(&self, now: DateTime<Utc>) -> Result<usize, ServiceError> {
        let catalog = crate::i18n::Catalog::load().map_err(|e| ServiceError::internal("cannot load the strings", e))?;
        let actor = Actor { name: REMINDER_ACTOR.to_owned(), source: Source::System };
        let mut sent = 0;
        for wf in self.workflows().iter() {
            for stage in &wf.stages {
                let Some(after) = stage.approval.as_ref().and_then(|a| a.remind_after) else { continue };
                let cutoff = now - chrono::Duration::from_std(after).unwrap_or(chrono::TimeDelta::MAX);
                let waiting = tracking_stats::waiting_since(
                    self.db(),
                    wf.key.as_str(),
                    stage.key.as_str(),
                    cutoff.timestamp_millis(),
                )
                .await?;
                for (order_id, reference, language) in waiting {
                    let log = events::for_order(self.db(), order_id, false).await?;
                    let Some(open) = approval::proofs(&log, stage).open else { continue };
                    let reminded = log.iter().any(|e| e.actor == REMINDER_ACTOR && e.created_at >= open.opened_at);
                    if open.opened_at > cutoff || reminded {
                        continue;
                    }
                    let t = catalog.pick([language.as_str(), self.config().shop.language.as_str()]);
                    let body = t.t("track.reminder_note").to_owned();
                    let note = Change::Note { body, visibility: Visibility::Customer, notify: true };
                    match self.change_at(&reference, &note, &actor, now).await {
                        Ok(_) => sent += 1,
                        Err(ServiceError::Refused(_) | ServiceError::Busy) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Sends due reminders every few minutes until `stop`.
    pub async fn remind_periodically(self, stop: CancellationToken) {
        loop {
            match self.send_due_reminders(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "approval reminders sent"),
                Err(e) => tracing::warn!(error = %e.chain(), "cannot send approval reminders"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(REMINDER_SWEEP) => {}
            }
        }
    }
}
