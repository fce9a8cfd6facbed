//! Signing in and out. Attempts are rate-limited per account and per client address, and a
//! wrong email, a wrong password and a disabled account all get the same answer.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use minijinja::context;
use serde::Deserialize;

use super::{Reader, back_to, client_address};
use crate::config::StaffConfig;
use crate::crypto::random_token;
use crate::web::AppState;
use crate::web::portal::Peer;

/// Keys kept by each limiter before idle ones are forgotten.
const PRUNE_AT: usize = 50_000;
/// The window both limits are counted over.
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Sign-in attempts allowed per account and per address.
pub struct LoginLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl std::fmt::Debug for LoginLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimits").finish_non_exhaustive()
    }
}

fn quota(per_window: u32) -> Quota {
    let n = NonZeroU32::new(per_window).unwrap_or(NonZeroU32::MIN);
    // All `n` at once, then one more each WINDOW / n.
    Quota::with_period(WINDOW / n.get()).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(n)
}

impl LoginLimits {
    /// Limits from the configuration.
    pub fn new(config: &StaffConfig, trust_forwarded_for: bool) -> Self {
        Self {
            per_account: DefaultKeyedRateLimiter::keyed(quota(config.login_attempts_per_account)),
            per_address: DefaultKeyedRateLimiter::keyed(quota(config.login_attempts_per_address)),
            trust_forwarded_for,
        }
    }

    /// The client's address (the last `X-Forwarded-For` hop when configured to trust it).
    pub fn client(&self, peer: Peer, headers: &HeaderMap) -> IpAddr {
        if self.trust_forwarded_for
            && let Some(ip) = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return ip;
        }
        peer.0.map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
    }

    /// `Ok` if this attempt may be checked, else how long to wait.
    fn check(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        if self.per_account.len() > PRUNE_AT {
            self.per_account.retain_recent();
        }
        if self.per_address.len() > PRUNE_AT {
            self.per_address.retain_recent();
        }
        let clock = governor::clock::DefaultClock::default();
        let wait = |n: governor::NotUntil<governor::clock::QuantaInstant>| {
            n.wait_time_from(governor::clock::Clock::now(&clock))
        };
        self.per_address.check_key(&address).map_err(wait)?;
        self.per_account.check_key(&account.to_owned()).map_err(wait)?;
        Ok(())
    }
}

/// The sign-in page's query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
    req: Request,
) -> Response {
    if req.extensions().get::<super::Session>().is_some() {
        return back_to(query.next.as_deref(), "/");
    }
    render_login(&state, req.headers(), req.uri().query(), query.next.as_deref(), None, StatusCode::OK, "")
}

fn render_login(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    next: Option<&str>,
    error: Option<String>,
    status: StatusCode,
    email: &str,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(headers, query);
    // The double-submit value: kept if the browser has one (several tabs), else a new one.
    let value = super::cookie(headers, ops.cookies.login).map_or_else(|| random_token(24), str::to_owned);
    let mut res = ops.renderer.page(
        "login.html",
        &bundle,
        None,
        status,
        context! { login_csrf => value.clone(), next => next.unwrap_or("/"), error, email },
    );
    res.headers_mut()
        .append(header::SET_COOKIE, ops.set_cookie(ops.cookies.login, &value, Some(Duration::from_secs(3600))));
    res
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
    #[serde(rename = "_csrf")]
    _csrf: Option<String>,
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ops = &state.ops;
    let address = client_address(&state, peer, &headers);
    let account = form.email.trim().to_lowercase();
    let bundle = ops.renderer.bundle(&headers, None);
    if let Err(wait) = ops.limits.check(&account, address) {
        let minutes = wait.as_secs().div_ceil(60).max(1).to_string();
        let text = bundle.fill("ops.login_too_many", &[("minutes", &minutes)]);
        let mut res = render_login(
            &state,
            &headers,
            None,
            form.next.as_deref(),
            Some(text),
            StatusCode::TOO_MANY_REQUESTS,
            &account,
        );
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return res;
    }
    if form.email.len() > 320 || form.password.len() > 4096 {
        let text = bundle.t("ops.login_wrong").to_owned();
        return render_login(&state, &headers, None, form.next.as_deref(), Some(text), StatusCode::UNAUTHORIZED, "");
    }
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let address_text = address.to_string();
    match state.service.login(&form.email, &form.password, Some(&address_text), agent).await {
        Ok(Ok((token, _staff))) => {
            let mut res = back_to(form.next.as_deref(), "/");
            let absolute = state.service.config().staff.session_absolute;
            let h = res.headers_mut();
            h.append(header::SET_COOKIE, ops.set_cookie(ops.cookies.session, &token, Some(absolute)));
            h.append(header::SET_COOKIE, ops.set_cookie(ops.cookies.login, "", None));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Ok(Err(_)) => {
            let text = bundle.t("ops.login_wrong").to_owned();
            render_login(&state, &headers, None, form.next.as_deref(), Some(text), StatusCode::UNAUTHORIZED, &account)
        }
        Err(e) => {
            tracing::error!(error = %e.chain(), "sign-in failed");
            let text = bundle.t("ops.error_unavailable_text").to_owned();
            render_login(
                &state,
                &headers,
                None,
                form.next.as_deref(),
                Some(text),
                StatusCode::SERVICE_UNAVAILABLE,
                &account,
            )
        }
    }
}

fn signed_out(state: &AppState) -> Response {
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, state.ops.set_cookie(state.ops.cookies.session, "", None));
    res
}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, Reader(session): Reader) -> Response {
    if let Err(e) = state.service.logout(&session.staff).await {
        tracing::error!(error = %e.chain(), "sign-out failed");
    }
    signed_out(&state)
}

/// `POST /logout/everywhere`: ends this member's sessions on every device.
pub async fn logout_everywhere(State(state): State<AppState>, Reader(session): Reader) -> Response {
    if let Err(e) = state.service.logout_everywhere(&session.staff).await {
        tracing::error!(error = %e.chain(), "sign-out everywhere failed");
    }
    signed_out(&state)
}

fn login_url(path_and_query: &str) -> String {
    if path_and_query == "/" {
        return "/login".to_owned();
    }
    let next: String = url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
    format!("/login?next={next}")
}

/// Sends a signed-out request to the sign-in page (and back here afterwards, for pages).
pub fn to_login(req: &Request) -> Response {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    redirect_or_401(req.method(), req.headers(), target)
}

/// [`to_login`] from request parts.
pub fn to_login_parts(parts: &Parts) -> Response {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    redirect_or_401(&parts.method, &parts.headers, target)
}

fn redirect_or_401(method: &axum::http::Method, headers: &HeaderMap, target: &str) -> Response {
    // Scripts (live updates, fetches) get a plain 401 rather than the sign-in page's HTML.
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("text/html") || a.contains("*/*"));
    if method == axum::http::Method::GET && wants_html && !target.starts_with("/ops/events") {
        return Redirect::to(&login_url(target)).into_response();
    }
    if method == axum::http::Method::GET {
        return (StatusCode::UNAUTHORIZED, "sign in first").into_response();
    }
    Redirect::to(&login_url("/")).into_response()
}
