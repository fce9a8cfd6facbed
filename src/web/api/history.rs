//! An order's audit events, and notes added to its timeline.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::{EventList, EventOut, find_order};
use crate::domain::change::Change;
use crate::domain::order::Visibility;
use crate::service::Service;
use crate::store::events;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiJson, ApiPath, ApiQuery, Reader, Writer};
use crate::web::validate::Check;

/// Routes for events and notes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events)).routes(routes!(add_note))
}

/// Which events to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `customer` lists only what the customer sees; default: everything.
    visibility: Option<String>,
}

/// A note for an order's timeline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    /// The text.
    #[schema(example = "Slab inspected: no cracks.")]
    pub body: String,
    /// `internal` (default) or `customer`.
    pub visibility: Option<String>,
    /// Also send it to the customer (customer notes only; default false).
    pub notify: Option<bool>,
}

/// List an order's events, oldest first.
#[utoipa::path(
    get, path = "/orders/{reference}/events", tag = "events",
    params(("reference" = String, Path, description = "Order reference"), EventsQuery),
    responses(
        (status = 200, description = "Events", body = EventList),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn list_events(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventList>> {
    let customer_only = match query.visibility.as_deref() {
        None => false,
        Some(v) => Visibility::parse(v).map_err(|e| ApiError::invalid("visibility", e))? == Visibility::Customer,
    };
    let order = find_order(&service, &reference).await?;
    let list = events::for_order(service.db(), order.id, customer_only).await.map_err(ApiError::internal)?;
    Ok(Json(EventList { items: list.iter().map(EventOut::from).collect() }))
}

/// Add a note to an order's timeline.
#[utoipa::path(
    post, path = "/orders/{reference}/notes", tag = "events",
    params(("reference" = String, Path, description = "Order reference")),
    request_body = NoteIn,
    responses(
        (status = 201, description = "The note's event", body = EventOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn add_note(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
    ApiJson(note): ApiJson<NoteIn>,
) -> Result<(StatusCode, Json<EventOut>)> {
    let mut check = Check::default();
    let body = check.text("body", &note.body, 10_000, true);
    let visibility = match note.visibility.as_deref() {
        Some(v) => check.parse("visibility", Visibility::parse(v)),
        None => Some(Visibility::Internal),
    };
    let notify = note.notify.unwrap_or(false);
    if notify && visibility == Some(Visibility::Internal) {
        check.fail("notify", "internal notes are never sent to the customer");
    }
    check.finish()?;
    let change = Change::Note { body, visibility: visibility.unwrap_or(Visibility::Internal), notify };
    let applied = service.change(&reference, &change, &writer.actor()).await?;
    let event = applied.events.first().ok_or_else(|| ApiError::internal("a note produced no event"))?;
    Ok((StatusCode::CREATED, Json(EventOut::from(event))))
}
