//! Stage moves, hold, resume and cancel — one order at a time or in bulk.

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::{EventOut, OrderOut, order_out};
use crate::domain::change::Change;
use crate::domain::order::{CustomerNeed, Priority};
use crate::domain::transition::{Action, ActionKind, Refusal};
use crate::service::{Service, ServiceError};
use crate::web::AppState;
use crate::web::api::photos::photo_options;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiJson, ApiPath, Writer};
use crate::web::multipart;
use crate::web::validate::Check;

const MAX_BULK: usize = 500;
const MAX_NOTE: usize = 10_000;

/// Routes for moves.
pub fn router() -> OpenApiRouter<AppState> {
    // A move may carry photos, so its body is bounded per file by the multipart reader (and
    // by `max_body_bytes` when it is JSON) instead of by the router-wide limit.
    OpenApiRouter::new()
        .routes(routes!(move_order))
        .layer(DefaultBodyLimit::disable())
        .merge(OpenApiRouter::new().routes(routes!(bulk_move)))
}

/// A move: `{"to": "quality_check"}`, or an action: `{"action": "hold"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    /// `move` (default), `hold`, `resume` or `cancel`.
    #[schema(example = "move")]
    pub action: Option<String>,
    /// Target stage, for `move`.
    #[schema(example = "quality_check")]
    pub to: Option<String>,
    /// Refuse with 409 unless the order is still in this stage.
    #[schema(example = "fabrication")]
    pub expected_stage: Option<String>,
    /// Note for the event; the customer sees it when the event is customer-visible.
    pub note: Option<String>,
    /// Note only the shop sees.
    pub internal_note: Option<String>,
    /// For `resume`: the priority to resume at (default: the one before the hold).
    pub priority: Option<String>,
    /// For `hold`: what the hold waits for from the customer, e.g. "your ring size". The hold
    /// then waits on them: their page and messages say "We need: …", the estimate depends on
    /// them, and the time does not count as the shop's delay. One line; blank means none.
    #[schema(max_length = 160, example = "your ring size")]
    pub needs: Option<String>,
}

/// The order after a move, and the events it appended.
#[derive(Debug, Serialize, ToSchema)]
pub struct MoveOut {
    /// The order as it is now.
    pub order: OrderOut,
    /// Events appended by the move.
    pub events: Vec<EventOut>,
}

/// One move in a bulk request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMoveItem {
    /// The order.
    pub reference: String,
    /// `move` (default), `hold`, `resume` or `cancel`.
    pub action: Option<String>,
    /// Target stage, for `move`.
    pub to: Option<String>,
    /// Refuse unless the order is still in this stage.
    pub expected_stage: Option<String>,
    /// Note for the event.
    pub note: Option<String>,
    /// Note only the shop sees.
    pub internal_note: Option<String>,
    /// For `resume`: the priority to resume at.
    pub priority: Option<String>,
    /// For `hold`: what the hold waits for from the customer (see the single move).
    #[schema(max_length = 160)]
    pub needs: Option<String>,
}

/// Several moves; each is applied (or refused) on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMoveIn {
    /// 1-500 moves.
    pub moves: Vec<BulkMoveItem>,
}

/// What happened to one move of a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// The order.
    pub reference: String,
    /// `moved` or `refused`.
    pub outcome: String,
    /// The HTTP status this move would have had on its own.
    pub status: u16,
    /// The order's stage afterwards, when moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}

/// The outcome of a bulk move.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkMoveOut {
    /// How many moves were applied.
    pub moved: usize,
    /// How many were refused.
    pub refused: usize,
    /// One result per requested move, in request order.
    pub results: Vec<BulkResult>,
}

