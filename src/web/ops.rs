//! The shop's side: the dashboard at `/` for signed-in staff, and the shop-floor display.
//!
//! Every request under these routes passes [`guard`]: it resolves the session cookie to a
//! [`Staff`] member, and refuses a state-changing request unless it carries the session's
//! CSRF token (form field `_csrf`, header `X-CSRF-Token` or, for photo uploads, the query)
//! and comes from our own origin. Roles are then checked by the extractors [`Reader`],
//! [`Operator`] and [`Owner`], on the server, for every route.

mod auth;
mod detail;
mod floor;
mod live;
mod orders;
pub mod render;
mod settings;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AppState;
use super::portal::Peer;
use crate::crypto::constant_time_eq;
use crate::domain::access::{Permission, Role};
use crate::service::Staff;
use render::OpsRenderer;

/// Everything the dashboard routes need besides the service.
#[derive(Debug)]
pub struct Ops {
    renderer: OpsRenderer,
    limits: auth::LoginLimits,
    cookies: CookieNames,
    /// Our own origin, e.g. `https://shop.example`, for the Origin check.
    origin: String,
    /// Boards shared by every screen until an order changes.
    boards: orders::BoardCache,
}

/// Cookie names and attributes, by whether the base URL is https.
#[derive(Debug, Clone)]
struct CookieNames {
    session: &'static str,
    login: &'static str,
    secure: bool,
}

impl Ops {
    /// Compiles the dashboard's templates; errors name the template.
    pub fn new(config: &crate::config::Config) -> anyhow::Result<Self> {
        let secure = config.base_url.scheme() == "https";
        // `__Host-` cookies must be Secure, Path=/ and host-only: a sibling subdomain cannot
        // plant or overwrite them. Browsers refuse them over plain http, so they are only
        // used when kiln is served over https.
        let cookies = if secure {
            CookieNames { session: "__Host-kiln_session", login: "__Host-kiln_login", secure }
        } else {
            CookieNames { session: "kiln_session", login: "kiln_login", secure }
        };
        Ok(Self {
            renderer: OpsRenderer::new(config)?,
            limits: auth::LoginLimits::new(&config.staff, config.tracking.trust_forwarded_for),
            cookies,
            origin: config.base_url.origin().ascii_serialization(),
            boards: orders::BoardCache::default(),
        })
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: Option<std::time::Duration>) -> HeaderValue {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.cookies.secure {
            cookie.push_str("; Secure");
        }
        match max_age {
            Some(age) => cookie.push_str(&format!("; Max-Age={}", age.as_secs())),
            None => cookie.push_str("; Max-Age=0"),
        }
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("kiln=; Max-Age=0"))
    }
}

/// Routes of the dashboard and the floor display.
pub fn router(state: &AppState) -> Router<AppState> {
    let staff = Router::new()
        .route("/", get(orders::list))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/logout/everywhere", post(auth::logout_everywhere))
        .route("/board", get(orders::board_default))
        .route("/board/{workflow}", get(orders::board))
        .route("/bulk", post(orders::bulk))
        .route("/orders/{reference}", get(detail::show))
        .route("/orders/{reference}/act", post(detail::act))
        .route("/orders/{reference}/note", post(detail::note))
        .route("/orders/{reference}/edit", post(detail::edit))
        .route("/orders/{reference}/link/revoke", post(detail::revoke_link))
        .route("/orders/{reference}/link/reissue", post(detail::reissue_link))
        .route("/orders/{reference}/photos/{id}/{size}", get(detail::photo))
        .route("/messages/{id}/retry", post(detail::retry_message))
        .route("/settings", get(settings::show))
        .route("/settings/users", post(settings::add_user))
        .route("/settings/users/{id}", post(settings::edit_user))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/settings/displays", post(settings::create_display))
        .route("/settings/displays/{id}/revoke", post(settings::revoke_display))
        .route("/ops/events", get(live::events))
        .route("/assets/kiln.css", get(render::stylesheet))
        .route("/assets/kiln.js", get(render::script))
        // A move may carry photos; the multipart reader bounds each file and the upload budget
        // bounds them all, so the router-wide body limit does not apply to it.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn(super::timing::server_timing));
    Router::new()
        .merge(staff)
        .route("/floor/{token}", get(floor::show))
        .route("/floor/{token}/events", get(floor::events))
}

