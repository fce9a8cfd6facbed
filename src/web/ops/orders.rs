//! The orders list (the dashboard's home), the board per workflow, and bulk actions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use minijinja::{Value, context};
use serde::Serialize;

use super::render::span;
use super::{Operator, Reader};
use crate::domain::change::Change;
use crate::domain::model::Order;
use crate::domain::order::{Priority, Status};
use crate::domain::transition::{Action, OrderState, allowed_actions};
use crate::domain::workflow::Workflows;
use crate::i18n::Bundle;
use crate::service::Service;
use crate::store::orders::{
    Board, Cursor, LateCutoffs, LateFilter, LateInput, ListFilter, Sort, board as store_board, list as list_orders,
    next_cursor,
};
use crate::web::AppState;
use crate::web::error::ApiError;

/// Rows per list page.
const PAGE: u32 = 50;
/// Cards a board shows per stage before pointing at the list.
const BOARD_COLUMN: usize = 60;
/// Orders one bulk request may act on.
const MAX_BULK: usize = 500;

/// One order as a row or a card.
#[derive(Debug, Serialize)]
pub struct OrderLine {
    reference: String,
    customer: String,
    contact: String,
    workflow: String,
    workflow_name: String,
    stage: String,
    stage_label: String,
    status: &'static str,
    priority: &'static str,
    in_stage: String,
    expected: Option<String>,
    late: bool,
    due: Option<String>,
    due_past: bool,
    created: String,
    /// `(action value, label)` the workflow allows from here, for cards' buttons.
    moves: Vec<(String, String)>,
}

/// Whether an open order is late (the store's rule, the same as the `late` filter's), and
/// whether that is because its promised date has passed.
pub fn lateness(cutoffs: &LateCutoffs, order: &Order) -> (bool, bool) {
    if order.state.status != Status::Open {
        return (false, false);
    }
    let due_past = order.due_date.is_some_and(|d| d < cutoffs.today);
    let late = cutoffs.is_late(
        &order.workflow,
        LateInput {
            stage: &order.state.stage,
            status: order.state.status,
            priority: order.state.priority,
            stage_entered_at: order.stage_entered_at.timestamp_millis(),
            due_date: order.due_date,
        },
    );
    (late || due_past, due_past)
}

/// An order as the list and board show it.
pub fn line(
    service: &Service,
    bundle: &Bundle,
    tz: chrono_tz::Tz,
    cutoffs: &LateCutoffs,
    order: &Order,
    with_moves: bool,
) -> OrderLine {
    let now = Utc::now();
    let wf = service.workflows().get(&order.workflow);
    let stage = wf.and_then(|w| w.stage(&order.state.stage));
    let (late, due_past) = lateness(cutoffs, order);
    let moves = match wf.filter(|_| with_moves) {
        Some(wf) => allowed_actions(wf, &order.state)
            .into_iter()
            .map(|a| (action_value(a.action.as_str(), a.to.as_deref()), a.label))
            .collect(),
        None => Vec::new(),
    };
    OrderLine {
        reference: order.reference.to_string(),
        customer: order.customer.name.clone(),
        contact: order
            .customer
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .or_else(|| order.customer.phone.as_ref().map(|p| p.as_str().to_owned()))
            .unwrap_or_default(),
        workflow: order.workflow.clone(),
        workflow_name: wf.map_or_else(|| order.workflow.clone(), |w| w.name.clone()),
        stage: order.state.stage.clone(),
        stage_label: stage.map_or_else(|| order.state.stage.clone(), |s| s.wording.label.clone()),
        status: order.state.status.as_str(),
        priority: order.state.priority.as_str(),
        in_stage: span(bundle, now - order.stage_entered_at),
        expected: stage.and_then(|s| s.expected).map(|d| bundle.duration(d)),
        late,
        due: order.due_date.map(|d| date_text(bundle, d)),
        due_past,
        created: bundle.short_date(order.created_at.with_timezone(&tz)),
        moves,
    }
}

