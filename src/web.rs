//! The HTTP edge: routers by audience, merged here, with the layers every request passes.

pub mod api;
pub mod error;
pub mod extract;
pub mod hooks;
pub mod multipart;
pub mod ops;
pub mod portal;
pub mod timing;
pub mod validate;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::trace::TraceLayer;

use crate::service::Service;
use error::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Service,
    /// Tracking-page rendering and protection.
    pub portal: Arc<portal::Portal>,
    /// The dashboard's rendering and sign-in protection.
    pub ops: Arc<ops::Ops>,
}

impl AppState {
    /// Builds the web state; template or logo problems are reported here, at start-up.
    pub fn new(service: Service) -> anyhow::Result<Self> {
        let portal = Arc::new(portal::Portal::new(service.config())?);
        let ops = Arc::new(ops::Ops::new(service.config())?);
        Ok(Self { service, portal, ops })
    }
}

impl FromRef<AppState> for Service {
    fn from_ref(state: &AppState) -> Self {
        state.service.clone()
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let max_body = state.service.config().max_body_bytes;
    Router::new()
        .nest("/api/v1", api::router())
        .merge(portal::router())
        .merge(ops::router(&state))
        .merge(hooks::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::not_found("nothing here; the API lives under /api/v1") })
        .layer(DefaultBodyLimit::max(max_body))
        // Pages and JSON go out gzip- or brotli-compressed when the client accepts it; live
        // streams never (each update must reach the browser at once, not wait in a
        // compressor's buffer), nor photos (JPEG is compressed already).
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("text/event-stream"))),
        )
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn ready(State(service): State<Service>) -> Response {
    match service.db().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// A panic becomes an opaque 500 problem (logged) instead of a dropped connection.
fn on_panic(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}