impl MoveIn {
    /// Parses the request into a change, naming any invalid field.
    pub fn parse(self) -> Result<Change> {
        let mut check = Check::default();
        // Stage keys are matched in memory, but nothing with a control character is one.
        for (field, value) in [("to", &self.to), ("expected_stage", &self.expected_stage)] {
            if let Some(value) = value {
                check.no_controls(field, value);
            }
        }
        let kind = match self.action.as_deref() {
            None => Some(ActionKind::Move),
            Some(a) => check.parse("action", ActionKind::parse(a)),
        };
        let priority = self.priority.as_deref().and_then(|p| check.parse("priority", Priority::parse(p)));
        if self.priority.is_some() && kind != Some(ActionKind::Resume) {
            check.fail("priority", "only `resume` takes a priority");
        }
        let needs = self.needs.as_deref().filter(|n| !n.trim().is_empty());
        let needs = needs.and_then(|n| check.parse("needs", CustomerNeed::parse(n)));
        if needs.is_some() && kind != Some(ActionKind::Hold) {
            check.fail("needs", "only `hold` waits on the customer");
        }
        let action = match kind {
            Some(ActionKind::Move) => match self.to.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                Some(to) => Some(Action::Move { to: to.to_owned() }),
                None => {
                    check.fail("to", "a move needs the target stage in `to`");
                    None
                }
            },
            Some(other) => {
                if self.to.is_some() {
                    check.fail("to", format!("`{other}` does not take a target stage"));
                }
                Some(match other {
                    ActionKind::Hold => Action::Hold { needs },
                    ActionKind::Resume => Action::Resume { priority },
                    _ => Action::Cancel,
                })
            }
            None => None,
        };
        let note = check.optional_text("note", self.note.as_deref(), MAX_NOTE);
        let internal_note = check.optional_text("internal_note", self.internal_note.as_deref(), MAX_NOTE);
        check.finish()?;
        let action = action.ok_or_else(|| ApiError::invalid("action", "no action"))?;
        Ok(Change::Act { action, expected_stage: self.expected_stage, note, internal_note, photo_ids: Vec::new() })
    }
}

/// The problem for a refused change, naming `to` when the move's target is at fault: a stage
/// no workflow has, or one the order cannot reach from where it is (while it can move at all).
fn refused(service: &Service, change: &Change, err: ServiceError) -> ApiError {
    let target_at_fault = match (&err, change) {
        (
            ServiceError::Refused(Refusal::NotAllowed { allowed, .. }),
            Change::Act { action: Action::Move { to }, .. },
        ) => {
            let unknown = service.workflows().iter().all(|wf| wf.stage(to).is_none());
            let can_move = allowed.iter().any(|a| a.to.is_some());
            unknown || (can_move && !allowed.iter().any(|a| a.to.as_deref() == Some(to.as_str())))
        }
        _ => false,
    };
    let problem = ApiError::from(err);
    if target_at_fault { problem.field("to") } else { problem }
}

/// Move an order to another stage, or hold, resume or cancel it.
///
/// Only moves the order's workflow allows are accepted; a refused move answers 409 with the
/// current stage and the moves allowed from it. Send `expected_stage` to make sure nobody
/// moved the order since you looked at it. To attach photos from the bench, send the same
/// fields as `multipart/form-data` with one or more files in `photo` (and optionally
/// `photo_visibility`, `photo_caption`).
#[utoipa::path(
    post, path = "/orders/{reference}/moves", tag = "moves",
    params(("reference" = String, Path, description = "Order reference")),
    request_body(content(
        (MoveIn = "application/json"),
        (MoveForm = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Moved", body = MoveOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: not allowed, or stale `expected_stage`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A photo is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON or a form, or a photo of an unsupported type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field or photo", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn move_order(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
    req: Request,
) -> Result<Json<MoveOut>> {
    let actor = writer.actor();
    let change = if multipart::is_multipart(&req) {
        let mut form = multipart::read(req, service.config().media.max_bytes, service.upload_budget()).await?;
        let body = MoveIn {
            action: form.take("action")?,
            to: form.take("to")?,
            expected_stage: form.take("expected_stage")?,
            note: form.take("note")?,
            internal_note: form.take("internal_note")?,
            priority: form.take("priority")?,
            needs: form.take("needs")?,
        };
        let (visibility, caption) = photo_options(&mut form, "photo_visibility", "photo_caption")?;
        form.finish()?;
        let mut change = body.parse()?;
        if !form.files.is_empty() {
            let order_id =
                service.order_id(&reference).await?.ok_or_else(|| ServiceError::OrderNotFound(reference.clone()))?;
            let ids = service.store_photos(order_id, form.files, visibility, caption, &actor).await?;
            if let Change::Act { photo_ids, .. } = &mut change {
                *photo_ids = ids;
            }
        }
        change
    } else {
        let max = service.config().max_body_bytes;
        let req = req.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, max)));
        let ApiJson(body) = ApiJson::<MoveIn>::from_request(req, &()).await?;
        body.parse()?
    };
    let applied = service.change(&reference, &change, &actor).await.map_err(|e| refused(&service, &change, e))?;
    Ok(Json(MoveOut {
        order: order_out(&service, &applied.order).await?,
        events: applied.events.iter().map(EventOut::from).collect(),
    }))
}

