//! An order's private tracking link: show it, re-issue it, revoke it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::find_order;
use crate::service::Service;
use crate::web::AppState;
use crate::web::error::{Problem, Result};
use crate::web::extract::{ApiPath, Reader, Writer};

/// Routes for tracking links.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_link, reissue_link, revoke_link))
}

/// An order's tracking link.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkOut {
    /// The customer's private tracking page, or `null` if revoked.
    pub url: Option<String>,
}

/// Show an order's tracking link.
#[utoipa::path(
    get, path = "/orders/{reference}/tracking-link", tag = "tracking",
    params(("reference" = String, Path, description = "Order reference")),
    responses(
        (status = 200, description = "The link", body = LinkOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn get_link(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
) -> Result<Json<LinkOut>> {
    let order = find_order(&service, &reference).await?;
    Ok(Json(LinkOut { url: service.tracking_url(order.id).await? }))
}

/// Revoke the order's tracking link and issue a new one (the old link stops working).
#[utoipa::path(
    post, path = "/orders/{reference}/tracking-link", tag = "tracking",
    params(("reference" = String, Path, description = "Order reference")),
    responses(
        (status = 201, description = "The new link", body = LinkOut),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn reissue_link(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
) -> Result<(StatusCode, Json<LinkOut>)> {
    let url = service.reissue_tracking_link(&reference, &writer.actor()).await?;
    Ok((StatusCode::CREATED, Json(LinkOut { url: Some(url) })))
}

/// Revoke the order's tracking link without a replacement.
#[utoipa::path(
    delete, path = "/orders/{reference}/tracking-link", tag = "tracking",
    params(("reference" = String, Path, description = "Order reference")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn revoke_link(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
) -> Result<StatusCode> {
    service.revoke_tracking_link(&reference, &writer.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
