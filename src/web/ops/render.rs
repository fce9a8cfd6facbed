//! The dashboard's pages: templates compiled once, one stylesheet built on the tracking
//! page's (same colours and type), one small script, and a strict CSP that allows nothing
//! but our own origin.

use std::sync::Arc;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::Session;
use crate::config::Config;
use crate::i18n::{Bundle, Catalog};
use crate::web::AppState;
use crate::web::portal::render::text_on;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../../templates/ops/layout.html")),
    ("login.html", include_str!("../../../templates/ops/login.html")),
    ("list.html", include_str!("../../../templates/ops/list.html")),
    ("board.html", include_str!("../../../templates/ops/board.html")),
    ("detail.html", include_str!("../../../templates/ops/detail.html")),
    ("bulk.html", include_str!("../../../templates/ops/bulk.html")),
    ("bulkbar.html", include_str!("../../../templates/ops/bulkbar.html")),
    ("settings.html", include_str!("../../../templates/ops/settings.html")),
    ("floor.html", include_str!("../../../templates/ops/floor.html")),
    ("message.html", include_str!("../../../templates/ops/message.html")),
];
const TRACK_CSS: &str = include_str!("../../../assets/track.css");
const OPS_CSS: &str = include_str!("../../../assets/ops.css");
const JS: &str = include_str!("../../../assets/ops.js");

/// Pages are private to the signed-in member: never stored by any cache.
const NO_STORE: &str = "private, no-store, max-age=0";

/// Renders dashboard pages.
pub struct OpsRenderer {
    env: Environment<'static>,
    catalog: Catalog,
    css: Bytes,
    css_url: String,
    js_url: String,
    shop_name: String,
    default_language: String,
    /// The shop's time zone: staff read times in the workshop's own clock.
    pub tz: Tz,
}

impl std::fmt::Debug for OpsRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsRenderer").field("shop_name", &self.shop_name).finish_non_exhaustive()
    }
}

fn short_hash(bytes: &[u8]) -> String {
    crate::crypto::sha256_hex(bytes)[..12].to_owned()
}

impl OpsRenderer {
    /// Compiles the templates; a template error is reported at start-up.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_syntax(minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| anyhow::anyhow!("templates/ops/{name}: {e}"))?;
        }
        let shop = &config.shop;
        let css = format!(
            ":root{{--brand:{};--on-brand:{};--accent:{};--on-accent:{}}}\n{TRACK_CSS}\n{OPS_CSS}",
            shop.color,
            text_on(&shop.color),
            shop.accent,
            text_on(&shop.accent)
        );
        Ok(Self {
            css_url: format!("/assets/kiln.css?v={}", short_hash(css.as_bytes())),
            js_url: format!("/assets/kiln.js?v={}", short_hash(JS.as_bytes())),
            css: Bytes::from(css),
            env,
            catalog: Catalog::load()?,
            shop_name: shop.name.clone(),
            default_language: shop.language.clone(),
            tz: crate::domain::order::TimeZone::parse(&shop.timezone).map_err(anyhow::Error::msg)?.0,
        })
    }

    /// The strings for a request: `?lang=`, then `Accept-Language`, then the shop's language.
    pub fn bundle(&self, headers: &HeaderMap, query: Option<&str>) -> Arc<Bundle> {
        let wanted = crate::web::portal::wanted_language(query);
        let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut tags: Vec<(f32, &str)> = accept
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                (!tag.is_empty() && tag != "*").then_some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.catalog.pick(
            wanted
                .as_deref()
                .into_iter()
                .chain(tags.into_iter().map(|(_, t)| t))
                .chain([self.default_language.as_str()]),
        )
    }

    /// A time in the shop's clock, e.g. "3 Mar 14:05", with the year when it is not this one.
    pub fn when(&self, bundle: &Bundle, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.tz);
        let now = Utc::now().with_timezone(&self.tz);
        let day = bundle.short_date(local);
        let day = if chrono::Datelike::year(&local) == chrono::Datelike::year(&now) {
            day
        } else {
            format!("{day} {}", chrono::Datelike::year(&local))
        };
        format!("{day} {}", bundle.time(local))
    }

    /// Renders `template` with the page's own values plus what every page has.
    pub fn page(
        &self,
        template: &str,
        bundle: &Bundle,
        session: Option<&Session>,
        status: StatusCode,
        values: Value,
    ) -> Response {
        let staff = session.map(|s| {
            context! {
                name => s.staff.name.clone(),
                email => s.staff.email.clone(),
                role => s.staff.role.as_str(),
                operate => s.can(crate::domain::access::Permission::Operate),
                owner => s.can(crate::domain::access::Permission::Administer),
            }
        });
        let ctx = context! {
            t => bundle.section("ops"),
            lang => bundle.language(),
            shop => self.shop_name.clone(),
            css_url => self.css_url.clone(),
            js_url => self.js_url.clone(),
            staff => staff,
            csrf => session.map(|s| s.csrf.clone()),
            ..values
        };
        match self.env.get_template(template).and_then(|t| t.render(ctx)) {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!(error = %e, template, "cannot render a dashboard page");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
            }
        }
    }

    /// A page with a title, a message and a way back, e.g. for a refused form.
    pub fn message(
        &self,
        bundle: &Bundle,
        session: Option<&Session>,
        status: StatusCode,
        title: &str,
        text: &str,
        back: Option<&str>,
    ) -> Response {
        self.page("message.html", bundle, session, status, context! { title, text, back })
    }

    /// The error page for `key` (strings `ops.error_{key}_title` and `_text`).
    pub fn error_page(&self, req: &axum::extract::Request, status: StatusCode, key: &str) -> Response {
        let bundle = self.bundle(req.headers(), req.uri().query());
        let session = req.extensions().get::<Session>();
        self.error_with(&bundle, session, status, key)
    }

    /// [`Self::error_page`] from request parts.
    pub fn error_for(&self, parts: &Parts, status: StatusCode, key: &str) -> Response {
        let bundle = self.bundle(&parts.headers, parts.uri.query());
        self.error_with(&bundle, parts.extensions.get::<Session>(), status, key)
    }

    /// The error page for `key` with strings already chosen.
    pub fn error_with(&self, bundle: &Bundle, session: Option<&Session>, status: StatusCode, key: &str) -> Response {
        let title = bundle.t(&format!("ops.error_{key}_title")).to_owned();
        let text = bundle.t(&format!("ops.error_{key}_text")).to_owned();
        self.message(bundle, session, status, &title, &text, Some("/"))
    }
}

/// An HTML answer with the dashboard's headers.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    res
}

fn asset(body: Bytes, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The URL carries the content's hash, so a new version is a new URL.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// `GET /assets/kiln.css`.
pub async fn stylesheet(State(state): State<AppState>) -> Response {
    asset(state.ops.renderer.css.clone(), "text/css; charset=utf-8")
}

/// `GET /assets/kiln.js`.
pub async fn script() -> Response {
    asset(Bytes::from_static(JS.as_bytes()), "text/javascript; charset=utf-8")
}

/// A duration in the largest fitting unit, for "in stage for …".
pub fn span(bundle: &Bundle, d: chrono::Duration) -> String {
    bundle.duration(d.to_std().unwrap_or_default())
}

/// A value templates can show as a badge list.
#[derive(Debug, Serialize)]
pub struct Badge {
    /// CSS class.
    pub class: &'static str,
    /// Text.
    pub text: String,
}
