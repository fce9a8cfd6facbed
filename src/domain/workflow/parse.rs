//! Reading workflow TOML files into validated [`Workflow`]s, reporting file, line and problem.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{ActionNotify, Approval, Key, Move, Stage, StageText, Workflow, Workflows};
use crate::domain::order::Language;

/// A problem in a workflow file, located by file, line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowError {
    /// The file the problem is in.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for WorkflowError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWorkflow {
    key: Option<Spanned<String>>,
    name: String,
    #[serde(default)]
    notify: FileNotify,
    #[serde(default)]
    eta: FileEta,
    #[serde(default)]
    stages: Vec<Spanned<FileStage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEta {
    rush_factor: Spanned<f64>,
}

impl Default for FileEta {
    fn default() -> Self {
        Self { rush_factor: Spanned::new(0..0, 1.0) }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotify {
    #[serde(default)]
    hold: bool,
    #[serde(default)]
    resume: bool,
    #[serde(default = "yes")]
    cancel: bool,
}

impl Default for FileNotify {
    fn default() -> Self {
        Self { hold: false, resume: false, cancel: true }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStage {
    key: Spanned<String>,
    label: Spanned<String>,
    #[serde(default)]
    text: String,
    duration: Option<Spanned<String>>,
    #[serde(default)]
    notify: bool,
    #[serde(default)]
    photo: bool,
    #[serde(default = "yes")]
    visible: bool,
    #[serde(rename = "final", default)]
    is_final: bool,
    #[serde(default)]
    moves: Vec<Spanned<FileMove>>,
    waits_on: Option<Spanned<String>>,
    approval: Option<Spanned<FileApproval>>,
    #[serde(default)]
    translations: BTreeMap<String, Spanned<FileText>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApproval {
    approve: Spanned<String>,
    changes: Spanned<String>,
    remind_after: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileMove {
    To(String),
    Full { to: String, label: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    label: String,
    #[serde(default)]
    text: String,
}

/// Collects located errors for one file.
struct Report<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<WorkflowError>,
}

impl Report<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.errors.push(WorkflowError { file: self.file.to_owned(), line, column, message: message.into() });
    }
}

/// Parses and validates one workflow file. `file` names it in errors; its stem is the
/// default workflow key.
pub fn parse_workflow(file: &str, source: &str) -> Result<Workflow, Vec<WorkflowError>> {
    let mut report = Report { file, source, errors: Vec::new() };
    let parsed: FileWorkflow = match toml::from_str(source) {
        Ok(parsed) => parsed,
        Err(err) => {
            let offset = err.span().map_or(0, |s| s.start);
            report.at(offset, err.message().trim().to_owned());
            return Err(report.errors);
        }
    };
    let workflow = build(&mut report, parsed);
    match workflow {
        Some(wf) if report.errors.is_empty() => Ok(wf),
        _ => Err(report.errors),
    }
}

fn build(report: &mut Report<'_>, parsed: FileWorkflow) -> Option<Workflow> {
    let key = match &parsed.key {
        Some(k) => Key::parse(k.get_ref()).map_err(|e| report.at(k.span().start, e)).ok(),
        None => {
            let stem = Path::new(report.file).file_stem().and_then(|s| s.to_str()).unwrap_or("");
            Key::parse(stem).map_err(|e| report.at(0, format!("no `key` given and the file name is not one: {e}"))).ok()
        }
    };
    if parsed.name.trim().is_empty() {
        report.at(0, "`name` must not be empty");
    }
    let rush = *parsed.eta.rush_factor.get_ref();
    if !(rush > 0.0 && rush <= 1.0) {
        report.at(
            parsed.eta.rush_factor.span().start,
            format!("`rush_factor` must be above 0 and at most 1, not {rush}"),
        );
    }
    if parsed.stages.is_empty() {
        report.at(0, "a workflow needs at least one `[[stages]]` entry");
        return None;
    }

    let mut first_seen: HashMap<String, usize> = HashMap::new();
    let mut stages = Vec::with_capacity(parsed.stages.len());
    for spanned in &parsed.stages {
        let stage = spanned.get_ref();
        let key_at = stage.key.span().start;
        let key = Key::parse(stage.key.get_ref()).map_err(|e| report.at(key_at, e)).ok();
        if let Some(first) = first_seen.get(stage.key.get_ref()) {
            let line = report.source[..*first].matches('\n').count() + 1;
            report.at(key_at, format!("duplicate stage key `{}` (first declared on line {line})", stage.key.get_ref()));
        } else {
            first_seen.insert(stage.key.get_ref().clone(), key_at);
        }
        if stage.label.get_ref().trim().is_empty() {
            report.at(stage.label.span().start, "`label` must not be empty");
        }
        let expected = stage.duration.as_ref().and_then(|d| {
            humantime::parse_duration(d.get_ref())
                .map_err(|e| {
                    report.at(
                        d.span().start,
                        format!("invalid duration `{}`: {e} (try \"3d\", \"12h\" or \"2w\")", d.get_ref()),
                    )
                })
                .ok()
        });
        if stage.notify && !stage.visible {
            report.at(
                key_at,
                format!("stage `{}` notifies the customer but is not customer-visible", stage.key.get_ref()),
            );
        }
        let mut translations = BTreeMap::new();
        for (lang, text) in &stage.translations {
            if Language::parse(lang).is_err() {
                report.at(text.span().start, format!("`{lang}` is not a language tag such as `it` or `pt-BR`"));
            }
            let t = text.get_ref();
            translations.insert(lang.clone(), StageText { label: t.label.clone(), text: t.text.clone() });
        }
        stages.push(key.map(|key| Stage {
            key,
            wording: StageText { label: stage.label.get_ref().clone(), text: stage.text.clone() },
            translations,
            expected,
            notify: stage.notify,
            photo: stage.photo,
            visible: stage.visible,
            moves: Vec::new(),
            waits_on_customer: waits_on_customer(report, stage),
            approval: None,
        }));
    }
    let mut stages: Vec<Stage> = stages.into_iter().collect::<Option<_>>()?;

    resolve_moves(report, &parsed.stages, &mut stages);
    resolve_approvals(report, &parsed.stages, &mut stages);
    check_graph(report, &parsed.stages, &stages);
    for (stage, spanned) in stages.iter().zip(&parsed.stages) {
        if !stage.is_final() && spanned.get_ref().duration.is_none() {
            report.at(
                spanned.get_ref().key.span().start,
                format!(
                    "stage `{}` needs an expected `duration` (e.g. \"3d\") because orders move on from it",
                    stage.key
                ),
            );
        }
    }

    Some(Workflow {
        key: key?,
        name: parsed.name,
        stages,
        notify: ActionNotify { hold: parsed.notify.hold, resume: parsed.notify.resume, cancel: parsed.notify.cancel },
        rush_factor: rush,
    })
}

fn resolve_moves(report: &mut Report<'_>, parsed: &[Spanned<FileStage>], stages: &mut [Stage]) {
    let labels: HashMap<String, String> =
        stages.iter().map(|s| (s.key.as_str().to_owned(), s.wording.label.clone())).collect();
    let known = || stages_list(parsed);
    for (i, spanned) in parsed.iter().enumerate() {
        let file_stage = spanned.get_ref();
        let mut moves: Vec<Move> = Vec::new();
        if file_stage.is_final && !file_stage.moves.is_empty() {
            report.at(
                file_stage.key.span().start,
                format!("stage `{}` is marked final but declares moves", file_stage.key.get_ref()),
            );
        }
        if !file_stage.is_final
            && let Some(next) = stages.get(i + 1)
        {
            moves.push(Move { to: next.key.clone(), label: next.wording.label.clone() });
        }
        for m in &file_stage.moves {
            let (to, label) = match m.get_ref() {
                FileMove::To(to) => (to, None),
                FileMove::Full { to, label } => (to, label.clone()),
            };
            let at = m.span().start;
            let Some(target_label) = labels.get(to) else {
                report.at(
                    at,
                    format!(
                        "unknown stage `{to}` in a move from `{}` (known stages: {})",
                        file_stage.key.get_ref(),
                        known()
                    ),
                );
                continue;
            };
            if to == file_stage.key.get_ref() {
                report.at(at, format!("stage `{to}` cannot move to itself"));
                continue;
            }
            if moves.iter().any(|existing| existing.to.as_str() == to) {
                report.at(
                    at,
                    format!(
                        "the move from `{}` to `{to}` is declared twice (the next stage is always allowed)",
                        file_stage.key.get_ref()
                    ),
                );
                continue;
            }
            if let Ok(to) = Key::parse(to) {
                moves.push(Move { to, label: label.unwrap_or_else(|| target_label.clone()) });
            }
        }
        stages[i].moves = moves;
    }
}

/// Reads `waits_on`: only `customer` (or `shop`, the default) is a party a stage can wait on.
fn waits_on_customer(report: &mut Report<'_>, stage: &FileStage) -> bool {
    match stage.waits_on.as_ref().map(|w| (w.get_ref().as_str(), w.span().start)) {
        None | Some(("shop", _)) => stage.approval.is_some(),
        Some(("customer", _)) => true,
        Some((other, at)) => {
            report.at(at, format!("`waits_on` is `customer` or `shop`, not `{other}`"));
            false
        }
    }
}

/// Reads each `approval` table: both targets are known stages other than this one (added to
/// the stage's moves when not declared there), the customer sees and hears about the stage,
/// and the reminder is a duration.
fn resolve_approvals(report: &mut Report<'_>, parsed: &[Spanned<FileStage>], stages: &mut [Stage]) {
    let labels: HashMap<String, String> =
        stages.iter().map(|s| (s.key.as_str().to_owned(), s.wording.label.clone())).collect();
    for (i, spanned) in parsed.iter().enumerate() {
        let file_stage = spanned.get_ref();
        let Some(approval) = &file_stage.approval else { continue };
        let a = approval.get_ref();
        let stage_key = file_stage.key.get_ref();
        let mut target = |report: &mut Report<'_>, to: &Spanned<String>, what: &str, label: &str| {
            let name = to.get_ref();
            if !labels.contains_key(name) {
                report.at(
                    to.span().start,
                    format!(
                        "unknown stage `{name}` as the stage `{stage_key}` {what} (known stages: {})",
                        stages_list(parsed)
                    ),
                );
                return None;
            }
            if name == stage_key {
                report.at(
                    to.span().start,
                    format!("the approval of `{stage_key}` cannot lead back to `{stage_key}` itself"),
                );
                return None;
            }
            let key = Key::parse(name).ok()?;
            if !stages[i].moves.iter().any(|m| m.to == key) {
                stages[i].moves.push(Move { to: key.clone(), label: label.to_owned() });
            }
            Some(key)
        };
        let approve = target(report, &a.approve, "approves to", "Approved by the customer");
        let changes = target(report, &a.changes, "sends change requests to", "Changes requested by the customer");
        if a.approve.get_ref() == a.changes.get_ref() {
            report.at(a.changes.span().start, "`approve` and `changes` must lead to different stages");
        }
        if file_stage.is_final {
            report.at(approval.span().start, format!("final stage `{stage_key}` cannot wait for an approval"));
        }
        if !file_stage.visible || !file_stage.notify {
            report.at(
                approval.span().start,
                format!(
                    "approval stage `{stage_key}` must be customer-visible and set `notify = true`, or the customer never hears of the proof"
                ),
            );
        }
        let remind_after = a.remind_after.as_ref().and_then(|d| {
            humantime::parse_duration(d.get_ref())
                .map_err(|e| {
                    report.at(d.span().start, format!("invalid `remind_after` `{}`: {e} (try \"2d\")", d.get_ref()))
                })
                .ok()
        });
        if let (Some(approve), Some(changes)) = (approve, changes) {
            stages[i].approval = Some(Approval { approve, changes, remind_after });
        }
    }
}

fn stages_list(parsed: &[Spanned<FileStage>]) -> String {
    parsed.iter().map(|s| s.get_ref().key.get_ref().as_str()).collect::<Vec<_>>().join(", ")
}

fn check_graph(report: &mut Report<'_>, parsed: &[Spanned<FileStage>], stages: &[Stage]) {
    let index: HashMap<&str, usize> = stages.iter().enumerate().map(|(i, s)| (s.key.as_str(), i)).collect();
    let edges: Vec<Vec<usize>> =
        stages.iter().map(|s| s.moves.iter().filter_map(|m| index.get(m.to.as_str()).copied()).collect()).collect();

    let reachable = bfs(&edges, [0]);
    for (i, stage) in stages.iter().enumerate() {
        if !reachable[i] {
            report.at(
                parsed[i].get_ref().key.span().start,
                format!(
                    "stage `{}` is unreachable: no chain of moves leads to it from the first stage `{}`",
                    stage.key, stages[0].key
                ),
            );
        }
    }

    let finals: Vec<usize> = (0..stages.len()).filter(|&i| stages[i].is_final()).collect();
    if finals.is_empty() {
        let last = parsed.last().map_or(0, |s| s.get_ref().key.span().start);
        report.at(last, "no final stage: every stage has a move out, so an order could never be finished");
        return;
    }
    let mut reverse = vec![Vec::new(); stages.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            reverse[to].push(from);
        }
    }
    let can_finish = bfs(&reverse, finals);
    for (i, stage) in stages.iter().enumerate() {
        if reachable[i] && !can_finish[i] {
            report.at(
                parsed[i].get_ref().key.span().start,
                format!("orders in stage `{}` can never reach a final stage", stage.key),
            );
        }
    }
}

fn bfs(edges: &[Vec<usize>], start: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut queue: VecDeque<usize> = start.into_iter().collect();
    for &s in &queue {
        seen[s] = true;
    }
    while let Some(n) = queue.pop_front() {
        for &m in &edges[n] {
            if !seen[m] {
                seen[m] = true;
                queue.push_back(m);
            }
        }
    }
    seen
}

/// Loads every `*.toml` file in `dir` (sorted by name); workflow keys must be unique.
pub fn load_dir(dir: &Path) -> Result<Workflows, Vec<WorkflowError>> {
    let located =
        |message: String| vec![WorkflowError { file: dir.display().to_string(), line: 1, column: 1, message }];
    let entries = std::fs::read_dir(dir).map_err(|e| located(format!("cannot read the workflows folder: {e}")))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(located("the workflows folder has no *.toml files".to_owned()));
    }
    let mut files = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            vec![WorkflowError { file: name.clone(), line: 1, column: 1, message: format!("cannot read: {e}") }]
        })?;
        files.push((name, text));
    }
    collect(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
}

/// Loads the four built-in presets.
pub fn load_presets() -> Result<Workflows, Vec<WorkflowError>> {
    collect(super::PRESETS.iter().copied())
}

/// Parses several named files into one registry, reporting every problem found.
pub fn collect<'a>(files: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Workflows, Vec<WorkflowError>> {
    let mut errors = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut workflows = Vec::new();
    for (name, text) in files {
        match parse_workflow(name, text) {
            Ok(wf) => {
                if let Some(other) = seen.insert(wf.key.as_str().to_owned(), name.to_owned()) {
                    errors.push(WorkflowError {
                        file: name.to_owned(),
                        line: 1,
                        column: 1,
                        message: format!("workflow key `{}` is also used by {other}", wf.key),
                    });
                }
                workflows.push(wf);
            }
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if errors.is_empty() { Ok(Workflows::new(workflows)) } else { Err(errors) }
}

#[cfg(test)]
mod tests;
