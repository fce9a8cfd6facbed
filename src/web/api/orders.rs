//! Orders: create (idempotent), get, list (filters, keyset pagination) and patch.

mod input;
mod output;
mod query;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use input::{CustomerIn, CustomerPatch, ItemIn, OrderIn, OrderPatch};
pub use output::{CustomerOut, EventList, EventOut, ItemOut, OrderOut, OrderPage, OrderSummaryOut, StageOut};

use crate::cache::Lookup;
use crate::domain::change::Change;
use crate::domain::model::Order;
use crate::service::{Created, Idempotency, Rendered, Service, ServiceError};
use crate::store::orders;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiJson, ApiPath, JsonWithBytes, Reader, Writer};
use query::{__path_list_orders, list_orders};

/// Routes under `/orders`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_order, list_orders)).routes(routes!(get_order, patch_order))
}

/// Loads the full view of an order.
pub async fn order_out(service: &Service, order: &Order) -> Result<OrderOut> {
    let items = orders::items(service.db(), order.id).await.map_err(ApiError::internal)?;
    let url = service.tracking_url(order.id).await?;
    Ok(OrderOut::new(order, &items, url, service.workflows()))
}

/// Finds an order by reference or answers 404.
pub async fn find_order(service: &Service, reference: &str) -> Result<Order> {
    orders::by_reference(service.db(), reference)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::from(ServiceError::OrderNotFound(reference.to_owned())))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned()))
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1-255 visible ASCII characters"))
}

/// SHA-256 of the body re-serialized canonically (sorted keys, no whitespace), so that the
/// same request sent with different formatting still replays.
fn request_hash(bytes: &[u8]) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let canonical = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    Ok(crate::crypto::sha256_hex(&canonical))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Create an order.
///
/// Send an `Idempotency-Key` header to make retries safe: the same key with the same body
/// replays the first response (with `Idempotent-Replayed: true`); the same key with a
/// different body is refused with 422.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = OrderIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; 1-255 visible ASCII characters")),
    responses(
        (status = 201, description = "Created", body = OrderOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Reference already used", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field, or idempotency key reused with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn create_order(
    State(service): State<Service>,
    writer: Writer,
    headers: HeaderMap,
    body: JsonWithBytes<OrderIn>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let new = body.value.parse()?;
    let idem = match key {
        Some(key) => Some(Idempotency { token_id: writer.0.id, key, request_hash: request_hash(&body.bytes)? }),
        None => None,
    };
    let workflows = service.workflows();
    let created = service
        .create_order(new, &writer.actor(), idem, |order, items, url| {
            let out = OrderOut::new(order, items, Some(url.to_owned()), workflows);
            Rendered { status: 201, body: serde_json::to_string(&out).unwrap_or_default() }
        })
        .await?;
    Ok(match created {
        Created::New { response, order, .. } => {
            let mut resp = json_response(StatusCode::CREATED, response.body);
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.reference)) {
                resp.headers_mut().insert(header::LOCATION, location);
            }
            resp
        }
        Created::Replayed(saved) => {
            let status = StatusCode::from_u16(saved.status).map_err(ApiError::internal)?;
            let mut resp = json_response(status, saved.body);
            resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            resp
        }
    })
}

/// Get an order by reference.
#[utoipa::path(
    get, path = "/orders/{reference}", tag = "orders",
    params(("reference" = String, Path, description = "Order reference, e.g. K-000123")),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn get_order(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
) -> Result<Response> {
    let not_found = || ApiError::from(ServiceError::OrderNotFound(reference.clone()));
    let id = service.order_id(&reference).await?.ok_or_else(not_found)?;
    let cache = service.order_json_cache();
    let body = match cache.get(&id) {
        Lookup::Hit(body) => body,
        Lookup::Miss(ticket) => {
            let order = orders::by_id(service.db(), id).await.map_err(ApiError::internal)?.ok_or_else(not_found)?;
            let body =
                Bytes::from(serde_json::to_vec(&order_out(&service, &order).await?).map_err(ApiError::internal)?);
            cache.fill(&id, ticket, body.clone());
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Change an order's priority, due date, notes or customer contact details.
///
/// Setting `priority` to `hold` puts the order on hold; changing it from `hold` resumes it.
/// Every change is recorded in the order's events.
#[utoipa::path(
    patch, path = "/orders/{reference}", tag = "orders",
    params(("reference" = String, Path, description = "Order reference")),
    request_body = OrderPatch,
    responses(
        (status = 200, description = "The changed order", body = OrderOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the order's state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn patch_order(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
    ApiJson(patch): ApiJson<OrderPatch>,
) -> Result<Json<OrderOut>> {
    let edits = patch.parse()?;
    let applied = service.change(&reference, &Change::Edit(edits), &writer.actor()).await?;
    Ok(Json(order_out(&service, &applied.order).await?))
}