fn date_text(bundle: &Bundle, d: NaiveDate) -> String {
    let at = d.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc().with_timezone(&chrono_tz::UTC);
    let text = bundle.short_date(at);
    if chrono::Datelike::year(&d) == chrono::Datelike::year(&Utc::now().date_naive()) {
        text
    } else {
        format!("{text} {}", chrono::Datelike::year(&d))
    }
}

/// How an action is written in forms: `move:STAGE`, `hold`, `resume` or `cancel`.
pub fn action_value(kind: &str, to: Option<&str>) -> String {
    match to {
        Some(to) => format!("move:{to}"),
        None => kind.to_owned(),
    }
}

/// Reads a form's action value back.
pub fn parse_action(raw: &str) -> Option<Action> {
    match raw {
        "hold" => Some(Action::Hold { needs: None }),
        "resume" => Some(Action::Resume { priority: None }),
        "cancel" => Some(Action::Cancel),
        _ => raw
            .strip_prefix("move:")
            .filter(|s| !s.is_empty() && s.len() <= 64 && !s.chars().any(char::is_control))
            .map(|to| Action::Move { to: to.to_owned() }),
    }
}

/// The list's filters, as the query string gives them.
#[derive(Debug, Default, Serialize)]
struct Filters {
    workflow: String,
    stage: String,
    priority: String,
    status: String,
    q: String,
    late: String,
    due_from: String,
    due_to: String,
    created_from: String,
    created_to: String,
    sort: String,
    cursor: String,
}

fn parse_filters(query: Option<&str>) -> (Filters, Vec<String>) {
    let mut f = Filters { status: "open".to_owned(), ..Filters::default() };
    let mut problems = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.trim().chars().filter(|c| !c.is_control()).take(200).collect::<String>();
        match k.as_ref() {
            "workflow" => f.workflow = v,
            "stage" => f.stage = v,
            "priority" => f.priority = v,
            "status" => f.status = v,
            "q" => f.q = v,
            "late" => f.late = v,
            "due_from" => f.due_from = v,
            "due_to" => f.due_to = v,
            "sort" => f.sort = v,
            "created_from" => f.created_from = v,
            "created_to" => f.created_to = v,
            "cursor" => f.cursor = v,
            "lang" | "moved" => {}
            other => problems.push(format!("unknown filter `{other}`")),
        }
    }
    (f, problems)
}

fn date(raw: &str, field: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    if raw.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push(format!("{field}: `{raw}` is not a date written YYYY-MM-DD"));
            None
        }
    }
}

fn day_start(raw: &str, field: &str, problems: &mut Vec<String>) -> Option<i64> {
    date(raw, field, problems).and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc().timestamp_millis())
}

fn to_store_filter(workflows: &Workflows, f: &Filters, problems: &mut Vec<String>) -> ListFilter {
    let mut filter = ListFilter { limit: PAGE, ..ListFilter::default() };
    filter.workflow = Some(f.workflow.clone()).filter(|s| !s.is_empty());
    filter.stage = Some(f.stage.clone()).filter(|s| !s.is_empty());
    if !f.priority.is_empty() {
        match Priority::parse(&f.priority) {
            Ok(p) => filter.priority = Some(p),
            Err(e) => problems.push(format!("priority: {e}")),
        }
    }
    if !f.status.is_empty() && f.status != "any" {
        match Status::parse(&f.status) {
            Ok(s) => filter.status = Some(s),
            Err(e) => problems.push(format!("status: {e}")),
        }
    }
    filter.text = Some(f.q.clone()).filter(|s| !s.is_empty());
    filter.created_from = day_start(&f.created_from, "created_from", problems);
    // "Created to" names a day: everything created on it is included.
    filter.created_to = day_start(&f.created_to, "created_to", problems).map(|t| t + 86_400_000);
    match f.late.as_str() {
        "" => {}
        "1" | "0" => {
            let cutoffs = LateCutoffs::at(workflows, Utc::now());
            filter.late = Some(LateFilter { late: f.late == "1", cutoffs });
        }
        other => problems.push(format!("late: `{other}` is not 1 or 0")),
    }
    filter.due_from = date(&f.due_from, "due_from", problems);
    filter.due_to = date(&f.due_to, "due_to", problems);
    if !f.sort.is_empty() {
        match Sort::parse(&f.sort) {
            Ok(sort) => filter.sort = sort,
            Err(e) => problems.push(format!("sort: {e}")),
        }
    }
    if !f.cursor.is_empty() {
        match Cursor::decode(&f.cursor, filter.sort) {
            Ok(cursor) => filter.after = Some(cursor),
            Err(_) => problems.push("cursor: not a page this list gave out".to_owned()),
        }
    }
    filter
}

