//! Questions customers asked on their tracking pages: all of them, or one order's.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::find_order;
use crate::service::Service;
use crate::store::tracking_stats::{self, Inquiry};
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, ApiQuery, Reader};

/// The most questions one page lists.
const MAX_LIMIT: i64 = 200;

/// Routes for inquiries.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_inquiries)).routes(routes!(order_inquiries))
}

/// Which questions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InquiriesQuery {
    /// How many, 1 to 200 (default 50).
    limit: Option<String>,
    /// Only questions older than this one (the `next_cursor` of the previous page).
    cursor: Option<String>,
}

/// A question a customer asked on their tracking page.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryOut {
    /// Id of the question's event in the order's log.
    pub id: i64,
    /// The order's reference.
    pub order: String,
    /// The question, markup removed.
    pub question: String,
    /// When it was asked (RFC 3339).
    pub asked_at: String,
}

/// A page of questions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InquiryList {
    /// The questions.
    pub items: Vec<InquiryOut>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn page(query: &InquiriesQuery) -> Result<(i64, Option<i64>)> {
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
    };
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API gave out"))?,
        ),
    };
    Ok((limit, cursor))
}

fn list(found: Vec<Inquiry>, limit: i64) -> InquiryList {
    let full = i64::try_from(found.len()).unwrap_or(i64::MAX) == limit;
    let next_cursor = found.last().filter(|_| full).map(|i| i.id.to_string());
    let items = found
        .into_iter()
        .map(|i| InquiryOut {
            id: i.id,
            order: i.reference,
            question: i.question.unwrap_or_default(),
            asked_at: crate::store::from_ms(i.created_at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
        .collect();
    InquiryList { items, next_cursor }
}

/// List the questions customers asked on their tracking pages, newest first.
#[utoipa::path(
    get, path = "/inquiries", tag = "tracking",
    params(InquiriesQuery),
    responses(
        (status = 200, description = "Questions", body = InquiryList),
        (status = 422, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn list_inquiries(
    State(service): State<Service>,
    _reader: Reader,
    ApiQuery(query): ApiQuery<InquiriesQuery>,
) -> Result<Json<InquiryList>> {
    let (limit, cursor) = page(&query)?;
    let found = tracking_stats::inquiries(service.db(), None, cursor, limit).await.map_err(ApiError::internal)?;
    Ok(Json(list(found, limit)))
}

/// List the questions asked about one order, newest first.
#[utoipa::path(
    get, path = "/orders/{reference}/inquiries", tag = "tracking",
    params(("reference" = String, Path, description = "Order reference"), InquiriesQuery),
    responses(
        (status = 200, description = "Questions", body = InquiryList),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn order_inquiries(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
    ApiQuery(query): ApiQuery<InquiriesQuery>,
) -> Result<Json<InquiryList>> {
    let (limit, cursor) = page(&query)?;
    let order = find_order(&service, &reference).await?;
    let found =
        tracking_stats::inquiries(service.db(), Some(order.id), cursor, limit).await.map_err(ApiError::internal)?;
    Ok(Json(list(found, limit)))
}
