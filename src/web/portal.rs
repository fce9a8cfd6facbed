//! The customer's private tracking page at `/t/{token}`: no login, the token is the key.

mod forms;
mod guard;
mod live;
pub mod render;
mod unsubscribe;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use super::AppState;
use crate::config::Config;
use crate::service::{PhotoSize, TrackSnapshot};
pub use guard::Peer;
use guard::{Limiter, private_headers};
use render::{Rendered, Renderer};

/// Cache policy of private pages: never stored by shared caches, always revalidated.
pub(crate) const PRIVATE: &str = "private, no-store, max-age=0";

/// Everything the tracking routes need besides the service.
#[derive(Debug)]
pub struct Portal {
    renderer: Renderer,
    limiter: Limiter,
    not_found: Bytes,
    too_many: Bytes,
    logo: Option<(Bytes, &'static str)>,
    favicon: Bytes,
    ask_limits: forms::AskLimits,
    /// Orders whose view was counted today (the UTC day in the first field), so that a
    /// reload costs no write: the database keeps one row per order and day anyway.
    seen: std::sync::Mutex<(i64, std::collections::HashSet<i64>)>,
}

/// Image types a logo may be, by their first bytes.
fn logo_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok_and(|s| s.contains("<svg")) => {
            Some("image/svg+xml")
        }
        _ => None,
    }
}

impl Portal {
    /// Compiles the pages and loads the logo; errors name the file at fault.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let renderer = Renderer::new(&config.shop, &config.base_url)?;
        let logo = match &config.shop.logo {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("shop.logo {}: {e}", path.display()))?;
                let kind = logo_type(&bytes).ok_or_else(|| {
                    anyhow::anyhow!("shop.logo {}: not a PNG, JPEG, WebP or SVG image", path.display())
                })?;
                Some((Bytes::from(bytes), kind))
            }
            None => None,
        };
        // A rounded square in the brand colour: no request for a missing /favicon.ico.
        let favicon = Bytes::from(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\"><rect width=\"32\" height=\"32\" rx=\"7\" fill=\"{}\"/><circle cx=\"16\" cy=\"16\" r=\"6\" fill=\"{}\"/></svg>",
            renderer.brand(),
            render::text_on(renderer.brand())
        ));
        Ok(Self {
            favicon,
            ask_limits: forms::AskLimits::default(),
            seen: std::sync::Mutex::default(),
            not_found: renderer.message("track.not_found_title", "track.not_found_text")?,
            too_many: renderer.message("track.too_many_title", "track.too_many_text")?,
            renderer,
            limiter: Limiter::new(&config.tracking),
            logo,
        })
    }

    /// An HTML response with the private headers and the page policy.
    fn html(&self, status: StatusCode, body: Bytes) -> Response {
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CONTENT_SECURITY_POLICY, self.renderer.csp());
        private_headers(headers, PRIVATE);
        res
    }

    fn not_found(&self) -> Response {
        self.html(StatusCode::NOT_FOUND, self.not_found.clone())
    }

    /// The answer to a refused lookup.
    pub fn refused(&self, refused: Refused) -> Response {
        match refused {
            Refused::TooMany(wait) => self.too_many(wait),
            Refused::NotFound => self.not_found(),
            Refused::Failed => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }

    fn too_many(&self, wait: std::time::Duration) -> Response {
        let mut res = self.html(StatusCode::TOO_MANY_REQUESTS, self.too_many.clone());
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        res
    }
}

/// Routes of the tracking pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{token}", get(page))
        .route("/t/{token}/events", get(live::events))
        .route("/t/{token}/answer", post(forms::answer))
        .route("/t/{token}/ask", post(forms::ask))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/t/{token}/photos/{id}/{size}", get(photo))
        .route("/u/{token}", get(unsubscribe::show).post(unsubscribe::opt_out))
        .route("/assets/logo", get(logo))
}

/// Why a token lookup did not produce a snapshot.
pub enum Refused {
    /// Too many lookups from this client; wait this long.
    TooMany(std::time::Duration),
    /// Unknown or revoked (deliberately indistinguishable).
    NotFound,
    /// Our fault; already logged.
    Failed,
}