/// `GET /`: the orders list.
pub async fn list(
    State(state): State<AppState>,
    Reader(session): Reader,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(&headers, query.as_deref());
    let (filters, mut problems) = parse_filters(query.as_deref());
    let filter = to_store_filter(state.service.workflows(), &filters, &mut problems);
    let orders = if problems.is_empty() {
        match list_orders(state.service.db(), &filter).await {
            Ok(orders) => orders,
            Err(e) => return unavailable(&state, &headers, &session, &e),
        }
    } else {
        Vec::new()
    };
    let next = next_cursor(&filter, &orders).map(|c| next_page(query.as_deref(), &c.encode()));
    // One set of cutoffs for the page, not one per row.
    let cutoffs = LateCutoffs::at(state.service.workflows(), Utc::now());
    let rows: Vec<OrderLine> =
        orders.iter().map(|o| line(&state.service, &bundle, ops.renderer.tz, &cutoffs, o, false)).collect();
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    ops.renderer.page(
        "list.html",
        &bundle,
        Some(&session),
        status,
        context! {
            nav => "orders",
            rows => Value::from(minijinja::value::Serde(&rows)),
            filters => Value::from(minijinja::value::Serde(&filters)),
            problems,
            next,
            first_page => !filters_cursor_empty(query.as_deref()),
            workflows => Value::from(minijinja::value::Serde(workflow_options(state.service.workflows()))),
            bulk_actions => bulk_options(state.service.workflows(), filter.workflow.as_deref()),
            here => here("/", query.as_deref()),
        },
    )
}

fn filters_cursor_empty(query: Option<&str>) -> bool {
    !url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "cursor")
}

