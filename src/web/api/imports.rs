//! `POST /imports`: the CSV import of `kiln import orders`, over HTTP (for the dashboard).
//! The body is streamed into the importer, so memory does not grow with the file.

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::intake::csv_import::{self, ImportError};
use crate::service::Service;
use crate::web::AppState;
use crate::web::error::{ApiError, Result};
use crate::web::extract::{ApiQuery, Writer};

/// Routes for imports; the body limit is off because the body is streamed, not buffered.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_orders)).layer(DefaultBodyLimit::disable())
}

/// Options of an import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true` to check every row and write nothing.
    dry_run: Option<String>,
}

/// One refused row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowProblemOut {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault (empty for the whole row).
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// What an import did (or would do, on a dry run).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// Data rows read.
    pub rows: u64,
    /// Orders created (or that would be).
    pub created: u64,
    /// Orders imported before (same `external_id`), left as they are.
    pub skipped: u64,
    /// Orders refused because of a bad row.
    pub refused: u64,
    /// Rows refused.
    pub rows_refused: u64,
    /// The first 1,000 refused rows.
    pub problems: Vec<RowProblemOut>,
}

/// Import orders from a CSV file (the columns are in docs/intake.md): one row per line item,
/// keyed by `external_id`; importing the same file again changes nothing.
#[utoipa::path(
    post, path = "/imports", tag = "orders",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses((status = 200, description = "What the import did", body = ImportOut)),
    security(("bearer" = ["write"]))
)]
async fn import_orders(
    State(service): State<Service>,
    _writer: Writer,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportOut>> {
    let dry_run = match query.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-parameter",
                "Invalid parameter",
                format!("`{other}` is not `true` or `false`"),
            )
            .field("dry_run"));
        }
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim_start().to_ascii_lowercase().starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the file as `text/csv`",
        ));
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let input = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let summary = match csv_import::import_orders(&service, input, dry_run, |_| {}).await {
        Ok(summary) => summary,
        Err(ImportError::Service(e)) => return Err(e.into()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-csv",
                "The file cannot be imported",
                e.to_string(),
            )
            .field("body"));
        }
    };
    Ok(Json(ImportOut {
        dry_run,
        rows: summary.rows,
        created: summary.created,
        skipped: summary.skipped,
        refused: summary.refused,
        rows_refused: summary.rows_refused,
        problems: summary
            .problems
            .into_iter()
            .map(|p| RowProblemOut { line: p.line, column: p.column, reason: p.reason })
            .collect(),
    }))
}
