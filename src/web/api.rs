//! The JSON API under `/api/v1`, with its OpenAPI document generated from the handlers.

pub mod checkout;
pub mod data_exports;
pub mod history;
pub mod imports;
pub mod inbox;
pub mod inquiries;
pub mod links;
pub mod messages;
pub mod moves;
pub mod orders;
pub mod photos;
pub mod problems;
pub mod stats;
pub mod track;
pub mod workflows;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::error::ApiError;
use crate::web::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kiln API",
        description = "Orders moving through a workshop's stages, with their audit log and tracking links. \
            Authenticate with `Authorization: Bearer <token>` (create one with `kiln token create`). \
            Errors are RFC 9457 problem details naming the field or rule at fault."
    ),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    tags(
        (name = "orders", description = "Create, read, list and edit orders"),
        (name = "moves", description = "Stage moves, hold, resume and cancel"),
        (name = "events", description = "The audit log and notes"),
        (name = "photos", description = "Photos from the bench"),
        (name = "messages", description = "Notifications sent about an order: the delivery log"),
        (name = "inbox", description = "Webhooks delivered to kiln (Stripe) and what became of them"),
        (name = "tracking", description = "Customers' private tracking links"),
        (name = "workflows", description = "Stage pipelines"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split().1
}

fn split() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(orders::router())
        .merge(moves::router())
        .merge(messages::router())
        .merge(inbox::router())
        .merge(imports::router())
        .merge(checkout::router())
        .merge(data_exports::router())
        .merge(photos::router())
        .merge(history::router())
        .merge(links::router())
        .merge(workflows::router())
        .merge(track::router())
        .merge(inquiries::router())
        .merge(stats::router())
        .split_for_parts();
    // After the merge: modifiers of `ApiDoc` run before the routes' operations are added.
    problems::Problems.modify(&mut doc);
    (router, doc)
}

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    let (router, mut doc) = split();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let spec = doc.to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], spec) }),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no-such-endpoint",
                "No such endpoint",
                "see /api/v1/openapi.json for the endpoints",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this endpoint does not accept that method; see /api/v1/openapi.json",
            )
            .into_response()
        })
        // JSON (problems included) must never be sniffed into something a browser runs.
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(axum::middleware::from_fn(super::timing::server_timing))
}
