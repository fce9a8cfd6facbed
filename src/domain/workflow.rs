//! Workflows: a shop's stage pipeline for one product line, and the moves it allows.

mod parse;
mod presets;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use parse::{WorkflowError, collect, load_dir, load_presets, parse_workflow};
pub use presets::PRESETS;

/// A stage or workflow key: lowercase ASCII letters, digits and `_`, 1–40 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Key(String);

impl Key {
    /// Parses a key, naming the rule it breaks.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if raw.is_empty() || raw.len() > 40 || !valid_chars || !raw.as_bytes()[0].is_ascii_lowercase() {
            return Err(format!(
                "`{raw}` is not a valid key: use 1-40 lowercase letters, digits or `_`, starting with a letter"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Customer-facing wording of a stage in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageText {
    /// Short label, e.g. "Fabrication".
    pub label: String,
    /// One or two sentences telling the customer what happens now.
    pub text: String,
}

/// One stage of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Stable key used by the API and in stored orders.
    pub key: Key,
    /// Default (English) wording.
    pub wording: StageText,
    /// Wording in other languages, by language tag.
    pub translations: BTreeMap<String, StageText>,
    /// How long the stage usually takes; `None` for final stages.
    pub expected: Option<Duration>,
    /// Whether entering this stage notifies the customer.
    pub notify: bool,
    /// Whether operators are expected to attach a photo on entering it.
    pub photo: bool,
    /// Whether the customer sees this stage on the tracking page.
    pub visible: bool,
    /// Moves allowed out of this stage, in declaration order (linear next first).
    pub moves: Vec<Move>,
    /// Whether the order waits on the customer here: the shop's lateness clock stops.
    pub waits_on_customer: bool,
    /// Set when the customer approves or asks for changes from the tracking page here.
    pub approval: Option<Approval>,
}

/// A stage the customer signs off from the tracking page: a proof, a design, a drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Where an approval moves the order (one of the stage's allowed moves).
    pub approve: Key,
    /// Where a change request moves it (one of the stage's allowed moves).
    pub changes: Key,
    /// Remind the customer once when nothing happened for this long.
    pub remind_after: Option<Duration>,
}

impl Stage {
    /// A final stage allows no further moves.
    pub fn is_final(&self) -> bool {
        self.moves.is_empty()
    }

    /// The wording for a language, falling back to the default one.
    pub fn text_for(&self, language: &str) -> &StageText {
        self.translations.get(language).unwrap_or(&self.wording)
    }
}

/// A declared move from one stage to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The stage the move leads to.
    pub to: Key,
    /// What operators see on the button, e.g. "Send back for rework".
    pub label: String,
}

/// Which order-level actions tell the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionNotify {
    /// Notify when the order is put on hold.
    pub hold: bool,
    /// Notify when a held order resumes.
    pub resume: bool,
    /// Notify when the order is cancelled.
    pub cancel: bool,
}

/// A validated workflow: stages in order, every move pointing at a known stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Stable key, e.g. `stone`.
    pub key: Key,
    /// Display name, e.g. "Custom stone".
    pub name: String,
    /// The stages in pipeline order; the first is where new orders start.
    pub stages: Vec<Stage>,
    /// Which hold/resume/cancel actions notify the customer.
    pub notify: ActionNotify,
    /// Rush orders take this fraction of the expected durations (1.0: no faster).
    pub rush_factor: f64,
}

impl Workflow {
    /// The stage new orders start in.
    pub fn first_stage(&self) -> &Stage {
        &self.stages[0]
    }

    /// Looks a stage up by key.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key.as_str() == key)
    }

    /// Position of a stage in the pipeline.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.key.as_str() == key)
    }

    /// Sum of expected durations of the stages after `key` plus the whole of `key` itself.
    pub fn remaining_from(&self, key: &str) -> Option<Duration> {
        let pos = self.position(key)?;
        Some(self.stages[pos..].iter().filter_map(|s| s.expected).sum())
    }
}

/// All workflows a kiln instance knows, by key.
#[derive(Debug, Clone, Default)]
pub struct Workflows {
    by_key: BTreeMap<String, Workflow>,
}

impl Workflows {
    /// Builds the registry; keys must be unique (the loader checks that).
    pub fn new(workflows: impl IntoIterator<Item = Workflow>) -> Self {
        Self { by_key: workflows.into_iter().map(|w| (w.key.as_str().to_owned(), w)).collect() }
    }

    /// Looks a workflow up by key.
    pub fn get(&self, key: &str) -> Option<&Workflow> {
        self.by_key.get(key)
    }

    /// All workflows, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = &Workflow> {
        self.by_key.values()
    }

    /// The known keys, for error messages.
    pub fn keys(&self) -> Vec<&str> {
        self.by_key.keys().map(String::as_str).collect()
    }

    /// Number of workflows.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_shape() {
        assert!(Key::parse("quality_check").is_ok());
        assert!(Key::parse("qc2").is_ok());
        assert!(Key::parse("").is_err());
        assert!(Key::parse("2qc").is_err());
        assert!(Key::parse("Quality").is_err());
        assert!(Key::parse("quality-check").is_err());
        assert!(Key::parse(&"a".repeat(41)).is_err());
    }

    #[test]
    fn every_preset_is_valid_and_ends_in_a_final_stage() {
        let workflows = load_presets().expect("presets are valid");
        assert_eq!(workflows.keys(), ["jewelry", "jobshop", "print", "stone"]);
        for wf in workflows.iter() {
            let last = wf.stages.last().expect("stages");
            assert!(last.is_final(), "{} ends in a final stage", wf.key);
        }
    }

    #[test]
    fn the_presets_with_a_proof_wait_for_the_customer_to_approve_it() {
        let workflows = load_presets().expect("presets");
        for (wf, stage, approve, changes) in [
            ("jewelry", "awaiting_approval", "in_production", "design_consultation"),
            ("print", "proof_approval", "queued", "spec_review"),
            ("stone", "drawing_approval", "fabrication", "block_selection"),
        ] {
            let s = workflows.get(wf).and_then(|w| w.stage(stage)).expect("approval stage");
            let a = s.approval.as_ref().expect("approval");
            assert_eq!((a.approve.as_str(), a.changes.as_str()), (approve, changes), "{wf}");
            assert!(s.waits_on_customer && s.notify && s.visible && a.remind_after.is_some(), "{wf}");
        }
        assert!(workflows.get("jobshop").expect("jobshop").stages.iter().all(|s| s.approval.is_none()));
    }

    #[test]
    fn remaining_time_counts_the_current_and_later_stages() {
        let workflows = load_presets().expect("presets");
        let print = workflows.get("print").expect("print preset");
        let all = print.remaining_from("spec_review").expect("known stage");
        let later = print.remaining_from("printing").expect("known stage");
        assert!(all > later);
        assert_eq!(print.remaining_from("ready"), Some(Duration::ZERO));
        assert_eq!(print.remaining_from("nope"), None);
    }
}
