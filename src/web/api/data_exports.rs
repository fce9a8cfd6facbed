//! `GET /data-exports/{id}`: a customer's data as kiln holds it, saved for a Shopify
//! `customers/data_request`, for an operator to download and hand to the shop.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Service;
use crate::store::redaction;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, Writer};

/// Routes under `/data-exports`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_export))
}

/// Download a customer's data export (JSON), as an attachment.
///
/// Its id is in the inbox entry of the `customers/data_request` delivery that made it. It
/// holds personal data, so a write token is needed.
#[utoipa::path(
    get, path = "/data-exports/{id}", tag = "inbox",
    params(("id" = i64, Path, description = "Export id")),
    responses(
        (status = 200, description = "The export", body = Object, content_type = "application/json"),
        (status = 404, description = "No such export", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn get_export(State(service): State<Service>, _writer: Writer, ApiPath(id): ApiPath<i64>) -> Result<Response> {
    let found = redaction::export(service.db(), id).await.map_err(ApiError::internal)?;
    let (_, body, _) = found.ok_or_else(|| ApiError::not_found(format!("no data export has the id {id}")))?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"kiln-data-export-{id}.json\""))
        .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
