//! Design approval on the tracking page: which proof round an order waiting for its
//! customer's sign-off is in, which photos make up that proof, and how the customer answered
//! earlier rounds — all read from the order's audit log, so nothing extra is stored.

use chrono::{DateTime, Utc};

use super::model::Event;
use super::order::{Source, Visibility};
use super::transition::EventKind;
use super::workflow::Stage;

/// One proof shown to the customer: opened by entering the approval stage, or by the shop
/// attaching new photos while the order waits there (a newer proof replaces the older one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// 1 for the first proof of the order, counting every proof of this stage since.
    pub number: u32,
    /// When this proof was shown.
    pub opened_at: DateTime<Utc>,
    /// The photos of the proof (those attached by the event that opened the round).
    pub photo_ids: Vec<i64>,
    /// The note the shop sent with the proof, if any.
    pub note: Option<String>,
}

/// How the customer answered one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The round answered.
    pub round: u32,
    /// Approved (or else asked for changes).
    pub approved: bool,
    /// When.
    pub at: DateTime<Utc>,
    /// The customer's comment on a change request.
    pub comment: Option<String>,
}

/// What the log says about approval stage `stage`: the round open now (if the order is
/// waiting there) and every answer the customer gave from the tracking page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proofs {
    /// The proof waiting for an answer, if the order sits in the stage.
    pub open: Option<Round>,
    /// The customer's answers, oldest first.
    pub answers: Vec<Answer>,
    /// How many proofs were shown in all.
    pub rounds: u32,
}

impl Proofs {
    /// The answer given to round `number`, if any.
    pub fn answer_to(&self, number: u32) -> Option<&Answer> {
        self.answers.iter().find(|a| a.round == number)
    }
}

/// Reads the proof rounds of approval stage `stage` from `events` (oldest first; the
/// customer-visible ones suffice as long as the stage's moves are to visible stages).
pub fn proofs(events: &[Event], stage: &Stage) -> Proofs {
    let Some(approval) = &stage.approval else {
        return Proofs::default();
    };
    let key = stage.key.as_str();
    let mut number = 0;
    let mut out = Proofs::default();
    for e in events {
        let entered = e.kind == EventKind::Moved && e.to_stage.as_deref() == Some(key);
        // Photos the customer cannot see are not a proof: the page would not show them, and
        // counting them would make every answer from it look stale.
        let new_photos = e.kind == EventKind::PhotosAdded
            && e.visibility == Visibility::Customer
            && out.open.is_some()
            && !e.photo_ids.is_empty();
        if entered || new_photos {
            number += 1;
            out.rounds = number;
            out.open =
                Some(Round { number, opened_at: e.created_at, photo_ids: e.photo_ids.clone(), note: e.note.clone() });
            continue;
        }
        let left = e.kind == EventKind::Moved && e.from_stage.as_deref() == Some(key);
        if left {
            if e.source == Source::Portal && out.open.is_some() {
                let approved = e.to_stage.as_deref() == Some(approval.approve.as_str());
                out.answers.push(Answer {
                    round: number,
                    approved,
                    at: e.created_at,
                    comment: if approved { None } else { e.note.clone() },
                });
            }
            out.open = None;
        }
        if e.kind == EventKind::Cancelled && out.open.is_some() {
            out.open = None;
        }
    }
    out
}

/// The context a form token of proof round `number` of approval stage `stage` is bound to.
pub fn round_context(stage: &str, number: u32) -> String {
    format!("proof:{stage}:{number}")
}

/// Keeps a customer's free text safe to store and show: tags and control characters removed
/// (line breaks kept), blank runs trimmed. `None` when nothing is left.
pub fn plain_text(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '\r' => {}
            '\n' | '\t' => out.push(if c == '\t' { ' ' } else { '\n' }),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let text = out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::workflow::load_presets;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).single().expect("time")
    }

    fn ev(kind: EventKind, from: &str, to: &str, source: Source, hour: u32, photos: &[i64]) -> Event {
        Event {
            id: i64::from(hour),
            order_id: 1,
            kind,
            from_stage: Some(from.to_owned()).filter(|s| !s.is_empty()),
            to_stage: Some(to.to_owned()).filter(|s| !s.is_empty()),
            actor: "x".to_owned(),
            source,
            note: Some(format!("note {hour}")),
            internal_note: None,
            visibility: Visibility::Customer,
            photo_ids: photos.to_vec(),
            data: json!({}),
            created_at: at(hour),
        }
    }

    #[test]
    fn rounds_are_numbered_and_answers_are_tied_to_the_round_seen() {
        let workflows = load_presets().expect("presets");
        let stage = workflows.get("jewelry").and_then(|w| w.stage("awaiting_approval")).expect("stage").clone();
        let (m, p) = (EventKind::Moved, EventKind::PhotosAdded);
        let mut log = vec![
            ev(m, "design_consultation", "awaiting_approval", Source::Api, 1, &[10]),
            ev(p, "", "", Source::Api, 2, &[11, 12]),
        ];
        let mut internal = ev(p, "", "", Source::Api, 2, &[99]);
        internal.visibility = Visibility::Internal;
        log.push(internal);
        let now = proofs(&log, &stage);
        assert_eq!(
            now.open.as_ref().map(|r| (r.number, r.photo_ids.clone())),
            Some((2, vec![11, 12])),
            "internal photos are no proof"
        );
        assert!(now.answers.is_empty());

        log.push(ev(m, "awaiting_approval", "design_consultation", Source::Portal, 3, &[]));
        log.push(ev(m, "design_consultation", "awaiting_approval", Source::Ops, 4, &[13]));
        log.push(ev(m, "awaiting_approval", "in_production", Source::Portal, 5, &[]));
        let done = proofs(&log, &stage);
        assert_eq!(done.open, None);
        assert_eq!(done.answers.len(), 2);
        assert_eq!((done.answers[0].round, done.answers[0].approved), (2, false));
        assert_eq!(done.answers[0].comment.as_deref(), Some("note 3"));
        assert_eq!((done.answers[1].round, done.answers[1].approved, done.answers[1].at), (3, true, at(5)));
        assert!(done.answer_to(3).is_some() && done.answer_to(1).is_none());
    }

    #[test]
    fn a_move_by_the_shop_is_not_the_customers_answer() {
        let workflows = load_presets().expect("presets");
        let stage = workflows.get("jewelry").and_then(|w| w.stage("awaiting_approval")).expect("stage").clone();
        let log = [
            ev(EventKind::Moved, "design_consultation", "awaiting_approval", Source::Api, 1, &[]),
            ev(EventKind::Moved, "awaiting_approval", "in_production", Source::Ops, 2, &[]),
        ];
        let p = proofs(&log, &stage);
        assert!(p.open.is_none() && p.answers.is_empty());
    }

    #[test]
    fn customer_text_loses_its_markup() {
        assert_eq!(
            plain_text("  <b>Can</b> the band be <script>x</script>thinner?\r\n\n"),
            Some("Can the band be xthinner?".to_owned())
        );
        assert_eq!(plain_text("line one\nline two\u{7}"), Some("line one\nline two".to_owned()));
        assert_eq!(plain_text(" <br> "), None);
    }
}