fn here(path: &str, query: Option<&str>) -> String {
    match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

fn next_page(query: Option<&str>, cursor: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "cursor" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("cursor", cursor);
    format!("/?{}", out.finish())
}

#[derive(Debug, Serialize)]
struct WorkflowOption {
    key: String,
    name: String,
    stages: Vec<(String, String)>,
}

fn workflow_options(workflows: &Workflows) -> Vec<WorkflowOption> {
    workflows
        .iter()
        .map(|wf| WorkflowOption {
            key: wf.key.to_string(),
            name: wf.name.clone(),
            stages: wf.stages.iter().map(|s| (s.key.to_string(), s.wording.label.clone())).collect(),
        })
        .collect()
}

/// The bulk actions offered: hold, resume, cancel, and a move to any stage (of the filtered
/// workflow, or of every workflow, grouped).
fn bulk_options(workflows: &Workflows, only: Option<&str>) -> Vec<(String, Vec<(String, String)>)> {
    workflows
        .iter()
        .filter(|wf| only.is_none_or(|k| wf.key.as_str() == k))
        .map(|wf| {
            let stages = wf.stages.iter().map(|s| (format!("move:{}", s.key), s.wording.label.clone())).collect();
            (wf.name.clone(), stages)
        })
        .collect()
}

fn unavailable(state: &AppState, headers: &HeaderMap, session: &super::Session, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard read failed");
    let bundle = state.ops.renderer.bundle(headers, None);
    let title = bundle.t("ops.error_unavailable_title").to_owned();
    let text = bundle.t("ops.error_unavailable_text").to_owned();
    state.ops.renderer.message(&bundle, Some(session), StatusCode::SERVICE_UNAVAILABLE, &title, &text, Some("/"))
}

/// `GET /board`: the first workflow's board.
pub async fn board_default(State(state): State<AppState>, Reader(_): Reader) -> Response {
    match state.service.workflows().keys().first() {
        Some(key) => Redirect::to(&format!("/board/{key}")).into_response(),
        None => Redirect::to("/").into_response(),
    }
}

#[derive(Debug, Serialize)]
pub struct Column {
    key: String,
    label: String,
    expected: Option<String>,
    count: usize,
    late: usize,
    cards: Vec<OrderLine>,
    hidden: usize,
}

/// Boards as last read, by workflow: a board reads every open order of its workflow, and a
/// shop's screens all show the same few boards, so they share one read until an order
/// changes (this node hears of every change, its own or another node's) or the late flags
/// are a little old.
#[derive(Debug, Default)]
pub struct BoardCache {
    boards: std::sync::Mutex<std::collections::HashMap<String, CachedBoard>>,
}

/// A board, the change count it was read at, and when.
type CachedBoard = (u64, std::time::Instant, Arc<Board>);

/// How long a board's late flags may be old.
const BOARD_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

impl BoardCache {
    async fn get(&self, service: &Service, wf: &crate::domain::workflow::Workflow) -> Result<Arc<Board>, sqlx::Error> {
        let key = wf.key.as_str();
        // Read the count before the board: a change during the read makes the entry stale.
        let changes = service.hub().changes();
        {
            let boards = self.boards.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((seen, at, board)) = boards.get(key)
                && *seen == changes
                && at.elapsed() < BOARD_FRESH
            {
                return Ok(board.clone());
            }
        }
        let board = Arc::new(store_board(service.db(), wf).await?);
        let mut boards = self.boards.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        boards.insert(key.to_owned(), (changes, std::time::Instant::now(), board.clone()));
        Ok(board)
    }
}

/// The open orders of a workflow by stage, rush first, then longest in the stage (the
/// store's board: one indexed read however many orders are open).
pub async fn columns(
    service: &Service,
    cache: &BoardCache,
    bundle: &Bundle,
    workflow: &str,
    with_moves: bool,
) -> Result<Option<Vec<Column>>, sqlx::Error> {
    let Some(wf) = service.workflows().get(workflow) else { return Ok(None) };
    let board = cache.get(service, wf).await?;
    let now = Utc::now();
    let today = now.date_naive();
    let columns = board
        .columns
        .iter()
        .filter(|c| wf.stage(&c.stage).is_none_or(|s| !s.is_final()))
        .map(|c| {
            let stage = wf.stage(&c.stage);
            let label = stage.map_or_else(|| c.stage.clone(), |s| s.wording.label.clone());
            let expected = stage.and_then(|s| s.expected).map(|d| bundle.duration(d));
            let shown = c.cards.len();
            let late = c.cards.iter().filter(|k| k.late).count();
            let cards: Vec<OrderLine> = c
                .cards
                .iter()
                .take(BOARD_COLUMN)
                .map(|card| {
                    let state = OrderState {
                        stage: c.stage.clone(),
                        status: Status::Open,
                        priority: card.priority,
                        resume_priority: None,
                    };
                    let moves = if with_moves {
                        allowed_actions(wf, &state)
                            .into_iter()
                            .map(|a| (action_value(a.action.as_str(), a.to.as_deref()), a.label))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    OrderLine {
                        reference: card.reference.clone(),
                        customer: card.customer_name.clone(),
                        contact: String::new(),
                        workflow: workflow.to_owned(),
                        workflow_name: wf.name.clone(),
                        stage: c.stage.clone(),
                        stage_label: label.clone(),
                        status: Status::Open.as_str(),
                        priority: card.priority.as_str(),
                        in_stage: span(bundle, now - card.stage_entered_at),
                        expected: expected.clone(),
                        late: card.late,
                        due: card.due_date.map(|d| date_text(bundle, d)),
                        due_past: card.due_date.is_some_and(|d| d < today),
                        created: String::new(),
                        moves,
                    }
                })
                .collect();
            let count = usize::try_from(c.count).unwrap_or(usize::MAX);
            Column {
                key: c.stage.clone(),
                label,
                expected,
                count,
                late,
                hidden: count.saturating_sub(shown.min(BOARD_COLUMN)),
                cards,
            }
        })
        .collect();
    Ok(Some(columns))
}

/// `GET /board/{workflow}`.
pub async fn board(
    State(state): State<AppState>,
    Reader(session): Reader,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(workflow): Path<String>,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(&headers, query.as_deref());
    let operate = session.can(crate::domain::access::Permission::Operate);
    let columns = match columns(&state.service, &ops.boards, &bundle, &workflow, operate).await {
        Ok(Some(columns)) => columns,
        Ok(None) => return ops.renderer.error_with(&bundle, Some(&session), StatusCode::NOT_FOUND, "no_workflow"),
        Err(e) => return unavailable(&state, &headers, &session, &e),
    };
    let name = state.service.workflows().get(&workflow).map(|w| w.name.clone()).unwrap_or_default();
    ops.renderer.page(
        "board.html",
        &bundle,
        Some(&session),
        StatusCode::OK,
        context! {
            nav => "board",
            workflow => workflow.clone(),
            workflow_name => name,
            columns => Value::from(minijinja::value::Serde(&columns)),
            workflows => Value::from(minijinja::value::Serde(workflow_options(state.service.workflows()))),
            bulk_actions => bulk_options(state.service.workflows(), Some(workflow.as_str())),
            here => format!("/board/{workflow}"),
        },
    )
}

/// What happened to one order of a bulk action.
#[derive(Debug, Serialize)]
struct BulkOutcome {
    reference: String,
    moved: bool,
    stage: Option<String>,
    reason: Option<String>,
}

/// `POST /bulk`: the same action on several orders; each succeeds or fails on its own and
/// notifies like a single move.
pub async fn bulk(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(&headers, None);
    let mut refs: Vec<String> = Vec::new();
    let (mut op, mut note, mut back) = (String::new(), String::new(), None);
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "ref" => refs.push(v.trim().to_owned()),
            "bulk_op" => op = v.into_owned(),
            "note" => note = v.trim().to_owned(),
            "back" => back = Some(v.into_owned()).filter(|b| super::is_local_path(b)),
            _ => {}
        }
    }
    refs.retain(|r| !r.is_empty() && r.len() <= 64 && !r.chars().any(char::is_control));
    refs.dedup();
    let refuse = |key: &str| {
        let title = bundle.t("ops.bulk_title").to_owned();
        let text = bundle.t(key).to_owned();
        ops.renderer.message(&bundle, Some(&session), StatusCode::UNPROCESSABLE_ENTITY, &title, &text, back.as_deref())
    };
    if refs.is_empty() {
        return refuse("ops.bulk_none_selected");
    }
    if refs.len() > MAX_BULK {
        return refuse("ops.bulk_too_many");
    }
    let Some(action) = parse_action(&op) else { return refuse("ops.bulk_no_action") };
    if note.chars().count() > 10_000 {
        return refuse("ops.note_too_long");
    }
    let actor = session.actor();
    let mut outcomes = Vec::with_capacity(refs.len());
    for reference in refs {
        let change = Change::Act {
            action: action.clone(),
            expected_stage: None,
            note: Some(note.clone()).filter(|n| !n.is_empty()),
            internal_note: None,
            photo_ids: Vec::new(),
        };
        outcomes.push(match state.service.change(&reference, &change, &actor).await {
            Ok(applied) => {
                let stage = state
                    .service
                    .workflows()
                    .get(&applied.order.workflow)
                    .and_then(|w| w.stage(&applied.order.state.stage))
                    .map_or(applied.order.state.stage.clone(), |s| s.wording.label.clone());
                BulkOutcome { reference, moved: true, stage: Some(stage), reason: None }
            }
            Err(e) => {
                let problem = ApiError::from(e);
                if problem.status().is_server_error() {
                    tracing::error!(detail = %problem.problem().detail, "bulk action failed");
                }
                BulkOutcome { reference, moved: false, stage: None, reason: Some(problem.problem().detail.clone()) }
            }
        });
    }
    let moved = outcomes.iter().filter(|o| o.moved).count();
    ops.renderer.page(
        "bulk.html",
        &bundle,
        Some(&session),
        StatusCode::OK,
        context! { outcomes => Value::from(minijinja::value::Serde(&outcomes)), moved, refused => outcomes.len() - moved, back => back.unwrap_or_else(|| "/".to_owned()) },
    )
}