/// A signed-in staff member with the CSRF token of their session, put in the request's
/// extensions by [`guard`].
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub staff: Staff,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// The CSRF token of a session: an HMAC keyed with the session token, so it is different for
/// every session, needs no storage, and cannot be computed without the (HttpOnly) cookie.
fn csrf_for(session_token: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(session_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"kiln dashboard csrf");
    crate::crypto::hex(&mac.finalize().into_bytes())
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Largest urlencoded form the guard reads to find the CSRF field.
const MAX_FORM: usize = 256 * 1024;

/// Resolves the session and refuses cross-site state changes.
async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ops = &state.ops;
    let token = cookie(req.headers(), ops.cookies.session).map(str::to_owned);
    if let Some(token) = &token {
        match state.service.staff_session(token).await {
            Ok(Some(staff)) => {
                req.extensions_mut().insert(Session { staff, csrf: csrf_for(token) });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e.chain(), "session lookup failed");
                return ops.renderer.error_page(&req, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
        }
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if !same_origin(req.headers(), &ops.origin) {
        return ops.renderer.error_page(&req, StatusCode::FORBIDDEN, "foreign_origin");
    }
    let expected = if req.uri().path() == "/login" {
        // Signing in has no session yet (or replaces one): its form carries the value of a
        // cookie set with the form (double submit), which a cross-site page can neither read
        // nor set.
        cookie(req.headers(), ops.cookies.login).map(str::to_owned)
    } else {
        req.extensions().get::<Session>().map(|session| session.csrf.clone())
    };
    let (presented, req) = match presented_csrf(req).await {
        Ok(found) => found,
        Err(res) => return res,
    };
    let valid = matches!((&expected, &presented), (Some(e), Some(p)) if constant_time_eq(e.as_bytes(), p.as_bytes()));
    if !valid {
        if expected.is_none() && req.uri().path() != "/login" {
            // Not signed in (or the session ended): sign in again rather than a CSRF error.
            return auth::to_login(&req);
        }
        return ops.renderer.error_page(&req, StatusCode::FORBIDDEN, "csrf");
    }
    next.run(req).await
}

/// Whether a state-changing request comes from our own pages: its `Origin` (or, without
/// one, its `Referer`) is our origin or the host it was sent to. Requests with neither come
/// from programs, not browsers, and still need the CSRF token.
fn same_origin(headers: &HeaderMap, ours: &str) -> bool {
    let claimed = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
        let referer = headers.get(header::REFERER)?.to_str().ok()?;
        url::Url::parse(referer).ok().map(|u| u.origin().ascii_serialization())
    });
    let Some(claimed) = claimed else { return true };
    if claimed == ours {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let claimed_host = claimed.split_once("://").map(|(_, h)| h);
    matches!((host, claimed_host), (Some(h), Some(c)) if h.eq_ignore_ascii_case(c))
}

/// The CSRF token the request presents: header, query, or the urlencoded body's `_csrf`
/// (the body is read and handed on unchanged).
async fn presented_csrf(req: Request) -> Result<(Option<String>, Request), Response> {
    if let Some(v) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return Ok((Some(v.to_owned()), req));
    }
    let from_query = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "_csrf").map(|(_, v)| v.into_owned())
    });
    if from_query.is_some() {
        return Ok((from_query, req));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(bytes) => bytes,
        Err(_) => return Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response()),
    };
    let found = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "_csrf").map(|(_, v)| v.into_owned());
    Ok((found, Request::from_parts(parts, Body::from(bytes))))
}

/// The signed-in member of a request whose role grants `needed`, or the answer to give
/// instead: the sign-in page for a page read, 403 for the rest.
fn require(parts: &Parts, state: &AppState, needed: Permission) -> Result<Session, Box<Response>> {
    match parts.extensions.get::<Session>() {
        Some(session) if session.staff.role.allows(needed) => Ok(session.clone()),
        Some(_) => Err(Box::new(state.ops.renderer.error_for(parts, StatusCode::FORBIDDEN, "forbidden"))),
        None => Err(Box::new(auth::to_login_parts(parts))),
    }
}

macro_rules! role_extractor {
    ($(#[$meta:meta])* $name:ident, $permission:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Session);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Response;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
                require(parts, state, $permission).map($name).map_err(|e| *e)
            }
        }
    };
}

role_extractor!(
    /// Any signed-in staff member (viewer and up).
    Reader,
    Permission::Read
);
role_extractor!(
    /// An operator or owner: may move orders, add notes and photos, retry messages.
    Operator,
    Permission::Operate
);
role_extractor!(
    /// An owner: may manage users, tokens, display links.
    Owner,
    Permission::Administer
);

impl Session {
    /// The actor recorded for what this member does to orders.
    pub fn actor(&self) -> crate::domain::model::Actor {
        crate::domain::model::Actor { name: self.staff.email.clone(), source: crate::domain::order::Source::Ops }
    }

    /// Whether the member's role grants `needed` (for what pages offer; routes check again).
    pub fn can(&self, needed: Permission) -> bool {
        self.staff.role.allows(needed)
    }
}

/// The client address of a request, as the tracking pages' limiter sees it.
fn client_address(state: &AppState, peer: Peer, headers: &HeaderMap) -> IpAddr {
    state.ops.limits.client(peer, headers)
}

/// The fields of an urlencoded form body, as the dashboard's small forms send them.
struct FormFields(Vec<(String, String)>);

impl FormFields {
    fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The value as sent (an empty one included: "clear this").
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value trimmed, when it is not empty.
    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// Whether a form's `back` value is a path on this site (never another site or a script).
fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(char::is_control)
        && target.len() < 2048
}

/// After a form: back to where it came from (a local path only), or to `fallback`.
fn back_to(target: Option<&str>, fallback: &str) -> Response {
    Redirect::to(target.filter(|t| is_local_path(t)).unwrap_or(fallback)).into_response()
}

/// The role names, for forms.
pub const ROLES: &[Role] = Role::ALL;

/// Shared by the dashboard's state.
pub type SharedOps = Arc<Ops>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_gone_back_to() {
        for ok in ["/", "/board/stone", "/orders/K-000001?done=moved"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in ["javascript:alert(1)", "//evil.example/", "/\\evil.example", "https://evil.example/", "", "/a\nb"] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