/// Rate-limits, then finds the snapshot a token opens.
pub async fn lookup(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    token: &str,
) -> Result<Arc<TrackSnapshot>, Refused> {
    let client = state.portal.limiter.client(peer, headers);
    state.portal.limiter.check(client).map_err(Refused::TooMany)?;
    match state.service.track_by_token(token).await {
        Ok(Some(snapshot)) => Ok(snapshot),
        Ok(None) => Err(Refused::NotFound),
        Err(e) => {
            tracing::error!(error = %e, "tracking lookup failed");
            Err(Refused::Failed)
        }
    }
}

/// The `lang` query parameter, if any.
pub fn wanted_language(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == "lang").map(|(_, v)| v.into_owned())
}

/// Renders an order's page for a request.
pub fn rendered(
    state: &AppState,
    snapshot: &Arc<TrackSnapshot>,
    token: &str,
    wanted: Option<&str>,
) -> anyhow::Result<Arc<Rendered>> {
    let now = chrono::Utc::now();
    if let Some(r) = state.portal.renderer.cached(snapshot, wanted, now) {
        return Ok(r);
    }
    let language = state.portal.renderer.language_of(snapshot, wanted);
    let events_url = match wanted {
        Some(_) => format!("/t/{token}/events?lang={language}&since={}", snapshot.last_event_id),
        None => format!("/t/{token}/events?since={}", snapshot.last_event_id),
    };
    let photo_base = state.service.config().base_url.join(&format!("t/{token}/photos/"))?;
    let page_path = format!("/t/{token}");
    let sign = |context: &str| state.service.form_token(&snapshot.token_hash, context);
    let forms = render::Forms { page_path: &page_path, events_url: &events_url, sign: &sign };
    state.portal.renderer.render(snapshot, state.service.workflows(), wanted, photo_base.as_str(), &forms, now)
}

async fn page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(snapshot) => snapshot,
        Err(refused) => return state.portal.refused(refused),
    };
    count_view(&state, snapshot.order.id).await;
    match rendered(&state, &snapshot, &token, wanted_language(query.as_deref()).as_deref()) {
        Ok(r) => state.portal.html(StatusCode::OK, r.page.clone()),
        Err(e) => {
            tracing::error!(error = %e, "tracking page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Counts a view of an order's page once per UTC day; a failure only loses a figure.
async fn count_view(state: &AppState, order_id: i64) {
    let day = chrono::Utc::now().timestamp().div_euclid(86_400);
    let first_today = {
        let mut seen = state.portal.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.0 != day {
            *seen = (day, std::collections::HashSet::new());
        }
        seen.1.insert(order_id)
    };
    if first_today && let Err(e) = state.service.record_view(order_id, day).await {
        tracing::warn!(error = %e, "cannot count a tracking page view");
        state.portal.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.remove(&order_id);
    }
}

async fn favicon(State(state): State<AppState>) -> Response {
    let mut res = Body::from(state.portal.favicon.clone()).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// A photo on an order's timeline, through the same token (and rate limit) as the page: only
/// customer-visible photos of customer-visible events; anything else is the same plain 404.
async fn photo(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path((token, id, size)): Path<(String, String, String)>,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(snapshot) => snapshot,
        Err(refused) => return state.portal.refused(refused),
    };
    let found = id.parse::<i64>().ok().and_then(|id| snapshot.photo(id)).zip(PhotoSize::parse(&size));
    let Some((photo, size)) = found else {
        return state.portal.not_found();
    };
    match state.service.photo_bytes(photo, size).await {
        Ok(Some(bytes)) => {
            // The bytes behind an id never change; the URL dies with the token.
            let mut res = crate::web::api::photos::jpeg(bytes, "private, max-age=31536000, immutable");
            private_headers(res.headers_mut(), "private, max-age=31536000, immutable");
            res
        }
        Ok(None) => state.portal.not_found(),
        Err(e) => {
            tracing::error!(error = %e, photo = photo.id, "cannot read a photo");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn logo(State(state): State<AppState>) -> Response {
    match &state.portal.logo {
        Some((bytes, kind)) => {
            let mut res = Body::from(bytes.clone()).into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
            res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            // An SVG opened on its own must not run script in our origin.
            res.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            res
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logos_are_recognised_by_content_and_the_language_query_is_read() {
        assert_eq!(logo_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(
            logo_type(b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(logo_type(b"GIF89a"), None);
        assert_eq!(wanted_language(Some("utm_source=x&lang=it")), Some("it".to_owned()));
        assert_eq!(wanted_language(None), None);
    }
}
