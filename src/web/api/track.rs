//! The tracking page as JSON, for a shop's own site: same data, same key (the token), no login.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use tower_http::cors::{Any, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::view::TrackView;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem};
use crate::web::portal::{Peer, Refused, lookup, rendered, wanted_language};

/// Routes for the JSON twin.
pub fn router() -> OpenApiRouter<AppState> {
    // Shops call this from their own pages, so a browser's preflight (sent before a request
    // with, say, an `Accept-Language` it does not consider simple) must be answered.
    let preflight = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any)
        .max_age(std::time::Duration::from_secs(86_400));
    // The layer answers preflights itself, but only for a method the route has: without an
    // OPTIONS handler the API's 405 fallback would answer first.
    OpenApiRouter::new()
        .routes(routes!(track))
        .route("/track/{token}", options(|| async { ([(header::ALLOW, "GET, OPTIONS")], StatusCode::NO_CONTENT) }))
        .layer(preflight)
}

fn cors_private(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store, max-age=0"));
}

/// What a customer's tracking page shows, as JSON (CORS allows any origin).
///
/// The token is the one in the customer's tracking link. Unknown and revoked tokens get the
/// same 404; lookups are rate-limited per client address.
#[utoipa::path(
    get, path = "/track/{token}", tag = "tracking",
    params(
        ("token" = String, Path, description = "The token from the tracking link"),
        ("lang" = Option<String>, Query, description = "Language of the texts (default: the customer's)"),
    ),
    responses(
        (status = 200, description = "The order as its customer sees it", body = TrackView),
        (status = 404, description = "Unknown or revoked link", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many lookups from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn track(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = match lookup(&state, peer, &headers, &token).await {
        Ok(snapshot) => rendered(&state, &snapshot, &token, wanted_language(query.as_deref()).as_deref())
            .map(|r| {
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], r.json.clone()).into_response()
            })
            .map_err(ApiError::internal),
        Err(Refused::TooMany(wait)) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            "too many tracking lookups from this address; wait and retry",
        )
        .retry_after(wait.as_secs().max(1))),
        Err(Refused::NotFound) => Err(ApiError::not_found("no order is tracked with this link")),
        Err(Refused::Failed) => Err(ApiError::internal("tracking lookup failed")),
    };
    let mut res = outcome.unwrap_or_else(IntoResponse::into_response);
    cors_private(&mut res);
    res
}