/// A move with photos, as `multipart/form-data`: the fields of a JSON move plus the files.
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "documents the form for the OpenAPI document")]
pub struct MoveForm {
    /// `move` (default), `hold`, `resume` or `cancel`.
    action: Option<String>,
    /// Target stage, for `move`.
    to: Option<String>,
    /// Refuse with 409 unless the order is still in this stage.
    expected_stage: Option<String>,
    /// Note for the event.
    note: Option<String>,
    /// Note only the shop sees.
    internal_note: Option<String>,
    /// For `resume`: the priority to resume at.
    priority: Option<String>,
    /// For `hold`: what the hold waits for from the customer.
    #[schema(max_length = 160)]
    needs: Option<String>,
    /// `customer` (default) or `internal`.
    photo_visibility: Option<String>,
    /// Caption (and alt text) for the photos.
    photo_caption: Option<String>,
    /// JPEG, PNG, WebP or HEIC files (repeat the field for several).
    #[schema(value_type = Vec<String>, format = Binary)]
    photo: Vec<Vec<u8>>,
}

/// Apply several moves; each one succeeds or fails on its own and is reported separately.
#[utoipa::path(
    post, path = "/bulk-moves", tag = "moves",
    request_body = BulkMoveIn,
    responses(
        (status = 200, description = "One result per move", body = BulkMoveOut),
        (status = 422, description = "The request itself is invalid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn bulk_move(
    State(service): State<Service>,
    writer: Writer,
    ApiJson(body): ApiJson<BulkMoveIn>,
) -> Result<Json<BulkMoveOut>> {
    if body.moves.is_empty() || body.moves.len() > MAX_BULK {
        return Err(ApiError::invalid("moves", format!("send 1 to {MAX_BULK} moves")));
    }
    // Refused before any move is applied: a reference with a control character is no order's
    // (and PostgreSQL cannot even compare it), so the request itself is wrong.
    let mut check = Check::default();
    for (i, item) in body.moves.iter().enumerate() {
        check.no_controls(&format!("moves[{i}].reference"), &item.reference);
        for (field, value) in [("to", &item.to), ("expected_stage", &item.expected_stage)] {
            if let Some(value) = value {
                check.no_controls(&format!("moves[{i}].{field}"), value);
            }
        }
    }
    check.finish()?;
    let actor = writer.actor();
    let mut results = Vec::with_capacity(body.moves.len());
    for item in body.moves {
        let reference = item.reference.clone();
        let single = MoveIn {
            action: item.action,
            to: item.to,
            expected_stage: item.expected_stage,
            note: item.note,
            internal_note: item.internal_note,
            priority: item.priority,
            needs: item.needs,
        };
        let outcome = match single.parse() {
            Ok(change) => service.change(&reference, &change, &actor).await.map_err(|e| refused(&service, &change, e)),
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(applied) => BulkResult {
                reference,
                outcome: "moved".to_owned(),
                status: 200,
                stage: Some(applied.order.state.stage),
                problem: None,
            },
            Err(e) => BulkResult {
                reference,
                outcome: "refused".to_owned(),
                status: e.status().as_u16(),
                stage: None,
                problem: Some(e.problem().clone()),
            },
        });
    }
    let moved = results.iter().filter(|r| r.outcome == "moved").count();
    Ok(Json(BulkMoveOut { moved, refused: results.len() - moved, results }))
}
