//! The inbox: every webhook delivered to kiln and what became of it, and the operator's
//! replay.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Service;
use crate::store::from_ms;
use crate::store::inbox::Filter;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, ApiQuery, Reader, Writer};

/// Routes for the inbox.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_inbox)).routes(routes!(replay))
}

const OUTCOMES: [&str; 6] = ["pending", "running", "applied", "ignored", "parked", "failed"];
const SOURCES: [&str; 3] = ["stripe", "shopify", "workshop"];

/// Filters for the inbox; all optional and combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `stripe`, `shopify` or `workshop`.
    source: Option<String>,
    /// `pending`, `running`, `applied`, `ignored`, `parked` or `failed`.
    outcome: Option<String>,
    /// Only deliveries that created or changed this order (its reference).
    order: Option<String>,
    /// Page size, 1-200 (default 50).
    limit: Option<String>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// One delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// Id.
    pub id: i64,
    /// `stripe`, `shopify` or `workshop`.
    pub source: String,
    /// The sender's event id (unique per source).
    pub event_id: String,
    /// The sender's delivery id, if it has one apart from the event id.
    pub delivery_id: Option<String>,
    /// e.g. `checkout.session.completed`.
    pub topic: String,
    /// What the event is about (e.g. a Checkout Session id).
    pub subject: Option<String>,
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// `pending`, `running`, `applied`, `ignored`, `parked` or `failed`.
    pub outcome: String,
    /// Why it was ignored, parked or failed (or the last error while pending a retry).
    pub reason: Option<String>,
    /// The order it created or changed.
    pub order: Option<String>,
    /// Attempts to apply it.
    pub attempts: i64,
    /// The body as received.
    pub payload: serde_json::Value,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    /// Newest first.
    pub deliveries: Vec<DeliveryOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn invalid(field: &str, detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameter", "Invalid parameter", detail).field(field)
}

fn one_of(field: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            Err(invalid(field, format!("`{v}` is not one of {}", allowed.join(", "))))
        }
        v => Ok(v),
    }
}

/// Every webhook delivered to kiln, verified and recorded, with what became of it.
#[utoipa::path(
    get, path = "/inbox", tag = "inbox",
    params(InboxQuery),
    responses((status = 200, description = "Deliveries, newest first", body = InboxPage)),
    security(("bearer" = ["read"]))
)]
async fn list_inbox(
    State(service): State<Service>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<InboxQuery>,
) -> Result<Json<InboxPage>> {
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| invalid("limit", format!("`{raw}` is not a number from 1 to 200")))?,
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("cursor", format!("`{raw}` is not a cursor")))?,
        ),
    };
    let order_id = match query.order.as_deref() {
        None => None,
        // An unknown reference matches no delivery.
        Some(reference) => Some(service.order_id(reference).await?.unwrap_or(0)),
    };
    let filter = Filter {
        source: one_of("source", query.source, &SOURCES)?,
        outcome: one_of("outcome", query.outcome, &OUTCOMES)?,
        order_id,
        before,
    };
    let entries = service.inbox(&filter, limit + 1).await?;
    let more = entries.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let mut deliveries = Vec::with_capacity(entries.len());
    for (e, order) in entries.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
        deliveries.push(DeliveryOut {
            id: e.id,
            source: e.source,
            event_id: e.event_id,
            delivery_id: e.delivery_id,
            topic: e.topic,
            subject: e.subject,
            received_at: from_ms(e.received_at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            outcome: e.outcome,
            reason: e.reason,
            order,
            attempts: e.attempts,
            payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::String(e.payload)),
        });
    }
    let next_cursor = if more { deliveries.last().map(|d| d.id.to_string()) } else { None };
    Ok(Json(InboxPage { deliveries, next_cursor }))
}

/// The delivery after a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    /// The delivery.
    pub id: i64,
    /// `pending`.
    pub outcome: String,
}

/// Apply a delivery again (e.g. after fixing the configuration that made it fail). What it
/// already did is not done twice.
#[utoipa::path(
    post, path = "/inbox/{id}/replay", tag = "inbox",
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued to be applied again", body = ReplayOut),
        (status = 404, description = "No delivery has this id, or it is being applied right now", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn replay(
    State(service): State<Service>,
    _writer: Writer,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<ReplayOut>)> {
    let not_found = || ApiError::not_found("no delivery has this id, or it is being applied right now");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    if !service.replay_delivery(id).await? {
        return Err(not_found());
    }
    Ok((StatusCode::ACCEPTED, Json(ReplayOut { id, outcome: "pending".to_owned() })))
}
