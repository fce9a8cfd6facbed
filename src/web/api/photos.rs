//! Photos from the bench: attach them to an order, list them, fetch their renditions.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::EventOut;
use crate::domain::order::Visibility;
use crate::service::{PhotoSize, Service, ServiceError};
use crate::store::photos::Photo;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, Reader, Writer};
use crate::web::multipart::{self, Form};
use crate::web::validate::Check;

const MAX_CAPTION: usize = 500;

/// Routes for photos.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_photos, list_photos))
        .layer(DefaultBodyLimit::disable())
        .merge(OpenApiRouter::new().routes(routes!(photo_file)))
}

/// Reads the visibility and caption fields that go with uploaded photos.
pub fn photo_options(form: &mut Form, visibility: &str, caption: &str) -> Result<(Visibility, Option<String>)> {
    let mut check = Check::default();
    let vis = match form.take(visibility)? {
        Some(v) => check.parse(visibility, Visibility::parse(v.trim())),
        None => Some(Visibility::Customer),
    };
    let text = form.take(caption)?;
    let text = check.optional_text(caption, text.as_deref(), MAX_CAPTION);
    check.finish()?;
    Ok((vis.unwrap_or(Visibility::Customer), text))
}

/// A photo as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoOut {
    /// Id, as listed in events' `photo_ids`.
    pub id: i64,
    /// `customer` or `internal`.
    pub visibility: String,
    /// Caption.
    pub caption: Option<String>,
    /// What was uploaded (`jpeg`, `png`, `webp`, `heic`); stored copies are always JPEG.
    pub source_type: String,
    /// Web copy's width.
    pub width: u32,
    /// Web copy's height.
    pub height: u32,
    /// The web copy, for API clients.
    pub url: String,
    /// The thumbnail (up to 400 px), for API clients.
    pub thumb_url: String,
    /// The small thumbnail (up to 224 px; the thumbnail for photos stored before it existed).
    pub small_url: String,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When (RFC 3339).
    pub created_at: String,
}

impl From<&Photo> for PhotoOut {
    fn from(p: &Photo) -> Self {
        Self {
            id: p.id,
            visibility: p.visibility.to_string(),
            caption: p.caption.clone(),
            source_type: p.source_type.clone(),
            width: p.web_size.0,
            height: p.web_size.1,
            url: format!("/api/v1/photos/{}/web", p.id),
            thumb_url: format!("/api/v1/photos/{}/thumb", p.id),
            small_url: format!("/api/v1/photos/{}/small", p.id),
            uploaded_by: p.uploaded_by.clone(),
            created_at: p.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// The event that attached photos, and the photos.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotosAdded {
    /// The `photos_added` event.
    pub event: Option<EventOut>,
    /// The photos as stored.
    pub photos: Vec<PhotoOut>,
}

/// Photos for an order, as `multipart/form-data`.
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "documents the form for the OpenAPI document")]
pub struct PhotoForm {
    /// `customer` (default) or `internal`.
    visibility: Option<String>,
    /// Caption (and alt text).
    caption: Option<String>,
    /// JPEG, PNG, WebP or HEIC files (repeat the field for several).
    #[schema(value_type = Vec<String>, format = Binary)]
    photo: Vec<Vec<u8>>,
}

/// Attach photos to an order outside a stage move.
///
/// Each file is checked by its content (JPEG, PNG, WebP, HEIC), limited in bytes and pixels,
/// and re-encoded so that no EXIF or GPS data survives. Customer-visible photos appear on the
/// tracking page's timeline.
#[utoipa::path(
    post, path = "/orders/{reference}/photos", tag = "photos",
    params(("reference" = String, Path, description = "Order reference")),
    request_body(content((PhotoForm = "multipart/form-data"))),
    responses(
        (status = 201, description = "Attached", body = PhotosAdded),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A photo is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A file is not a supported image", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A photo cannot be decoded or has too many pixels", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn add_photos(
    State(service): State<Service>,
    writer: Writer,
    ApiPath(reference): ApiPath<String>,
    req: Request,
) -> Result<Response> {
    if !multipart::is_multipart(&req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send photos as `multipart/form-data` with the files in `photo`",
        ));
    }
    let mut form = multipart::read(req, service.config().media.max_bytes, service.upload_budget()).await?;
    let (visibility, caption) = photo_options(&mut form, "visibility", "caption")?;
    form.finish()?;
    let applied = service.add_photos(&reference, form.files, visibility, caption, &writer.actor()).await?;
    let event = applied.events.first();
    let mut photos = Vec::new();
    for id in event.map(|e| e.photo_ids.clone()).unwrap_or_default() {
        if let Some(p) = service.photo(id).await? {
            photos.push(PhotoOut::from(&p));
        }
    }
    let body = PhotosAdded { event: event.map(EventOut::from), photos };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// List an order's photos, internal ones included.
#[utoipa::path(
    get, path = "/orders/{reference}/photos", tag = "photos",
    params(("reference" = String, Path, description = "Order reference")),
    responses(
        (status = 200, description = "Photos, oldest first", body = Vec<PhotoOut>),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn list_photos(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
) -> Result<Json<Vec<PhotoOut>>> {
    let id = service.order_id(&reference).await?.ok_or_else(|| ServiceError::OrderNotFound(reference.clone()))?;
    let photos = crate::store::photos::for_order(service.db(), id).await.map_err(ServiceError::from)?;
    Ok(Json(photos.iter().map(PhotoOut::from).collect()))
}

/// One rendition of a photo (always JPEG), internal ones included.
#[utoipa::path(
    get, path = "/photos/{id}/{size}", tag = "photos",
    params(
        ("id" = i64, Path, description = "Photo id"),
        ("size" = String, Path, description = "`web` (up to 1600 px), `thumb` (400 px) or `small` (224 px)"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg"),
        (status = 404, description = "No such photo", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn photo_file(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath((id, size)): ApiPath<(String, String)>,
) -> Result<Response> {
    let not_found = || ApiError::not_found("no photo has this id and size");
    let size = PhotoSize::parse(&size).ok_or_else(not_found)?;
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let photo = service.photo(id).await?.ok_or_else(not_found)?;
    let bytes = service.photo_bytes(&photo, size).await?.ok_or_else(not_found)?;
    Ok(jpeg(bytes, "private, max-age=3600"))
}

/// A JPEG response that browsers will not sniff as anything else.
pub fn jpeg(bytes: bytes::Bytes, cache: &'static str) -> Response {
    let mut res = bytes.into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}
